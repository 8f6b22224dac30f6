/*
 * Validator benchmark on bench/validate_gen.mjs's cases: prints
 * `NAME validate_ns parse_validate_ns N` per case, the median over REPS
 * repetitions of ns per validation from a parsed document and from its
 * bytes (jansson parse + validate), like bench/validate_ajv.mjs.
 *   build/bench/validate CASES.json [REPS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tributary/jsonschema.h"

struct pair {
	const tjs_schema *s;
	json_t *doc;
	char *text;
	size_t len;
};

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static double run(const struct pair *p, size_t n, long iters, bool from_bytes)
{
	double t0 = now_ns();
	long ok = 0;
	for (long k = 0; k < iters; k++) {
		for (size_t i = 0; i < n; i++) {
			if (from_bytes) {
				json_t *d = json_loadb(p[i].text, p[i].len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
				ok += d && tjs_validate(p[i].s, d, NULL, 0);
				json_decref(d);
			} else {
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

static double timed(const struct pair *p, size_t n, bool from_bytes, int reps)
{
	long iters = 1;
	while (run(p, n, iters, from_bytes) < 2e7)
		iters *= 2;
	iters *= 10; /* ~0.2 s per repetition */
	double samples[64];
	if (reps > 64)
		reps = 64;
	for (int r = 0; r < reps; r++)
		samples[r] = run(p, n, iters, from_bytes) / ((double)iters * (double)n);
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
			json_t *g = json_pack("{sOsO}", "schema", json_object_get(c, "schema"), "instances",
					      json_object_get(c, "instances"));
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
			tjs_schema *s = tjs_compile(reg, json_object_get(g, "schema"), NULL, NULL, err, sizeof(err));
			if (!s) {
				fprintf(stderr, "%s: schema %zu not compiled: %s\n", json_string_value(json_object_get(c, "name")),
					gi, err);
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
				char *text = json_dumps(doc, JSON_ENCODE_ANY | JSON_COMPACT);
				pairs[n++] = (struct pair){s, doc, text, strlen(text)};
			}
		}
		double v = timed(pairs, n, false, reps), pv = timed(pairs, n, true, reps);
		printf("%s %.0f %.0f %zu", json_string_value(json_object_get(c, "name")), v, pv, n);
		if (skipped)
			printf(" skipped=%zu", skipped);
		printf("\n");
		fflush(stdout);
		for (size_t i = 0; i < n; i++)
			free(pairs[i].text);
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
