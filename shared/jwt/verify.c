/*
 * Compact JWS verification and JWT claim checks (RFC 7515, 7519, 8725).
 *
 * Order matters: the header is checked and a key chosen by the key's own
 * type before any cryptography, the signature is verified before any claim
 * is looked at, and every failure carries a message that is safe to log.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "jwt_internal.h"

#define SHOW 64 /* bytes of an untrusted value quoted in a message */

static tjwt_status fail(tjwt_result *res, tjwt_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static tjwt_status fail(tjwt_result *res, tjwt_status st, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->message, sizeof res->message, fmt, ap);
	va_end(ap);
	res->status = st;
	json_decref(res->claims);
	res->claims = NULL;
	return st;
}

static void quote(char *out, size_t outlen, const char *s)
{
	tjwt__sanitize(out, outlen, s, strlen(s), SHOW);
}

static void fmt_time(char *buf, size_t len, double t)
{
	struct tm tm;
	time_t tt;

	/* Up to the year 9999; beyond, the number itself is more useful. */
	if (t >= 0 && t < 253402300800.0) {
		tt = (time_t)t;
		if (gmtime_r(&tt, &tm) && strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm))
			return;
	}
	snprintf(buf, len, "%.0f", t);
}

/* Decodes a base64url segment into a fresh buffer. */
static unsigned char *segment(const char *s, size_t len, size_t *outlen)
{
	unsigned char *buf = malloc(tjwt_b64url_decoded_max(len));
	long n;

	if (!buf)
		return NULL;
	n = tjwt_b64url_decode(s, len, buf);
	if (n < 0) {
		free(buf);
		return NULL;
	}
	*outlen = (size_t)n;
	return buf;
}

static json_t *json_segment(const char *s, size_t len, const char *what, tjwt_result *res)
{
	size_t n = 0;
	unsigned char *buf = segment(s, len, &n);
	json_error_t jerr;
	json_t *doc;

	if (!buf) {
		fail(res, TJWT_ERR_MALFORMED, "%s is not valid base64url", what);
		return NULL;
	}
	/* Duplicate names are refused: two parsers must never read two different tokens. */
	doc = json_loadb((const char *)buf, n, JSON_REJECT_DUPLICATES, &jerr);
	free(buf);
	if (!doc) {
		fail(res, TJWT_ERR_MALFORMED, "%s is not valid JSON: %s", what, jerr.text);
		return NULL;
	}
	if (!json_is_object(doc)) {
		json_decref(doc);
		fail(res, TJWT_ERR_MALFORMED, "%s is not a JSON object", what);
		return NULL;
	}
	return doc;
}

/* ---- signatures ------------------------------------------------------------ */

static int digest_verify(const tjwt_keyset *ks, EVP_PKEY *pkey, const unsigned char *sig,
                         size_t siglen, const char *input, size_t inlen)
{
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	int rc = -1;

	if (!mctx)
		return -1;
	if (EVP_DigestVerifyInit(mctx, NULL, ks->sha256, NULL, pkey) == 1)
		rc = EVP_DigestVerify(mctx, sig, siglen, (const unsigned char *)input, inlen) == 1
		         ? 1
		         : 0;
	EVP_MD_CTX_free(mctx);
	return rc;
}

/* JOSE carries ECDSA as r||s (RFC 7518 §3.4); OpenSSL wants DER. */
static int es256_verify(const tjwt_keyset *ks, EVP_PKEY *pkey, const unsigned char *sig,
                        size_t siglen, const char *input, size_t inlen)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *der = NULL;
	int derlen, rc = -1;

	if (siglen != 64)
		return 0;
	r = BN_bin2bn(sig, 32, NULL);
	s = BN_bin2bn(sig + 32, 32, NULL);
	es = ECDSA_SIG_new();
	if (!r || !s || !es || ECDSA_SIG_set0(es, r, s) != 1)
		goto cleanup;
	r = s = NULL; /* owned by es now */
	derlen = i2d_ECDSA_SIG(es, &der);
	if (derlen <= 0)
		goto cleanup;
	rc = digest_verify(ks, pkey, der, (size_t)derlen, input, inlen);
cleanup:
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	OPENSSL_free(der);
	return rc;
}

static int hs256_verify(const tjwt_key *k, const unsigned char *sig, size_t siglen,
                        const char *input, size_t inlen)
{
	EVP_MAC_CTX *ctx;
	unsigned char mac[32];
	size_t maclen = 0;
	int rc = -1;

	if (siglen != sizeof mac)
		return 0;
	/* The keyed template is shared and read-only; each verification works on a copy. */
	ctx = EVP_MAC_CTX_dup(k->hmac);
	if (!ctx)
		return -1;
	if (EVP_MAC_update(ctx, (const unsigned char *)input, inlen) == 1 &&
	    EVP_MAC_final(ctx, mac, &maclen, sizeof mac) == 1 && maclen == sizeof mac)
		rc = CRYPTO_memcmp(mac, sig, sizeof mac) == 0;
	EVP_MAC_CTX_free(ctx);
	OPENSSL_cleanse(mac, sizeof mac);
	return rc;
}

static int verify_with(const tjwt_keyset *ks, const tjwt_key *k, tjwt_alg alg,
                       const unsigned char *sig, size_t siglen, const char *input, size_t inlen)
{
	int rc;

	switch (alg) {
	case TJWT_RS256:
		/* PKCS#1 v1.5 signatures are exactly the modulus size. */
		if (siglen != (size_t)EVP_PKEY_get_size(k->pkey))
			return 0;
		rc = digest_verify(ks, k->pkey, sig, siglen, input, inlen);
		break;
	case TJWT_ES256:
		rc = es256_verify(ks, k->pkey, sig, siglen, input, inlen);
		break;
	case TJWT_HS256:
		rc = hs256_verify(k, sig, siglen, input, inlen);
		break;
	default:
		rc = -1;
	}
	ERR_clear_error(); /* a failed verify leaves entries in this thread's queue */
	return rc;
}

static bool kid_matches(const tjwt_key *k, const char *kid)
{
	/* Keys without a kid (PEM files, bare secrets) stand for any kid. */
	return !k->kid || !kid || !strcmp(k->kid, kid);
}

static tjwt_status check_signature(const tjwt_keyset *ks, tjwt_alg alg, const char *kid,
                                   const char *sig64, size_t sig64len, const char *input,
                                   size_t inlen, tjwt_result *res)
{
	size_t candidates = 0, usable = 0, siglen = 0;
	unsigned kty_seen = 0;
	tjwt_kty kty_last = 0;
	unsigned char *sig;
	char kidq[SHOW * 2] = "";
	tjwt_status st;

	if (kid)
		quote(kidq, sizeof kidq, kid);
	for (size_t i = 0; ks && i < ks->count; i++) {
		const tjwt_key *k = &ks->keys[i];
		if (!kid_matches(k, kid))
			continue;
		candidates++;
		kty_seen |= 1u << k->kty;
		kty_last = k->kty;
		usable += (k->algs & alg) != 0;
	}
	if (!candidates) {
		if (!ks || !ks->count)
			return fail(res, TJWT_ERR_NO_KEY, "no verification keys are loaded");
		return fail(res, TJWT_ERR_NO_KEY, "no key with kid '%s'", kidq);
	}
	if (!usable) {
		if (kty_seen == 1u << kty_last)
			return fail(res, TJWT_ERR_ALG_KEY_MISMATCH,
			            "%s not allowed for an %s key%s%s%s", tjwt_alg_name(alg),
			            tjwt__kty_name(kty_last), kid ? " (kid '" : "", kid ? kidq : "",
			            kid ? "')" : "");
		return fail(res, TJWT_ERR_ALG_KEY_MISMATCH,
		            "no key for %s%s%s%s: only keys of other types", tjwt_alg_name(alg),
		            kid ? " with kid '" : "", kid ? kidq : "", kid ? "'" : "");
	}
	if (!sig64len)
		return fail(res, TJWT_ERR_MALFORMED, "signature is empty");
	sig = segment(sig64, sig64len, &siglen);
	if (!sig)
		return fail(res, TJWT_ERR_MALFORMED, "signature is not valid base64url");
	st = TJWT_ERR_SIGNATURE;
	for (size_t i = 0; i < ks->count && st != TJWT_OK; i++) {
		const tjwt_key *k = &ks->keys[i];
		int rc;
		if (!kid_matches(k, kid) || !(k->algs & alg))
			continue;
		rc = verify_with(ks, k, alg, sig, siglen, input, inlen);
		if (rc > 0)
			st = TJWT_OK;
		else if (rc < 0)
			st = TJWT_ERR_INTERNAL;
	}
	free(sig);
	if (st == TJWT_ERR_INTERNAL)
		return fail(res, st, "%s verification failed inside OpenSSL", tjwt_alg_name(alg));
	if (st != TJWT_OK) {
		if (usable > 1)
			return fail(res, st, "signature verification failed (%s, %zu keys tried)",
			            tjwt_alg_name(alg), usable);
		return fail(res, st, "signature verification failed (%s%s%s%s)", tjwt_alg_name(alg),
		            kid ? ", kid '" : "", kid ? kidq : "", kid ? "'" : "");
	}
	return TJWT_OK;
}

/* ---- header ------------------------------------------------------------------ */

static tjwt_status check_header(json_t *hdr, const tjwt_policy *pol, tjwt_alg *algp,
                                const char **kidp, tjwt_result *res)
{
	json_t *algv = json_object_get(hdr, "alg"), *crit = json_object_get(hdr, "crit"), *kidv,
	       *b64;
	unsigned allowed = pol->algs ? pol->algs : TJWT_ALGS_ALL;
	const char *name;
	char q[SHOW * 2];
	tjwt_alg alg;

	if (!json_is_string(algv))
		return fail(res, TJWT_ERR_MALFORMED, "header has no \"alg\" string");
	name = json_string_value(algv);
	/* Any spelling of "none": some libraries were fooled by "None"/"NONE". */
	if (!strcasecmp(name, "none"))
		return fail(res, TJWT_ERR_ALG_NONE, "algorithm none is not allowed");
	alg = tjwt_alg_from_name(name);
	if (!alg) {
		quote(q, sizeof q, name);
		return fail(res, TJWT_ERR_ALG_UNSUPPORTED,
		            "algorithm '%s' is not supported (RS256, ES256, HS256)", q);
	}
	res->alg = alg;
	if (!(alg & allowed)) {
		char list[32] = "";
		for (unsigned a = TJWT_RS256; a <= TJWT_HS256; a <<= 1)
			if (allowed & a) {
				if (list[0])
					strcat(list, ", ");
				strcat(list, tjwt_alg_name(a));
			}
		return fail(res, TJWT_ERR_ALG_NOT_ALLOWED,
		            "algorithm %s is not allowed (allowed: %s)", name, list);
	}
	if (crit) {
		json_t *v;
		size_t i;
		if (!json_is_array(crit) || !json_array_size(crit))
			return fail(res, TJWT_ERR_MALFORMED,
			            "\"crit\" must be a non-empty array of names");
		json_array_foreach(crit, i, v)
		{
			if (!json_is_string(v))
				return fail(res, TJWT_ERR_MALFORMED,
				            "\"crit\" must be a non-empty array of names");
		}
		/* No extension is implemented, so every critical one is unknown. */
		quote(q, sizeof q, json_string_value(json_array_get(crit, 0)));
		return fail(res, TJWT_ERR_CRIT, "critical header parameter '%s' is not supported",
		            q);
	}
	/* RFC 7797 unencoded payloads change what is signed; only valid with crit. */
	b64 = json_object_get(hdr, "b64");
	if (b64 && !json_is_true(b64))
		return fail(res, TJWT_ERR_MALFORMED, "\"b64\": false is not supported");
	kidv = json_object_get(hdr, "kid");
	if (kidv && !json_is_string(kidv))
		return fail(res, TJWT_ERR_MALFORMED, "\"kid\" is not a string");
	*kidp = json_string_value(kidv);
	if (*kidp)
		tjwt__sanitize(res->kid, sizeof res->kid, *kidp, strlen(*kidp),
		               sizeof res->kid - 4);
	*algp = alg;
	return TJWT_OK;
}

/* ---- claims -------------------------------------------------------------------- */

/* 1 present (value in *out), 0 absent, -1 present but not a finite number. */
static int number_claim(json_t *claims, const char *name, double *out)
{
	json_t *v = json_object_get(claims, name);

	if (!v)
		return 0;
	if (!json_is_number(v) || !isfinite(json_number_value(v)))
		return -1;
	*out = json_number_value(v);
	return 1;
}

static bool list_empty(const char *const *list)
{
	return !list || !list[0];
}

static bool list_has(const char *const *list, const char *s)
{
	for (; list && *list; list++)
		if (!strcmp(*list, s))
			return true;
	return false;
}

static tjwt_status check_times(json_t *claims, const tjwt_policy *pol, time_t now, tjwt_result *res)
{
	double exp = 0, nbf = 0, iat = 0, t = (double)now,
	       leeway = (double)(pol->leeway > 0 ? pol->leeway : 0);
	char a[32], b[32];
	int has_exp = number_claim(claims, "exp", &exp),
	    has_nbf = number_claim(claims, "nbf", &nbf),
	    has_iat = number_claim(claims, "iat", &iat);

	if (has_exp < 0)
		return fail(res, TJWT_ERR_CLAIM_TYPE, "claim 'exp' is not a number");
	if (has_nbf < 0)
		return fail(res, TJWT_ERR_CLAIM_TYPE, "claim 'nbf' is not a number");
	if (has_iat < 0)
		return fail(res, TJWT_ERR_CLAIM_TYPE, "claim 'iat' is not a number");
	fmt_time(b, sizeof b, t);
	if (!has_exp && !pol->exp_optional)
		return fail(res, TJWT_ERR_CLAIM_MISSING, "token has no expiry ('exp' claim)");
	if (has_exp && t >= exp + leeway) {
		fmt_time(a, sizeof a, exp);
		return fail(res, TJWT_ERR_EXPIRED, "token expired at %s (now %s, leeway %lds)", a,
		            b, (long)leeway);
	}
	if (has_nbf && t + leeway < nbf) {
		fmt_time(a, sizeof a, nbf);
		return fail(res, TJWT_ERR_NOT_YET_VALID,
		            "token not valid before %s (now %s, leeway %lds)", a, b, (long)leeway);
	}
	if (has_iat && iat > t + leeway) {
		fmt_time(a, sizeof a, iat);
		return fail(res, TJWT_ERR_IAT,
		            "token issued in the future at %s (now %s, leeway %lds)", a, b,
		            (long)leeway);
	}
	if (pol->max_age > 0) {
		if (!has_iat)
			return fail(res, TJWT_ERR_CLAIM_MISSING,
			            "token has no 'iat' claim and a maximum age is set");
		if (t - iat > (double)pol->max_age + leeway) {
			fmt_time(a, sizeof a, iat);
			return fail(
			    res, TJWT_ERR_IAT,
			    "token issued at %s is older than the maximum age of %lds (now %s)", a,
			    pol->max_age, b);
		}
	}
	return TJWT_OK;
}

static tjwt_status check_issuer(json_t *claims, const tjwt_policy *pol, tjwt_result *res)
{
	json_t *iss = json_object_get(claims, "iss");
	char q[SHOW * 2];

	if (iss && !json_is_string(iss))
		return fail(res, TJWT_ERR_CLAIM_TYPE, "claim 'iss' is not a string");
	if (list_empty(pol->issuers))
		return TJWT_OK;
	if (!iss)
		return fail(res, TJWT_ERR_ISSUER, "token has no issuer ('iss' claim)");
	if (!list_has(pol->issuers, json_string_value(iss))) {
		tjwt__sanitize(q, sizeof q, json_string_value(iss), json_string_length(iss), SHOW);
		return fail(res, TJWT_ERR_ISSUER, "issuer '%s' not accepted", q);
	}
	return TJWT_OK;
}

static tjwt_status check_audience(json_t *claims, const tjwt_policy *pol, tjwt_result *res)
{
	json_t *aud = json_object_get(claims, "aud"), *v;
	char q[SHOW * 2];
	size_t i;

	if (aud && !json_is_string(aud)) {
		if (!json_is_array(aud))
			return fail(res, TJWT_ERR_CLAIM_TYPE,
			            "claim 'aud' is neither a string nor an array");
		json_array_foreach(aud, i, v)
		{
			if (!json_is_string(v))
				return fail(res, TJWT_ERR_CLAIM_TYPE,
				            "claim 'aud' holds a non-string");
		}
	}
	if (list_empty(pol->audiences))
		return TJWT_OK;
	if (!aud)
		return fail(res, TJWT_ERR_AUDIENCE,
		            "token has no audience ('aud' claim), expected '%s'",
		            pol->audiences[0]);
	if (json_is_string(aud)) {
		if (list_has(pol->audiences, json_string_value(aud)))
			return TJWT_OK;
		tjwt__sanitize(q, sizeof q, json_string_value(aud), json_string_length(aud), SHOW);
		return fail(res, TJWT_ERR_AUDIENCE, "audience '%s' not accepted", q);
	}
	json_array_foreach(aud, i, v)
	{
		if (list_has(pol->audiences, json_string_value(v)))
			return TJWT_OK;
	}
	if (!json_array_size(aud))
		return fail(res, TJWT_ERR_AUDIENCE, "audience [] not accepted");
	v = json_array_get(aud, 0);
	tjwt__sanitize(q, sizeof q, json_string_value(v), json_string_length(v), SHOW);
	return fail(res, TJWT_ERR_AUDIENCE, "audience '%s'%s not accepted", q,
	            json_array_size(aud) > 1 ? " (and the others listed)" : "");
}

static tjwt_status check_claims(json_t *claims, const tjwt_policy *pol, time_t now,
                                tjwt_result *res)
{
	json_t *sub = json_object_get(claims, "sub");
	tjwt_status st;

	if (sub && !json_is_string(sub))
		return fail(res, TJWT_ERR_CLAIM_TYPE, "claim 'sub' is not a string");
	if ((st = check_times(claims, pol, now, res)) || (st = check_issuer(claims, pol, res)) ||
	    (st = check_audience(claims, pol, res)))
		return st;
	for (const char *const *r = pol->required; r && *r; r++) {
		json_t *v = json_object_get(claims, *r);
		if (!v || json_is_null(v)) {
			char q[SHOW * 2];
			quote(q, sizeof q, *r);
			return fail(res, TJWT_ERR_CLAIM_MISSING, "required claim '%s' is missing",
			            q);
		}
	}
	return TJWT_OK;
}

/* ---- entry point -------------------------------------------------------------- */

tjwt_status tjwt_verify(const tjwt_keyset *ks, const tjwt_policy *pol, const char *token,
                        size_t len, time_t now, tjwt_result *res)
{
	static const tjwt_policy strict = {0};
	size_t max, parts = 1;
	const char *d1 = NULL, *d2 = NULL, *kid = NULL;
	json_t *hdr = NULL, *claims = NULL;
	tjwt_alg alg = 0;
	tjwt_status st;

	memset(res, 0, sizeof *res);
	if (!pol)
		pol = &strict;
	max = pol->max_token_len ? pol->max_token_len : TJWT_MAX_TOKEN_DEFAULT;
	if (!now)
		now = time(NULL);
	if (!token || !len)
		return fail(res, TJWT_ERR_MALFORMED, "empty token");
	if (len > max)
		return fail(res, TJWT_ERR_TOO_LARGE, "token of %zu bytes exceeds the limit of %zu",
		            len, max);
	for (const char *p = token; (p = memchr(p, '.', (size_t)(token + len - p))); p++) {
		if (parts == 1)
			d1 = p;
		else if (parts == 2)
			d2 = p;
		parts++;
	}
	if (parts != 3)
		return fail(res, TJWT_ERR_MALFORMED,
		            "token has %zu part%s, expected 3 (header.payload.signature)%s", parts,
		            parts == 1 ? "" : "s",
		            parts == 5 ? "; encrypted (JWE) tokens are not supported" : "");
	if (d1 == token || d2 == d1 + 1)
		return fail(res, TJWT_ERR_MALFORMED, "token has an empty %s",
		            d1 == token ? "header" : "payload");

	if (!(hdr = json_segment(token, (size_t)(d1 - token), "header", res)))
		goto done;
	if (check_header(hdr, pol, &alg, &kid, res))
		goto done;
	/* Reject a broken payload before spending a public-key operation on it. */
	{
		size_t plen = (size_t)(d2 - d1 - 1);
		if (plen % 4 == 1)
			goto bad_payload;
		for (size_t i = 0; i < plen; i++) {
			unsigned char c = (unsigned char)d1[1 + i];
			if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
			      (c >= '0' && c <= '9') || c == '-' || c == '_'))
				goto bad_payload;
		}
	}
	if (check_signature(ks, alg, kid, d2 + 1, (size_t)(token + len - d2 - 1), token,
	                    (size_t)(d2 - token), res))
		goto done;
	if (!(claims = json_segment(d1 + 1, (size_t)(d2 - d1 - 1), "payload", res)))
		goto done;
	if (check_claims(claims, pol, now, res))
		goto done;
	res->claims = claims;
	claims = NULL;
	res->status = TJWT_OK;
	snprintf(res->message, sizeof res->message, "ok");
	goto done;
bad_payload:
	fail(res, TJWT_ERR_MALFORMED, "payload is not valid base64url");
done:
	st = res->status;
	json_decref(hdr);
	json_decref(claims);
	return st;
}

void tjwt_result_clear(tjwt_result *res)
{
	if (!res)
		return;
	json_decref(res->claims);
	res->claims = NULL;
}

json_t *tjwt_result_steal_claims(tjwt_result *res)
{
	json_t *c = res->claims;

	res->claims = NULL;
	return c;
}

const char *tjwt_claim_string(const json_t *claims, const char *name)
{
	return json_string_value(json_object_get(claims, name));
}
