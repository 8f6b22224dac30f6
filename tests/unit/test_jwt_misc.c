/* JWT helpers: base64url strictness and identity rules. */
#include "test_jwt.h"

static void b64url_round_trip(void **state)
{
	unsigned char in[64], out[80];
	(void)state;

	for (size_t len = 0; len <= sizeof in; len++) {
		RAND_bytes(in, (int)len);
		char *mine = tjwt_b64url_encode(in, len), *ref = b64u(in, len);
		assert_string_equal(mine, ref);
		assert_int_equal(tjwt_b64url_decode(mine, strlen(mine), out), (long)len);
		assert_memory_equal(in, out, len);
		free(mine);
		free(ref);
	}
}

static void b64url_strict(void **state)
{
	unsigned char out[32];
	(void)state;

	assert_int_equal(tjwt_b64url_decode("", 0, out), 0);
	assert_int_equal(tjwt_b64url_decode("-_-_", 4, out), 3);
	assert_int_equal(out[0], 0xfb);
	assert_int_equal(tjwt_b64url_decode("+/+/", 4, out), -1); /* standard alphabet */
	assert_int_equal(tjwt_b64url_decode("QQ==", 4, out), -1); /* padding */
	assert_int_equal(tjwt_b64url_decode("QQ", 2, out), 1);
	assert_int_equal(out[0], 'A');
	assert_int_equal(tjwt_b64url_decode("QR", 2, out), -1); /* non-zero spare bits */
	assert_int_equal(tjwt_b64url_decode("QUI", 3, out), 2);
	assert_int_equal(tjwt_b64url_decode("QUJ", 3, out), -1);
	assert_int_equal(tjwt_b64url_decode("Q", 1, out), -1); /* impossible length */
	assert_int_equal(tjwt_b64url_decode("QUJD\n", 5, out), -1);
	assert_int_equal(tjwt_b64url_decode("QU D", 4, out), -1);
	assert_int_equal(tjwt_b64url_decode("QU\0D", 4, out), -1);
}

static void identities(void **state)
{
	char longid[TJWT_IDENTITY_MAX + 2];
	(void)state;

	assert_true(tjwt_identity_is_safe("alice"));
	assert_true(tjwt_identity_is_safe("auth0|5f7c8ec7c33c6c004bbafe82"));
	assert_true(tjwt_identity_is_safe("alice@example.com"));
	assert_true(tjwt_identity_is_safe("Zoë-日本-😀"));
	assert_true(tjwt_identity_is_safe("a b"));
	assert_false(tjwt_identity_is_safe(NULL));
	assert_false(tjwt_identity_is_safe(""));
	assert_string_equal(tjwt_identity_problem(""), "is empty");
	assert_string_equal(tjwt_identity_problem("a+b"), "contains '+'");
	assert_string_equal(tjwt_identity_problem("#"), "contains '#'");
	assert_string_equal(tjwt_identity_problem("users/bob"), "contains '/'");
	assert_string_equal(tjwt_identity_problem("a\nb"), "contains a control character");
	assert_string_equal(tjwt_identity_problem("a\tb"), "contains a control character");
	assert_string_equal(tjwt_identity_problem("a\x7f"), "contains a control character");
	assert_string_equal(tjwt_identity_problem("a\xc2\x85"),
	                    "contains a control character"); /* U+0085 */
	assert_string_equal(tjwt_identity_problem("a\xff"), "is not valid UTF-8");
	assert_string_equal(tjwt_identity_problem("\xc0\xaf"),
	                    "is not valid UTF-8"); /* overlong '/' */
	assert_string_equal(tjwt_identity_problem("\xe0\x80\xaf"),
	                    "is not valid UTF-8"); /* overlong '/' */
	assert_string_equal(tjwt_identity_problem("\xed\xa0\x80"),
	                    "is not valid UTF-8"); /* surrogate */
	assert_string_equal(tjwt_identity_problem("\xf4\x90\x80\x80"),
	                    "is not valid UTF-8"); /* > U+10FFFF */
	assert_string_equal(tjwt_identity_problem("\xe6\x97"),
	                    "is not valid UTF-8"); /* truncated */
	memset(longid, 'a', sizeof longid - 1);
	longid[sizeof longid - 1] = '\0';
	assert_string_equal(tjwt_identity_problem(longid), "is too long");
	longid[TJWT_IDENTITY_MAX] = '\0';
	assert_true(tjwt_identity_is_safe(longid));
}

static void status_names(void **state)
{
	(void)state;
	/* Every status has its own name (used as a metrics / log key). */
	for (int a = TJWT_OK; a <= TJWT_ERR_INTERNAL; a++) {
		assert_string_not_equal(tjwt_status_name((tjwt_status)a), "unknown");
		for (int b = a + 1; b <= TJWT_ERR_INTERNAL; b++)
			assert_string_not_equal(tjwt_status_name((tjwt_status)a),
			                        tjwt_status_name((tjwt_status)b));
	}
	assert_int_equal(tjwt_alg_from_name("none"), 0);
	assert_int_equal(tjwt_alg_from_name("rs256"), 0);
	assert_string_equal(tjwt_alg_name(TJWT_ES256), "ES256");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(b64url_round_trip),
	    cmocka_unit_test(b64url_strict),
	    cmocka_unit_test(identities),
	    cmocka_unit_test(status_names),
	};
	return cmocka_run_group_tests_name("jwt misc", tests, NULL, NULL);
}
