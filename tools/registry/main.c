/*
 * tributary-registry: the schema catalog against a Confluent-compatible
 * Schema Registry, for CI pipelines (docs/registry.md).
 *
 *   tributary-registry push|check|diff --registry URL [options] CATALOG.json
 *
 *   push   registers every schema of the catalog (references first) as a
 *          JSON Schema under its subject; an unchanged schema is left as is
 *   check  asks the registry whether each schema is compatible with the
 *          latest version of its subject; nothing is written
 *   diff   prints what push would do (new subject, new version, unchanged)
 *
 * Exit: 0 done (check: all compatible), 1 incompatible schema or a registry
 * error (unreachable, refused credentials, ...), 2 bad usage or catalog.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"
#include "tributary/catalog.h"
#include "tributary/registry.h"

enum command { CMD_PUSH, CMD_CHECK, CMD_DIFF };

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: tributary-registry push|check|diff --registry URL [options] CATALOG.json\n"
	        "  --registry URL        the Schema Registry (also TRIBUTARY_REGISTRY_URL)\n"
	        "  --strategy S          subject of an event type: record (the type, default),\n"
	        "                        topic (TOPIC-value) or topic-record (TOPIC-TYPE)\n"
	        "  --topic TOPIC         the Kafka topic of the topic strategies\n"
	        "  --user USER           basic auth (Confluent Cloud: the API key)\n"
	        "  --password PASSWORD   (the API secret; also TRIBUTARY_REGISTRY_PASSWORD)\n"
	        "  --bearer TOKEN        bearer token instead (also TRIBUTARY_REGISTRY_BEARER)\n"
	        "  --ca FILE             CA bundle to verify the registry's certificate\n"
	        "  --timeout MS          per request (default 10000)\n"
	        "  --retries N           on a transport error, 429 or 5xx (default 3)\n"
	        "exit: 0 done, 1 incompatible schema or registry error, 2 bad usage or catalog\n");
}

static void print_error(const char *what, const char *subject, const tb_registry_error *e)
{
	fprintf(stderr, "tributary-registry: %s %s: %s\n", what, subject, e->message);
	if (e->http_status == 401 || e->http_status == 403)
		fprintf(stderr, "tributary-registry: the registry refused the credentials "
		                "(--user/--password or --bearer)\n");
}

/* The request for file f: its text, type JSON, its references at the
 * versions registered for their text (with `latest`: else at the latest
 * version of their subject). */
static void to_request(const plan *p, const plan_file *f, tb_registry_schema *s,
                       tb_registry_ref *refs, bool latest)
{
	memset(s, 0, sizeof *s);
	s->schema = f->text;
	s->schema_type = "JSON";
	s->refs = refs;
	for (size_t i = 0; i < f->nrefs; i++) {
		const plan_file *g = &p->files[f->refs[i].file];
		refs[s->nrefs].name = f->refs[i].name;
		refs[s->nrefs].subject = g->subject;
		refs[s->nrefs].version = g->version || !latest ? g->version : g->latest;
		s->nrefs++;
	}
}

static bool refs_known(const plan *p, const plan_file *f, const char **missing)
{
	for (size_t i = 0; i < f->nrefs; i++)
		if (!p->files[f->refs[i].file].version) {
			*missing = p->files[f->refs[i].file].subject;
			return false;
		}
	return true;
}

/* Is this exact schema (with these references) registered under its
 * subject? Sets f->version. 1 yes, 0 no (*latest: the subject's latest
 * version, 0 when the subject is new), -1 error. */
static int lookup(tb_registry *r, const plan *p, plan_file *f, int *latest)
{
	tb_registry_ref refs[f->nrefs + 1];
	tb_registry_schema s, out;
	tb_registry_error e;
	*latest = 0;
	to_request(p, f, &s, refs, false);
	if (!tb_registry_lookup(r, f->subject, &s, &out, &e)) {
		f->version = out.version;
		tb_registry_schema_clear(&out);
		return 1;
	}
	if (e.error_code == TB_REGISTRY_SUBJECT_NOT_FOUND)
		return 0;
	if (e.error_code != TB_REGISTRY_SCHEMA_NOT_FOUND) {
		print_error("lookup", f->subject, &e);
		return -1;
	}
	if (tb_registry_get_version(r, f->subject, TB_REGISTRY_LATEST, &out, &e)) {
		print_error("latest version of", f->subject, &e);
		return -1;
	}
	*latest = out.version;
	tb_registry_schema_clear(&out);
	return 0;
}

static int run(enum command cmd, tb_registry *r, plan *p)
{
	int failed = 0, incompatible = 0;
	for (size_t k = 0; k < p->norder; k++) {
		plan_file *f = &p->files[p->order[k]];
		int latest = 0;
		const char *missing = NULL;
		int found = refs_known(p, f, &missing) ? lookup(r, p, f, &latest) : 0;
		if (found < 0)
			return 1;
		if (missing && cmd != CMD_PUSH) {
			/* A reference that is not registered yet: then neither is
			 * this schema with it; its latest version tells which. */
			tb_registry_schema out;
			tb_registry_error e;
			latest = 0;
			if (!tb_registry_get_version(r, f->subject, TB_REGISTRY_LATEST, &out, &e)) {
				latest = out.version;
				tb_registry_schema_clear(&out);
			} else if (e.error_code != TB_REGISTRY_SUBJECT_NOT_FOUND) {
				print_error("latest version of", f->subject, &e);
				return 1;
			}
		}
		f->latest = found ? f->version : latest;
		if (found) {
			printf("unchanged    %s version %d (%s)\n", f->subject, f->version,
			       f->path);
			continue;
		}
		if (cmd == CMD_DIFF) {
			if (latest)
				printf("new version  %s version %d (%s)\n", f->subject, latest + 1,
				       f->path);
			else
				printf("new subject  %s (%s)\n", f->subject, f->path);
			/* What refers to it changes too: its reference would name a new version. */
			f->version = 0;
			continue;
		}
		if (cmd == CMD_CHECK) {
			if (!latest) {
				printf("new subject  %s (%s): nothing to be compatible with\n",
				       f->subject, f->path);
				continue;
			}
			/* A changed reference is checked under its own subject; this
			 * schema is checked with the reference's latest version. */
			const char *unknown = NULL;
			for (size_t i = 0; i < f->nrefs; i++) {
				const plan_file *g = &p->files[f->refs[i].file];
				if (!g->version && !g->latest)
					unknown = g->subject;
			}
			if (unknown) {
				fprintf(
				    stderr,
				    "tributary-registry: cannot check %s: its reference %s is a "
				    "new subject (push it first)\n",
				    f->subject, unknown);
				failed = 1;
				continue;
			}
			tb_registry_ref refs[f->nrefs + 1];
			tb_registry_schema s;
			tb_registry_error e;
			json_t *msgs = NULL;
			bool ok = false;
			char *level = NULL;
			to_request(p, f, &s, refs, true);
			if (tb_registry_get_config(r, f->subject, &level, &e)) {
				print_error("compatibility level of", f->subject, &e);
				return 1;
			}
			if (tb_registry_check(r, f->subject, TB_REGISTRY_LATEST, &s, &ok, &msgs,
			                      &e)) {
				print_error("compatibility check of", f->subject, &e);
				free(level);
				return 1;
			}
			printf("%s %s with version %d, %s (%s)\n",
			       ok ? "compatible  " : "INCOMPATIBLE", f->subject, latest, level,
			       f->path);
			free(level);
			if (!ok) {
				size_t i;
				json_t *m;
				json_array_foreach(msgs, i, m)
				    printf("    %s\n", json_string_value(m));
				incompatible = 1;
			}
			json_decref(msgs);
			continue;
		}
		/* push */
		tb_registry_ref refs[f->nrefs + 1];
		tb_registry_schema s;
		tb_registry_error e;
		int id;
		to_request(p, f, &s, refs, false);
		if (tb_registry_register(r, f->subject, &s, &id, &e)) {
			print_error("register", f->subject, &e);
			return 1;
		}
		tb_registry_schema out;
		if (tb_registry_lookup(r, f->subject, &s, &out, &e)) {
			print_error("lookup after registering", f->subject, &e);
			return 1;
		}
		f->version = out.version;
		tb_registry_schema_clear(&out);
		printf("registered   %s version %d id %d (%s)\n", f->subject, f->version, id,
		       f->path);
	}
	return incompatible || failed ? 1 : 0;
}

static int parse_num(const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"registry", required_argument, NULL, 'r'},
	                                     {"strategy", required_argument, NULL, 's'},
	                                     {"topic", required_argument, NULL, 't'},
	                                     {"user", required_argument, NULL, 'u'},
	                                     {"password", required_argument, NULL, 'p'},
	                                     {"bearer", required_argument, NULL, 'b'},
	                                     {"ca", required_argument, NULL, 'c'},
	                                     {"timeout", required_argument, NULL, 'T'},
	                                     {"retries", required_argument, NULL, 'R'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	tb_registry_opts ro = {.url = getenv("TRIBUTARY_REGISTRY_URL"),
	                       .password = getenv("TRIBUTARY_REGISTRY_PASSWORD"),
	                       .bearer = getenv("TRIBUTARY_REGISTRY_BEARER")};
	enum strategy strategy = STRATEGY_RECORD;
	const char *topic = NULL;
	int o;
	long num;
	while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (o) {
		case 'r':
			ro.url = optarg;
			break;
		case 's':
			if (!strcmp(optarg, "record"))
				strategy = STRATEGY_RECORD;
			else if (!strcmp(optarg, "topic"))
				strategy = STRATEGY_TOPIC;
			else if (!strcmp(optarg, "topic-record"))
				strategy = STRATEGY_TOPIC_RECORD;
			else {
				fprintf(stderr,
				        "tributary-registry: --strategy %s: record, topic or "
				        "topic-record\n",
				        optarg);
				return 2;
			}
			break;
		case 't':
			topic = optarg;
			break;
		case 'u':
			ro.username = optarg;
			break;
		case 'p':
			ro.password = optarg;
			break;
		case 'b':
			ro.bearer = optarg;
			break;
		case 'c':
			ro.ca_file = optarg;
			break;
		case 'T':
			if (parse_num(optarg, 1, 3600000, &num)) {
				fprintf(
				    stderr,
				    "tributary-registry: --timeout: milliseconds, 1 to 3600000\n");
				return 2;
			}
			ro.timeout_ms = num;
			break;
		case 'R':
			if (parse_num(optarg, 0, 100, &num)) {
				fprintf(stderr, "tributary-registry: --retries: 0 to 100\n");
				return 2;
			}
			ro.retries = num ? (int)num : -1; /* the client's -1: none */
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind + 2 != argc) {
		usage(stderr);
		return 2;
	}
	enum command cmd;
	if (!strcmp(argv[optind], "push"))
		cmd = CMD_PUSH;
	else if (!strcmp(argv[optind], "check"))
		cmd = CMD_CHECK;
	else if (!strcmp(argv[optind], "diff"))
		cmd = CMD_DIFF;
	else {
		fprintf(stderr, "tributary-registry: unknown command '%s' (push, check or diff)\n",
		        argv[optind]);
		return 2;
	}
	const char *catalog = argv[optind + 1];
	if (!ro.url) {
		fprintf(stderr, "tributary-registry: --registry URL is required\n");
		return 2;
	}
	if (strategy != STRATEGY_RECORD && !topic) {
		fprintf(stderr,
		        "tributary-registry: --strategy topic and topic-record need --topic\n");
		return 2;
	}
	if (ro.password && !ro.username) {
		if (getenv("TRIBUTARY_REGISTRY_PASSWORD") &&
		    ro.password == getenv("TRIBUTARY_REGISTRY_PASSWORD"))
			ro.password = NULL;
		else {
			fprintf(stderr, "tributary-registry: --password needs --user\n");
			return 2;
		}
	}
	if (ro.username && ro.bearer) {
		if (getenv("TRIBUTARY_REGISTRY_BEARER") &&
		    ro.bearer == getenv("TRIBUTARY_REGISTRY_BEARER"))
			ro.bearer = NULL;
		else {
			fprintf(stderr,
			        "tributary-registry: --bearer and --user exclude each other\n");
			return 2;
		}
	}
	if (ro.username && !ro.password) {
		fprintf(stderr, "tributary-registry: --user needs --password (or "
		                "TRIBUTARY_REGISTRY_PASSWORD)\n");
		return 2;
	}

	/* The schemas must compile before anything reaches the registry. */
	char err[1024];
	tb_catalog *cat = tb_catalog_load(catalog, err, sizeof err);
	if (!cat) {
		fprintf(stderr, "tributary-registry: %s\n", err);
		return 2;
	}
	tb_catalog_free(cat);
	plan p;
	if (plan_load(&p, catalog, strategy, topic, err, sizeof err)) {
		fprintf(stderr, "tributary-registry: %s\n", err);
		plan_free(&p);
		return 2;
	}
	tb_registry *r = tb_registry_new(&ro, err, sizeof err);
	if (!r) {
		fprintf(stderr, "tributary-registry: %s\n", err);
		plan_free(&p);
		return 2;
	}
	int rc = run(cmd, r, &p);
	tb_registry_free(r);
	plan_free(&p);
	return rc;
}
