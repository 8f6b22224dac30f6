/* Confluent's wire format back to JSON (shared/registry/wire.c): the
 * header, schemas by id for JSON Schema and Avro, and records that cannot
 * be decoded. Fetching from a registry is tested by
 * tests/integration/registry-outbound.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tributary/wire.h"

static void test_schema_id(void **state)
{
	(void)state;
	int id = -1;
	assert_int_equal(tb_wire_schema_id("\x00\x00\x01\x02\x03{}", 7, &id), 0);
	assert_int_equal(id, 0x010203);
	assert_int_equal(tb_wire_schema_id("\x00\x00\x00\x00\x07", 5, &id), 0);
	assert_int_equal(id, 7);
	assert_int_equal(tb_wire_schema_id("\x00\x00\x00\x07", 4, &id), -1);
	assert_int_equal(tb_wire_schema_id("{\"a\":1}", 7, &id), -1);
	assert_int_equal(tb_wire_schema_id(NULL, 0, &id), -1);
}

struct out {
	tb_wire_status st;
	int id;
	const char *json;
	size_t len;
	char *owned;
	char err[256];
};

static struct out decode(tb_wire_cache *c, const char *v, size_t len)
{
	struct out o = {.id = -1};
	o.st = tb_wire_decode(c, v, len, &o.id, &o.json, &o.len, &o.owned, o.err, sizeof(o.err));
	return o;
}

static void test_decode(void **state)
{
	(void)state;
	tb_wire_cache *c = tb_wire_cache_new();
	assert_non_null(c);
	static const char json_rec[] = "\x00\x00\x00\x00\x01{\"n\":1}";
	static const char avro_rec[] = "\x00\x00\x00\x00\x02\x06\x04hi";
	static const char proto_rec[] = "\x00\x00\x00\x00\x03\x00\x08\x01";

	/* nothing cached yet: the id to fetch */
	struct out o = decode(c, json_rec, sizeof(json_rec) - 1);
	assert_int_equal(o.st, TB_WIRE_MISSING);
	assert_int_equal(o.id, 1);

	assert_int_equal(tb_wire_add(c, 2, "AVRO",
	                             "{\"type\":\"record\",\"name\":\"R\",\"fields\":["
	                             "{\"name\":\"a\",\"type\":\"int\"},"
	                             "{\"name\":\"s\",\"type\":\"string\"}]}",
	                             NULL),
	                 0);
	assert_int_equal(tb_wire_add(c, 1, "JSON", "{\"type\":\"object\"}", NULL), 0);
	assert_int_equal(tb_wire_add(c, 3, "PROTOBUF", "syntax = \"proto3\";", NULL), 0);

	/* JSON Schema: the payload as is, not copied */
	o = decode(c, json_rec, sizeof(json_rec) - 1);
	assert_int_equal(o.st, TB_WIRE_OK);
	assert_null(o.owned);
	assert_ptr_equal(o.json, json_rec + 5);
	assert_int_equal(o.len, 7);

	/* Avro: decoded with the schema by id */
	o = decode(c, avro_rec, sizeof(avro_rec) - 1);
	assert_int_equal(o.st, TB_WIRE_OK);
	assert_non_null(o.owned);
	assert_string_equal(o.json, "{\"a\":3,\"s\":\"hi\"}");
	assert_int_equal(o.len, strlen(o.json));
	free(o.owned);

	/* bad Avro bytes, Protobuf, no magic byte, too short */
	o = decode(c, avro_rec, sizeof(avro_rec) - 2);
	assert_int_equal(o.st, TB_WIRE_BAD);
	assert_non_null(strstr(o.err, "not a value of Avro schema R"));
	o = decode(c, proto_rec, sizeof(proto_rec) - 1);
	assert_int_equal(o.st, TB_WIRE_BAD);
	assert_string_equal(
	    o.err, "schema id 3: PROTOBUF records are not decoded (only JSON Schema and Avro)");
	o = decode(c, "{\"n\":1}", 7);
	assert_int_equal(o.st, TB_WIRE_BAD);
	assert_string_equal(o.err,
	                    "not in the Schema Registry wire format (the first byte is not the "
	                    "magic byte 0)");
	o = decode(c, "\x00\x00", 2);
	assert_int_equal(o.st, TB_WIRE_BAD);
	assert_non_null(strstr(o.err, "shorter than its 5-byte header"));
	tb_wire_cache_free(c);
}

static void test_failures(void **state)
{
	(void)state;
	tb_wire_cache *c = tb_wire_cache_new();
	static const char rec[] = "\x00\x00\x00\x00\x09\x02";
	/* an id the registry does not know: bad for a while */
	assert_int_equal(tb_wire_add(c, 9, NULL, NULL, "not in the registry (40403 not found)"), 0);
	struct out o = decode(c, rec, sizeof(rec) - 1);
	assert_int_equal(o.st, TB_WIRE_BAD);
	assert_string_equal(o.err, "schema id 9: not in the registry (40403 not found)");
	/* registered since and asked again: replaces the failure */
	assert_int_equal(tb_wire_add(c, 9, "AVRO", "\"boolean\"", NULL), 0);
	o = decode(c, rec, sizeof(rec) - 1);
	assert_int_equal(o.st, TB_WIRE_OK);
	assert_string_equal(o.json, "true");
	free(o.owned);
	/* a registry answer that is not an Avro schema */
	assert_int_equal(tb_wire_add(c, 10, NULL, "{\"type\":\"nope\"}", NULL), 0);
	o = decode(c, "\x00\x00\x00\x00\x0a", 5);
	assert_int_equal(o.st, TB_WIRE_BAD);
	assert_non_null(strstr(o.err, "schema id 10: not an Avro schema"));
	/* many ids, added out of order, all found */
	for (int i = 1000; i > 100; i -= 7)
		assert_int_equal(tb_wire_add(c, i, "JSON", "{}", NULL), 0);
	for (int i = 1000; i > 100; i -= 7) {
		char v[6] = {0, 0, 0, (char)(i >> 8), (char)(i & 0xff), '1'};
		o = decode(c, v, 6);
		assert_int_equal(o.st, TB_WIRE_OK);
		assert_int_equal(o.id, i);
	}
	o = decode(c, "\x00\x00\x00\x00\x65", 5); /* 101: never added */
	assert_int_equal(o.st, TB_WIRE_MISSING);
	tb_wire_cache_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_schema_id),
	    cmocka_unit_test(test_decode),
	    cmocka_unit_test(test_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
