/*
 * Helpers for the JWT unit tests: keys, files and tokens made with OpenSSL
 * directly (not with tjwt_sign), so that the verifier is checked against an
 * independent signer, and so that tests can forge any header or signature.
 */
#ifndef TEST_JWT_H
#define TEST_JWT_H

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "tributary/jwt.h"

#define NOW ((time_t)1700000000) /* 2023-11-14T22:13:20Z */

static __attribute__((unused)) char tdir[64];

static __attribute__((unused)) void tdir_make(void)
{
	strcpy(tdir, "/tmp/test_jwt.XXXXXX");
	assert_non_null(mkdtemp(tdir));
}

static __attribute__((unused)) void tdir_remove(void)
{
	DIR *d = opendir(tdir);
	struct dirent *e;
	char p[512];

	if (!d)
		return;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(p, sizeof p, "%s/%s", tdir, e->d_name);
			unlink(p);
		}
	closedir(d);
	rmdir(tdir);
}

static __attribute__((unused)) const char *tpath(const char *name)
{
	static char p[8][512];
	static int i;

	i = (i + 1) % 8;
	snprintf(p[i], sizeof p[i], "%s/%s", tdir, name);
	return p[i];
}

static __attribute__((unused)) void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static __attribute__((unused)) char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = malloc(1 << 20);
	assert_non_null(f);
	assert_non_null(buf);
	*len = fread(buf, 1, (1 << 20) - 1, f);
	buf[*len] = '\0';
	fclose(f);
	return buf;
}

/* base64url through OpenSSL's standard base64, translated: independent of tjwt_b64url_encode. */
static __attribute__((unused)) char *b64u(const void *data, size_t len)
{
	char *out = malloc(len / 3 * 4 + 8);
	int n;

	assert_non_null(out);
	n = EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	while (n > 0 && out[n - 1] == '=')
		n--;
	out[n] = '\0';
	for (char *p = out; *p; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	return out;
}

static __attribute__((unused)) EVP_PKEY *gen_rsa(int bits)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	assert_non_null(k);
	return k;
}

static __attribute__((unused)) EVP_PKEY *gen_ec(const char *curve)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve);
	assert_non_null(k);
	return k;
}

static __attribute__((unused)) void write_pubkey_pem(EVP_PKEY *k, const char *path)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PUBKEY(f, k), 1);
	fclose(f);
}

static __attribute__((unused)) void write_privkey_pem(EVP_PKEY *k, const char *path)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
}

static __attribute__((unused)) void write_cert_pem(EVP_PKEY *k, const char *path)
{
	X509 *x = X509_new();
	FILE *f;

	assert_non_null(x);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
	                           (const unsigned char *)"test", -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(x));
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, x), 1);
	fclose(f);
	X509_free(x);
}

static __attribute__((unused)) char *bn_b64u(EVP_PKEY *k, const char *param, int pad)
{
	BIGNUM *bn = NULL;
	unsigned char buf[1024];
	int n;

	assert_int_equal(EVP_PKEY_get_bn_param(k, param, &bn), 1);
	n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
	assert_true(n > 0);
	BN_free(bn);
	return b64u(buf, (size_t)n);
}

/* The public JWK of an RSA or EC key (kid/alg optional). */
static __attribute__((unused)) json_t *jwk_of(EVP_PKEY *k, const char *kid, const char *alg)
{
	json_t *j;

	if (EVP_PKEY_is_a(k, "RSA")) {
		char *n = bn_b64u(k, OSSL_PKEY_PARAM_RSA_N, 0),
		     *e = bn_b64u(k, OSSL_PKEY_PARAM_RSA_E, 0);
		j = json_pack("{s:s, s:s, s:s}", "kty", "RSA", "n", n, "e", e);
		free(n);
		free(e);
	} else {
		char *x = bn_b64u(k, OSSL_PKEY_PARAM_EC_PUB_X, 32),
		     *y = bn_b64u(k, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
		j = json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "x", x, "y", y);
		free(x);
		free(y);
	}
	assert_non_null(j);
	if (kid)
		json_object_set_new(j, "kid", json_string(kid));
	if (alg)
		json_object_set_new(j, "alg", json_string(alg));
	return j;
}

static __attribute__((unused)) json_t *jwk_oct(const void *secret, size_t len, const char *kid)
{
	char *k = b64u(secret, len);
	json_t *j = json_pack("{s:s, s:s}", "kty", "oct", "k", k);
	free(k);
	if (kid)
		json_object_set_new(j, "kid", json_string(kid));
	return j;
}

static __attribute__((unused)) void write_json(json_t *doc, const char *path)
{
	assert_int_equal(json_dump_file(doc, path, JSON_INDENT(2)), 0);
}

/* Signs `input` as alg; returns the base64url signature. ES256 in JOSE r||s. */
static __attribute__((unused)) char *sign_raw(const char *alg, EVP_PKEY *k, const void *secret,
                                              size_t secret_len, const char *input)
{
	unsigned char sig[1024];
	size_t len = sizeof sig;

	if (!strcmp(alg, "HS256")) {
		unsigned int mlen = 0;
		assert_non_null(HMAC(EVP_sha256(), secret, (int)secret_len,
		                     (const unsigned char *)input, strlen(input), sig, &mlen));
		return b64u(sig, mlen);
	}
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, k), 1);
	assert_int_equal(EVP_DigestSign(m, sig, &len, (const unsigned char *)input, strlen(input)),
	                 1);
	EVP_MD_CTX_free(m);
	if (!strcmp(alg, "ES256")) {
		const unsigned char *p = sig;
		ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
		unsigned char rs[64];
		assert_non_null(es);
		assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), rs, 32), 32);
		assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), rs + 32, 32), 32);
		ECDSA_SIG_free(es);
		return b64u(rs, 64);
	}
	return b64u(sig, len);
}

/* header and payload are JSON text, used verbatim; the signature uses `salg`. */
static __attribute__((unused)) char *make_token_as(const char *salg, const char *header,
                                                   const char *payload, EVP_PKEY *k,
                                                   const void *secret, size_t secret_len)
{
	char *h = b64u(header, strlen(header)), *p = b64u(payload, strlen(payload));
	size_t n = strlen(h) + strlen(p) + 2;
	char *input = malloc(n), *sig, *tok;

	snprintf(input, n, "%s.%s", h, p);
	sig = salg ? sign_raw(salg, k, secret, secret_len, input) : strdup("");
	tok = malloc(n + strlen(sig) + 1);
	sprintf(tok, "%s.%s", input, sig);
	free(h);
	free(p);
	free(input);
	free(sig);
	return tok;
}

/* A token for alg with an optional kid and the claims in printf form. */
static __attribute__((unused)) char *make_token(const char *alg, const char *kid, EVP_PKEY *k,
                                                const void *secret, size_t secret_len,
                                                const char *claims_fmt, ...)
    __attribute__((format(printf, 6, 7)));
static __attribute__((unused)) char *make_token(const char *alg, const char *kid, EVP_PKEY *k,
                                                const void *secret, size_t secret_len,
                                                const char *claims_fmt, ...)
{
	char header[256], payload[4096];
	va_list ap;

	if (kid)
		snprintf(header, sizeof header, "{\"alg\":\"%s\",\"typ\":\"JWT\",\"kid\":\"%s\"}",
		         alg, kid);
	else
		snprintf(header, sizeof header, "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
	va_start(ap, claims_fmt);
	vsnprintf(payload, sizeof payload, claims_fmt, ap);
	va_end(ap);
	return make_token_as(alg, header, payload, k, secret, secret_len);
}

static __attribute__((unused)) tjwt_status verify_tok(const tjwt_keyset *ks, const tjwt_policy *pol,
                                                      const char *tok, time_t now, tjwt_result *res)
{
	return tjwt_verify(ks, pol, tok, strlen(tok), now, res);
}

/* Verifies and expects `want`; on failure prints the message for diagnosis. */
#define expect_status(ks, pol, tok, now, want)                                                     \
	do {                                                                                       \
		tjwt_result r_;                                                                    \
		tjwt_status s_ = verify_tok((ks), (pol), (tok), (now), &r_);                       \
		if (s_ != (want))                                                                  \
			print_error("verify: got %s (%s), want %s\n", tjwt_status_name(s_),        \
			            r_.message, tjwt_status_name(want));                           \
		assert_int_equal(s_, (want));                                                      \
		assert_true((s_ == TJWT_OK) == (r_.claims != NULL));                               \
		tjwt_result_clear(&r_);                                                            \
	} while (0)

#endif
