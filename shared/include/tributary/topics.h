/*
 * Kafka topics as tributary.json wants them (the "topics" section): which
 * topics each cluster holds (the ingest routes' topics and mirrors, the
 * outbound routes' topics), their partitions, replication factor and topic
 * configs, and what to do about a difference. Shared by the plugin and
 * tributary-topics; docs/topics.md has the user's side.
 *
 *   tb_topics_parse    the section, checked (every bad value names its option)
 *   tb_topics_compare  desired vs actual for one topic: a report
 *   tb_topics_check    one cluster, through librdkafka's Admin API: list,
 *                      describe, create the missing ones (optional), compare
 */
#ifndef TRIBUTARY_TOPICS_H
#define TRIBUTARY_TOPICS_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "tributary/route.h"

enum tb_topics_policy {
	TB_TOPICS_OFF,     /* not checked */
	TB_TOPICS_VERIFY,  /* report differences */
	TB_TOPICS_CREATE,  /* verify, and create the missing topics */
	TB_TOPICS_ENFORCE, /* create, and refuse topics with finite retention */
};
const char *tb_topics_policy_name(enum tb_topics_policy p);

typedef struct tb_topic_config {
	char *name;
	char *value;
} tb_topic_config;

/* One topic, or a template of topics ({placeholders}), and what it should be. */
typedef struct tb_topic_spec {
	char *cluster;
	char *origin;      /* where it comes from, e.g. ingest.routes[0].topic */
	tb_template topic; /* nparts == 1 and no placeholder: one topic */
	bool is_template;
	int partitions;         /* -1: the broker's default, not compared */
	int replication_factor; /* -1: likewise */
	tb_topic_config *configs;
	size_t nconfigs;
	bool finite_ok; /* finite retention is a warning, never refused */
	char **names;   /* a template's declared topics ("names") */
	size_t nnames;
} tb_topic_spec;

typedef struct tb_topics_cluster {
	char *name;
	enum tb_topics_policy policy;
} tb_topics_cluster;

typedef struct tb_topics {
	int startup_timeout_ms;
	int admin_timeout_ms;
	int check_interval_s;
	tb_topics_cluster *clusters;
	size_t nclusters;
	tb_topic_spec *specs;
	size_t nspecs;
} tb_topics;

/* Parses root's "topics" section (root: the whole tributary.json, after
 * ${VAR} expansion; its ingest, outbound and clusters are read too). No
 * section: *t is empty (every policy off). -1 with `err` naming the option. */
int tb_topics_parse(tb_topics *t, const json_t *root, char *err, size_t errlen);
void tb_topics_free(tb_topics *t);
enum tb_topics_policy tb_topics_policy_of(const tb_topics *t, const char *cluster);
/* The spec that concrete `topic` on `cluster` falls under, or NULL. */
const tb_topic_spec *tb_topics_match(const tb_topics *t, const char *cluster, const char *topic);
/* Whether `topic` is one that template `t` makes: every placeholder stands
 * for one or more characters of a Kafka topic name. */
bool tb_topics_template_match(const tb_template *t, const char *topic);

/* A topic as Kafka has it. */
typedef struct tb_topic_actual {
	bool exists;
	int partitions;
	int replication_factor; /* the smallest of its partitions' */
	tb_topic_config *configs;
	size_t nconfigs;
} tb_topic_actual;
void tb_topic_actual_clear(tb_topic_actual *a);
/* The value of config `name`, or NULL. */
const char *tb_topic_actual_config(const tb_topic_actual *a, const char *name);

enum tb_topic_verdict {
	TB_TOPIC_OK,
	TB_TOPIC_WARNING, /* differs only in retention, and finite-ok */
	TB_TOPIC_MISSING,
	TB_TOPIC_DIFFERS,
	TB_TOPIC_FINITE,  /* finite retention, not finite-ok */
	TB_TOPIC_UNKNOWN, /* could not be described */
};
const char *tb_topic_verdict_name(enum tb_topic_verdict v);
/* An error for `verify` (exit status 1, logged as an error). */
bool tb_topic_verdict_is_error(enum tb_topic_verdict v);

#define TB_TOPIC_MAX_DIFFS 16
typedef struct tb_topic_diff {
	char setting[64];
	char wanted[64];
	char actual[64];
	bool warning;
} tb_topic_diff;

typedef struct tb_topic_report {
	char *topic;
	const tb_topic_spec *spec;
	enum tb_topic_verdict verdict;
	bool exists;
	bool created; /* by this check */
	int partitions, replication_factor;
	char retention[80]; /* "infinite", or what makes it finite */
	char error[256];    /* TB_TOPIC_UNKNOWN, or a failed creation */
	tb_topic_diff diffs[TB_TOPIC_MAX_DIFFS];
	size_t ndiffs;
} tb_topic_report;
void tb_topic_report_clear(tb_topic_report *r);

/* Whether Kafka deletes records of a topic with these configs: a
 * cleanup.policy with "compact", or "delete" with a retention.ms or
 * retention.bytes other than -1. `why` (may be NULL) says which. */
bool tb_topic_retention_finite(const tb_topic_actual *a, char *why, size_t whylen);

/* Compares; `topic` is copied into r->topic. -1 only without memory. */
int tb_topics_compare(const tb_topic_spec *s, const char *topic, const tb_topic_actual *a,
                      tb_topic_report *r);

/* One line for a log: "topic events.x (cluster main): finite retention
 * (retention.ms=3600000); retention.ms: wanted -1, actual 3600000". */
void tb_topic_report_line(const tb_topic_report *r, char *out, size_t outlen);

/* Checks every topic of `cluster` that the specs name: the declared ones,
 * those of the cluster's topic list that a template makes, and `extra`
 * (topics seen in use). With `create`, the missing ones are created first
 * (with the spec's partitions, replication factor and configs) and then
 * described. Each admin request waits at most `timeout_ms`. Returns 0 and
 * the reports (free each with tb_topic_report_clear, then the array), or
 * -1 with `err` when the cluster could not be asked. */
int tb_topics_check(rd_kafka_t *rk, const tb_topics *t, const char *cluster,
                    const char *const *extra, size_t nextra, bool create, int timeout_ms,
                    tb_topic_report **reports, size_t *nreports, char *err, size_t errlen);

#endif
