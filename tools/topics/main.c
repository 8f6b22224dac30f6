/*
 * tributary-topics: the Kafka topics that tributary.json's "topics" section
 * wants, compared with what each cluster has (docs/topics.md).
 *
 *   tributary-topics plan|apply|verify --config tributary.json
 *                    [--cluster NAME] [--timeout MS]
 *
 *   plan    what apply would do: the missing topics it would create
 *   apply   creates the missing topics, then verifies
 *   verify  reports every topic whose settings differ (topic, setting,
 *           wanted, actual); finite retention on a "finite-ok" topic is a
 *           warning
 *
 * Every cluster with a policy other than "off" is checked (or --cluster).
 * Exit: 0 every topic as wanted (warnings allowed; for plan: nothing to
 * do), 1 otherwise or a cluster could not be asked, 2 usage or a bad
 * configuration.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tributary/kafka.h"
#include "tributary/topics.h"
#include "tributary/util.h"

enum topics_cmd { CMD_PLAN, CMD_APPLY, CMD_VERIFY };

static void usage(FILE *f)
{
	fprintf(f, "usage: tributary-topics plan|apply|verify --config tributary.json "
	           "[--cluster NAME] [--timeout MS]\n"
	           "  plan     the missing topics apply would create, and what it cannot fix\n"
	           "  apply    creates the missing topics, then verifies\n"
	           "  verify   every topic whose settings differ: topic, setting, wanted, actual\n"
	           "  --cluster NAME  only this cluster (default: every one with a policy)\n"
	           "  --timeout MS    per admin request (default: topics.admin_timeout_ms)\n"
	           "exit: 0 as wanted (plan: nothing to do), 1 not, 2 usage or bad config\n");
}

/* librdkafka's connection errors say less than the answer (or its absence). */
static void topics_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	if (getenv("TRIBUTARY_TOPICS_DEBUG"))
		fprintf(stderr, "librdkafka %d %s: %s\n", level, fac, buf);
}

static rd_kafka_t *topics_connect(const json_t *props, const char *cluster)
{
	char err[512], what[128];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	snprintf(what, sizeof(what), "clusters.%s", cluster);
	if (rd_kafka_conf_set(conf, "client.id", "tributary-topics", err, sizeof(err)) ||
	    tb_kafka_conf_apply(conf, props, what, err, sizeof(err))) {
		fprintf(stderr, "tributary-topics: %s\n", err);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_conf_set_log_cb(conf, topics_log);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "tributary-topics: %s: %s\n", what, err);
		rd_kafka_conf_destroy(conf);
	}
	return rk;
}

static const char *topics_verdict(enum topics_cmd cmd, const tb_topic_report *r)
{
	if (cmd == CMD_PLAN && r->verdict == TB_TOPIC_MISSING && !r->error[0])
		return "create";
	if (r->created && r->verdict == TB_TOPIC_OK)
		return "created";
	return tb_topic_verdict_name(r->verdict);
}

/* Prints one cluster's table; returns whether everything is as wanted. */
static bool topics_print(enum topics_cmd cmd, const tb_topics *t, const char *cluster,
                         const tb_topic_report *r, size_t n)
{
	bool ok = true;
	char parts[16], rf[16];
	for (size_t i = 0; i < n; i++) {
		snprintf(parts, sizeof(parts), "%d", r[i].partitions);
		snprintf(rf, sizeof(rf), "%d", r[i].replication_factor);
		printf("%-10s %-40s %-6s %10s %3s %-30s %s\n", cluster, r[i].topic,
		       r[i].exists ? "yes" : "no", r[i].exists ? parts : "-",
		       r[i].exists ? rf : "-", r[i].retention, topics_verdict(cmd, &r[i]));
		for (size_t d = 0; d < r[i].ndiffs; d++)
			printf("    %s: wanted %s, actual %s%s\n", r[i].diffs[d].setting,
			       r[i].diffs[d].wanted, r[i].diffs[d].actual,
			       r[i].diffs[d].warning ? " (warning: finite-ok)" : "");
		if (r[i].error[0])
			printf("    %s\n", r[i].error);
		if (r[i].verdict == TB_TOPIC_MISSING && cmd == CMD_PLAN && !r[i].error[0]) {
			const tb_topic_spec *s = r[i].spec;
			printf("    would create: partitions %d, replication factor %d",
			       s->partitions, s->replication_factor);
			for (size_t c = 0; c < s->nconfigs; c++)
				printf(", %s=%s", s->configs[c].name, s->configs[c].value);
			printf("%s\n", s->partitions < 0 || s->replication_factor < 0
			                   ? " (-1: the broker's default)"
			                   : "");
		}
		if (tb_topic_verdict_is_error(r[i].verdict))
			ok = false;
	}
	/* A template whose topics do not exist yet is checked when they do. */
	for (size_t s = 0; s < t->nspecs; s++) {
		const tb_topic_spec *spec = &t->specs[s];
		bool seen = false;
		if (strcmp(spec->cluster, cluster) || !spec->is_template)
			continue;
		for (size_t i = 0; i < n && !seen; i++)
			seen = r[i].spec == spec;
		if (!seen)
			printf("%-10s %-40s (template of %s: no topic yet)\n", cluster,
			       spec->topic.text, spec->origin);
	}
	return ok;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
	                                     {"cluster", required_argument, NULL, 'C'},
	                                     {"timeout", required_argument, NULL, 't'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	const char *config = NULL, *only = NULL;
	int timeout_ms = 0, c;
	while ((c = getopt_long(argc, argv, "c:C:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 'C':
			only = optarg;
			break;
		case 't':
			timeout_ms = atoi(optarg);
			if (timeout_ms < 1) {
				fprintf(stderr, "tributary-topics: --timeout: milliseconds, > 0\n");
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc - 1 || !config) {
		usage(stderr);
		return 2;
	}
	enum topics_cmd cmd;
	if (!strcmp(argv[optind], "plan"))
		cmd = CMD_PLAN;
	else if (!strcmp(argv[optind], "apply"))
		cmd = CMD_APPLY;
	else if (!strcmp(argv[optind], "verify"))
		cmd = CMD_VERIFY;
	else {
		usage(stderr);
		return 2;
	}

	json_error_t jerr;
	char err[1024];
	json_t *root = json_load_file(config, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		fprintf(stderr, "tributary-topics: %s: %s (line %d)\n", config, jerr.text,
		        jerr.line);
		return 2;
	}
	tb_topics t;
	if (tb_json_expand_env(root, err, sizeof(err)) ||
	    tb_topics_parse(&t, root, err, sizeof(err))) {
		fprintf(stderr, "tributary-topics: %s: %s\n", config, err);
		json_decref(root);
		return 2;
	}
	if (!timeout_ms)
		timeout_ms = t.admin_timeout_ms;
	if (only && tb_topics_policy_of(&t, only) == TB_TOPICS_OFF) {
		fprintf(stderr, "tributary-topics: --cluster %s: no topics policy for it in %s\n",
		        only, config);
		tb_topics_free(&t);
		json_decref(root);
		return 2;
	}

	int status = 0, checked = 0;
	printf("%-10s %-40s %-6s %10s %3s %-30s %s\n", "CLUSTER", "TOPIC", "EXISTS", "PARTITIONS",
	       "RF", "RETENTION", "VERDICT");
	for (size_t i = 0; i < t.nclusters; i++) {
		const char *name = t.clusters[i].name;
		if (t.clusters[i].policy == TB_TOPICS_OFF || (only && strcmp(only, name)))
			continue;
		checked++;
		rd_kafka_t *rk =
		    topics_connect(json_object_get(json_object_get(root, "clusters"), name), name);
		if (!rk) {
			status = 1;
			continue;
		}
		tb_topic_report *r;
		size_t n;
		if (tb_topics_check(rk, &t, name, NULL, 0, cmd == CMD_APPLY, timeout_ms, &r, &n,
		                    err, sizeof(err))) {
			fprintf(stderr, "tributary-topics: cluster %s: %s\n", name, err);
			status = 1;
		} else {
			if (!topics_print(cmd, &t, name, r, n))
				status = 1;
			for (size_t k = 0; k < n; k++)
				tb_topic_report_clear(&r[k]);
			free(r);
		}
		rd_kafka_destroy(rk);
	}
	if (!checked)
		fprintf(stderr,
		        "tributary-topics: %s: no cluster has a topics policy "
		        "(\"topics\": {\"clusters\": {...}})\n",
		        config);
	tb_topics_free(&t);
	json_decref(root);
	return status;
}
