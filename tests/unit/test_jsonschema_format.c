/* `format` checkers, valid and invalid samples per format. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "../../shared/jsonschema/internal.h"

struct sample {
	const char *format;
	const char *s;
	bool valid;
};

static const struct sample samples[] = {
    {"date-time", "1963-06-19T08:30:06.283185Z", true},
    {"date-time", "1990-12-31T15:59:60-08:00", true}, /* leap second, 23:59:60 UTC */
    {"date-time", "1990-12-31T23:59:60+01:00", false},
    {"date-time", "1963-06-19t08:30:06z", true},
    {"date-time", "1963-06-19T08:30:06", false}, /* no offset */
    {"date-time", "2020-02-30T00:00:00Z", false},
    {"date", "2020-02-29", true},
    {"date", "2019-02-29", false},
    {"date", "2020-1-01", false},
    {"time", "08:30:06+00:20", true},
    {"time", "24:00:00Z", false},
    {"time", "08:30:06.Z", false},
    {"duration", "P4DT12H30M5S", true},
    {"duration", "P1W", true},
    {"duration", "PT1D", false},
    {"duration", "P1Y2W", false},
    {"duration", "P", false},
    {"duration", "P1D2H", false},
    {"email", "joe.bloggs@example.com", true},
    {"email", "\"joe bloggs\"@example.com", true},
    {"email", "joe..bloggs@example.com", false},
    {"email", ".joe@example.com", false},
    {"email", "joe@[127.0.0.1]", true},
    {"email", "joe@[IPv6:::1]", true},
    {"idn-email",
     "\xec\x8b\xa4\xeb\xa1\x80@\xec\x8b\xa4\xeb\xa1\x80.\xed\x85\x8c\xec\x8a\xa4\xed\x8a\xb8",
     true},
    {"email", "\xec\x8b\xa4\xeb\xa1\x80@example.com", false},
    {"hostname", "www.example.com", true},
    {"hostname", "-a-host-name-that-starts-with--", false},
    {"hostname", "not_a_valid_host_name", false},
    {"hostname", "example.", false},
    {"hostname", "xn--4gbwdl.xn--wgbh1c", true},
    {"hostname", "xn--X", false},
    {"idn-hostname", "\xec\x8b\xa4\xeb\xa1\x80.\xed\x85\x8c\xec\x8a\xa4\xed\x8a\xb8", true},
    {"idn-hostname", "l\xc2\xb7l", true}, /* MIDDLE DOT between l's */
    {"idn-hostname", "a\xc2\xb7l", false},
    {"idn-hostname",
     "a\xe3\x80\x82"
     "b",
     true}, /* ideographic full stop separates */
    {"ipv4", "192.168.0.1", true},
    {"ipv4", "087.10.0.1", false},
    {"ipv4", "256.0.0.1", false},
    {"ipv6", "::ffff:192.168.0.1", true},
    {"ipv6", "1:2:3:4:5:6:7:8:9", false},
    {"ipv6", "fe80::a%eth1", false},
    {"uri", "http://foo.bar/?baz=qux#quux", true},
    {"uri", "urn:oasis:names:specification:docbook:dtd:xml:4.1.2", true},
    {"uri", "//foo.bar/?baz=qux#quux", false},
    {"uri", "http:// shouldfail.com", false},
    {"uri", "http://[::1]:8080/", true},
    {"uri-reference", "/abc", true},
    {"uri-reference", "#frag", true},
    {"uri-reference", "\\\\WINDOWS\\fileshare", false},
    {"iri",
     "http://\xc6\x92\xc3\xb8\xc3\xb8.\xc3\x9f\xc3\xa5r/"
     "?\xe2\x88\x82\xc3\xa9\xc5\x93=\xcf\x80\xc3\xae\xc3\xb8x#\xcf\x80\xc3\xae\xc3\xb8x",
     true},
    {"iri-reference", "\xc3\xa2\xc3\xab\xc3\xaf", true},
    {"uuid", "2EB8AA08-AA98-11EA-B4AA-73B441D16380", true},
    {"uuid", "2eb8aa08-aa98-11ea-b4aa-73b441d1638", false},
    {"uri-template", "http://example.com/dictionary/{term:1}/{term}", true},
    {"uri-template", "http://example.com/dictionary/{term:1}/{term", false},
    {"json-pointer", "/foo/bar~0/baz~1/%a", true},
    {"json-pointer", "/foo/bar~", false},
    {"json-pointer", "#/foo", false},
    {"relative-json-pointer", "0#", true},
    {"relative-json-pointer", "1/foo/bar", true},
    {"relative-json-pointer", "01/a", false},
    {"relative-json-pointer", "/foo/bar", false},
    {"regex", "([abc])+\\s+$", true},
    {"regex", "^(abc]", false},
};

static void samples_per_format(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		tjs_format_fn f = tjs_format_lookup(samples[i].format);
		assert_non_null(f);
		bool got = f(samples[i].s, strlen(samples[i].s));
		if (got != samples[i].valid)
			fail_msg("%s \"%s\": got %s", samples[i].format, samples[i].s,
			         got ? "valid" : "invalid");
	}
}

static void nul_is_never_allowed(void **state)
{
	(void)state;
	assert_false(tjs_format_date_time("1963-06-19T08:30:06Z\0", 21));
	assert_false(tjs_format_hostname("a\0b", 3));
	assert_false(tjs_format_email("a@b\0c", 5));
	assert_false(tjs_format_ipv6("::1\0", 4));
}

static void unknown_format_is_not_checked(void **state)
{
	(void)state;
	assert_null(tjs_format_lookup("no-such-format"));
	assert_non_null(tjs_format_lookup("date-time"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(samples_per_format),
	    cmocka_unit_test(nul_is_never_allowed),
	    cmocka_unit_test(unknown_format_is_not_checked),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
