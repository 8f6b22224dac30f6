/*
 * JSON data -> Avro binary (tributary/avro.h), validated on the way: the
 * JSON is walked along the schema into a libavro generic value, which
 * libavro then writes. The JSON is Avro's JSON encoding, as Confluent's
 * REST Proxy takes it:
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
 * tb_avro__defaults collects them from the schema's JSON at parse time.
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

int tb_avro_encode_json(const tb_avro_schema *s, const json_t *data, unsigned char **out,
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
