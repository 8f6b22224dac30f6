/*
 * tjs_doc: JSON read straight into one arena (the validator's fast path).
 *
 * jansson builds a hash table per object and a heap block per value and
 * key; for an event read once, validated and re-encoded that dominates the
 * cost. Here strings are decoded into one block sized by the input (decoded
 * text plus its NUL never outgrows its quoted source), containers become
 * arrays in the arena, and the parser is iterative (explicit stack, depth
 * bounded like jansson's) so no input can exhaust the C stack.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "tributary/json_encode.h"
#include "tributary/util.h"

#define MAX_DEPTH JSON_PARSER_MAX_DEPTH
#define ONES 0x0101010101010101ull

typedef struct frame {
	json_type type; /* JSON_OBJECT or JSON_ARRAY */
	size_t start;   /* first pending member of this container */
} frame;

typedef struct parser {
	const unsigned char *p, *end, *begin;
	unsigned flags;
	tjs_doc *doc;
	char *sp; /* next free byte of doc->strings */
	tjs_member *tmp;
	size_t ntmp, captmp;
	frame *frames;
	size_t nframes, capframes;
	const char *error;
	const unsigned char *error_at;
	tjs_member *tmp_inline;
	frame *frames_inline;
} parser;

static bool fail(parser *ps, const char *msg, const unsigned char *at)
{
	if (!ps->error) {
		ps->error = msg;
		ps->error_at = at;
	}
	return false;
}

static inline void skip_ws(parser *ps)
{
	const unsigned char *p = ps->p, *end = ps->end;
	/* compact JSON has none: one test */
	if (p<end && * p> ' ')
		return;
	while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	ps->p = p;
}

/* The member stack and the frames start in the caller's stack frame
 * (tmp_inline, frames_inline); most documents never leave them. */
static void *grow_stack(void *p, void *inl, size_t cap, size_t used, size_t elem)
{
	if (p != inl)
		return realloc(p, cap * elem);
	void *q = malloc(cap * elem);
	if (q)
		memcpy(q, p, used * elem);
	return q;
}

static bool tmp_grow(parser *ps)
{
	size_t cap = ps->captmp * 2;
	tjs_member *t = grow_stack(ps->tmp, ps->tmp_inline, cap, ps->ntmp, sizeof(*t));
	if (!t)
		return fail(ps, "out of memory", ps->p);
	ps->tmp = t;
	ps->captmp = cap;
	return true;
}

static inline bool tmp_push(parser *ps, const char *key, size_t keylen)
{
	if (ps->ntmp == ps->captmp && !tmp_grow(ps))
		return false;
	tjs_member *m = &ps->tmp[ps->ntmp++];
	m->key = key;
	m->keylen = keylen;
	m->val.type = JSON_NULL;
	m->raw = NULL;
	m->rawlen = 0;
	return true;
}

static bool read_hex4(parser *ps, const unsigned char *p, uint32_t *out)
{
	if (ps->end - p < 4)
		return fail(ps, "invalid escape", p);
	uint32_t v = 0;
	for (int i = 0; i < 4; i++) {
		int h = tjs_hexval(p[i]);
		if (h < 0)
			return fail(ps, "invalid escape", p);
		v = (v << 4) | (uint32_t)h;
	}
	*out = v;
	return true;
}

static char *put_utf8(char *o, uint32_t cp)
{
	if (cp < 0x80) {
		*o++ = (char)cp;
	} else if (cp < 0x800) {
		*o++ = (char)(0xC0 | (cp >> 6));
		*o++ = (char)(0x80 | (cp & 0x3F));
	} else if (cp < 0x10000) {
		*o++ = (char)(0xE0 | (cp >> 12));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
		*o++ = (char)(0x80 | (cp & 0x3F));
	} else {
		*o++ = (char)(0xF0 | (cp >> 18));
		*o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
		*o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
		*o++ = (char)(0x80 | (cp & 0x3F));
	}
	return o;
}

/* At the opening quote; decodes into the string block. */
static bool parse_string(parser *ps, const char **out, size_t *outlen)
{
	const unsigned char *p = ps->p + 1, *end = ps->end;
	char *o = ps->sp, *start = o;
	for (;;) {
		/* eight bytes at a time up to the first quote, backslash, control
		 * or non-ASCII byte; the output never outruns the input, so the
		 * 8-byte store stays inside the string block. The flags are exact
		 * up to the first special byte (a borrow only runs upwards), and
		 * on little-endian that is the lowest one. */
		while (end - p >= 8) {
			uint64_t x;
			memcpy(&x, p, 8);
			uint64_t special =
			    (((x - ONES * 0x20) & ~x) |
			     (((x ^ (ONES * '"')) - ONES) & ~(x ^ (ONES * '"'))) |
			     (((x ^ (ONES * '\\')) - ONES) & ~(x ^ (ONES * '\\'))) | x) &
			    (ONES * 0x80);
			memcpy(o, &x, 8);
			if (special) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
				size_t k = (size_t)__builtin_ctzll(special) >> 3;
				o += k;
				p += k;
#endif
				break;
			}
			o += 8;
			p += 8;
		}
		while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
			*o++ = (char)*p++;
		if (p >= end)
			return fail(ps, "premature end of input", p);
		unsigned char c = *p;
		if (c == '"') {
			p++;
			break;
		}
		if (c < 0x20)
			return fail(ps, "control character in string", p);
		if (c >= 0x80) {
			/* strict: no overlongs, surrogates or code points past U+10FFFF */
			uint32_t cp;
			size_t n = tb_utf8_decode((const char *)p, (size_t)(end - p), &cp);
			if (!n)
				return fail(ps, "invalid UTF-8 in string", p);
			memcpy(o, p, n);
			o += n;
			p += n;
			continue;
		}
		/* backslash */
		if (end - p < 2)
			return fail(ps, "premature end of input", p);
		c = p[1];
		p += 2;
		switch (c) {
		case '"':
			*o++ = '"';
			break;
		case '\\':
			*o++ = '\\';
			break;
		case '/':
			*o++ = '/';
			break;
		case 'b':
			*o++ = '\b';
			break;
		case 'f':
			*o++ = '\f';
			break;
		case 'n':
			*o++ = '\n';
			break;
		case 'r':
			*o++ = '\r';
			break;
		case 't':
			*o++ = '\t';
			break;
		case 'u': {
			uint32_t cp;
			if (!read_hex4(ps, p, &cp))
				return false;
			p += 4;
			if (cp >= 0xD800 && cp <= 0xDBFF) {
				uint32_t lo;
				if (end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
				    !read_hex4(ps, p + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF)
					return fail(ps, "invalid Unicode escape (lone surrogate)",
					            p);
				p += 6;
				cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
			} else if (cp >= 0xDC00 && cp <= 0xDFFF) {
				return fail(ps, "invalid Unicode escape (lone surrogate)", p);
			} else if (cp == 0 && !(ps->flags & TJS_PARSE_ALLOW_NUL)) {
				return fail(ps, "\\u0000 is not allowed", p);
			}
			o = put_utf8(o, cp);
			break;
		}
		default:
			return fail(ps, "invalid escape", p - 2);
		}
	}
	*o++ = '\0';
	*out = start;
	*outlen = (size_t)(o - start - 1);
	ps->sp = o;
	ps->p = p;
	return true;
}

/* A number neither a 64-bit integer nor a double holds exactly: a JSON_REAL
 * with its literal (n bytes, NUL-terminated) in the string block. That has
 * room: a number is followed by at least one byte (',', ']' or '}') or is
 * the whole input, so n + 1 bytes per number never outgrow the input. */
static bool keep_literal(parser *ps, tjs_value *v, const unsigned char *start, size_t n)
{
	memcpy(ps->sp, start, n);
	ps->sp[n] = '\0';
	v->type = JSON_REAL;
	v->n = n;
	v->u.s = ps->sp;
	ps->sp += n + 1;
	return true;
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static bool parse_number(parser *ps, tjs_value *v)
{
	const unsigned char *p = ps->p, *end = ps->end, *start = p;
	bool neg = false;
	if (*p == '-') {
		neg = true;
		p++;
	}
	if (p >= end || *p < '0' || *p > '9')
		return fail(ps, "invalid number", start);
	uint64_t mant = 0;
	int digits = 0;  /* significant digits gathered into mant */
	int dropped = 0; /* integer digits beyond 19 */
	const unsigned char *int_start = p;
	if (*p == '0') {
		p++;
		if (p < end && *p >= '0' && *p <= '9')
			return fail(ps, "invalid number (leading zero)", start);
	} else {
		while (p < end && *p >= '0' && *p <= '9') {
			if (digits < 19) {
				mant = mant * 10 + (uint64_t)(*p - '0');
				if (mant)
					digits++;
			} else {
				dropped++;
			}
			p++;
		}
	}
	size_t int_len = (size_t)(p - int_start);
	bool is_real = false, exact = dropped == 0;
	int exp10 = 0;
	if (p < end && *p == '.') {
		is_real = true;
		p++;
		if (p >= end || *p < '0' || *p > '9')
			return fail(ps, "invalid number", start);
		while (p < end && *p >= '0' && *p <= '9') {
			if (digits < 19) {
				mant = mant * 10 + (uint64_t)(*p - '0');
				if (mant)
					digits++;
				exp10--;
			} else if (*p != '0') {
				exact = false;
			}
			p++;
		}
	}
	if (p < end && (*p == 'e' || *p == 'E')) {
		is_real = true;
		p++;
		bool eneg = false;
		if (p < end && (*p == '+' || *p == '-'))
			eneg = *p++ == '-';
		if (p >= end || *p < '0' || *p > '9')
			return fail(ps, "invalid number", start);
		int e = 0;
		while (p < end && *p >= '0' && *p <= '9') {
			if (e < 100000)
				e = e * 10 + (*p - '0');
			p++;
		}
		exp10 += eneg ? -e : e;
	}
	ps->p = p;
	size_t n = (size_t)(p - start);
	bool plain = false; /* a double, even if not exact */
	if (!is_real) {
		/* as strtoll: 19 digits may still overflow, 20+ always do */
		if (int_len <= 18 || (int_len == 19 && (neg ? mant <= (uint64_t)1 << 63
		                                            : mant < (uint64_t)1 << 63))) {
			v->type = JSON_INTEGER;
			v->u.i = neg ? (json_int_t)(0 - mant) : (json_int_t)mant;
			return true;
		}
		if (!(ps->flags & TJS_PARSE_BIGINT_AS_REAL))
			return keep_literal(ps, v, start, n);
		plain = true;
	}
	/* More than 17 significant digits (trailing zeros counted): more than
	 * any double's shortest form has, so precision a double would drop.
	 * Up to 17, the number is what a double-based writer (JSON.stringify)
	 * gives and keeps double semantics (multipleOf's tolerance too). */
	if (!plain && (digits > 17 || !exact))
		return keep_literal(ps, v, start, n);
	v->type = JSON_REAL;
	/* Clinger's fast path: both operands exact, so one rounding */
	if (exact && mant <= (uint64_t)1 << 53 && exp10 >= -22 && exp10 <= 22) {
		double d = (double)mant;
		d = exp10 < 0 ? d / pow10_exact[-exp10] : d * pow10_exact[exp10];
		v->u.d = neg ? -d : d;
		return true;
	}
	char buf[64], *s = n < sizeof(buf) ? buf : malloc(n + 1);
	if (!s)
		return fail(ps, "out of memory", start);
	memcpy(s, start, n);
	s[n] = '\0';
	errno = 0;
	double d = strtod(s, NULL);
	int e = errno;
	if (s != buf)
		free(s);
	/* beyond a double's range (1e400, 1e-400): the literal */
	if (e == ERANGE && !plain)
		return keep_literal(ps, v, start, n);
	if (e == ERANGE && isinf(d))
		return fail(ps, "real number overflow", start);
	v->u.d = d;
	return true;
}

static bool keys_equal(const tjs_member *a, const tjs_member *b)
{
	return a->keylen == b->keylen && tjs_bytes_equal(a->key, b->key, a->keylen);
}

static int cmp_member_keys(const void *x, const void *y)
{
	const tjs_member *a = *(const tjs_member *const *)x, *b = *(const tjs_member *const *)y;
	if (a->keylen != b->keylen)
		return a->keylen < b->keylen ? -1 : 1;
	return memcmp(a->key, b->key, a->keylen);
}

/* Pairwise for small objects; sorted for large ones, so that no choice of
 * keys (unlike hash collisions) makes the check quadratic. */
static bool has_duplicate(parser *ps, const tjs_member *m, size_t n)
{
	if (n <= 16) {
		for (size_t i = 1; i < n; i++)
			for (size_t j = 0; j < i; j++)
				if (keys_equal(&m[i], &m[j]))
					return true;
		return false;
	}
	tjs_arena_mark mark = tjs_arena_save(&ps->doc->arena);
	const tjs_member **sorted = tjs_arena_alloc_uninit(&ps->doc->arena, n * sizeof(*sorted));
	if (!sorted)
		return fail(ps, "out of memory", ps->p);
	for (size_t i = 0; i < n; i++)
		sorted[i] = &m[i];
	qsort(sorted, n, sizeof(*sorted), cmp_member_keys);
	bool dup = false;
	for (size_t i = 1; i < n && !dup; i++)
		dup = keys_equal(sorted[i - 1], sorted[i]);
	tjs_arena_restore(&ps->doc->arena, mark);
	return dup;
}

/* Pops the members of the innermost container into the arena. */
static bool close_container(parser *ps, tjs_value *v)
{
	frame *f = &ps->frames[--ps->nframes];
	size_t n = ps->ntmp - f->start;
	const tjs_member *src =
	    n ? ps->tmp + f->start : NULL; /* no array before the first member */
	v->type = f->type;
	v->n = n;
	v->u.items = NULL;
	if (f->type == JSON_OBJECT) {
		if (n) {
			tjs_member *m = tjs_arena_alloc_uninit(&ps->doc->arena, n * sizeof(*m));
			if (!m)
				return fail(ps, "out of memory", ps->p);
			memcpy(m, src, n * sizeof(*m));
			v->u.members = m;
			if (!(ps->flags & TJS_PARSE_ALLOW_DUPLICATES)) {
				bool dup = has_duplicate(ps, m, n);
				if (ps->error)
					return false;
				if (dup)
					return fail(ps, "duplicate object key", ps->p);
			}
		}
	} else if (n) {
		tjs_value *items = tjs_arena_alloc_uninit(&ps->doc->arena, n * sizeof(*items));
		if (!items)
			return fail(ps, "out of memory", ps->p);
		for (size_t i = 0; i < n; i++)
			items[i] = src[i].val;
		v->u.items = items;
	}
	ps->ntmp = f->start;
	return true;
}

static bool open_container(parser *ps, json_type type)
{
	if (ps->nframes >= MAX_DEPTH)
		return fail(ps, "maximum parsing depth reached", ps->p);
	if (ps->nframes == ps->capframes) {
		size_t cap = ps->capframes * 2;
		frame *f = grow_stack(ps->frames, ps->frames_inline, cap, ps->nframes, sizeof(*f));
		if (!f)
			return fail(ps, "out of memory", ps->p);
		ps->frames = f;
		ps->capframes = cap;
	}
	ps->frames[ps->nframes++] = (frame){type, ps->ntmp};
	ps->p++;
	return true;
}

/* Reads "key" : at an object member; leaves p at the value. */
static bool member_key(parser *ps)
{
	skip_ws(ps);
	if (ps->p >= ps->end || *ps->p != '"')
		return fail(ps, "string or '}' expected", ps->p);
	const char *k;
	size_t kn;
	if (!parse_string(ps, &k, &kn))
		return false;
	if (!tmp_push(ps, k, kn))
		return false;
	skip_ws(ps);
	if (ps->p >= ps->end || *ps->p != ':')
		return fail(ps, "':' expected", ps->p);
	ps->p++;
	return true;
}

static bool parse(parser *ps)
{
	tjs_value v;
	for (;;) {
		/* a value */
		skip_ws(ps);
		if (ps->p >= ps->end)
			return fail(ps, "premature end of input", ps->p);
		if (ps->nframes == 1 && ps->frames[0].type == JSON_OBJECT)
			ps->tmp[ps->ntmp - 1].raw = (const char *)ps->p;
		switch (*ps->p) {
		case '{':
			if (!open_container(ps, JSON_OBJECT))
				return false;
			skip_ws(ps);
			if (ps->p < ps->end && *ps->p == '}') {
				ps->p++;
				if (!close_container(ps, &v))
					return false;
				break;
			}
			if (!member_key(ps))
				return false;
			continue;
		case '[':
			if (!open_container(ps, JSON_ARRAY))
				return false;
			skip_ws(ps);
			if (ps->p < ps->end && *ps->p == ']') {
				ps->p++;
				if (!close_container(ps, &v))
					return false;
				break;
			}
			if (!tmp_push(ps, NULL, 0))
				return false;
			continue;
		case '"':
			v.type = JSON_STRING;
			if (!parse_string(ps, &v.u.s, &v.n))
				return false;
			break;
		case 't':
			if (ps->end - ps->p < 4 || memcmp(ps->p, "true", 4))
				return fail(ps, "invalid token", ps->p);
			v.type = JSON_TRUE;
			ps->p += 4;
			break;
		case 'f':
			if (ps->end - ps->p < 5 || memcmp(ps->p, "false", 5))
				return fail(ps, "invalid token", ps->p);
			v.type = JSON_FALSE;
			ps->p += 5;
			break;
		case 'n':
			if (ps->end - ps->p < 4 || memcmp(ps->p, "null", 4))
				return fail(ps, "invalid token", ps->p);
			v.type = JSON_NULL;
			ps->p += 4;
			break;
		default:
			v.n = 0;
			if (!parse_number(ps, &v))
				return false;
			break;
		}
		/* v is complete: store it, then close containers as they end */
		for (;;) {
			if (!ps->nframes) {
				ps->doc->root = v;
				skip_ws(ps);
				if (ps->p != ps->end)
					return fail(ps, "end of input expected", ps->p);
				return true;
			}
			tjs_member *m = &ps->tmp[ps->ntmp - 1];
			m->val = v;
			if (m->raw)
				m->rawlen = (size_t)((const char *)ps->p - m->raw);
			skip_ws(ps);
			if (ps->p >= ps->end)
				return fail(ps, "premature end of input", ps->p);
			unsigned char c = *ps->p;
			json_type t = ps->frames[ps->nframes - 1].type;
			if (c == ',') {
				ps->p++;
				if (t == JSON_OBJECT ? !member_key(ps) : !tmp_push(ps, NULL, 0))
					return false;
				break; /* next value */
			}
			if (c != (t == JSON_OBJECT ? '}' : ']'))
				return fail(ps,
				            t == JSON_OBJECT ? "',' or '}' expected"
				                             : "',' or ']' expected",
				            ps->p);
			ps->p++;
			if (!close_container(ps, &v))
				return false;
		}
	}
}

TJS_API tjs_doc *tjs_doc_parse(const char *bytes, size_t len, unsigned flags, char *err,
                               size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	tjs_doc *doc = malloc(sizeof(*doc) + len + 1);
	if (!doc || !bytes) {
		free(doc);
		if (err && errlen)
			snprintf(err, errlen, bytes ? "out of memory" : "no input");
		return NULL;
	}
	doc->arena.head = NULL;
	/* small documents (most events) need far less than a default chunk */
	doc->arena.first_chunk = len < 4000 ? 4 * len + 256 : 16384;
	doc->strings = (char *)(doc + 1);
	tjs_member tmp_inline[32];
	frame frames_inline[16];
	parser ps = {.tmp = tmp_inline,
	             .captmp = sizeof(tmp_inline) / sizeof(tmp_inline[0]),
	             .tmp_inline = tmp_inline,
	             .frames = frames_inline,
	             .capframes = sizeof(frames_inline) / sizeof(frames_inline[0]),
	             .frames_inline = frames_inline,
	             .p = (const unsigned char *)bytes,
	             .begin = (const unsigned char *)bytes,
	             .end = (const unsigned char *)bytes + len,
	             .flags = flags,
	             .doc = doc,
	             .sp = doc->strings};
	bool ok = parse(&ps);
	if (ps.tmp != tmp_inline)
		free(ps.tmp);
	if (ps.frames != frames_inline)
		free(ps.frames);
	if (ok)
		return doc;
	if (err && errlen) {
		size_t line = 1, col = 1;
		for (const unsigned char *q = ps.begin; q < ps.error_at && q < ps.end; q++) {
			if (*q == '\n') {
				line++;
				col = 1;
			} else {
				col++;
			}
		}
		snprintf(err, errlen, "%s at line %zu, column %zu", ps.error, line, col);
	}
	tjs_doc_free(doc);
	return NULL;
}

TJS_API void tjs_doc_free(tjs_doc *doc)
{
	if (!doc)
		return;
	tjs_arena_free(&doc->arena);
	free(doc);
}

TJS_API const tjs_value *tjs_doc_root(const tjs_doc *doc)
{
	return doc ? &doc->root : NULL;
}

/* ---- access ---- */

TJS_API json_type tjs_value_type(const tjs_value *v)
{
	return v ? v->type : JSON_NULL;
}

TJS_API const char *tjs_value_string(const tjs_value *v, size_t *len)
{
	bool ok = v && v->type == JSON_STRING;
	if (len)
		*len = ok ? v->n : 0;
	return ok ? v->u.s : NULL;
}

TJS_API json_int_t tjs_value_integer(const tjs_value *v)
{
	return v && v->type == JSON_INTEGER ? v->u.i : 0;
}

TJS_API double tjs_value_real(const tjs_value *v)
{
	if (!v)
		return 0;
	if (tjs_value_big(v))
		return strtod(v->u.s, NULL);
	return v->type == JSON_REAL ? v->u.d : v->type == JSON_INTEGER ? (double)v->u.i : 0;
}

TJS_API const char *tjs_value_number_text(const tjs_value *v, size_t *len)
{
	const char *s = v ? tjs_value_big(v) : NULL;
	if (len)
		*len = s ? v->n : 0;
	return s;
}

TJS_API size_t tjs_value_size(const tjs_value *v)
{
	return v && (v->type == JSON_ARRAY || v->type == JSON_OBJECT) ? v->n : 0;
}

TJS_API const tjs_value *tjs_value_at(const tjs_value *a, size_t i)
{
	return a && a->type == JSON_ARRAY && i < a->n ? &a->u.items[i] : NULL;
}

TJS_API const tjs_value *tjs_value_member(const tjs_value *o, size_t i, const char **key,
                                          size_t *keylen)
{
	bool ok = o && o->type == JSON_OBJECT && i < o->n;
	if (key)
		*key = ok ? o->u.members[i].key : NULL;
	if (keylen)
		*keylen = ok ? o->u.members[i].keylen : 0;
	return ok ? &o->u.members[i].val : NULL;
}

TJS_API bool tjs_value_member_raw(const tjs_value *o, size_t i, const char **raw, size_t *rawlen)
{
	bool ok = o && o->type == JSON_OBJECT && i < o->n && o->u.members[i].raw;
	*raw = ok ? o->u.members[i].raw : NULL;
	*rawlen = ok ? o->u.members[i].rawlen : 0;
	return ok;
}

TJS_API const tjs_value *tjs_value_get(const tjs_value *o, const char *key)
{
	if (!o || o->type != JSON_OBJECT || !key)
		return NULL;
	size_t kn = strlen(key);
	for (size_t i = 0; i < o->n; i++)
		if (o->u.members[i].keylen == kn && memcmp(o->u.members[i].key, key, kn) == 0)
			return &o->u.members[i].val;
	return NULL;
}

/* Depth is bounded by the parser (MAX_DEPTH), so recursion is too. */
TJS_API json_t *tjs_value_to_json(const tjs_value *v)
{
	if (!v)
		return NULL;
	switch (v->type) {
	case JSON_OBJECT: {
		json_t *o = json_object();
		for (size_t i = 0; o && i < v->n; i++) {
			const tjs_member *m = &v->u.members[i];
			if (json_object_setn_new_nocheck(o, m->key, m->keylen,
			                                 tjs_value_to_json(&m->val)) < 0) {
				json_decref(o);
				return NULL;
			}
		}
		return o;
	}
	case JSON_ARRAY: {
		json_t *a = json_array();
		for (size_t i = 0; a && i < v->n; i++) {
			if (json_array_append_new(a, tjs_value_to_json(&v->u.items[i])) < 0) {
				json_decref(a);
				return NULL;
			}
		}
		return a;
	}
	case JSON_STRING:
		return json_stringn_nocheck(v->u.s, v->n);
	case JSON_INTEGER:
		return json_integer(v->u.i);
	case JSON_REAL:
		return json_real(tjs_value_real(v)); /* NULL for inf */
	case JSON_TRUE:
		return json_true();
	case JSON_FALSE:
		return json_false();
	default:
		return json_null();
	}
}

char *tjs_value_short(const tjs_value *v)
{
	if (tjs_value_big(v)) {
		/* the literal (ASCII), cut like tjs_json_short's */
		char *s = malloc(61);
		if (s)
			snprintf(s, 61, v->n > 60 ? "%.57s..." : "%s", v->u.s);
		return s;
	}
	json_t *j = tjs_value_to_json(v);
	char *s = j ? tjs_json_short(j) : strdup("(value)");
	json_decref(j);
	return s;
}

/* A number as a literal: its own when kept, else as jansson's would be. */
static const char *number_text(const tjs_value *v, char buf[48])
{
	const char *big = tjs_value_big(v);
	if (big)
		return big;
	return tjs_number_literal(v->type == JSON_INTEGER, v->u.i, v->u.d, buf);
}

bool tjs_value_equal(const tjs_value *a, const tjs_value *b)
{
	bool an = a->type == JSON_INTEGER || a->type == JSON_REAL,
	     bn = b->type == JSON_INTEGER || b->type == JSON_REAL;
	if (an && bn && (tjs_value_big(a) || tjs_value_big(b))) {
		char x[48], y[48];
		return tjs_big_equal(number_text(a, x), number_text(b, y));
	}
	if (an && bn) {
		if (a->type == JSON_INTEGER && b->type == JSON_INTEGER)
			return a->u.i == b->u.i;
		return tjs_value_real(a) == tjs_value_real(b);
	}
	if (a->type != b->type)
		return false;
	switch (a->type) {
	case JSON_STRING:
		return a->n == b->n && memcmp(a->u.s, b->u.s, a->n) == 0;
	case JSON_ARRAY:
		if (a->n != b->n)
			return false;
		for (size_t i = 0; i < a->n; i++)
			if (!tjs_value_equal(&a->u.items[i], &b->u.items[i]))
				return false;
		return true;
	case JSON_OBJECT:
		if (a->n != b->n)
			return false;
		for (size_t i = 0; i < a->n; i++) {
			const tjs_member *m = &a->u.members[i];
			const tjs_value *w = NULL;
			for (size_t k = 0; k < b->n && !w; k++)
				if (keys_equal(m, &b->u.members[k]))
					w = &b->u.members[k].val;
			if (!w || !tjs_value_equal(&m->val, w))
				return false;
		}
		return true;
	default:
		return true;
	}
}

bool tjs_value_equal_json(const tjs_value *a, const json_t *b)
{
	bool an = a->type == JSON_INTEGER || a->type == JSON_REAL;
	if (tjs_value_big(a) && json_is_number(b)) {
		char buf[48];
		return tjs_big_equal(a->u.s,
		                     tjs_number_literal(json_is_integer(b), json_integer_value(b),
		                                        json_real_value(b), buf));
	}
	if (an && json_is_number(b)) {
		if (a->type == JSON_INTEGER && json_is_integer(b))
			return a->u.i == json_integer_value(b);
		return tjs_value_real(a) == tjs_number(b);
	}
	if (a->type != json_typeof(b))
		return false;
	switch (a->type) {
	case JSON_STRING:
		return a->n == json_string_length(b) &&
		       memcmp(a->u.s, json_string_value(b), a->n) == 0;
	case JSON_ARRAY:
		if (a->n != json_array_size(b))
			return false;
		for (size_t i = 0; i < a->n; i++)
			if (!tjs_value_equal_json(&a->u.items[i], json_array_get(b, i)))
				return false;
		return true;
	case JSON_OBJECT:
		if (a->n != json_object_size(b))
			return false;
		for (size_t i = 0; i < a->n; i++) {
			const tjs_member *m = &a->u.members[i];
			const json_t *w = json_object_getn(b, m->key, m->keylen);
			if (!w || !tjs_value_equal_json(&m->val, w))
				return false;
		}
		return true;
	default:
		return true;
	}
}

/* ---- compact text, as tb_json_encode writes it ---- */

static void dump_string(tjs_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t start = 0;
	tjs_buf_putc(b, '"');
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		tjs_buf_add(b, s + start, i - start);
		start = i + 1;
		switch (c) {
		case '"':
			tjs_buf_add(b, "\\\"", 2);
			break;
		case '\\':
			tjs_buf_add(b, "\\\\", 2);
			break;
		case '\n':
			tjs_buf_add(b, "\\n", 2);
			break;
		case '\r':
			tjs_buf_add(b, "\\r", 2);
			break;
		case '\t':
			tjs_buf_add(b, "\\t", 2);
			break;
		case '\b':
			tjs_buf_add(b, "\\b", 2);
			break;
		case '\f':
			tjs_buf_add(b, "\\f", 2);
			break;
		default: {
			char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
			tjs_buf_add(b, u, 6);
		}
		}
	}
	tjs_buf_add(b, s + start, n - start);
	tjs_buf_putc(b, '"');
}

static void dump_real(tjs_buf *b, double d)
{
	char tmp[TB_JSON_REAL_LEN];
	tjs_buf_puts(b, tb_json_real(tmp, d));
}

static void dump_value(tjs_buf *b, const tjs_value *v)
{
	switch (v->type) {
	case JSON_OBJECT:
		tjs_buf_putc(b, '{');
		for (size_t i = 0; i < v->n; i++) {
			if (i)
				tjs_buf_putc(b, ',');
			dump_string(b, v->u.members[i].key, v->u.members[i].keylen);
			tjs_buf_putc(b, ':');
			dump_value(b, &v->u.members[i].val);
		}
		tjs_buf_putc(b, '}');
		break;
	case JSON_ARRAY:
		tjs_buf_putc(b, '[');
		for (size_t i = 0; i < v->n; i++) {
			if (i)
				tjs_buf_putc(b, ',');
			dump_value(b, &v->u.items[i]);
		}
		tjs_buf_putc(b, ']');
		break;
	case JSON_STRING:
		dump_string(b, v->u.s, v->n);
		break;
	case JSON_INTEGER:
		tjs_buf_printf(b, "%" JSON_INTEGER_FORMAT, v->u.i);
		break;
	case JSON_REAL:
		if (v->n)
			tjs_buf_add(b, v->u.s, v->n); /* kept exactly */
		else
			dump_real(b, v->u.d);
		break;
	case JSON_TRUE:
		tjs_buf_add(b, "true", 4);
		break;
	case JSON_FALSE:
		tjs_buf_add(b, "false", 5);
		break;
	default:
		tjs_buf_add(b, "null", 4);
		break;
	}
}

TJS_API char *tjs_value_dump(const tjs_value *v, size_t *len)
{
	if (!v)
		return NULL;
	tjs_buf b = {0};
	dump_value(&b, v);
	size_t n = b.len;
	char *s = tjs_buf_take(&b);
	if (s && len)
		*len = n;
	return s;
}
