/*
 * The "topics" section (docs/topics.md): each cluster's topics checked
 * against tributary.json, created when missing (policy create, enforce),
 * and, with enforce, topics with finite retention refused: at start the
 * broker does not start; a topic that appears later (a template's) has its
 * events refused with topic_not_compliant.
 *
 * Threads: every admin request runs on the cluster's poll thread
 * (topics__poll, from cluster.c). Each cluster's table of known topics and
 * their verdicts is that thread's, under a mutex; what the main thread reads
 * per event is an immutable snapshot of it (sorted, verdicts copied) that
 * the poll thread replaces whole with one atomic store, and frees once the
 * main thread no longer reads it (a one-slot hazard pointer, as the registry
 * cache in registry.c). A topic the snapshot lacks is added to the table
 * under a trylock, never waited for (the next event asks again), and is in
 * the next snapshot (the next poll, 100 ms at most). Log lines cross under
 * the mutex and are written on the tick. At start the main thread waits for
 * the first check, at most topics.startup_timeout_ms.
 *
 * A cluster tracks TOPICS_MAX_TRACKED topics at most (a template with a
 * client-chosen placeholder must not grow the table without bound): a
 * managed topic beyond it cannot be checked, which is logged once, and
 * under policy enforce its events are refused (never unchecked silently).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tributary.h"
#include "tributary/topics.h"
#include "tributary/util.h"

#define TOPICS_BUCKETS 1024
#ifndef TOPICS_MAX_TRACKED       /* the unit test sets a small one */
#define TOPICS_MAX_TRACKED 10000 /* per cluster: beyond it, topics cannot be checked */
#endif
#define TOPICS_RETRY_S 2 /* after a failed check */
#define TOPICS_LOG 64

enum { TOPICS_PENDING = -2, TOPICS_UNMANAGED = -1 };

struct topics__entry {
	struct topics__entry *next;
	int state; /* TOPICS_PENDING, TOPICS_UNMANAGED or an enum tb_topic_verdict */
	char why[80];
	char name[];
};

/* A cluster's table as the main thread reads it, sorted by name: replaced
 * whole, never changed. Names are the table's (entries live until the
 * plugin stops). */
struct topics__snap {
	size_t n;
	struct topics__seen {
		const char *name;
		int state;
		char why[80];
	} e[];
};

struct topics__cluster {
	enum tb_topics_policy policy;
	struct topics__entry *buckets[TOPICS_BUCKETS];
	size_t tracked;
	bool dirty;       /* the table changed since the snapshot was made */
	atomic_bool full; /* TOPICS_MAX_TRACKED reached: new topics are not tracked */
	bool full_logged; /* the main thread's */
	_Atomic(struct topics__snap *) snap;
	_Atomic(struct topics__snap *) hazard; /* the snapshot the main thread reads */
	bool pending;                          /* a topic seen in use waits for its check */
	bool checked;                          /* at least one check succeeded */
	bool failing;                          /* the last check failed (logged once per outage) */
	time_t next_check;
	unsigned count[TB_TOPIC_UNKNOWN + 1]; /* verdicts of the last check */
};

struct tbp_topics_state {
	tb_topics spec;
	pthread_mutex_t lock; /* the tables, the log, `started` */
	pthread_cond_t started;
	struct topics__cluster *clusters; /* one per tb->clusters[i] */
	size_t nclusters;
	struct {
		int level;
		char line[512];
	} log[TOPICS_LOG];
	unsigned nlog, dropped;
	atomic_uint_fast64_t created, check_failures, refused, untracked;
	time_t next_sys;
	bool tick_registered;
};

static void topics__note(struct tbp_topics_state *st, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Under st->lock. */
static void topics__note(struct tbp_topics_state *st, int level, const char *fmt, ...)
{
	va_list ap;
	if (st->nlog == TOPICS_LOG) {
		st->dropped++;
		return;
	}
	st->log[st->nlog].level = level;
	va_start(ap, fmt);
	vsnprintf(st->log[st->nlog].line, sizeof(st->log[0].line), fmt, ap);
	va_end(ap);
	st->nlog++;
}

/* Main thread. */
static void topics__drain(struct tbp_topics_state *st)
{
	pthread_mutex_lock(&st->lock);
	for (unsigned i = 0; i < st->nlog; i++)
		mosquitto_log_printf(st->log[i].level, TB_LOG_PREFIX "%s", st->log[i].line);
	if (st->dropped)
		mosquitto_log_printf(MOSQ_LOG_WARNING,
		                     TB_LOG_PREFIX "topics: %u more lines (tributary-topics verify "
		                                   "lists every topic)",
		                     st->dropped);
	st->nlog = st->dropped = 0;
	pthread_mutex_unlock(&st->lock);
}

static struct tbp_topics_state *topics__state(struct tributary *tb)
{
	return atomic_load(&tb->topics);
}

/* Under st->lock: the entry for `name`, added with `state` when absent
 * (NULL when the table is full or without memory). */
static struct topics__entry *topics__entry(struct topics__cluster *tc, const char *name, int state,
                                           bool add)
{
	size_t h = (size_t)(tb_fnv1a(TB_FNV1A_BASIS, name, strlen(name)) % TOPICS_BUCKETS);
	for (struct topics__entry *e = tc->buckets[h]; e; e = e->next)
		if (!strcmp(e->name, name))
			return e;
	if (!add)
		return NULL;
	if (tc->tracked >= TOPICS_MAX_TRACKED) {
		atomic_store(&tc->full, true);
		return NULL;
	}
	size_t len = strlen(name);
	struct topics__entry *e = malloc(sizeof(*e) + len + 1);
	if (!e)
		return NULL;
	memcpy(e->name, name, len + 1);
	e->state = state;
	e->why[0] = '\0';
	e->next = tc->buckets[h];
	tc->buckets[h] = e;
	tc->tracked++;
	tc->dirty = true;
	return e;
}

static int topics__seen_cmp(const void *a, const void *b)
{
	return strcmp(((const struct topics__seen *)a)->name,
	              ((const struct topics__seen *)b)->name);
}

/* Poll thread: when the table changed, a new snapshot of it replaces the
 * main thread's; the one replaced is freed once the main thread is done
 * with it. */
static void topics__publish_snap(struct tbp_topics_state *st, struct topics__cluster *tc)
{
	pthread_mutex_lock(&st->lock);
	struct topics__snap *next = NULL;
	if (tc->dirty && (next = malloc(sizeof(*next) + tc->tracked * sizeof(next->e[0])))) {
		next->n = 0;
		for (size_t b = 0; b < TOPICS_BUCKETS; b++)
			for (struct topics__entry *e = tc->buckets[b]; e; e = e->next) {
				struct topics__seen *v = &next->e[next->n++];
				v->name = e->name;
				v->state = e->state;
				memcpy(v->why, e->why, sizeof(v->why));
			}
		tc->dirty = false;
	}
	pthread_mutex_unlock(&st->lock);
	if (!next)
		return; /* unchanged (or out of memory: the next poll tries again) */
	qsort(next->e, next->n, sizeof(next->e[0]), topics__seen_cmp);
	struct topics__snap *old = atomic_exchange(&tc->snap, next);
	while (old && atomic_load(&tc->hazard) == old) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	free(old);
}

static int topics__level(enum tb_topic_verdict v)
{
	return tb_topic_verdict_is_error(v) ? MOSQ_LOG_ERR
	       : v == TB_TOPIC_WARNING      ? MOSQ_LOG_WARNING
	                                    : MOSQ_LOG_NOTICE;
}

/* Under st->lock: the check's verdicts into the table; a line for each
 * topic whose verdict or retention is new or changed, or that was created. */
static void topics__record(struct tbp_topics_state *st, struct topics__cluster *tc,
                           tb_topic_report *r, size_t n, const char *policy)
{
	char line[480];
	memset(tc->count, 0, sizeof(tc->count));
	for (size_t i = 0; i < n; i++) {
		struct topics__entry *e = topics__entry(tc, r[i].topic, TOPICS_PENDING, true);
		tc->count[r[i].verdict]++;
		if (r[i].created)
			atomic_fetch_add(&st->created, 1);
		bool changed =
		    !e || e->state != (int)r[i].verdict || strcmp(e->why, r[i].retention);
		if (e && changed) {
			e->state = (int)r[i].verdict;
			snprintf(e->why, sizeof(e->why), "%s", r[i].retention);
			tc->dirty = true;
		}
		if (!r[i].created && (!changed || r[i].verdict == TB_TOPIC_OK))
			continue;
		tb_topic_report_line(&r[i], line, sizeof(line));
		topics__note(st, topics__level(r[i].verdict), "topics: %s (policy %s)", line,
		             policy);
	}
}

/* Under st->lock: the topics seen in use, for the check (entries live
 * until the plugin stops, so the names stay valid without the lock). */
static const char **topics__tracked(struct topics__cluster *tc, size_t *n)
{
	const char **names = calloc(tc->tracked + 1, sizeof(*names));
	*n = 0;
	if (!names)
		return NULL;
	for (size_t b = 0; b < TOPICS_BUCKETS; b++)
		for (struct topics__entry *e = tc->buckets[b]; e; e = e->next)
			if (e->state != TOPICS_UNMANAGED)
				names[(*n)++] = e->name;
	return names;
}

/* Poll thread: a check when one is due (start, topics.check_interval_s,
 * or a topic seen in use for the first time). */
void topics__poll(struct tbp_cluster *c)
{
	struct tributary *tb = c->tb;
	struct tbp_topics_state *st = topics__state(tb);
	if (!st)
		return;
	struct topics__cluster *tc = &st->clusters[c - tb->clusters];
	if (tc->policy == TB_TOPICS_OFF || atomic_load(&c->stop))
		return;
	topics__publish_snap(st, tc); /* the topics the main thread added */
	time_t now = time(NULL);
	size_t nextra = 0;
	const char **extra = NULL;
	pthread_mutex_lock(&st->lock);
	bool due = tc->pending || now >= tc->next_check;
	if (due) {
		tc->pending = false;
		extra = topics__tracked(tc, &nextra);
		/* Until this check ends, none other is due. */
		tc->next_check = now + 3600;
	}
	pthread_mutex_unlock(&st->lock);
	if (!due)
		return;

	tb_topic_report *r = NULL;
	size_t n = 0;
	char err[512];
	int rc = tb_topics_check(c->rk, &st->spec, c->name, extra, nextra,
	                         tc->policy >= TB_TOPICS_CREATE, st->spec.admin_timeout_ms, &r, &n,
	                         err, sizeof(err));
	free(extra);
	now = time(NULL);
	pthread_mutex_lock(&st->lock);
	if (rc) {
		atomic_fetch_add(&st->check_failures, 1);
		if (!tc->failing)
			topics__note(st, MOSQ_LOG_ERR,
			             "topics: cluster %s: check failed (retried every %d s): %s",
			             c->name, TOPICS_RETRY_S, err);
		tc->failing = true;
		tc->next_check = now + TOPICS_RETRY_S;
		tc->pending = tc->pending || nextra > 0;
	} else {
		if (tc->failing)
			topics__note(st, MOSQ_LOG_NOTICE, "topics: cluster %s: checked again",
			             c->name);
		topics__record(st, tc, r, n, tb_topics_policy_name(tc->policy));
		tc->failing = false;
		tc->next_check =
		    st->spec.check_interval_s ? now + st->spec.check_interval_s : (time_t)1 << 62;
	}
	pthread_mutex_unlock(&st->lock);
	/* `checked` once the main thread sees the verdicts: the start waits
	 * for it, and enforce refuses from the first event */
	topics__publish_snap(st, tc);
	pthread_mutex_lock(&st->lock);
	tc->checked = tc->checked || !rc;
	pthread_cond_broadcast(&st->started);
	pthread_mutex_unlock(&st->lock);
	for (size_t i = 0; i < n; i++)
		tb_topic_report_clear(&r[i]);
	free(r);
}

/* Main thread: `topic` as the snapshot has it, or NULL. */
static const struct topics__seen *topics__snap_find(const struct topics__snap *s, const char *topic)
{
	struct topics__seen key = {.name = topic};
	return s && s->n ? bsearch(&key, s->e, s->n, sizeof(s->e[0]), topics__seen_cmp) : NULL;
}

/* Main thread: a managed topic the table has no room for cannot be
 * checked: logged once per cluster; refused under enforce. */
static bool topics__untracked(struct tbp_topics_state *st, struct topics__cluster *tc,
                              const struct tbp_cluster *c, const char *topic, char *err,
                              size_t errlen)
{
	bool enforce = tc->policy == TB_TOPICS_ENFORCE;
	atomic_fetch_add(&st->untracked, 1);
	if (!tc->full_logged) {
		tc->full_logged = true;
		mosquitto_log_printf(enforce ? MOSQ_LOG_ERR : MOSQ_LOG_WARNING,
		                     TB_LOG_PREFIX "topics: cluster %s already tracks %d topics "
		                                   "(the limit): topic %s and every further new "
		                                   "topic cannot be checked%s",
		                     c->name, TOPICS_MAX_TRACKED, topic,
		                     enforce ? "; their events are refused (policy enforce)"
		                             : " (counted in $SYS/tributary/topics/untracked)");
	}
	if (!enforce)
		return false;
	snprintf(err, errlen,
	         "Kafka topic %s cannot be checked: cluster %s already tracks %d topics (the "
	         "limit); refused by the topics policy enforce",
	         topic, c->name, TOPICS_MAX_TRACKED);
	return true;
}

/* Main thread: a topic the snapshot lacks goes into the table for the
 * cluster's thread to check; its events go on until its verdict is known.
 * Never waits for the lock: when the thread holds it, the next event of
 * this topic asks again (with the table full, a managed topic is then taken
 * for one it has no room for). */
static bool topics__unseen(struct tbp_topics_state *st, struct topics__cluster *tc,
                           const struct tbp_cluster *c, const char *topic, char *err, size_t errlen)
{
	bool managed = tb_topics_match(&st->spec, c->name, topic) != NULL;
	struct topics__entry *e = NULL;
	if (!pthread_mutex_trylock(&st->lock)) {
		e = topics__entry(tc, topic, managed ? TOPICS_PENDING : TOPICS_UNMANAGED, true);
		if (e && e->state == TOPICS_PENDING)
			tc->pending = true;
		pthread_mutex_unlock(&st->lock);
	}
	if (e || !managed || !atomic_load(&tc->full))
		return false; /* tracked; unmanaged; or out of memory, busy: asked again */
	return topics__untracked(st, tc, c, topic, err, errlen);
}

/* Main thread, for every event produced to `topic` on cluster `c`: true
 * (with the reason in `err`) when policy enforce refuses the topic. Reads
 * the cluster's snapshot, no lock. A topic seen for the first time is
 * checked on the cluster's thread; until its verdict is known its events
 * go on. */
bool topics__refuse(struct tributary *tb, struct tbp_cluster *c, const char *topic, char *err,
                    size_t errlen)
{
	struct tbp_topics_state *st = topics__state(tb);
	if (!st)
		return false;
	struct topics__cluster *tc = &st->clusters[c - tb->clusters];
	if (tc->policy == TB_TOPICS_OFF)
		return false;
	struct topics__snap *s;
	do {
		s = atomic_load(&tc->snap);
		atomic_store(&tc->hazard, s);
	} while (atomic_load(&tc->snap) != s);
	const struct topics__seen *v = topics__snap_find(s, topic);
	bool refuse = false;
	if (!v)
		refuse = topics__unseen(st, tc, c, topic, err, errlen);
	else if (v->state == TB_TOPIC_FINITE && tc->policy == TB_TOPICS_ENFORCE) {
		snprintf(err, errlen,
		         "Kafka topic %s has finite retention (%s): refused by the topics policy "
		         "enforce of cluster %s",
		         topic, v->why, c->name);
		refuse = true;
	}
	atomic_store(&tc->hazard, NULL);
	if (refuse)
		atomic_fetch_add(&st->refused, 1);
	return refuse;
}

static void topics__put(const char *name, unsigned long long v)
{
	char topic[96];
	snprintf(topic, sizeof(topic), "$SYS/tributary/topics/%s", name);
	stats__put(topic, v);
}

static void topics__publish_stats(struct tributary *tb, struct tbp_topics_state *st)
{
	unsigned long long count[TB_TOPIC_UNKNOWN + 1] = {0};
	pthread_mutex_lock(&st->lock);
	for (size_t i = 0; i < st->nclusters; i++)
		for (int v = 0; v <= TB_TOPIC_UNKNOWN; v++)
			count[v] += st->clusters[i].count[v];
	pthread_mutex_unlock(&st->lock);
	topics__put("ok", count[TB_TOPIC_OK]);
	topics__put("warnings", count[TB_TOPIC_WARNING]);
	topics__put("missing", count[TB_TOPIC_MISSING]);
	topics__put("differs", count[TB_TOPIC_DIFFERS]);
	topics__put("finite_retention", count[TB_TOPIC_FINITE]);
	topics__put("unknown", count[TB_TOPIC_UNKNOWN]);
	topics__put("created", atomic_load(&st->created));
	topics__put("check_failures", atomic_load(&st->check_failures));
	topics__put("refused", atomic_load(&st->refused));
	topics__put("untracked", atomic_load(&st->untracked));
	(void)tb;
}

static int topics__on_tick(int event, void *event_data, void *userdata)
{
	struct tributary *tb = userdata;
	struct tbp_topics_state *st = topics__state(tb);
	(void)event;
	(void)event_data;
	if (!st)
		return MOSQ_ERR_SUCCESS;
	topics__drain(st);
	if (tb->sys_interval_s > 0) {
		time_t now = time(NULL);
		if (now >= st->next_sys) {
			st->next_sys = now + tb->sys_interval_s;
			topics__publish_stats(tb, st);
		}
	}
	return MOSQ_ERR_SUCCESS;
}

static void topics__free(struct tbp_topics_state *st)
{
	if (!st)
		return;
	for (size_t i = 0; st->clusters && i < st->nclusters; i++)
		free(atomic_load(&st->clusters[i].snap));
	for (size_t i = 0; st->clusters && i < st->nclusters; i++)
		for (size_t b = 0; b < TOPICS_BUCKETS; b++)
			for (struct topics__entry *e = st->clusters[i].buckets[b], *next; e;
			     e = next) {
				next = e->next;
				free(e);
			}
	free(st->clusters);
	tb_topics_free(&st->spec);
	pthread_cond_destroy(&st->started);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

/* config.c: the section, checked. The clusters' threads, once plugin.c
 * starts them, begin with their first check. */
int topics__config(struct tributary *tb, const json_t *root)
{
	char err[512];
	struct tbp_topics_state *st = calloc(1, sizeof(*st));
	if (!st)
		return MOSQ_ERR_NOMEM;
	pthread_mutex_init(&st->lock, NULL);
	pthread_cond_init(&st->started, NULL);
	if (tb_topics_parse(&st->spec, root, err, sizeof(err))) {
		topics__free(st);
		return config__fail("%s", err);
	}
	if (st->spec.nclusters == 0) {
		topics__free(st);
		return MOSQ_ERR_SUCCESS;
	}
	st->nclusters = tb->nclusters;
	if (!(st->clusters = calloc(tb->nclusters, sizeof(*st->clusters)))) {
		topics__free(st);
		return MOSQ_ERR_NOMEM;
	}
	for (size_t i = 0; i < tb->nclusters; i++)
		st->clusters[i].policy = tb_topics_policy_of(&st->spec, tb->clusters[i].name);
	atomic_store(&tb->topics, st);
	return MOSQ_ERR_SUCCESS;
}

/* plugin.c, after the configuration: waits (at most
 * topics.startup_timeout_ms) for each cluster's first check; policy enforce
 * refuses to start when a topic has finite retention. */
int topics__start(struct tributary *tb)
{
	struct tbp_topics_state *st = topics__state(tb);
	struct timespec deadline;
	int rc;
	if (!st)
		return MOSQ_ERR_SUCCESS;
	if ((rc = mosquitto_callback_register(tb->pid, MOSQ_EVT_TICK, topics__on_tick, NULL, tb)))
		return rc;
	st->tick_registered = true;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += st->spec.startup_timeout_ms / 1000;
	deadline.tv_nsec += (long)(st->spec.startup_timeout_ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&st->lock);
	for (;;) {
		bool all = true;
		for (size_t i = 0; i < st->nclusters; i++)
			if (st->clusters[i].policy != TB_TOPICS_OFF && !st->clusters[i].checked)
				all = false;
		if (all || pthread_cond_timedwait(&st->started, &st->lock, &deadline) == ETIMEDOUT)
			break;
	}
	pthread_mutex_unlock(&st->lock);
	topics__drain(st);

	rc = MOSQ_ERR_SUCCESS;
	pthread_mutex_lock(&st->lock);
	for (size_t i = 0; i < st->nclusters; i++) {
		struct topics__cluster *tc = &st->clusters[i];
		if (tc->policy == TB_TOPICS_OFF)
			continue;
		if (!tc->checked) {
			mosquitto_log_printf(MOSQ_LOG_WARNING,
			                     TB_LOG_PREFIX "topics: cluster %s not checked within "
			                                   "topics.startup_timeout_ms (%d ms): "
			                                   "starting; the check goes on",
			                     tb->clusters[i].name, st->spec.startup_timeout_ms);
			continue;
		}
		if (tc->policy == TB_TOPICS_ENFORCE && tc->count[TB_TOPIC_FINITE]) {
			mosquitto_log_printf(MOSQ_LOG_ERR,
			                     TB_LOG_PREFIX
			                     "topics: refusing to start: %u topics of "
			                     "cluster %s have finite retention (policy "
			                     "enforce; listed above)",
			                     tc->count[TB_TOPIC_FINITE], tb->clusters[i].name);
			rc = MOSQ_ERR_INVAL;
		} else {
			mosquitto_log_printf(
			    MOSQ_LOG_NOTICE,
			    TB_LOG_PREFIX "topics: cluster %s (policy %s): %u ok, %u warnings, %u "
			                  "missing, %u differ, %u finite retention, %u unknown",
			    tb->clusters[i].name, tb_topics_policy_name(tc->policy),
			    tc->count[TB_TOPIC_OK], tc->count[TB_TOPIC_WARNING],
			    tc->count[TB_TOPIC_MISSING], tc->count[TB_TOPIC_DIFFERS],
			    tc->count[TB_TOPIC_FINITE], tc->count[TB_TOPIC_UNKNOWN]);
		}
	}
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* After config__free: the clusters' threads have stopped. */
void topics__cleanup(struct tributary *tb)
{
	struct tbp_topics_state *st = topics__state(tb);
	if (!st)
		return;
	if (st->tick_registered)
		mosquitto_callback_unregister(tb->pid, MOSQ_EVT_TICK, topics__on_tick, NULL);
	topics__drain(st);
	atomic_store(&tb->topics, NULL);
	topics__free(st);
}
