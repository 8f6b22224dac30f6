/* Avro binary -> JSON (shared/avro/decode.c): values of every Avro type in
 * the specification's JSON encoding, and bytes that are not exactly one
 * value of the schema refused with a reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tributary/avro.h"

static const char ORDER[] =
    "{\"type\":\"record\",\"name\":\"Order\",\"namespace\":\"example\",\"fields\":["
    "{\"name\":\"id\",\"type\":\"int\"},"
    "{\"name\":\"name\",\"type\":\"string\"},"
    "{\"name\":\"tags\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
    "{\"name\":\"note\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"raw\",\"type\":\"bytes\"}]}";

static tb_avro_schema *parse(const char *text)
{
	char err[256];
	tb_avro_schema *s = tb_avro_schema_parse(text, strlen(text), err, sizeof(err));
	if (!s)
		fail_msg("schema: %s", err);
	return s;
}

/* Decodes, expecting success and exactly `want`. */
static void expect_json(const tb_avro_schema *s, const char *bytes, size_t len, const char *want)
{
	char err[256] = "";
	size_t n = 0;
	char *j = tb_avro_decode_json(s, bytes, len, &n, err, sizeof(err));
	if (!j)
		fail_msg("decode failed: %s", err);
	assert_string_equal(j, want);
	assert_int_equal(n, strlen(want));
	free(j);
}

/* Decodes, expecting a failure whose reason contains `why`. */
static void expect_error(const tb_avro_schema *s, const char *bytes, size_t len, const char *why)
{
	char err[256] = "";
	size_t n = 0;
	char *j = tb_avro_decode_json(s, bytes, len, &n, err, sizeof(err));
	if (j)
		fail_msg("decoded %s, wanted an error about %s", j, why);
	if (!strstr(err, why))
		fail_msg("error \"%s\" does not say \"%s\"", err, why);
}

/* id 5, name "ab", tags ["x"], note "hi" (union branch 1), raw 00 ff */
static const char ORDER_BYTES[] = "\x0a"
                                  "\x04"
                                  "ab"
                                  "\x02\x02x\x00"
                                  "\x02\x04hi"
                                  "\x04\x00\xff";

static const char ORDER_JSON[] = "{\"id\":5,\"name\":\"ab\",\"tags\":[\"x\"],"
                                 "\"note\":{\"string\":\"hi\"},\"raw\":\"\\u0000\xc3\xbf\"}";

static void test_record(void **state)
{
	(void)state;
	tb_avro_schema *s = parse(ORDER);
	expect_json(s, ORDER_BYTES, sizeof(ORDER_BYTES) - 1, ORDER_JSON);
	/* note null (branch 0), no tags, negative id (zigzag 3 = -2) */
	static const char b2[] = "\x03\x00\x00\x00\x00";
	expect_json(s, b2, sizeof(b2) - 1,
	            "{\"id\":-2,\"name\":\"\",\"tags\":[],\"note\":null,\"raw\":\"\"}");
	tb_avro_schema_free(s);
}

static void test_primitives(void **state)
{
	(void)state;
	tb_avro_schema *s = parse("\"long\"");
	/* 2^40 zigzag: 0x80 0x80 0x80 0x80 0x80 0x20 */
	expect_json(s, "\x80\x80\x80\x80\x80\x40", 6, "1099511627776");
	tb_avro_schema_free(s);

	s = parse("\"boolean\"");
	expect_json(s, "\x01", 1, "true");
	expect_error(s, "", 0, "not a value of Avro schema boolean");
	tb_avro_schema_free(s);

	s = parse("\"double\"");
	expect_json(s, "\x00\x00\x00\x00\x00\x00\xf8\x3f", 8, "1.5");
	/* NaN: JSON has no such number */
	expect_error(s, "\x00\x00\x00\x00\x00\x00\xf8\x7f", 8, "not a number or infinite");
	tb_avro_schema_free(s);

	s = parse("\"null\"");
	expect_json(s, "", 0, "null");
	expect_error(s, "\x00", 1, "bytes left after the value");
	tb_avro_schema_free(s);
}

static void test_named_types(void **state)
{
	(void)state;
	tb_avro_schema *s =
	    parse("{\"type\":\"record\",\"name\":\"R\",\"namespace\":\"ns\",\"fields\":["
	          "{\"name\":\"e\",\"type\":{\"type\":\"enum\",\"name\":\"Color\","
	          "\"symbols\":[\"RED\",\"GREEN\"]}},"
	          "{\"name\":\"f\",\"type\":{\"type\":\"fixed\",\"name\":\"Two\",\"size\":2}},"
	          "{\"name\":\"m\",\"type\":{\"type\":\"map\",\"values\":\"int\"}},"
	          "{\"name\":\"u\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"In\","
	          "\"fields\":[{\"name\":\"x\",\"type\":\"float\"}]}]}]}");
	/* GREEN; fixed "AB"; map {"k":1}; u = In{x: 2.0f} */
	static const char b[] = "\x02"
	                        "AB"
	                        "\x02\x02k\x02\x00"
	                        "\x02\x00\x00\x00\x40";
	expect_json(s, b, sizeof(b) - 1,
	            "{\"e\":\"GREEN\",\"f\":\"AB\",\"m\":{\"k\":1},\"u\":{\"ns.In\":{\"x\":"
	            "2.0}}}");
	/* enum index 5 of 2 symbols */
	static const char bad_enum[] = "\x0a"
	                               "AB\x00\x00";
	expect_error(s, bad_enum, sizeof(bad_enum) - 1,
	             "schema R at /e: an enum index out of range");
	/* union branch 3 of 2 */
	static const char bad_branch[] = "\x02"
	                                 "AB\x00\x06";
	expect_error(s, bad_branch, sizeof(bad_branch) - 1, "not a value of Avro schema R");
	tb_avro_schema_free(s);
}

static void test_bad_bytes(void **state)
{
	(void)state;
	tb_avro_schema *s = parse(ORDER);
	/* every proper prefix of a good value is truncated */
	for (size_t n = 0; n < sizeof(ORDER_BYTES) - 1; n++)
		expect_error(s, ORDER_BYTES, n, "not a value of Avro schema Order");
	/* one byte too many */
	char more[sizeof(ORDER_BYTES)];
	memcpy(more, ORDER_BYTES, sizeof(ORDER_BYTES) - 1);
	more[sizeof(ORDER_BYTES) - 1] = 0;
	expect_error(s, more, sizeof(more), "bytes left after the value");
	/* a string length that is negative (zigzag 1 = -1) */
	static const char neg[] = "\x0a\x01";
	expect_error(s, neg, sizeof(neg) - 1, "not a value of Avro schema Order");
	/* a string that is not UTF-8 cannot be JSON */
	static const char latin1[] = "\x0a\x02\xe9\x00\x00\x00";
	expect_error(s, latin1, sizeof(latin1) - 1,
	             "schema Order at /name: a string that is not UTF-8");
	tb_avro_schema_free(s);
}

/* One schema used by several values in turn, as the caches do. */
static void test_reuse(void **state)
{
	(void)state;
	tb_avro_schema *s = parse(ORDER);
	for (int i = 0; i < 3; i++) {
		expect_json(s, ORDER_BYTES, sizeof(ORDER_BYTES) - 1, ORDER_JSON);
		expect_error(s, ORDER_BYTES, 3, "Order");
	}
	tb_avro_schema_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_record),      cmocka_unit_test(test_primitives),
	    cmocka_unit_test(test_named_types), cmocka_unit_test(test_bad_bytes),
	    cmocka_unit_test(test_reuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
