/* Small helpers shared by the JWT files: error text, log-safe copies, HMAC. */
#include <stdio.h>
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "jwt_internal.h"

int tjwt__err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

void tjwt__sanitize(char *out, size_t outlen, const char *s, size_t len, size_t max)
{
	size_t o = 0;

	if (!outlen)
		return;
	for (size_t i = 0; i < len && o + 1 < outlen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (i == max) {
			/* Say that it was cut, so a truncated value is not mistaken for the real
			 * one. */
			for (const char *e = "..."; *e && o + 1 < outlen; e++)
				out[o++] = *e;
			break;
		}
		out[o++] =
		    (c >= 0x20 && c < 0x7f && c != '\'' && c != '"' && c != '\\') ? (char)c : '?';
	}
	out[o] = '\0';
}

const char *tjwt__kty_name(tjwt_kty kty)
{
	switch (kty) {
	case TJWT_KTY_RSA:
		return "RSA";
	case TJWT_KTY_EC:
		return "EC";
	case TJWT_KTY_OCT:
		return "oct";
	}
	return "?";
}

EVP_MAC_CTX *tjwt__hmac_new(const void *secret, size_t len)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
	    OSSL_PARAM_construct_end(),
	};

	if (!mac)
		return NULL;
	ctx = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac); /* the context keeps its own reference */
	if (ctx && EVP_MAC_init(ctx, secret, len, params) != 1) {
		EVP_MAC_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

tjwt_alg tjwt_alg_from_name(const char *name)
{
	if (!name)
		return 0;
	if (!strcmp(name, "RS256"))
		return TJWT_RS256;
	if (!strcmp(name, "ES256"))
		return TJWT_ES256;
	if (!strcmp(name, "HS256"))
		return TJWT_HS256;
	return 0;
}

const char *tjwt_alg_name(tjwt_alg alg)
{
	switch (alg) {
	case TJWT_RS256:
		return "RS256";
	case TJWT_ES256:
		return "ES256";
	case TJWT_HS256:
		return "HS256";
	}
	return "?";
}

int tjwt_algs_parse(const char *list, unsigned *mask, char *err, size_t errlen)
{
	unsigned m = 0;
	const char *p = list;

	while (p && *p) {
		size_t n;
		char name[16];
		tjwt_alg a;

		p += strspn(p, ", \t");
		n = strcspn(p, ", \t");
		if (!n)
			break;
		if (n >= sizeof name)
			return tjwt__err(err, errlen, "unknown JWT algorithm '%.*s'",
			                 (int)(n > 32 ? 32 : n), p);
		memcpy(name, p, n);
		name[n] = '\0';
		a = tjwt_alg_from_name(name);
		if (!a)
			return tjwt__err(
			    err, errlen,
			    "unknown JWT algorithm '%s' (supported: RS256, ES256, HS256)", name);
		m |= a;
		p += n;
	}
	if (!m)
		return tjwt__err(err, errlen, "empty JWT algorithm list");
	*mask = m;
	return 0;
}

const char *tjwt_status_name(tjwt_status st)
{
	switch (st) {
	case TJWT_OK:
		return "ok";
	case TJWT_ERR_TOO_LARGE:
		return "too_large";
	case TJWT_ERR_MALFORMED:
		return "malformed";
	case TJWT_ERR_ALG_NONE:
		return "alg_none";
	case TJWT_ERR_ALG_UNSUPPORTED:
		return "alg_unsupported";
	case TJWT_ERR_ALG_NOT_ALLOWED:
		return "alg_not_allowed";
	case TJWT_ERR_ALG_KEY_MISMATCH:
		return "alg_key_mismatch";
	case TJWT_ERR_CRIT:
		return "crit";
	case TJWT_ERR_NO_KEY:
		return "no_key";
	case TJWT_ERR_SIGNATURE:
		return "bad_signature";
	case TJWT_ERR_EXPIRED:
		return "expired";
	case TJWT_ERR_NOT_YET_VALID:
		return "not_yet_valid";
	case TJWT_ERR_IAT:
		return "bad_iat";
	case TJWT_ERR_ISSUER:
		return "issuer";
	case TJWT_ERR_AUDIENCE:
		return "audience";
	case TJWT_ERR_CLAIM_MISSING:
		return "claim_missing";
	case TJWT_ERR_CLAIM_TYPE:
		return "claim_type";
	case TJWT_ERR_INTERNAL:
		return "internal";
	}
	return "unknown";
}
