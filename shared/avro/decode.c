/*
 * Avro binary -> JSON (the Avro specification's JSON encoding), for the
 * records that the outbound path and the nginx stream hand to web and
 * mobile clients. libavro reads the value; the walk below writes its JSON.
 * libavro's own avro_value_to_json is not used: it cuts bytes and fixed
 * values at their first NUL byte (a value lost without an error) and does
 * not check an enum's index.
 *
 *   null, boolean, int, long   JSON null, true/false, integers
 *   float, double              JSON numbers (NaN and infinities: an error,
 *                              JSON has none)
 *   string                     a JSON string (not UTF-8: an error)
 *   bytes, fixed               a string of code points U+0000 to U+00FF,
 *                              one per byte
 *   enum                       the symbol
 *   array, map, record         array, object, object (fields in order)
 *   union                      null for the null branch, else
 *                              {"FULLNAME": value} (a named type's full
 *                              name, else the type: "string", "array")
 */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>

#include "avro_int.h"

#define DECODE_MAX_DEPTH 128

struct decode {
	const tb_avro_schema *s;
	char *err;
	size_t errlen;
	char path[256]; /* where the walk is, for the error */
};

static json_t *decode__fail(struct decode *d, const char *why)
{
	snprintf(d->err, d->errlen, "Avro value of schema %s at %s: %s", tb_avro_schema_name(d->s),
	         d->path[0] ? d->path : "/", why);
	return NULL;
}

/* Bytes as code points 0-255, UTF-8 encoded. */
static json_t *decode__bytes(const unsigned char *p, size_t n)
{
	if (n > SIZE_MAX / 2)
		return NULL;
	char *u = malloc(2 * n + 1), *o = u;
	if (!u)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < 0x80) {
			*o++ = (char)p[i];
		} else {
			*o++ = (char)(0xc0 | (p[i] >> 6));
			*o++ = (char)(0x80 | (p[i] & 0x3f));
		}
	}
	json_t *j = json_stringn(u, (size_t)(o - u));
	free(u);
	return j;
}

/* A union branch's name: a named type's full name, else its type. */
static void decode__branch_name(avro_schema_t b, char *out, size_t outlen)
{
	const char *ns = (is_avro_named_type(b)) ? avro_schema_namespace(b) : NULL;
	if (ns && *ns)
		snprintf(out, outlen, "%s.%s", ns, avro_schema_type_name(b));
	else
		snprintf(out, outlen, "%s", avro_schema_type_name(b));
}

static json_t *decode__value(struct decode *d, avro_value_t *v, int depth);

/* Appends `/seg` to the path for the child's walk, then restores it. */
static json_t *decode__child(struct decode *d, avro_value_t *c, const char *seg, int depth)
{
	size_t at = strlen(d->path);
	snprintf(d->path + at, sizeof(d->path) - at, "/%s", seg);
	json_t *j = decode__value(d, c, depth + 1);
	if (j)
		d->path[at] = '\0';
	return j;
}

static json_t *decode__container(struct decode *d, avro_value_t *v, avro_type_t t, int depth)
{
	size_t n;
	if (avro_value_get_size(v, &n))
		return decode__fail(d, avro_strerror());
	json_t *out = t == AVRO_ARRAY ? json_array() : json_object();
	if (!out)
		return decode__fail(d, "out of memory");
	for (size_t i = 0; i < n; i++) {
		avro_value_t c;
		const char *name = NULL;
		char idx[24];
		if (avro_value_get_by_index(v, i, &c, &name)) {
			json_decref(out);
			return decode__fail(d, avro_strerror());
		}
		snprintf(idx, sizeof(idx), "%zu", i);
		json_t *j = decode__child(d, &c, name ? name : idx, depth);
		if (!j || (t == AVRO_ARRAY ? json_array_append_new(out, j)
		                           : json_object_set_new_nocheck(out, name, j))) {
			json_decref(out);
			return j ? decode__fail(d, "out of memory") : NULL;
		}
	}
	return out;
}

static json_t *decode__union(struct decode *d, avro_value_t *v, int depth)
{
	avro_value_t b;
	char name[256];
	if (avro_value_get_current_branch(v, &b))
		return decode__fail(d, avro_strerror());
	avro_schema_t bs = avro_value_get_schema(&b);
	if (avro_typeof(bs) == AVRO_NULL)
		return json_null();
	decode__branch_name(bs, name, sizeof(name));
	json_t *j = decode__child(d, &b, name, depth);
	if (!j)
		return NULL;
	json_t *out = json_object();
	if (!out || json_object_set_new(out, name, j)) {
		json_decref(out);
		return decode__fail(d, "out of memory");
	}
	return out;
}

static json_t *decode__value(struct decode *d, avro_value_t *v, int depth)
{
	const void *p;
	const char *str;
	size_t n;
	int32_t i32;
	int64_t i64;
	float f;
	double x;
	int en;
	json_t *j = NULL;

	if (depth > DECODE_MAX_DEPTH)
		return decode__fail(d, "nested too deeply");
	avro_type_t t = avro_value_get_type(v);
	switch (t) {
	case AVRO_NULL:
		return json_null();
	case AVRO_BOOLEAN:
		if (avro_value_get_boolean(v, &en))
			return decode__fail(d, avro_strerror());
		return json_boolean(en);
	case AVRO_INT32:
		if (avro_value_get_int(v, &i32))
			return decode__fail(d, avro_strerror());
		j = json_integer(i32);
		break;
	case AVRO_INT64:
		if (avro_value_get_long(v, &i64))
			return decode__fail(d, avro_strerror());
		j = json_integer(i64);
		break;
	case AVRO_FLOAT:
		if (avro_value_get_float(v, &f))
			return decode__fail(d, avro_strerror());
		if (!(j = json_real(f)))
			return decode__fail(d, "a float that is not a number or infinite");
		break;
	case AVRO_DOUBLE:
		if (avro_value_get_double(v, &x))
			return decode__fail(d, avro_strerror());
		if (!(j = json_real(x)))
			return decode__fail(d, "a double that is not a number or infinite");
		break;
	case AVRO_STRING:
		if (avro_value_get_string(v, &str, &n))
			return decode__fail(d, avro_strerror());
		/* n counts libavro's terminating NUL */
		if (!(j = json_stringn(str, n ? n - 1 : 0)))
			return decode__fail(d, "a string that is not UTF-8");
		break;
	case AVRO_BYTES:
		if (avro_value_get_bytes(v, &p, &n))
			return decode__fail(d, avro_strerror());
		j = decode__bytes(p, n);
		break;
	case AVRO_FIXED:
		if (avro_value_get_fixed(v, &p, &n))
			return decode__fail(d, avro_strerror());
		j = decode__bytes(p, n);
		break;
	case AVRO_ENUM: {
		avro_schema_t es = avro_value_get_schema(v);
		if (avro_value_get_enum(v, &en))
			return decode__fail(d, avro_strerror());
		if (en < 0 || en >= avro_schema_enum_number_of_symbols(es))
			return decode__fail(d, "an enum index out of range");
		j = json_string(avro_schema_enum_get(es, en));
		break;
	}
	case AVRO_RECORD:
	case AVRO_MAP:
	case AVRO_ARRAY:
		return decode__container(d, v, t, depth);
	case AVRO_UNION:
		return decode__union(d, v, depth);
	default:
		return decode__fail(d, "a type this decoder does not know");
	}
	return j ? j : decode__fail(d, "out of memory");
}

char *tb_avro_decode_json(const tb_avro_schema *s, const void *buf, size_t len, size_t *outlen,
                          char *err, size_t errlen)
{
	avro_value_t v;
	avro_reader_t rd = NULL;
	json_t *j = NULL;
	char *out = NULL;
	struct decode d = {.s = s, .err = err, .errlen = errlen};

	if (len > INT64_MAX) {
		snprintf(err, errlen, "Avro value too large");
		return NULL;
	}
	if (avro_generic_value_new(s->iface, &v)) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	/* libavro's memory reader does not write to the buffer. */
	rd = avro_reader_memory(buf ? buf : "", (int64_t)len);
	if (!rd) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	/* A first pass that only skips: libavro 1.11's reader leaks the
	 * buffer of a string or bytes value cut short (read_bytes returns
	 * without freeing it), so the value is read only once the bytes are
	 * known to hold it whole, and nothing after it. */
	char extra;
	if (avro_skip_data(rd, s->schema)) {
		snprintf(err, errlen, "not a value of Avro schema %s: %s", tb_avro_schema_name(s),
		         avro_strerror());
		goto done;
	}
	/* avro_reader_is_eof only knows file readers: a byte that can still
	 * be read is one too many. */
	if (avro_read(rd, &extra, 1) == 0) {
		snprintf(err, errlen, "not a value of Avro schema %s: bytes left after the value",
		         tb_avro_schema_name(s));
		goto done;
	}
	avro_reader_memory_set_source(rd, buf ? buf : "", (int64_t)len);
	if (avro_value_read(rd, &v)) {
		snprintf(err, errlen, "not a value of Avro schema %s: %s", tb_avro_schema_name(s),
		         avro_strerror());
		goto done;
	}
	if (!(j = decode__value(&d, &v, 0)))
		goto done;
	out = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!out)
		snprintf(err, errlen, "out of memory");
	else if (outlen)
		*outlen = strlen(out);
done:
	json_decref(j);
	if (rd)
		avro_reader_free(rd);
	avro_value_decref(&v);
	return out;
}
