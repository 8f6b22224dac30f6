/*
 * JWT verification throughput: verifications per second on one thread for
 * RS256 (2048-bit), ES256 (P-256) and HS256, through tjwt_verify exactly as
 * the broker calls it (header parse, key selection, signature, claims).
 * Each algorithm runs REPS timed rounds; the median round is reported.
 *
 *   build/bench/jwt [--reps N] [--round-ms MS] [--json]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "tributary/jwt.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static tjwt_keyset *public_set(EVP_PKEY *k)
{
	BIO *bio = BIO_new(BIO_s_mem());
	BUF_MEM *mem;
	char err[256];
	tjwt_keyset *ks;

	PEM_write_bio_PUBKEY(bio, k);
	BIO_get_mem_ptr(bio, &mem);
	ks = tjwt_keyset_parse(mem->data, mem->length, "bench", err, sizeof err);
	if (!ks)
		fprintf(stderr, "bench: %s\n", err);
	BIO_free(bio);
	return ks;
}

int main(int argc, char **argv)
{
	int reps = 7, round_ms = 300, json = 0;
	static const char secret[] = "bench-secret-0123456789abcdef0123456789";
	static const char *const iss[] = {"https://issuer.bench", NULL}, *const aud[] = {
	                                                                     "tributary", NULL};
	tjwt_policy pol = {.issuers = iss, .audiences = aud, .leeway = 30};

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--reps") && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--round-ms") && i + 1 < argc)
			round_ms = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--json"))
			json = 1;
		else {
			fprintf(stderr, "usage: %s [--reps N] [--round-ms MS] [--json]\n", argv[0]);
			return 2;
		}
	}
	if (reps < 1 || round_ms < 10)
		return 2;

	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	EVP_PKEY *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	char err[256];
	json_t *claims = json_pack("{s:s, s:s, s:s, s:I, s:I, s:s}", "sub", "user-0001", "iss",
	                           iss[0], "aud", aud[0], "iat", (json_int_t)time(NULL), "exp",
	                           (json_int_t)time(NULL) + 3600, "preferred_username", "alice");
	struct {
		const char *name;
		tjwt_keyset *ks;
		char *token;
	} cases[] = {
	    {"RS256", public_set(rsa),
	     tjwt_sign(TJWT_RS256, rsa, NULL, 0, "r", claims, err, sizeof err)},
	    {"ES256", public_set(ec),
	     tjwt_sign(TJWT_ES256, ec, NULL, 0, "e", claims, err, sizeof err)},
	    {"HS256", tjwt_keyset_from_secret(secret, strlen(secret), NULL, err, sizeof err),
	     tjwt_sign(TJWT_HS256, NULL, secret, strlen(secret), "h", claims, err, sizeof err)},
	};
	double *rates = calloc((size_t)reps, sizeof *rates);
	int rc = 0;

	if (json)
		printf("{\"benchmark\":\"jwt_verify\",\"reps\":%d,\"round_ms\":%d,\"results\":[",
		       reps, round_ms);
	for (size_t c = 0; c < 3; c++) {
		if (!cases[c].ks || !cases[c].token) {
			fprintf(stderr, "bench: setup failed for %s\n", cases[c].name);
			return 1;
		}
		for (int r = 0; r < reps; r++) {
			double t0 = now_s(), t;
			long n = 0;
			do {
				/* Batches of 16 keep the clock out of the measurement. */
				for (int b = 0; b < 16; b++, n++) {
					tjwt_result res;
					if (tjwt_verify(cases[c].ks, &pol, cases[c].token,
					                strlen(cases[c].token), 0, &res)) {
						fprintf(stderr, "bench: %s: %s\n", cases[c].name,
						        res.message);
						return 1;
					}
					tjwt_result_clear(&res);
				}
				t = now_s() - t0;
			} while (t * 1000 < round_ms);
			rates[r] = (double)n / t;
		}
		qsort(rates, (size_t)reps, sizeof *rates, cmp_double);
		if (json)
			printf("%s{\"alg\":\"%s\",\"median_per_s\":%.0f,\"min_per_s\":%.0f,\"max_"
			       "per_s\":%.0f,"
			       "\"token_bytes\":%zu}",
			       c ? "," : "", cases[c].name, rates[reps / 2], rates[0],
			       rates[reps - 1], strlen(cases[c].token));
		else
			printf("jwt verify %s: median %.0f/s (min %.0f, max %.0f over %d rounds of "
			       "%d ms; token %zu B)\n",
			       cases[c].name, rates[reps / 2], rates[0], rates[reps - 1], reps,
			       round_ms, strlen(cases[c].token));
		tjwt_keyset_unref(cases[c].ks);
		free(cases[c].token);
	}
	if (json)
		printf("]}\n");
	free(rates);
	json_decref(claims);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
	return rc;
}
