/* CloudEvents mapping (shared/cloudevents) and helpers (shared/util). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "tributary/cloudevents.h"
#include "tributary/json_encode.h"
#include "tributary/util.h"

static tb_ce_status parse(const char *json, tb_event *ev, char *err)
{
	tb_ce_status st = tb_ce_parse_structured(json, strlen(json), ev, err, 256);
	if (st == TB_CE_OK)
		st = tb_ce_complete(ev, err, 256);
	return st;
}

static void test_structured_complete(void **state)
{
	(void)state;
	tb_event ev;
	char err[256];
	assert_int_equal(parse("{\"specversion\":\"1.0\",\"source\":\"s\",\"type\":\"t\",\"data\":{"
	                       "\"total\":19.99}}",
	                       &ev, err),
	                 TB_CE_OK);
	const char *id = tb_ce_attr_string(&ev, "id");
	assert_non_null(id);
	assert_int_equal(strlen(id), 36);
	assert_int_equal(id[14], '7');
	assert_true(tb_time_is_rfc3339(tb_ce_attr_string(&ev, "time")));
	assert_int_equal(ev.data_len, strlen("{\"total\":19.99}"));
	assert_memory_equal(ev.data_bytes, "{\"total\":19.99}", ev.data_len);
	tb_event_clear(&ev);
}

/* JSON data goes on as the client wrote it (whitespace, number spelling):
 * the text between the member's colon and the next member, not a reprint. */
static void test_structured_data_verbatim(void **state)
{
	(void)state;
	tb_event ev;
	char err[256];
	const char *data = "{ \"total\" : 1.50,\n \"lines\": [ {\"q\": 1e2} ] }";
	char payload[512];
	snprintf(payload, sizeof(payload),
	         "{\"data\" :  %s , \"specversion\":\"1.0\",\"source\":\"s\",\"type\":\"t\"}",
	         data);
	assert_int_equal(parse(payload, &ev, err), TB_CE_OK);
	assert_int_equal(ev.data_len, strlen(data));
	assert_memory_equal(ev.data_bytes, data, ev.data_len);
	assert_null(ev.owned);
	tb_event_clear(&ev);
	/* last member, scalar data */
	assert_int_equal(
	    parse("{\"specversion\":\"1.0\",\"source\":\"s\",\"type\":\"t\",\"data\":-0.0}", &ev,
	          err),
	    TB_CE_OK);
	assert_int_equal(ev.data_len, 4);
	assert_memory_equal(ev.data_bytes, "-0.0", 4);
	tb_event_clear(&ev);
}

static void test_generated_ids(void **state)
{
	(void)state;
	char id[TB_UUID_LEN + 1], prev[TB_UUID_LEN + 1] = "", t[TB_TIME_LEN + 1];
	for (int n = 0; n < 100; n++) {
		tb_uuid7(id);
		assert_int_equal(strlen(id), 36);
		for (int i = 0; i < 36; i++) {
			if (i == 8 || i == 13 || i == 18 || i == 23)
				assert_int_equal(id[i], '-');
			else
				assert_non_null(strchr("0123456789abcdef", id[i]));
		}
		assert_int_equal(id[14], '7');           /* version */
		assert_non_null(strchr("89ab", id[19])); /* variant */
		assert_true(strncmp(prev, id, 8) <= 0);  /* time-ordered */
		assert_string_not_equal(prev, id);
		strcpy(prev, id);
	}
	/* Not time(): it reads a coarse clock that may still show the last
	 * second when the precise one has moved on. */
	struct timespec b, a;
	clock_gettime(CLOCK_REALTIME, &b);
	tb_time_rfc3339(t);
	clock_gettime(CLOCK_REALTIME, &a);
	time_t before = b.tv_sec, after = a.tv_sec;
	assert_int_equal(strlen(t), 24);
	assert_true(tb_time_is_rfc3339(t));
	struct tm tm = {0};
	assert_non_null(strptime(t, "%Y-%m-%dT%H:%M:%S", &tm));
	time_t at = timegm(&tm);
	assert_true(at >= before && at <= after);
}

static void test_structured_to_json(void **state)
{
	(void)state;
	tb_event ev;
	char err[256];
	json_error_t jerr;
	assert_int_equal(
	    parse("{\"specversion\":\"1.0\",\"id\":\"x\",\"source\":\"s\",\"type\":\"t\","
	          "\"data\":{\"a\":[1,2.5,\"\\u00e9\"]},\"n\":7}",
	          &ev, err),
	    TB_CE_OK);
	size_t len;
	char *json = tb_ce_to_json(&ev, &len);
	assert_int_equal(strlen(json), len);
	json_t *back = json_loads(json, 0, &jerr);
	assert_non_null(back);
	assert_string_equal(json_string_value(json_object_get(back, "id")), "x");
	assert_int_equal(json_integer_value(json_object_get(back, "n")), 7);
	char *data = tb_json_encode(json_object_get(back, "data"), NULL);
	assert_string_equal(data, "{\"a\":[1,2.5,\"\xc3\xa9\"]}");
	free(data);
	free(json);
	json_decref(back);
	tb_event_clear(&ev);
}

static void test_structured_errors(void **state)
{
	(void)state;
	tb_event ev;
	char err[256];
	assert_int_equal(
	    parse("{\"specversion\":\"1.0\",\"source\":\"s\",\"type\":\"t\"", &ev, err),
	    TB_CE_INVALID_JSON);
	assert_int_equal(parse("[1]", &ev, err), TB_CE_NOT_AN_EVENT);
	assert_int_equal(parse("{\"specversion\":\"1.0\",\"type\":\"t\"}", &ev, err),
	                 TB_CE_MISSING_ATTRIBUTE);
	assert_non_null(strstr(err, "source"));
	tb_event_clear(&ev);
	assert_int_equal(
	    parse("{\"specversion\":\"0.3\",\"source\":\"s\",\"type\":\"t\"}", &ev, err),
	    TB_CE_INVALID_ATTRIBUTE);
	tb_event_clear(&ev);
	assert_int_equal(
	    parse("{\"specversion\":\"1.0\",\"source\":\"s\",\"type\":\"t\",\"time\":\"now\"}", &ev,
	          err),
	    TB_CE_INVALID_ATTRIBUTE);
	tb_event_clear(&ev);
	assert_int_equal(
	    parse("{\"specversion\":\"1.0\",\"source\":\"s\",\"type\":\"t\",\"Bad\":\"x\"}", &ev,
	          err),
	    TB_CE_INVALID_ATTRIBUTE);
	assert_int_equal(
	    parse("{\"specversion\":\"1.0\",\"source\":\"s\",\"type\":\"t\",\"type\":\"u\"}", &ev,
	          err),
	    TB_CE_INVALID_JSON); /* duplicate keys */
	const char bad_utf8[] = "{\"specversion\":\"1.0\",\"source\":\"\xc3\x28\",\"type\":\"t\"}";
	assert_int_equal(tb_ce_parse_structured(bad_utf8, strlen(bad_utf8), &ev, err, sizeof(err)),
	                 TB_CE_INVALID_UTF8);
}

static void test_data_base64(void **state)
{
	(void)state;
	tb_event ev;
	char err[256];
	assert_int_equal(parse("{\"specversion\":\"1.0\",\"source\":\"s\",\"type\":\"t\",\"data_"
	                       "base64\":\"AAEC/w==\"}",
	                       &ev, err),
	                 TB_CE_OK);
	assert_int_equal(ev.data_len, 4);
	assert_memory_equal(ev.data_bytes, "\x00\x01\x02\xff", 4);
	assert_string_equal(tb_ce_attr_string(&ev, "datacontenttype"), "application/octet-stream");
	char *json = tb_ce_to_json(&ev, NULL);
	assert_non_null(strstr(json, "\"data_base64\":\"AAEC/w==\""));
	free(json);
	tb_event_clear(&ev);
}

static int collect_header(void *ctx, const char *name, const char *value, size_t len)
{
	json_object_set_new(ctx, name, json_stringn(value, len));
	return 0;
}

/* Parses `json` and completes it reusing `id` and `time`; returns what
 * tb_ce_reuse_generated did. */
static int parse_reusing(const char *json, const char *id, const char *time, tb_event *ev)
{
	char err[256];
	assert_int_equal(tb_ce_parse_structured(json, strlen(json), ev, err, sizeof(err)),
	                 TB_CE_OK);
	int r = tb_ce_reuse_generated(ev, id, time);
	assert_int_equal(tb_ce_complete(ev, err, sizeof(err)), TB_CE_OK);
	return r;
}

/* A retransmitted event takes the first copy's generated id and time; its
 * own attributes are never replaced. */
static void test_reuse_generated(void **state)
{
	(void)state;
	tb_event ev;
	const char *bare = "{\"specversion\":\"1.0\",\"source\":\"s\",\"type\":\"t\"}";
	const char *id = "0190f3a2-7b1c-7def-8abc-0123456789ab", *t = "2026-11-26T10:00:00.123Z";
	assert_int_equal(parse_reusing(bare, id, t, &ev), 1);
	assert_string_equal(tb_ce_attr_string(&ev, "id"), id);
	assert_string_equal(tb_ce_attr_string(&ev, "time"), t);
	tb_event_clear(&ev);

	/* No time given: a fresh one, as for a first copy. */
	assert_int_equal(parse_reusing(bare, id, NULL, &ev), 1);
	assert_string_equal(tb_ce_attr_string(&ev, "id"), id);
	assert_string_not_equal(tb_ce_attr_string(&ev, "time"), t);
	tb_event_clear(&ev);

	const char *own =
	    "{\"specversion\":\"1.0\",\"id\":\"mine\",\"time\":\"2020-01-01T00:00:00Z\","
	    "\"source\":\"s\",\"type\":\"t\"}";
	assert_int_equal(parse_reusing(own, id, t, &ev), 0);
	assert_string_equal(tb_ce_attr_string(&ev, "id"), "mine");
	assert_string_equal(tb_ce_attr_string(&ev, "time"), "2020-01-01T00:00:00Z");
	tb_event_clear(&ev);
}

static void test_binary_and_headers(void **state)
{
	(void)state;
	tb_event ev;
	char err[256];
	tb_ce_attr attrs[] = {{"specversion", "1.0"},
	                      {"id", "1"},
	                      {"source", "s"},
	                      {"type", "t"},
	                      {"partitionkey", "k"}};
	const char *payload = "{ \"a\": 1 }";
	assert_int_equal(tb_ce_parse_binary(attrs, 5, "application/json", payload, strlen(payload),
	                                    &ev, err, sizeof(err)),
	                 TB_CE_OK);
	assert_int_equal(tb_ce_complete(&ev, err, sizeof(err)), TB_CE_OK);
	assert_ptr_equal(ev.data_bytes, payload); /* binary mode keeps the bytes */
	assert_int_equal(tb_ce_set_authcontext(&ev, "user", "alice"), 0);
	json_t *h = json_object();
	assert_int_equal(tb_ce_each_kafka_header(&ev, collect_header, h), 0);
	assert_string_equal(json_string_value(json_object_get(h, "ce_id")), "1");
	assert_string_equal(json_string_value(json_object_get(h, "ce_partitionkey")), "k");
	assert_string_equal(json_string_value(json_object_get(h, "ce_authid")), "alice");
	assert_string_equal(json_string_value(json_object_get(h, "content-type")),
	                    "application/json");
	assert_null(json_object_get(h, "ce_datacontenttype"));
	json_decref(h);
	tb_event_clear(&ev);

	tb_ce_attr dup[] = {{"specversion", "1.0"}, {"id", "1"}, {"id", "2"}};
	assert_int_equal(tb_ce_parse_binary(dup, 3, NULL, "1", 1, &ev, err, sizeof(err)),
	                 TB_CE_INVALID_ATTRIBUTE);
	assert_int_equal(tb_ce_parse_binary(attrs, 4, NULL, "{", 1, &ev, err, sizeof(err)),
	                 TB_CE_INVALID_JSON);
	tb_ce_attr bad[] = {{"specversion", "1.0"}, {"subject", "\xc3\x28"}};
	assert_int_equal(tb_ce_parse_binary(bad, 2, NULL, "1", 1, &ev, err, sizeof(err)),
	                 TB_CE_INVALID_ATTRIBUTE);
	assert_non_null(strstr(err, "'subject' is not valid UTF-8"));
	/* JSON data that is not UTF-8, in a string and outside one */
	const char *bad_data[] = {"{\"a\":\"\xc3\x28\"}", "\xff"};
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(tb_ce_parse_binary(attrs, 4, "application/json", bad_data[i],
		                                    strlen(bad_data[i]), &ev, err, sizeof(err)),
		                 TB_CE_INVALID_UTF8);
		assert_string_equal(err, "data is not valid UTF-8");
	}
}

/* The content-type header of each kind of event: JSON data without a
 * datacontenttype implies application/json (JSON event format). */
static void test_implied_content_type(void **state)
{
	(void)state;
	static const struct {
		const char *event, *content_type;
	} cases[] = {
	    {"\"data\":{\"a\":1}", "application/json"},
	    {"\"data\":\"text\"", "application/json"},
	    {"\"data\":null", "application/json"},
	    {"\"datacontenttype\":\"application/vnd.x+json\",\"data\":[1]",
	     "application/vnd.x+json"},
	    {"\"datacontenttype\":\"text/plain\",\"data\":\"text\"", "text/plain"},
	    {"\"data_base64\":\"AAE=\"", "application/octet-stream"},
	    {"\"ext\":\"no data\"", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tb_event ev;
		char err[256], payload[256];
		snprintf(payload, sizeof(payload),
		         "{\"specversion\":\"1.0\",\"source\":\"s\",\"type\":\"t\",%s}",
		         cases[i].event);
		assert_int_equal(parse(payload, &ev, err), TB_CE_OK);
		json_t *h = json_object();
		assert_int_equal(tb_ce_each_kafka_header(&ev, collect_header, h), 0);
		const char *ct = json_string_value(json_object_get(h, "content-type"));
		if (cases[i].content_type)
			assert_string_equal(ct, cases[i].content_type);
		else
			assert_null(ct);
		json_decref(h);
		tb_event_clear(&ev);
	}
	/* binary mode: a payload without a Content Type is read as JSON */
	tb_event ev;
	char err[256];
	tb_ce_attr attrs[] = {{"specversion", "1.0"}, {"source", "s"}, {"type", "t"}};
	assert_int_equal(tb_ce_parse_binary(attrs, 3, NULL, "{}", 2, &ev, err, sizeof(err)),
	                 TB_CE_OK);
	assert_int_equal(tb_ce_complete(&ev, err, sizeof(err)), TB_CE_OK);
	json_t *h = json_object();
	assert_int_equal(tb_ce_each_kafka_header(&ev, collect_header, h), 0);
	assert_string_equal(json_string_value(json_object_get(h, "content-type")),
	                    "application/json");
	json_decref(h);
	tb_event_clear(&ev);
}

/* The spec's String type excludes U+0000-U+001F and U+007F-U+009F: refused
 * in every string attribute, structured or binary, required or extension,
 * before anything reaches a Kafka header. */
static void test_control_characters(void **state)
{
	(void)state;
	tb_event ev;
	char err[256], payload[256];
	/* JSON escapes, as the event's text spells them */
	const char *bad[] = {"a\\r\\nb", "a\\u001b[31m", "x\\u007f", "\\u0080",
	                     "y\\u009f", "\\t",          "raw\x7f",  "raw\xc2\x85"};
	const char *where[] = {"id", "source", "type", "subject", "myext"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (size_t w = 0; w < sizeof(where) / sizeof(where[0]); w++) {
			const char *v[5] = {"i", "s", "t", "ok", "ok"};
			v[w] = bad[i];
			snprintf(payload, sizeof(payload),
			         "{\"specversion\":\"1.0\",\"id\":\"%s\",\"source\":\"%s\","
			         "\"type\":\"%s\",\"subject\":\"%s\",\"myext\":\"%s\"}",
			         v[0], v[1], v[2], v[3], v[4]);
			assert_int_equal(
			    tb_ce_parse_structured(payload, strlen(payload), &ev, err, sizeof(err)),
			    TB_CE_INVALID_ATTRIBUTE);
			assert_non_null(strstr(err, "control character"));
			assert_non_null(strstr(err, where[w]));
		}
	}
	/* U+00A0 and beyond, and U+0100 (0xC4 0x80), are not control characters */
	const char *fine =
	    "{\"specversion\":\"1.0\",\"id\":\"\\u00a0\\u0100\\u00ff\xc2\xa0\",\"source\":\"s\","
	    "\"type\":\"t\"}";
	assert_int_equal(parse(fine, &ev, err), TB_CE_OK);
	tb_event_clear(&ev);

	/* binary mode: user properties and the content type */
	const char *raw_bad[] = {"a\r\nb", "a\x1b[31m", "x\x7f", "\xc2\x80", "y\xc2\x9f"};
	for (size_t i = 0; i < sizeof(raw_bad) / sizeof(raw_bad[0]); i++) {
		tb_ce_attr attrs[] = {{"specversion", "1.0"},
		                      {"id", "1"},
		                      {"source", "s"},
		                      {"type", "t"},
		                      {"myext", raw_bad[i]}};
		assert_int_equal(tb_ce_parse_binary(attrs, 5, NULL, "1", 1, &ev, err, sizeof(err)),
		                 TB_CE_INVALID_ATTRIBUTE);
		assert_non_null(strstr(err, "'myext' contains a control character"));
		attrs[1].value = raw_bad[i];
		attrs[4].value = "ok";
		assert_int_equal(tb_ce_parse_binary(attrs, 5, NULL, "1", 1, &ev, err, sizeof(err)),
		                 TB_CE_INVALID_ATTRIBUTE);
		assert_non_null(strstr(err, "'id' contains a control character"));
		assert_int_equal(
		    tb_ce_parse_binary(attrs + 2, 3, raw_bad[i], "1", 1, &ev, err, sizeof(err)),
		    TB_CE_INVALID_ATTRIBUTE);
		assert_non_null(strstr(err, "'datacontenttype' contains a control character"));
	}
}

/* Headers as "name=value;" in the order given (an ordered record of them). */
static int append_header(void *ctx, const char *name, const char *value, size_t len)
{
	char *out = ctx;
	size_t n = strlen(out);
	snprintf(out + n, 4096 - n, "%s=%.*s;", name, (int)len, value);
	return 0;
}

/* More attributes than the event keeps inline, every JSON kind an attribute
 * may have, and authcontext set over forged values twice. */
static void test_attribute_table(void **state)
{
	(void)state;
	tb_event ev;
	char err[256], payload[2048], want[4096], got[4096] = "";
	int n =
	    snprintf(payload, sizeof(payload),
	             "{\"specversion\":\"1.0\",\"id\":\"i\",\"source\":\"s\",\"type\":\"t\","
	             "\"authtype\":\"forged\",\"authid\":\"mallory\",\"authclaims\":\"x\","
	             "\"neg\":-7,\"zero\":-0,\"big\":9007199254740993,\"yes\":true,\"no\":false");
	int w = snprintf(want, sizeof(want),
	                 "ce_specversion=1.0;ce_id=i;ce_source=s;ce_type=t;ce_authtype=user;"
	                 "ce_authid=alice;ce_neg=-7;ce_zero=0;ce_big=9007199254740993;ce_yes=true;"
	                 "ce_no=false;");
	for (int i = 0; i < 20; i++) {
		n += snprintf(payload + n, sizeof(payload) - (size_t)n, ",\"ext%d\":\"v%d\"", i, i);
		w += snprintf(want + w, sizeof(want) - (size_t)w, "ce_ext%d=v%d;", i, i);
	}
	snprintf(payload + n, sizeof(payload) - (size_t)n, ",\"data\":\"plain\"}");
	snprintf(want + w, sizeof(want) - (size_t)w, "ce_time=");
	assert_int_equal(parse(payload, &ev, err), TB_CE_OK);
	assert_int_equal(tb_ce_set_authcontext(&ev, "app_user", "bob"), 0);
	assert_int_equal(tb_ce_set_authcontext(&ev, "user", "alice"), 0);
	assert_int_equal(tb_ce_each_kafka_header(&ev, append_header, got), 0);
	/* forged authclaims gone, authtype/authid replaced in place, the
	 * generated time last */
	assert_memory_equal(got, want, strlen(want));
	assert_true(tb_time_is_rfc3339(tb_ce_attr_string(&ev, "time")));
	assert_string_equal(tb_ce_attr_string(&ev, "ext19"), "v19");
	assert_null(tb_ce_attr_string(&ev, "neg")); /* not a string */
	assert_null(tb_ce_attr_string(&ev, "authclaims"));
	/* string data of a JSON type is JSON; here it is the event's own text */
	assert_int_equal(ev.data_len, strlen("\"plain\""));

	char *json = tb_ce_to_json(&ev, NULL);
	json_error_t jerr;
	json_t *back = json_loads(json, 0, &jerr);
	assert_non_null(back);
	assert_int_equal(json_integer_value(json_object_get(back, "neg")), -7);
	assert_int_equal(json_integer_value(json_object_get(back, "zero")), 0);
	assert_int_equal(json_integer_value(json_object_get(back, "big")), 9007199254740993LL);
	assert_true(json_is_true(json_object_get(back, "yes")));
	assert_true(json_is_false(json_object_get(back, "no")));
	assert_string_equal(json_string_value(json_object_get(back, "authid")), "alice");
	assert_null(json_object_get(back, "authclaims"));
	assert_string_equal(json_string_value(json_object_get(back, "data")), "plain");
	json_decref(back);
	free(json);
	tb_event_clear(&ev);

	/* Text data of a non-JSON type: the string's bytes, unescaped. */
	assert_int_equal(parse("{\"specversion\":\"1.0\",\"source\":\"s\",\"type\":\"t\","
	                       "\"datacontenttype\":\"text/plain\",\"data\":\"a\\nb\"}",
	                       &ev, err),
	                 TB_CE_OK);
	assert_int_equal(ev.data_len, 3);
	assert_memory_equal(ev.data_bytes, "a\nb", 3);
	assert_null(ev.data);
	assert_int_equal(tb_ce_set_authcontext(&ev, "unauthenticated", NULL), 0);
	assert_string_equal(tb_ce_attr_string(&ev, "authtype"), "unauthenticated");
	assert_null(tb_ce_attr_string(&ev, "authid"));
	tb_event_clear(&ev);
}

static void test_content_types(void **state)
{
	(void)state;
	assert_true(tb_ce_content_type_is_json(NULL));
	assert_true(tb_ce_content_type_is_json("application/json; charset=utf-8"));
	assert_true(tb_ce_content_type_is_json("application/vnd.example+json"));
	assert_false(tb_ce_content_type_is_json("text/plain"));
	assert_false(tb_ce_content_type_is_json("application/jsonx"));
}

static void test_json_encode_numbers(void **state)
{
	(void)state;
	json_error_t e;
	json_t *j = json_loads(
	    "{\"a\":19.99,\"b\":0.1,\"c\":1e300,\"d\":-0.0,\"e\":3.0,\"s\":\"q\\\"\\n\\u0001\"}", 0,
	    &e);
	char *s = tb_json_encode(j, NULL);
	assert_string_equal(
	    s,
	    "{\"a\":19.99,\"b\":0.1,\"c\":1e+300,\"d\":-0.0,\"e\":3.0,\"s\":\"q\\\"\\n\\u0001\"}");
	free(s);
	json_decref(j);
}

static void test_utf8(void **state)
{
	(void)state;
	assert_true(tb_utf8_valid("h\xc3\xa9llo \xf0\x9f\x98\x80", 11));
	assert_false(tb_utf8_valid("\xc0\xaf", 2));         /* overlong */
	assert_false(tb_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
	assert_false(tb_utf8_valid("\xe2\x82", 2));         /* truncated */
	assert_false(tb_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
}

static void test_time(void **state)
{
	(void)state;
	assert_true(tb_time_is_rfc3339("2026-11-25T14:37:32Z"));
	assert_true(tb_time_is_rfc3339("2026-11-25T14:37:32.123456+01:00"));
	assert_false(tb_time_is_rfc3339("2026-13-25T14:37:32Z"));
	assert_false(tb_time_is_rfc3339("2026-11-25 14:37:32Z"));
	assert_false(tb_time_is_rfc3339("2026-11-25T14:37:32"));
}

static void test_env_expansion(void **state)
{
	(void)state;
	char err[256];
	setenv("TB_TEST_BOOT", "kafka:9093", 1);
	unsetenv("TB_TEST_UNSET");
	json_t *j =
	    json_pack("{s:s,s:[s]}", "a", "${TB_TEST_BOOT}", "b", "x${TB_TEST_UNSET:-dflt}y");
	assert_int_equal(tb_json_expand_env(j, err, sizeof(err)), 0);
	assert_string_equal(json_string_value(json_object_get(j, "a")), "kafka:9093");
	assert_string_equal(json_string_value(json_array_get(json_object_get(j, "b"), 0)),
	                    "xdflty");
	json_decref(j);
	j = json_pack("{s:{s:s}}", "clusters", "x", "${TB_TEST_UNSET}");
	assert_int_equal(tb_json_expand_env(j, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "config.clusters.x"));
	assert_non_null(strstr(err, "TB_TEST_UNSET"));
	json_decref(j);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_structured_complete),
	    cmocka_unit_test(test_structured_errors),
	    cmocka_unit_test(test_structured_to_json),
	    cmocka_unit_test(test_structured_data_verbatim),
	    cmocka_unit_test(test_generated_ids),
	    cmocka_unit_test(test_reuse_generated),
	    cmocka_unit_test(test_data_base64),
	    cmocka_unit_test(test_binary_and_headers),
	    cmocka_unit_test(test_content_types),
	    cmocka_unit_test(test_json_encode_numbers),
	    cmocka_unit_test(test_utf8),
	    cmocka_unit_test(test_time),
	    cmocka_unit_test(test_env_expansion),
	    cmocka_unit_test(test_attribute_table),
	    cmocka_unit_test(test_control_characters),
	    cmocka_unit_test(test_implied_content_type),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
