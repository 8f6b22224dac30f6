/*
 * tributary-validate: validates JSON documents against a JSON Schema, or
 * runs JSON-Schema-Test-Suite files against the validator.
 *
 *   tributary-validate [--draft N] [--format-assert] SCHEMA.json INSTANCE.json...
 *   tributary-validate --suite PATH... [--remotes DIR] [--draft N] [--format-assert]
 *                      [--known-failures FILE]
 *
 * In suite mode every test also runs through the bytes path (the instance
 * re-encoded, then tjs_validate_bytes), which must give the same verdict and
 * the same errors (locations, messages, order) as tjs_validate.
 *
 * Exit: 0 all valid / all tests passed, 1 invalid instance / failed test,
 * 2 bad schema, unreadable file or bad usage.
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tributary/json_encode.h"
#include "tributary/jsonschema.h"

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: tributary-validate [--draft N] [--format-assert] SCHEMA.json INSTANCE.json...\n"
	    "       tributary-validate --suite PATH... [--remotes DIR] [--draft N] "
	    "[--format-assert]\n"
	    "                          [--known-failures FILE]\n"
	    "  --draft N           4, 6, 7, 2019-09 or 2020-12: dialect of schemas without "
	    "$schema\n"
	    "  --format-assert     `format` asserts instead of annotating\n"
	    "  --suite             PATHs are JSON-Schema-Test-Suite files or folders of them\n"
	    "  --remotes DIR       the suite's remotes/, served as http://localhost:1234/\n"
	    "  --known-failures F  lines `FILE: CASE / TEST  # reason` for optional tests\n"
	    "                      that are expected to fail\n");
}

static int parse_draft(const char *s, tjs_draft *d)
{
	if (!strncmp(s, "draft", 5))
		s += 5;
	if (!strcmp(s, "4") || !strcmp(s, "-04"))
		*d = TJS_DRAFT_4;
	else if (!strcmp(s, "6") || !strcmp(s, "-06"))
		*d = TJS_DRAFT_6;
	else if (!strcmp(s, "7") || !strcmp(s, "-07"))
		*d = TJS_DRAFT_7;
	else if (!strcmp(s, "2019") || !strcmp(s, "2019-09"))
		*d = TJS_DRAFT_2019_09;
	else if (!strcmp(s, "2020") || !strcmp(s, "2020-12"))
		*d = TJS_DRAFT_2020_12;
	else
		return -1;
	return 0;
}

/* Instances may hold integers beyond 64 bits (the suite's bignum tests):
 * jansson refuses those, so such a document is read again with every
 * integer as a double, which the validator compares numerically. */
static json_t *load_json(const char *path, char *err, size_t errlen)
{
	json_error_t je;
	size_t flags = JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL;
	json_t *j = json_load_file(path, flags, &je);
	if (!j && strstr(je.text, "too big"))
		j = json_load_file(path, flags | JSON_DECODE_INT_AS_REAL, &je);
	if (!j)
		snprintf(err, errlen, "%s:%d:%d: %s", path, je.line, je.column, je.text);
	return j;
}

static int validate_files(tjs_registry *reg, const tjs_options *opts, int argc, char **argv)
{
	char err[1024];
	json_t *schema = load_json(argv[0], err, sizeof(err));
	if (!schema) {
		fprintf(stderr, "tributary-validate: %s\n", err);
		return 2;
	}
	char real[PATH_MAX], base[PATH_MAX + 8];
	snprintf(base, sizeof(base), "file://%s", realpath(argv[0], real) ? real : argv[0]);
	tjs_schema *s = tjs_compile(reg, schema, base, opts, err, sizeof(err));
	json_decref(schema);
	if (!s) {
		fprintf(stderr, "tributary-validate: %s: %s\n", argv[0], err);
		return 2;
	}
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		json_t *inst = load_json(argv[i], err, sizeof(err));
		if (!inst) {
			fprintf(stderr, "tributary-validate: %s\n", err);
			rc = 2;
			continue;
		}
		tjs_result res = {0};
		if (tjs_validate(s, inst, &res, 0)) {
			printf("%s: valid\n", argv[i]);
		} else {
			if (rc == 0)
				rc = 1;
			for (size_t e = 0; e < res.count; e++)
				printf("%s: %s: %s (keyword %s)\n", argv[i],
				       res.errors[e].instance_location[0]
				           ? res.errors[e].instance_location
				           : "/",
				       res.errors[e].message,
				       res.errors[e].keyword_location[0]
				           ? res.errors[e].keyword_location
				           : "/");
		}
		tjs_result_clear(&res);
		json_decref(inst);
	}
	tjs_schema_free(s);
	return rc;
}

/* ---- test suite ---- */

static bool same_error(const tjs_error *a, const tjs_error *b)
{
	return !strcmp(a->instance_location, b->instance_location) &&
	       !strcmp(a->keyword_location, b->keyword_location) && !strcmp(a->message, b->message);
}

/* The bytes path (tjs_doc) against the jansson path on one instance:
 * NULL when they agree, else what differs (static text). `raw` is the
 * instance as the suite's file spells it (its number literals). */
static const char *bytes_path_differs(const tjs_schema *s, const json_t *data, const tjs_value *raw,
                                      bool want)
{
	/* shortest round-trip numbers, as clients write them and as
	 * tjs_value_dump writes a double: any difference is a kept literal */
	char *text = tb_json_encode(data, NULL), *own = raw ? tjs_value_dump(raw, NULL) : NULL;
	if (!text || (raw && !own)) {
		free(text);
		free(own);
		return "instance not encoded";
	}
	/* Numbers jansson rounds (bignums): the literals go to the bytes path,
	 * which keeps them exactly, so its verdict is checked against the
	 * suite's and its messages (which show the literals) are its own. */
	bool literals = own && strcmp(own, text);
	if (literals) {
		free(text);
		text = own;
		own = NULL;
	}
	tjs_result a = {0}, b = {0};
	bool va = literals ? want : tjs_validate(s, data, &a, 0);
	bool vb = tjs_validate_bytes(s, text, strlen(text), TJS_PARSE_ALLOW_NUL, &b, 0);
	bool quick = tjs_validate_bytes(s, text, strlen(text), TJS_PARSE_ALLOW_NUL, NULL, 0);
	const char *why = NULL;
	if (vb != va || quick != va)
		why = "bytes path gave another verdict";
	else if (!literals && a.count != b.count)
		why = "bytes path gave another number of errors";
	for (size_t i = 0; !why && !literals && i < a.count; i++)
		if (!same_error(&a.errors[i], &b.errors[i]))
			why = "bytes path gave other errors";
	tjs_result_clear(&a);
	tjs_result_clear(&b);
	free(text);
	free(own);
	return why;
}

/* The file as tjs_doc reads it (number literals kept), NULL if it cannot. */
static tjs_doc *load_doc(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	do {
		if (len == cap) {
			char *g = realloc(buf, cap = cap ? 2 * cap : 65536);
			if (!g)
				break;
			buf = g;
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	fclose(f);
	tjs_doc *doc = buf ? tjs_doc_parse(buf, len, TJS_PARSE_ALLOW_NUL, NULL, 0) : NULL;
	free(buf);
	return doc;
}

struct known {
	char *file, *test, *reason;
	bool seen;
};

struct suite {
	tjs_registry *reg;
	tjs_options opts;
	bool draft_forced;
	struct known *known;
	size_t nknown;
	size_t passed, failed, expected;
};

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

static int load_known(struct suite *st, const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "tributary-validate: %s: %s\n", path, strerror(errno));
		return -1;
	}
	char line[2048];
	int lineno = 0, rc = 0;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		char *l = trim(line);
		if (!*l || *l == '#')
			continue;
		char *hash = strstr(l, " #");
		char *colon = strstr(l, ": ");
		if (!hash || !colon || colon > hash || !*trim(hash + 2)) {
			fprintf(stderr, "%s:%d: expected `FILE: CASE / TEST  # reason`\n", path,
			        lineno);
			rc = -1;
			continue;
		}
		*hash = '\0';
		*colon = '\0';
		if (!strstr(l, "optional/")) {
			fprintf(stderr, "%s:%d: only optional tests may be known failures\n", path,
			        lineno);
			rc = -1;
			continue;
		}
		struct known *k = realloc(st->known, (st->nknown + 1) * sizeof(*k));
		if (!k) {
			rc = -1;
			break;
		}
		st->known = k;
		k[st->nknown++] = (struct known){strdup(trim(l)), strdup(trim(colon + 2)),
		                                 strdup(trim(hash + 2)), false};
	}
	fclose(f);
	return rc;
}

static bool path_has_suffix(const char *path, const char *suffix)
{
	size_t n = strlen(path), m = strlen(suffix);
	return m <= n && strcmp(path + n - m, suffix) == 0 && (m == n || path[n - m - 1] == '/');
}

static struct known *find_known(struct suite *st, const char *file, const char *test)
{
	for (size_t i = 0; i < st->nknown; i++)
		if (strcmp(st->known[i].test, test) == 0 &&
		    path_has_suffix(file, st->known[i].file))
			return &st->known[i];
	return NULL;
}

static tjs_draft draft_of_path(const char *path, tjs_draft fallback)
{
	static const struct {
		const char *dir;
		tjs_draft d;
	} dirs[] = {{"/draft4/", TJS_DRAFT_4},
	            {"/draft6/", TJS_DRAFT_6},
	            {"/draft7/", TJS_DRAFT_7},
	            {"/draft2019-09/", TJS_DRAFT_2019_09},
	            {"/draft2020-12/", TJS_DRAFT_2020_12}};
	char buf[PATH_MAX + 2];
	snprintf(buf, sizeof(buf), "/%s/", path);
	tjs_draft d = fallback;
	const char *best = NULL;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		const char *p = strstr(buf, dirs[i].dir);
		while (p) {
			if (!best || p > best) {
				best = p;
				d = dirs[i].d;
			}
			p = strstr(p + 1, dirs[i].dir);
		}
	}
	return d;
}

static void run_file(struct suite *st, const char *path)
{
	char err[1024];
	json_t *doc = load_json(path, err, sizeof(err));
	if (!doc || !json_is_array(doc)) {
		printf("%s: cannot load: %s\n", path, doc ? "not an array of test cases" : err);
		json_decref(doc);
		st->failed++;
		return;
	}
	tjs_doc *raw = load_doc(path);
	tjs_options o = st->opts;
	if (!st->draft_forced)
		o.default_draft = draft_of_path(path, o.default_draft);
	size_t passed = 0, failed = 0, expected = 0;
	char *report = NULL;
	size_t reportlen = 0;
	FILE *rep = open_memstream(&report, &reportlen);
	size_t ci;
	json_t *tc;
	json_array_foreach(doc, ci, tc)
	{
		const char *cdesc = json_string_value(json_object_get(tc, "description"));
		json_t *schema = json_object_get(tc, "schema");
		json_t *tests = json_object_get(tc, "tests");
		tjs_schema *s =
		    schema ? tjs_compile(st->reg, schema, NULL, &o, err, sizeof(err)) : NULL;
		size_t ti;
		json_t *t;
		json_array_foreach(tests, ti, t)
		{
			const char *tdesc = json_string_value(json_object_get(t, "description"));
			bool want = json_is_true(json_object_get(t, "valid"));
			bool got = false, ok;
			const char *differs = NULL;
			if (s) {
				got = tjs_validate(s, json_object_get(t, "data"), NULL, 0);
				ok = got == want;
				const tjs_value *rt =
				    tjs_value_get(tjs_value_at(tjs_doc_root(raw), ci), "tests");
				const tjs_value *rd = tjs_value_get(tjs_value_at(rt, ti), "data");
				if (ok && (differs = bytes_path_differs(
				               s, json_object_get(t, "data"), rd, want)))
					ok = false;
			} else {
				ok = false;
			}
			char name[1024];
			snprintf(name, sizeof(name), "%s / %s", cdesc ? cdesc : "?",
			         tdesc ? tdesc : "?");
			struct known *k = find_known(st, path, name);
			if (k)
				k->seen = true;
			if (ok) {
				passed++;
				if (k && rep)
					fprintf(rep,
					        "  PASS (listed as known failure, remove it) %s\n",
					        name);
			} else if (k) {
				expected++;
				if (rep)
					fprintf(rep, "  known failure: %s (%s)\n", name, k->reason);
			} else {
				failed++;
				if (rep) {
					if (differs)
						fprintf(rep, "  FAIL %s: %s\n", name, differs);
					else if (s)
						fprintf(rep, "  FAIL %s: expected %s\n", name,
						        want ? "valid" : "invalid");
					else
						fprintf(rep, "  FAIL %s: schema not compiled: %s\n",
						        name, err);
				}
			}
		}
		tjs_schema_free(s);
	}
	if (rep)
		fclose(rep);
	printf("%s: %zu passed, %zu failed", path, passed, failed);
	if (expected)
		printf(", %zu known failures", expected);
	printf("\n");
	if (report && reportlen)
		fputs(report, stdout);
	free(report);
	st->passed += passed;
	st->failed += failed;
	st->expected += expected;
	json_decref(doc);
	tjs_doc_free(raw);
}

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void run_path(struct suite *st, const char *path)
{
	struct stat sb;
	if (stat(path, &sb) < 0) {
		printf("%s: %s\n", path, strerror(errno));
		st->failed++;
		return;
	}
	if (!S_ISDIR(sb.st_mode)) {
		run_file(st, path);
		return;
	}
	DIR *d = opendir(path);
	if (!d) {
		printf("%s: %s\n", path, strerror(errno));
		st->failed++;
		return;
	}
	char **names = NULL;
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0) {
			char **nn = realloc(names, (n + 1) * sizeof(*nn));
			if (!nn)
				break;
			names = nn;
			names[n] = malloc(strlen(path) + l + 2);
			if (names[n])
				sprintf(names[n++], "%s/%s", path, e->d_name);
		}
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_strp);
	for (size_t i = 0; i < n; i++) {
		run_file(st, names[i]);
		free(names[i]);
	}
	free(names);
}

static int add_remotes(tjs_registry *reg, const char *dir, const char *rel)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s%s%s", dir, *rel ? "/" : "", rel);
	DIR *d = opendir(path);
	if (!d) {
		fprintf(stderr, "tributary-validate: %s: %s\n", path, strerror(errno));
		return -1;
	}
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d)) && rc == 0) {
		if (e->d_name[0] == '.')
			continue;
		char sub[PATH_MAX], full[PATH_MAX * 2];
		snprintf(sub, sizeof(sub), "%s%s%s", rel, *rel ? "/" : "", e->d_name);
		snprintf(full, sizeof(full), "%s/%s", dir, sub);
		struct stat sb;
		if (stat(full, &sb) < 0)
			continue;
		if (S_ISDIR(sb.st_mode)) {
			rc = add_remotes(reg, dir, sub);
		} else if (strlen(sub) > 5 && !strcmp(sub + strlen(sub) - 5, ".json")) {
			char err[512], uri[PATH_MAX + 32];
			json_t *doc = load_json(full, err, sizeof(err));
			snprintf(uri, sizeof(uri), "http://localhost:1234/%s", sub);
			if (!doc || tjs_registry_add(reg, uri, doc, err, sizeof(err)) < 0) {
				fprintf(stderr, "tributary-validate: remote %s: %s\n", full, err);
				rc = -1;
			}
			json_decref(doc);
		}
	}
	closedir(d);
	return rc;
}

/* <suite>/remotes for a path inside <suite>/tests/... */
static char *guess_remotes(const char *path)
{
	char real[PATH_MAX];
	if (!realpath(path, real))
		return NULL;
	char *t = strstr(real, "/tests/");
	if (!t)
		return NULL;
	*t = '\0';
	char *r = malloc(strlen(real) + 10);
	if (!r)
		return NULL;
	sprintf(r, "%s/remotes", real);
	struct stat sb;
	if (stat(r, &sb) < 0 || !S_ISDIR(sb.st_mode)) {
		free(r);
		return NULL;
	}
	return r;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {{"draft", required_argument, NULL, 'd'},
	                                         {"format-assert", no_argument, NULL, 'f'},
	                                         {"suite", no_argument, NULL, 's'},
	                                         {"remotes", required_argument, NULL, 'r'},
	                                         {"known-failures", required_argument, NULL, 'k'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {NULL, 0, NULL, 0}};
	tjs_options opts = {0};
	bool suite = false, draft_forced = false;
	const char *remotes = NULL, *known = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (parse_draft(optarg, &opts.default_draft) < 0) {
				fprintf(stderr, "tributary-validate: unknown draft %s\n", optarg);
				return 2;
			}
			draft_forced = true;
			break;
		case 'f':
			opts.format_assert = true;
			break;
		case 's':
			suite = true;
			break;
		case 'r':
			remotes = optarg;
			break;
		case 'k':
			known = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < (suite ? 1 : 2)) {
		usage(stderr);
		return 2;
	}
	tjs_registry *reg = tjs_registry_new();
	if (!reg) {
		fprintf(stderr, "tributary-validate: cannot create the schema registry\n");
		return 2;
	}
	int rc;
	if (!suite) {
		rc = validate_files(reg, &opts, argc, argv);
		tjs_registry_free(reg);
		return rc;
	}
	struct suite st = {.reg = reg, .opts = opts, .draft_forced = draft_forced};
	char *guessed = remotes ? NULL : guess_remotes(argv[0]);
	if (guessed)
		remotes = guessed;
	rc = 0;
	if (remotes && add_remotes(reg, remotes, "") < 0)
		rc = 2;
	if (known && load_known(&st, known) < 0)
		rc = 2;
	if (rc == 0) {
		for (int i = 0; i < argc; i++)
			run_path(&st, argv[i]);
		printf("%zu passed, %zu failed", st.passed, st.failed);
		if (st.expected)
			printf(", %zu known failures", st.expected);
		printf("\n");
		rc = st.failed ? 1 : 0;
	}
	for (size_t i = 0; i < st.nknown; i++) {
		free(st.known[i].file);
		free(st.known[i].test);
		free(st.known[i].reason);
	}
	free(st.known);
	free(guessed);
	tjs_registry_free(reg);
	return rc;
}
