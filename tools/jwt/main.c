/*
 * tributary-jwt: make keys, mint tokens and check them, for tests and demos.
 *
 *   tributary-jwt keygen --alg RS256|ES256|HS256 --out DIR [--name N] [--kid K] [--bits B]
 *   tributary-jwt sign --key FILE [--alg A] [--kid K] [--sub S] [--iss I] [--aud A]...
 *                      [--exp-in SECS | --no-exp] [--nbf-in SECS] [--iat-in SECS | --no-iat]
 *                      [--claim NAME=STRING]... [--claim-json NAME=JSON]... [--now T]
 *   tributary-jwt verify --keys FILE [--iss I]... [--aud A]... [--alg LIST] [--leeway S]
 *                        [--max-age S] [--require C]... [--no-exp-ok] [--now T] TOKEN|-
 *
 * Verification goes through the same library code as the broker and nginx.
 * Signing deliberately allows what the servers must refuse (--alg none, an
 * HS256 "secret" that is a public key file, expired tokens), so that tests can
 * produce every kind of bad token.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "tributary/jwt.h"

#define MAX_LIST 32

static const char *prog = "tributary-jwt";

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage:\n"
	    "  %1$s keygen --alg RS256|ES256|HS256 --out DIR [--name NAME] [--kid KID] [--bits "
	    "BITS]\n"
	    "      writes DIR/NAME-private.pem + DIR/NAME-public.pem (HS256: DIR/NAME-secret)\n"
	    "      and DIR/NAME-jwks.json; prints name=path lines and kid=KID\n"
	    "  %1$s sign --key FILE [--alg RS256|ES256|HS256|none] [--kid KID] [--sub SUB]\n"
	    "      [--iss ISS] [--aud AUD]... [--exp-in SECS | --no-exp] [--nbf-in SECS]\n"
	    "      [--iat-in SECS | --no-iat] [--claim NAME=STRING]... [--claim-json "
	    "NAME=JSON]...\n"
	    "      [--now UNIX_TIME]\n"
	    "      prints a token; FILE is a private key PEM, or for HS256 a secret file or JWKS\n"
	    "  %1$s verify --keys FILE [--iss ISS]... [--aud AUD]... [--alg LIST] [--leeway SECS]\n"
	    "      [--max-age SECS] [--require CLAIM]... [--no-exp-ok] [--now UNIX_TIME] TOKEN|-\n"
	    "      prints the claims (exit 0) or the reason for refusal (exit 1)\n",
	    prog);
}

static int die_usage(const char *msg)
{
	fprintf(stderr, "%s: %s\n", prog, msg);
	usage(stderr);
	return 2;
}

static long parse_long(const char *s, const char *what, int *ok)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end) {
		fprintf(stderr, "%s: %s: not an integer: '%s'\n", prog, what, s);
		*ok = 0;
	}
	return v;
}

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		return NULL;
	}
	buf = malloc(1 << 20);
	n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
	fclose(f);
	if (!buf)
		return NULL;
	buf[n] = '\0';
	*len = n;
	return buf;
}

static int write_file(const char *path, const char *data, size_t len, mode_t mode)
{
	FILE *f;

	unlink(path);
	f = fopen(path, "wb");
	if (!f || chmod(path, mode) < 0 || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		return -1;
	}
	return 0;
}

/* ---- keygen ------------------------------------------------------------- */

static char *bn_member(EVP_PKEY *k, const char *param, int pad)
{
	BIGNUM *bn = NULL;
	unsigned char buf[1024];
	int n;
	char *out = NULL;

	if (EVP_PKEY_get_bn_param(k, param, &bn) != 1)
		return NULL;
	n = pad ? BN_bn2binpad(bn, buf, pad) : BN_bn2bin(bn, buf);
	if (n > 0)
		out = tjwt_b64url_encode(buf, (size_t)n);
	BN_free(bn);
	return out;
}

/* The public JWK members that RFC 7638 thumbprints are computed over. */
static json_t *jwk_required(EVP_PKEY *k, const char *secret, size_t secret_len)
{
	char *a = NULL, *b = NULL;
	json_t *j = NULL;

	if (!k) {
		a = tjwt_b64url_encode(secret, secret_len);
		if (a)
			j = json_pack("{s:s, s:s}", "kty", "oct", "k", a);
	} else if (EVP_PKEY_is_a(k, "RSA")) {
		a = bn_member(k, OSSL_PKEY_PARAM_RSA_N, 0);
		b = bn_member(k, OSSL_PKEY_PARAM_RSA_E, 0);
		if (a && b)
			j = json_pack("{s:s, s:s, s:s}", "kty", "RSA", "n", a, "e", b);
	} else {
		a = bn_member(k, OSSL_PKEY_PARAM_EC_PUB_X, 32);
		b = bn_member(k, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
		if (a && b)
			j = json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "x", a,
			              "y", b);
	}
	free(a);
	free(b);
	return j;
}

static char *thumbprint(json_t *required)
{
	char *canon = json_dumps(required, JSON_COMPACT | JSON_SORT_KEYS);
	unsigned char md[32];
	unsigned int mdlen = 0;
	char *out = NULL;

	if (canon && EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(), NULL) == 1)
		out = tjwt_b64url_encode(md, mdlen);
	free(canon);
	return out;
}

static int cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"alg", required_argument, NULL, 'a'},
	    {"out", required_argument, NULL, 'o'},
	    {"name", required_argument, NULL, 'n'},
	    {"kid", required_argument, NULL, 'k'},
	    {"bits", required_argument, NULL, 'b'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *alg_name = NULL, *out = NULL, *name = NULL, *kid_opt = NULL;
	long bits = 2048;
	int c, ok = 1, rc = 1;
	tjwt_alg alg;
	EVP_PKEY *k = NULL;
	char secret[64] = "", lname[16], path[4096], *kid = NULL, *pem = NULL, *text = NULL;
	json_t *jwk = NULL, *jwks = NULL;
	BIO *bio = NULL;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			alg_name = optarg;
			break;
		case 'o':
			out = optarg;
			break;
		case 'n':
			name = optarg;
			break;
		case 'k':
			kid_opt = optarg;
			break;
		case 'b':
			bits = parse_long(optarg, "--bits", &ok);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return die_usage("keygen: bad option");
		}
	}
	if (!ok || !alg_name || !out || optind != argc)
		return die_usage("keygen needs --alg and --out");
	if (!(alg = tjwt_alg_from_name(alg_name)))
		return die_usage("keygen: --alg must be RS256, ES256 or HS256");
	if (bits < 2048 || bits > 16384)
		return die_usage("keygen: --bits must be 2048..16384");
	if (!name) {
		for (size_t i = 0; i <= strlen(alg_name) && i < sizeof lname; i++)
			lname[i] =
			    (char)(alg_name[i] >= 'A' && alg_name[i] <= 'Z' ? alg_name[i] + 32
			                                                    : alg_name[i]);
		lname[sizeof lname - 1] = '\0';
		name = lname;
	}
	if (mkdir(out, 0755) < 0 && errno != EEXIST) {
		fprintf(stderr, "%s: %s: %s\n", prog, out, strerror(errno));
		return 1;
	}

	if (alg == TJWT_HS256) {
		unsigned char raw[32];
		char *enc;
		/* Printable, so that the file survives editors; 43 bytes of base64url text is the
		 * secret. */
		if (RAND_bytes(raw, sizeof raw) != 1 ||
		    !(enc = tjwt_b64url_encode(raw, sizeof raw)))
			goto cleanup;
		snprintf(secret, sizeof secret, "%s", enc);
		free(enc);
		snprintf(path, sizeof path, "%s/%s-secret", out, name);
		char line[80];
		snprintf(line, sizeof line, "%s\n", secret);
		if (write_file(path, line, strlen(line), 0600) < 0)
			goto cleanup;
		printf("secret=%s\n", path);
	} else {
		k = alg == TJWT_RS256 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits)
		                      : EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		if (!k)
			goto ossl_error;
		BUF_MEM *mem;
		bio = BIO_new(BIO_s_mem());
		if (!bio || PEM_write_bio_PrivateKey(bio, k, NULL, NULL, 0, NULL, NULL) != 1)
			goto ossl_error;
		BIO_get_mem_ptr(bio, &mem);
		snprintf(path, sizeof path, "%s/%s-private.pem", out, name);
		if (write_file(path, mem->data, mem->length, 0600) < 0)
			goto cleanup;
		printf("private=%s\n", path);
		BIO_free(bio);
		bio = BIO_new(BIO_s_mem());
		if (!bio || PEM_write_bio_PUBKEY(bio, k) != 1)
			goto ossl_error;
		BIO_get_mem_ptr(bio, &mem);
		snprintf(path, sizeof path, "%s/%s-public.pem", out, name);
		if (write_file(path, mem->data, mem->length, 0644) < 0)
			goto cleanup;
		printf("public=%s\n", path);
	}
	jwk = jwk_required(k, secret, strlen(secret));
	if (!jwk)
		goto ossl_error;
	kid = kid_opt ? strdup(kid_opt) : thumbprint(jwk);
	if (!kid)
		goto ossl_error;
	json_object_set_new(jwk, "kid", json_string(kid));
	json_object_set_new(jwk, "use", json_string("sig"));
	json_object_set_new(jwk, "alg", json_string(tjwt_alg_name(alg)));
	jwks = json_pack("{s:[O]}", "keys", jwk);
	text = jwks ? json_dumps(jwks, JSON_INDENT(2)) : NULL;
	if (!text)
		goto ossl_error;
	snprintf(path, sizeof path, "%s/%s-jwks.json", out, name);
	if (write_file(path, text, strlen(text), alg == TJWT_HS256 ? 0600 : 0644) < 0)
		goto cleanup;
	printf("jwks=%s\nkid=%s\n", path, kid);
	rc = 0;
	goto cleanup;
ossl_error:
	fprintf(stderr, "%s: keygen failed\n", prog);
	ERR_print_errors_fp(stderr);
cleanup:
	OPENSSL_cleanse(secret, sizeof secret);
	BIO_free(bio);
	EVP_PKEY_free(k);
	json_decref(jwk);
	json_decref(jwks);
	free(kid);
	free(pem);
	free(text);
	return rc;
}

/* ---- sign ---------------------------------------------------------------- */

/* The HS256 secret from a secret file (one line end dropped) or a JWKS's first oct key. */
static unsigned char *load_secret(const char *path, size_t *len)
{
	size_t n = 0;
	char *data = read_file(path, &n);
	unsigned char *out = NULL;
	json_t *doc = NULL;

	if (!data)
		return NULL;
	if (n && data[strspn(data, " \t\r\n")] == '{' && (doc = json_loads(data, 0, NULL))) {
		json_t *keys = json_object_get(doc, "keys"), *jwk;
		json_t *list = keys ? json_incref(keys) : json_pack("[O]", doc);
		size_t i;
		json_array_foreach(list, i, jwk)
		{
			const char *k = json_string_value(json_object_get(jwk, "k"));
			if (k && (out = malloc(tjwt_b64url_decoded_max(strlen(k))))) {
				long m = tjwt_b64url_decode(k, strlen(k), out);
				if (m > 0) {
					*len = (size_t)m;
					break;
				}
				free(out);
				out = NULL;
			}
		}
		json_decref(list);
		json_decref(doc);
		if (!out)
			fprintf(stderr, "%s: %s: no oct key with \"k\"\n", prog, path);
		free(data);
		return out;
	}
	if (n && data[n - 1] == '\n') {
		n--;
		if (n && data[n - 1] == '\r')
			n--;
	}
	*len = n;
	return (unsigned char *)data;
}

static json_t *claim_value(const char *nv, int as_json, char **name)
{
	const char *eq = strchr(nv, '=');
	json_t *v;

	if (!eq || eq == nv)
		return NULL;
	*name = strndup(nv, (size_t)(eq - nv));
	v = as_json ? json_loads(eq + 1, JSON_DECODE_ANY, NULL) : json_string(eq + 1);
	if (!v) {
		free(*name);
		*name = NULL;
	}
	return v;
}

static int cmd_sign(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"key", required_argument, NULL, 'k'},
	    {"alg", required_argument, NULL, 'a'},
	    {"kid", required_argument, NULL, 'i'},
	    {"sub", required_argument, NULL, 's'},
	    {"iss", required_argument, NULL, 'I'},
	    {"aud", required_argument, NULL, 'A'},
	    {"exp-in", required_argument, NULL, 'e'},
	    {"no-exp", no_argument, NULL, 'E'},
	    {"nbf-in", required_argument, NULL, 'n'},
	    {"iat-in", required_argument, NULL, 't'},
	    {"no-iat", no_argument, NULL, 'T'},
	    {"claim", required_argument, NULL, 'c'},
	    {"claim-json", required_argument, NULL, 'j'},
	    {"now", required_argument, NULL, 'N'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *key_path = NULL, *alg_name = NULL, *kid = NULL;
	long exp_in = 3600, nbf_in = 0, iat_in = 0, now = (long)time(NULL);
	int c, ok = 1, rc = 1, no_exp = 0, no_iat = 0, has_nbf = 0;
	json_t *claims = json_object(), *aud = json_array(), *extra = json_object();
	tjwt_alg alg = 0;
	EVP_PKEY *pkey = NULL;
	unsigned char *secret = NULL;
	size_t secret_len = 0;
	char *token = NULL, err[512];

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *name = NULL;
		json_t *v;
		switch (c) {
		case 'k':
			key_path = optarg;
			break;
		case 'a':
			alg_name = optarg;
			break;
		case 'i':
			kid = optarg;
			break;
		case 's':
			json_object_set_new(claims, "sub", json_string(optarg));
			break;
		case 'I':
			json_object_set_new(claims, "iss", json_string(optarg));
			break;
		case 'A':
			json_array_append_new(aud, json_string(optarg));
			break;
		case 'e':
			exp_in = parse_long(optarg, "--exp-in", &ok);
			break;
		case 'E':
			no_exp = 1;
			break;
		case 'n':
			nbf_in = parse_long(optarg, "--nbf-in", &ok);
			has_nbf = 1;
			break;
		case 't':
			iat_in = parse_long(optarg, "--iat-in", &ok);
			break;
		case 'T':
			no_iat = 1;
			break;
		case 'N':
			now = parse_long(optarg, "--now", &ok);
			break;
		case 'c':
		case 'j':
			v = claim_value(optarg, c == 'j', &name);
			if (!v) {
				json_decref(claims);
				json_decref(aud);
				json_decref(extra);
				return die_usage(c == 'j' ? "--claim-json wants NAME=JSON"
				                          : "--claim wants NAME=VALUE");
			}
			json_object_set_new(extra, name, v);
			free(name);
			break;
		case 'h':
			usage(stdout);
			rc = 0;
			goto cleanup;
		default:
			rc = die_usage("sign: bad option");
			goto cleanup;
		}
	}
	if (!ok || optind != argc) {
		rc = die_usage("sign: bad arguments");
		goto cleanup;
	}
	if (!no_iat)
		json_object_set_new(claims, "iat", json_integer(now + iat_in));
	if (has_nbf)
		json_object_set_new(claims, "nbf", json_integer(now + nbf_in));
	if (!no_exp)
		json_object_set_new(claims, "exp", json_integer(now + exp_in));
	if (json_array_size(aud) == 1)
		json_object_set(claims, "aud", json_array_get(aud, 0));
	else if (json_array_size(aud) > 1)
		json_object_set(claims, "aud", aud);
	json_object_update(claims, extra); /* --claim may override anything, e.g. exp as a string */

	if (alg_name && !strcmp(alg_name, "none")) {
		/* An unsecured JWS, only for testing that servers refuse it. */
		json_t *hdr = json_pack("{s:s, s:s}", "alg", "none", "typ", "JWT");
		char *h = json_dumps(hdr, JSON_COMPACT), *p = json_dumps(claims, JSON_COMPACT);
		char *h64 = tjwt_b64url_encode(h, strlen(h)),
		     *p64 = tjwt_b64url_encode(p, strlen(p));
		printf("%s.%s.\n", h64, p64);
		free(h);
		free(p);
		free(h64);
		free(p64);
		json_decref(hdr);
		rc = 0;
		goto cleanup;
	}
	if (!key_path) {
		rc = die_usage("sign needs --key");
		goto cleanup;
	}
	if (alg_name && !(alg = tjwt_alg_from_name(alg_name))) {
		rc = die_usage("sign: --alg must be RS256, ES256, HS256 or none");
		goto cleanup;
	}
	if (alg != TJWT_HS256) {
		FILE *f = fopen(key_path, "r");
		if (f) {
			pkey = PEM_read_PrivateKey(f, NULL, NULL, NULL);
			fclose(f);
		}
		ERR_clear_error();
		if (pkey && !alg)
			alg = EVP_PKEY_is_a(pkey, "RSA") ? TJWT_RS256 : TJWT_ES256;
		if (!pkey && alg) {
			fprintf(stderr, "%s: %s: not a private key PEM\n", prog, key_path);
			goto cleanup;
		}
		if (!pkey)
			alg = TJWT_HS256; /* no --alg and not a private key: a secret */
	}
	if (alg == TJWT_HS256 && !(secret = load_secret(key_path, &secret_len)))
		goto cleanup;
	token = tjwt_sign(alg, pkey, secret, secret_len, kid, claims, err, sizeof err);
	if (!token) {
		fprintf(stderr, "%s: %s\n", prog, err);
		goto cleanup;
	}
	printf("%s\n", token);
	rc = 0;
cleanup:
	if (secret)
		OPENSSL_cleanse(secret, secret_len);
	free(secret);
	free(token);
	EVP_PKEY_free(pkey);
	json_decref(claims);
	json_decref(aud);
	json_decref(extra);
	return rc;
}

/* ---- verify -------------------------------------------------------------- */

static int cmd_verify(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"keys", required_argument, NULL, 'k'},
	    {"iss", required_argument, NULL, 'I'},
	    {"aud", required_argument, NULL, 'A'},
	    {"alg", required_argument, NULL, 'a'},
	    {"leeway", required_argument, NULL, 'l'},
	    {"max-age", required_argument, NULL, 'm'},
	    {"require", required_argument, NULL, 'r'},
	    {"no-exp-ok", no_argument, NULL, 'E'},
	    {"now", required_argument, NULL, 'N'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char *keys = NULL, *iss[MAX_LIST + 1] = {0}, *aud[MAX_LIST + 1] = {0},
	           *req[MAX_LIST + 1] = {0};
	size_t niss = 0, naud = 0, nreq = 0;
	tjwt_policy pol = {0};
	long now = 0;
	int c, ok = 1, rc = 1;
	char err[512], *token = NULL, *dump;
	tjwt_keyset *ks = NULL;
	tjwt_result res;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			keys = optarg;
			break;
		case 'I':
			if (niss < MAX_LIST)
				iss[niss++] = optarg;
			break;
		case 'A':
			if (naud < MAX_LIST)
				aud[naud++] = optarg;
			break;
		case 'r':
			if (nreq < MAX_LIST)
				req[nreq++] = optarg;
			break;
		case 'a':
			if (tjwt_algs_parse(optarg, &pol.algs, err, sizeof err) < 0)
				return die_usage(err);
			break;
		case 'l':
			pol.leeway = parse_long(optarg, "--leeway", &ok);
			break;
		case 'm':
			pol.max_age = parse_long(optarg, "--max-age", &ok);
			break;
		case 'E':
			pol.exp_optional = true;
			break;
		case 'N':
			now = parse_long(optarg, "--now", &ok);
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			return die_usage("verify: bad option");
		}
	}
	if (!ok || !keys || optind != argc - 1)
		return die_usage("verify needs --keys FILE and one TOKEN (or - for stdin)");
	if (!strcmp(argv[optind], "-")) {
		size_t n = 0;
		token = read_file("/dev/stdin", &n);
		if (!token)
			return 1;
		while (n && (token[n - 1] == '\n' || token[n - 1] == '\r' || token[n - 1] == ' '))
			token[--n] = '\0';
	} else {
		token = strdup(argv[optind]);
	}
	pol.issuers = iss;
	pol.audiences = aud;
	pol.required = req;
	if (!(ks = tjwt_keyset_load(keys, err, sizeof err))) {
		fprintf(stderr, "%s: %s\n", prog, err);
		free(token);
		return 2;
	}
	if (tjwt_verify(ks, &pol, token, strlen(token), (time_t)now, &res) != TJWT_OK) {
		fprintf(stderr, "%s: refused (%s): %s\n", prog, tjwt_status_name(res.status),
		        res.message);
		goto cleanup;
	}
	dump = json_dumps(res.claims, JSON_INDENT(2) | JSON_SORT_KEYS);
	printf("%s\n", dump ? dump : "{}");
	free(dump);
	rc = 0;
cleanup:
	tjwt_result_clear(&res);
	tjwt_keyset_unref(ks);
	free(token);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return die_usage("missing command");
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "keygen"))
		return cmd_keygen(argc - 1, argv + 1);
	if (!strcmp(argv[1], "sign"))
		return cmd_sign(argc - 1, argv + 1);
	if (!strcmp(argv[1], "verify"))
		return cmd_verify(argc - 1, argv + 1);
	return die_usage("unknown command");
}
