/*
 * Verification keys: PEM (public keys, certificates), JWKS, shared secrets.
 *
 * Every key records the one algorithm family it may verify, decided here from
 * the key material and never from a token: that is what makes algorithm
 * confusion (an RSA public key used as an HMAC secret) impossible later.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "jwt_internal.h"

#define KEYFILE_MAX (1024 * 1024)

/* ---- keyset life cycle ---------------------------------------------------- */

static tjwt_keyset *keyset_new(void)
{
	tjwt_keyset *ks = calloc(1, sizeof *ks);

	if (!ks)
		return NULL;
	atomic_init(&ks->refs, 1);
	ks->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (!ks->sha256) {
		free(ks);
		return NULL;
	}
	return ks;
}

static void key_clear(tjwt_key *k)
{
	free(k->kid);
	EVP_PKEY_free(k->pkey);
	EVP_MAC_CTX_free(k->hmac);
	memset(k, 0, sizeof *k);
}

static void keyset_free(tjwt_keyset *ks)
{
	for (size_t i = 0; i < ks->count; i++)
		key_clear(&ks->keys[i]);
	free(ks->keys);
	EVP_MD_free(ks->sha256);
	free(ks);
}

tjwt_keyset *tjwt_keyset_ref(tjwt_keyset *ks)
{
	if (ks)
		atomic_fetch_add_explicit(&ks->refs, 1, memory_order_relaxed);
	return ks;
}

void tjwt_keyset_unref(tjwt_keyset *ks)
{
	if (ks && atomic_fetch_sub_explicit(&ks->refs, 1, memory_order_acq_rel) == 1)
		keyset_free(ks);
}

size_t tjwt_keyset_size(const tjwt_keyset *ks)
{
	return ks ? ks->count : 0;
}

/* Takes ownership of the key's resources, also on failure. */
static int keyset_add(tjwt_keyset *ks, tjwt_key *k)
{
	tjwt_key *keys = realloc(ks->keys, (ks->count + 1) * sizeof *keys);

	if (!keys) {
		key_clear(k);
		return -1;
	}
	ks->keys = keys;
	ks->keys[ks->count++] = *k;
	memset(k, 0, sizeof *k);
	return 0;
}

void tjwt_keyset_describe(const tjwt_keyset *ks, char *buf, size_t len)
{
	size_t o = 0;

	if (!len)
		return;
	buf[0] = '\0';
	for (size_t i = 0; ks && i < ks->count && o < len; i++) {
		const tjwt_key *k = &ks->keys[i];
		char algs[32] = "";
		int n;

		for (unsigned a = TJWT_RS256; a <= TJWT_HS256; a <<= 1)
			if (k->algs & a) {
				if (algs[0])
					strcat(algs, ",");
				strcat(algs, tjwt_alg_name(a));
			}
		n = snprintf(buf + o, len - o, "%s%s %d kid=%s algs=%s", i ? "; " : "",
		             tjwt__kty_name(k->kty), k->bits, k->kid ? k->kid : "(none)", algs);
		if (n < 0)
			break;
		o += (size_t)n;
	}
}

/* ---- asymmetric keys ------------------------------------------------------ */

/* Classifies and checks a public key; takes ownership of pkey. */
static int key_from_pkey(tjwt_key *k, EVP_PKEY *pkey, const char *what, char *err, size_t errlen)
{
	EVP_PKEY_CTX *pctx = NULL;
	char group[64] = "";
	int rc = -1;

	memset(k, 0, sizeof *k);
	if (EVP_PKEY_is_a(pkey, "RSA")) {
		k->kty = TJWT_KTY_RSA;
		k->algs = TJWT_RS256;
		k->bits = EVP_PKEY_get_bits(pkey);
		if (k->bits < TJWT_MIN_RSA_BITS) {
			tjwt__err(err, errlen, "%s: RSA key of %d bits is too small (at least %d)",
			          what, k->bits, TJWT_MIN_RSA_BITS);
			goto cleanup;
		}
	} else if (EVP_PKEY_is_a(pkey, "EC")) {
		size_t glen = 0;
		k->kty = TJWT_KTY_EC;
		k->algs = TJWT_ES256;
		k->bits = EVP_PKEY_get_bits(pkey);
		if (EVP_PKEY_get_group_name(pkey, group, sizeof group, &glen) != 1 ||
		    strcmp(group, "prime256v1")) {
			tjwt__err(err, errlen,
			          "%s: EC key on curve '%s' is not supported (ES256 needs P-256)",
			          what, group[0] ? group : "unknown");
			goto cleanup;
		}
	} else {
		tjwt__err(err, errlen, "%s: unsupported key type %s (RSA or EC P-256 only)", what,
		          EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey)
		                                        : "unknown");
		goto cleanup;
	}
	pctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
	if (!pctx || EVP_PKEY_public_check(pctx) != 1) {
		tjwt__err(err, errlen, "%s: %s public key fails its consistency check", what,
		          tjwt__kty_name(k->kty));
		goto cleanup;
	}
	k->pkey = pkey;
	pkey = NULL;
	rc = 0;
cleanup:
	EVP_PKEY_CTX_free(pctx);
	EVP_PKEY_free(pkey);
	return rc;
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *pkey = NULL;

	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return pkey;
}

/* ---- PEM ------------------------------------------------------------------ */

static int load_pem(tjwt_keyset *ks, const char *data, size_t len, const char *what, char *err,
                    size_t errlen)
{
	BIO *bio = BIO_new_mem_buf(data, (int)len);
	char *name = NULL, *header = NULL;
	unsigned char *der = NULL;
	long derlen = 0;
	int rc = -1, block = 0;

	if (!bio)
		return tjwt__err(err, errlen, "%s: out of memory", what);
	ERR_clear_error();
	for (;;) {
		const unsigned char *p;
		EVP_PKEY *pkey = NULL;
		tjwt_key k;
		char where[300];

		if (!PEM_read_bio(bio, &name, &header, &der, &derlen)) {
			unsigned long e = ERR_peek_last_error();
			if (ERR_GET_LIB(e) == ERR_LIB_PEM &&
			    ERR_GET_REASON(e) == PEM_R_NO_START_LINE && block > 0)
				break;
			tjwt__err(err, errlen, "%s: unreadable PEM block #%d", what, block + 1);
			goto cleanup;
		}
		block++;
		snprintf(where, sizeof where, "%s: PEM block #%d (%s)", what, block, name);
		p = der;
		if (!strcmp(name, "PUBLIC KEY")) {
			pkey = d2i_PUBKEY(NULL, &p, derlen);
		} else if (!strcmp(name, "RSA PUBLIC KEY")) {
			pkey = d2i_PublicKey(EVP_PKEY_RSA, NULL, &p, derlen);
		} else if (!strcmp(name, "CERTIFICATE")) {
			X509 *x = d2i_X509(NULL, &p, derlen);
			if (x)
				pkey = X509_get_pubkey(x);
			X509_free(x);
		} else if (strstr(name, "PRIVATE KEY")) {
			tjwt__err(err, errlen,
			          "%s: a private key; give the verifier the public key only",
			          where);
			goto cleanup;
		} else if (!strcmp(name, "EC PARAMETERS")) {
			goto next; /* openssl ecparam -genkey writes it before the key */
		} else {
			tjwt__err(err, errlen, "%s: unsupported PEM block type", where);
			goto cleanup;
		}
		if (!pkey || p != der + derlen) {
			EVP_PKEY_free(pkey);
			tjwt__err(err, errlen, "%s: not a valid key", where);
			goto cleanup;
		}
		if (key_from_pkey(&k, pkey, where, err, errlen) < 0 || keyset_add(ks, &k) < 0) {
			if (!err || !*err)
				tjwt__err(err, errlen, "%s: out of memory", where);
			goto cleanup;
		}
	next:
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(der);
		name = header = NULL;
		der = NULL;
	}
	if (!ks->count) {
		tjwt__err(err, errlen, "%s: no public key or certificate in the PEM file", what);
		goto cleanup;
	}
	rc = 0;
cleanup:
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(der);
	BIO_free(bio);
	ERR_clear_error();
	return rc;
}

/* ---- shared secrets ------------------------------------------------------- */

static bool looks_like_der_public_key(const unsigned char *p, size_t len)
{
	const unsigned char *q = p;
	EVP_PKEY *pkey = d2i_PUBKEY(NULL, &q, (long)len);
	X509 *x = NULL;
	bool yes = pkey != NULL;

	if (!yes) {
		q = p;
		x = d2i_X509(NULL, &q, (long)len);
		yes = x != NULL;
	}
	EVP_PKEY_free(pkey);
	X509_free(x);
	ERR_clear_error();
	return yes;
}

static int secret_key(tjwt_key *k, const void *secret, size_t len, const char *kid,
                      const char *what, char *err, size_t errlen)
{
	memset(k, 0, sizeof *k);
	if (len < TJWT_MIN_SECRET)
		return tjwt__err(err, errlen,
		                 "%s: HS256 secret of %zu bytes is too short (at least %d)", what,
		                 len, TJWT_MIN_SECRET);
	/* A public key mistaken for a secret is exactly the HS256 confusion attack. */
	if (memmem(secret, len, "-----BEGIN ", 11))
		return tjwt__err(err, errlen, "%s: this is PEM, not an HS256 secret", what);
	if (looks_like_der_public_key(secret, len))
		return tjwt__err(err, errlen,
		                 "%s: this is a DER public key or certificate, not an HS256 secret",
		                 what);
	k->kty = TJWT_KTY_OCT;
	k->algs = TJWT_HS256;
	k->bits = (int)(len * 8);
	k->hmac = tjwt__hmac_new(secret, len);
	if (!k->hmac)
		return tjwt__err(err, errlen, "%s: cannot set up HMAC-SHA256", what);
	if (kid && !(k->kid = strdup(kid))) {
		key_clear(k);
		return tjwt__err(err, errlen, "%s: out of memory", what);
	}
	return 0;
}

tjwt_keyset *tjwt_keyset_from_secret(const void *secret, size_t len, const char *kid, char *err,
                                     size_t errlen)
{
	tjwt_keyset *ks = keyset_new();
	tjwt_key k;

	if (!ks) {
		tjwt__err(err, errlen, "out of memory");
		return NULL;
	}
	if (secret_key(&k, secret, len, kid, "secret", err, errlen) < 0 || keyset_add(ks, &k) < 0) {
		if (err && errlen && !*err)
			tjwt__err(err, errlen, "out of memory");
		keyset_free(ks);
		return NULL;
	}
	return ks;
}

static int load_secret(tjwt_keyset *ks, const char *data, size_t len, const char *what, char *err,
                       size_t errlen)
{
	tjwt_key k;

	/* Secret files are usually written by editors and echo: drop one line end. */
	if (len && data[len - 1] == '\n') {
		len--;
		if (len && data[len - 1] == '\r')
			len--;
	}
	if (secret_key(&k, data, len, NULL, what, err, errlen) < 0)
		return -1;
	return keyset_add(ks, &k) < 0 ? tjwt__err(err, errlen, "%s: out of memory", what) : 0;
}

/* ---- JWKS ----------------------------------------------------------------- */

/* Decodes a base64url member into a malloc'd buffer; NULL if absent or bad. */
static unsigned char *jwk_bytes(json_t *jwk, const char *member, size_t *outlen)
{
	const char *s = json_string_value(json_object_get(jwk, member));
	size_t slen;
	unsigned char *buf;
	long n;

	if (!s)
		return NULL;
	slen = json_string_length(json_object_get(jwk, member));
	buf = malloc(tjwt_b64url_decoded_max(slen));
	if (!buf)
		return NULL;
	n = tjwt_b64url_decode(s, slen, buf);
	if (n <= 0) {
		free(buf);
		return NULL;
	}
	*outlen = (size_t)n;
	return buf;
}

static EVP_PKEY *jwk_rsa(json_t *jwk, const char *where, char *err, size_t errlen)
{
	size_t nlen = 0, elen = 0;
	unsigned char *n = jwk_bytes(jwk, "n", &nlen), *e = jwk_bytes(jwk, "e", &elen);
	BIGNUM *bn_n = NULL, *bn_e = NULL;
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *pkey = NULL;

	if (!n || !e) {
		tjwt__err(err, errlen, "%s: RSA key needs base64url members \"n\" and \"e\"",
		          where);
		goto cleanup;
	}
	bn_n = BN_bin2bn(n, (int)nlen, NULL);
	bn_e = BN_bin2bn(e, (int)elen, NULL);
	bld = OSSL_PARAM_BLD_new();
	if (!bn_n || !bn_e || !bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn_n) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, bn_e) ||
	    !(pkey = pkey_fromdata("RSA", bld)))
		tjwt__err(err, errlen, "%s: invalid RSA key", where);
cleanup:
	OSSL_PARAM_BLD_free(bld);
	BN_free(bn_n);
	BN_free(bn_e);
	free(n);
	free(e);
	return pkey;
}

static EVP_PKEY *jwk_ec(json_t *jwk, const char *where, char *err, size_t errlen)
{
	size_t xlen = 0, ylen = 0;
	unsigned char *x = jwk_bytes(jwk, "x", &xlen), *y = jwk_bytes(jwk, "y", &ylen);
	unsigned char point[65];
	OSSL_PARAM_BLD *bld = NULL;
	EVP_PKEY *pkey = NULL;

	if (!x || !y || xlen != 32 || ylen != 32) {
		tjwt__err(err, errlen,
		          "%s: P-256 key needs 32-byte base64url members \"x\" and \"y\"", where);
		goto cleanup;
	}
	point[0] = 0x04; /* uncompressed */
	memcpy(point + 1, x, 32);
	memcpy(point + 33, y, 32);
	bld = OSSL_PARAM_BLD_new();
	if (!bld ||
	    !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof point) ||
	    !(pkey = pkey_fromdata("EC", bld)))
		tjwt__err(err, errlen, "%s: invalid P-256 key (point not on the curve?)", where);
cleanup:
	OSSL_PARAM_BLD_free(bld);
	free(x);
	free(y);
	return pkey;
}

static bool json_array_has_string(json_t *arr, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
	{
		if (json_is_string(v) && !strcmp(json_string_value(v), s))
			return true;
	}
	return false;
}

/*
 * Adds one JWK. Keys meant for something else (encryption, other algorithms
 * or curves) are skipped, since identity providers publish those alongside
 * signing keys; keys that claim to be for us but are broken are errors.
 * Returns 1 added, 0 skipped, -1 error.
 */
static int load_jwk(tjwt_keyset *ks, json_t *jwk, const char *where, char *err, size_t errlen)
{
	const char *kty, *alg_name, *use, *kid;
	json_t *ops, *kidv;
	tjwt_alg alg = 0;
	tjwt_key k;
	EVP_PKEY *pkey = NULL;

	if (!json_is_object(jwk))
		return tjwt__err(err, errlen, "%s: not a JSON object", where);
	kty = json_string_value(json_object_get(jwk, "kty"));
	if (!kty)
		return tjwt__err(err, errlen, "%s: no \"kty\"", where);
	use = json_string_value(json_object_get(jwk, "use"));
	if (json_object_get(jwk, "use") && (!use || strcmp(use, "sig")))
		return 0;
	ops = json_object_get(jwk, "key_ops");
	if (ops && (!json_is_array(ops) || !json_array_has_string(ops, "verify")))
		return 0;
	kidv = json_object_get(jwk, "kid");
	if (kidv && !json_is_string(kidv))
		return tjwt__err(err, errlen, "%s: \"kid\" is not a string", where);
	kid = json_string_value(kidv);
	alg_name = json_string_value(json_object_get(jwk, "alg"));
	if (json_object_get(jwk, "alg")) {
		if (!alg_name)
			return tjwt__err(err, errlen, "%s: \"alg\" is not a string", where);
		alg = tjwt_alg_from_name(alg_name);
		if (!alg)
			return 0; /* RS384, PS256, RSA-OAEP...: not ours to verify */
	}

	if (!strcmp(kty, "RSA")) {
		if (alg && alg != TJWT_RS256)
			return tjwt__err(err, errlen, "%s: RSA key declares alg %s", where,
			                 alg_name);
		pkey = jwk_rsa(jwk, where, err, errlen);
	} else if (!strcmp(kty, "EC")) {
		const char *crv = json_string_value(json_object_get(jwk, "crv"));
		if (alg && alg != TJWT_ES256)
			return tjwt__err(err, errlen, "%s: EC key declares alg %s", where,
			                 alg_name);
		if (!crv)
			return tjwt__err(err, errlen, "%s: EC key without \"crv\"", where);
		if (strcmp(crv, "P-256"))
			return 0;
		pkey = jwk_ec(jwk, where, err, errlen);
	} else if (!strcmp(kty, "oct")) {
		size_t len = 0;
		unsigned char *secret;
		int rc;
		if (alg && alg != TJWT_HS256)
			return tjwt__err(err, errlen, "%s: oct key declares alg %s", where,
			                 alg_name);
		secret = jwk_bytes(jwk, "k", &len);
		if (!secret)
			return tjwt__err(err, errlen, "%s: oct key needs a base64url member \"k\"",
			                 where);
		rc = secret_key(&k, secret, len, kid, where, err, errlen);
		OPENSSL_cleanse(secret, len);
		free(secret);
		if (rc < 0)
			return -1;
		return keyset_add(ks, &k) < 0 ? tjwt__err(err, errlen, "%s: out of memory", where)
		                              : 1;
	} else {
		return 0; /* OKP and whatever comes next */
	}
	if (!pkey)
		return -1;
	if (key_from_pkey(&k, pkey, where, err, errlen) < 0)
		return -1;
	if (kid && !(k.kid = strdup(kid))) {
		key_clear(&k);
		return tjwt__err(err, errlen, "%s: out of memory", where);
	}
	return keyset_add(ks, &k) < 0 ? tjwt__err(err, errlen, "%s: out of memory", where) : 1;
}

static int load_jwks(tjwt_keyset *ks, const char *data, size_t len, const char *what, char *err,
                     size_t errlen)
{
	json_error_t jerr;
	json_t *doc = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr), *keys, *jwk;
	size_t i, skipped = 0;
	int rc = -1;
	char where[300];

	if (!doc)
		return tjwt__err(err, errlen, "%s: invalid JSON at line %d: %s", what, jerr.line,
		                 jerr.text);
	keys = json_object_get(doc, "keys");
	if (keys) {
		if (!json_is_array(keys)) {
			tjwt__err(err, errlen, "%s: \"keys\" is not an array", what);
			goto cleanup;
		}
		json_array_foreach(keys, i, jwk)
		{
			int r;
			snprintf(where, sizeof where, "%s: keys[%zu]", what, i);
			r = load_jwk(ks, jwk, where, err, errlen);
			if (r < 0)
				goto cleanup;
			skipped += r == 0;
		}
	} else if (json_object_get(doc, "kty")) {
		int r = load_jwk(ks, doc, what, err, errlen);
		if (r < 0)
			goto cleanup;
		skipped += r == 0;
	} else {
		tjwt__err(err, errlen, "%s: neither a JWK Set (\"keys\") nor a JWK (\"kty\")",
		          what);
		goto cleanup;
	}
	if (!ks->count) {
		tjwt__err(err, errlen, "%s: no usable signing key (RS256, ES256 on P-256, HS256)%s",
		          what, skipped ? "; all keys were for other uses or algorithms" : "");
		goto cleanup;
	}
	rc = 0;
cleanup:
	json_decref(doc);
	return rc;
}

/* ---- entry points ----------------------------------------------------------- */

tjwt_keyset *tjwt_keyset_parse(const void *data, size_t len, const char *what, char *err,
                               size_t errlen)
{
	const char *p = data, *end = p + len;
	tjwt_keyset *ks;
	int rc;

	if (err && errlen)
		err[0] = '\0';
	if (!what)
		what = "key data";
	if (!(ks = keyset_new())) {
		tjwt__err(err, errlen, "%s: out of memory", what);
		return NULL;
	}
	if (len >= 3 && !memcmp(p, "\xef\xbb\xbf", 3))
		p += 3;
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	if (p < end && *p == '{')
		rc = load_jwks(ks, data, len, what, err, errlen);
	else if (memmem(data, len, "-----BEGIN ", 11))
		rc = load_pem(ks, data, len, what, err, errlen);
	else
		rc = load_secret(ks, data, len, what, err, errlen);
	if (rc < 0) {
		keyset_free(ks);
		return NULL;
	}
	return ks;
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n;

	if (!f) {
		tjwt__err(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	buf = malloc(KEYFILE_MAX + 1);
	if (!buf) {
		tjwt__err(err, errlen, "%s: out of memory", path);
		goto cleanup;
	}
	n = fread(buf, 1, KEYFILE_MAX + 1, f);
	if (ferror(f) || n > KEYFILE_MAX) {
		tjwt__err(err, errlen, "%s: %s", path,
		          ferror(f) ? "read error" : "larger than 1 MiB");
		free(buf);
		buf = NULL;
		goto cleanup;
	}
	*len = n;
cleanup:
	fclose(f);
	return buf;
}

tjwt_keyset *tjwt_keyset_load(const char *path, char *err, size_t errlen)
{
	size_t len = 0;
	char *data = read_file(path, &len, err, errlen);
	tjwt_keyset *ks;

	if (!data)
		return NULL;
	ks = tjwt_keyset_parse(data, len, path, err, errlen);
	OPENSSL_cleanse(data, len); /* may hold a shared secret */
	free(data);
	return ks;
}

tjwt_keyset *tjwt_keyset_load_secret(const char *path, char *err, size_t errlen)
{
	size_t len = 0;
	char *data = read_file(path, &len, err, errlen);
	tjwt_keyset *ks = NULL;

	if (!data)
		return NULL;
	if (err && errlen)
		err[0] = '\0';
	if ((ks = keyset_new()) && load_secret(ks, data, len, path, err, errlen) < 0) {
		keyset_free(ks);
		ks = NULL;
	} else if (!ks) {
		tjwt__err(err, errlen, "%s: out of memory", path);
	}
	OPENSSL_cleanse(data, len);
	free(data);
	return ks;
}

/* ---- slot for reloads ------------------------------------------------------- */

struct tjwt_keyslot {
	pthread_mutex_t lock;
	tjwt_keyset *ks;
};

tjwt_keyslot *tjwt_keyslot_new(tjwt_keyset *initial)
{
	tjwt_keyslot *slot = calloc(1, sizeof *slot);

	if (!slot || pthread_mutex_init(&slot->lock, NULL)) {
		free(slot);
		tjwt_keyset_unref(initial);
		return NULL;
	}
	slot->ks = initial;
	return slot;
}

void tjwt_keyslot_free(tjwt_keyslot *slot)
{
	if (!slot)
		return;
	tjwt_keyset_unref(slot->ks);
	pthread_mutex_destroy(&slot->lock);
	free(slot);
}

/* A plain atomic pointer would let a reader load the old set just before the
 * writer drops its last reference; the lock covers load + ref together. */
tjwt_keyset *tjwt_keyslot_get(tjwt_keyslot *slot)
{
	tjwt_keyset *ks;

	pthread_mutex_lock(&slot->lock);
	ks = tjwt_keyset_ref(slot->ks);
	pthread_mutex_unlock(&slot->lock);
	return ks;
}

void tjwt_keyslot_set(tjwt_keyslot *slot, tjwt_keyset *ks)
{
	tjwt_keyset *old;

	pthread_mutex_lock(&slot->lock);
	old = slot->ks;
	slot->ks = ks;
	pthread_mutex_unlock(&slot->lock);
	tjwt_keyset_unref(old);
}
