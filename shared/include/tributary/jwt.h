/*
 * JWT (compact JWS) verification for the broker plugin and the nginx module.
 *
 * Only RS256, ES256 and HS256 are supported, on OpenSSL 3 EVP. Keys come from
 * a PEM file (public keys or certificates), a JWKS file, or a shared-secret
 * file; a loaded tjwt_keyset is immutable and reference counted, so a reload
 * builds a new set and swaps it in (tjwt_keyslot) while verifications in
 * flight keep the old one alive.
 *
 * Verification does no I/O, never blocks and keeps no global mutable state:
 * any number of threads may verify against the same keyset and policy.
 * See docs/security.md for the rules.
 */
#ifndef TRIBUTARY_JWT_H
#define TRIBUTARY_JWT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include <jansson.h>

#define TJWT_MAX_TOKEN_DEFAULT 16384 /* bytes; longer tokens are refused unread */
#define TJWT_IDENTITY_MAX 256        /* bytes, for tjwt_identity_is_safe */
#define TJWT_MESSAGE_MAX 320

typedef enum tjwt_alg {
	TJWT_RS256 = 1u << 0,
	TJWT_ES256 = 1u << 1,
	TJWT_HS256 = 1u << 2,
} tjwt_alg;
#define TJWT_ALGS_ALL (TJWT_RS256 | TJWT_ES256 | TJWT_HS256)

/* "RS256" -> TJWT_RS256; 0 for anything else (including "none"). */
tjwt_alg tjwt_alg_from_name(const char *name);
const char *tjwt_alg_name(tjwt_alg alg);
/* Parses "RS256,ES256" (comma/space separated) into a mask; -1 on an unknown name. */
int tjwt_algs_parse(const char *list, unsigned *mask, char *err, size_t errlen);

typedef enum tjwt_status {
	TJWT_OK = 0,
	TJWT_ERR_TOO_LARGE,        /* longer than the policy's limit */
	TJWT_ERR_MALFORMED,        /* parts, base64url, JSON, header fields */
	TJWT_ERR_ALG_NONE,         /* alg "none" (unsecured JWS) */
	TJWT_ERR_ALG_UNSUPPORTED,  /* an algorithm this library does not implement */
	TJWT_ERR_ALG_NOT_ALLOWED,  /* supported but not in the policy's allow-list */
	TJWT_ERR_ALG_KEY_MISMATCH, /* e.g. HS256 presented for an RSA key */
	TJWT_ERR_CRIT,             /* "crit" header with extensions we do not understand */
	TJWT_ERR_NO_KEY,           /* no key with that kid / no key at all */
	TJWT_ERR_SIGNATURE,        /* signature does not verify */
	TJWT_ERR_EXPIRED,          /* now >= exp + leeway */
	TJWT_ERR_NOT_YET_VALID,    /* now + leeway < nbf */
	TJWT_ERR_IAT,              /* issued in the future, or older than max_age */
	TJWT_ERR_ISSUER,           /* iss missing or not accepted */
	TJWT_ERR_AUDIENCE,         /* aud missing or not accepted */
	TJWT_ERR_CLAIM_MISSING,    /* a required claim is absent */
	TJWT_ERR_CLAIM_TYPE,       /* a registered claim has the wrong JSON type */
	TJWT_ERR_INTERNAL,         /* allocation or OpenSSL failure */
} tjwt_status;

/* Stable short name, e.g. "expired", for metrics and log keys. */
const char *tjwt_status_name(tjwt_status st);

/* ---- keys ---------------------------------------------------------------- */

typedef struct tjwt_keyset tjwt_keyset;

/*
 * Loads verification keys from `path`, detecting the format by content:
 *   - a JSON object: a JWKS ({"keys":[...]}) or a single JWK;
 *   - PEM ("-----BEGIN"): one or more PUBLIC KEY / RSA PUBLIC KEY /
 *     CERTIFICATE blocks (private keys are refused: a verifier needs none);
 *   - anything else: an HS256 shared secret (the file's bytes, one trailing
 *     newline removed; at least 32 bytes).
 * Returns a keyset with one reference, or NULL with `err` filled.
 */
tjwt_keyset *tjwt_keyset_load(const char *path, char *err, size_t errlen);
/* The same from memory; `what` names the source in error messages. */
tjwt_keyset *tjwt_keyset_parse(const void *data, size_t len, const char *what, char *err,
                               size_t errlen);
/* Forces the shared-secret interpretation (e.g. a secret that begins with '{'). */
tjwt_keyset *tjwt_keyset_load_secret(const char *path, char *err, size_t errlen);
tjwt_keyset *tjwt_keyset_from_secret(const void *secret, size_t len, const char *kid, char *err,
                                     size_t errlen);

tjwt_keyset *tjwt_keyset_ref(tjwt_keyset *ks);
void tjwt_keyset_unref(tjwt_keyset *ks); /* NULL is fine */
size_t tjwt_keyset_size(const tjwt_keyset *ks);
/* One line per key ("RSA 2048 kid=k1 algs=RS256") into buf, for a startup log. */
void tjwt_keyset_describe(const tjwt_keyset *ks, char *buf, size_t len);

/*
 * A slot holding the current keyset, for reload-on-SIGHUP: readers take a
 * reference with tjwt_keyslot_get (and unref it when done), a reload installs
 * a new set with tjwt_keyslot_set. Safe across threads.
 */
typedef struct tjwt_keyslot tjwt_keyslot;
tjwt_keyslot *tjwt_keyslot_new(tjwt_keyset *initial /* reference taken over, may be NULL */);
void tjwt_keyslot_free(tjwt_keyslot *slot);
tjwt_keyset *tjwt_keyslot_get(tjwt_keyslot *slot); /* new reference or NULL */
void tjwt_keyslot_set(tjwt_keyslot *slot, tjwt_keyset *ks /* reference taken over */);

/* ---- verification -------------------------------------------------------- */

/*
 * What a token must satisfy. All pointers are borrowed for the duration of a
 * call. A zero-initialised policy is strict where it can be: exp required,
 * no leeway, all three algorithms allowed but each only with a key of its
 * own type, issuer and audience not checked.
 */
typedef struct tjwt_policy {
	unsigned algs;                /* mask of tjwt_alg; 0 = TJWT_ALGS_ALL */
	const char *const *issuers;   /* NULL-terminated; NULL or empty = any issuer */
	const char *const *audiences; /* NULL-terminated; NULL or empty = aud not checked */
	const char *const *required;  /* NULL-terminated names of claims that must be present */
	long leeway;                  /* seconds of clock skew allowed on exp/nbf/iat */
	long max_age;                 /* > 0: iat required and now - iat <= max_age (+leeway) */
	bool exp_optional;            /* accept tokens without exp (not recommended) */
	size_t max_token_len;         /* 0 = TJWT_MAX_TOKEN_DEFAULT */
} tjwt_policy;

typedef struct tjwt_result {
	tjwt_status status;
	char message[TJWT_MESSAGE_MAX]; /* human-readable, safe to log (no control chars) */
	json_t *claims;                 /* on success: the payload object, owned by the result */
	tjwt_alg alg;                   /* the token's algorithm once known */
	char kid[65];                   /* the token's kid (sanitised, truncated), "" if none */
} tjwt_result;

/*
 * Verifies `token` (`len` bytes; not necessarily NUL-terminated) against
 * `ks` and `pol` at time `now` (0 = the current time). Fills `res` either
 * way; release it with tjwt_result_clear. Returns res->status.
 */
tjwt_status tjwt_verify(const tjwt_keyset *ks, const tjwt_policy *pol, const char *token,
                        size_t len, time_t now, tjwt_result *res);
void tjwt_result_clear(tjwt_result *res);

/* Takes the claims out of the result (caller json_decref's them). */
json_t *tjwt_result_steal_claims(tjwt_result *res);

/* The string claim `name`, or NULL if absent or not a string. */
const char *tjwt_claim_string(const json_t *claims, const char *name);
static inline const char *tjwt_subject(const json_t *claims)
{
	return tjwt_claim_string(claims, "sub");
}

/* ---- signing (tools, tests and benchmarks; the servers never sign) --------- */

/*
 * Builds a compact JWS over `claims` with header {"alg","typ":"JWT"[,"kid"]}.
 * For RS256/ES256 `key` is an EVP_PKEY * holding the private key; for HS256
 * `secret`/`secret_len` is the shared secret and `key` is unused.
 * Returns a malloc'd NUL-terminated token or NULL with `err` filled.
 */
char *tjwt_sign(tjwt_alg alg, void *key /* EVP_PKEY * */, const void *secret, size_t secret_len,
                const char *kid, const json_t *claims, char *err, size_t errlen);

/* ---- base64url (RFC 4648 §5, no padding) -------------------------------- */

/* Strict decode: alphabet only, no padding, canonical trailing bits.
 * `out` needs room for tjwt_b64url_decoded_max(len). Returns bytes or -1. */
static inline size_t tjwt_b64url_decoded_max(size_t len)
{
	return len / 4 * 3 + 3;
}
long tjwt_b64url_decode(const char *in, size_t len, unsigned char *out);
/* Encodes into a malloc'd NUL-terminated string (NULL on allocation failure). */
char *tjwt_b64url_encode(const void *in, size_t len);

/* ---- identities ---------------------------------------------------------- */

/*
 * Whether `s` may be substituted into an MQTT topic as an identity: non-empty,
 * at most TJWT_IDENTITY_MAX bytes, valid UTF-8, and no '+', '#', '/', NUL or
 * control characters (C0, DEL, C1).
 */
bool tjwt_identity_is_safe(const char *s);
/* NULL if safe, else why not ("contains '/'"). */
const char *tjwt_identity_problem(const char *s);

#endif
