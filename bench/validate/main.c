/*
 * Validator benchmark on bench/validate_gen.mjs's cases: prints
 * `NAME validate_ns parse_validate_ns N bytes_ns value_ns` per case, the
 * median over REPS repetitions of ns per validation
 *   validate_ns        tjs_validate of a parsed (jansson) document
 *   parse_validate_ns  json_loadb + tjs_validate (jansson path)
 *   bytes_ns           tjs_validate_bytes (tjs_doc parse + validate)
 *   value_ns           tjs_validate_value of a parsed tjs_doc
 * like bench/validate_ajv.mjs. The text is the compact JSON the broker
 * forwards (tb_json_encode: shortest round-trip numbers, as JSON.stringify
 * gives ajv), so both sides read the same bytes.
 *   build/bench/validate CASES.json [REPS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tributary/json_encode.h"
#include "tributary/jsonschema.h"

struct pair {
	const tjs_schema *s;
	json_t *doc;
	char *text;
	size_t len;
	tjs_doc *tdoc;
};

enum mode { FROM_JSON, FROM_BYTES_JANSSON, FROM_BYTES, FROM_VALUE };

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static double run(const struct pair *p, size_t n, long iters, enum mode mode)
{
	double t0 = now_ns();
	long ok = 0;
	for (long k = 0; k < iters; k++) {
		for (size_t i = 0; i < n; i++) {
			switch (mode) {
			case FROM_BYTES_JANSSON: {
				json_t *d = json_loadb(p[i].text, p[i].len,
				                       JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
				ok += d && tjs_validate(p[i].s, d, NULL, 0);
				json_decref(d);
				break;
			}
			case FROM_BYTES:
				ok += tjs_validate_bytes(p[i].s, p[i].text, p[i].len,
				                         TJS_PARSE_ALLOW_NUL, NULL, 0);
				break;
			case FROM_VALUE:
				ok += tjs_validate_value(p[i].s, tjs_doc_root(p[i].tdoc), NULL, 0);
				break;
			default:
				ok += tjs_validate(p[i].s, p[i].doc, NULL, 0);
			}
		}
	}
	double ns = now_ns() - t0;
	if (ok != iters * (long)n) {
		fprintf(stderr, "validate bench: a valid instance was judged invalid\n");
		exit(1);
	}
	return ns;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double timed(const struct pair *p, size_t n, enum mode mode, int reps)
{
	long iters = 1;
	while (run(p, n, iters, mode) < 2e7)
		iters *= 2;
	iters *= 10; /* ~0.2 s per repetition */
	double samples[64];
	if (reps > 64)
		reps = 64;
	for (int r = 0; r < reps; r++)
		samples[r] = run(p, n, iters, mode) / ((double)iters * (double)n);
	qsort(samples, (size_t)reps, sizeof(double), cmp_double);
	return samples[reps / 2];
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s CASES.json [REPS]\n", argv[0]);
		return 2;
	}
	int reps = argc > 2 ? atoi(argv[2]) : 7;
	if (reps < 1)
		reps = 1;
	json_error_t je;
	json_t *cases = json_load_file(argv[1], JSON_ALLOW_NUL, &je);
	if (!json_is_array(cases)) {
		fprintf(stderr, "%s: %s\n", argv[1], je.text);
		return 2;
	}
	tjs_registry *reg = tjs_registry_new();
	if (!reg)
		return 2;
	size_t ci;
	json_t *c;
	json_array_foreach(cases, ci, c)
	{
		json_t *groups = json_object_get(c, "schemas");
		json_t *single = NULL;
		if (!groups) {
			single = json_array();
			json_t *g = json_pack("{sOsO}", "schema", json_object_get(c, "schema"),
			                      "instances", json_object_get(c, "instances"));
			json_array_append_new(single, g);
			groups = single;
		}
		size_t cap = 16, n = 0, ns = 0, skipped = 0;
		struct pair *pairs = malloc(cap * sizeof(*pairs));
		tjs_schema **schemas = calloc(json_array_size(groups) + 1, sizeof(*schemas));
		size_t gi;
		json_t *g;
		json_array_foreach(groups, gi, g)
		{
			char err[512];
			tjs_schema *s = tjs_compile(reg, json_object_get(g, "schema"), NULL, NULL,
			                            err, sizeof(err));
			if (!s) {
				fprintf(stderr, "%s: schema %zu not compiled: %s\n",
				        json_string_value(json_object_get(c, "name")), gi, err);
				skipped++;
				continue;
			}
			schemas[ns++] = s;
			size_t ii;
			json_t *doc;
			json_array_foreach(json_object_get(g, "instances"), ii, doc)
			{
				if (!tjs_validate(s, doc, NULL, 0)) {
					skipped++;
					continue;
				}
				if (n == cap) {
					cap *= 2;
					pairs = realloc(pairs, cap * sizeof(*pairs));
				}
				size_t len = 0;
				char *text = tb_json_encode(doc, &len);
				char perr[200];
				tjs_doc *td = text ? tjs_doc_parse(text, len, TJS_PARSE_ALLOW_NUL,
				                                   perr, sizeof(perr))
				                   : NULL;
				if (!td || !tjs_validate_value(s, tjs_doc_root(td), NULL, 0)) {
					/* both paths must agree on every benchmarked document */
					fprintf(stderr,
					        "%s: the bytes path disagrees on instance %zu of "
					        "schema %zu: %s\n",
					        json_string_value(json_object_get(c, "name")), ii,
					        gi, td ? "invalid" : perr);
					return 1;
				}
				pairs[n++] = (struct pair){s, doc, text, len, td};
			}
		}
		double v = timed(pairs, n, FROM_JSON, reps),
		       pv = timed(pairs, n, FROM_BYTES_JANSSON, reps);
		double bv = timed(pairs, n, FROM_BYTES, reps),
		       vv = timed(pairs, n, FROM_VALUE, reps);
		printf("%s %.0f %.0f %zu %.0f %.0f", json_string_value(json_object_get(c, "name")),
		       v, pv, n, bv, vv);
		if (skipped)
			printf(" skipped=%zu", skipped);
		printf("\n");
		fflush(stdout);
		for (size_t i = 0; i < n; i++) {
			free(pairs[i].text);
			tjs_doc_free(pairs[i].tdoc);
		}
		for (size_t i = 0; i < ns; i++)
			tjs_schema_free(schemas[i]);
		free(schemas);
		free(pairs);
		json_decref(single);
	}
	json_decref(cases);
	tjs_registry_free(reg);
	return 0;
}
