/* URI reference resolution (RFC 3986 §5.4) and JSON pointers (RFC 6901). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../shared/jsonschema/internal.h"

static void check_resolve(const char *base, const char *ref, const char *want)
{
	char *got = tjs_uri_resolve(base, ref);
	assert_non_null(got);
	if (strcmp(got, want) != 0)
		fail_msg("resolve(%s, %s) = %s, want %s", base, ref, got, want);
	free(got);
}

static void rfc3986_normal_examples(void **state)
{
	(void)state;
	const char *b = "http://a/b/c/d;p?q";
	const char *cases[][2] = {
	    {"g:h", "g:h"},
	    {"g", "http://a/b/c/g"},
	    {"./g", "http://a/b/c/g"},
	    {"g/", "http://a/b/c/g/"},
	    {"/g", "http://a/g"},
	    {"//g", "http://g"},
	    {"?y", "http://a/b/c/d;p?y"},
	    {"g?y", "http://a/b/c/g?y"},
	    {"#s", "http://a/b/c/d;p?q#s"},
	    {"g#s", "http://a/b/c/g#s"},
	    {"g?y#s", "http://a/b/c/g?y#s"},
	    {";x", "http://a/b/c/;x"},
	    {"g;x", "http://a/b/c/g;x"},
	    {"g;x?y#s", "http://a/b/c/g;x?y#s"},
	    {"", "http://a/b/c/d;p?q"},
	    {".", "http://a/b/c/"},
	    {"./", "http://a/b/c/"},
	    {"..", "http://a/b/"},
	    {"../", "http://a/b/"},
	    {"../g", "http://a/b/g"},
	    {"../..", "http://a/"},
	    {"../../", "http://a/"},
	    {"../../g", "http://a/g"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_resolve(b, cases[i][0], cases[i][1]);
}

static void rfc3986_abnormal_examples(void **state)
{
	(void)state;
	const char *b = "http://a/b/c/d;p?q";
	const char *cases[][2] = {
	    {"../../../g", "http://a/g"},
	    {"../../../../g", "http://a/g"},
	    {"/./g", "http://a/g"},
	    {"/../g", "http://a/g"},
	    {"g.", "http://a/b/c/g."},
	    {".g", "http://a/b/c/.g"},
	    {"g..", "http://a/b/c/g.."},
	    {"..g", "http://a/b/c/..g"},
	    {"./../g", "http://a/b/g"},
	    {"./g/.", "http://a/b/c/g/"},
	    {"g/./h", "http://a/b/c/g/h"},
	    {"g/../h", "http://a/b/c/h"},
	    {"g;x=1/./y", "http://a/b/c/g;x=1/y"},
	    {"g;x=1/../y", "http://a/b/c/y"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_resolve(b, cases[i][0], cases[i][1]);
}

static void schema_style_ids(void **state)
{
	(void)state;
	check_resolve("http://localhost:1234/draft2020-12/tree", "node",
	              "http://localhost:1234/draft2020-12/node");
	check_resolve("urn:uuid:deadbeef-1234-ffff-ffff-4321feebdaed", "#/$defs/bar",
	              "urn:uuid:deadbeef-1234-ffff-ffff-4321feebdaed#/$defs/bar");
	check_resolve("HTTP://example.com/a/", "b.json#x", "http://example.com/a/b.json#x");
	check_resolve(NULL, "https://x/y/../z", "https://x/z");
	char *s = tjs_uri_strip_fragment("http://x/y#/a");
	assert_string_equal(s, "http://x/y");
	free(s);
	assert_string_equal(tjs_uri_fragment("http://x/y#/a"), "/a");
	assert_null(tjs_uri_fragment("http://x/y"));
	assert_true(tjs_uri_is_absolute("urn:x"));
	assert_false(tjs_uri_is_absolute("x/y:z"));
}

static void pointer_walk(void **state)
{
	(void)state;
	/* RFC 6901 §5 */
	json_t *doc =
	    json_loads("{\"foo\":[\"bar\",\"baz\"],\"\":0,\"a/b\":1,\"c%d\":2,\"e^f\":3,\"g|h\":4,"
	               "\"i\\\\j\":5,\"k\\\"l\":6,\" \":7,\"m~n\":8}",
	               0, NULL);
	assert_non_null(doc);
	assert_ptr_equal(tjs_pointer_get(doc, "", NULL, NULL), doc);
	assert_string_equal(json_string_value(tjs_pointer_get(doc, "/foo/0", NULL, NULL)), "bar");
	assert_int_equal(json_integer_value(tjs_pointer_get(doc, "/", NULL, NULL)), 0);
	assert_int_equal(json_integer_value(tjs_pointer_get(doc, "/a~1b", NULL, NULL)), 1);
	assert_int_equal(json_integer_value(tjs_pointer_get(doc, "/c%d", NULL, NULL)), 2);
	assert_int_equal(json_integer_value(tjs_pointer_get(doc, "/m~0n", NULL, NULL)), 8);
	assert_int_equal(json_integer_value(tjs_pointer_get(doc, "/ ", NULL, NULL)), 7);
	assert_null(tjs_pointer_get(doc, "/foo/01", NULL, NULL)); /* leading zero */
	assert_null(tjs_pointer_get(doc, "/foo/2", NULL, NULL));
	assert_null(tjs_pointer_get(doc, "/foo/-", NULL, NULL));
	assert_null(tjs_pointer_get(doc, "/m~2n", NULL, NULL)); /* bad escape */
	assert_null(tjs_pointer_get(doc, "foo", NULL, NULL));
	/* as a URI fragment: percent-decoded first */
	char *dec = tjs_percent_decode("/c%25d", 6);
	assert_string_equal(dec, "/c%d");
	assert_int_equal(json_integer_value(tjs_pointer_get(doc, dec, NULL, NULL)), 2);
	free(dec);
	dec = tjs_percent_decode("/k%22l", 6);
	assert_int_equal(json_integer_value(tjs_pointer_get(doc, dec, NULL, NULL)), 6);
	free(dec);
	assert_null(tjs_percent_decode("/a%2", 4));
	assert_null(tjs_percent_decode("/a%zz", 5));
	assert_null(tjs_percent_decode("/a%00", 5));
	json_decref(doc);
}

static void pointer_build(void **state)
{
	(void)state;
	tjs_buf b = {0};
	tjs_pointer_append(&b, "a/b");
	tjs_pointer_append(&b, "m~n");
	tjs_pointer_append_index(&b, 12);
	tjs_pointer_append(&b, "");
	char *s = tjs_buf_take(&b);
	assert_string_equal(s, "/a~1b/m~0n/12/");
	free(s);
	assert_true(tjs_pointer_is_valid("", 0));
	assert_true(tjs_pointer_is_valid("/a~0~1", 6));
	assert_false(tjs_pointer_is_valid("a", 1));
	assert_false(tjs_pointer_is_valid("/a~", 3));
	assert_false(tjs_pointer_is_valid("/a~2", 4));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(rfc3986_normal_examples), cmocka_unit_test(rfc3986_abnormal_examples),
	    cmocka_unit_test(schema_style_ids),        cmocka_unit_test(pointer_walk),
	    cmocka_unit_test(pointer_build),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
