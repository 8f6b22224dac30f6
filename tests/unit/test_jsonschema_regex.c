/* ECMA-262 patterns on PCRE2: translation, semantics, limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "../../shared/jsonschema/internal.h"

/* 1 match, 0 no match, -1 limit; fails the test if the pattern is refused. */
static int match(const char *pattern, const char *subject)
{
	char err[200];
	pcre2_code *re = tjs_regex_compile(pattern, strlen(pattern), err, sizeof(err));
	if (!re)
		fail_msg("pattern %s refused: %s", pattern, err);
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);
	pcre2_match_context *mc = tjs_regex_match_context();
	int rc = tjs_regex_search(re, subject, strlen(subject), md, mc);
	pcre2_match_context_free(mc);
	pcre2_match_data_free(md);
	pcre2_code_free(re);
	return rc;
}

static bool refused(const char *pattern)
{
	pcre2_code *re = tjs_regex_compile(pattern, strlen(pattern), NULL, 0);
	pcre2_code_free(re);
	return re == NULL;
}

static void translation(void **state)
{
	(void)state;
	struct {
		const char *in, *out;
	} cases[] = {
	    {"\\d+", "[0-9]+"},
	    {"[\\d.]", "[0-9.]"},
	    {"\\p{Letter}", "\\p{L}"},
	    {"\\P{Uppercase_Letter}", "\\P{Lu}"},
	    {"\\p{Script=Greek}", "\\p{sc:Greek}"},
	    {"\\p{gc=Decimal_Number}", "\\p{Nd}"},
	    {"\\u00e9", "\\x{E9}"},
	    {"\\ud83d\\ude00", "\\x{1F600}"},
	    {"\\u{1F600}", "\\x{1F600}"},
	    {"[]", "(?!)"},
	    {"[^]", "[\\s\\S]"},
	    {"\\1", "\\g{1}"},
	    {"[[]", "[\\[]"},
	    {"\\v", "\\x{B}"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tjs_buf b = {0};
		char err[100];
		assert_int_equal(
		    tjs_regex_translate(cases[i].in, strlen(cases[i].in), &b, err, sizeof(err)), 0);
		if (strcmp(b.s, cases[i].out) != 0)
			fail_msg("%s -> %s, want %s", cases[i].in, b.s, cases[i].out);
		tjs_buf_free(&b);
	}
}

static void ecma_semantics(void **state)
{
	(void)state;
	assert_int_equal(match("^\\d$", "5"), 1);
	assert_int_equal(match("^\\d$", "\xdf\x80"), 0);     /* NKo digit zero is not \d in ECMA */
	assert_int_equal(match("^\\w$", "\xc3\xa9"), 0);     /* é is not \w */
	assert_int_equal(match("^\\s$", "\xef\xbb\xbf"), 1); /* U+FEFF is \s in ECMA */
	assert_int_equal(match("^\\s$", "\xc2\x85"), 0);     /* U+0085 is not */
	assert_int_equal(match("^\\p{Letter}+$", "\xc3\xa9t\xc3\xa9"), 1);
	assert_int_equal(match("^abc$", "abc\n"), 0); /* $ is the end only */
	assert_int_equal(match("^a.c$", "a\nc"), 0);
	assert_int_equal(match("^a.c$", "a\xe2\x80\xa8"
	                                "c"),
	                 0);
	assert_int_equal(match("^a.c$", "abc"), 1);
	assert_int_equal(match("^\xf0\x9f\x90\xb2*$", "\xf0\x9f\x90\xb2\xf0\x9f\x90\xb2"),
	                 1);                            /* non-BMP */
	assert_int_equal(match("es", "expression"), 1); /* not anchored */
	assert_int_equal(match("[^]", "\n"), 1);
	assert_int_equal(match("a[]", "a"), 0);
	assert_int_equal(match("\\cJ", "\n"), 1);
}

static void refusals(void **state)
{
	(void)state;
	assert_true(refused("\\a")); /* no such ECMA escape */
	assert_true(refused("\\Z"));
	assert_true(refused("(?i)a")); /* inline flags are not ECMA */
	assert_true(refused("[a"));
	assert_true(refused("\\p{NoSuchProperty}"));
	assert_true(refused("\\u12"));
	assert_true(refused("a**"));
	assert_false(refused("(?<year>\\d{4})-\\k<year>"));
	assert_false(refused("(?<=a)b"));
}

static void catastrophic_pattern_is_bounded(void **state)
{
	(void)state;
	char subject[64];
	memset(subject, 'a', 40);
	strcpy(subject + 40, "!");
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = match("^(a+)+$", subject);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	/* either the limit stops it or PCRE2's auto-possessification avoids the
	 * blow-up; what matters is that it is not a match and it is quick */
	assert_true(rc == -1 || rc == 0);
	assert_true(ms < 1000);
	/* this one cannot be optimised away: it must hit the match limit */
	char subj2[64];
	memset(subj2, 'a', 30);
	strcpy(subj2 + 30, "!b");
	assert_int_equal(match("^(a|a)*b$", subj2), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(translation),
	    cmocka_unit_test(ecma_semantics),
	    cmocka_unit_test(refusals),
	    cmocka_unit_test(catastrophic_pattern_is_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
