/* Topic patterns and templates (shared/route). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "tributary/route.h"

static int lookup_caps(void *ctx, const char *name, size_t len, const char **v, size_t *vlen)
{
	const tb_capture *c = tb_captures_get(ctx, name, len);
	if (!c)
		return -1;
	*v = c->value;
	*vlen = c->len;
	return 0;
}

static void test_named_capture_route(void **state)
{
	(void)state;
	tb_pattern p;
	tb_template t, k;
	tb_captures caps;
	char err[128], out[128];
	assert_int_equal(tb_pattern_compile(&p, "events/{aggregate}/{id}", err, sizeof(err)), 0);
	assert_string_equal(p.filter, "events/+/+");
	assert_true(tb_pattern_match(&p, "events/order/42", &caps));
	assert_int_equal(caps.count, 2);
	assert_int_equal(tb_template_compile(&t, "events.{aggregate}", err, sizeof(err)), 0);
	assert_int_equal(tb_template_compile(&k, "{id}", err, sizeof(err)), 0);
	assert_int_equal(tb_template_expand(&t, lookup_caps, &caps, NULL, out, sizeof(out), NULL),
	                 12);
	assert_string_equal(out, "events.order");
	assert_int_equal(tb_template_expand(&k, lookup_caps, &caps, NULL, out, sizeof(out), NULL),
	                 2);
	assert_string_equal(out, "42");
	assert_false(tb_pattern_match(&p, "events/order", NULL));
	assert_false(tb_pattern_match(&p, "events/order/42/x", NULL));
	assert_false(tb_pattern_match(&p, "event/order/42", NULL));
	/* An empty level is still a level, as in MQTT. */
	assert_true(tb_pattern_match(&p, "events//42", &caps));
	assert_int_equal(caps.cap[0].len, 0);
	tb_pattern_free(&p);
	tb_template_free(&t);
	tb_template_free(&k);
}

static void test_wildcards(void **state)
{
	(void)state;
	tb_pattern p;
	char err[128];
	assert_int_equal(tb_pattern_compile(&p, "a/+/#", err, sizeof(err)), 0);
	assert_true(tb_pattern_match(&p, "a/b", NULL));
	assert_true(tb_pattern_match(&p, "a/b/c/d", NULL));
	assert_false(tb_pattern_match(&p, "a", NULL));
	assert_false(tb_pattern_match(&p, "b/b/c", NULL));
	tb_pattern_free(&p);
	assert_int_equal(tb_pattern_compile(&p, "#", err, sizeof(err)), 0);
	assert_true(tb_pattern_match(&p, "x/y", NULL));
	assert_false(tb_pattern_match(&p, "$SYS/broker", NULL)); /* $ topics need a literal */
	tb_pattern_free(&p);
}

static void test_bad_patterns(void **state)
{
	(void)state;
	tb_pattern p;
	char err[128];
	assert_int_equal(tb_pattern_compile(&p, "a/#/b", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "last level"));
	assert_int_equal(tb_pattern_compile(&p, "a/b+/c", err, sizeof(err)), -1);
	assert_int_equal(tb_pattern_compile(&p, "a/{}/c", err, sizeof(err)), -1);
	assert_int_equal(tb_pattern_compile(&p, "a/{x y}/c", err, sizeof(err)), -1);
	assert_int_equal(tb_pattern_compile(&p, "", err, sizeof(err)), -1);
}

static int lookup_fixed(void *ctx, const char *name, size_t len, const char **v, size_t *vlen)
{
	(void)ctx;
	if (len == 3 && !memcmp(name, "key", 3)) {
		*v = "user/1";
		*vlen = 6;
		return 0;
	}
	return -1;
}

static void test_template_guards(void **state)
{
	(void)state;
	tb_template t;
	char err[128], out[16];
	const char *missing = NULL;
	assert_int_equal(tb_template_compile(&t, "users/{key}/n", err, sizeof(err)), 0);
	/* A value with topic syntax cannot be expanded into an MQTT topic. */
	assert_int_equal(
	    tb_template_expand(&t, lookup_fixed, NULL, "+#/", out, sizeof(out), &missing), -1);
	assert_string_equal(missing, "key");
	assert_int_equal(tb_template_expand(&t, lookup_fixed, NULL, NULL, out, sizeof(out), NULL),
	                 14);
	assert_int_equal(tb_template_expand(&t, lookup_fixed, NULL, NULL, out, 8, NULL), -2);
	tb_template_free(&t);
	assert_int_equal(tb_template_compile(&t, "x.{other}", err, sizeof(err)), 0);
	assert_int_equal(
	    tb_template_expand(&t, lookup_fixed, NULL, NULL, out, sizeof(out), &missing), -1);
	assert_string_equal(missing, "other");
	tb_template_free(&t);
	assert_int_equal(tb_template_compile(&t, "x.{unterminated", err, sizeof(err)), -1);
	assert_int_equal(tb_template_compile(&t, "x.{}", err, sizeof(err)), -1);
}

static void test_kafka_topic_names(void **state)
{
	(void)state;
	char long_name[260];
	assert_true(tb_kafka_topic_valid("events.order"));
	assert_true(tb_kafka_topic_valid("a"));
	assert_true(tb_kafka_topic_valid("Events_2-x.y"));
	assert_true(tb_kafka_topic_valid("events.")); /* legal: captures are checked apart */
	assert_true(tb_kafka_topic_valid("..."));
	assert_false(tb_kafka_topic_valid(""));
	assert_false(tb_kafka_topic_valid("."));
	assert_false(tb_kafka_topic_valid(".."));
	assert_false(tb_kafka_topic_valid("events/order"));
	assert_false(tb_kafka_topic_valid("events order"));
	assert_false(tb_kafka_topic_valid("events.\xc3\xa9"));
	assert_false(tb_kafka_topic_valid("events.+"));
	memset(long_name, 'a', 249);
	long_name[249] = '\0';
	assert_true(tb_kafka_topic_valid(long_name));
	long_name[249] = 'a';
	long_name[250] = '\0';
	assert_false(tb_kafka_topic_valid(long_name));
}

static void test_capture_rules(void **state)
{
	(void)state;
	char err[256];
	tb_capture_rule *r = tb_capture_rule_compile("[A-Za-z0-9_-]+", err, sizeof(err));
	assert_non_null(r);
	assert_string_equal(tb_capture_rule_text(r), "[A-Za-z0-9_-]+");
	assert_true(tb_capture_rule_ok(r, "order", 5));
	assert_true(tb_capture_rule_ok(r, "Order_2-b", 9));
	assert_true(tb_capture_rule_ok(r, "order.secret", 5)); /* only `len` bytes count */
	assert_false(tb_capture_rule_ok(r, "", 0));
	assert_false(tb_capture_rule_ok(r, "order.secret", 12));
	assert_false(tb_capture_rule_ok(r, ".order", 6)); /* anchored at the start */
	assert_false(tb_capture_rule_ok(r, "order.", 6)); /* and at the end */
	assert_false(tb_capture_rule_ok(r, "a\nb", 3));
	assert_false(tb_capture_rule_ok(r, "\xc3\xa9", 2));
	assert_false(tb_capture_rule_ok(r, "\xff", 1)); /* not UTF-8 */
	tb_capture_rule_free(r);

	/* A pattern that would accept an empty value still refuses it. */
	r = tb_capture_rule_compile("[a-z]*", err, sizeof(err));
	assert_non_null(r);
	assert_false(tb_capture_rule_ok(r, "", 0));
	assert_true(tb_capture_rule_ok(r, "abc", 3));
	tb_capture_rule_free(r);

	/* Alternatives are anchored as a whole, not only the first one. */
	r = tb_capture_rule_compile("order|invoice", err, sizeof(err));
	assert_non_null(r);
	assert_true(tb_capture_rule_ok(r, "invoice", 7));
	assert_false(tb_capture_rule_ok(r, "orders", 6));
	assert_false(tb_capture_rule_ok(r, "my-invoice", 10));
	tb_capture_rule_free(r);

	/* Catastrophic backtracking fails (refused) instead of stalling. */
	r = tb_capture_rule_compile("(a+)+b", err, sizeof(err));
	assert_non_null(r);
	assert_false(tb_capture_rule_ok(r, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 40));
	tb_capture_rule_free(r);

	assert_null(tb_capture_rule_compile("[a-z", err, sizeof(err)));
	assert_non_null(strstr(err, "'[a-z' is not a PCRE2 regular expression"));
	tb_capture_rule_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_named_capture_route), cmocka_unit_test(test_wildcards),
	    cmocka_unit_test(test_bad_patterns),        cmocka_unit_test(test_template_guards),
	    cmocka_unit_test(test_kafka_topic_names),   cmocka_unit_test(test_capture_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
