/* The public API: error locations and messages, limits, registry, threads. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

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

static json_t *J(const char *text)
{
	json_error_t e;
	json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
	if (!j)
		fail_msg("bad JSON in test: %s: %s", text, e.text);
	return j;
}

static tjs_schema *compile(const char *text, const tjs_options *o)
{
	char err[512];
	json_t *s = J(text);
	tjs_schema *c = tjs_compile(reg, s, NULL, o, err, sizeof(err));
	json_decref(s);
	if (!c)
		fail_msg("compile failed: %s", err);
	return c;
}

static const char *order_schema =
    "{\"$schema\":\"https://json-schema.org/draft/2020-12/schema\",\"type\":\"object\","
    "\"required\":[\"lines\"],\"properties\":{\"lines\":{\"type\":\"array\",\"minItems\":1,"
    "\"items\":{\"$ref\":\"#/$defs/line\"}}},\"additionalProperties\":false,"
    "\"$defs\":{\"line\":{\"type\":\"object\",\"required\":[\"sku\",\"qty\"],"
    "\"properties\":{\"sku\":{\"type\":\"string\",\"pattern\":\"^[A-Z]{3}-\\\\d+$\"},"
    "\"qty\":{\"type\":\"integer\",\"minimum\":1}}}}}";

static void error_locations(void **state)
{
	(void)state;
	tjs_schema *s = compile(order_schema, NULL);
	json_t *inst =
	    J("{\"lines\":[{\"sku\":\"ABC-1\",\"qty\":2},{\"sku\":\"abc\",\"qty\":0}],\"x\":1}");
	tjs_result r = {0};
	assert_false(tjs_validate(s, inst, &r, 0));
	assert_int_equal(r.count, 3);
	/* each error says where in the instance, through which keywords, and why */
	bool seen_qty = false, seen_sku = false, seen_extra = false;
	for (size_t i = 0; i < r.count; i++) {
		const tjs_error *e = &r.errors[i];
		if (!strcmp(e->instance_location, "/lines/1/qty")) {
			assert_string_equal(e->keyword_location,
			                    "/properties/lines/items/$ref/properties/qty/minimum");
			assert_string_equal(e->message, "0 is less than the minimum of 1");
			seen_qty = true;
		} else if (!strcmp(e->instance_location, "/lines/1/sku")) {
			assert_string_equal(e->keyword_location,
			                    "/properties/lines/items/$ref/properties/sku/pattern");
			assert_non_null(strstr(e->message, "does not match the pattern"));
			seen_sku = true;
		} else if (!strcmp(e->instance_location, "")) {
			assert_string_equal(e->keyword_location, "/additionalProperties");
			assert_string_equal(e->message, "additional property \"x\" is not allowed");
			seen_extra = true;
		}
	}
	assert_true(seen_qty && seen_sku && seen_extra);
	tjs_result_clear(&r);
	assert_int_equal(r.count, 0);

	/* max_errors bounds what is returned, not the verdict */
	assert_false(tjs_validate(s, inst, &r, 1));
	assert_int_equal(r.count, 1);
	tjs_result_clear(&r);
	/* without a result: the same verdict */
	assert_false(tjs_validate(s, inst, NULL, 0));
	json_decref(inst);

	inst = J("{\"lines\":[{\"sku\":\"ABC-12\",\"qty\":1.0}]}"); /* 1.0 is an integer */
	assert_true(tjs_validate(s, inst, &r, 0));
	assert_int_equal(r.count, 0);
	json_decref(inst);
	tjs_schema_free(s);
}

/* `required` beside `properties` naming its properties is checked in the
 * properties' pass over the members (compile.c, fuse_required): the verdict
 * and the errors must be those of `required`, on both instance paths, with
 * and without additionalProperties, with and without a result. */
static void required_with_properties(void **state)
{
	(void)state;
	static const char *const schemas[] = {
	    "{\"required\":[\"a\",\"b\"],\"properties\":{\"a\":{},\"b\":{},\"c\":{}}}",
	    "{\"required\":[\"a\",\"b\"],\"properties\":{\"a\":{},\"b\":{},\"c\":{}},"
	    "\"additionalProperties\":{\"type\":\"integer\"}}",
	    /* `d` is no property: not fused, the same answers */
	    "{\"required\":[\"a\",\"d\"],\"properties\":{\"a\":{},\"b\":{},\"c\":{}}}",
	};
	static const struct {
		const char *inst;
		bool valid[3];
		const char *missing[3]; /* the first in `required` order */
	} cases[] = {
	    {"{\"a\":1,\"b\":2}", {true, true, false}, {NULL, NULL, "d"}},
	    {"{\"b\":2,\"c\":3,\"a\":1,\"d\":4}", {true, true, true}, {NULL, NULL, NULL}},
	    {"{\"a\":1,\"c\":3}", {false, false, false}, {"b", "b", "d"}},
	    {"{\"c\":3,\"e\":5}", {false, false, false}, {"a", "a", "a"}},
	    {"{}", {false, false, false}, {"a", "a", "a"}},
	    {"[\"a\"]", {true, true, true}, {NULL, NULL, NULL}},
	};
	for (size_t k = 0; k < sizeof(schemas) / sizeof(schemas[0]); k++) {
		tjs_schema *s = compile(schemas[k], NULL);
		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			json_t *inst = J(cases[i].inst);
			bool want = cases[i].valid[k];
			tjs_result r = {0}, rb = {0};
			assert_int_equal(tjs_validate(s, inst, NULL, 0), want);
			assert_int_equal(tjs_validate(s, inst, &r, 0), want);
			assert_int_equal(
			    tjs_validate_bytes(s, cases[i].inst, strlen(cases[i].inst), 0, NULL, 0),
			    want);
			assert_int_equal(
			    tjs_validate_bytes(s, cases[i].inst, strlen(cases[i].inst), 0, &rb, 0),
			    want);
			if (!want) {
				char msg[64];
				snprintf(msg, sizeof(msg), "required property \"%s\" is missing",
				         cases[i].missing[k]);
				assert_int_equal(r.count, rb.count);
				assert_string_equal(r.errors[0].keyword_location, "/required");
				assert_string_equal(rb.errors[0].keyword_location, "/required");
				assert_string_equal(r.errors[0].message, msg);
				assert_string_equal(rb.errors[0].message, msg);
			}
			tjs_result_clear(&r);
			tjs_result_clear(&rb);
			json_decref(inst);
		}
		tjs_schema_free(s);
	}
}

static void escaped_locations(void **state)
{
	(void)state;
	tjs_schema *s = compile(
	    "{\"properties\":{\"a/b\":{\"properties\":{\"m~n\":{\"type\":\"string\"}}}}}", NULL);
	json_t *inst = J("{\"a/b\":{\"m~n\":5}}");
	tjs_result r = {0};
	assert_false(tjs_validate(s, inst, &r, 0));
	assert_int_equal(r.count, 1);
	assert_string_equal(r.errors[0].instance_location, "/a~1b/m~0n");
	assert_string_equal(r.errors[0].keyword_location, "/properties/a~1b/properties/m~0n/type");
	tjs_result_clear(&r);
	json_decref(inst);
	tjs_schema_free(s);
}

static void combinator_errors_are_not_leaked_from_passing_branches(void **state)
{
	(void)state;
	tjs_schema *s = compile("{\"anyOf\":[{\"type\":\"string\"},{\"type\":\"integer\"}]}", NULL);
	json_t *ok = J("3"), *bad = J("true");
	tjs_result r = {0};
	assert_true(tjs_validate(s, ok, &r, 0));
	assert_int_equal(r.count, 0);
	assert_false(tjs_validate(s, bad, &r, 0));
	/* the summary first, then why each branch failed */
	assert_int_equal(r.count, 3);
	assert_string_equal(r.errors[0].keyword_location, "/anyOf");
	assert_string_equal(r.errors[1].keyword_location, "/anyOf/0/type");
	tjs_result_clear(&r);
	json_decref(ok);
	json_decref(bad);
	tjs_schema_free(s);
}

static json_t *nested_arrays(int depth)
{
	json_t *inner = json_array();
	for (int i = 0; i < depth; i++) {
		json_t *outer = json_array();
		json_array_append_new(outer, inner);
		inner = outer;
	}
	return inner;
}

static void depth_limit(void **state)
{
	(void)state;
	tjs_schema *s = compile(
	    "{\"$defs\":{\"a\":{\"items\":{\"$ref\":\"#/$defs/a\"}}},\"$ref\":\"#/$defs/a\"}",
	    NULL);
	json_t *shallow = nested_arrays(150), *deep = nested_arrays(5000);
	tjs_result r = {0};
	assert_true(tjs_validate(s, shallow, NULL, 0));
	assert_false(tjs_validate(s, deep, &r, 0));
	assert_int_equal(r.count, 1);
	assert_non_null(strstr(r.errors[0].message, "deeper than 200"));
	tjs_result_clear(&r);
	tjs_schema_free(s);

	tjs_options o = {.max_depth = 10};
	s = compile("{\"items\":{\"$ref\":\"#\"}}", &o);
	assert_false(tjs_validate(s, shallow, NULL, 0));
	json_t *nine = nested_arrays(9);
	assert_true(tjs_validate(s, nine, NULL, 0));
	json_decref(nine);
	tjs_schema_free(s);
	json_decref(shallow);
	json_decref(deep);
}

static void reference_cycle_is_an_error_not_a_crash(void **state)
{
	(void)state;
	tjs_schema *s =
	    compile("{\"$defs\":{\"a\":{\"$ref\":\"#/$defs/b\"},\"b\":{\"$ref\":\"#/$defs/a\"}},"
	            "\"$ref\":\"#/$defs/a\"}",
	            NULL);
	json_t *inst = J("1");
	tjs_result r = {0};
	assert_false(tjs_validate(s, inst, &r, 0));
	assert_true(r.count >= 1);
	assert_non_null(strstr(r.errors[r.count - 1].message, "reference cycle"));
	tjs_result_clear(&r);
	json_decref(inst);
	tjs_schema_free(s);
}

static void bad_schemas_are_refused(void **state)
{
	(void)state;
	const char *bad[] = {
	    "{\"type\":\"strung\"}",
	    "{\"minimum\":\"1\"}",
	    "{\"pattern\":\"(\"}",
	    "{\"$ref\":\"http://example.com/not-registered.json\"}",
	    "{\"$ref\":\"#/$defs/missing\"}",
	    "{\"$schema\":\"http://example.com/unknown-meta\"}",
	    "{\"properties\":{\"a\":3}}",
	    "[]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[512] = "";
		json_t *j = J(bad[i]);
		tjs_schema *s = tjs_compile(reg, j, NULL, NULL, err, sizeof(err));
		json_decref(j);
		if (s)
			fail_msg("accepted bad schema %s", bad[i]);
		assert_true(strlen(err) > 0);
	}
	char err[512];
	json_t *j = J("{\"type\":5}");
	assert_null(tjs_compile(reg, j, NULL, NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "meta-schema"));
	json_decref(j);
}

static void registry_and_drafts(void **state)
{
	(void)state;
	char err[512];
	json_t *remote = J(
	    "{\"$id\":\"http://example.com/money.json\",\"type\":\"number\",\"multipleOf\":0.01}");
	assert_int_equal(tjs_registry_add(reg, NULL, remote, err, sizeof(err)), 0);
	json_decref(remote);
	tjs_schema *s = compile(
	    "{\"properties\":{\"price\":{\"$ref\":\"http://example.com/money.json\"}}}", NULL);
	json_t *ok = J("{\"price\":19.99}"), *bad = J("{\"price\":19.999}");
	assert_true(tjs_validate(s, ok, NULL, 0));
	assert_false(tjs_validate(s, bad, NULL, 0));
	json_decref(ok);
	json_decref(bad);
	tjs_schema_free(s);

	/* draft 4 by option: boolean exclusiveMaximum; by $schema: draft 7 */
	tjs_options o4 = {.default_draft = TJS_DRAFT_4};
	s = compile("{\"maximum\":3,\"exclusiveMaximum\":true}", &o4);
	json_t *three = J("3"), *two = J("2");
	assert_false(tjs_validate(s, three, NULL, 0));
	assert_true(tjs_validate(s, two, NULL, 0));
	tjs_schema_free(s);
	s = compile(
	    "{\"$schema\":\"http://json-schema.org/draft-07/schema#\",\"exclusiveMaximum\":3}",
	    NULL);
	assert_false(tjs_validate(s, three, NULL, 0));
	assert_true(tjs_validate(s, two, NULL, 0));
	tjs_schema_free(s);
	json_decref(three);
	json_decref(two);

	/* format: annotation by default, assertion on request */
	json_t *d = J("\"2024-02-30\"");
	s = compile("{\"format\":\"date\"}", NULL);
	assert_true(tjs_validate(s, d, NULL, 0));
	tjs_schema_free(s);
	tjs_options fa = {.format_assert = true};
	s = compile("{\"format\":\"date\"}", &fa);
	assert_false(tjs_validate(s, d, NULL, 0));
	tjs_schema_free(s);
	json_decref(d);
}

struct thread_arg {
	const tjs_schema *s;
	json_t *good, *bad;
	int mismatches;
};

static void *worker(void *p)
{
	struct thread_arg *a = p;
	for (int i = 0; i < 2000; i++) {
		tjs_result r = {0};
		if (!tjs_validate(a->s, a->good, NULL, 0))
			a->mismatches++;
		if (tjs_validate(a->s, a->bad, &r, 0) || r.count != 3)
			a->mismatches++;
		tjs_result_clear(&r);
	}
	return NULL;
}

static void concurrent_validation(void **state)
{
	(void)state;
	tjs_schema *s = compile(order_schema, NULL);
	json_t *good = J("{\"lines\":[{\"sku\":\"ABC-1\",\"qty\":2}]}");
	json_t *bad = J("{\"lines\":[{\"sku\":\"abc\",\"qty\":0}],\"x\":1}");
	pthread_t t[4];
	struct thread_arg a[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (struct thread_arg){s, good, bad, 0};
		assert_int_equal(pthread_create(&t[i], NULL, worker, &a[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(a[i].mismatches, 0);
	}
	json_decref(good);
	json_decref(bad);
	tjs_schema_free(s);
}

static void schema_outlives_registry_handle(void **state)
{
	(void)state;
	tjs_registry *r2 = tjs_registry_new();
	char err[256];
	json_t *j = J("{\"$ref\":\"https://json-schema.org/draft/2020-12/schema\"}");
	tjs_schema *s = tjs_compile(r2, j, NULL, NULL, err, sizeof(err));
	json_decref(j);
	assert_non_null(s);
	tjs_registry_free(r2); /* the compiled schema keeps it alive */
	json_t *good = J("{\"type\":\"string\"}"), *bad = J("{\"type\":12}");
	assert_true(tjs_validate(s, good, NULL, 0));
	assert_false(tjs_validate(s, bad, NULL, 0));
	json_decref(good);
	json_decref(bad);
	tjs_schema_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(error_locations),
	    cmocka_unit_test(required_with_properties),
	    cmocka_unit_test(escaped_locations),
	    cmocka_unit_test(combinator_errors_are_not_leaked_from_passing_branches),
	    cmocka_unit_test(depth_limit),
	    cmocka_unit_test(reference_cycle_is_an_error_not_a_crash),
	    cmocka_unit_test(bad_schemas_are_refused),
	    cmocka_unit_test(registry_and_drafts),
	    cmocka_unit_test(concurrent_validation),
	    cmocka_unit_test(schema_outlives_registry_handle),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
