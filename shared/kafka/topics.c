/*
 * The "topics" section of tributary.json and the comparison of a topic as
 * wanted with the topic as Kafka has it (tributary/topics.h). No I/O here:
 * topics_admin.c asks Kafka.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tributary/topics.h"
#include "topics_int.h"

#define TOPICS_NAME_MAX 249 /* Kafka's limit on a topic name */
#define TOPICS_NAME_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

static const char *const topics__policies[] = {
    [TB_TOPICS_OFF] = "off",
    [TB_TOPICS_VERIFY] = "verify",
    [TB_TOPICS_CREATE] = "create",
    [TB_TOPICS_ENFORCE] = "enforce",
};

const char *tb_topics_policy_name(enum tb_topics_policy p)
{
	return p <= TB_TOPICS_ENFORCE ? topics__policies[p] : "?";
}

const char *tb_topic_verdict_name(enum tb_topic_verdict v)
{
	switch (v) {
	case TB_TOPIC_OK:
		return "ok";
	case TB_TOPIC_WARNING:
		return "warning";
	case TB_TOPIC_MISSING:
		return "missing";
	case TB_TOPIC_DIFFERS:
		return "differs";
	case TB_TOPIC_FINITE:
		return "finite-retention";
	case TB_TOPIC_UNKNOWN:
		return "unknown";
	}
	return "?";
}

bool tb_topic_verdict_is_error(enum tb_topic_verdict v)
{
	return v != TB_TOPIC_OK && v != TB_TOPIC_WARNING;
}

int tb_topics__fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int topics__only(const json_t *obj, const char *where, const char *const *allowed, char *err,
                        size_t errlen)
{
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)obj, key, v)
	{
		const char *const *a = allowed;
		while (*a && strcmp(*a, key))
			a++;
		if (!*a)
			return tb_topics__fail(err, errlen, "%s.%s: unknown option", where, key);
	}
	return 0;
}

static bool topics__name_ok(const char *t)
{
	size_t n = strlen(t);
	return n > 0 && n <= TOPICS_NAME_MAX && strcmp(t, ".") && strcmp(t, "..") &&
	       strspn(t, TOPICS_NAME_CHARS) == n;
}

/* ---- configs: a small ordered map ---- */

static int topics__config_set(tb_topic_config **cfg, size_t *n, const char *name, const char *value)
{
	char *v = strdup(value);
	if (!v)
		return -1;
	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*cfg)[i].name, name)) {
			free((*cfg)[i].value);
			(*cfg)[i].value = v;
			return 0;
		}
	tb_topic_config *grown = realloc(*cfg, (*n + 1) * sizeof(**cfg));
	if (!grown) {
		free(v);
		return -1;
	}
	*cfg = grown;
	char *k = strdup(name);
	if (!k) {
		free(v);
		return -1;
	}
	(*cfg)[*n].name = k;
	(*cfg)[*n].value = v;
	(*n)++;
	return 0;
}

static void topics__configs_free(tb_topic_config *cfg, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(cfg[i].name);
		free(cfg[i].value);
	}
	free(cfg);
}

static const char *topics__config_get(const tb_topic_config *cfg, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(cfg[i].name, name))
			return cfg[i].value;
	return NULL;
}

const char *tb_topic_actual_config(const tb_topic_actual *a, const char *name)
{
	return topics__config_get(a->configs, a->nconfigs, name);
}

void tb_topic_actual_clear(tb_topic_actual *a)
{
	topics__configs_free(a->configs, a->nconfigs);
	memset(a, 0, sizeof(*a));
}

/* ---- the settings a cluster or a topic entry may give ---- */

struct topics__settings {
	int partitions, replication_factor; /* 0: not given */
	const json_t *configs;
	int finite_ok; /* -1: not given */
};

static int topics__int(const json_t *j, const char *name, const char *where, long long min,
                       long long max, int *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(j, name);
	if (!v)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return tb_topics__fail(err, errlen, "%s.%s: must be an integer from %lld to %lld",
		                       where, name, min, max);
	*out = (int)json_integer_value(v);
	return 0;
}

static int topics__settings(const json_t *j, const char *where, struct topics__settings *s,
                            char *err, size_t errlen)
{
	s->partitions = s->replication_factor = 0;
	s->configs = NULL;
	s->finite_ok = -1;
	if (topics__int(j, "partitions", where, 1, 1000000, &s->partitions, err, errlen) ||
	    topics__int(j, "replication_factor", where, 1, 32767, &s->replication_factor, err,
	                errlen))
		return -1;
	json_t *c = json_object_get(j, "configs");
	if (c) {
		const char *key;
		json_t *v;
		if (!json_is_object(c))
			return tb_topics__fail(
			    err, errlen,
			    "%s.configs: must be an object of Kafka topic configs, "
			    "e.g. {\"retention.ms\": -1}",
			    where);
		json_object_foreach(c, key, v)
		{
			if (!json_is_string(v) && !json_is_integer(v) && !json_is_boolean(v))
				return tb_topics__fail(
				    err, errlen,
				    "%s.configs.%s: must be a string, integer or "
				    "boolean",
				    where, key);
		}
		s->configs = c;
	}
	json_t *r = json_object_get(j, "retention");
	if (r) {
		const char *rs = json_string_value(r);
		if (!rs || (strcmp(rs, "infinite") && strcmp(rs, "finite-ok")))
			return tb_topics__fail(
			    err, errlen, "%s.retention: must be \"infinite\" or \"finite-ok\"",
			    where);
		s->finite_ok = !strcmp(rs, "finite-ok");
	}
	return 0;
}

static int topics__apply_configs(tb_topic_spec *s, const json_t *configs)
{
	const char *key;
	json_t *v;
	char num[32];
	if (!configs)
		return 0;
	json_object_foreach((json_t *)configs, key, v)
	{
		const char *val;
		if (json_is_string(v))
			val = json_string_value(v);
		else if (json_is_integer(v)) {
			snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
			val = num;
		} else
			val = json_is_true(v) ? "true" : "false";
		if (topics__config_set(&s->configs, &s->nconfigs, key, val))
			return -1;
	}
	return 0;
}

static void topics__apply(tb_topic_spec *s, const struct topics__settings *st)
{
	if (st->partitions)
		s->partitions = st->partitions;
	if (st->replication_factor)
		s->replication_factor = st->replication_factor;
	if (st->finite_ok >= 0)
		s->finite_ok = st->finite_ok;
}

/* ---- template matching ---- */

/* Which positions of `topic` each part can end at, part after part: no
 * backtracking, so many placeholders cost parts x length^2 at most. */
bool tb_topics_template_match(const tb_template *t, const char *topic)
{
	size_t n = strlen(topic);
	bool at[TOPICS_NAME_MAX + 1], next[TOPICS_NAME_MAX + 1];
	if (n == 0 || n > TOPICS_NAME_MAX)
		return false;
	memset(at, 0, sizeof(at));
	at[0] = true;
	for (int i = 0; i < t->nparts; i++) {
		const struct tb_template_part *p = &t->parts[i];
		bool any = false;
		memset(next, 0, sizeof(next));
		for (size_t pos = 0; pos <= n; pos++) {
			if (!at[pos])
				continue;
			if (!p->placeholder) {
				if (p->len <= n - pos && !memcmp(topic + pos, p->str, p->len))
					any = next[pos + p->len] = true;
				continue;
			}
			/* One or more name characters. */
			size_t max = strspn(topic + pos, TOPICS_NAME_CHARS);
			for (size_t m = 1; m <= max; m++)
				any = next[pos + m] = true;
		}
		if (!any)
			return false;
		memcpy(at, next, sizeof(at));
	}
	return at[n];
}

static bool topics__is_template(const tb_template *t)
{
	for (int i = 0; i < t->nparts; i++)
		if (t->parts[i].placeholder)
			return true;
	return false;
}

/* ---- the section ---- */

enum tb_topics_policy tb_topics_policy_of(const tb_topics *t, const char *cluster)
{
	for (size_t i = 0; i < t->nclusters; i++)
		if (!strcmp(t->clusters[i].name, cluster))
			return t->clusters[i].policy;
	return TB_TOPICS_OFF;
}

const tb_topic_spec *tb_topics_match(const tb_topics *t, const char *cluster, const char *topic)
{
	/* A literal topic wins over a template that also makes it. */
	const tb_topic_spec *tmpl = NULL;
	for (size_t i = 0; i < t->nspecs; i++) {
		const tb_topic_spec *s = &t->specs[i];
		if (strcmp(s->cluster, cluster))
			continue;
		if (!s->is_template && !strcmp(s->topic.text, topic))
			return s;
		if (s->is_template && !tmpl && tb_topics_template_match(&s->topic, topic))
			tmpl = s;
	}
	return tmpl;
}

static void topics__spec_free(tb_topic_spec *s)
{
	free(s->cluster);
	free(s->origin);
	tb_template_free(&s->topic);
	topics__configs_free(s->configs, s->nconfigs);
	for (size_t i = 0; i < s->nnames; i++)
		free(s->names[i]);
	free(s->names);
}

void tb_topics_free(tb_topics *t)
{
	for (size_t i = 0; i < t->nclusters; i++)
		free(t->clusters[i].name);
	free(t->clusters);
	for (size_t i = 0; i < t->nspecs; i++)
		topics__spec_free(&t->specs[i]);
	free(t->specs);
	memset(t, 0, sizeof(*t));
}

/* Adds (once per cluster and text) the topic that `origin` names. */
static int topics__add(tb_topics *t, const json_t *cluster_settings, const char *cluster,
                       const char *text, const char *origin, char *err, size_t errlen)
{
	char terr[256];
	if (tb_topics_policy_of(t, cluster) == TB_TOPICS_OFF)
		return 0;
	for (size_t i = 0; i < t->nspecs; i++)
		if (!strcmp(t->specs[i].cluster, cluster) && !strcmp(t->specs[i].topic.text, text))
			return 0;
	tb_topic_spec *grown = realloc(t->specs, (t->nspecs + 1) * sizeof(*t->specs));
	if (!grown)
		return tb_topics__fail(err, errlen, "out of memory");
	t->specs = grown;
	tb_topic_spec *s = &t->specs[t->nspecs];
	memset(s, 0, sizeof(*s));
	s->partitions = s->replication_factor = -1;
	s->cluster = strdup(cluster);
	s->origin = strdup(origin);
	if (!s->cluster || !s->origin) {
		free(s->cluster);
		free(s->origin);
		return tb_topics__fail(err, errlen, "out of memory");
	}
	if (tb_template_compile(&s->topic, text, terr, sizeof(terr))) {
		free(s->cluster);
		free(s->origin);
		return tb_topics__fail(err, errlen, "%s: %s", origin, terr);
	}
	t->nspecs++;
	s->is_template = topics__is_template(&s->topic);
	if (!s->is_template && !topics__name_ok(text))
		return tb_topics__fail(err, errlen, "%s: \"%s\" is not a Kafka topic name", origin,
		                       text);
	/* Events are kept for ever unless the cluster or the topic says otherwise. */
	if (topics__config_set(&s->configs, &s->nconfigs, "retention.ms", "-1") ||
	    topics__config_set(&s->configs, &s->nconfigs, "retention.bytes", "-1"))
		return tb_topics__fail(err, errlen, "out of memory");
	struct topics__settings st;
	char where[160];
	snprintf(where, sizeof(where), "topics.clusters.%s", cluster);
	if (topics__settings(cluster_settings, where, &st, err, errlen))
		return -1;
	topics__apply(s, &st);
	if (topics__apply_configs(s, st.configs))
		return tb_topics__fail(err, errlen, "out of memory");
	return 0;
}

/* Every topic that the ingest routes, their mirrors and the outbound routes name. */
static int topics__collect(tb_topics *t, const json_t *root, const json_t *tclusters, char *err,
                           size_t errlen)
{
	char origin[96];
	size_t i;
	json_t *r;
	json_t *routes = json_object_get(json_object_get(root, "ingest"), "routes");
	json_array_foreach(routes, i, r)
	{
		const char *cl = json_string_value(json_object_get(r, "cluster"));
		const char *topic = json_string_value(json_object_get(r, "topic"));
		cl = cl ? cl : "main";
		snprintf(origin, sizeof(origin), "ingest.routes[%zu].topic", i);
		if (topic &&
		    topics__add(t, json_object_get(tclusters, cl), cl, topic, origin, err, errlen))
			return -1;
		json_t *m = json_object_get(r, "mirror");
		const char *mcl = json_string_value(json_object_get(m, "cluster"));
		const char *mtopic = json_string_value(json_object_get(m, "topic"));
		snprintf(origin, sizeof(origin), "ingest.routes[%zu].mirror.topic", i);
		if (mcl && mtopic &&
		    topics__add(t, json_object_get(tclusters, mcl), mcl, mtopic, origin, err,
		                errlen))
			return -1;
	}
	json_t *ob = json_object_get(root, "outbound");
	const char *ocl = json_string_value(json_object_get(ob, "cluster"));
	ocl = ocl ? ocl : "main";
	json_array_foreach(json_object_get(ob, "routes"), i, r)
	{
		const char *topic = json_string_value(json_object_get(r, "kafka_topic"));
		snprintf(origin, sizeof(origin), "outbound.routes[%zu].kafka_topic", i);
		if (topic && topics__add(t, json_object_get(tclusters, ocl), ocl, topic, origin,
		                         err, errlen))
			return -1;
	}
	return 0;
}

static int topics__names(tb_topic_spec *s, const json_t *names, const char *where, char *err,
                         size_t errlen)
{
	size_t i;
	json_t *n;
	if (!s->is_template)
		return tb_topics__fail(err, errlen,
		                       "%s.names: only for a template ({placeholders})", where);
	if (!json_is_array(names))
		return tb_topics__fail(err, errlen, "%s.names: must be an array of topic names",
		                       where);
	s->names = calloc(json_array_size(names) + 1, sizeof(*s->names));
	if (!s->names)
		return tb_topics__fail(err, errlen, "out of memory");
	json_array_foreach(names, i, n)
	{
		const char *name = json_string_value(n);
		if (!name || !topics__name_ok(name))
			return tb_topics__fail(
			    err, errlen, "%s.names[%zu]: must be a Kafka topic name", where, i);
		if (!tb_topics_template_match(&s->topic, name))
			return tb_topics__fail(err, errlen,
			                       "%s.names[%zu]: \"%s\" is not a topic of "
			                       "the template \"%s\"",
			                       where, i, name, s->topic.text);
		if (!(s->names[s->nnames] = strdup(name)))
			return tb_topics__fail(err, errlen, "out of memory");
		s->nnames++;
	}
	return 0;
}

/* topics.topics: per-topic settings, keyed by the route's topic or template. */
static int topics__overrides(tb_topics *t, const json_t *entries, char *err, size_t errlen)
{
	static const char *const allowed[] = {
	    "partitions", "retention", "replication_factor", "configs", "names", "comment", NULL};
	const char *text;
	json_t *e;
	char where[320];
	if (!json_is_object(entries))
		return tb_topics__fail(err, errlen,
		                       "topics.topics: must be an object: {\"TOPIC or "
		                       "TEMPLATE\": {partitions, replication_factor, "
		                       "configs, retention, names}}");
	json_object_foreach((json_t *)entries, text, e)
	{
		snprintf(where, sizeof(where), "topics.topics.%s", text);
		if (!json_is_object(e))
			return tb_topics__fail(err, errlen, "%s: must be an object", where);
		if (topics__only(e, where, allowed, err, errlen))
			return -1;
		struct topics__settings st;
		if (topics__settings(e, where, &st, err, errlen))
			return -1;
		bool found = false;
		for (size_t i = 0; i < t->nspecs; i++) {
			tb_topic_spec *s = &t->specs[i];
			if (strcmp(s->topic.text, text))
				continue;
			found = true;
			topics__apply(s, &st);
			if (topics__apply_configs(s, st.configs))
				return tb_topics__fail(err, errlen, "out of memory");
			json_t *names = json_object_get(e, "names");
			if (names && topics__names(s, names, where, err, errlen))
				return -1;
		}
		if (!found)
			return tb_topics__fail(err, errlen,
			                       "%s: not the topic of an ingest route, mirror or "
			                       "outbound route on a cluster with a topics policy",
			                       where);
	}
	return 0;
}

/* A wanted finite retention must be said to be wanted. */
static int topics__check_specs(const tb_topics *t, char *err, size_t errlen)
{
	for (size_t i = 0; i < t->nspecs; i++) {
		const tb_topic_spec *s = &t->specs[i];
		tb_topic_actual want = {
		    .exists = true, .configs = s->configs, .nconfigs = s->nconfigs};
		char why[80];
		if (!s->finite_ok && tb_topic_retention_finite(&want, why, sizeof(why)))
			return tb_topics__fail(
			    err, errlen,
			    "topics: %s (\"%s\" on cluster %s) wants finite "
			    "retention (%s): set \"retention\": \"finite-ok\" for it",
			    s->origin, s->topic.text, s->cluster, why);
	}
	return 0;
}

int tb_topics_parse(tb_topics *t, const json_t *root, char *err, size_t errlen)
{
	static const char *const allowed[] = {"startup_timeout_ms",
	                                      "admin_timeout_ms",
	                                      "check_interval_s",
	                                      "clusters",
	                                      "topics",
	                                      "comment",
	                                      NULL};
	static const char *const callowed[] = {
	    "policy", "partitions", "replication_factor", "configs", "retention", "comment", NULL};
	memset(t, 0, sizeof(*t));
	t->startup_timeout_ms = 10000;
	t->admin_timeout_ms = 5000;
	t->check_interval_s = 300;
	const json_t *j = json_object_get(root, "topics");
	if (!j)
		return 0;
	if (!json_is_object(j))
		return tb_topics__fail(err, errlen, "topics: must be an object with \"clusters\"");
	if (topics__only(j, "topics", allowed, err, errlen) ||
	    topics__int(j, "startup_timeout_ms", "topics", 0, 600000, &t->startup_timeout_ms, err,
	                errlen) ||
	    topics__int(j, "admin_timeout_ms", "topics", 100, 600000, &t->admin_timeout_ms, err,
	                errlen) ||
	    topics__int(j, "check_interval_s", "topics", 0, 86400, &t->check_interval_s, err,
	                errlen))
		goto error;

	const json_t *clusters = json_object_get(j, "clusters");
	if (!json_is_object(clusters))
		return tb_topics__fail(
		    err, errlen,
		    "topics.clusters: must be an object: {\"CLUSTER\": {\"policy\": "
		    "\"verify\"|\"create\"|\"enforce\"|\"off\", ...}}");
	t->clusters = calloc(json_object_size(clusters) + 1, sizeof(*t->clusters));
	if (!t->clusters)
		return tb_topics__fail(err, errlen, "out of memory");
	const char *name;
	json_t *c;
	char where[160];
	json_object_foreach((json_t *)clusters, name, c)
	{
		snprintf(where, sizeof(where), "topics.clusters.%s", name);
		if (!json_is_object(json_object_get(json_object_get(root, "clusters"), name))) {
			tb_topics__fail(err, errlen, "%s: no cluster named \"%s\" in \"clusters\"",
			                where, name);
			goto error;
		}
		if (!json_is_object(c)) {
			tb_topics__fail(err, errlen, "%s: must be an object with \"policy\"",
			                where);
			goto error;
		}
		if (topics__only(c, where, callowed, err, errlen))
			goto error;
		const char *p = json_string_value(json_object_get(c, "policy"));
		int policy = -1;
		for (int k = 0; p && k <= TB_TOPICS_ENFORCE; k++)
			if (!strcmp(p, topics__policies[k]))
				policy = k;
		if (policy < 0) {
			tb_topics__fail(err, errlen,
			                "%s.policy: must be \"verify\", \"create\", \"enforce\" or "
			                "\"off\"",
			                where);
			goto error;
		}
		struct topics__settings st;
		if (topics__settings(c, where, &st, err, errlen))
			goto error;
		tb_topics_cluster *tc = &t->clusters[t->nclusters];
		if (!(tc->name = strdup(name))) {
			tb_topics__fail(err, errlen, "out of memory");
			goto error;
		}
		tc->policy = policy;
		t->nclusters++;
	}
	if (topics__collect(t, root, clusters, err, errlen))
		goto error;
	const json_t *entries = json_object_get(j, "topics");
	if (entries && topics__overrides(t, entries, err, errlen))
		goto error;
	if (topics__check_specs(t, err, errlen))
		goto error;
	return 0;
error:
	tb_topics_free(t);
	return -1;
}

/* ---- comparison ---- */

static bool topics__minus_one(const char *v)
{
	return !v || !strcmp(v, "-1");
}

bool tb_topic_retention_finite(const tb_topic_actual *a, char *why, size_t whylen)
{
	const char *policy = tb_topic_actual_config(a, "cleanup.policy");
	const char *ms = tb_topic_actual_config(a, "retention.ms");
	const char *bytes = tb_topic_actual_config(a, "retention.bytes");
	char buf[80];
	if (!why) {
		why = buf;
		whylen = sizeof(buf);
	}
	if (policy && strstr(policy, "compact")) {
		snprintf(why, whylen, "cleanup.policy=%s", policy);
		return true;
	}
	if (!topics__minus_one(ms)) {
		snprintf(why, whylen, "retention.ms=%s", ms);
		return true;
	}
	if (!topics__minus_one(bytes)) {
		snprintf(why, whylen, "retention.bytes=%s", bytes);
		return true;
	}
	snprintf(why, whylen, "infinite");
	return false;
}

static bool topics__retention_setting(const char *name)
{
	return !strcmp(name, "retention.ms") || !strcmp(name, "retention.bytes") ||
	       !strcmp(name, "cleanup.policy");
}

static void topics__diff(tb_topic_report *r, const char *setting, const char *wanted,
                         const char *actual, bool warning)
{
	if (r->ndiffs == TB_TOPIC_MAX_DIFFS)
		return;
	tb_topic_diff *d = &r->diffs[r->ndiffs++];
	snprintf(d->setting, sizeof(d->setting), "%s", setting);
	snprintf(d->wanted, sizeof(d->wanted), "%s", wanted);
	snprintf(d->actual, sizeof(d->actual), "%s", actual ? actual : "(none)");
	d->warning = warning;
}

int tb_topics_compare(const tb_topic_spec *s, const char *topic, const tb_topic_actual *a,
                      tb_topic_report *r)
{
	char want[32], have[32];
	memset(r, 0, sizeof(*r));
	if (!(r->topic = strdup(topic)))
		return -1;
	r->spec = s;
	r->exists = a->exists;
	r->partitions = a->exists ? a->partitions : -1;
	r->replication_factor = a->exists ? a->replication_factor : -1;
	if (!a->exists) {
		r->verdict = TB_TOPIC_MISSING;
		snprintf(r->retention, sizeof(r->retention), "-");
		return 0;
	}
	bool errors = false, warnings = false;
	if (s->partitions > 0 && a->partitions != s->partitions) {
		snprintf(want, sizeof(want), "%d", s->partitions);
		snprintf(have, sizeof(have), "%d", a->partitions);
		topics__diff(r, "partitions", want, have, false);
		errors = true;
	}
	if (s->replication_factor > 0 && a->replication_factor != s->replication_factor) {
		snprintf(want, sizeof(want), "%d", s->replication_factor);
		snprintf(have, sizeof(have), "%d", a->replication_factor);
		topics__diff(r, "replication_factor", want, have, false);
		errors = true;
	}
	for (size_t i = 0; i < s->nconfigs; i++) {
		const char *actual = tb_topic_actual_config(a, s->configs[i].name);
		if (actual && !strcmp(actual, s->configs[i].value))
			continue;
		bool warning = s->finite_ok && topics__retention_setting(s->configs[i].name);
		topics__diff(r, s->configs[i].name, s->configs[i].value, actual, warning);
		if (warning)
			warnings = true;
		else
			errors = true;
	}
	bool finite = tb_topic_retention_finite(a, r->retention, sizeof(r->retention));
	if (finite && !s->finite_ok)
		r->verdict = TB_TOPIC_FINITE;
	else if (errors)
		r->verdict = TB_TOPIC_DIFFERS;
	else if (warnings || finite)
		r->verdict = TB_TOPIC_WARNING;
	else
		r->verdict = TB_TOPIC_OK;
	return 0;
}

void tb_topic_report_clear(tb_topic_report *r)
{
	free(r->topic);
	memset(r, 0, sizeof(*r));
}

void tb_topic_report_line(const tb_topic_report *r, char *out, size_t outlen)
{
	size_t n = 0;
	int k;
#define TOPICS_APPEND(...)                                                                         \
	do {                                                                                       \
		k = snprintf(out + n, outlen > n ? outlen - n : 0, __VA_ARGS__);                   \
		if (k > 0)                                                                         \
			n += (size_t)k;                                                            \
	} while (0)
	TOPICS_APPEND("topic %s (cluster %s): %s", r->topic, r->spec ? r->spec->cluster : "?",
	              tb_topic_verdict_name(r->verdict));
	if (r->verdict == TB_TOPIC_FINITE ||
	    (r->verdict == TB_TOPIC_WARNING && strcmp(r->retention, "infinite")))
		TOPICS_APPEND(" (%s%s)", r->retention,
		              r->verdict == TB_TOPIC_WARNING ? ", finite-ok" : "");
	if (r->created)
		TOPICS_APPEND(", created");
	if (r->error[0])
		TOPICS_APPEND(": %s", r->error);
	for (size_t i = 0; i < r->ndiffs; i++)
		TOPICS_APPEND("; %s: wanted %s, actual %s", r->diffs[i].setting, r->diffs[i].wanted,
		              r->diffs[i].actual);
#undef TOPICS_APPEND
	if (n >= outlen && outlen > 4)
		memcpy(out + outlen - 4, "...", 4);
}
