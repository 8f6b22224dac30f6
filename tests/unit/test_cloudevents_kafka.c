/* CloudEvents Kafka protocol binding: reading records (shared/cloudevents). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tributary/cloudevents.h"

/* Headers from "name", "value" pairs; a NULL value is a null header. */
static rd_kafka_headers_t *headers(size_t n, const char *const *kv)
{
	rd_kafka_headers_t *h = rd_kafka_headers_new(n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(rd_kafka_header_add(h, kv[2 * i], -1, kv[2 * i + 1], -1),
		                 RD_KAFKA_RESP_ERR_NO_ERROR);
	return h;
}

#define HEADERS(...)                                                                               \
	headers(sizeof((const char *const[]){__VA_ARGS__}) / sizeof(char *) / 2,                   \
	        (const char *const[]){__VA_ARGS__})

static void test_structured_type(void **state)
{
	(void)state;
	static const char *const yes[] = {
	    "application/cloudevents+json",
	    "APPLICATION/CloudEvents+JSON",
	    "application/cloudevents+json; charset=UTF-8",
	    "application/cloudevents+json;charset=utf-8",
	    " application/cloudevents+json \t; x=y",
	};
	static const char *const no[] = {
	    "application/cloudevents+jsonx",
	    "application/cloudevents+json-batch",
	    "application/cloudevents-batch+json",
	    "application/cloudevents",
	    "application/json",
	    "x application/cloudevents+json",
	    "",
	    ";application/cloudevents+json",
	};
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++)
		assert_true(tb_ce_is_structured_type(yes[i], strlen(yes[i])));
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		assert_false(tb_ce_is_structured_type(no[i], strlen(no[i])));
	/* the length counts, not a NUL */
	assert_false(tb_ce_is_structured_type("application/cloudevents+json", 27));
}

static void test_read_mode(void **state)
{
	(void)state;
	const char *ct;
	size_t ctlen;
	rd_kafka_headers_t *h;

	assert_int_equal(tb_ce_kafka_read(NULL, &ct, &ctlen), TB_CE_KAFKA_PLAIN);
	assert_null(ct);
	assert_int_equal(ctlen, 0);

	/* binary: ce_specversion, whatever else */
	h = HEADERS("ce_specversion", "1.0", "content-type", "application/json");
	assert_int_equal(tb_ce_kafka_read(h, &ct, &ctlen), TB_CE_KAFKA_BINARY);
	assert_int_equal(ctlen, 16);
	assert_memory_equal(ct, "application/json", 16);
	rd_kafka_headers_destroy(h);

	/* other ce_ headers without ce_specversion: a plain record */
	h = HEADERS("ce_type", "t", "ce_id", "1", "ce_source", "s");
	assert_int_equal(tb_ce_kafka_read(h, NULL, NULL), TB_CE_KAFKA_PLAIN);
	rd_kafka_headers_destroy(h);

	/* structured is checked first, parameters allowed */
	h = HEADERS("ce_specversion", "1.0", "content-type",
	            "Application/CloudEvents+JSON; charset=utf-8");
	assert_int_equal(tb_ce_kafka_read(h, &ct, &ctlen), TB_CE_KAFKA_STRUCTURED);
	assert_int_equal(ctlen, strlen("Application/CloudEvents+JSON; charset=utf-8"));
	rd_kafka_headers_destroy(h);

	/* a longer media type is not the structured one */
	h = HEADERS("content-type", "application/cloudevents+json-seq");
	assert_int_equal(tb_ce_kafka_read(h, NULL, NULL), TB_CE_KAFKA_PLAIN);
	rd_kafka_headers_destroy(h);

	/* the last content-type counts; a null one is none */
	h = HEADERS("content-type", "application/cloudevents+json", "content-type", "text/plain");
	assert_int_equal(tb_ce_kafka_read(h, &ct, &ctlen), TB_CE_KAFKA_PLAIN);
	assert_memory_equal(ct, "text/plain", ctlen);
	rd_kafka_headers_destroy(h);
	h = HEADERS("content-type", NULL, "ce_specversion", "1.0");
	assert_int_equal(tb_ce_kafka_read(h, &ct, &ctlen), TB_CE_KAFKA_BINARY);
	assert_null(ct);
	rd_kafka_headers_destroy(h);
}

struct seen {
	char text[256];
	int stop_at, calls;
};

static int each(void *ctx, const char *name, const void *value, size_t len)
{
	struct seen *s = ctx;
	size_t n = strlen(s->text);
	snprintf(s->text + n, sizeof(s->text) - n, "%s=%.*s%s;", name, (int)len,
	         value ? (const char *)value : "", value ? "" : "(null)");
	return ++s->calls == s->stop_at ? 7 : 0;
}

static void test_each_attr(void **state)
{
	(void)state;
	rd_kafka_headers_t *h = HEADERS("ce_specversion", "1.0", "content-type", "a/b", "ce_id",
	                                "x", "CE_upper", "u", "ce_", "empty name", "ce_ext", NULL);
	struct seen s = {.stop_at = -1};
	assert_int_equal(tb_ce_kafka_each_attr(h, each, &s), 0);
	assert_string_equal(s.text, "specversion=1.0;id=x;=empty name;ext=(null);");
	/* the first non-zero result stops the walk */
	struct seen s2 = {.stop_at = 2};
	assert_int_equal(tb_ce_kafka_each_attr(h, each, &s2), 7);
	assert_string_equal(s2.text, "specversion=1.0;id=x;");
	assert_int_equal(tb_ce_kafka_each_attr(NULL, each, &s2), 0);
	rd_kafka_headers_destroy(h);
}

static tb_ce_status parse(rd_kafka_headers_t *h, const char *value, tb_event *ev, char *err)
{
	tb_ce_status st =
	    tb_ce_kafka_parse_binary(h, value, value ? strlen(value) : 0, ev, err, 256);
	rd_kafka_headers_destroy(h);
	return st;
}

static void test_parse_binary(void **state)
{
	(void)state;
	tb_event ev;
	char err[256];
	const char *value = "{\"n\": 1}";
	assert_int_equal(parse(HEADERS("ce_specversion", "1.0", "ce_id", "e1", "ce_type", "t",
	                               "content-type", "application/json", "other", "x"),
	                       value, &ev, err),
	                 TB_CE_OK);
	/* the attributes are copies: the headers are gone */
	assert_string_equal(tb_ce_attr_string(&ev, "specversion"), "1.0");
	assert_string_equal(tb_ce_attr_string(&ev, "id"), "e1");
	assert_string_equal(tb_ce_attr_string(&ev, "type"), "t");
	assert_string_equal(tb_ce_attr_string(&ev, "datacontenttype"), "application/json");
	assert_null(tb_ce_attr_string(&ev, "other"));
	assert_non_null(ev.data);
	assert_ptr_equal(ev.data_bytes, value); /* the data is the value itself */
	size_t len;
	char *json = tb_ce_to_json(&ev, &len);
	assert_string_equal(json, "{\"specversion\":\"1.0\",\"id\":\"e1\",\"type\":\"t\","
	                          "\"datacontenttype\":\"application/json\",\"data\":{\"n\": 1}}");
	free(json);
	tb_event_clear(&ev);

	/* non-JSON type: any bytes; no value: no data; a null header: "" */
	assert_int_equal(
	    parse(HEADERS("ce_specversion", "1.0", "ce_x", NULL, "content-type", "text/plain"),
	          "not { json", &ev, err),
	    TB_CE_OK);
	assert_null(ev.data);
	assert_true(ev.has_data);
	assert_string_equal(tb_ce_attr_string(&ev, "x"), "");
	tb_event_clear(&ev);
	/* no content-type: JSON data is parsed, anything else kept as bytes */
	assert_int_equal(parse(HEADERS("ce_specversion", "1.0"), "[1]", &ev, err), TB_CE_OK);
	assert_non_null(ev.data);
	tb_event_clear(&ev);
	value = "plain \xff text";
	assert_int_equal(parse(HEADERS("ce_specversion", "1.0", "ce_id", "p"), value, &ev, err),
	                 TB_CE_OK);
	assert_null(ev.data);
	assert_true(ev.has_data);
	assert_ptr_equal(ev.data_bytes, value);
	assert_int_equal(ev.data_len, strlen(value));
	assert_string_equal(tb_ce_attr_string(&ev, "id"), "p");
	json = tb_ce_to_json(&ev, &len);
	assert_string_equal(json, "{\"specversion\":\"1.0\",\"id\":\"p\","
	                          "\"data_base64\":\"cGxhaW4g/yB0ZXh0\"}");
	free(json);
	tb_event_clear(&ev);
	assert_int_equal(parse(HEADERS("ce_specversion", "1.0"), NULL, &ev, err), TB_CE_OK);
	assert_false(ev.has_data);
	tb_event_clear(&ev);
}

static void test_parse_binary_errors(void **state)
{
	(void)state;
	tb_event ev;
	char err[256];
	static const struct {
		const char *name, *value, *ct, *data;
		tb_ce_status st;
		const char *err;
	} cases[] = {
	    {"ce_Type", "t", NULL, "{}", TB_CE_INVALID_ATTRIBUTE, "'ce_Type' is not a valid"},
	    {"ce_", "t", NULL, "{}", TB_CE_INVALID_ATTRIBUTE, "'ce_' is not a valid"},
	    {"ce_data", "t", NULL, "{}", TB_CE_INVALID_ATTRIBUTE, "'ce_data' is not a valid"},
	    {"ce_datacontenttype", "a/b", NULL, "{}", TB_CE_INVALID_ATTRIBUTE, "not a valid"},
	    {"ce_specversion", "1.0", NULL, "{}", TB_CE_INVALID_ATTRIBUTE, "given twice"},
	    {"ce_id", "\xff\xfe", NULL, "{}", TB_CE_INVALID_ATTRIBUTE, "not valid UTF-8"},
	    {"ce_id", "a\x1b[31m", NULL, "{}", TB_CE_INVALID_ATTRIBUTE, "control character"},
	    {"ce_id", "a\xc2\x85", NULL, "{}", TB_CE_INVALID_ATTRIBUTE, "control character"},
	    {"ce_id", "1", "application/json", "{nope", TB_CE_INVALID_JSON, "not valid JSON"},
	    {"ce_id", "1", "application/x+json", "\xff", TB_CE_INVALID_UTF8, "not valid UTF-8"},
	    {"ce_id", "1", "text/\xff", "x", TB_CE_INVALID_ATTRIBUTE, "content-type"},
	    {"ce_id", "1", "text/\x01", "x", TB_CE_INVALID_ATTRIBUTE, "control character"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rd_kafka_headers_t *h = HEADERS("ce_specversion", "1.0");
		rd_kafka_header_add(h, cases[i].name, -1, cases[i].value, -1);
		if (cases[i].ct)
			rd_kafka_header_add(h, "content-type", -1, cases[i].ct, -1);
		err[0] = '\0';
		tb_ce_status st = parse(h, cases[i].data, &ev, err);
		if (st != cases[i].st || !strstr(err, cases[i].err))
			fail_msg("case %zu: status %d, error '%s'", i, (int)st, err);
		assert_int_equal(ev.nattrs, 0); /* cleared */
	}

	/* a NUL inside a header value is a control character */
	rd_kafka_headers_t *h = HEADERS("ce_specversion", "1.0");
	rd_kafka_header_add(h, "ce_id", -1, "a\0b", 3);
	assert_int_equal(parse(h, "{}", &ev, err), TB_CE_INVALID_ATTRIBUTE);
	assert_non_null(strstr(err, "control character"));

	/* at most TB_CE_KAFKA_MAX_ATTRS ce_ headers */
	for (int extra = 0; extra < 2; extra++) {
		h = HEADERS("ce_specversion", "1.0");
		for (int i = 1; i < TB_CE_KAFKA_MAX_ATTRS + extra; i++) {
			char name[16];
			snprintf(name, sizeof(name), "ce_x%d", i);
			rd_kafka_header_add(h, name, -1, "v", 1);
		}
		tb_ce_status st = parse(h, "{}", &ev, err);
		if (!extra) {
			assert_int_equal(st, TB_CE_OK);
			assert_int_equal(ev.nattrs, TB_CE_KAFKA_MAX_ATTRS);
			tb_event_clear(&ev);
		} else {
			assert_int_equal(st, TB_CE_INVALID_ATTRIBUTE);
			assert_non_null(strstr(err, "more than 64 ce_ headers"));
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_structured_type),     cmocka_unit_test(test_read_mode),
	    cmocka_unit_test(test_each_attr),           cmocka_unit_test(test_parse_binary),
	    cmocka_unit_test(test_parse_binary_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
