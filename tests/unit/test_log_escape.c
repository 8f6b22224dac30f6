/* tb_log_escape (shared/util): client strings inside log lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tributary/util.h"

static const char *esc(const char *s)
{
	static char buf[TB_LOG_ESCAPE_LEN];
	return tb_log_escape(buf, sizeof(buf), s);
}

/* value -> what the log shows */
static const struct {
	const char *in, *out;
} cases[] = {
    /* printable ASCII stays */
    {"alice", "alice"},
    {"users/alice/#", "users/alice/#"},
    {"", ""},
    {NULL, ""},
    /* quotes and backslash; a value that looks like an escape is not one */
    {"a'b\"c\\d", "a\\'b\\\"c\\\\d"},
    {"\\x0a", "\\\\x0a"},
    /* C0 and DEL */
    {"a\nb", "a\\x0ab"},
    {"\r\t\x1b[31m\x7f", "\\x0d\\x09\\x1b[31m\\x7f"},
    {"x\ntributary: auth: forged", "x\\x0atributary: auth: forged"},
    /* C1, separators, bidi and invisible format characters */
    {"a\xc2\x85z", "a\\u{0085}z"},              /* NEL */
    {"\xc2\x80\xc2\x9f", "\\u{0080}\\u{009f}"}, /* C1 */
    {"a\xe2\x80\xa8z", "a\\u{2028}z"},          /* LINE SEPARATOR */
    {"\xe2\x80\xa9", "\\u{2029}"},              /* PARAGRAPH SEPARATOR */
    {"\xe2\x80\xae"
     "evil",
     "\\u{202e}evil"},                                  /* RLO */
    {"\xe2\x81\xa6\xe2\x81\xa9", "\\u{2066}\\u{2069}"}, /* LRI, PDI */
    {"\xe2\x80\x8e\xe2\x80\x8f", "\\u{200e}\\u{200f}"}, /* LRM, RLM */
    {"\xd8\x9c", "\\u{061c}"},                          /* ALM */
    {"\xe2\x80\x8b\xef\xbb\xbf", "\\u{200b}\\u{feff}"}, /* ZWSP, BOM */
    {"\xf3\xa0\x80\x81", "\\u{e0001}"},                 /* LANGUAGE TAG */
    /* other UTF-8 stays */
    {"Jos\xc3\xa9", "Jos\xc3\xa9"},
    {"\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97\xa5\xe6\x9c\xac"},
    {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},
    /* bytes that are not UTF-8 */
    {"a\xc3", "a\\xc3"},                 /* truncated sequence */
    {"\xc0\xaf", "\\xc0\\xaf"},          /* overlong '/' */
    {"\xed\xa0\x80", "\\xed\\xa0\\x80"}, /* surrogate */
    {"\xff\xfe", "\\xff\\xfe"},
    {"\xc3(x", "\\xc3(x"},
};

static void test_escapes(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_string_equal(esc(cases[i].in), cases[i].out);
}

static void test_bounded(void **state)
{
	(void)state;
	char buf[16], big[64];
	/* fits exactly: 15 bytes */
	assert_string_equal(tb_log_escape(buf, sizeof(buf), "abcdefghijklmno"), "abcdefghijklmno");
	/* one more: cut, with the marker, within the buffer */
	assert_string_equal(tb_log_escape(buf, sizeof(buf), "abcdefghijklmnop"),
	                    "abcdefghijk\\...");
	/* an escape is never cut in half */
	assert_string_equal(tb_log_escape(buf, sizeof(buf), "abcdefghij\n\nxyz"),
	                    "abcdefghij\\...");
	assert_string_equal(tb_log_escape(buf, sizeof(buf), "abcdefg\xe2\x80\xa8xyz"),
	                    "abcdefg\\...");
	/* nor a UTF-8 character */
	assert_string_equal(tb_log_escape(buf, sizeof(buf), "abcdefghij\xc3\xa9\xc3\xa9\xc3\xa9"),
	                    "abcdefghij\\...");
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(strlen(esc(big)), sizeof(big) - 1);
	char tiny[4] = "xyz";
	assert_string_equal(tb_log_escape(tiny, sizeof(tiny), "abc"), "");
}

/* The reverse of the escape, to show that it loses nothing. */
static size_t unescape(const char *e, char *out)
{
	size_t o = 0;
	while (*e) {
		if (*e != '\\') {
			out[o++] = *e++;
			continue;
		}
		e++;
		if (*e == 'x') {
			out[o++] = (char)strtoul((char[]){e[1], e[2], 0}, NULL, 16);
			e += 3;
		} else if (*e == 'u') {
			char *end;
			unsigned long cp = strtoul(e + 2, &end, 16);
			assert_int_equal(*end, '}');
			e = end + 1;
			if (cp < 0x800) {
				out[o++] = (char)(0xc0 | (cp >> 6));
			} else if (cp < 0x10000) {
				out[o++] = (char)(0xe0 | (cp >> 12));
				out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			} else {
				out[o++] = (char)(0xf0 | (cp >> 18));
				out[o++] = (char)(0x80 | ((cp >> 12) & 0x3f));
				out[o++] = (char)(0x80 | ((cp >> 6) & 0x3f));
			}
			out[o++] = (char)(0x80 | (cp & 0x3f));
		} else {
			assert_true(*e && strchr("\\'\"", *e));
			out[o++] = *e++;
		}
	}
	out[o] = '\0';
	return o;
}

static void test_round_trip_of_random_bytes(void **state)
{
	(void)state;
	static const char alphabet[] =
	    "a'\"\\\n\x7f\xc2\x85\xe2\x80\xa8\xae\xf0\x9f\x98\x80\xff\xed\xa0";
	char in[33], out[33 * 10 + 1], back[sizeof(out)];
	srand(42);
	for (int round = 0; round < 20000; round++) {
		size_t n = (size_t)(rand() % 32);
		for (size_t i = 0; i < n; i++)
			in[i] = alphabet[rand() % (int)(sizeof(alphabet) - 1)];
		in[n] = '\0';
		tb_log_escape(out, sizeof(out), in);
		for (const unsigned char *p = (const unsigned char *)out; *p; p++)
			assert_true(*p >= 0x20 && *p != 0x7f);
		assert_int_equal(unescape(out, back), n);
		assert_memory_equal(back, in, n);
		/* bounded: the same, or a prefix of it (whole escapes) and the marker */
		char small[24];
		size_t sl = strlen(tb_log_escape(small, sizeof(small), in));
		assert_true(sl < sizeof(small));
		if (strcmp(small, out)) {
			assert_true(sl >= 4 && !strcmp(small + sl - 4, "\\..."));
			assert_memory_equal(small, out, sl - 4);
			assert_true(strlen(out) > sizeof(small) - 1);
			small[sl - 4] = '\0';
			unescape(small, back); /* no escape cut in half */
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_escapes),
	    cmocka_unit_test(test_bounded),
	    cmocka_unit_test(test_round_trip_of_random_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
