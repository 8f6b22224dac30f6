/* String buffer, arena, hash maps, UTF-8 and JSON helpers. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tributary/util.h"

static bool buf_grow(tjs_buf *b, size_t extra)
{
	if (b->oom)
		return false;
	if (b->len + extra + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < b->len + extra + 1)
		cap *= 2;
	char *s = realloc(b->s, cap);
	if (!s) {
		b->oom = true;
		return false;
	}
	b->s = s;
	b->cap = cap;
	return true;
}

void tjs_buf_add(tjs_buf *b, const char *s, size_t n)
{
	if (!buf_grow(b, n))
		return;
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void tjs_buf_puts(tjs_buf *b, const char *s)
{
	tjs_buf_add(b, s, strlen(s));
}

void tjs_buf_putc(tjs_buf *b, char c)
{
	tjs_buf_add(b, &c, 1);
}

void tjs_buf_printf(tjs_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || !buf_grow(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

char *tjs_buf_take(tjs_buf *b)
{
	if (b->oom) {
		tjs_buf_free(b);
		return NULL;
	}
	if (!b->s && !buf_grow(b, 0))
		return NULL;
	if (b->len == 0)
		b->s[0] = '\0';
	char *s = b->s;
	b->s = NULL;
	b->len = b->cap = 0;
	return s;
}

void tjs_buf_free(tjs_buf *b)
{
	free(b->s);
	b->s = NULL;
	b->len = b->cap = 0;
	b->oom = false;
}

/* ---- arena ---- */

struct tjs_arena_chunk {
	tjs_arena_chunk *prev;
	size_t size, used;
	_Alignas(16) unsigned char data[];
};

void *tjs_arena_alloc(tjs_arena *a, size_t n)
{
	void *p = tjs_arena_alloc_uninit(a, n);
	if (p)
		memset(p, 0, n);
	return p;
}

void *tjs_arena_alloc_uninit(tjs_arena *a, size_t n)
{
	n = (n + 15) & ~(size_t)15;
	tjs_arena_chunk *c = a->head;
	if (!c || c->size - c->used < n) {
		size_t size = !c && a->first_chunk ? a->first_chunk : 16384;
		if (size < n)
			size = n;
		c = malloc(sizeof(*c) + size);
		if (!c)
			return NULL;
		c->prev = a->head;
		c->size = size;
		c->used = 0;
		a->head = c;
	}
	void *p = c->data + c->used;
	c->used += n;
	return p;
}

char *tjs_arena_strdup(tjs_arena *a, const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = tjs_arena_alloc(a, n);
	if (d)
		memcpy(d, s, n);
	return d;
}

tjs_arena_mark tjs_arena_save(const tjs_arena *a)
{
	tjs_arena_mark m = {a->head, a->head ? a->head->used : 0};
	return m;
}

void tjs_arena_restore(tjs_arena *a, tjs_arena_mark m)
{
	while (a->head && a->head != m.chunk) {
		tjs_arena_chunk *prev = a->head->prev;
		free(a->head);
		a->head = prev;
	}
	if (a->head)
		a->head->used = m.used;
}

void tjs_arena_free(tjs_arena *a)
{
	tjs_arena_mark none = {NULL, 0};
	tjs_arena_restore(a, none);
}

/* ---- maps ---- */

struct tjs_map_ent {
	char *key;
	void *val;
	uint64_t hash;
};

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

static int map_grow(tjs_map *m)
{
	size_t cap = m->cap ? m->cap * 2 : 16;
	struct tjs_map_ent *e = calloc(cap, sizeof(*e));
	if (!e)
		return -1;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->ents[i].key)
			continue;
		size_t j = m->ents[i].hash & (cap - 1);
		while (e[j].key)
			j = (j + 1) & (cap - 1);
		e[j] = m->ents[i];
	}
	free(m->ents);
	m->ents = e;
	m->cap = cap;
	return 0;
}

int tjs_map_put(tjs_map *m, const char *key, void *val)
{
	if ((m->len + 1) * 2 > m->cap && map_grow(m) < 0)
		return -1;
	uint64_t h = hash_str(key);
	size_t j = h & (m->cap - 1);
	while (m->ents[j].key) {
		if (m->ents[j].hash == h && strcmp(m->ents[j].key, key) == 0) {
			m->ents[j].val = val;
			return 0;
		}
		j = (j + 1) & (m->cap - 1);
	}
	char *k = strdup(key);
	if (!k)
		return -1;
	m->ents[j].key = k;
	m->ents[j].val = val;
	m->ents[j].hash = h;
	m->len++;
	return 0;
}

void *tjs_map_get(const tjs_map *m, const char *key)
{
	if (!m->cap)
		return NULL;
	uint64_t h = hash_str(key);
	size_t j = h & (m->cap - 1);
	while (m->ents[j].key) {
		if (m->ents[j].hash == h && strcmp(m->ents[j].key, key) == 0)
			return m->ents[j].val;
		j = (j + 1) & (m->cap - 1);
	}
	return NULL;
}

const char *tjs_map_key_at(const tjs_map *m, size_t i)
{
	return m->ents[i].key;
}

void *tjs_map_val_at(const tjs_map *m, size_t i)
{
	return m->ents[i].val;
}

void tjs_map_free(tjs_map *m, void (*free_val)(void *))
{
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->ents[i].key)
			continue;
		free(m->ents[i].key);
		if (free_val)
			free_val(m->ents[i].val);
	}
	free(m->ents);
	m->ents = NULL;
	m->cap = m->len = 0;
}

struct tjs_pmap_ent {
	const void *key;
	void *val;
};

static size_t hash_ptr(const void *p)
{
	uint64_t x = (uint64_t)(uintptr_t)p;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return (size_t)x;
}

static int pmap_grow(tjs_pmap *m)
{
	size_t cap = m->cap ? m->cap * 2 : 64;
	struct tjs_pmap_ent *e = calloc(cap, sizeof(*e));
	if (!e)
		return -1;
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->ents[i].key)
			continue;
		size_t j = hash_ptr(m->ents[i].key) & (cap - 1);
		while (e[j].key)
			j = (j + 1) & (cap - 1);
		e[j] = m->ents[i];
	}
	free(m->ents);
	m->ents = e;
	m->cap = cap;
	return 0;
}

int tjs_pmap_put(tjs_pmap *m, const void *key, void *val)
{
	if ((m->len + 1) * 2 > m->cap && pmap_grow(m) < 0)
		return -1;
	size_t j = hash_ptr(key) & (m->cap - 1);
	while (m->ents[j].key) {
		if (m->ents[j].key == key) {
			m->ents[j].val = val;
			return 0;
		}
		j = (j + 1) & (m->cap - 1);
	}
	m->ents[j].key = key;
	m->ents[j].val = val;
	m->len++;
	return 0;
}

void *tjs_pmap_get(const tjs_pmap *m, const void *key)
{
	if (!m->cap)
		return NULL;
	size_t j = hash_ptr(key) & (m->cap - 1);
	while (m->ents[j].key) {
		if (m->ents[j].key == key)
			return m->ents[j].val;
		j = (j + 1) & (m->cap - 1);
	}
	return NULL;
}

void tjs_pmap_free(tjs_pmap *m)
{
	free(m->ents);
	m->ents = NULL;
	m->cap = m->len = 0;
}

/* ---- UTF-8 ---- */

size_t tjs_utf8_length(const char *s, size_t n)
{
	size_t count = 0;
	for (size_t i = 0; i < n; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			count++;
	return count;
}

int tjs_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

size_t tjs_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len = tb_utf8_decode((const char *)s, n, cp);
	if (!len) {
		*cp = 0xFFFD;
		return 1;
	}
	return len;
}

void tjs_utf8_encode(tjs_buf *b, uint32_t cp)
{
	char o[4];
	if (cp < 0x80) {
		o[0] = (char)cp;
		tjs_buf_add(b, o, 1);
	} else if (cp < 0x800) {
		o[0] = (char)(0xC0 | (cp >> 6));
		o[1] = (char)(0x80 | (cp & 0x3F));
		tjs_buf_add(b, o, 2);
	} else if (cp < 0x10000) {
		o[0] = (char)(0xE0 | (cp >> 12));
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[2] = (char)(0x80 | (cp & 0x3F));
		tjs_buf_add(b, o, 3);
	} else {
		o[0] = (char)(0xF0 | (cp >> 18));
		o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
		o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
		o[3] = (char)(0x80 | (cp & 0x3F));
		tjs_buf_add(b, o, 4);
	}
}

/* ---- JSON ---- */

bool tjs_is_integer(const json_t *v)
{
	if (json_is_integer(v))
		return true;
	if (!json_is_real(v))
		return false;
	double d = json_real_value(v);
	return isfinite(d) && floor(d) == d;
}

double tjs_number(const json_t *v)
{
	return json_is_integer(v) ? (double)json_integer_value(v) : json_real_value(v);
}

bool tjs_json_equal(const json_t *a, const json_t *b)
{
	if (json_is_number(a) && json_is_number(b)) {
		if (json_is_integer(a) && json_is_integer(b))
			return json_integer_value(a) == json_integer_value(b);
		return tjs_number(a) == tjs_number(b);
	}
	if (json_typeof(a) != json_typeof(b))
		return false;
	switch (json_typeof(a)) {
	case JSON_STRING:
		return json_string_length(a) == json_string_length(b) &&
		       memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) ==
		           0;
	case JSON_ARRAY: {
		size_t n = json_array_size(a);
		if (n != json_array_size(b))
			return false;
		for (size_t i = 0; i < n; i++)
			if (!tjs_json_equal(json_array_get(a, i), json_array_get(b, i)))
				return false;
		return true;
	}
	case JSON_OBJECT: {
		if (json_object_size(a) != json_object_size(b))
			return false;
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)a, k, v)
		{
			json_t *w = json_object_get(b, k);
			if (!w || !tjs_json_equal(v, w))
				return false;
		}
		return true;
	}
	default:
		return true; /* true, false, null: same type */
	}
}

char *tjs_json_short(const json_t *v)
{
	char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
	if (!s)
		return strdup("(value)");
	size_t n = strlen(s);
	if (n > 60) {
		/* cut on a UTF-8 boundary */
		size_t cut = 57;
		while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
			cut--;
		memcpy(s + cut, "...", 4);
	}
	return s;
}
