/* The bytes path: tjs_doc_parse against jansson, the read API, and
 * tjs_validate_bytes / tjs_validate_value against tjs_validate. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tributary/json_encode.h"
#include "tributary/jsonschema.h"

static tjs_registry *reg;

static int setup(void **state)
{
	(void)state;
	reg = tjs_registry_new();
	return reg ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	tjs_registry_free(reg);
	return 0;
}

static tjs_schema *compile(const char *text)
{
	char err[512];
	json_t *s = json_loads(text, 0, NULL);
	assert_non_null(s);
	tjs_schema *c = tjs_compile(reg, s, NULL, NULL, err, sizeof(err));
	json_decref(s);
	if (!c)
		fail_msg("compile failed: %s", err);
	return c;
}

struct input {
	const char *text;
	size_t len; /* 0: strlen */
};

/* Accepted by both or refused by both; when accepted, the same document
 * (jansson's copy equal, compact text byte for byte tb_json_encode's). */
static void check_like_jansson(const char *text, size_t len)
{
	char err[200];
	json_error_t je;
	json_t *j = json_loadb(text, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
	tjs_doc *d = tjs_doc_parse(text, len, 0, err, sizeof(err));
	if (!j != !d)
		fail_msg("%.*s: jansson %s (%s), tjs_doc %s (%s)", (int)(len > 80 ? 80 : len), text,
		         j ? "accepts" : "refuses", j ? "" : je.text, d ? "accepts" : "refuses",
		         d ? "" : err);
	if (!d) {
		assert_true(strstr(err, "line ") != NULL); /* a position for the log */
		return;
	}
	json_t *copy = tjs_value_to_json(tjs_doc_root(d));
	assert_non_null(copy);
	assert_true(json_equal(j, copy));
	size_t n1 = 0, n2 = 0;
	char *a = tb_json_encode(j, &n1), *b = tjs_value_dump(tjs_doc_root(d), &n2);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(n1, n2);
	assert_memory_equal(a, b, n1);
	free(a);
	free(b);
	json_decref(copy);
	json_decref(j);
	tjs_doc_free(d);
}

static void parse_agrees_with_jansson(void **state)
{
	(void)state;
	static const struct input inputs[] = {
	    /* accepted */
	    {"{}", 0},
	    {"[]", 0},
	    {" \t\r\n[ 1 , 2 ]\n", 0},
	    {"0", 0},
	    {"-0", 0},
	    {"-0.0", 0},
	    {"{\"a\":[1,2.5,-3,1e3,1E-2,2e+2,true,false,null],\"b\":{\"c\":{}}}", 0},
	    {"\"\\u00e9\\ud83d\\ude00\\n\\t\\\"\\\\\\/\\b\\f\\r\"", 0},
	    {"\"\\u001f\\u007f\"", 0},
	    {"\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"", 0},
	    {"9223372036854775807", 0},
	    {"-9223372036854775808", 0},
	    {"1.7976931348623157e308", 0},
	    {"0.1", 0},
	    {"123456789.1234567", 0},
	    {"92.989999999999995", 0},
	    {"1e22", 0},
	    {"1e23", 0},
	    {"0.000001234", 0},
	    {"{\"\":\"\"}", 0},
	    {"{\"a\":1,\"A\":2}", 0},
	    {"[[[[[[[[[[]]]]]]]]]]", 0},
	    /* refused */
	    {"", 0},
	    {" ", 0},
	    {"{", 0},
	    {"[1,]", 0},
	    {"{\"a\":1,}", 0},
	    {"{\"a\" 1}", 0},
	    {"{a:1}", 0},
	    {"01", 0},
	    {"1.", 0},
	    {".5", 0},
	    {"-", 0},
	    {"1e", 0},
	    {"+1", 0},
	    {"tru", 0},
	    {"nulll", 0},
	    {"[1] x", 0},
	    {"\"abc", 0},
	    {"\"\x01\"", 0},
	    {"\"\xc3\"", 0},
	    {"\"\xed\xa0\x80\"", 0},
	    {"\"\xc0\xaf\"", 0},
	    {"\"\xf4\x90\x80\x80\"", 0},
	    {"\"\xff\"", 0},
	    {"\"\\ud800\"", 0},
	    {"\"\\udc00\"", 0},
	    {"\"\\ud800\\u0041\"", 0},
	    {"\"\\u0000\"", 0},
	    {"{\"a\":1,\"a\":2}", 0},
	    {"{\"k\\u0041\":1,\"kA\":2}", 0},
	    {"\"\\x\"", 0},
	    {"\"\\u12G4\"", 0},
	    {"[1]\0", 4},
	    {"\"a\0b\"", 5},
	    {"[\"\\", 0},
	    {"{\"a\":}", 0},
	    {"[,1]", 0},
	    {"\"\\u00", 0},
	};
	for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++)
		check_like_jansson(inputs[i].text,
		                   inputs[i].len ? inputs[i].len : strlen(inputs[i].text));

	/* The string scanner reads eight bytes at a time and stops at the
	 * first special byte of a word: each at every offset, with plain bytes
	 * on both sides (a special byte above must not hide one below). */
	static const char *const specials[] = {
	    "\"",       "\\n",          "\\u0041",          "\x01", "\x1f", "\x7f",
	    "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xff", "\xc3", "\\\"\x01"};
	for (size_t k = 0; k < sizeof(specials) / sizeof(specials[0]); k++) {
		for (size_t before = 0; before <= 17; before++) {
			for (size_t after = 0; after <= 9; after += 3) {
				char text[64];
				size_t len = 0;
				text[len++] = '[';
				text[len++] = '"';
				for (size_t i = 0; i < before; i++)
					text[len++] = (char)('a' + i % 26);
				len += (size_t)snprintf(text + len, sizeof(text) - len, "%s",
				                        specials[k]);
				for (size_t i = 0; i < after; i++)
					text[len++] = (char)(i % 2 ? '\x01' : 'z');
				text[len++] = '"';
				text[len++] = ']';
				check_like_jansson(text, len);
				/* the same without the control bytes after it */
				for (size_t i = 0; i < after; i++)
					text[len - 2 - after + i] = 'z';
				check_like_jansson(text, len);
			}
		}
	}

	/* many members: duplicate detection past the pairwise check */
	char big[4096];
	size_t n = 0;
	big[n++] = '{';
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(big + n, sizeof(big) - n, "%s\"k%d\":%d", i ? "," : "", i, i);
	big[n++] = '}';
	check_like_jansson(big, n);
	n += (size_t)snprintf(big + n - 1, sizeof(big) - n, ",\"k57\":0}") - 1;
	check_like_jansson(big, n);

	/* nesting: jansson's depth bound, not the C stack */
	for (size_t depth = 2047; depth <= 2049; depth++) {
		char *deep = malloc(2 * depth);
		assert_non_null(deep);
		memset(deep, '[', depth);
		memset(deep + depth, ']', depth);
		check_like_jansson(deep, 2 * depth);
		free(deep);
	}
	char *abyss = malloc(1000000);
	assert_non_null(abyss);
	memset(abyss, '[', 1000000);
	assert_null(tjs_doc_parse(abyss, 1000000, 0, NULL, 0));
	free(abyss);
}

/* Numbers RFC 8259 allows that neither a 64-bit integer nor a double holds
 * exactly (jansson refuses some, rounds the others): kept as written. */
static void big_numbers_kept_exactly(void **state)
{
	(void)state;
	static const char *const kept[] = {"9223372036854775808",
	                                   "-9223372036854775809",
	                                   "12345678901234567890123",
	                                   "1234567890123456789012345678901234567890",
	                                   "1e400",
	                                   "-1e400",
	                                   "1E+400",
	                                   "2.5e-400",
	                                   "1.7976931348623157e309",
	                                   "123456789.123456789",
	                                   "92.9899999999999951",
	                                   "0.1000000000000000000001",
	                                   "5e-324"};
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		char text[256], err[200];
		size_t len;
		snprintf(text, sizeof(text), "[%s,{\"n\":%s}]", kept[i], kept[i]);
		tjs_doc *d = tjs_doc_parse(text, strlen(text), 0, err, sizeof(err));
		if (!d)
			fail_msg("%s refused: %s", text, err);
		const tjs_value *v = tjs_value_at(tjs_doc_root(d), 0);
		assert_int_equal(tjs_value_type(v), JSON_REAL);
		const char *lit = tjs_value_number_text(v, &len);
		assert_non_null(lit);
		assert_int_equal(len, strlen(kept[i]));
		assert_string_equal(lit, kept[i]);
		char *out = tjs_value_dump(tjs_doc_root(d), &len);
		assert_string_equal(out, text); /* the bytes unchanged */
		free(out);
		tjs_doc_free(d);
	}
	/* exact as they are: no literal kept */
	static const char *const plain[] = {"9223372036854775807",
	                                    "0.1",
	                                    "1e22",
	                                    "123456789012345",
	                                    "-1.5e-300",
	                                    "0",
	                                    "0.30000000000000004",
	                                    "1.7976931348623157e308"};
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		tjs_doc *d = tjs_doc_parse(plain[i], strlen(plain[i]), 0, NULL, 0);
		assert_non_null(d);
		assert_null(tjs_value_number_text(tjs_doc_root(d), NULL));
		tjs_doc_free(d);
	}
	tjs_doc *d = tjs_doc_parse("-1e400", 6, 0, NULL, 0);
	assert_true(tjs_value_real(tjs_doc_root(d)) < -1e308); /* -inf: the nearest */
	assert_null(tjs_value_to_json(tjs_doc_root(d)));
	tjs_doc_free(d);
}

/* Kept literals are validated as the numbers they are, not as the nearest
 * double (which would make 1e400 infinite and 1.00000000000000000001 one). */
static void big_numbers_validated_exactly(void **state)
{
	(void)state;
	static const struct {
		const char *schema, *instance;
		bool valid;
	} cases[] = {
	    {"{\"type\":\"integer\"}", "1234567890123456789012345678901234567890", true},
	    {"{\"type\":\"integer\"}", "-1234567890123456789012345678901234567890", true},
	    {"{\"type\":\"integer\"}", "1e400", true},
	    {"{\"type\":\"integer\"}", "1.5e400", true},
	    {"{\"type\":\"integer\"}", "1.00000000000000000001", false},
	    {"{\"type\":\"integer\"}", "1e-400", false},
	    {"{\"$schema\":\"http://json-schema.org/draft-04/schema#\",\"type\":\"integer\"}",
	     "1e400", false},
	    {"{\"$schema\":\"http://json-schema.org/draft-04/schema#\",\"type\":\"integer\"}",
	     "12345678901234567890123", true},
	    {"{\"type\":\"number\"}", "-1e400", true},
	    {"{\"type\":\"string\"}", "1e400", false},
	    {"{\"maximum\":1e308}", "1e400", false},
	    {"{\"maximum\":1e308}", "-1e400", true},
	    {"{\"maximum\":9223372036854775807}", "9223372036854775808", false},
	    {"{\"minimum\":-9223372036854775808}", "-9223372036854775809", false},
	    {"{\"maximum\":18446744073709551615.0}", "18446744073709551600", true},
	    {"{\"exclusiveMinimum\":0}", "1e-400", true},
	    {"{\"exclusiveMinimum\":0}", "-1e-400", false},
	    {"{\"exclusiveMaximum\":1}", "0.99999999999999999999", true},
	    {"{\"exclusiveMaximum\":1}", "1.00000000000000000001", false},
	    {"{\"maximum\":1}", "1.00000000000000000000", true},
	    {"{\"exclusiveMaximum\":972783798187987123879878123.18878137}",
	     "972783798187987123879878123.188781371", false},
	    {"{\"multipleOf\":3}", "123456789012345678901234567890", true},
	    {"{\"multipleOf\":3}", "123456789012345678901234567891", false},
	    {"{\"multipleOf\":0.01}", "12345678901234567890.12", true},
	    {"{\"multipleOf\":0.01}", "1.00000000000000000001", false},
	    {"{\"multipleOf\":0.01}", "1e400", true},
	    /* what JSON.stringify writes keeps double semantics (0.1 + 0.2) */
	    {"{\"multipleOf\":0.01}", "0.30000000000000004", true},
	    {"{\"multipleOf\":0.01}", "0.300000000000000040", false},
	    {"{\"multipleOf\":7}", "7e400", true},
	    {"{\"multipleOf\":7}", "1e400", false},
	    {"{\"multipleOf\":2}", "1e-400", false},
	    {"{\"enum\":[1,0.1]}", "0.10000000000000000000", true},
	    {"{\"enum\":[1,0.1]}", "0.10000000000000000001", false},
	    {"{\"const\":100}", "1.00000000000000000000e2", true},
	    {"{\"const\":9223372036854775807}", "9223372036854775808", false},
	    {"{\"uniqueItems\":true}", "[1e400,1.0e400]", false},
	    {"{\"uniqueItems\":true}", "[0.10000000000000000001,0.1]", true},
	    {"{\"uniqueItems\":true}", "[0.10000000000000000000,0.1]", false},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tjs_schema *sc = compile(cases[i].schema);
		tjs_result r = {0};
		bool ok =
		    tjs_validate_bytes(sc, cases[i].instance, strlen(cases[i].instance), 0, &r, 0);
		if (ok != cases[i].valid)
			fail_msg("%s against %s: %s (%s)", cases[i].instance, cases[i].schema,
			         ok ? "valid" : "invalid", r.count ? r.errors[0].message : "");
		assert_int_equal(r.count == 0, cases[i].valid);
		tjs_result_clear(&r);
		tjs_schema_free(sc);
	}
	/* the message shows the literal */
	tjs_schema *sc = compile("{\"maximum\":1e308}");
	tjs_result r = {0};
	assert_false(tjs_validate_bytes(sc, "1e400", 5, 0, &r, 0));
	assert_non_null(strstr(r.errors[0].message, "1e400 is greater than the maximum"));
	tjs_result_clear(&r);
	tjs_schema_free(sc);
}

static void parse_flags(void **state)
{
	(void)state;
	size_t len;
	tjs_doc *d = tjs_doc_parse("\"a\\u0000b\"", 10, TJS_PARSE_ALLOW_NUL, NULL, 0);
	assert_non_null(d);
	assert_memory_equal(tjs_value_string(tjs_doc_root(d), &len), "a\0b", 4);
	assert_int_equal(len, 3);
	tjs_doc_free(d);

	d = tjs_doc_parse("{\"a\":1,\"a\":2}", 13, TJS_PARSE_ALLOW_DUPLICATES, NULL, 0);
	assert_non_null(d);
	assert_int_equal(tjs_value_size(tjs_doc_root(d)), 2);
	tjs_doc_free(d);

	d = tjs_doc_parse("[12345678901234567890]", 22, TJS_PARSE_BIGINT_AS_REAL, NULL, 0);
	assert_non_null(d);
	const tjs_value *v = tjs_value_at(tjs_doc_root(d), 0);
	assert_int_equal(tjs_value_type(v), JSON_REAL);
	assert_true(tjs_value_real(v) == 12345678901234567890.0);
	tjs_doc_free(d);

	char err[200];
	assert_null(tjs_doc_parse("{\n  \"a\": tru }", 14, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "line 2, column 8"));
}

static void read_api(void **state)
{
	(void)state;
	const char *text =
	    "{\"id\":\"e1\",\"n\":42,\"x\":2.5,\"ok\":true,\"tags\":[\"a\",\"b\"],\"k\\\"q\":null}";
	tjs_doc *d = tjs_doc_parse(text, strlen(text), 0, NULL, 0);
	assert_non_null(d);
	const tjs_value *root = tjs_doc_root(d);
	assert_int_equal(tjs_value_type(root), JSON_OBJECT);
	assert_int_equal(tjs_value_size(root), 6);
	size_t len = 0;
	assert_string_equal(tjs_value_string(tjs_value_get(root, "id"), &len), "e1");
	assert_int_equal(len, 2);
	assert_int_equal(tjs_value_integer(tjs_value_get(root, "n")), 42);
	assert_true(tjs_value_real(tjs_value_get(root, "n")) == 42.0);
	assert_true(tjs_value_real(tjs_value_get(root, "x")) == 2.5);
	assert_int_equal(tjs_value_type(tjs_value_get(root, "ok")), JSON_TRUE);
	assert_int_equal(tjs_value_type(tjs_value_get(root, "k\"q")), JSON_NULL);
	assert_null(tjs_value_get(root, "missing"));
	const tjs_value *tags = tjs_value_get(root, "tags");
	assert_int_equal(tjs_value_size(tags), 2);
	assert_string_equal(tjs_value_string(tjs_value_at(tags, 1), NULL), "b");
	assert_null(tjs_value_at(tags, 2));
	const char *key;
	size_t keylen;
	assert_int_equal(tjs_value_integer(tjs_value_member(root, 1, &key, &keylen)), 42);
	assert_string_equal(key, "n");
	assert_int_equal(keylen, 1);
	assert_null(tjs_value_member(root, 6, &key, &keylen));
	assert_null(key);
	/* the wrong type gives nothing rather than garbage */
	assert_null(tjs_value_string(tags, &len));
	assert_int_equal(len, 0);
	assert_int_equal(tjs_value_integer(tags), 0);
	assert_int_equal(tjs_value_size(tjs_value_get(root, "id")), 0);
	assert_null(tjs_value_get(tags, "id"));
	assert_null(tjs_value_at(root, 0));
	size_t n;
	char *dump = tjs_value_dump(tags, &n);
	assert_string_equal(dump, "[\"a\",\"b\"]");
	assert_int_equal(n, 9);
	free(dump);
	tjs_doc_free(d);
}

static const char *order_schema =
    "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"type\":\"object\","
    "\"required\":[\"id\",\"lines\"],\"properties\":{\"id\":{\"type\":\"string\"},"
    "\"lines\":{\"type\":\"array\",\"minItems\":1,\"items\":{\"$ref\":\"#/$defs/line\"}}},"
    "\"additionalProperties\":false,"
    "\"$defs\":{\"line\":{\"type\":\"object\",\"required\":[\"sku\",\"qty\"],"
    "\"properties\":{\"sku\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{3}-\\\\d+$\"},"
    "\"qty\":{\"type\":\"integer\",\"minimum\":1},\"tags\":{\"uniqueItems\":true,\"items\":{"
    "\"enum\":[\"a\",\"b\",1.5]}}},"
    "\"unevaluatedProperties\":false,\"anyOf\":[{\"required\":[\"sku\"]},{\"required\":[\"ean\"]}]}"
    "}}";

static void assert_same_results(const tjs_result *a, const tjs_result *b)
{
	assert_int_equal(a->count, b->count);
	for (size_t i = 0; i < a->count; i++) {
		assert_string_equal(a->errors[i].instance_location, b->errors[i].instance_location);
		assert_string_equal(a->errors[i].keyword_location, b->errors[i].keyword_location);
		assert_string_equal(a->errors[i].message, b->errors[i].message);
	}
}

static void bytes_and_json_paths_agree(void **state)
{
	(void)state;
	tjs_schema *s = compile(order_schema);
	static const char *docs[] = {
	    "{\"id\":\"o1\",\"lines\":[{\"sku\":\"ABC-1\",\"qty\":2,\"tags\":[\"a\",1.5]}]}",
	    "{\"lines\":[{\"sku\":\"abc\",\"qty\":0,\"x\":1,\"tags\":[\"a\",\"a\",\"c\"]},{\"qty\":"
	    "1.5},7],"
	    "\"extra\":{\"deep\":[1,2]},\"id\":5}",
	    "{\"id\":\"o1\",\"lines\":[]}",
	    "[1,2]",
	    "{\"id\":\"\xc3\xa9\",\"lines\":[{\"sku\":\"ABC-12\",\"qty\":1,\"a/b~c\":true}]}",
	};
	for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
		json_t *j = json_loads(docs[i], JSON_DECODE_ANY, NULL);
		assert_non_null(j);
		tjs_result a, b, c;
		bool va = tjs_validate(s, j, &a, 0);
		bool vb = tjs_validate_bytes(s, docs[i], strlen(docs[i]), 0, &b, 0);
		tjs_doc *d = tjs_doc_parse(docs[i], strlen(docs[i]), 0, NULL, 0);
		assert_non_null(d);
		bool vc = tjs_validate_value(s, tjs_doc_root(d), &c, 3);
		assert_int_equal(va, vb);
		assert_int_equal(va, vc);
		assert_int_equal(va, tjs_validate_bytes(s, docs[i], strlen(docs[i]), 0, NULL, 0));
		assert_int_equal(va, i == 0); /* only the first is valid */
		assert_same_results(&a, &b);
		/* max_errors keeps the first ones */
		assert_int_equal(c.count, a.count < 3 ? a.count : 3);
		for (size_t e = 0; e < c.count; e++)
			assert_string_equal(a.errors[e].message, c.errors[e].message);
		tjs_result_clear(&a);
		tjs_result_clear(&b);
		tjs_result_clear(&c);
		tjs_doc_free(d);
		json_decref(j);
	}
	tjs_schema_free(s);
}

static void bytes_errors(void **state)
{
	(void)state;
	tjs_schema *s = compile(order_schema);
	tjs_result r;
	assert_false(tjs_validate_bytes(s, "{\"id\":", 6, 0, &r, 10));
	assert_int_equal(r.count, 1);
	assert_string_equal(r.errors[0].instance_location, "");
	assert_string_equal(r.errors[0].keyword_location, "");
	assert_true(strncmp(r.errors[0].message, "not valid JSON: ", 16) == 0);
	tjs_result_clear(&r);

	const char *bad = "{\"id\":\"o\",\"lines\":[{\"sku\":\"ABC-1\",\"qty\":0}]}";
	assert_false(tjs_validate_bytes(s, bad, strlen(bad), 0, &r, 10));
	assert_int_equal(r.count, 1);
	assert_string_equal(r.errors[0].instance_location, "/lines/0/qty");
	assert_string_equal(r.errors[0].keyword_location,
	                    "/properties/lines/items/$ref/properties/qty/minimum");
	assert_string_equal(r.errors[0].message, "0 is less than the minimum of 1");
	tjs_result_clear(&r);

	const char *good = "{\"id\":\"o\",\"lines\":[{\"sku\":\"ABC-1\",\"qty\":3}]}";
	r.count = 99;
	assert_true(tjs_validate_bytes(s, good, strlen(good), 0, &r, 10));
	assert_int_equal(r.count, 0);
	assert_null(r.errors);
	assert_false(tjs_validate_bytes(NULL, good, strlen(good), 0, NULL, 0));
	assert_false(tjs_validate_value(s, NULL, NULL, 0));
	tjs_schema_free(s);
}

struct worker_arg {
	const tjs_schema *s;
	int ok;
};

static void *worker(void *p)
{
	struct worker_arg *a = p;
	const char *good = "{\"id\":\"o\",\"lines\":[{\"sku\":\"ABC-1\",\"qty\":3},{\"sku\":\"XYZ-"
	                   "22\",\"qty\":1}]}";
	const char *bad = "{\"id\":\"o\",\"lines\":[{\"sku\":\"AB-1\",\"qty\":3}]}";
	a->ok = 1;
	for (int i = 0; i < 2000; i++) {
		tjs_result r;
		if (!tjs_validate_bytes(a->s, good, strlen(good), 0, &r, 0) || r.count)
			a->ok = 0;
		if (tjs_validate_bytes(a->s, bad, strlen(bad), 0, &r, 0) || r.count != 1 ||
		    strcmp(r.errors[0].instance_location, "/lines/0/sku"))
			a->ok = 0;
		tjs_result_clear(&r);
	}
	return NULL;
}

static void concurrent_bytes_validation(void **state)
{
	(void)state;
	tjs_schema *s = compile(order_schema);
	pthread_t t[4];
	struct worker_arg a[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (struct worker_arg){s, 0};
		assert_int_equal(pthread_create(&t[i], NULL, worker, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].ok, 1);
	}
	tjs_schema_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(parse_agrees_with_jansson),
	    cmocka_unit_test(parse_flags),
	    cmocka_unit_test(big_numbers_kept_exactly),
	    cmocka_unit_test(big_numbers_validated_exactly),
	    cmocka_unit_test(read_api),
	    cmocka_unit_test(bytes_and_json_paths_agree),
	    cmocka_unit_test(bytes_errors),
	    cmocka_unit_test(concurrent_bytes_validation),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
