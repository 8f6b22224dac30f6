/* The record the plugin journals for one Kafka message. Decoding treats the
 * blob as hostile (it comes back from disk): every length is checked
 * against what is left before anything is allocated or copied. */
#include <stdlib.h>
#include <string.h>

#include "journal_int.h"

#define REC_VERSION 1u
#define NULL_LEN 0xFFFFFFFFu

static bool has_nul(const char *s, size_t n)
{
	return n && memchr(s, '\0', n) != NULL;
}

size_t tjournal_record_size(const tjournal_record *r)
{
	if (!r || !r->topic || r->topic_len == 0 || r->topic_len > 0xFFFF ||
	    has_nul(r->topic, r->topic_len))
		return 0;
	if ((r->key && r->key_len >= NULL_LEN) || (r->value && r->value_len >= NULL_LEN))
		return 0;
	if (r->header_count > 0xFFFFFFFEu || (r->header_count && !r->headers))
		return 0;
	uint64_t n = 1 + 2 + (uint64_t)r->topic_len + 4 + (r->key ? r->key_len : 0) + 4;
	for (size_t i = 0; i < r->header_count; i++) {
		const tjournal_header *h = &r->headers[i];
		if (!h->name || h->name_len > 0xFFFF || has_nul(h->name, h->name_len) ||
		    (h->value && h->value_len >= NULL_LEN))
			return 0;
		n += 2 + (uint64_t)h->name_len + 4 + (h->value ? h->value_len : 0);
	}
	n += 4 + (r->value ? r->value_len : 0);
	if (n > SIZE_MAX)
		return 0;
	return (size_t)n;
}

static uint8_t *put_bytes(uint8_t *p, const void *b, size_t len)
{
	if (len)
		memcpy(p, b, len);
	return p + len;
}

static uint8_t *put_nullable(uint8_t *p, const void *b, size_t len)
{
	tj_put32(p, b ? (uint32_t)len : NULL_LEN);
	return b ? put_bytes(p + 4, b, len) : p + 4;
}

size_t tjournal_record_encode(const tjournal_record *r, void *buf, size_t buflen)
{
	size_t n = tjournal_record_size(r);
	if (n == 0 || !buf || n > buflen)
		return 0;
	uint8_t *p = buf;
	*p++ = REC_VERSION;
	p[0] = (uint8_t)r->topic_len;
	p[1] = (uint8_t)(r->topic_len >> 8);
	p = put_bytes(p + 2, r->topic, r->topic_len);
	p = put_nullable(p, r->key, r->key_len);
	tj_put32(p, (uint32_t)r->header_count);
	p += 4;
	for (size_t i = 0; i < r->header_count; i++) {
		const tjournal_header *h = &r->headers[i];
		p[0] = (uint8_t)h->name_len;
		p[1] = (uint8_t)(h->name_len >> 8);
		p = put_bytes(p + 2, h->name, h->name_len);
		p = put_nullable(p, h->value, h->value_len);
	}
	p = put_nullable(p, r->value, r->value_len);
	return n;
}

typedef struct cursor {
	const uint8_t *p;
	size_t left;
} cursor;

static bool take(cursor *c, size_t n, const uint8_t **out)
{
	if (c->left < n)
		return false;
	*out = c->p;
	c->p += n;
	c->left -= n;
	return true;
}

static bool take_u16(cursor *c, size_t *v)
{
	const uint8_t *b;
	if (!take(c, 2, &b))
		return false;
	*v = (size_t)b[0] | (size_t)b[1] << 8;
	return true;
}

static bool take_u32(cursor *c, uint32_t *v)
{
	const uint8_t *b;
	if (!take(c, 4, &b))
		return false;
	*v = tj_get32(b);
	return true;
}

/* A u16-length string without NUL. */
static bool take_name(cursor *c, const uint8_t **s, size_t *len)
{
	return take_u16(c, len) && take(c, *len, s) && !has_nul((const char *)*s, *len);
}

/* A u32-length byte string or null (*s = NULL). */
static bool take_nullable(cursor *c, const uint8_t **s, size_t *len)
{
	uint32_t n;
	if (!take_u32(c, &n))
		return false;
	if (n == NULL_LEN) {
		*s = NULL;
		*len = 0;
		return true;
	}
	*len = n;
	return take(c, n, s);
}

/* Copies n bytes plus a NUL into the arena. */
static char *copy_out(char **arena, const uint8_t *s, size_t n)
{
	char *d = *arena;
	if (n)
		memcpy(d, s, n);
	d[n] = '\0';
	*arena += n + 1;
	return d;
}

int tjournal_record_decode(const void *blob, size_t len, tjournal_record **out)
{
	cursor c = {blob, len};
	const uint8_t *b, *topic, *key, *value;
	size_t topic_len, key_len, value_len;
	uint32_t count;

	if (!out)
		return TJOURNAL_EINVAL;
	*out = NULL;
	if (!blob || !take(&c, 1, &b) || *b != REC_VERSION)
		return TJOURNAL_CORRUPT;
	if (!take_name(&c, &topic, &topic_len) || topic_len == 0)
		return TJOURNAL_CORRUPT;
	if (!take_nullable(&c, &key, &key_len) || !take_u32(&c, &count))
		return TJOURNAL_CORRUPT;
	/* Each header takes at least 6 bytes: bounds the allocation by the blob. */
	if (count > c.left / 6)
		return TJOURNAL_CORRUPT;

	/* Pass 1: validate and size. */
	cursor hc = c;
	size_t strings = topic_len + 1 + key_len + 1;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *name, *val;
		size_t name_len, val_len;
		if (!take_name(&c, &name, &name_len) || !take_nullable(&c, &val, &val_len))
			return TJOURNAL_CORRUPT;
		strings += name_len + 1 + val_len + 1;
	}
	if (!take_nullable(&c, &value, &value_len) || c.left != 0)
		return TJOURNAL_CORRUPT;
	strings += value_len + 1;

	size_t hdr_bytes = (size_t)count * sizeof(tjournal_header);
	tjournal_record *r = malloc(sizeof(*r) + hdr_bytes + strings);
	if (!r)
		return TJOURNAL_ENOMEM;
	tjournal_header *hdrs = (tjournal_header *)(r + 1);
	char *arena = (char *)hdrs + hdr_bytes;

	/* Pass 2: copy; every read below succeeded in pass 1. */
	r->topic = copy_out(&arena, topic, topic_len);
	r->topic_len = topic_len;
	r->key = key ? copy_out(&arena, key, key_len) : NULL;
	r->key_len = key_len;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *name, *val;
		size_t name_len, val_len;
		take_name(&hc, &name, &name_len);
		take_nullable(&hc, &val, &val_len);
		hdrs[i].name = copy_out(&arena, name, name_len);
		hdrs[i].name_len = name_len;
		hdrs[i].value = val ? copy_out(&arena, val, val_len) : NULL;
		hdrs[i].value_len = val_len;
	}
	r->headers = count ? hdrs : NULL;
	r->header_count = count;
	r->value = value ? copy_out(&arena, value, value_len) : NULL;
	r->value_len = value_len;
	*out = r;
	return 0;
}

int tjournal_record_view(const void *blob, size_t len, tjournal_record *r, tjournal_header *hdrs,
                         size_t max)
{
	cursor c = {blob, len};
	const uint8_t *b, *topic, *key, *value;
	size_t topic_len, key_len, value_len;
	uint32_t count;

	if (!blob || !r || !take(&c, 1, &b) || *b != REC_VERSION)
		return TJOURNAL_CORRUPT;
	if (!take_name(&c, &topic, &topic_len) || topic_len == 0)
		return TJOURNAL_CORRUPT;
	if (!take_nullable(&c, &key, &key_len) || !take_u32(&c, &count) || count > c.left / 6)
		return TJOURNAL_CORRUPT;
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *name, *val;
		size_t name_len, val_len;
		if (!take_name(&c, &name, &name_len) || !take_nullable(&c, &val, &val_len))
			return TJOURNAL_CORRUPT;
		if (i < max)
			hdrs[i] = (tjournal_header){(const char *)name, name_len, val, val_len};
	}
	if (!take_nullable(&c, &value, &value_len) || c.left != 0)
		return TJOURNAL_CORRUPT;
	*r = (tjournal_record){.topic = (const char *)topic,
	                       .topic_len = topic_len,
	                       .key = key,
	                       .key_len = key_len,
	                       .headers = count ? hdrs : NULL,
	                       .header_count = count,
	                       .value = value,
	                       .value_len = value_len};
	return (int)count;
}
