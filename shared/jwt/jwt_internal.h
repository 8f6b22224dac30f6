/* Private to shared/jwt: the keyset layout shared by keys.c, verify.c, sign.c. */
#ifndef TRIBUTARY_JWT_INTERNAL_H
#define TRIBUTARY_JWT_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <openssl/evp.h>

#include "tributary/jwt.h"

#define TJWT_MIN_RSA_BITS 2048
#define TJWT_MIN_SECRET 32 /* RFC 7518 §3.2: at least the hash size */

typedef enum tjwt_kty {
	TJWT_KTY_RSA = 1,
	TJWT_KTY_EC = 2,
	TJWT_KTY_OCT = 3,
} tjwt_kty;

typedef struct tjwt_key {
	tjwt_kty kty;
	unsigned algs;     /* what this key may verify: its type's alg, narrowed by a JWK "alg" */
	char *kid;         /* NULL when the source has none (PEM, bare secret) */
	EVP_PKEY *pkey;    /* RSA / EC */
	EVP_MAC_CTX *hmac; /* oct: initialised with the secret, dup'ed per verification */
	int bits;
} tjwt_key;

struct tjwt_keyset {
	atomic_uint refs;
	size_t count;
	tjwt_key *keys;
	EVP_MD *sha256; /* fetched once: implicit fetches take a lock per call */
};

const char *tjwt__kty_name(tjwt_kty kty);
/* snprintf into err (if any), always NUL-terminated; returns -1 for `return tjwt__err(...)`. */
int tjwt__err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Copies at most `max` bytes of untrusted `s` into `out`, replacing anything
 * that is not printable ASCII (or is a quote/backslash) by '?', for logs. */
void tjwt__sanitize(char *out, size_t outlen, const char *s, size_t len, size_t max);
/* An HMAC-SHA256 context keyed with `secret`. */
EVP_MAC_CTX *tjwt__hmac_new(const void *secret, size_t len);

#endif
