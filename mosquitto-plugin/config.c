/*
 * The plugin's JSON configuration (mosquitto.conf: plugin_opt_config FILE).
 * Everything is checked at start: a bad value stops the broker with a log
 * line naming the option. ${VAR} / ${VAR:-default} expand from the
 * environment; relative paths are relative to the configuration file.
 *
 * This file: the layer every area uses (the file read once, config__fail,
 * config__only, clusters by name) and the "ingest" section; no broker calls
 * but the log (unit-tested by tests/unit/test_plugin_ingest.c).
 * config_load.c hands each area its section.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tributary.h"
#include "tributary/util.h"

int config__fail(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	mosquitto_log_printf(MOSQ_LOG_ERR, TB_LOG_PREFIX "config: %s", msg);
	return MOSQ_ERR_INVAL;
}

/* Unknown keys are refused: a typo must not silently change behaviour. */
int config__only(const json_t *obj, const char *where, const char *const *allowed)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)obj, key, v)
	{
		bool ok = false;
		for (const char *const *a = allowed; *a; a++)
			if (!strcmp(key, *a))
				ok = true;
		if (!ok)
			return config__fail("%s.%s: unknown option", where, key);
	}
	return MOSQ_ERR_SUCCESS;
}

/* The integer option `name` of `obj` (which may be NULL), from min to max;
 * `dflt` when absent. A bad value fails with `msg`, which names the option. */
int config__int(const json_t *obj, const char *name, long long min, long long max, long long dflt,
                long long *out, const char *msg)
{
	json_t *v = obj ? json_object_get(obj, name) : NULL;
	*out = dflt;
	if (!v)
		return MOSQ_ERR_SUCCESS;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return config__fail("%s", msg);
	*out = json_integer_value(v);
	return MOSQ_ERR_SUCCESS;
}

struct tbp_cluster *config__cluster(struct tributary *tb, const char *name)
{
	for (size_t i = 0; i < tb->nclusters; i++)
		if (!strcmp(tb->clusters[i].name, name))
			return &tb->clusters[i];
	return NULL;
}

struct tbp_registry *config__registry(struct tributary *tb, const char *name)
{
	for (size_t i = 0; i < tb->nregistries; i++)
		if (!strcmp(tb->registries[i].name, name))
			return &tb->registries[i];
	return NULL;
}

/* Placeholders a route template may use besides the pattern's captures. */
static const char *const config__event_names[] = {"client_id", "username", "type",         "source",
                                                  "subject",   "id",       "partitionkey", NULL};

struct config__names_ctx {
	const tb_pattern *pattern;
	const char *where;
	bool captures_only; /* a route's "types": the match pattern's captures */
};

static int config__check_name(void *vctx, const char *name)
{
	struct config__names_ctx *ctx = vctx;
	for (int i = 0; i < ctx->pattern->nlevels; i++)
		if (ctx->pattern->name[i] && !strcmp(ctx->pattern->name[i], name))
			return 0;
	if (ctx->captures_only)
		return config__fail("%s: unknown placeholder {%s} (not in the match pattern)",
		                    ctx->where, name);
	for (const char *const *n = config__event_names; *n; n++)
		if (!strcmp(*n, name))
			return 0;
	return config__fail("%s: unknown placeholder {%s} (not in the match pattern, nor one of "
	                    "client_id, username, type, source, subject, id, partitionkey)",
	                    ctx->where, name);
}

static int config__template_text(tb_template *t, const char *text, const tb_pattern *p,
                                 const char *where, bool captures_only)
{
	char err[256];
	if (tb_template_compile(t, text, err, sizeof(err)))
		return config__fail("%s: %s", where, err);
	struct config__names_ctx ctx = {p, where, captures_only};
	return tb_template_each_name(t, config__check_name, &ctx);
}

static int config__template(tb_template *t, const json_t *v, const tb_pattern *p, const char *where)
{
	if (!json_is_string(v) || json_string_length(v) == 0)
		return config__fail("%s: must be a non-empty string", where);
	return config__template_text(t, json_string_value(v), p, where, false);
}

static bool config__uses(const tb_template *t, const char *name)
{
	for (int i = 0; i < t->nparts; i++)
		if (t->parts[i].placeholder && !strcmp(t->parts[i].str, name))
			return true;
	return false;
}

/* "capture_pattern", and which captures it applies to: those that go into
 * a Kafka topic name (topic, mirror.topic). */
static int config__captures(struct tbp_ingest_route *r, const json_t *j, const char *where)
{
	char err[256];
	json_t *cp = json_object_get(j, "capture_pattern");
	if (cp && (!json_is_string(cp) || json_string_length(cp) == 0))
		return config__fail(
		    "%s.capture_pattern: must be a non-empty PCRE2 regular expression", where);
	r->capture_rule = tb_capture_rule_compile(cp ? json_string_value(cp) : "[A-Za-z0-9_-]+",
	                                          err, sizeof(err));
	if (!r->capture_rule)
		return config__fail("%s.capture_pattern: %s", where, err);
	int idx = 0;
	for (int i = 0; i < r->match.nlevels; i++) {
		const char *name = r->match.name[i];
		if (!name)
			continue;
		if (config__uses(&r->topic, name) ||
		    (r->mirror_cluster && config__uses(&r->mirror_topic, name)))
			r->topic_captures |= 1u << idx;
		idx++;
	}
	return MOSQ_ERR_SUCCESS;
}

/* "types": ["example.order.placed", "example.{aggregate}.*"] */
static int config__types(struct tbp_ingest_route *r, const json_t *types, const char *where)
{
	char sub[96];
	size_t i;
	json_t *t;
	int rc;
	if (!types)
		return MOSQ_ERR_SUCCESS;
	if (!json_is_array(types) || json_array_size(types) == 0)
		return config__fail(
		    "%s.types: must be a non-empty array of event types (omit it to "
		    "accept any type)",
		    where);
	r->types = calloc(json_array_size(types), sizeof(*r->types));
	if (!r->types)
		return MOSQ_ERR_NOMEM;
	json_array_foreach(types, i, t)
	{
		snprintf(sub, sizeof(sub), "%s.types[%zu]", where, i);
		const char *s = json_string_value(t);
		size_t n = s ? strlen(s) : 0;
		if (n == 0 || !strcmp(s, "*") || (strchr(s, '*') && strchr(s, '*') != s + n - 1))
			return config__fail("%s: must be an event type, or a prefix ending in '*'",
			                    sub);
		char *text = strndup(s, s[n - 1] == '*' ? n - 1 : n);
		if (!text)
			return MOSQ_ERR_NOMEM;
		r->types[i].prefix = s[n - 1] == '*';
		rc = config__template_text(&r->types[i].type, text, &r->match, sub, true);
		free(text);
		r->ntypes++;
		if (rc)
			return rc;
	}
	return MOSQ_ERR_SUCCESS;
}

static int config__response_lookup(void *ctx, const char *name, size_t len, const char **value,
                                   size_t *vlen)
{
	(void)ctx;
	(void)name;
	(void)len;
	*value = "x";
	*vlen = 1;
	return 0;
}

/* ingest.response_topics: templates of the Response Topics a v5 request may
 * name, e.g. its own reply topic; filters with `+`/`#` allow a subtree. The
 * default adds the client's own error topic, where `mosquitto_rr -e` users
 * see their refusals. */
static int config__response_topics(struct tributary *tb, const json_t *rt, const char *error_topic)
{
	const char *const dflt[] = {"clients/{client_id}/replies", error_topic};
	char where[96], err[256], out[1024];
	size_t n = rt ? json_array_size(rt) : 2;
	if (rt && !json_is_array(rt))
		return config__fail("ingest.response_topics: must be an array of MQTT topic "
		                    "templates (empty: no response topic allowed)");
	tb->response_topics = calloc(n ? n : 1, sizeof(*tb->response_topics));
	if (!tb->response_topics)
		return MOSQ_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		struct tbp_response_topic *r = &tb->response_topics[i];
		const char *s = rt ? json_string_value(json_array_get(rt, i)) : dflt[i];
		if (rt)
			snprintf(where, sizeof(where), "ingest.response_topics[%zu]", i);
		else
			snprintf(where, sizeof(where), "ingest.response_topics (default, from %s)",
			         i ? "ingest.error_topic" : "clients/{client_id}/replies");
		if (!s || !*s)
			return config__fail("%s: must be a non-empty string", where);
		if (tb_template_compile(&r->topic, s, err, sizeof(err)))
			return config__fail("%s: %s", where, err);
		tb->nresponse_topics++;
		for (int p = 0; p < r->topic.nparts; p++) {
			const char *name = r->topic.parts[p].str;
			if (r->topic.parts[p].placeholder && strcmp(name, "client_id") &&
			    strcmp(name, "username") && strcmp(name, "sub"))
				return config__fail(
				    "%s: unknown placeholder {%s} (use {client_id}, "
				    "{username}, {sub})",
				    where, name);
		}
		if (tb_template_expand(&r->topic, config__response_lookup, NULL, NULL, out,
		                       sizeof(out), NULL) < 0 ||
		    mosquitto_sub_topic_check(out) != MOSQ_ERR_SUCCESS)
			return config__fail("%s: '%s' is not a valid MQTT topic filter", where, s);
		r->wildcard = strpbrk(out, "+#") != NULL;
	}
	return MOSQ_ERR_SUCCESS;
}

/* Where a route's schemas come from (the catalog, or "registry" with its
 * "subject_strategy") and how its records are written ("value_format", or
 * the older "kafka_mode"). */
static int config__schemas(struct tributary *tb, struct tbp_ingest_route *r, const json_t *j,
                           const char *where)
{
	json_t *reg = json_object_get(j, "registry");
	if (reg) {
		const char *name = json_string_value(reg);
		if (!name || !(r->registry = config__registry(tb, name)))
			return config__fail(
			    "%s.registry: no registry named \"%s\" in \"registries\"", where,
			    name ? name : "?");
		if (json_is_false(json_object_get(j, "schema_required")))
			return config__fail("%s.schema_required: a registry route always validates "
			                    "(remove \"registry\" or this option)",
			                    where);
	}
	json_t *st = json_object_get(j, "subject_strategy");
	if (st && !r->registry)
		return config__fail("%s.subject_strategy: only with \"registry\"", where);
	const char *sts = st ? json_string_value(st) : "topic";
	if (sts && !strcmp(sts, "topic"))
		r->strategy = TBP_SUBJECT_TOPIC;
	else if (sts && !strcmp(sts, "record"))
		r->strategy = TBP_SUBJECT_RECORD;
	else if (sts && !strcmp(sts, "topic-record"))
		r->strategy = TBP_SUBJECT_TOPIC_RECORD;
	else
		return config__fail(
		    "%s.subject_strategy: must be \"topic\", \"record\" or \"topic-record\"",
		    where);

	json_t *vf = json_object_get(j, "value_format");
	json_t *km = json_object_get(j, "kafka_mode");
	if (vf && km)
		return config__fail("%s.kafka_mode: not with value_format (kafka_mode is its older "
		                    "name)",
		                    where);
	const char *f = vf ? json_string_value(vf) : "cloudevents-binary";
	if (km) {
		const char *m = json_string_value(km);
		if (m && !strcmp(m, "binary"))
			f = "cloudevents-binary";
		else if (m && !strcmp(m, "structured"))
			f = "cloudevents-structured";
		else
			return config__fail("%s.kafka_mode: must be \"binary\" or \"structured\"",
			                    where);
	}
	if (f && !strcmp(f, "cloudevents-binary"))
		r->mode = TBP_MODE_BINARY;
	else if (f && !strcmp(f, "cloudevents-structured"))
		r->mode = TBP_MODE_STRUCTURED;
	else if (f && !strcmp(f, "confluent"))
		r->mode = TBP_MODE_CONFLUENT;
	else
		return config__fail("%s.value_format: must be \"cloudevents-binary\", "
		                    "\"cloudevents-structured\" or \"confluent\"",
		                    where);
	if (r->mode == TBP_MODE_CONFLUENT && !r->registry)
		return config__fail(
		    "%s.value_format: \"confluent\" needs a registry route "
		    "(\"registry\": NAME): the record carries the registry's schema id",
		    where);
	return MOSQ_ERR_SUCCESS;
}

static int config__route(struct tributary *tb, struct tbp_ingest_route *r, const json_t *j,
                         size_t idx)
{
	static const char *const allowed[] = {"match",
	                                      "topic",
	                                      "key",
	                                      "cluster",
	                                      "schema_required",
	                                      "max_payload",
	                                      "kafka_mode",
	                                      "mirror",
	                                      "capture_pattern",
	                                      "types",
	                                      "comment",
	                                      "registry",
	                                      "subject_strategy",
	                                      "value_format",
	                                      NULL};
	char where[64], err[256];
	int rc;
	snprintf(where, sizeof(where), "ingest.routes[%zu]", idx);
	if (!json_is_object(j))
		return config__fail("%s: must be an object", where);
	if ((rc = config__only(j, where, allowed)))
		return rc;

	json_t *match = json_object_get(j, "match");
	if (!json_is_string(match))
		return config__fail("%s.match: must be an MQTT topic pattern", where);
	if (tb_pattern_compile(&r->match, json_string_value(match), err, sizeof(err)))
		return config__fail("%s.match: %s", where, err);

	char sub[96];
	snprintf(sub, sizeof(sub), "%s.topic", where);
	if ((rc = config__template(&r->topic, json_object_get(j, "topic"), &r->match, sub)))
		return rc;
	if (json_object_get(j, "key")) {
		snprintf(sub, sizeof(sub), "%s.key", where);
		if ((rc = config__template(&r->key, json_object_get(j, "key"), &r->match, sub)))
			return rc;
	}

	json_t *cl = json_object_get(j, "cluster");
	const char *cname = cl ? json_string_value(cl) : "main";
	if (!cname || !(r->cluster = config__cluster(tb, cname)))
		return config__fail("%s.cluster: no cluster named \"%s\" in \"clusters\"", where,
		                    cname ? cname : "?");

	json_t *sr = json_object_get(j, "schema_required");
	if (sr && !json_is_boolean(sr))
		return config__fail("%s.schema_required: must be true or false", where);
	r->schema_required = sr ? json_is_true(sr) : true;

	long long n;
	char msg[160];
	snprintf(msg, sizeof(msg), "%s.max_payload: must be 1 to 268435455 bytes", where);
	if ((rc = config__int(j, "max_payload", 1, 268435455, 256 * 1024, &n, msg)))
		return rc;
	r->max_payload = (uint32_t)n;

	if ((rc = config__schemas(tb, r, j, where)))
		return rc;

	json_t *mirror = json_object_get(j, "mirror");
	if (mirror) {
		static const char *const mallowed[] = {"cluster", "topic", NULL};
		snprintf(sub, sizeof(sub), "%s.mirror", where);
		if (!json_is_object(mirror))
			return config__fail("%s: must be an object {cluster, topic}", sub);
		if ((rc = config__only(mirror, sub, mallowed)))
			return rc;
		const char *mc = json_string_value(json_object_get(mirror, "cluster"));
		if (!mc || !(r->mirror_cluster = config__cluster(tb, mc)))
			return config__fail("%s.cluster: no cluster named \"%s\"", sub,
			                    mc ? mc : "?");
		snprintf(sub, sizeof(sub), "%s.mirror.topic", where);
		if ((rc = config__template(&r->mirror_topic, json_object_get(mirror, "topic"),
		                           &r->match, sub)))
			return rc;
	}
	if ((rc = config__captures(r, j, where)))
		return rc;
	return config__types(r, json_object_get(j, "types"), where);
}

/* The file, parsed and ${VAR}-expanded: the one place it is read, at start
 * and on SIGHUP. NULL with err naming the file. */
json_t *config__read(const char *path, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "%s: %s (line %d, column %d)", path, jerr.text, jerr.line,
		         jerr.column);
		return NULL;
	}
	if (!json_is_object(root))
		snprintf(err, errlen, "%s: must be a JSON object", path);
	else if (!tb_json_expand_env(root, err, errlen))
		return root;
	json_decref(root);
	return NULL;
}

/* The "ingest" section: routes, error and response topics (the clusters
 * the routes name must be known). */
int config__ingest(struct tributary *tb, const json_t *ingest)
{
	static const char *const allowed[] = {"unmatched",           "error_topic",     "routes",
	                                      "qos2_resend_clients", "response_topics", NULL};
	char err[512];
	int rc;

	if (!json_is_object(ingest))
		return config__fail("ingest: must be an object with \"routes\"");
	if ((rc = config__only(ingest, "ingest", allowed)))
		return rc;
	const char *unmatched = json_string_value(json_object_get(ingest, "unmatched"));
	if (unmatched && strcmp(unmatched, "pass") && strcmp(unmatched, "reject"))
		return config__fail("ingest.unmatched: must be \"pass\" or \"reject\"");
	tb->reject_unmatched = unmatched && !strcmp(unmatched, "reject");

	long long n;
	if ((rc = config__int(ingest, "qos2_resend_clients", 0, 10000000, 0, &n,
	                      "ingest.qos2_resend_clients: must be 0 (off) to 10000000 clients")))
		return rc;
	tb->resend_clients = (size_t)n;

	json_t *et = json_object_get(ingest, "error_topic");
	const char *ets = et ? json_string_value(et) : "clients/{client_id}/errors";
	if (!ets || tb_template_compile(&tb->error_topic, ets, err, sizeof(err)))
		return config__fail("ingest.error_topic: %s", ets ? err : "must be a string");

	if ((rc = config__response_topics(tb, json_object_get(ingest, "response_topics"), ets)))
		return rc;

	json_t *routes = json_object_get(ingest, "routes");
	if (!json_is_array(routes))
		return config__fail("ingest.routes: must be an array");
	tb->routes = calloc(json_array_size(routes) + 1, sizeof(*tb->routes));
	if (!tb->routes)
		return MOSQ_ERR_NOMEM;
	size_t i;
	json_t *r;
	json_array_foreach(routes, i, r)
	{
		tb->nroutes++;
		if ((rc = config__route(tb, &tb->routes[i], r, i)))
			return rc;
	}
	return MOSQ_ERR_SUCCESS;
}

void config__ingest_free(struct tributary *tb)
{
	for (size_t i = 0; i < tb->nroutes; i++) {
		tb_pattern_free(&tb->routes[i].match);
		tb_template_free(&tb->routes[i].topic);
		tb_template_free(&tb->routes[i].key);
		tb_template_free(&tb->routes[i].mirror_topic);
		tb_capture_rule_free(tb->routes[i].capture_rule);
		for (size_t t = 0; t < tb->routes[i].ntypes; t++)
			tb_template_free(&tb->routes[i].types[t].type);
		free(tb->routes[i].types);
	}
	free(tb->routes);
	tb->routes = NULL;
	tb->nroutes = 0;
	tb_template_free(&tb->error_topic);
	for (size_t i = 0; i < tb->nresponse_topics; i++)
		tb_template_free(&tb->response_topics[i].topic);
	free(tb->response_topics);
	tb->response_topics = NULL;
	tb->nresponse_topics = 0;
}
