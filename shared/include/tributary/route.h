/*
 * Topic patterns and templates shared by the ingest routes (MQTT -> Kafka)
 * and the outbound routes (Kafka -> MQTT).
 *
 * A pattern is an MQTT topic filter whose levels may be literal, `+`, a
 * named single level `{name}`, or a final `#`:  events/{aggregate}/{id}
 * A template is a string with `{name}` placeholders:  events.{aggregate}
 */
#ifndef TRIBUTARY_ROUTE_H
#define TRIBUTARY_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#define TB_PATTERN_MAX_LEVELS 32
#define TB_PATTERN_MAX_CAPTURES 16

typedef struct tb_pattern {
	char *filter;   /* the MQTT filter with names turned into `+` */
	int nlevels;    /* levels before a trailing `#` */
	bool multi;     /* ends in `#` */
	char **literal; /* per level: the literal text, or NULL for a wildcard */
	char **name;    /* per level: the capture name, or NULL */
} tb_pattern;

typedef struct tb_capture {
	const char *name;
	const char *value; /* points into the matched topic */
	size_t len;
} tb_capture;

typedef struct tb_captures {
	int count;
	tb_capture cap[TB_PATTERN_MAX_CAPTURES];
} tb_captures;

int tb_pattern_compile(tb_pattern *p, const char *text, char *err, size_t errlen);
void tb_pattern_free(tb_pattern *p);
/* Matches a concrete topic (no wildcards); fills `caps` (may be NULL). */
bool tb_pattern_match(const tb_pattern *p, const char *topic, tb_captures *caps);
/* The value of capture `name`, or NULL. */
const tb_capture *tb_captures_get(const tb_captures *caps, const char *name, size_t namelen);

/* Looks up placeholder `name` (not NUL-terminated); returns 0 and sets
 * value/len, or -1 when the name has no value for this message. */
typedef int (*tb_template_lookup)(void *ctx, const char *name, size_t namelen, const char **value,
                                  size_t *len);

typedef struct tb_template {
	char *text;
	int nparts;
	struct tb_template_part {
		bool placeholder;
		char *str; /* literal text, or the placeholder name */
		size_t len;
	} * parts;
} tb_template;

int tb_template_compile(tb_template *t, const char *text, char *err, size_t errlen);
void tb_template_free(tb_template *t);
/* Calls `check` for each placeholder name at config time; returns its first error. */
int tb_template_each_name(const tb_template *t, int (*check)(void *ctx, const char *name),
                          void *ctx);
/* Expands into `out`. Returns the length, or -1 (missing value, or a value
 * containing a byte `forbidden` lists), or -2 when `out` is too small. */
int tb_template_expand(const tb_template *t, tb_template_lookup lookup, void *ctx,
                       const char *forbidden, char *out, size_t outlen, const char **missing);

/* Kafka topic names: 1 to 249 characters of [a-zA-Z0-9._-], not "." nor "..". */
bool tb_kafka_topic_valid(const char *name);

/* A PCRE2 regular expression (UTF mode) that a capture going into a Kafka
 * topic name must match as a whole, e.g. [A-Za-z0-9_-]+. An empty value
 * never passes. Holds its own match data: one caller at a time. */
typedef struct tb_capture_rule tb_capture_rule;
tb_capture_rule *tb_capture_rule_compile(const char *regex, char *err, size_t errlen);
void tb_capture_rule_free(tb_capture_rule *r);
const char *tb_capture_rule_text(const tb_capture_rule *r);
bool tb_capture_rule_ok(tb_capture_rule *r, const char *value, size_t len);

#endif
