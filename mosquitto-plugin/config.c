/*
 * The plugin's JSON configuration (mosquitto.conf: plugin_opt_config FILE).
 * Everything is checked at start: a bad value stops the broker with a log
 * line naming the option. ${VAR} / ${VAR:-default} expand from the
 * environment; relative paths are relative to the configuration file.
 */
#include <libgen.h>
#include <limits.h>
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

struct tbp_cluster *config__cluster(struct tributary *tb, const char *name)
{
	for (size_t i = 0; i < tb->nclusters; i++)
		if (!strcmp(tb->clusters[i].name, name))
			return &tb->clusters[i];
	return NULL;
}

static char *config__path(const char *base_dir, const char *p)
{
	char buf[PATH_MAX];
	if (p[0] == '/')
		return strdup(p);
	snprintf(buf, sizeof(buf), "%s/%s", base_dir, p);
	return strdup(buf);
}

/* Placeholders a route template may use besides the pattern's captures. */
static const char *const config__event_names[] = {
    "client_id", "username", "type", "source", "subject", "id", "partitionkey", NULL};

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

static int config__template(tb_template *t, const json_t *v, const tb_pattern *p,
			    const char *where)
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
		return config__fail("%s.capture_pattern: must be a non-empty PCRE2 regular expression",
				    where);
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
		return config__fail("%s.types: must be a non-empty array of event types (omit it to "
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
static int config__response_topics(struct tributary *tb, const json_t *rt,
				   const char *error_topic)
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
				return config__fail("%s: unknown placeholder {%s} (use {client_id}, "
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

static int config__route(struct tributary *tb, struct tbp_ingest_route *r, const json_t *j,
			 size_t idx)
{
	static const char *const allowed[] = {"match",       "topic",    "key",
					      "cluster",     "schema_required", "max_payload",
					      "kafka_mode",  "mirror",   "capture_pattern",
					      "types",       "comment",  NULL};
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

	json_t *mp = json_object_get(j, "max_payload");
	if (mp && (!json_is_integer(mp) || json_integer_value(mp) < 1 ||
		   json_integer_value(mp) > 268435455))
		return config__fail("%s.max_payload: must be 1 to 268435455 bytes", where);
	r->max_payload = mp ? (uint32_t)json_integer_value(mp) : 256 * 1024;

	json_t *mode = json_object_get(j, "kafka_mode");
	const char *m = mode ? json_string_value(mode) : "binary";
	if (m && !strcmp(m, "binary"))
		r->mode = TBP_MODE_BINARY;
	else if (m && !strcmp(m, "structured"))
		r->mode = TBP_MODE_STRUCTURED;
	else
		return config__fail("%s.kafka_mode: must be \"binary\" or \"structured\"", where);

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

static int config__clusters(struct tributary *tb, const json_t *clusters, bool journaled)
{
	const char *name;
	json_t *props;
	int rc;
	if (!json_is_object(clusters) || json_object_size(clusters) == 0)
		return config__fail("clusters: must name at least one Kafka cluster, e.g. "
				    "{\"main\": {\"bootstrap.servers\": \"host:9092\"}}");
	tb->clusters = calloc(json_object_size(clusters), sizeof(*tb->clusters));
	if (!tb->clusters)
		return MOSQ_ERR_NOMEM;
	json_object_foreach((json_t *)clusters, name, props)
	{
		struct tbp_cluster *c = &tb->clusters[tb->nclusters];
		c->tb = tb;
		c->name = strdup(name);
		if (!c->name)
			return MOSQ_ERR_NOMEM;
		tb->nclusters++;
		if (!json_is_object(props))
			return config__fail("clusters.%s: must be an object of librdkafka properties",
					    name);
		if ((rc = cluster__config(c, props, journaled)))
			return rc;
	}
	return MOSQ_ERR_SUCCESS;
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

/* Every section, checked; nothing started (plugin.c starts the producers,
 * the journal and the consumers). */
int config__load(struct tributary *tb, const char *path)
{
	static const char *const top[] = {"broker_id", "clusters", "catalog", "ingest", "outbound",
					  "journal",   "auth",     "stats",   "shutdown", "comment",
					  "topics",    NULL};
	static const char *const ingest_allowed[] = {"unmatched", "error_topic", "routes",
						     "qos2_resend_clients", "response_topics", NULL};
	char err[512], dirbuf[PATH_MAX];
	int rc = MOSQ_ERR_INVAL;

	json_t *root = config__read(path, err, sizeof(err));
	if (!root)
		return config__fail("%s", err);
	if ((rc = config__only(root, "config", top)))
		goto cleanup;
	snprintf(dirbuf, sizeof(dirbuf), "%s", path);
	const char *dir = dirname(dirbuf);
	if (!(tb->config_dir = strdup(dir))) {
		rc = MOSQ_ERR_NOMEM;
		goto cleanup;
	}

	const char *bid = json_string_value(json_object_get(root, "broker_id"));
	tb->broker_id = strdup(bid ? bid : "tributary");
	if (!tb->broker_id) {
		rc = MOSQ_ERR_NOMEM;
		goto cleanup;
	}

	json_t *catalog = json_object_get(root, "catalog");
	if (!json_is_string(catalog)) {
		rc = config__fail("catalog: must be the path of the schema catalog (catalog.json)");
		goto cleanup;
	}
	tb->catalog_path = config__path(dir, json_string_value(catalog));
	tb->catalog = tb->catalog_path ? tb_catalog_load(tb->catalog_path, err, sizeof(err)) : NULL;
	if (!tb->catalog) {
		rc = config__fail("catalog: %s", err);
		goto cleanup;
	}

	json_t *stats = json_object_get(root, "stats");
	json_t *si = stats ? json_object_get(stats, "sys_interval") : NULL;
	if (si && (!json_is_integer(si) || json_integer_value(si) < 0 ||
		   json_integer_value(si) > 86400)) {
		rc = config__fail("stats.sys_interval: must be 0 (off) to 86400 seconds");
		goto cleanup;
	}
	tb->sys_interval_s = si ? (int)json_integer_value(si) : 10;

	json_t *sd = json_object_get(root, "shutdown");
	json_t *ft = sd ? json_object_get(sd, "flush_timeout_ms") : NULL;
	if (ft && (!json_is_integer(ft) || json_integer_value(ft) < 0 ||
		   json_integer_value(ft) > 600000)) {
		rc = config__fail("shutdown.flush_timeout_ms: must be 0 to 600000");
		goto cleanup;
	}
	tb->flush_timeout_ms = ft ? (int)json_integer_value(ft) : 10000;

	if ((rc = config__clusters(tb, json_object_get(root, "clusters"),
				   json_object_get(root, "journal") != NULL)))
		goto cleanup;
	if ((rc = journal__config(tb, json_object_get(root, "journal"), dir)))
		goto cleanup;

	json_t *ingest = json_object_get(root, "ingest");
	if (!json_is_object(ingest)) {
		rc = config__fail("ingest: must be an object with \"routes\"");
		goto cleanup;
	}
	if ((rc = config__only(ingest, "ingest", ingest_allowed)))
		goto cleanup;
	const char *unmatched = json_string_value(json_object_get(ingest, "unmatched"));
	if (unmatched && strcmp(unmatched, "pass") && strcmp(unmatched, "reject")) {
		rc = config__fail("ingest.unmatched: must be \"pass\" or \"reject\"");
		goto cleanup;
	}
	tb->reject_unmatched = unmatched && !strcmp(unmatched, "reject");

	json_t *rsc = json_object_get(ingest, "qos2_resend_clients");
	if (rsc && (!json_is_integer(rsc) || json_integer_value(rsc) < 0 ||
		    json_integer_value(rsc) > 10000000)) {
		rc = config__fail("ingest.qos2_resend_clients: must be 0 (off) to 10000000 clients");
		goto cleanup;
	}
	tb->resend_clients = rsc ? (size_t)json_integer_value(rsc) : 0;

	json_t *et = json_object_get(ingest, "error_topic");
	const char *ets = et ? json_string_value(et) : "clients/{client_id}/errors";
	if (!ets || tb_template_compile(&tb->error_topic, ets, err, sizeof(err))) {
		rc = config__fail("ingest.error_topic: %s", ets ? err : "must be a string");
		goto cleanup;
	}

	if ((rc = config__response_topics(tb, json_object_get(ingest, "response_topics"), ets)))
		goto cleanup;

	json_t *routes = json_object_get(ingest, "routes");
	if (!json_is_array(routes)) {
		rc = config__fail("ingest.routes: must be an array");
		goto cleanup;
	}
	tb->routes = calloc(json_array_size(routes) + 1, sizeof(*tb->routes));
	if (!tb->routes) {
		rc = MOSQ_ERR_NOMEM;
		goto cleanup;
	}
	size_t i;
	json_t *r;
	json_array_foreach(routes, i, r)
	{
		tb->nroutes++;
		if ((rc = config__route(tb, &tb->routes[i], r, i)))
			goto cleanup;
	}

	/* Kafka -> MQTT (outbound_config.c) */
	if ((rc = outbound__config(tb, json_object_get(root, "outbound"),
				   json_object_get(root, "clusters"))))
		goto cleanup;
	/* Kafka topics as wanted (topics.c) */
	if ((rc = topics__config(tb, root)))
		goto cleanup;
	/* JWT authentication and ACLs (auth.c) */
	if ((rc = auth__config(tb, json_object_get(root, "auth"))))
		goto cleanup;
	rc = MOSQ_ERR_SUCCESS;
cleanup:
	json_decref(root);
	return rc;
}

void config__free(struct tributary *tb)
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
	for (size_t i = 0; i < tb->nclusters; i++) {
		cluster__stop(&tb->clusters[i], tb->flush_timeout_ms);
		free(tb->clusters[i].name);
	}
	/* After the producers: their last delivery reports release entries. */
	journal__close(tb);
	free(tb->clusters);
	tb->clusters = NULL;
	tb->nclusters = 0;
	tb_template_free(&tb->error_topic);
	for (size_t i = 0; i < tb->nresponse_topics; i++)
		tb_template_free(&tb->response_topics[i].topic);
	free(tb->response_topics);
	tb->response_topics = NULL;
	tb->nresponse_topics = 0;
	tb_catalog_free(tb->catalog);
	tb->catalog = NULL;
	free(tb->catalog_path);
	free(tb->broker_id);
	free(tb->config_dir);
	free(tb->config_path);
}
