/*
 * JSON data -> Avro binary (tributary/avro.h), validated on the way: the
 * parsed JSON (a tjs_value, as the ingest path has it) is walked along the
 * libavro-parsed schema and its binary encoding written straight into the
 * caller's reusable buffer, as the specification defines it (zig-zag
 * varints, length-prefixed strings, IEEE floats little-endian, arrays and
 * maps as one block and its end): no jansson tree, no libavro value, no
 * allocation per event once the buffer has grown. The bytes are the ones
 * libavro's generic value writes (tests/unit/test_avro_diff.c checks that
 * on many inputs). The JSON is Avro's JSON encoding, as Confluent's REST
 * Proxy takes it:
 *
 *   null, boolean, string   JSON null, true/false, a string
 *   int, long               a JSON integer within the type's range
 *   float, double           a JSON number (float: within its range)
 *   bytes, fixed            a string of code points 0-255, one per byte
 *                           (fixed: exactly its size)
 *   enum                    the symbol as a string
 *   array, map              a JSON array, a JSON object
 *   record                  an object of its fields; a missing field takes
 *                           its default, a field without default is
 *                           required; a member that is no field is refused
 *                           (a misspelt field would otherwise be dropped)
 *   union                   null, or {"BRANCH": value} where BRANCH is the
 *                           branch's type name (a named type's full name);
 *                           for a union of null and one other type, the
 *                           bare value is taken too (what JSON producers
 *                           write; decoding writes the wrapped form)
 *
 * Logical types are their underlying type (libavro 1.11 reads none: a
 * date is its int, a decimal its bytes). A field's default is in the same
 * encoding, except that a union's default is its first branch's value,
 * unwrapped (the specification's rule). libavro keeps no defaults, so
 * tb_avro__defaults collects them from the schema's JSON at parse time
 * (kept as a tjs document too, for the walk).
 *
 * Errors name the JSON path (a JSON Pointer into the data, "/" for the
 * data itself) and what was expected there.
 */
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "avro_int.h"

#define ENC_MAX_DEPTH 128
#define ENC_PATH_LEN 512

/* A step of the path to the value being encoded: a member, or an index
 * when key is NULL. The path is only formatted for an error. */
typedef struct {
	const char *key;
	size_t idx;
} enc_seg;

typedef struct {
	const tb_avro_schema *s;
	tb_avro_buf *out;
	enc_seg seg[ENC_MAX_DEPTH + 2];
	int nseg;
	int depth;
	char *err;
	size_t errlen;
} enc;

/* ---- defaults, collected from the schema's JSON ---- */

static void defaults_collect(json_t *node, const char *ns, json_t *out);

static void defaults_named(json_t *node, const char *type, const char *ns, json_t *out)
{
	const char *name = json_string_value(json_object_get(node, "name"));
	const char *own_ns = json_string_value(json_object_get(node, "namespace"));
	char full[512], child_ns[512];
	if (!name)
		return;
	if (strchr(name, '.')) {
		snprintf(full, sizeof(full), "%s", name);
		snprintf(child_ns, sizeof(child_ns), "%.*s", (int)(strrchr(name, '.') - name),
		         name);
	} else {
		const char *n = own_ns ? own_ns : ns;
		if (n && *n)
			snprintf(full, sizeof(full), "%s.%s", n, name);
		else
			snprintf(full, sizeof(full), "%s", name);
		snprintf(child_ns, sizeof(child_ns), "%s", n ? n : "");
	}
	if (strcmp(type, "record") && strcmp(type, "error"))
		return;
	json_t *fields = json_object_get(node, "fields"), *f, *defs = json_object();
	size_t i;
	json_array_foreach(fields, i, f)
	{
		const char *fname = json_string_value(json_object_get(f, "name"));
		json_t *d = json_object_get(f, "default");
		if (fname && d)
			json_object_set(defs, fname, d);
		defaults_collect(json_object_get(f, "type"), child_ns, out);
	}
	json_object_set_new(out, full, defs);
}

static void defaults_collect(json_t *node, const char *ns, json_t *out)
{
	size_t i;
	json_t *x;
	if (json_is_array(node)) {
		json_array_foreach(node, i, x) defaults_collect(x, ns, out);
		return;
	}
	if (!json_is_object(node))
		return;
	json_t *t = json_object_get(node, "type");
	const char *type = json_string_value(t);
	if (!type) {
		defaults_collect(t, ns, out);
		return;
	}
	if (!strcmp(type, "record") || !strcmp(type, "error") || !strcmp(type, "enum") ||
	    !strcmp(type, "fixed"))
		defaults_named(node, type, ns, out);
	else if (!strcmp(type, "array"))
		defaults_collect(json_object_get(node, "items"), ns, out);
	else if (!strcmp(type, "map"))
		defaults_collect(json_object_get(node, "values"), ns, out);
}

json_t *tb_avro__defaults(const char *text, size_t len)
{
	json_t *doc = json_loadb(text, len, JSON_DECODE_ANY, NULL);
	json_t *out = json_object();
	if (out)
		defaults_collect(doc, "", out);
	json_decref(doc);
	return out;
}

/* ---- errors and paths ---- */

/* Appends /token, RFC 6901 escaped, to path (of *len bytes, at most
 * ENC_PATH_LEN - 1). */
static void path_append(char *path, size_t *len, const char *token)
{
	if (*len + 1 < ENC_PATH_LEN)
		path[(*len)++] = '/';
	for (const char *p = token; *p && *len + 2 < ENC_PATH_LEN; p++) {
		if (*p == '~' || *p == '/') {
			path[(*len)++] = '~';
			path[(*len)++] = *p == '~' ? '0' : '1';
		} else {
			path[(*len)++] = *p;
		}
	}
	path[*len] = '\0';
}

static int enc_fail(enc *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int enc_fail(enc *e, const char *fmt, ...)
{
	char what[512], path[ENC_PATH_LEN] = "/", idx[24];
	size_t len = 0;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	for (int i = 0; i < e->nseg && i < ENC_MAX_DEPTH + 2; i++) {
		if (!e->seg[i].key)
			snprintf(idx, sizeof(idx), "%zu", e->seg[i].idx);
		path_append(path, &len, e->seg[i].key ? e->seg[i].key : idx);
	}
	snprintf(e->err, e->errlen, "%s: %s", path, what);
	return -1;
}

static void seg_push(enc *e, const char *key, size_t idx)
{
	if (e->nseg < ENC_MAX_DEPTH + 2)
		e->seg[e->nseg] = (enc_seg){key, idx};
	e->nseg++;
}

static void seg_pop(enc *e)
{
	e->nseg--;
}

static const char *json_kind(const tjs_value *j)
{
	switch (tjs_value_type(j)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
		return "an integer";
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	default:
		return "null";
	}
}

static bool is_named(avro_schema_t s)
{
	return is_avro_record(s) || is_avro_enum(s) || is_avro_fixed(s);
}

/* A named type's full name (namespace.name), else its type name. */
static const char *full_name(avro_schema_t s, char *buf, size_t len)
{
	const char *ns = avro_schema_namespace(s);
	const char *name = avro_schema_type_name(s);
	if (ns && *ns && is_named(s)) {
		snprintf(buf, len, "%s.%s", ns, name);
		return buf;
	}
	return name;
}

/* Whether key (keylen bytes) is s's full_name, without formatting it. */
static bool full_name_is(avro_schema_t s, const char *key, size_t keylen)
{
	const char *ns = avro_schema_namespace(s);
	const char *name = avro_schema_type_name(s);
	size_t nl = strlen(name);
	if (ns && *ns && is_named(s)) {
		size_t nsl = strlen(ns);
		return keylen == nsl + 1 + nl && !memcmp(key, ns, nsl) && key[nsl] == '.' &&
		       !memcmp(key + nsl + 1, name, nl);
	}
	return keylen == nl && !memcmp(key, name, nl);
}

/* ---- the output ---- */

/* Room for n more bytes in the output. */
static int reserve(enc *e, size_t n)
{
	tb_avro_buf *b = e->out;
	if (b->cap - b->len >= n)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap - b->len < n)
		cap *= 2;
	unsigned char *d = realloc(b->data, cap);
	if (!d)
		return enc_fail(e, "out of memory");
	b->data = d;
	b->cap = cap;
	return 0;
}

static int put_bytes(enc *e, const void *p, size_t n)
{
	if (reserve(e, n))
		return -1;
	if (n)
		memcpy(e->out->data + e->out->len, p, n);
	e->out->len += n;
	return 0;
}

/* int and long: zig-zag, then a little-endian base-128 varint. */
static int put_long(enc *e, int64_t v)
{
	uint64_t z = ((uint64_t)v << 1) ^ (0 - (uint64_t)(v < 0));
	if (reserve(e, 10))
		return -1;
	unsigned char *o = e->out->data + e->out->len;
	size_t n = 0;
	while (z > 0x7F) {
		o[n++] = (unsigned char)(z | 0x80);
		z >>= 7;
	}
	o[n++] = (unsigned char)z;
	e->out->len += n;
	return 0;
}

/* float and double: IEEE 754, little-endian. */
static int put_le(enc *e, uint64_t bits, size_t n)
{
	unsigned char b[8];
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(bits >> (8 * i));
	return put_bytes(e, b, n);
}

/* ---- the walk ---- */

static int enc_value(enc *e, avro_schema_t s, const tjs_value *j, bool dflt);

/* A string of code points 0-255 as bytes: how many (checked first, as
 * bytes are written after their length). */
static int latin1_count(enc *e, const tjs_value *j, size_t *n)
{
	size_t len;
	const unsigned char *p = (const unsigned char *)tjs_value_string(j, &len);
	*n = 0;
	for (size_t i = 0; i < len; i++, (*n)++) {
		/* the parser's strings are valid UTF-8: U+0080-U+00FF are C2/C3 xx */
		if (p[i] < 0x80)
			continue;
		if ((p[i] == 0xC2 || p[i] == 0xC3) && i + 1 < len) {
			i++;
			continue;
		}
		return enc_fail(e,
		                "expected bytes as a string of code points 0-255 (one per byte), "
		                "got a character above U+00FF at offset %zu",
		                i);
	}
	return 0;
}

/* The n bytes latin1_count counted. */
static int latin1_write(enc *e, const tjs_value *j, size_t n)
{
	size_t len;
	const unsigned char *p = (const unsigned char *)tjs_value_string(j, &len);
	if (reserve(e, n))
		return -1;
	unsigned char *o = e->out->data + e->out->len;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < 0x80) {
			*o++ = p[i];
		} else {
			*o++ = (unsigned char)(((p[i] & 0x03) << 6) | (p[i + 1] & 0x3F));
			i++;
		}
	}
	e->out->len += n;
	return 0;
}

static int enc_bytes(enc *e, avro_schema_t s, const tjs_value *j)
{
	bool fixed = is_avro_fixed(s);
	char nb[512];
	size_t n;
	if (tjs_value_type(j) != JSON_STRING)
		return fixed ? enc_fail(e, "expected fixed %s (a string of %lld bytes), got %s",
		                        full_name(s, nb, sizeof(nb)),
		                        (long long)avro_schema_fixed_size(s), json_kind(j))
		             : enc_fail(e, "expected bytes (a string), got %s", json_kind(j));
	if (latin1_count(e, j, &n))
		return -1;
	if (fixed && (int64_t)n != avro_schema_fixed_size(s))
		return enc_fail(e, "expected fixed %s of %lld bytes, got %zu bytes",
		                full_name(s, nb, sizeof(nb)), (long long)avro_schema_fixed_size(s),
		                n);
	if (!fixed && put_long(e, (int64_t)n))
		return -1;
	return latin1_write(e, j, n);
}

/* Member `name` of object j; *hint is where the previous field was found,
 * as members mostly come in the schema's order. */
static const tjs_value *record_member(const tjs_value *j, const char *name, size_t *hint)
{
	size_t n = tjs_value_size(j), nl = strlen(name);
	for (size_t k = 0; k < n; k++) {
		size_t i = *hint + k < n ? *hint + k : *hint + k - n, keylen;
		const char *key;
		const tjs_value *v = tjs_value_member(j, i, &key, &keylen);
		if (keylen == nl && !memcmp(key, name, nl)) {
			*hint = i + 1 < n ? i + 1 : 0;
			return v;
		}
	}
	return NULL;
}

static int enc_record(enc *e, avro_schema_t s, const tjs_value *j)
{
	char nb[512];
	const char *name = NULL; /* full_name, when needed */
	if (tjs_value_type(j) != JSON_OBJECT)
		return enc_fail(e, "expected record %s (an object), got %s",
		                full_name(s, nb, sizeof(nb)), json_kind(j));
	size_t nfields = avro_schema_record_size(s), given = 0, hint = 0;
	for (size_t i = 0; i < nfields; i++) {
		const char *fname = avro_schema_record_field_name(s, (int)i);
		avro_schema_t fs = avro_schema_record_field_get_by_index(s, (int)i);
		const tjs_value *fj = record_member(j, fname, &hint);
		bool dflt = false;
		given += fj != NULL;
		seg_push(e, fname, 0);
		if (!fj) {
			if (!name)
				name = full_name(s, nb, sizeof(nb));
			fj = tjs_value_get(tjs_value_get(tjs_doc_root(e->s->defaults_doc), name),
			                   fname);
			dflt = true;
		}
		int rc;
		if (!fj)
			rc = enc_fail(e, "required field of record %s missing (it has no default)",
			              name);
		else if ((rc = enc_value(e, fs, fj, dflt)) && dflt)
			enc_fail(e, "the default of this field of record %s is not valid", name);
		seg_pop(e);
		if (rc)
			return rc;
	}
	if (given == tjs_value_size(j))
		return 0;
	/* a member that is no field */
	for (size_t i = 0; i < tjs_value_size(j); i++) {
		const char *key;
		tjs_value_member(j, i, &key, NULL);
		if (avro_schema_record_field_get_index(s, key) < 0) {
			seg_push(e, key, 0);
			int rc =
			    enc_fail(e, "not a field of record %s", full_name(s, nb, sizeof(nb)));
			seg_pop(e);
			return rc;
		}
	}
	return 0;
}

static avro_schema_t union_branch_at(avro_schema_t s, size_t i)
{
	avro_schema_t b = avro_schema_union_branch(s, (int)i);
	return is_avro_link(b) ? avro_schema_link_target(b) : b;
}

/* Which branch a union's JSON value takes: *bj is the branch's value. */
static int union_branch(enc *e, avro_schema_t s, const tjs_value *j, bool dflt, int *idx,
                        const tjs_value **bj)
{
	size_t n = avro_schema_union_size(s);
	int null_idx = -1, other = -1;
	char nb[512], names[1024] = "";
	size_t nl = 0;
	*bj = j;
	if (dflt) { /* a default is its first branch's value */
		*idx = 0;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		if (is_avro_null(union_branch_at(s, i)))
			null_idx = (int)i;
		else
			other = other == -1 ? (int)i : -2;
	}
	if (tjs_value_type(j) == JSON_NULL && null_idx >= 0) {
		*idx = null_idx;
		return 0;
	}
	if (tjs_value_type(j) == JSON_OBJECT && tjs_value_size(j) == 1) {
		const char *key;
		const tjs_value *v = tjs_value_member(j, 0, &key, NULL);
		size_t keylen = strlen(key); /* as a C string, as jansson's keys */
		for (size_t i = 0; i < n; i++) {
			if (full_name_is(union_branch_at(s, i), key, keylen)) {
				*idx = (int)i;
				*bj = v;
				return 0;
			}
		}
	}
	if (null_idx >= 0 && other >= 0 && n == 2) { /* ["null", T]: a bare T too */
		*idx = other;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		nl += (size_t)snprintf(names + nl, nl < sizeof(names) ? sizeof(names) - nl : 0,
		                       "%s%s", i ? ", " : "",
		                       full_name(union_branch_at(s, i), nb, sizeof(nb)));
	return enc_fail(
	    e, "expected a union value: %s{\"BRANCH\": value} with BRANCH one of %s; got %s",
	    null_idx >= 0 ? "null or " : "", names, json_kind(j));
}

/* A number beyond a double's range (the parser keeps its literal; jansson
 * refuses it). */
static int enc_out_of_range(enc *e, const tjs_value *j, const char *what)
{
	size_t len;
	const char *lit = tjs_value_number_text(j, &len);
	return enc_fail(e, "%.*s is out of range for %s", lit ? (int)(len < 64 ? len : 64) : 3,
	                lit ? lit : "inf", what);
}

static int enc_value(enc *e, avro_schema_t s, const tjs_value *j, bool dflt)
{
	char nb[512];
	int rc = 0;
	json_type t = tjs_value_type(j);
	if (++e->depth > ENC_MAX_DEPTH) {
		e->depth--;
		return enc_fail(e, "nested deeper than %d", ENC_MAX_DEPTH);
	}
	switch (avro_typeof(s)) {
	case AVRO_STRING: {
		size_t len;
		const char *str = tjs_value_string(j, &len);
		if (t != JSON_STRING)
			rc = enc_fail(e, "expected a string, got %s", json_kind(j));
		else
			rc = put_long(e, (int64_t)len) || put_bytes(e, str, len) ? -1 : 0;
		break;
	}
	case AVRO_BYTES:
	case AVRO_FIXED:
		rc = enc_bytes(e, s, j);
		break;
	case AVRO_INT32:
		if (t != JSON_INTEGER)
			rc = enc_fail(e, "expected an int, got %s", json_kind(j));
		else if (tjs_value_integer(j) < INT32_MIN || tjs_value_integer(j) > INT32_MAX)
			rc = enc_fail(e, "%lld is out of range for an int (32 bits)",
			              (long long)tjs_value_integer(j));
		else
			rc = put_long(e, tjs_value_integer(j));
		break;
	case AVRO_INT64:
		/* an integer beyond 64 bits is a JSON_REAL (a number) */
		if (t != JSON_INTEGER)
			rc = enc_fail(e, "expected a long, got %s", json_kind(j));
		else
			rc = put_long(e, tjs_value_integer(j));
		break;
	case AVRO_FLOAT: {
		double d = tjs_value_real(j);
		float f = (float)d;
		uint32_t bits;
		if (t != JSON_INTEGER && t != JSON_REAL)
			rc = enc_fail(e, "expected a float, got %s", json_kind(j));
		else if (!isfinite(d))
			rc = enc_out_of_range(e, j, "a float");
		else if (fabs(d) > FLT_MAX)
			rc = enc_fail(e, "%g is out of range for a float", d);
		else {
			memcpy(&bits, &f, sizeof(bits));
			rc = put_le(e, bits, 4);
		}
		break;
	}
	case AVRO_DOUBLE: {
		double d = tjs_value_real(j);
		uint64_t bits;
		if (t != JSON_INTEGER && t != JSON_REAL)
			rc = enc_fail(e, "expected a double, got %s", json_kind(j));
		else if (!isfinite(d))
			rc = enc_out_of_range(e, j, "a double");
		else {
			memcpy(&bits, &d, sizeof(bits));
			rc = put_le(e, bits, 8);
		}
		break;
	}
	case AVRO_BOOLEAN:
		if (t != JSON_TRUE && t != JSON_FALSE)
			rc = enc_fail(e, "expected a boolean, got %s", json_kind(j));
		else
			rc = put_bytes(e, t == JSON_TRUE ? "\1" : "\0", 1);
		break;
	case AVRO_NULL:
		if (t != JSON_NULL)
			rc = enc_fail(e, "expected null, got %s", json_kind(j));
		break;
	case AVRO_ENUM: {
		const char *sym_name = tjs_value_string(j, NULL);
		int sym = sym_name ? avro_schema_enum_get_by_name(s, sym_name) : -1;
		if (sym < 0)
			rc = sym_name
			         ? enc_fail(e, "\"%.200s\" is not a symbol of enum %s", sym_name,
			                    full_name(s, nb, sizeof(nb)))
			         : enc_fail(e, "expected a symbol of enum %s (a string), got %s",
			                    full_name(s, nb, sizeof(nb)), json_kind(j));
		else
			rc = put_long(e, sym);
		break;
	}
	case AVRO_RECORD:
		rc = enc_record(e, s, j);
		break;
	case AVRO_ARRAY:
	case AVRO_MAP: {
		/* one block of all the items (when there are any), then its end */
		bool map = is_avro_map(s);
		avro_schema_t items = map ? avro_schema_map_values(s) : avro_schema_array_items(s);
		size_t n = tjs_value_size(j);
		if (t != (map ? JSON_OBJECT : JSON_ARRAY)) {
			rc = map ? enc_fail(e, "expected a map (an object), got %s", json_kind(j))
			         : enc_fail(e, "expected an array, got %s", json_kind(j));
			break;
		}
		if (n)
			rc = put_long(e, (int64_t)n);
		for (size_t i = 0; i < n && !rc; i++) {
			const char *key = NULL;
			const tjs_value *x =
			    map ? tjs_value_member(j, i, &key, NULL) : tjs_value_at(j, i);
			seg_push(e, key, i);
			if (map &&
			    (put_long(e, (int64_t)strlen(key)) || put_bytes(e, key, strlen(key))))
				rc = -1;
			else
				rc = enc_value(e, items, x, dflt);
			seg_pop(e);
		}
		if (!rc)
			rc = put_long(e, 0);
		break;
	}
	case AVRO_UNION: {
		int idx = 0;
		const tjs_value *bj;
		if (!(rc = union_branch(e, s, j, dflt, &idx, &bj)) && !(rc = put_long(e, idx)))
			rc = enc_value(e, avro_schema_union_branch(s, idx), bj, false);
		break;
	}
	case AVRO_LINK:
		rc = enc_value(e, avro_schema_link_target(s), j, dflt);
		break;
	default:
		rc = enc_fail(e, "unsupported Avro type %s", avro_schema_type_name(s));
	}
	e->depth--;
	return rc;
}

int tb_avro_encode_value(const tb_avro_schema *s, const tjs_value *data, tb_avro_buf *out,
                         char *err, size_t errlen)
{
	enc e = {.s = s, .out = out, .err = err, .errlen = errlen};
	out->len = 0;
	if (reserve(&e, 1)) /* data is never NULL, even for an empty encoding */
		return -1;
	return enc_value(&e, s->schema, data, false);
}

void tb_avro_buf_free(tb_avro_buf *b)
{
	free(b->data);
	*b = (tb_avro_buf){0};
}
