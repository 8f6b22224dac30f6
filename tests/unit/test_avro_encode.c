/* tb_avro_encode_json (shared/avro/encode.c): every Avro type from its JSON
 * encoding, the bytes checked against the specification's binary encoding
 * (zig-zag varints, length-prefixed strings, blocks) and read back with
 * libavro; every way data can fail to match, with the JSON path named. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <avro.h>

#include "avro_json.h"
#include "tributary/avro.h"

static char err[1024];

static tb_avro_schema *parse(const char *schema)
{
	tb_avro_schema *s = tb_avro_schema_parse(schema, strlen(schema), err, sizeof(err));
	if (!s)
		fail_msg("schema %s: %s", schema, err);
	return s;
}

/* The encoding of data as hex, or NULL with err set. */
static char *encode(const char *schema, const char *data)
{
	static char hex[4096];
	json_error_t je;
	json_t *j = json_loads(data, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (!j)
		fail_msg("test data %s: %s", data, je.text);
	tb_avro_schema *s = parse(schema);
	unsigned char *out = (unsigned char *)"x";
	size_t n = 99;
	int rc = tb_avro_encode_json(s, j, &out, &n, err, sizeof(err));
	json_decref(j);
	tb_avro_schema_free(s);
	if (rc) {
		assert_null(out);
		return NULL;
	}
	for (size_t i = 0; i < n && 2 * i + 2 < sizeof(hex); i++)
		snprintf(hex + 2 * i, 3, "%02x", out[i]);
	hex[2 * n] = '\0';
	free(out);
	return hex;
}

#define ENC_OK(schema, data, want)                                                                 \
	do {                                                                                       \
		char *got_ = encode(schema, data);                                                 \
		if (!got_)                                                                         \
			fail_msg("%s as %s: %s", data, schema, err);                               \
		assert_string_equal(got_, want);                                                   \
	} while (0)

#define ENC_ERR(schema, data, want_err)                                                            \
	do {                                                                                       \
		char *got_ = encode(schema, data);                                                 \
		if (got_)                                                                          \
			fail_msg("%s as %s: accepted (%s), wanted: %s", data, schema, got_,        \
			         want_err);                                                        \
		assert_string_equal(err, want_err);                                                \
	} while (0)

static void test_primitives(void **state)
{
	(void)state;
	ENC_OK("\"null\"", "null", "");
	ENC_OK("\"boolean\"", "true", "01");
	ENC_OK("\"boolean\"", "false", "00");
	/* zig-zag varints */
	ENC_OK("\"int\"", "0", "00");
	ENC_OK("\"int\"", "-1", "01");
	ENC_OK("\"int\"", "1", "02");
	ENC_OK("\"int\"", "64", "8001");
	ENC_OK("\"int\"", "2147483647", "feffffff0f");
	ENC_OK("\"int\"", "-2147483648", "ffffffff0f");
	ENC_OK("\"long\"", "9223372036854775807", "feffffffffffffffff01");
	ENC_OK("\"long\"", "-3", "05");
	/* IEEE 754 little-endian */
	ENC_OK("\"float\"", "1.5", "0000c03f");
	ENC_OK("\"float\"", "2", "00000040");
	ENC_OK("\"double\"", "1.5", "000000000000f83f");
	ENC_OK("\"double\"", "-2", "00000000000000c0");
	/* strings: length, UTF-8 */
	ENC_OK("\"string\"", "\"\"", "00");
	ENC_OK("\"string\"", "\"h\\u00e9\"", "0668c3a9");
	ENC_OK("\"string\"", "\"a\\u0000b\"", "06610062");
	/* bytes: code points 0-255, one byte each */
	ENC_OK("\"bytes\"", "\"\\u0000\\u007f\\u0080\\u00ff\"", "08007f80ff");
	/* a schema written as {"type": ...} */
	ENC_OK("{\"type\": \"int\"}", "5", "0a");
}

static void test_primitive_errors(void **state)
{
	(void)state;
	ENC_ERR("\"null\"", "0", "/: expected null, got an integer");
	ENC_ERR("\"boolean\"", "\"true\"", "/: expected a boolean, got a string");
	ENC_ERR("\"int\"", "\"5\"", "/: expected an int, got a string");
	ENC_ERR("\"int\"", "1.5", "/: expected an int, got a number");
	ENC_ERR("\"int\"", "2147483648", "/: 2147483648 is out of range for an int (32 bits)");
	ENC_ERR("\"int\"", "-2147483649", "/: -2147483649 is out of range for an int (32 bits)");
	ENC_ERR("\"long\"", "1e3", "/: expected a long, got a number");
	ENC_ERR("\"long\"", "null", "/: expected a long, got null");
	ENC_ERR("\"float\"", "1e39", "/: 1e+39 is out of range for a float");
	ENC_ERR("\"float\"", "true", "/: expected a float, got a boolean");
	ENC_ERR("\"double\"", "\"NaN\"", "/: expected a double, got a string");
	ENC_ERR("\"string\"", "5", "/: expected a string, got an integer");
	ENC_ERR("\"bytes\"", "[1]", "/: expected bytes (a string), got an array");
	ENC_ERR("\"bytes\"", "\"a\\u0100\"",
	        "/: expected bytes as a string of code points 0-255 (one per byte), got a "
	        "character above U+00FF at offset 1");
}

static const char *const ORDER =
    "{\"type\": \"record\", \"name\": \"Order\", \"namespace\": \"com.example\", \"fields\": ["
    " {\"name\": \"id\", \"type\": \"string\"},"
    " {\"name\": \"lines\", \"type\": {\"type\": \"array\", \"items\": {\"type\": \"record\","
    "  \"name\": \"Line\", \"fields\": [{\"name\": \"sku\", \"type\": \"string\"},"
    "  {\"name\": \"qty\", \"type\": \"int\"}]}}},"
    " {\"name\": \"note\", \"type\": [\"null\", \"string\"], \"default\": null},"
    " {\"name\": \"prio\", \"type\": \"int\", \"default\": 3},"
    " {\"name\": \"tags\", \"type\": {\"type\": \"map\", \"values\": \"long\"}, \"default\": {}}"
    "]}";

static void test_records(void **state)
{
	(void)state;
	/* id "a", one line {sku "s", qty 2}, note null (default), prio 3
	 * (default), tags {} (default) */
	ENC_OK(ORDER, "{\"id\": \"a\", \"lines\": [{\"sku\": \"s\", \"qty\": 2}]}",
	       "0261"
	       "02"
	       "0273"
	       "04"
	       "00"
	       "00"
	       "06"
	       "00");
	/* every field given; note as the wrapped union and as the bare value */
	ENC_OK(ORDER,
	       "{\"id\": \"a\", \"lines\": [], \"note\": {\"string\": \"n\"}, \"prio\": 1,"
	       " \"tags\": {\"t\": 1}}",
	       "0261"
	       "00"
	       "02026e"
	       "02"
	       "02027402"
	       "00");
	ENC_OK(ORDER, "{\"id\": \"a\", \"lines\": [], \"note\": \"n\", \"prio\": 1}",
	       "0261"
	       "00"
	       "02026e"
	       "02"
	       "00");
	ENC_ERR(ORDER, "{\"lines\": []}",
	        "/id: required field of record com.example.Order missing (it has no default)");
	ENC_ERR(ORDER,
	        "{\"id\": \"a\", \"lines\": [{\"sku\": \"s\", \"qty\": 1}, {\"sku\": \"t\"}]}",
	        "/lines/1/qty: required field of record com.example.Line missing (it has no "
	        "default)");
	ENC_ERR(ORDER, "{\"id\": \"a\", \"lines\": [{\"sku\": \"s\", \"qty\": \"2\"}]}",
	        "/lines/0/qty: expected an int, got a string");
	ENC_ERR(ORDER, "{\"id\": \"a\", \"lines\": [], \"qty\": 1}",
	        "/qty: not a field of record com.example.Order");
	ENC_ERR(ORDER, "{\"id\": \"a\", \"lines\": [], \"tags\": {\"a/b~\": \"x\"}}",
	        "/tags/a~1b~0: expected a long, got a string");
	ENC_ERR(ORDER, "[]", "/: expected record com.example.Order (an object), got an array");
	ENC_ERR(ORDER, "{\"id\": \"a\", \"lines\": {}}",
	        "/lines: expected an array, got an object");
	ENC_ERR(ORDER, "{\"id\": \"a\", \"lines\": [], \"tags\": []}",
	        "/tags: expected a map (an object), got an array");
}

/* Defaults: a union's is its first branch's value, unwrapped; bytes and
 * records in the JSON encoding; a bad default is reported at the field. */
static void test_defaults(void **state)
{
	(void)state;
	const char *s = "{\"type\": \"record\", \"name\": \"D\", \"fields\": ["
	                " {\"name\": \"u\", \"type\": [\"string\", \"null\"], \"default\": \"x\"},"
	                " {\"name\": \"b\", \"type\": \"bytes\", \"default\": \"\\u00ff\"},"
	                " {\"name\": \"r\", \"type\": {\"type\": \"record\", \"name\": \"In\","
	                "  \"fields\": [{\"name\": \"n\", \"type\": \"int\", \"default\": 7}]},"
	                "  \"default\": {}},"
	                " {\"name\": \"a\", \"type\": {\"type\": \"array\", \"items\": \"int\"},"
	                "  \"default\": [1, 2]}]}";
	ENC_OK(s, "{}",
	       "00"
	       "0278"
	       "02ff"
	       "0e"
	       "04"
	       "0204"
	       "00");
	const char *bad = "{\"type\": \"record\", \"name\": \"B\", \"fields\": ["
	                  " {\"name\": \"n\", \"type\": \"int\", \"default\": \"seven\"}]}";
	ENC_ERR(bad, "{}", "/n: the default of this field of record B is not valid");
	ENC_OK(bad, "{\"n\": 1}", "02");
}

static void test_unions(void **state)
{
	(void)state;
	const char *u =
	    "[\"null\", \"int\", \"string\", {\"type\": \"record\", \"name\": \"P\","
	    " \"namespace\": \"ns\", \"fields\": [{\"name\": \"x\", \"type\": \"int\"}]},"
	    " {\"type\": \"map\", \"values\": \"int\"}, {\"type\": \"array\", \"items\": "
	    "\"int\"}]";
	ENC_OK(u, "null", "00");
	ENC_OK(u, "{\"int\": 1}", "0202");
	ENC_OK(u, "{\"string\": \"a\"}", "040261");
	ENC_OK(u, "{\"ns.P\": {\"x\": 1}}", "0602");
	ENC_OK(u, "{\"map\": {\"int\": 1}}",
	       "0802"
	       "06696e74"
	       "02"
	       "00");
	ENC_OK(u, "{\"array\": [1]}", "0a020200");
	/* bare values only for a union of null and one type */
	ENC_ERR(u, "1",
	        "/: expected a union value: null or {\"BRANCH\": value} with BRANCH one of null, "
	        "int, string, ns.P, map, array; got an integer");
	ENC_ERR(u, "{\"P\": {\"x\": 1}}",
	        "/: expected a union value: null or {\"BRANCH\": value} with BRANCH one of null, "
	        "int, string, ns.P, map, array; got an object");
	ENC_ERR(u, "{\"int\": \"1\"}", "/: expected an int, got a string");
	const char *opt = "[\"null\", {\"type\": \"enum\", \"name\": \"E\", \"symbols\": [\"A\", "
	                  "\"B\"]}]";
	ENC_OK(opt, "\"B\"", "0202");
	ENC_OK(opt, "{\"E\": \"A\"}", "0200");
	ENC_OK(opt, "null", "00");
	ENC_ERR(opt, "\"C\"", "/: \"C\" is not a symbol of enum E");
	/* no null branch: the wrapped form only */
	ENC_ERR("[\"int\", \"string\"]", "null",
	        "/: expected a union value: {\"BRANCH\": value} with BRANCH one of int, string; "
	        "got null");
}

static void test_enum_fixed(void **state)
{
	(void)state;
	const char *e =
	    "{\"type\": \"enum\", \"name\": \"Kind\", \"symbols\": [\"A\", \"B\", \"C\"]}";
	ENC_OK(e, "\"C\"", "04");
	ENC_ERR(e, "\"D\"", "/: \"D\" is not a symbol of enum Kind");
	ENC_ERR(e, "2", "/: expected a symbol of enum Kind (a string), got an integer");
	const char *f = "{\"type\": \"fixed\", \"name\": \"F\", \"namespace\": \"n\", \"size\": 2}";
	ENC_OK(f, "\"\\u0001\\u00fe\"", "01fe");
	ENC_ERR(f, "\"abc\"", "/: expected fixed n.F of 2 bytes, got 3 bytes");
	ENC_ERR(f, "2", "/: expected fixed n.F (a string of 2 bytes), got an integer");
}

/* Logical types are their underlying type. */
static void test_logical(void **state)
{
	(void)state;
	ENC_OK("{\"type\": \"int\", \"logicalType\": \"date\"}", "19000", "f0a802");
	ENC_OK("{\"type\": \"long\", \"logicalType\": \"timestamp-millis\"}", "1", "02");
	ENC_OK(
	    "{\"type\": \"bytes\", \"logicalType\": \"decimal\", \"precision\": 4, \"scale\": 2}",
	    "\"\\u0004\\u00d2\"", "0404d2");
	ENC_OK("{\"type\": \"string\", \"logicalType\": \"uuid\"}", "\"u\"", "0275");
	ENC_ERR("{\"type\": \"int\", \"logicalType\": \"date\"}", "\"2024-01-01\"",
	        "/: expected an int, got a string");
}

/* A recursive schema (a linked list): named types by reference, and the
 * depth limit. */
static void test_recursive(void **state)
{
	(void)state;
	const char *l = "{\"type\": \"record\", \"name\": \"Node\", \"fields\": ["
	                " {\"name\": \"v\", \"type\": \"int\"},"
	                " {\"name\": \"next\", \"type\": [\"null\", \"Node\"]}]}";
	ENC_OK(l, "{\"v\": 1, \"next\": {\"Node\": {\"v\": 2, \"next\": null}}}", "02020400");
	ENC_OK(l, "{\"v\": 1, \"next\": {\"v\": 2, \"next\": null}}", "02020400");
	ENC_ERR(l, "{\"v\": 1, \"next\": {\"Node\": {\"v\": \"2\", \"next\": null}}}",
	        "/next/v: expected an int, got a string");
	static const char open[] = "{\"v\": 0, \"next\": ";
	char deep[8192];
	size_t n = 0;
	for (int i = 0; i < 200; i++, n += sizeof(open) - 1)
		memcpy(deep + n, open, sizeof(open) - 1);
	memcpy(deep + n, "null", 4);
	n += 4;
	memset(deep + n, '}', 200);
	deep[n + 200] = '\0';
	char *got = encode(l, deep);
	assert_null(got);
	assert_non_null(strstr(err, "nested deeper than 128"));
}

/* What libavro reads back from the bytes is the data (its JSON, with
 * unions wrapped). */
static void test_read_back(void **state)
{
	(void)state;
	const char *data = "{\"id\": \"o\\u00e9\", \"lines\": [{\"sku\": \"s\", \"qty\": -7}],"
	                   " \"note\": {\"string\": \"n\"}, \"prio\": 1, \"tags\": {\"k\": 9}}";
	json_t *j = json_loads(data, 0, NULL);
	tb_avro_schema *s = parse(ORDER);
	unsigned char *out;
	size_t n;
	assert_int_equal(tb_avro_encode_json(s, j, &out, &n, err, sizeof(err)), 0);
	avro_schema_t as;
	assert_int_equal(avro_schema_from_json_length(ORDER, strlen(ORDER), &as), 0);
	avro_value_iface_t *iface = avro_generic_class_from_schema(as);
	avro_value_t v;
	avro_generic_value_new(iface, &v);
	avro_reader_t r = avro_reader_memory((const char *)out, (int64_t)n);
	assert_int_equal(avro_value_read(r, &v), 0);
	char *back;
	assert_int_equal(avro_value_to_json(&v, 1, &back), 0);
	json_t *bj = json_loads(back, 0, NULL);
	assert_true(json_equal(j, bj));
	json_decref(bj);
	free(back);
	avro_reader_free(r);
	avro_value_decref(&v);
	avro_value_iface_decref(iface);
	avro_schema_decref(as);
	free(out);
	tb_avro_schema_free(s);
	json_decref(j);
}

/* tb_avro_encode_value on the document the ingest path parses: one buffer
 * reused (a short encoding after a long one is the short one alone), no
 * data as null, and the numbers only that parser keeps (beyond a double's
 * range, beyond 64 bits). */
static const char *encode_value(tb_avro_schema *s, const char *data, tb_avro_buf *buf)
{
	static char hex[4096];
	tjs_doc *doc = data ? tjs_doc_parse(data, strlen(data), 0, err, sizeof(err)) : NULL;
	if (data && !doc)
		fail_msg("test data %s: %s", data, err);
	int rc = tb_avro_encode_value(s, data ? tjs_doc_root(doc) : NULL, buf, err, sizeof(err));
	tjs_doc_free(doc);
	if (rc)
		return NULL;
	assert_non_null(buf->data);
	for (size_t i = 0; i < buf->len && 2 * i + 2 < sizeof(hex); i++)
		snprintf(hex + 2 * i, 3, "%02x", buf->data[i]);
	hex[2 * buf->len] = '\0';
	return hex;
}

static void test_encode_value(void **state)
{
	(void)state;
	tb_avro_buf buf = {0};
	tb_avro_schema *s = parse("{\"type\": \"array\", \"items\": \"string\"}");
	char big[2048] = "[\"", want[4096] = "02d00f"; /* 1 item, 1000 bytes */
	memset(big + 2, 'x', 1000);
	strcpy(big + 1002, "\"]");
	for (size_t i = 0; i < 1000; i++)
		strcat(want + 6 + 2 * i, "78");
	strcat(want, "00");
	assert_string_equal(encode_value(s, big, &buf), want);
	assert_true(buf.cap >= 1005);
	assert_string_equal(encode_value(s, "[\"ab\"]", &buf), "0204616200");
	assert_string_equal(encode_value(s, "[]", &buf), "00");
	tb_avro_schema_free(s);
	s = parse("[\"null\", \"double\"]");
	assert_string_equal(encode_value(s, NULL, &buf), "00");
	assert_string_equal(encode_value(s, "1e2", &buf), "020000000000005940");
	/* beyond 64 bits: a number, its nearest double */
	assert_string_equal(encode_value(s, "18446744073709551616", &buf), "02000000000000f043");
	assert_null(encode_value(s, "-1e400", &buf));
	assert_string_equal(err, "/: -1e400 is out of range for a double");
	tb_avro_schema_free(s);
	s = parse("\"float\"");
	assert_null(encode_value(s, "1e400", &buf));
	assert_string_equal(err, "/: 1e400 is out of range for a float");
	tb_avro_schema_free(s);
	s = parse("\"long\"");
	assert_null(encode_value(s, "18446744073709551616", &buf));
	assert_string_equal(err, "/: expected a long, got a number");
	assert_null(encode_value(s, NULL, &buf));
	assert_string_equal(err, "/: expected a long, got null");
	tb_avro_schema_free(s);
	s = parse("\"null\"");
	assert_string_equal(encode_value(s, NULL, &buf), "");
	tb_avro_schema_free(s);
	tb_avro_buf_free(&buf);
	assert_null(buf.data);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_primitives), cmocka_unit_test(test_primitive_errors),
	    cmocka_unit_test(test_records),    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_unions),     cmocka_unit_test(test_enum_fixed),
	    cmocka_unit_test(test_logical),    cmocka_unit_test(test_recursive),
	    cmocka_unit_test(test_read_back),  cmocka_unit_test(test_encode_value),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
