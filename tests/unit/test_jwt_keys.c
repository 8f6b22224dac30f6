/* JWT key sets: PEM, certificates, JWKS (kid selection), secrets, reload slot, threads. */
#include <pthread.h>

#include "test_jwt.h"

static EVP_PKEY *rsa_a, *rsa_b, *ec_a;
static const char secret_a[] = "secret-A-0123456789-0123456789-0123456789";
static const char secret_b[] = "secret-B-0123456789-0123456789-0123456789";

#define CLAIMS "{\"sub\":\"alice\",\"exp\":%ld}", (long)NOW + 600

static int setup(void **state)
{
	(void)state;
	tdir_make();
	rsa_a = gen_rsa(2048);
	rsa_b = gen_rsa(3072);
	ec_a = gen_ec("P-256");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(rsa_a);
	EVP_PKEY_free(rsa_b);
	EVP_PKEY_free(ec_a);
	tdir_remove();
	return 0;
}

static tjwt_keyset *must_load(const char *path)
{
	char err[512] = "";
	tjwt_keyset *ks = tjwt_keyset_load(path, err, sizeof err);
	if (!ks)
		print_error("load %s: %s\n", path, err);
	assert_non_null(ks);
	return ks;
}

static void load_fails(const char *path, const char *want_in_err)
{
	char err[512] = "";
	tjwt_keyset *ks = tjwt_keyset_load(path, err, sizeof err);
	if (ks || !strstr(err, want_in_err))
		print_error("load %s: %s (wanted '%s')\n", path, ks ? "loaded" : err, want_in_err);
	assert_null(ks);
	assert_non_null(strstr(err, want_in_err));
}

static void jwks_kid_selection(void **state)
{
	tjwt_result res;
	char desc[512];
	(void)state;

	json_t *jwks = json_pack("{s:[o,o,o,o]}", "keys", jwk_of(rsa_a, "ra", "RS256"),
	                         jwk_of(rsa_b, "rb", NULL), jwk_of(ec_a, "ea", NULL),
	                         jwk_oct(secret_a, strlen(secret_a), "sa"));
	write_json(jwks, tpath("set.jwks"));
	json_decref(jwks);
	tjwt_keyset *ks = must_load(tpath("set.jwks"));
	assert_int_equal(tjwt_keyset_size(ks), 4);
	tjwt_keyset_describe(ks, desc, sizeof desc);
	assert_string_equal(
	    desc,
	    "RSA 2048 kid=ra algs=RS256; RSA 3072 kid=rb algs=RS256; EC 256 kid=ea algs=ES256; "
	    "oct 328 kid=sa algs=HS256");

	/* Each key under its own kid. */
	char *t_ra = make_token("RS256", "ra", rsa_a, NULL, 0, CLAIMS);
	char *t_rb = make_token("RS256", "rb", rsa_b, NULL, 0, CLAIMS);
	char *t_ea = make_token("ES256", "ea", ec_a, NULL, 0, CLAIMS);
	char *t_sa = make_token("HS256", "sa", NULL, secret_a, strlen(secret_a), CLAIMS);
	assert_int_equal(verify_tok(ks, NULL, t_rb, NOW, &res), TJWT_OK);
	assert_string_equal(res.kid, "rb");
	tjwt_result_clear(&res);
	expect_status(ks, NULL, t_ra, NOW, TJWT_OK);
	expect_status(ks, NULL, t_ea, NOW, TJWT_OK);
	expect_status(ks, NULL, t_sa, NOW, TJWT_OK);

	/* A token naming key ra but signed by rb: only ra is tried. */
	char *wrong = make_token("RS256", "ra", rsa_b, NULL, 0, CLAIMS);
	assert_int_equal(verify_tok(ks, NULL, wrong, NOW, &res), TJWT_ERR_SIGNATURE);
	assert_string_equal(res.message, "signature verification failed (RS256, kid 'ra')");
	/* The kid of the EC key with an RS256 token. */
	char *mism = make_token("RS256", "ea", rsa_a, NULL, 0, CLAIMS);
	assert_int_equal(verify_tok(ks, NULL, mism, NOW, &res), TJWT_ERR_ALG_KEY_MISMATCH);
	assert_string_equal(res.message, "RS256 not allowed for an EC key (kid 'ea')");
	/* An unknown kid. */
	char *unknown = make_token("RS256", "zz", rsa_a, NULL, 0, CLAIMS);
	assert_int_equal(verify_tok(ks, NULL, unknown, NOW, &res), TJWT_ERR_NO_KEY);
	assert_string_equal(res.message, "no key with kid 'zz'");
	/* No kid: every key of the right type is tried. */
	char *nokid_b = make_token("RS256", NULL, rsa_b, NULL, 0, CLAIMS);
	char *nokid_s = make_token("HS256", NULL, NULL, secret_a, strlen(secret_a), CLAIMS);
	char *nokid_x = make_token("HS256", NULL, NULL, secret_b, strlen(secret_b), CLAIMS);
	expect_status(ks, NULL, nokid_b, NOW, TJWT_OK);
	expect_status(ks, NULL, nokid_s, NOW, TJWT_OK);
	assert_int_equal(verify_tok(ks, NULL, nokid_x, NOW, &res), TJWT_ERR_SIGNATURE);

	free(t_ra);
	free(t_rb);
	free(t_ea);
	free(t_sa);
	free(wrong);
	free(mism);
	free(unknown);
	free(nokid_b);
	free(nokid_s);
	free(nokid_x);
	tjwt_keyset_unref(ks);
}

static void jwks_single_jwk_and_skips(void **state)
{
	char err[512];
	(void)state;

	/* A bare JWK. */
	json_t *jwk = jwk_of(ec_a, NULL, "ES256");
	write_json(jwk, tpath("one.jwk"));
	json_decref(jwk);
	tjwt_keyset *ks = must_load(tpath("one.jwk"));
	char *t = make_token("ES256", "whatever", ec_a, NULL, 0, CLAIMS);
	expect_status(ks, NULL, t, NOW, TJWT_OK);
	free(t);
	tjwt_keyset_unref(ks);

	/* Keys for encryption, other algorithms or curves are skipped, not errors. */
	json_t *enc = jwk_of(rsa_b, "enc", NULL);
	json_object_set_new(enc, "use", json_string("enc"));
	json_t *ops = jwk_of(rsa_b, "ops", NULL);
	json_object_set_new(ops, "key_ops", json_pack("[s]", "encrypt"));
	json_t *ps = jwk_of(rsa_b, "ps", "PS256");
	json_t *okp = json_pack("{s:s, s:s, s:s}", "kty", "OKP", "crv", "Ed25519", "x",
	                        "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo");
	json_t *p384 =
	    json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-384", "x", "AA", "y", "AA");
	json_t *sig = jwk_of(rsa_a, "sig", NULL);
	json_object_set_new(sig, "use", json_string("sig"));
	json_object_set_new(sig, "key_ops", json_pack("[s,s]", "sign", "verify"));
	json_t *jwks = json_pack("{s:[o,o,o,o,o,o]}", "keys", enc, ops, ps, okp, p384, sig);
	write_json(jwks, tpath("mixed.jwks"));
	ks = must_load(tpath("mixed.jwks"));
	assert_int_equal(tjwt_keyset_size(ks), 1);
	t = make_token("RS256", "enc", rsa_b, NULL, 0, CLAIMS); /* the skipped key's kid */
	expect_status(ks, NULL, t, NOW, TJWT_ERR_NO_KEY);
	free(t);
	tjwt_keyset_unref(ks);
	/* Without the one signing key nothing usable remains. */
	json_array_remove(json_object_get(jwks, "keys"), 5);
	write_json(jwks, tpath("nosig.jwks"));
	json_decref(jwks);
	load_fails(tpath("nosig.jwks"), "no usable signing key");

	/* Broken keys that claim to be ours are errors. */
	struct {
		const char *json;
		const char *err;
	} bad[] = {
	    {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\"}]}", "\"n\" and \"e\""},
	    {"{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}", "too small"},
	    {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AAAA\",\"y\":\"AAAA\"}]}",
	     "32-byte"},
	    {"{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\","
	     "\"x\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"y\":"
	     "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}]}",
	     "P-256"},
	    {"{\"keys\":[{\"kty\":\"oct\",\"k\":\"c2hvcnQ\"}]}", "too short"},
	    {"{\"keys\":[{\"kty\":\"oct\"}]}", "\"k\""},
	    {"{\"keys\":[{\"kty\":\"RSA\",\"alg\":\"HS256\",\"n\":\"AQAB\",\"e\":\"AQAB\"}]}",
	     "declares alg HS256"},
	    {"{\"keys\":[{\"kty\":\"oct\",\"alg\":\"RS256\",\"k\":\"AAAA\"}]}",
	     "declares alg RS256"},
	    {"{\"keys\":[{\"n\":\"AQAB\"}]}", "no \"kty\""},
	    {"{\"keys\":[{\"kty\":\"RSA\",\"kid\":5}]}", "\"kid\" is not a string"},
	    {"{\"keys\":{}}", "not an array"},
	    {"{\"keys\":[]}", "no usable signing key"},
	    {"{\"foo\":1}", "neither a JWK Set"},
	    {"{\"keys\":[1]}", "not a JSON object"},
	    {"{\"keys\":[], \"keys\":[]}", "invalid JSON"},
	    {"{\"keys\":[", "invalid JSON"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		write_file(tpath("bad.jwks"), bad[i].json, strlen(bad[i].json));
		load_fails(tpath("bad.jwks"), bad[i].err);
	}
	assert_null(tjwt_keyset_parse("{}", 2, NULL, err, sizeof err));
}

static void pem_files(void **state)
{
	(void)state;

	/* A certificate: its key verifies. */
	write_cert_pem(rsa_a, tpath("rsa.crt"));
	tjwt_keyset *ks = must_load(tpath("rsa.crt"));
	char *t = make_token("RS256", NULL, rsa_a, NULL, 0, CLAIMS);
	expect_status(ks, NULL, t, NOW, TJWT_OK);
	tjwt_keyset_unref(ks);

	/* Several blocks in one file (rotation): both keys verify. */
	size_t l1, l2;
	write_pubkey_pem(rsa_b, tpath("b.pem"));
	write_cert_pem(ec_a, tpath("ec.crt"));
	char *c1 = read_all(tpath("b.pem"), &l1), *c2 = read_all(tpath("ec.crt"), &l2);
	char *both = malloc(l1 + l2 + 1);
	sprintf(both, "%s%s", c1, c2);
	write_file(tpath("both.pem"), both, l1 + l2);
	ks = must_load(tpath("both.pem"));
	assert_int_equal(tjwt_keyset_size(ks), 2);
	char *tb = make_token("RS256", "x", rsa_b, NULL, 0, CLAIMS),
	     *te = make_token("ES256", NULL, ec_a, NULL, 0, CLAIMS);
	expect_status(ks, NULL, tb, NOW, TJWT_OK);
	expect_status(ks, NULL, te, NOW, TJWT_OK);
	expect_status(ks, NULL, t, NOW, TJWT_ERR_SIGNATURE); /* rsa_a is not in this file */
	tjwt_keyset_unref(ks);
	free(tb);
	free(te);
	free(c1);
	free(c2);
	free(both);
	free(t);

	/* PKCS#1 "RSA PUBLIC KEY". */
	{
		FILE *f = fopen(tpath("pkcs1.pem"), "w");
		assert_non_null(f);
		unsigned char *der = NULL;
		int n = i2d_PublicKey(rsa_a, &der);
		assert_true(n > 0);
		assert_true(PEM_write(f, "RSA PUBLIC KEY", "", der, n) > 0);
		fclose(f);
		OPENSSL_free(der);
		ks = must_load(tpath("pkcs1.pem"));
		t = make_token("RS256", NULL, rsa_a, NULL, 0, CLAIMS);
		expect_status(ks, NULL, t, NOW, TJWT_OK);
		free(t);
		tjwt_keyset_unref(ks);
	}

	/* Refused: private keys, small RSA, other curves, garbage. */
	write_privkey_pem(rsa_a, tpath("priv.pem"));
	load_fails(tpath("priv.pem"), "private key");
	EVP_PKEY *small = gen_rsa(1024);
	write_pubkey_pem(small, tpath("small.pem"));
	load_fails(tpath("small.pem"), "1024 bits is too small");
	EVP_PKEY_free(small);
	EVP_PKEY *p384 = gen_ec("P-384");
	write_pubkey_pem(p384, tpath("p384.pem"));
	load_fails(tpath("p384.pem"), "secp384r1");
	EVP_PKEY_free(p384);
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	write_pubkey_pem(ed, tpath("ed.pem"));
	load_fails(tpath("ed.pem"), "unsupported key type");
	EVP_PKEY_free(ed);
	const char *garbage =
	    "-----BEGIN PUBLIC KEY-----\nnot base64 !!!\n-----END PUBLIC KEY-----\n";
	write_file(tpath("garbage.pem"), garbage, strlen(garbage));
	load_fails(tpath("garbage.pem"), "PEM block #1");
	const char *notkey = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
	write_file(tpath("notkey.pem"), notkey, strlen(notkey));
	load_fails(tpath("notkey.pem"), "not a valid key");
	const char *other = "-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n";
	write_file(tpath("crl.pem"), other, strlen(other));
	load_fails(tpath("crl.pem"), "unsupported PEM block type");
	load_fails(tpath("does-not-exist"), "No such file");
}

static void secret_files(void **state)
{
	char err[512];
	tjwt_result res;
	(void)state;

	/* One trailing newline (or CRLF) is not part of the secret. */
	char buf[128];
	snprintf(buf, sizeof buf, "%s\r\n", secret_a);
	write_file(tpath("s1"), buf, strlen(buf));
	tjwt_keyset *ks = must_load(tpath("s1"));
	char *t = make_token("HS256", NULL, NULL, secret_a, strlen(secret_a), CLAIMS);
	expect_status(ks, NULL, t, NOW, TJWT_OK);
	char *tb = make_token("HS256", NULL, NULL, secret_b, strlen(secret_b), CLAIMS);
	expect_status(ks, NULL, tb, NOW, TJWT_ERR_SIGNATURE);
	tjwt_keyset_unref(ks);

	/* From memory, with a kid: a token naming another kid finds no key. */
	ks = tjwt_keyset_from_secret(secret_a, strlen(secret_a), "k1", err, sizeof err);
	assert_non_null(ks);
	char *tk = make_token("HS256", "k2", NULL, secret_a, strlen(secret_a), CLAIMS);
	assert_int_equal(verify_tok(ks, NULL, tk, NOW, &res), TJWT_ERR_NO_KEY);
	expect_status(ks, NULL, t, NOW, TJWT_OK); /* no kid in the token: tried */
	tjwt_keyset_unref(ks);

	/* Short secrets are refused. */
	write_file(tpath("short"), "0123456789abcdef0123456789abcde\n", 32);
	load_fails(tpath("short"), "31 bytes is too short");
	/* A secret starting with '{' only through the explicit loader. */
	const char *brace = "{not-json-but-a-secret-of-enough-length}";
	write_file(tpath("brace"), brace, strlen(brace));
	load_fails(tpath("brace"), "invalid JSON");
	ks = tjwt_keyset_load_secret(tpath("brace"), err, sizeof err);
	assert_non_null(ks);
	char *tbr = make_token("HS256", NULL, NULL, brace, strlen(brace), CLAIMS);
	expect_status(ks, NULL, tbr, NOW, TJWT_OK);
	tjwt_keyset_unref(ks);
	/* Empty keyset pointer: no keys. */
	assert_int_equal(verify_tok(NULL, NULL, t, NOW, &res), TJWT_ERR_NO_KEY);
	assert_string_equal(res.message, "no verification keys are loaded");
	free(t);
	free(tb);
	free(tk);
	free(tbr);
}

static void slot_reload(void **state)
{
	(void)state;
	write_pubkey_pem(rsa_a, tpath("cur.pem"));
	tjwt_keyslot *slot = tjwt_keyslot_new(must_load(tpath("cur.pem")));
	char *ta = make_token("RS256", NULL, rsa_a, NULL, 0, CLAIMS),
	     *tb = make_token("RS256", NULL, rsa_b, NULL, 0, CLAIMS);

	tjwt_keyset *held = tjwt_keyslot_get(slot);
	expect_status(held, NULL, ta, NOW, TJWT_OK);
	/* Reload to key B: new readers see B, the held reference still verifies A. */
	write_pubkey_pem(rsa_b, tpath("cur.pem"));
	tjwt_keyslot_set(slot, must_load(tpath("cur.pem")));
	tjwt_keyset *now = tjwt_keyslot_get(slot);
	expect_status(now, NULL, tb, NOW, TJWT_OK);
	expect_status(now, NULL, ta, NOW, TJWT_ERR_SIGNATURE);
	expect_status(held, NULL, ta, NOW, TJWT_OK);
	tjwt_keyset_unref(held);
	tjwt_keyset_unref(now);
	tjwt_keyslot_set(slot, NULL);
	assert_null(tjwt_keyslot_get(slot));
	tjwt_keyslot_free(slot);
	free(ta);
	free(tb);
}

struct worker {
	tjwt_keyslot *slot;
	char *tokens[3];
	int ok, bad;
};

static void *worker_run(void *arg)
{
	struct worker *w = arg;
	for (int i = 0; i < 150; i++) {
		tjwt_keyset *ks = tjwt_keyslot_get(w->slot);
		tjwt_result res;
		for (int j = 0; j < 3; j++) {
			if (verify_tok(ks, NULL, w->tokens[j], NOW, &res) == TJWT_OK &&
			    !strcmp(tjwt_subject(res.claims), "alice"))
				w->ok++;
			else
				w->bad++;
			tjwt_result_clear(&res);
		}
		tjwt_keyset_unref(ks);
	}
	return NULL;
}

/* Concurrent verification with reloads underneath (run under ASan in make test-san). */
static void threads_share_keys(void **state)
{
	(void)state;
	json_t *jwks = json_pack("{s:[o,o,o]}", "keys", jwk_of(rsa_a, "r", NULL),
	                         jwk_of(ec_a, "e", NULL), jwk_oct(secret_a, strlen(secret_a), "s"));
	write_json(jwks, tpath("threads.jwks"));
	json_decref(jwks);
	tjwt_keyslot *slot = tjwt_keyslot_new(must_load(tpath("threads.jwks")));
	struct worker w[4];
	pthread_t th[4];
	char *toks[3] = {make_token("RS256", "r", rsa_a, NULL, 0, CLAIMS),
	                 make_token("ES256", "e", ec_a, NULL, 0, CLAIMS),
	                 make_token("HS256", "s", NULL, secret_a, strlen(secret_a), CLAIMS)};

	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){.slot = slot, .tokens = {toks[0], toks[1], toks[2]}};
		assert_int_equal(pthread_create(&th[i], NULL, worker_run, &w[i]), 0);
	}
	for (int i = 0; i < 20; i++)
		tjwt_keyslot_set(slot, must_load(tpath("threads.jwks")));
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].ok, 450);
		assert_int_equal(w[i].bad, 0);
	}
	tjwt_keyslot_free(slot);
	for (int i = 0; i < 3; i++)
		free(toks[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(jwks_kid_selection), cmocka_unit_test(jwks_single_jwk_and_skips),
	    cmocka_unit_test(pem_files),          cmocka_unit_test(secret_files),
	    cmocka_unit_test(slot_reload),        cmocka_unit_test(threads_share_keys),
	};
	return cmocka_run_group_tests_name("jwt keys", tests, setup, teardown);
}
