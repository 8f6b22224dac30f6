/*
 * tb_topics_check: one cluster's topics as Kafka has them, through
 * librdkafka's Admin API (metadata for existence, partitions and
 * replication factor; DescribeConfigs for the topic configs; CreateTopics
 * for the missing ones). Blocking, bounded by the timeout of each request:
 * the plugin calls it on the cluster's poll thread, the tool on its own.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tributary/topics.h"
#include "topics_int.h"

struct admin__topic {
	char *name;
	const tb_topic_spec *spec;
	tb_topic_actual actual;
	bool created;
	char error[256];
};

struct admin__set {
	struct admin__topic *v;
	size_t n, cap;
};

static int admin__add(struct admin__set *set, const tb_topic_spec *spec, const char *name)
{
	for (size_t i = 0; i < set->n; i++)
		if (!strcmp(set->v[i].name, name))
			return 0;
	if (set->n == set->cap) {
		size_t cap = set->cap ? set->cap * 2 : 16;
		struct admin__topic *grown = realloc(set->v, cap * sizeof(*grown));
		if (!grown)
			return -1;
		set->v = grown;
		set->cap = cap;
	}
	struct admin__topic *t = &set->v[set->n];
	memset(t, 0, sizeof(*t));
	if (!(t->name = strdup(name)))
		return -1;
	t->spec = spec;
	set->n++;
	return 0;
}

static void admin__set_free(struct admin__set *set)
{
	for (size_t i = 0; i < set->n; i++) {
		free(set->v[i].name);
		tb_topic_actual_clear(&set->v[i].actual);
	}
	free(set->v);
}

static const rd_kafka_metadata_topic_t *admin__md_topic(const struct rd_kafka_metadata *md,
                                                        const char *name)
{
	for (int i = 0; i < md->topic_cnt; i++)
		if (!strcmp(md->topics[i].topic, name) &&
		    md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR)
			return &md->topics[i];
	return NULL;
}

static int admin__metadata(rd_kafka_t *rk, int timeout_ms, const struct rd_kafka_metadata **md,
                           char *err, size_t errlen)
{
	rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, md, timeout_ms);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
		return tb_topics__fail(err, errlen, "cannot list the cluster's topics: %s",
		                       rd_kafka_err2str(e));
	return 0;
}

/* Existence, partitions and replication factor from the metadata. */
static void admin__fill(struct admin__set *set, const struct rd_kafka_metadata *md)
{
	for (size_t i = 0; i < set->n; i++) {
		const rd_kafka_metadata_topic_t *mt = admin__md_topic(md, set->v[i].name);
		tb_topic_actual *a = &set->v[i].actual;
		a->exists = mt != NULL;
		if (!mt)
			continue;
		a->partitions = mt->partition_cnt;
		a->replication_factor = -1;
		for (int p = 0; p < mt->partition_cnt; p++)
			if (a->replication_factor < 0 ||
			    mt->partitions[p].replica_cnt < a->replication_factor)
				a->replication_factor = mt->partitions[p].replica_cnt;
	}
}

/* One admin request: its own result queue, its options (timeout), its answer. */
struct admin__call {
	rd_kafka_queue_t *q;
	rd_kafka_AdminOptions_t *opts;
	rd_kafka_event_t *ev;
	int timeout_ms;
};

static int admin__call_begin(struct admin__call *c, rd_kafka_t *rk, rd_kafka_admin_op_t op,
                             int timeout_ms, char *err, size_t errlen)
{
	char e[256];
	c->ev = NULL;
	c->timeout_ms = timeout_ms;
	c->q = rd_kafka_queue_new(rk);
	c->opts = rd_kafka_AdminOptions_new(rk, op);
	if (!c->q || !c->opts)
		return tb_topics__fail(err, errlen, "out of memory");
	if (rd_kafka_AdminOptions_set_request_timeout(c->opts, timeout_ms, e, sizeof(e)) ||
	    (op == RD_KAFKA_ADMIN_OP_CREATETOPICS &&
	     rd_kafka_AdminOptions_set_operation_timeout(c->opts, timeout_ms, e, sizeof(e))))
		return tb_topics__fail(err, errlen, "admin options: %s", e);
	return 0;
}

/* Waits for the answer of type `type` (at most the timeout and a second);
 * -1 with `err` when none came or the whole request failed. */
static int admin__call_wait(struct admin__call *c, rd_kafka_event_type_t type, const char *what,
                            char *err, size_t errlen)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		long long left = c->timeout_ms + 1000 -
		                 ((now.tv_sec - start.tv_sec) * 1000LL +
		                  (now.tv_nsec - start.tv_nsec) / 1000000);
		rd_kafka_event_t *ev = left > 0 ? rd_kafka_queue_poll(c->q, (int)left) : NULL;
		if (!ev)
			return tb_topics__fail(err, errlen, "%s: no answer within %d ms", what,
			                       c->timeout_ms);
		if (rd_kafka_event_type(ev) == type) {
			c->ev = ev;
			break;
		}
		rd_kafka_event_destroy(ev);
	}
	if (rd_kafka_event_error(c->ev))
		return tb_topics__fail(err, errlen, "%s: %s", what,
		                       rd_kafka_event_error_string(c->ev));
	return 0;
}

static void admin__call_end(struct admin__call *c)
{
	if (c->ev)
		rd_kafka_event_destroy(c->ev);
	if (c->opts)
		rd_kafka_AdminOptions_destroy(c->opts);
	if (c->q)
		rd_kafka_queue_destroy(c->q);
}

/* Creates the missing topics of `set`; the outcome goes to each topic. */
static int admin__create(rd_kafka_t *rk, struct admin__set *set, int timeout_ms, char *err,
                         size_t errlen)
{
	rd_kafka_NewTopic_t **nt = calloc(set->n + 1, sizeof(*nt));
	struct admin__topic **which = calloc(set->n + 1, sizeof(*which));
	struct admin__call call = {0};
	size_t n = 0;
	char e[256];
	int rc = -1;
	if (!nt || !which) {
		tb_topics__fail(err, errlen, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < set->n; i++) {
		struct admin__topic *t = &set->v[i];
		if (t->actual.exists)
			continue;
		nt[n] = rd_kafka_NewTopic_new(t->name, t->spec->partitions,
		                              t->spec->replication_factor, e, sizeof(e));
		if (!nt[n]) {
			snprintf(t->error, sizeof(t->error), "cannot create: %.200s", e);
			continue;
		}
		for (size_t c = 0; c < t->spec->nconfigs; c++)
			if (rd_kafka_NewTopic_set_config(nt[n], t->spec->configs[c].name,
			                                 t->spec->configs[c].value)) {
				tb_topics__fail(err, errlen, "cannot create %s: config %s", t->name,
				                t->spec->configs[c].name);
				rd_kafka_NewTopic_destroy(nt[n]);
				goto done;
			}
		which[n++] = t;
	}
	if (n == 0) {
		rc = 0;
		goto done;
	}
	if (admin__call_begin(&call, rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout_ms, err, errlen))
		goto done;
	rd_kafka_CreateTopics(rk, nt, n, call.opts, call.q);
	if (admin__call_wait(&call, RD_KAFKA_EVENT_CREATETOPICS_RESULT, "CreateTopics", err,
	                     errlen))
		goto done;
	size_t cnt;
	const rd_kafka_topic_result_t **res =
	    rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(call.ev), &cnt);
	for (size_t r = 0; r < cnt; r++) {
		const char *name = rd_kafka_topic_result_name(res[r]);
		rd_kafka_resp_err_t te = rd_kafka_topic_result_error(res[r]);
		for (size_t k = 0; k < n; k++) {
			if (strcmp(which[k]->name, name))
				continue;
			if (te == RD_KAFKA_RESP_ERR_NO_ERROR)
				which[k]->created = true;
			else if (te != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
				snprintf(which[k]->error, sizeof(which[k]->error),
				         "cannot create: %s",
				         rd_kafka_topic_result_error_string(res[r])
				             ? rd_kafka_topic_result_error_string(res[r])
				             : rd_kafka_err2str(te));
		}
	}
	rc = 0;
done:
	admin__call_end(&call);
	if (nt) {
		for (size_t i = 0; i < n; i++)
			rd_kafka_NewTopic_destroy(nt[i]);
		free(nt);
	}
	free(which);
	return rc;
}

static int admin__copy_configs(const rd_kafka_ConfigResource_t *res, tb_topic_actual *a)
{
	size_t cnt;
	const rd_kafka_ConfigEntry_t **entries = rd_kafka_ConfigResource_configs(res, &cnt);
	a->configs = calloc(cnt + 1, sizeof(*a->configs));
	if (!a->configs)
		return -1;
	for (size_t i = 0; i < cnt; i++) {
		const char *v = rd_kafka_ConfigEntry_value(entries[i]);
		tb_topic_config *c = &a->configs[a->nconfigs];
		c->name = strdup(rd_kafka_ConfigEntry_name(entries[i]));
		c->value = strdup(v ? v : "");
		a->nconfigs++;
		if (!c->name || !c->value)
			return -1;
	}
	return 0;
}

/* The topic configs of the topics that exist. */
static int admin__describe(rd_kafka_t *rk, struct admin__set *set, int timeout_ms, char *err,
                           size_t errlen)
{
	rd_kafka_ConfigResource_t **cr = calloc(set->n + 1, sizeof(*cr));
	struct admin__call call = {0};
	size_t n = 0;
	int rc = -1;
	if (!cr) {
		tb_topics__fail(err, errlen, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < set->n; i++)
		if (set->v[i].actual.exists && !(cr[n++] = rd_kafka_ConfigResource_new(
		                                     RD_KAFKA_RESOURCE_TOPIC, set->v[i].name))) {
			n--;
			tb_topics__fail(err, errlen, "out of memory");
			goto done;
		}
	if (n == 0) {
		rc = 0;
		goto done;
	}
	if (admin__call_begin(&call, rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout_ms, err,
	                      errlen))
		goto done;
	rd_kafka_DescribeConfigs(rk, cr, n, call.opts, call.q);
	if (admin__call_wait(&call, RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT, "DescribeConfigs", err,
	                     errlen))
		goto done;
	size_t cnt;
	const rd_kafka_ConfigResource_t **res = rd_kafka_DescribeConfigs_result_resources(
	    rd_kafka_event_DescribeConfigs_result(call.ev), &cnt);
	for (size_t r = 0; r < cnt; r++) {
		const char *name = rd_kafka_ConfigResource_name(res[r]);
		for (size_t i = 0; i < set->n; i++) {
			struct admin__topic *t = &set->v[i];
			if (strcmp(t->name, name) || !t->actual.exists)
				continue;
			if (rd_kafka_ConfigResource_error(res[r])) {
				snprintf(
				    t->error, sizeof(t->error), "cannot describe: %s",
				    rd_kafka_ConfigResource_error_string(res[r])
				        ? rd_kafka_ConfigResource_error_string(res[r])
				        : rd_kafka_err2str(rd_kafka_ConfigResource_error(res[r])));
				continue;
			}
			if (admin__copy_configs(res[r], &t->actual)) {
				tb_topics__fail(err, errlen, "out of memory");
				goto done;
			}
		}
	}
	/* A topic the answer left out was not described. */
	for (size_t i = 0; i < set->n; i++)
		if (set->v[i].actual.exists && !set->v[i].actual.configs && !set->v[i].error[0])
			snprintf(set->v[i].error, sizeof(set->v[i].error),
			         "cannot describe: not in the answer");
	rc = 0;
done:
	admin__call_end(&call);
	if (cr) {
		for (size_t i = 0; i < n; i++)
			rd_kafka_ConfigResource_destroy(cr[i]);
		free(cr);
	}
	return rc;
}

/* A new topic shows in the metadata once its partitions have leaders. */
static int admin__await_created(rd_kafka_t *rk, struct admin__set *set, int timeout_ms,
                                const struct rd_kafka_metadata **md, char *err, size_t errlen)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		bool all = true;
		for (size_t i = 0; i < set->n; i++)
			if (set->v[i].created && !admin__md_topic(*md, set->v[i].name))
				all = false;
		clock_gettime(CLOCK_MONOTONIC, &now);
		long long spent =
		    (now.tv_sec - start.tv_sec) * 1000LL + (now.tv_nsec - start.tv_nsec) / 1000000;
		if (all || spent >= timeout_ms)
			return 0;
		nanosleep(&(struct timespec){.tv_nsec = 100000000}, NULL);
		rd_kafka_metadata_destroy(*md);
		*md = NULL;
		if (admin__metadata(rk, timeout_ms, md, err, errlen))
			return -1;
	}
}

int tb_topics_check(rd_kafka_t *rk, const tb_topics *t, const char *cluster,
                    const char *const *extra, size_t nextra, bool create, int timeout_ms,
                    tb_topic_report **reports, size_t *nreports, char *err, size_t errlen)
{
	const struct rd_kafka_metadata *md = NULL;
	struct admin__set set = {0};
	tb_topic_report *out = NULL;
	int rc = -1;
	*reports = NULL;
	*nreports = 0;
	if (admin__metadata(rk, timeout_ms, &md, err, errlen))
		return -1;
	for (size_t s = 0; s < t->nspecs; s++) {
		const tb_topic_spec *spec = &t->specs[s];
		if (strcmp(spec->cluster, cluster))
			continue;
		if (!spec->is_template && admin__add(&set, spec, spec->topic.text))
			goto nomem;
		for (size_t k = 0; k < spec->nnames; k++)
			if (admin__add(&set, spec, spec->names[k]))
				goto nomem;
	}
	for (int i = 0; i < md->topic_cnt; i++) {
		const tb_topic_spec *spec = tb_topics_match(t, cluster, md->topics[i].topic);
		if (spec && md->topics[i].err == RD_KAFKA_RESP_ERR_NO_ERROR &&
		    admin__add(&set, spec, md->topics[i].topic))
			goto nomem;
	}
	for (size_t i = 0; i < nextra; i++) {
		const tb_topic_spec *spec = tb_topics_match(t, cluster, extra[i]);
		if (spec && admin__add(&set, spec, extra[i]))
			goto nomem;
	}
	admin__fill(&set, md);
	if (create) {
		if (admin__create(rk, &set, timeout_ms, err, errlen) ||
		    admin__await_created(rk, &set, timeout_ms, &md, err, errlen))
			goto done;
		admin__fill(&set, md);
	}
	if (admin__describe(rk, &set, timeout_ms, err, errlen))
		goto done;

	out = calloc(set.n + 1, sizeof(*out));
	if (!out)
		goto nomem;
	for (size_t i = 0; i < set.n; i++) {
		struct admin__topic *a = &set.v[i];
		if (tb_topics_compare(a->spec, a->name, &a->actual, &out[i]))
			goto nomem;
		*nreports = i + 1;
		out[i].created = a->created;
		if (a->error[0]) {
			snprintf(out[i].error, sizeof(out[i].error), "%s", a->error);
			if (a->actual.exists)
				out[i].verdict = TB_TOPIC_UNKNOWN;
		}
	}
	*reports = out;
	out = NULL;
	rc = 0;
	goto done;
nomem:
	tb_topics__fail(err, errlen, "out of memory");
done:
	if (out) {
		for (size_t i = 0; i < *nreports; i++)
			tb_topic_report_clear(&out[i]);
		free(out);
		*nreports = 0;
	}
	if (md)
		rd_kafka_metadata_destroy(md);
	admin__set_free(&set);
	return rc;
}
