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
	assert_int_equal(tb_template_expand(&t, lookup_caps, &caps, NULL, out, sizeof(out), NULL), 12);
	assert_string_equal(out, "events.order");
	assert_int_equal(tb_template_expand(&k, lookup_caps, &caps, NULL, out, sizeof(out), NULL), 2);
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
	assert_int_equal(tb_template_expand(&t, lookup_fixed, NULL, "+#/", out, sizeof(out), &missing), -1);
	assert_string_equal(missing, "key");
	assert_int_equal(tb_template_expand(&t, lookup_fixed, NULL, NULL, out, sizeof(out), NULL), 14);
	assert_int_equal(tb_template_expand(&t, lookup_fixed, NULL, NULL, out, 8, NULL), -2);
	tb_template_free(&t);
	assert_int_equal(tb_template_compile(&t, "x.{other}", err, sizeof(err)), 0);
	assert_int_equal(tb_template_expand(&t, lookup_fixed, NULL, NULL, out, sizeof(out), &missing), -1);
	assert_string_equal(missing, "other");
	tb_template_free(&t);
	assert_int_equal(tb_template_compile(&t, "x.{unterminated", err, sizeof(err)), -1);
	assert_int_equal(tb_template_compile(&t, "x.{}", err, sizeof(err)), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_named_capture_route),
	    cmocka_unit_test(test_wildcards),
	    cmocka_unit_test(test_bad_patterns),
	    cmocka_unit_test(test_template_guards),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
