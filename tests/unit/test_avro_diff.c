/* The Avro encoder (shared/avro/encode.c, which writes the binary encoding
 * itself) against the one it replaced, kept here as the oracle: the JSON
 * walked into a libavro generic value that libavro writes. On many
 * generated inputs, valid and not (every Avro type, unions bare and
 * wrapped, defaults, out-of-range numbers, bytes beyond U+00FF, missing and
 * unknown fields), both must accept the same data with the same bytes, and
 * refuse the same data with the same error, JSON path included; through
 * tb_avro_encode_json and through tb_avro_encode_value on the document the
 * ingest path parses, reusing one buffer. */
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "avro_json.h"
#include "../../shared/avro/avro_int.h"

#define ENC_MAX_DEPTH 128
#define ENC_PATH_LEN 512

/* ---- the oracle: encode.c as it was, libavro's generic value ---- */

typedef struct {
	const char *key;
	size_t idx;
} enc_seg;

typedef struct {
	const tb_avro_schema *s;
	enc_seg seg[ENC_MAX_DEPTH + 2];
	int nseg;
	int depth;
	char *err;
	size_t errlen;
} enc;

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

static const char *json_kind(const json_t *j)
{
	switch (json_typeof(j)) {
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

/* A named type's full name (namespace.name), else its type name. */
static const char *full_name(avro_schema_t s, char *buf, size_t len)
{
	const char *ns = avro_schema_namespace(s);
	const char *name = avro_schema_type_name(s);
	if (ns && *ns && (is_avro_record(s) || is_avro_enum(s) || is_avro_fixed(s))) {
		snprintf(buf, len, "%s.%s", ns, name);
		return buf;
	}
	return name;
}

/* ---- the walk ---- */

static int enc_value(enc *e, avro_schema_t s, avro_value_t *v, const json_t *j, bool dflt);

/* A string of code points 0-255 into bytes (*n of them, malloc'd). */
static unsigned char *latin1(enc *e, const json_t *j, size_t *n)
{
	const unsigned char *p = (const unsigned char *)json_string_value(j);
	size_t len = json_string_length(j);
	unsigned char *out = malloc(len + 1), *o = out;
	if (!out) {
		enc_fail(e, "out of memory");
		return NULL;
	}
	for (size_t i = 0; i < len; i++) {
		/* jansson's strings are valid UTF-8: U+0080-U+00FF are C2/C3 xx */
		if (p[i] < 0x80) {
			*o++ = p[i];
		} else if ((p[i] == 0xC2 || p[i] == 0xC3) && i + 1 < len) {
			*o++ = (unsigned char)(((p[i] & 0x03) << 6) | (p[i + 1] & 0x3F));
			i++;
		} else {
			free(out);
			enc_fail(e,
			         "expected bytes as a string of code points 0-255 (one per byte), "
			         "got a character above U+00FF at offset %zu",
			         i);
			return NULL;
		}
	}
	*n = (size_t)(o - out);
	return out;
}

static int enc_bytes(enc *e, avro_schema_t s, avro_value_t *v, const json_t *j)
{
	bool fixed = is_avro_fixed(s);
	char nb[512];
	if (!json_is_string(j))
		return fixed ? enc_fail(e, "expected fixed %s (a string of %lld bytes), got %s",
		                        full_name(s, nb, sizeof(nb)),
		                        (long long)avro_schema_fixed_size(s), json_kind(j))
		             : enc_fail(e, "expected bytes (a string), got %s", json_kind(j));
	size_t n;
	unsigned char *b = latin1(e, j, &n);
	if (!b)
		return -1;
	int rc;
	if (fixed && (int64_t)n != avro_schema_fixed_size(s))
		rc =
		    enc_fail(e, "expected fixed %s of %lld bytes, got %zu bytes",
		             full_name(s, nb, sizeof(nb)), (long long)avro_schema_fixed_size(s), n);
	else if (fixed ? avro_value_set_fixed(v, b, n) : avro_value_set_bytes(v, b, n))
		rc = enc_fail(e, "%s", avro_strerror());
	else
		rc = 0;
	free(b);
	return rc;
}

static int enc_record(enc *e, avro_schema_t s, avro_value_t *v, const json_t *j)
{
	char nb[512];
	const char *name = NULL; /* full_name, when needed */
	if (!json_is_object(j))
		return enc_fail(e, "expected record %s (an object), got %s",
		                full_name(s, nb, sizeof(nb)), json_kind(j));
	size_t nfields = avro_schema_record_size(s), given = 0;
	for (size_t i = 0; i < nfields; i++) {
		const char *fname = avro_schema_record_field_name(s, (int)i);
		avro_schema_t fs = avro_schema_record_field_get_by_index(s, (int)i);
		avro_value_t child;
		const json_t *fj = json_object_get(j, fname);
		bool dflt = false;
		given += fj != NULL;
		seg_push(e, fname, 0);
		if (!fj) {
			if (!name)
				name = full_name(s, nb, sizeof(nb));
			fj = json_object_get(json_object_get(e->s->defaults, name), fname);
			dflt = true;
		}
		int rc;
		if (!fj)
			rc = enc_fail(e, "required field of record %s missing (it has no default)",
			              name);
		else if (avro_value_get_by_index(v, i, &child, NULL))
			rc = enc_fail(e, "%s", avro_strerror());
		else if ((rc = enc_value(e, fs, &child, fj, dflt)) && dflt)
			enc_fail(e, "the default of this field of record %s is not valid", name);
		seg_pop(e);
		if (rc)
			return rc;
	}
	if (given == json_object_size(j))
		return 0;
	/* a member that is no field */
	const char *key;
	json_t *val;
	json_object_foreach((json_t *)j, key, val)
	{
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

/* Which branch a union's JSON value takes: *bj is the branch's value. */
static int union_branch(enc *e, avro_schema_t s, const json_t *j, bool dflt, int *idx,
                        const json_t **bj)
{
	size_t n = avro_schema_union_size(s);
	int null_idx = -1, other = -1;
	char nb[512], names[1024] = "";
	size_t nl = 0;
	for (size_t i = 0; i < n; i++) {
		avro_schema_t b = avro_schema_union_branch(s, (int)i);
		if (is_avro_link(b))
			b = avro_schema_link_target(b);
		if (is_avro_null(b))
			null_idx = (int)i;
		else
			other = other == -1 ? (int)i : -2;
	}
	*bj = j;
	if (dflt) { /* a default is its first branch's value */
		*idx = 0;
		return 0;
	}
	if (json_is_null(j) && null_idx >= 0) {
		*idx = null_idx;
		return 0;
	}
	if (json_is_object(j) && json_object_size(j) == 1) {
		const char *key = json_object_iter_key(json_object_iter((json_t *)j));
		for (size_t i = 0; i < n; i++) {
			avro_schema_t b = avro_schema_union_branch(s, (int)i);
			if (is_avro_link(b))
				b = avro_schema_link_target(b);
			if (!strcmp(key, full_name(b, nb, sizeof(nb)))) {
				*idx = (int)i;
				*bj = json_object_iter_value(json_object_iter((json_t *)j));
				return 0;
			}
		}
	}
	if (null_idx >= 0 && other >= 0 && n == 2) { /* ["null", T]: a bare T too */
		*idx = other;
		return 0;
	}
	for (size_t i = 0; i < n; i++) {
		avro_schema_t b = avro_schema_union_branch(s, (int)i);
		if (is_avro_link(b))
			b = avro_schema_link_target(b);
		nl += (size_t)snprintf(names + nl, nl < sizeof(names) ? sizeof(names) - nl : 0,
		                       "%s%s", i ? ", " : "", full_name(b, nb, sizeof(nb)));
	}
	return enc_fail(
	    e, "expected a union value: %s{\"BRANCH\": value} with BRANCH one of %s; got %s",
	    null_idx >= 0 ? "null or " : "", names, json_kind(j));
}

static int enc_value(enc *e, avro_schema_t s, avro_value_t *v, const json_t *j, bool dflt)
{
	char nb[512];
	int rc = 0;
	if (++e->depth > ENC_MAX_DEPTH) {
		e->depth--;
		return enc_fail(e, "nested deeper than %d", ENC_MAX_DEPTH);
	}
	switch (avro_typeof(s)) {
	case AVRO_STRING:
		if (!json_is_string(j))
			rc = enc_fail(e, "expected a string, got %s", json_kind(j));
		else if (avro_value_set_string_len(v, json_string_value(j),
		                                   json_string_length(j) + 1))
			rc = enc_fail(e, "%s", avro_strerror());
		break;
	case AVRO_BYTES:
	case AVRO_FIXED:
		rc = enc_bytes(e, s, v, j);
		break;
	case AVRO_INT32:
		if (!json_is_integer(j))
			rc = enc_fail(e, "expected an int, got %s", json_kind(j));
		else if (json_integer_value(j) < INT32_MIN || json_integer_value(j) > INT32_MAX)
			rc = enc_fail(e, "%lld is out of range for an int (32 bits)",
			              (long long)json_integer_value(j));
		else
			rc = avro_value_set_int(v, (int32_t)json_integer_value(j));
		break;
	case AVRO_INT64:
		/* jansson refuses integers beyond 64 bits when it parses */
		if (!json_is_integer(j))
			rc = enc_fail(e, "expected a long, got %s", json_kind(j));
		else
			rc = avro_value_set_long(v, (int64_t)json_integer_value(j));
		break;
	case AVRO_FLOAT:
		if (!json_is_number(j))
			rc = enc_fail(e, "expected a float, got %s", json_kind(j));
		else if (fabs(json_number_value(j)) > FLT_MAX)
			rc = enc_fail(e, "%g is out of range for a float", json_number_value(j));
		else
			rc = avro_value_set_float(v, (float)json_number_value(j));
		break;
	case AVRO_DOUBLE:
		if (!json_is_number(j))
			rc = enc_fail(e, "expected a double, got %s", json_kind(j));
		else
			rc = avro_value_set_double(v, json_number_value(j));
		break;
	case AVRO_BOOLEAN:
		if (!json_is_boolean(j))
			rc = enc_fail(e, "expected a boolean, got %s", json_kind(j));
		else
			rc = avro_value_set_boolean(v, json_is_true(j));
		break;
	case AVRO_NULL:
		if (!json_is_null(j))
			rc = enc_fail(e, "expected null, got %s", json_kind(j));
		else
			rc = avro_value_set_null(v);
		break;
	case AVRO_ENUM: {
		int sym =
		    json_is_string(j) ? avro_schema_enum_get_by_name(s, json_string_value(j)) : -1;
		if (sym < 0)
			rc = json_is_string(j)
			         ? enc_fail(e, "\"%.200s\" is not a symbol of enum %s",
			                    json_string_value(j), full_name(s, nb, sizeof(nb)))
			         : enc_fail(e, "expected a symbol of enum %s (a string), got %s",
			                    full_name(s, nb, sizeof(nb)), json_kind(j));
		else
			rc = avro_value_set_enum(v, sym);
		break;
	}
	case AVRO_RECORD:
		rc = enc_record(e, s, v, j);
		break;
	case AVRO_ARRAY: {
		size_t i;
		json_t *x;
		if (!json_is_array(j)) {
			rc = enc_fail(e, "expected an array, got %s", json_kind(j));
			break;
		}
		json_array_foreach((json_t *)j, i, x)
		{
			avro_value_t child;
			seg_push(e, NULL, i);
			if (avro_value_append(v, &child, NULL))
				rc = enc_fail(e, "%s", avro_strerror());
			else
				rc = enc_value(e, avro_schema_array_items(s), &child, x, dflt);
			seg_pop(e);
			if (rc)
				break;
		}
		break;
	}
	case AVRO_MAP: {
		const char *key;
		json_t *x;
		if (!json_is_object(j)) {
			rc = enc_fail(e, "expected a map (an object), got %s", json_kind(j));
			break;
		}
		json_object_foreach((json_t *)j, key, x)
		{
			avro_value_t child;
			seg_push(e, key, 0);
			if (avro_value_add(v, key, &child, NULL, NULL))
				rc = enc_fail(e, "%s", avro_strerror());
			else
				rc = enc_value(e, avro_schema_map_values(s), &child, x, dflt);
			seg_pop(e);
			if (rc)
				break;
		}
		break;
	}
	case AVRO_UNION: {
		int idx;
		const json_t *bj;
		avro_value_t branch;
		if (!(rc = union_branch(e, s, j, dflt, &idx, &bj))) {
			if (avro_value_set_branch(v, idx, &branch))
				rc = enc_fail(e, "%s", avro_strerror());
			else
				rc = enc_value(e, avro_schema_union_branch(s, idx), &branch, bj,
				               false);
		}
		break;
	}
	case AVRO_LINK:
		rc = enc_value(e, avro_schema_link_target(s), v, j, dflt);
		break;
	default:
		rc = enc_fail(e, "unsupported Avro type %s", avro_schema_type_name(s));
	}
	if (rc > 0) /* a libavro setter's errno */
		rc = enc_fail(e, "%s", avro_strerror());
	e->depth--;
	return rc;
}

static int oracle_encode(const tb_avro_schema *s, const json_t *data, unsigned char **out,
                         size_t *outlen, char *err, size_t errlen)
{
	enc e = {.s = s, .err = err, .errlen = errlen};
	avro_value_t v;
	avro_writer_t w = NULL;
	unsigned char *buf = NULL;
	size_t size = 0;
	*out = NULL;
	*outlen = 0;
	if (avro_generic_value_new(s->iface, &v)) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int rc = enc_value(&e, s->schema, &v, data ? data : json_null(), false);
	if (rc)
		goto out;
	rc = -1;
	if (avro_value_sizeof(&v, &size) || !(buf = malloc(size ? size : 1)) ||
	    !(w = avro_writer_memory((const char *)buf, (int64_t)size)) ||
	    avro_value_write(w, &v)) {
		snprintf(err, errlen, "Avro encoding failed: %s",
		         buf ? avro_strerror() : "out of memory");
		free(buf);
		goto out;
	}
	*out = buf;
	*outlen = size;
	rc = 0;
out:
	if (w)
		avro_writer_free(w);
	avro_value_decref(&v);
	return rc;
}

/* ---- generated inputs ---- */

static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static bool chance(int percent)
{
	return (int)(rnd() % 100) < percent;
}

/* Strings of ASCII (with the JSON Pointer escapes ~ and /), code points
 * 0x80-0xFF (bytes), beyond (not bytes), and NUL. */
static json_t *gen_string(size_t len)
{
	static const char *const pieces[] = {"a",
	                                     "Z",
	                                     "0",
	                                     "~",
	                                     "/",
	                                     " ",
	                                     "\xc3\xa9",
	                                     "\xc2\x80",
	                                     "\xc3\xbf",
	                                     "\xe2\x82\xac",
	                                     "\xf0\x9f\x98\x80",
	                                     "q"};
	char buf[256];
	size_t n = 0;
	for (size_t i = 0; i < len && n + 4 < sizeof(buf); i++) {
		if (chance(2)) {
			buf[n++] = '\0';
			continue;
		}
		/* mostly ASCII and U+0080-U+00FF, which bytes take */
		size_t k = chance(90) ? rnd() % 9 : rnd() % 12;
		size_t pl = strlen(pieces[k]);
		memcpy(buf + n, pieces[k], pl);
		n += pl;
	}
	return json_stringn(buf, n);
}

static json_t *gen_any(int depth)
{
	switch (rnd() % 8) {
	case 0:
		return json_null();
	case 1:
		return json_boolean(chance(50));
	case 2:
		return json_integer((json_int_t)(rnd() % 2000) - 1000);
	case 3:
		return json_real((double)(rnd() % 20000) / 7.0 - 1000);
	case 4:
		return gen_string(rnd() % 4);
	case 5:
		return depth > 2 ? json_array() : json_pack("[o]", gen_any(depth + 1));
	case 6:
		return depth > 2 ? json_object() : json_pack("{so}", "k", gen_any(depth + 1));
	default:
		return json_object();
	}
}

static json_t *gen_int(bool is_long)
{
	static const json_int_t edges[] = {0,
	                                   1,
	                                   -1,
	                                   63,
	                                   64,
	                                   -64,
	                                   -65,
	                                   127,
	                                   128,
	                                   8191,
	                                   8192,
	                                   INT32_MAX,
	                                   INT32_MIN,
	                                   INT32_MAX + 1LL,
	                                   INT32_MIN - 1LL,
	                                   INT64_MAX,
	                                   INT64_MIN,
	                                   1LL << 40,
	                                   -(1LL << 50)};
	if (chance(5))
		return json_real(1.5);
	unsigned shift = (unsigned)(rnd() % 64); /* (one call per statement: the same
	                                          * sequence whatever the compiler) */
	json_int_t v = chance(50) ? edges[rnd() % (sizeof(edges) / sizeof(edges[0]))]
	                          : (json_int_t)(rnd() >> shift);
	if (!is_long && chance(80))
		v = (int32_t)v;
	return json_integer(v);
}

static json_t *gen_real(void)
{
	static const double edges[] = {0.0,    -0.0,  1.0,           0.1,     -2.5,    3.4e38,
	                               1e39,   -1e39, FLT_MAX,       FLT_MIN, DBL_MAX, -DBL_MAX,
	                               5e-324, 1e300, 123456789.125, 1.0 / 3};
	if (chance(20))
		return json_integer((json_int_t)(rnd() % 100000) - 50000);
	if (chance(50))
		return json_real(edges[rnd() % (sizeof(edges) / sizeof(edges[0]))]);
	double d;
	uint64_t bits = rnd();
	memcpy(&d, &bits, sizeof(d));
	return json_real(isfinite(d) ? d : 42.0);
}

static json_t *gen(avro_schema_t s, int depth);

static json_t *gen_record(avro_schema_t s, int depth)
{
	json_t *o = json_object();
	size_t n = avro_schema_record_size(s);
	bool reverse = chance(20); /* members in another order than the fields */
	for (size_t k = 0; k < n; k++) {
		size_t i = reverse ? n - 1 - k : k;
		if (chance(8)) /* missing: its default, or refused */
			continue;
		json_object_set_new(
		    o, avro_schema_record_field_name(s, (int)i),
		    gen(avro_schema_record_field_get_by_index(s, (int)i), depth + 1));
	}
	if (chance(3))
		json_object_set_new(o, chance(50) ? "extra" : "a/b~c", json_integer(1));
	return o;
}

static json_t *gen_union(avro_schema_t s, int depth)
{
	size_t n = avro_schema_union_size(s), i = rnd() % n;
	avro_schema_t b = avro_schema_union_branch(s, (int)i);
	if (is_avro_link(b))
		b = avro_schema_link_target(b);
	if (depth > 6) /* a recursive type's end: its null, when it has one */
		for (size_t k = 0; k < n; k++)
			if (is_avro_null(avro_schema_union_branch(s, (int)k)))
				return json_null();
	if (is_avro_null(b) && chance(90))
		return json_null();
	json_t *v = gen(b, depth + 1);
	if (chance(40)) /* bare: taken for ["null", T] only */
		return v;
	char name[512];
	const char *ns = avro_schema_namespace(b);
	if (ns && *ns && (is_avro_record(b) || is_avro_enum(b) || is_avro_fixed(b)) && chance(90))
		snprintf(name, sizeof(name), "%s.%s", ns, avro_schema_type_name(b));
	else
		snprintf(name, sizeof(name), "%s", chance(95) ? avro_schema_type_name(b) : "nope");
	return json_pack("{so}", name, v);
}

static json_t *gen(avro_schema_t s, int depth)
{
	if (chance(3))
		return gen_any(0);
	switch (avro_typeof(s)) {
	case AVRO_NULL:
		return json_null();
	case AVRO_BOOLEAN:
		return json_boolean(chance(50));
	case AVRO_INT32:
		return gen_int(false);
	case AVRO_INT64:
		return gen_int(true);
	case AVRO_FLOAT:
	case AVRO_DOUBLE:
		return gen_real();
	case AVRO_STRING:
	case AVRO_BYTES:
		return gen_string(rnd() % 6);
	case AVRO_FIXED:
		return gen_string((size_t)avro_schema_fixed_size(s) - (chance(10) ? 1 : 0));
	case AVRO_ENUM: {
		int n = avro_schema_enum_number_of_symbols(s);
		return json_string(chance(95) ? avro_schema_enum_get(s, (int)(rnd() % (uint64_t)n))
		                              : "NOPE");
	}
	case AVRO_ARRAY: {
		json_t *a = json_array();
		for (size_t i = depth > 6 ? 0 : rnd() % 4; i > 0; i--)
			json_array_append_new(a, gen(avro_schema_array_items(s), depth + 1));
		return a;
	}
	case AVRO_MAP: {
		json_t *o = json_object();
		char key[16];
		for (size_t i = depth > 6 ? 0 : rnd() % 4; i > 0; i--) {
			const char *prefix = chance(10) ? "~/" : "k";
			snprintf(key, sizeof(key), "%s%d", prefix, (int)(rnd() % 10));
			json_object_set_new(o, key, gen(avro_schema_map_values(s), depth + 1));
		}
		return o;
	}
	case AVRO_RECORD:
		return gen_record(s, depth);
	case AVRO_UNION:
		return gen_union(s, depth);
	case AVRO_LINK:
		return gen(avro_schema_link_target(s), depth);
	default:
		return json_null();
	}
}

static const char *const SCHEMAS[] = {
    "\"null\"",
    "\"boolean\"",
    "\"int\"",
    "\"long\"",
    "\"float\"",
    "\"double\"",
    "\"string\"",
    "\"bytes\"",
    "{\"type\": \"fixed\", \"name\": \"F\", \"namespace\": \"n\", \"size\": 3}",
    "{\"type\": \"enum\", \"name\": \"E\", \"symbols\": [\"A\", \"B\", \"C\"]}",
    "{\"type\": \"array\", \"items\": \"long\"}",
    "{\"type\": \"map\", \"values\": [\"null\", \"double\"]}",
    "[\"null\", \"string\"]",
    "[\"string\", \"null\"]",
    "[\"int\", \"string\", \"null\"]",
    "[\"null\", {\"type\": \"enum\", \"name\": \"S\", \"namespace\": \"x.y\", "
    "\"symbols\": [\"ON\", \"OFF\"]}]",
    /* the bench's order, with defaults of every kind beside it */
    "{\"type\": \"record\", \"name\": \"OrderPlaced\", \"namespace\": \"example.order\", "
    "\"fields\": [{\"name\": \"orderId\", \"type\": {\"type\": \"string\", \"logicalType\": "
    "\"uuid\"}}, {\"name\": \"customerId\", \"type\": \"string\"}, {\"name\": \"total\", "
    "\"type\": \"double\"}, {\"name\": \"currency\", \"type\": \"string\"}, {\"name\": "
    "\"lines\", \"type\": {\"type\": \"array\", \"items\": {\"type\": \"record\", \"name\": "
    "\"Line\", \"fields\": [{\"name\": \"sku\", \"type\": \"string\"}, {\"name\": \"qty\", "
    "\"type\": \"int\"}]}}}]}",
    "{\"type\": \"record\", \"name\": \"D\", \"namespace\": \"com.example\", \"fields\": ["
    "{\"name\": \"i\", \"type\": \"int\", \"default\": 7},"
    "{\"name\": \"l\", \"type\": \"long\", \"default\": -3},"
    "{\"name\": \"f\", \"type\": \"float\", \"default\": 1.5},"
    "{\"name\": \"d\", \"type\": \"double\", \"default\": 0.1},"
    "{\"name\": \"b\", \"type\": \"boolean\", \"default\": true},"
    "{\"name\": \"s\", \"type\": \"string\", \"default\": \"d\\u00e9f\"},"
    "{\"name\": \"by\", \"type\": \"bytes\", \"default\": \"\\u00ff\\u0001\"},"
    "{\"name\": \"fx\", \"type\": {\"type\": \"fixed\", \"name\": \"Two\", \"size\": 2}, "
    "\"default\": \"ab\"},"
    "{\"name\": \"e\", \"type\": {\"type\": \"enum\", \"name\": \"K\", \"symbols\": [\"P\", "
    "\"Q\"]}, \"default\": \"Q\"},"
    "{\"name\": \"u\", \"type\": [\"null\", \"int\"], \"default\": null},"
    "{\"name\": \"u2\", \"type\": [\"int\", \"null\"], \"default\": 4},"
    "{\"name\": \"a\", \"type\": {\"type\": \"array\", \"items\": \"int\"}, "
    "\"default\": [1, 2]},"
    "{\"name\": \"m\", \"type\": {\"type\": \"map\", \"values\": \"string\"}, "
    "\"default\": {\"x\": \"y\"}},"
    "{\"name\": \"r\", \"type\": {\"type\": \"record\", \"name\": \"In\", \"fields\": ["
    "{\"name\": \"z\", \"type\": \"int\", \"default\": 0}]}, \"default\": {}},"
    "{\"name\": \"req\", \"type\": \"string\"}]}",
    /* recursive, through a union and a named reference */
    "{\"type\": \"record\", \"name\": \"Node\", \"fields\": [{\"name\": \"v\", \"type\": "
    "\"int\"}, {\"name\": \"tags\", \"type\": {\"type\": \"map\", \"values\": \"bytes\"}}, "
    "{\"name\": \"next\", \"type\": [\"null\", \"Node\"]}]}",
    /* a union of named types, one namespaced */
    "{\"type\": \"record\", \"name\": \"W\", \"namespace\": \"a.b\", \"fields\": [{\"name\": "
    "\"x\", \"type\": [{\"type\": \"record\", \"name\": \"P\", \"fields\": [{\"name\": \"p\", "
    "\"type\": \"float\"}]}, {\"type\": \"enum\", \"name\": \"C\", \"namespace\": \"c\", "
    "\"symbols\": [\"R\", \"G\"]}, {\"type\": \"fixed\", \"name\": \"H\", \"size\": 1}, "
    "\"string\", {\"type\": \"array\", \"items\": [\"null\", \"long\"]}]}]}",
};

#define ROUNDS 3000

static void test_same_as_libavro(void **state)
{
	(void)state;
	tb_avro_buf buf = {0}; /* one buffer for all, as the ingest path has */
	size_t accepted = 0, refused = 0;
	for (size_t k = 0; k < sizeof(SCHEMAS) / sizeof(SCHEMAS[0]); k++) {
		char perr[256];
		tb_avro_schema *s =
		    tb_avro_schema_parse(SCHEMAS[k], strlen(SCHEMAS[k]), perr, sizeof(perr));
		if (!s)
			fail_msg("%s: schema %s", perr, SCHEMAS[k]);
		for (int round = 0; round < ROUNDS; round++) {
			json_t *j = gen(s->schema, 0);
			char *text = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
			char oerr[1024] = "", nerr[1024] = "", verr[1024] = "";
			unsigned char *ob = NULL, *nb = NULL;
			size_t on = 0, nn = 0;
			int orc = oracle_encode(s, j, &ob, &on, oerr, sizeof(oerr));
			int nrc = tb_avro_encode_json(s, j, &nb, &nn, nerr, sizeof(nerr));
			if (orc != nrc || strcmp(oerr, nerr) || on != nn ||
			    (on && memcmp(ob, nb, on)))
				fail_msg(
				    "%s as %s: libavro %d (%s, %zu bytes), encoder %d (%s, %zu "
				    "bytes)",
				    text, SCHEMAS[k], orc, oerr, on, nrc, nerr, nn);
			/* the same on the document the ingest path parses (its NULs
			 * are refused there: no such event reaches the encoder) */
			tjs_doc *doc = tjs_doc_parse(text, strlen(text), 0, NULL, 0);
			if (doc) {
				int vrc = tb_avro_encode_value(s, tjs_doc_root(doc), &buf, verr,
				                               sizeof(verr));
				if (vrc != orc || strcmp(oerr, verr) ||
				    (!vrc && (buf.len != on || memcmp(buf.data, ob, on))))
					fail_msg("%s as %s (tjs_value): libavro %d (%s), encoder "
					         "%d (%s)",
					         text, SCHEMAS[k], orc, oerr, vrc, verr);
				tjs_doc_free(doc);
			}
			orc ? refused++ : accepted++;
			free(ob);
			free(nb);
			free(text);
			json_decref(j);
		}
		tb_avro_schema_free(s);
	}
	tb_avro_buf_free(&buf);
	/* the inputs are a mix of both, not all of one */
	print_message("%zu accepted, %zu refused\n", accepted, refused);
	assert_true(accepted > 10000);
	assert_true(refused > 5000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_same_as_libavro),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
