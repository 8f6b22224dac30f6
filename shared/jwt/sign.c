/*
 * Token signing, for tributary-jwt, the tests and the benchmarks. The
 * servers only verify; keeping this next to the verifier ensures both agree
 * on encodings (notably ES256's r||s).
 */
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "jwt_internal.h"

/* DER ECDSA signature -> fixed-width r||s. */
static int ecdsa_der_to_jose(const unsigned char *der, size_t derlen, unsigned char out[64])
{
	const unsigned char *p = der;
	ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)derlen);
	const BIGNUM *r, *s;
	int rc = -1;

	if (!es)
		return -1;
	ECDSA_SIG_get0(es, &r, &s);
	if (BN_bn2binpad(r, out, 32) == 32 && BN_bn2binpad(s, out + 32, 32) == 32)
		rc = 0;
	ECDSA_SIG_free(es);
	return rc;
}

static unsigned char *sign_input(tjwt_alg alg, EVP_PKEY *pkey, const void *secret,
                                 size_t secret_len, const char *input, size_t *siglen, char *err,
                                 size_t errlen)
{
	unsigned char *sig = NULL;
	EVP_MD_CTX *mctx = NULL;
	size_t len = 0;

	if (alg == TJWT_HS256) {
		EVP_MAC_CTX *ctx = tjwt__hmac_new(secret, secret_len);
		sig = malloc(32);
		if (!ctx || !sig ||
		    EVP_MAC_update(ctx, (const unsigned char *)input, strlen(input)) != 1 ||
		    EVP_MAC_final(ctx, sig, &len, 32) != 1 || len != 32) {
			tjwt__err(err, errlen, "HMAC-SHA256 failed");
			free(sig);
			sig = NULL;
		}
		EVP_MAC_CTX_free(ctx);
		*siglen = len;
		return sig;
	}
	if (!pkey || !EVP_PKEY_is_a(pkey, alg == TJWT_RS256 ? "RSA" : "EC")) {
		tjwt__err(err, errlen, "%s needs %s private key", tjwt_alg_name(alg),
		          alg == TJWT_RS256 ? "an RSA" : "an EC P-256");
		return NULL;
	}
	mctx = EVP_MD_CTX_new();
	if (!mctx || EVP_DigestSignInit_ex(mctx, NULL, "SHA256", NULL, NULL, pkey, NULL) != 1 ||
	    EVP_DigestSign(mctx, NULL, &len, (const unsigned char *)input, strlen(input)) != 1 ||
	    !(sig = malloc(len)) ||
	    EVP_DigestSign(mctx, sig, &len, (const unsigned char *)input, strlen(input)) != 1) {
		tjwt__err(err, errlen, "%s signing failed (is this a private key?)",
		          tjwt_alg_name(alg));
		free(sig);
		sig = NULL;
		goto cleanup;
	}
	if (alg == TJWT_ES256) {
		unsigned char *jose = malloc(64);
		if (!jose || ecdsa_der_to_jose(sig, len, jose) < 0) {
			tjwt__err(err, errlen,
			          "ES256: cannot convert the signature (not a P-256 key?)");
			free(jose);
			free(sig);
			sig = NULL;
			goto cleanup;
		}
		free(sig);
		sig = jose;
		len = 64;
	}
	*siglen = len;
cleanup:
	EVP_MD_CTX_free(mctx);
	ERR_clear_error();
	return sig;
}

char *tjwt_sign(tjwt_alg alg, void *key, const void *secret, size_t secret_len, const char *kid,
                const json_t *claims, char *err, size_t errlen)
{
	json_t *hdr = NULL;
	char *hjson = NULL, *cjson = NULL, *h64 = NULL, *c64 = NULL, *s64 = NULL, *input = NULL,
	     *token = NULL;
	unsigned char *sig = NULL;
	size_t siglen = 0, inlen;

	if (!tjwt_alg_from_name(tjwt_alg_name(alg))) {
		tjwt__err(err, errlen, "unsupported algorithm");
		return NULL;
	}
	if (!json_is_object(claims)) {
		tjwt__err(err, errlen, "claims must be a JSON object");
		return NULL;
	}
	hdr = json_pack("{s:s, s:s}", "alg", tjwt_alg_name(alg), "typ", "JWT");
	if (!hdr || (kid && json_object_set_new(hdr, "kid", json_string(kid))))
		goto oom;
	hjson = json_dumps(hdr, JSON_COMPACT);
	cjson = json_dumps(claims, JSON_COMPACT);
	if (!hjson || !cjson || !(h64 = tjwt_b64url_encode(hjson, strlen(hjson))) ||
	    !(c64 = tjwt_b64url_encode(cjson, strlen(cjson))))
		goto oom;
	inlen = strlen(h64) + 1 + strlen(c64);
	if (!(input = malloc(inlen + 1)))
		goto oom;
	strcpy(input, h64);
	strcat(input, ".");
	strcat(input, c64);
	if (!(sig = sign_input(alg, key, secret, secret_len, input, &siglen, err, errlen)))
		goto cleanup;
	if (!(s64 = tjwt_b64url_encode(sig, siglen)) ||
	    !(token = malloc(inlen + 1 + strlen(s64) + 1)))
		goto oom;
	strcpy(token, input);
	strcat(token, ".");
	strcat(token, s64);
	goto cleanup;
oom:
	tjwt__err(err, errlen, "out of memory");
cleanup:
	json_decref(hdr);
	free(hjson);
	free(cjson);
	free(h64);
	free(c64);
	free(s64);
	free(input);
	free(sig);
	return token;
}
