/* JWT verification: algorithms, signatures, attacks, malformed tokens, claims. */
#include "test_jwt.h"

static EVP_PKEY *rsa, *ec, *rsa2;
static const char secret[] = "0123456789abcdef0123456789abcdef-test-secret";
static tjwt_keyset *ks_rsa, *ks_ec, *ks_hs;

#define CLAIMS                                                                                     \
	"{\"sub\":\"alice\",\"iss\":\"https://"                                                    \
	"issuer.test\",\"aud\":\"tributary\",\"iat\":%ld,\"exp\":%ld}"
#define VALID_ARGS (long)NOW - 10, (long)NOW + 3600

static const char *const issuers[] = {"https://other.test", "https://issuer.test", NULL};
static const char *const audiences[] = {"tributary", NULL};

static tjwt_keyset *load(const char *path)
{
	char err[256] = "";
	tjwt_keyset *ks = tjwt_keyset_load(path, err, sizeof err);
	if (!ks)
		print_error("load %s: %s\n", path, err);
	assert_non_null(ks);
	return ks;
}

static int setup(void **state)
{
	(void)state;
	tdir_make();
	rsa = gen_rsa(2048);
	rsa2 = gen_rsa(2048);
	ec = gen_ec("P-256");
	write_pubkey_pem(rsa, tpath("rsa.pub.pem"));
	write_pubkey_pem(ec, tpath("ec.pub.pem"));
	write_file(tpath("secret"), secret, strlen(secret));
	ks_rsa = load(tpath("rsa.pub.pem"));
	ks_ec = load(tpath("ec.pub.pem"));
	ks_hs = load(tpath("secret"));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tjwt_keyset_unref(ks_rsa);
	tjwt_keyset_unref(ks_ec);
	tjwt_keyset_unref(ks_hs);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(rsa2);
	EVP_PKEY_free(ec);
	tdir_remove();
	return 0;
}

static void valid_each_alg(void **state)
{
	struct {
		const char *alg;
		tjwt_keyset **ks;
		EVP_PKEY *k;
	} cases[] = {{"RS256", &ks_rsa, rsa}, {"ES256", &ks_ec, ec}, {"HS256", &ks_hs, NULL}};
	tjwt_policy pol = {.issuers = issuers, .audiences = audiences};
	(void)state;

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *tok = make_token(cases[i].alg, NULL, cases[i].k, secret, strlen(secret),
		                       CLAIMS, VALID_ARGS);
		tjwt_result res;
		assert_int_equal(verify_tok(*cases[i].ks, &pol, tok, NOW, &res), TJWT_OK);
		assert_string_equal(tjwt_subject(res.claims), "alice");
		assert_string_equal(tjwt_claim_string(res.claims, "iss"), "https://issuer.test");
		assert_null(tjwt_claim_string(res.claims, "exp")); /* a number, not a string */
		assert_int_equal(res.alg, tjwt_alg_from_name(cases[i].alg));
		json_t *c = tjwt_result_steal_claims(&res);
		assert_null(res.claims);
		tjwt_result_clear(&res);
		assert_int_equal(json_integer_value(json_object_get(c, "exp")), (long)NOW + 3600);
		json_decref(c);
		/* The wrong key family for each token. */
		for (size_t j = 0; j < sizeof cases / sizeof cases[0]; j++)
			if (j != i)
				expect_status(*cases[j].ks, &pol, tok, NOW,
				              TJWT_ERR_ALG_KEY_MISMATCH);
		free(tok);
	}
}

static void library_signer_round_trip(void **state)
{
	json_t *claims = json_pack("{s:s, s:I, s:s}", "sub", "bob", "exp", (json_int_t)NOW + 60,
	                           "preferred_username", "bobby");
	char err[256];
	(void)state;

	char *t1 = tjwt_sign(TJWT_RS256, rsa, NULL, 0, "k1", claims, err, sizeof err);
	char *t2 = tjwt_sign(TJWT_ES256, ec, NULL, 0, NULL, claims, err, sizeof err);
	char *t3 =
	    tjwt_sign(TJWT_HS256, NULL, secret, strlen(secret), NULL, claims, err, sizeof err);
	assert_non_null(t1);
	assert_non_null(t2);
	assert_non_null(t3);
	tjwt_result res;
	assert_int_equal(verify_tok(ks_rsa, NULL, t1, NOW, &res), TJWT_OK);
	assert_string_equal(res.kid, "k1");
	assert_string_equal(tjwt_claim_string(res.claims, "preferred_username"), "bobby");
	tjwt_result_clear(&res);
	expect_status(ks_ec, NULL, t2, NOW, TJWT_OK);
	expect_status(ks_hs, NULL, t3, NOW, TJWT_OK);
	/* Signing with the wrong key type is an error, not a bad token. */
	assert_null(tjwt_sign(TJWT_RS256, ec, NULL, 0, NULL, claims, err, sizeof err));
	assert_non_null(strstr(err, "RSA"));
	free(t1);
	free(t2);
	free(t3);
	json_decref(claims);
}

/* Flips one bit of the decoded signature, re-encodes it. */
static char *flip_signature_bit(const char *tok, size_t byte)
{
	const char *dot = strrchr(tok, '.');
	unsigned char sig[1024];
	long n = tjwt_b64url_decode(dot + 1, strlen(dot + 1), sig);
	char *s64, *out;

	assert_true(n > 0);
	sig[byte % (size_t)n] ^= 0x01;
	s64 = b64u(sig, (size_t)n);
	out = malloc(strlen(tok) + 8);
	sprintf(out, "%.*s.%s", (int)(dot - tok), tok, s64);
	free(s64);
	return out;
}

static void bad_signature(void **state)
{
	struct {
		const char *alg;
		tjwt_keyset *ks;
		EVP_PKEY *k;
	} cases[] = {{"RS256", ks_rsa, rsa}, {"ES256", ks_ec, ec}, {"HS256", ks_hs, NULL}};
	(void)state;

	for (size_t i = 0; i < 3; i++) {
		char *tok = make_token(cases[i].alg, NULL, cases[i].k, secret, strlen(secret),
		                       CLAIMS, VALID_ARGS);
		for (size_t b = 0; b < 64; b += 13) {
			char *bad = flip_signature_bit(tok, b);
			tjwt_result res;
			assert_int_equal(verify_tok(cases[i].ks, NULL, bad, NOW, &res),
			                 TJWT_ERR_SIGNATURE);
			assert_non_null(strstr(res.message, "signature verification failed"));
			assert_null(res.claims);
			free(bad);
		}
		/* A different payload under the original signature. */
		char *other = make_token(cases[i].alg, NULL, cases[i].k, secret, strlen(secret),
		                         "{\"sub\":\"mallory\",\"exp\":%ld}", (long)NOW + 3600);
		char *forged = malloc(strlen(tok) + strlen(other) + 1);
		const char *p1 = strchr(other, '.'), *p2 = strrchr(other, '.'),
		           *s = strrchr(tok, '.');
		sprintf(forged, "%.*s%s", (int)(p2 - other), other, s);
		(void)p1;
		expect_status(cases[i].ks, NULL, forged, NOW, TJWT_ERR_SIGNATURE);
		/* Signature one byte short, and one byte too long. */
		{
			const char *dot = strrchr(tok, '.');
			unsigned char sig[1024];
			long n = tjwt_b64url_decode(dot + 1, strlen(dot + 1), sig);
			assert_true(n > 0);
			for (long delta = -1; delta <= 1; delta += 2) {
				char *s64 = b64u(sig, (size_t)(n + delta)),
				     *t = malloc(strlen(tok) + 8);
				sprintf(t, "%.*s.%s", (int)(dot - tok), tok, s64);
				expect_status(cases[i].ks, NULL, t, NOW, TJWT_ERR_SIGNATURE);
				free(s64);
				free(t);
			}
		}
		free(forged);
		free(other);
		free(tok);
	}
	/* RS256 signed by another RSA key. */
	char *tok = make_token("RS256", NULL, rsa2, NULL, 0, CLAIMS, VALID_ARGS);
	expect_status(ks_rsa, NULL, tok, NOW, TJWT_ERR_SIGNATURE);
	free(tok);
}

static void alg_none_refused(void **state)
{
	const char *variants[] = {"none", "None", "NONE", "nOnE"};
	tjwt_keyset *sets[] = {ks_rsa, ks_ec, ks_hs};
	(void)state;

	for (size_t v = 0; v < 4; v++) {
		char header[64], payload[128];
		snprintf(header, sizeof header, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", variants[v]);
		snprintf(payload, sizeof payload, "{\"sub\":\"alice\",\"exp\":%ld}",
		         (long)NOW + 3600);
		char *tok = make_token_as(NULL, header, payload, NULL, NULL, 0);
		assert_int_equal(tok[strlen(tok) - 1], '.'); /* header.payload. */
		for (size_t s = 0; s < 3; s++) {
			tjwt_result res;
			assert_int_equal(verify_tok(sets[s], NULL, tok, NOW, &res),
			                 TJWT_ERR_ALG_NONE);
			assert_string_equal(res.message, "algorithm none is not allowed");
		}
		/* Even with a signature appended. */
		char *withsig = malloc(strlen(tok) + 8);
		sprintf(withsig, "%sAAAA", tok);
		expect_status(ks_hs, NULL, withsig, NOW, TJWT_ERR_ALG_NONE);
		free(withsig);
		free(tok);
	}
}

/* The classic: HMAC keyed with the server's RSA public key, which is public. */
static void hs256_with_public_key_refused(void **state)
{
	size_t pemlen;
	char *pem = read_all(tpath("rsa.pub.pem"), &pemlen);
	char err[256];
	tjwt_result res;
	(void)state;

	char *tok = make_token("HS256", NULL, NULL, pem, pemlen, CLAIMS, VALID_ARGS);
	assert_int_equal(verify_tok(ks_rsa, NULL, tok, NOW, &res), TJWT_ERR_ALG_KEY_MISMATCH);
	assert_string_equal(res.message, "HS256 not allowed for an RSA key");
	/* Same through a JWKS holding the RSA key under a kid. */
	json_t *jwks = json_pack("{s:[o]}", "keys", jwk_of(rsa, "rsa1", NULL));
	write_json(jwks, tpath("confusion.jwks"));
	json_decref(jwks);
	tjwt_keyset *ks = load(tpath("confusion.jwks"));
	char *tok2 = make_token("HS256", "rsa1", NULL, pem, pemlen, CLAIMS, VALID_ARGS);
	assert_int_equal(verify_tok(ks, NULL, tok2, NOW, &res), TJWT_ERR_ALG_KEY_MISMATCH);
	assert_string_equal(res.message, "HS256 not allowed for an RSA key (kid 'rsa1')");
	/* The PEM bytes can never become a secret, even when forced to. */
	assert_null(tjwt_keyset_load_secret(tpath("rsa.pub.pem"), err, sizeof err));
	assert_non_null(strstr(err, "PEM"));
	/* Nor the DER form of the public key. */
	unsigned char *der = NULL;
	int derlen = i2d_PUBKEY(rsa, &der);
	assert_true(derlen > 0);
	assert_null(tjwt_keyset_from_secret(der, (size_t)derlen, NULL, err, sizeof err));
	assert_non_null(strstr(err, "DER public key"));
	OPENSSL_free(der);
	/* ES256 / RS256 tokens for the oct key: refused the same way. */
	char *tok3 = make_token("RS256", NULL, rsa, NULL, 0, CLAIMS, VALID_ARGS);
	assert_int_equal(verify_tok(ks_hs, NULL, tok3, NOW, &res), TJWT_ERR_ALG_KEY_MISMATCH);
	assert_string_equal(res.message, "RS256 not allowed for an oct key");
	tjwt_keyset_unref(ks);
	free(tok);
	free(tok2);
	free(tok3);
	free(pem);
}

static void alg_allow_list(void **state)
{
	tjwt_policy rs_only = {.algs = TJWT_RS256};
	tjwt_result res;
	(void)state;

	char *es = make_token("ES256", NULL, ec, NULL, 0, CLAIMS, VALID_ARGS);
	char *rs = make_token("RS256", NULL, rsa, NULL, 0, CLAIMS, VALID_ARGS);
	assert_int_equal(verify_tok(ks_ec, &rs_only, es, NOW, &res), TJWT_ERR_ALG_NOT_ALLOWED);
	assert_string_equal(res.message, "algorithm ES256 is not allowed (allowed: RS256)");
	expect_status(ks_rsa, &rs_only, rs, NOW, TJWT_OK);
	char *unsup =
	    make_token_as("RS256", "{\"alg\":\"RS512\"}", "{\"exp\":9999999999}", rsa, NULL, 0);
	assert_int_equal(verify_tok(ks_rsa, NULL, unsup, NOW, &res), TJWT_ERR_ALG_UNSUPPORTED);
	assert_non_null(strstr(res.message, "'RS512'"));
	unsigned mask = 0;
	char err[128];
	assert_int_equal(tjwt_algs_parse("RS256, ES256", &mask, err, sizeof err), 0);
	assert_int_equal(mask, TJWT_RS256 | TJWT_ES256);
	assert_int_equal(tjwt_algs_parse("RS256,none", &mask, err, sizeof err), -1);
	assert_int_equal(tjwt_algs_parse("", &mask, err, sizeof err), -1);
	free(es);
	free(rs);
	free(unsup);
}

static void crit_and_header_checks(void **state)
{
	char payload[128];
	struct {
		const char *header;
		tjwt_status want;
	} cases[] = {
	    {"{\"alg\":\"HS256\",\"crit\":[\"exp\"],\"exp\":1}", TJWT_ERR_CRIT},
	    {"{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", TJWT_ERR_CRIT},
	    {"{\"alg\":\"HS256\",\"crit\":[]}", TJWT_ERR_MALFORMED},
	    {"{\"alg\":\"HS256\",\"crit\":\"x\"}", TJWT_ERR_MALFORMED},
	    {"{\"alg\":\"HS256\",\"b64\":false}", TJWT_ERR_MALFORMED},
	    {"{\"alg\":\"HS256\",\"kid\":7}", TJWT_ERR_MALFORMED},
	    {"{\"typ\":\"JWT\"}", TJWT_ERR_MALFORMED},
	    {"{\"alg\":256}", TJWT_ERR_MALFORMED},
	    {"{\"alg\":\"HS256\",\"alg\":\"none\"}", TJWT_ERR_MALFORMED}, /* duplicate member */
	    {"[\"HS256\"]", TJWT_ERR_MALFORMED},
	    {"\"HS256\"", TJWT_ERR_MALFORMED},
	    {"{\"alg\":\"HS256\"", TJWT_ERR_MALFORMED},
	    {"{\"alg\":\"HS256\",\"typ\":\"JWT\",\"x5u\":\"http://evil/\"}",
	     TJWT_OK},                                             /* never fetched */
	    {"{\"alg\":\"HS256\",\"kid\":\"anything\"}", TJWT_OK}, /* the bare secret has no kid */
	};
	(void)state;

	snprintf(payload, sizeof payload, "{\"sub\":\"alice\",\"exp\":%ld}", (long)NOW + 60);
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *tok =
		    make_token_as("HS256", cases[i].header, payload, NULL, secret, strlen(secret));
		expect_status(ks_hs, NULL, tok, NOW, cases[i].want);
		free(tok);
	}
	tjwt_result res;
	char *tok = make_token_as("HS256", cases[0].header, payload, NULL, secret, strlen(secret));
	verify_tok(ks_hs, NULL, tok, NOW, &res);
	assert_string_equal(res.message, "critical header parameter 'exp' is not supported");
	free(tok);
}

static void malformed_tokens(void **state)
{
	char *good = make_token("HS256", NULL, NULL, secret, strlen(secret), CLAIMS, VALID_ARGS);
	const char *d1 = strchr(good, '.'), *d2 = strrchr(good, '.');
	char buf[20000];
	tjwt_result res;
	(void)state;

	expect_status(ks_hs, NULL, good, NOW, TJWT_OK);
	assert_int_equal(tjwt_verify(ks_hs, NULL, "", 0, NOW, &res), TJWT_ERR_MALFORMED);
	assert_int_equal(tjwt_verify(ks_hs, NULL, NULL, 0, NOW, &res), TJWT_ERR_MALFORMED);
	expect_status(ks_hs, NULL, "abc", NOW, TJWT_ERR_MALFORMED);
	expect_status(ks_hs, NULL, "a.b", NOW, TJWT_ERR_MALFORMED);
	expect_status(ks_hs, NULL, "..", NOW, TJWT_ERR_MALFORMED);
	expect_status(ks_hs, NULL, "a.b.c.d", NOW, TJWT_ERR_MALFORMED);
	assert_int_equal(verify_tok(ks_hs, NULL, "a.b.c.d.e", NOW, &res), TJWT_ERR_MALFORMED);
	assert_non_null(strstr(res.message, "JWE"));
	/* Two parts only (signature dropped). */
	snprintf(buf, sizeof buf, "%.*s", (int)(d2 - good), good);
	expect_status(ks_hs, NULL, buf, NOW, TJWT_ERR_MALFORMED);
	/* Empty signature. */
	snprintf(buf, sizeof buf, "%.*s.", (int)(d2 - good), good);
	assert_int_equal(verify_tok(ks_hs, NULL, buf, NOW, &res), TJWT_ERR_MALFORMED);
	assert_string_equal(res.message, "signature is empty");
	/* Characters outside base64url in each part. */
	const char *bad_chars[] = {"=", "+", "/", " ", "\n", "!"};
	for (size_t i = 0; i < 6; i++) {
		for (int part = 0; part < 3; part++) {
			size_t at = part == 0   ? 2
			            : part == 1 ? (size_t)(d1 - good) + 2
			                        : (size_t)(d2 - good) + 2;
			snprintf(buf, sizeof buf, "%s", good);
			buf[at] = bad_chars[i][0];
			expect_status(ks_hs, NULL, buf, NOW, TJWT_ERR_MALFORMED);
		}
	}
	/* Padding appended to the signature. */
	snprintf(buf, sizeof buf, "%s=", good);
	expect_status(ks_hs, NULL, buf, NOW, TJWT_ERR_MALFORMED);
	/* Embedded NUL: the length is what counts. */
	snprintf(buf, sizeof buf, "%s", good);
	buf[(size_t)(d1 - good) + 3] = '\0';
	assert_int_equal(tjwt_verify(ks_hs, NULL, buf, strlen(good), NOW, &res),
	                 TJWT_ERR_MALFORMED);
	/* A non-canonical final character (unused bits set) in the header. */
	{
		char *h = b64u("{\"alg\":\"HS256\"}", 15); /* 15 bytes -> 20 chars, no slack */
		char *h2 =
		    b64u("{\"alg\":\"HS256\"} ", 16); /* 16 bytes -> 22 chars, 4 spare bits */
		size_t l = strlen(h2);
		h2[l - 1] = h2[l - 1] == 'A'   ? 'B'
		            : h2[l - 1] == 'Q' ? 'R'
		            : h2[l - 1] == 'g' ? 'h'
		                               : 'x';
		snprintf(buf, sizeof buf, "%s%s", h2, d1);
		expect_status(ks_hs, NULL, buf, NOW, TJWT_ERR_MALFORMED);
		free(h);
		free(h2);
	}
	/* Payloads that are not JSON objects, correctly signed. */
	const char *payloads[] = {"[1,2]",
	                          "\"alice\"",
	                          "42",
	                          "null",
	                          "{\"sub\":\"a\",\"sub\":\"b\",\"exp\":1}",
	                          "{\"sub\":\"a\"",
	                          "not json",
	                          "{\"sub\":\"\\u0000x\",\"exp\":9999999999}"};
	for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
		char *t = make_token_as("HS256", "{\"alg\":\"HS256\"}", payloads[i], NULL, secret,
		                        strlen(secret));
		expect_status(ks_hs, NULL, t, NOW, TJWT_ERR_MALFORMED);
		free(t);
	}
	/* Size limit: refused before anything is decoded. */
	memset(buf, 'A', sizeof buf - 1);
	buf[sizeof buf - 1] = '\0';
	buf[10] = buf[20] = '.';
	assert_int_equal(verify_tok(ks_hs, NULL, buf, NOW, &res), TJWT_ERR_TOO_LARGE);
	assert_non_null(strstr(res.message, "16384"));
	/* A real but big token (a padded claim): refused at the default, accepted with a higher
	 * limit. */
	{
		char *pad = malloc(17000);
		memset(pad, 'x', 16999);
		pad[16999] = '\0';
		char *big = make_token("HS256", NULL, NULL, secret, strlen(secret),
		                       "{\"sub\":\"alice\",\"exp\":%ld,\"pad\":\"%.*s\"}",
		                       (long)NOW + 60, 3000, pad);
		tjwt_policy small = {.max_token_len = 1000}, dflt = {0};
		expect_status(ks_hs, &small, big, NOW, TJWT_ERR_TOO_LARGE);
		expect_status(ks_hs, &dflt, big, NOW, TJWT_OK);
		free(big);
		free(pad);
	}
	free(good);
}

static void expiry_and_skew(void **state)
{
	tjwt_policy strict = {0}, skew = {.leeway = 30};
	tjwt_result res;
	(void)state;

	/* exp exactly now is already expired (RFC 7519: "on or after"). */
	char *t = make_token("RS256", NULL, rsa, NULL, 0, "{\"sub\":\"a\",\"exp\":%ld}", (long)NOW);
	assert_int_equal(verify_tok(ks_rsa, &strict, t, NOW, &res), TJWT_ERR_EXPIRED);
	assert_string_equal(
	    res.message,
	    "token expired at 2023-11-14T22:13:20Z (now 2023-11-14T22:13:20Z, leeway 0s)");
	expect_status(ks_rsa, &strict, t, NOW - 1, TJWT_OK);
	/* Within the leeway after expiry: accepted; beyond it: refused. */
	expect_status(ks_rsa, &skew, t, NOW + 29, TJWT_OK);
	assert_int_equal(verify_tok(ks_rsa, &skew, t, NOW + 30, &res), TJWT_ERR_EXPIRED);
	assert_string_equal(
	    res.message,
	    "token expired at 2023-11-14T22:13:20Z (now 2023-11-14T22:13:50Z, leeway 30s)");
	free(t);

	/* nbf in the future. */
	t = make_token("ES256", NULL, ec, NULL, 0, "{\"sub\":\"a\",\"nbf\":%ld,\"exp\":%ld}",
	               (long)NOW + 20, (long)NOW + 3600);
	assert_int_equal(verify_tok(ks_ec, &strict, t, NOW, &res), TJWT_ERR_NOT_YET_VALID);
	assert_non_null(strstr(res.message, "token not valid before 2023-11-14T22:13:40Z"));
	expect_status(ks_ec, &skew, t, NOW, TJWT_OK);
	expect_status(ks_ec, &strict, t, NOW + 20, TJWT_OK);
	free(t);

	/* iat in the future, beyond the leeway. */
	t = make_token("HS256", NULL, NULL, secret, strlen(secret),
	               "{\"sub\":\"a\",\"iat\":%ld,\"exp\":%ld}", (long)NOW + 60, (long)NOW + 3600);
	assert_int_equal(verify_tok(ks_hs, &skew, t, NOW, &res), TJWT_ERR_IAT);
	assert_non_null(strstr(res.message, "issued in the future"));
	expect_status(ks_hs, &skew, t, NOW + 31, TJWT_OK);
	free(t);

	/* Maximum age. */
	tjwt_policy aged = {.max_age = 300};
	t = make_token("HS256", NULL, NULL, secret, strlen(secret),
	               "{\"sub\":\"a\",\"iat\":%ld,\"exp\":%ld}", (long)NOW - 301,
	               (long)NOW + 3600);
	expect_status(ks_hs, &aged, t, NOW, TJWT_ERR_IAT);
	expect_status(ks_hs, &aged, t, NOW - 1, TJWT_OK);
	free(t);
	t = make_token("HS256", NULL, NULL, secret, strlen(secret), "{\"sub\":\"a\",\"exp\":%ld}",
	               (long)NOW + 10);
	expect_status(ks_hs, &aged, t, NOW, TJWT_ERR_CLAIM_MISSING);
	free(t);

	/* No exp: refused by default, accepted only when made optional. */
	t = make_token("HS256", NULL, NULL, secret, strlen(secret), "{\"sub\":\"a\"}");
	assert_int_equal(verify_tok(ks_hs, &strict, t, NOW, &res), TJWT_ERR_CLAIM_MISSING);
	assert_non_null(strstr(res.message, "exp"));
	tjwt_policy noexp = {.exp_optional = true};
	expect_status(ks_hs, &noexp, t, NOW, TJWT_OK);
	free(t);

	/* Fractional and non-numeric times. */
	t = make_token("HS256", NULL, NULL, secret, strlen(secret), "{\"exp\":%ld.5}", (long)NOW);
	expect_status(ks_hs, &strict, t, NOW, TJWT_OK);
	expect_status(ks_hs, &strict, t, NOW + 1, TJWT_ERR_EXPIRED);
	free(t);
	t = make_token("HS256", NULL, NULL, secret, strlen(secret), "{\"exp\":\"%ld\"}",
	               (long)NOW + 100);
	expect_status(ks_hs, &strict, t, NOW, TJWT_ERR_CLAIM_TYPE);
	free(t);
	t = make_token("HS256", NULL, NULL, secret, strlen(secret), "{\"exp\":%ld,\"nbf\":true}",
	               (long)NOW + 100);
	expect_status(ks_hs, &strict, t, NOW, TJWT_ERR_CLAIM_TYPE);
	free(t);
	/* Far-future expiry prints as a number, not a broken date. */
	t = make_token("HS256", NULL, NULL, secret, strlen(secret), "{\"exp\":1e300}");
	expect_status(ks_hs, &strict, t, NOW, TJWT_OK);
	free(t);
	t = make_token("HS256", NULL, NULL, secret, strlen(secret), "{\"exp\":-1e300}");
	assert_int_equal(verify_tok(ks_hs, &strict, t, NOW, &res), TJWT_ERR_EXPIRED);
	assert_non_null(strstr(res.message, "token expired at -1000000"));
	free(t);
	/* now = 0 means the real clock: a token valid for an hour from now passes. */
	t = make_token("HS256", NULL, NULL, secret, strlen(secret), "{\"exp\":%ld}",
	               (long)time(NULL) + 3600);
	expect_status(ks_hs, &strict, t, 0, TJWT_OK);
	free(t);
}

static void issuer_and_audience(void **state)
{
	tjwt_policy pol = {.issuers = issuers, .audiences = audiences};
	static const char *const two_auds[] = {"api", "tributary", NULL};
	tjwt_policy pol2 = {.audiences = two_auds};
	tjwt_result res;
	(void)state;

	char *t = make_token(
	    "RS256", NULL, rsa, NULL, 0,
	    "{\"sub\":\"a\",\"iss\":\"https://evil.test\",\"aud\":\"tributary\",\"exp\":%ld}",
	    (long)NOW + 60);
	assert_int_equal(verify_tok(ks_rsa, &pol, t, NOW, &res), TJWT_ERR_ISSUER);
	assert_string_equal(res.message, "issuer 'https://evil.test' not accepted");
	expect_status(ks_rsa, NULL, t, NOW, TJWT_OK); /* no issuer configured */
	free(t);
	/* Prefix / case variations are not the same issuer. */
	t = make_token("RS256", NULL, rsa, NULL, 0,
	               "{\"iss\":\"https://issuer.test/\",\"aud\":\"tributary\",\"exp\":%ld}",
	               (long)NOW + 60);
	expect_status(ks_rsa, &pol, t, NOW, TJWT_ERR_ISSUER);
	free(t);
	t = make_token("RS256", NULL, rsa, NULL, 0, "{\"aud\":\"tributary\",\"exp\":%ld}",
	               (long)NOW + 60);
	assert_int_equal(verify_tok(ks_rsa, &pol, t, NOW, &res), TJWT_ERR_ISSUER);
	assert_non_null(strstr(res.message, "no issuer"));
	free(t);
	t = make_token("RS256", NULL, rsa, NULL, 0, "{\"iss\":42,\"exp\":%ld}", (long)NOW + 60);
	expect_status(ks_rsa, NULL, t, NOW, TJWT_ERR_CLAIM_TYPE);
	free(t);
	/* Second configured issuer also accepted. */
	t = make_token("RS256", NULL, rsa, NULL, 0,
	               "{\"iss\":\"https://other.test\",\"aud\":\"tributary\",\"exp\":%ld}",
	               (long)NOW + 60);
	expect_status(ks_rsa, &pol, t, NOW, TJWT_OK);
	free(t);

	/* Audience: string, array containing, array not containing, missing. */
	t = make_token("ES256", NULL, ec, NULL, 0,
	               "{\"iss\":\"https://issuer.test\",\"aud\":\"billing\",\"exp\":%ld}",
	               (long)NOW + 60);
	assert_int_equal(verify_tok(ks_ec, &pol, t, NOW, &res), TJWT_ERR_AUDIENCE);
	assert_string_equal(res.message, "audience 'billing' not accepted");
	free(t);
	t = make_token(
	    "ES256", NULL, ec, NULL, 0,
	    "{\"iss\":\"https://issuer.test\",\"aud\":[\"billing\",\"tributary\"],\"exp\":%ld}",
	    (long)NOW + 60);
	expect_status(ks_ec, &pol, t, NOW, TJWT_OK);
	free(t);
	t = make_token(
	    "ES256", NULL, ec, NULL, 0,
	    "{\"iss\":\"https://issuer.test\",\"aud\":[\"billing\",\"crm\"],\"exp\":%ld}",
	    (long)NOW + 60);
	assert_int_equal(verify_tok(ks_ec, &pol, t, NOW, &res), TJWT_ERR_AUDIENCE);
	assert_non_null(
	    strstr(res.message, "audience 'billing' (and the others listed) not accepted"));
	free(t);
	t = make_token("ES256", NULL, ec, NULL, 0,
	               "{\"iss\":\"https://issuer.test\",\"aud\":[],\"exp\":%ld}", (long)NOW + 60);
	expect_status(ks_ec, &pol, t, NOW, TJWT_ERR_AUDIENCE);
	free(t);
	t = make_token("ES256", NULL, ec, NULL, 0, "{\"iss\":\"https://issuer.test\",\"exp\":%ld}",
	               (long)NOW + 60);
	assert_int_equal(verify_tok(ks_ec, &pol, t, NOW, &res), TJWT_ERR_AUDIENCE);
	assert_non_null(strstr(res.message, "no audience"));
	free(t);
	t = make_token("ES256", NULL, ec, NULL, 0, "{\"aud\":\"api\",\"exp\":%ld}", (long)NOW + 60);
	expect_status(ks_ec, &pol2, t, NOW, TJWT_OK);
	free(t);
	t = make_token("ES256", NULL, ec, NULL, 0, "{\"aud\":[\"api\",7],\"exp\":%ld}",
	               (long)NOW + 60);
	expect_status(ks_ec, &pol2, t, NOW, TJWT_ERR_CLAIM_TYPE);
	free(t);
	t = make_token("ES256", NULL, ec, NULL, 0, "{\"aud\":{\"x\":1},\"exp\":%ld}",
	               (long)NOW + 60);
	expect_status(ks_ec, NULL, t, NOW, TJWT_ERR_CLAIM_TYPE);
	free(t);
	/* Untrusted values are quoted safely in messages. */
	t = make_token("ES256", NULL, ec, NULL, 0,
	               "{\"iss\":\"a\\nFAKE LOG LINE\\u001b[31m\",\"exp\":%ld}", (long)NOW + 60);
	assert_int_equal(verify_tok(ks_ec, &pol, t, NOW, &res), TJWT_ERR_ISSUER);
	assert_string_equal(res.message, "issuer 'a?FAKE LOG LINE?[31m' not accepted");
	free(t);
}

static void required_claims(void **state)
{
	static const char *const req[] = {"sub", "preferred_username", NULL};
	tjwt_policy pol = {.required = req};
	tjwt_result res;
	(void)state;

	char *t = make_token("HS256", NULL, NULL, secret, strlen(secret),
	                     "{\"sub\":\"a\",\"exp\":%ld}", (long)NOW + 9);
	assert_int_equal(verify_tok(ks_hs, &pol, t, NOW, &res), TJWT_ERR_CLAIM_MISSING);
	assert_string_equal(res.message, "required claim 'preferred_username' is missing");
	free(t);
	t = make_token("HS256", NULL, NULL, secret, strlen(secret),
	               "{\"sub\":\"a\",\"preferred_username\":null,\"exp\":%ld}", (long)NOW + 9);
	expect_status(ks_hs, &pol, t, NOW, TJWT_ERR_CLAIM_MISSING);
	free(t);
	t = make_token("HS256", NULL, NULL, secret, strlen(secret),
	               "{\"sub\":\"a\",\"preferred_username\":\"al\",\"exp\":%ld}", (long)NOW + 9);
	assert_int_equal(verify_tok(ks_hs, &pol, t, NOW, &res), TJWT_OK);
	assert_string_equal(tjwt_claim_string(res.claims, "preferred_username"), "al");
	tjwt_result_clear(&res);
	free(t);
	t = make_token("HS256", NULL, NULL, secret, strlen(secret), "{\"sub\":12,\"exp\":%ld}",
	               (long)NOW + 9);
	expect_status(ks_hs, NULL, t, NOW, TJWT_ERR_CLAIM_TYPE);
	free(t);
}

/* Random single-character changes, truncations and extensions of valid
 * tokens: none may verify, none may crash (run under ASan in make test-san). */
static void mutations_never_verify(void **state)
{
	static const char alphabet[] = "ABCXYZabcxyz0189-_.=+/ \"{}";
	struct {
		const char *alg;
		tjwt_keyset **ks;
		EVP_PKEY *k;
	} cases[] = {{"RS256", &ks_rsa, rsa}, {"ES256", &ks_ec, ec}, {"HS256", &ks_hs, NULL}};
	unsigned seed = 12345;
	(void)state;

	for (size_t i = 0; i < 3; i++) {
		char *tok = make_token(cases[i].alg, "k", cases[i].k, secret, strlen(secret),
		                       CLAIMS, VALID_ARGS);
		size_t len = strlen(tok);
		char *m = malloc(len + 2);
		int refused = 0;
		expect_status(*cases[i].ks, NULL, tok, NOW, TJWT_OK);
		for (int n = 0; n < 1500; n++) {
			tjwt_result res;
			size_t at = (size_t)rand_r(&seed) % len, mlen = len;
			memcpy(m, tok, len + 1);
			switch (n % 3) {
			case 0:
				m[at] = alphabet[(size_t)rand_r(&seed) % (sizeof alphabet - 1)];
				break;
			case 1:
				mlen = at;
				break;
			default:
				m[len] = alphabet[(size_t)rand_r(&seed) % (sizeof alphabet - 1)];
				mlen = len + 1;
			}
			if (mlen == len && !memcmp(m, tok, len))
				continue;
			tjwt_status st = tjwt_verify(*cases[i].ks, NULL, m, mlen, NOW, &res);
			assert_int_not_equal(st, TJWT_OK);
			assert_null(res.claims);
			assert_true(strlen(res.message) > 0);
			refused++;
			tjwt_result_clear(&res);
		}
		assert_true(refused > 1400);
		free(m);
		free(tok);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(valid_each_alg),
	    cmocka_unit_test(library_signer_round_trip),
	    cmocka_unit_test(bad_signature),
	    cmocka_unit_test(alg_none_refused),
	    cmocka_unit_test(hs256_with_public_key_refused),
	    cmocka_unit_test(alg_allow_list),
	    cmocka_unit_test(crit_and_header_checks),
	    cmocka_unit_test(malformed_tokens),
	    cmocka_unit_test(expiry_and_skew),
	    cmocka_unit_test(issuer_and_audience),
	    cmocka_unit_test(required_claims),
	    cmocka_unit_test(mutations_never_verify),
	};
	return cmocka_run_group_tests_name("jwt", tests, setup, teardown);
}
