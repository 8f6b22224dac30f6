/*
 * The durable journal in front of Kafka (config section "journal").
 *
 * An accepted event is appended before the MESSAGE callback returns, so
 * before the client's PUBACK; librdkafka's delivery report releases it. What
 * Kafka never confirmed (an outage longer than the process, a crash) is
 * produced again at the next start, before any new traffic, keeping its
 * CloudEvents id so that consumers can de-duplicate.
 *
 * A delivery that fails for good while the broker runs (a non-retriable
 * Produce error, or message.timeout.ms when a cluster sets one) is produced
 * again by the retry thread, with exponential backoff, keeping each key's
 * order:
 *   - the delivery report puts the cluster in "retrying" and takes back
 *     (rd_kafka_purge) what librdkafka still queues behind the failed event,
 *     which would otherwise reach Kafka before it;
 *   - while a cluster retries, the main thread journals new events for it
 *     as always, but its producer thread does not produce them
 *     (journal__held);
 *   - a retry round waits for the backoff and for the producer to hold
 *     nothing (every delivery report served), then produces, oldest first,
 *     every event of the cluster that the journal still holds;
 *   - hand-back without stopping the main thread: from the "handoff" mark on,
 *     the producer thread also copies each held event into a small
 *     in-memory tail; the round produces the journal's entries below the
 *     mark, then, under retry_lock, the tail, and ends the retrying. An
 *     entry below the mark that the producer thread meets only after that
 *     (it waited in the cluster's ring) was produced by the round: it is
 *     skipped (retry_covered).
 * A failure during a round (retry_again) starts another round. The journal
 * is read on the retry thread only, never on Mosquitto's main thread.
 *
 * The journal's record carries the target cluster as an internal header,
 * which is removed before the record is produced.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tributary.h"
#include "tributary/journal.h"

#define JOURNAL_RETRY_BACKOFF_MS 100
#define JOURNAL_RETRY_BACKOFF_MAX_MS 30000

/* An event the main thread held during a hand-back (see above). */
struct journal_held {
	uint64_t seq;
	void *blob;
	size_t len;
};

struct tbp_journal_retry {
	pthread_t thread;
	bool started;
	pthread_mutex_t lock; /* guards the fields below */
	pthread_cond_t cond;
	bool stop, wanted;
	unsigned backoff_ms, backoff_max_ms;
	/* journal__config -> journal__open */
	char path[4096];
	tjournal_options opts;
	char sync_name[16];
	/* The hand-back of one cluster at a time: under its retry_lock. */
	struct tbp_cluster *handoff;
	uint64_t mark;
	struct journal_held *tail;
	size_t ntail, captail;
	bool tail_failed; /* out of memory: the hand-back is abandoned */
};

/* Called from any thread (the journal's own, or a delivery-report one). */
static void journal__log(void *opaque, tjournal_level level, const char *msg)
{
	struct tributary *tb = opaque;
	cluster__note_failure(tb, "journal%s: %s",
	                      level == TJOURNAL_LOG_ERROR     ? " error"
	                      : level == TJOURNAL_LOG_WARNING ? " warning"
	                                                      : "",
	                      msg);
}

int journal__config(struct tributary *tb, const json_t *j, const char *base_dir)
{
	static const char *const allowed[] = {"dir",
	                                      "sync",
	                                      "sync_interval_ms",
	                                      "max_bytes",
	                                      "segment_bytes",
	                                      "max_entry_bytes",
	                                      "retry_backoff_ms",
	                                      "retry_backoff_max_ms",
	                                      NULL};
	tjournal_options opts = {.sync = TJOURNAL_SYNC_ALWAYS};
	char path[4096];
	int rc;

	if (!j)
		return MOSQ_ERR_SUCCESS;
	if (!json_is_object(j))
		return config__fail("journal: must be an object");
	if ((rc = config__only(j, "journal", allowed)))
		return rc;
	const char *dir = json_string_value(json_object_get(j, "dir"));
	if (!dir || !*dir)
		return config__fail("journal.dir: required (a directory)");
	snprintf(path, sizeof(path), "%s%s%s", dir[0] == '/' ? "" : base_dir,
	         dir[0] == '/' ? "" : "/", dir);
	json_t *sync = json_object_get(j, "sync");
	if (sync && (!json_is_string(sync) ||
	             tjournal_sync_from_string(json_string_value(sync), &opts.sync)))
		return config__fail("journal.sync: must be \"always\", \"interval\" or \"never\"");
	static const struct {
		const char *name;
		long long min, max;
	} nums[] = {{"sync_interval_ms", 1, 60000},        {"max_bytes", 1 << 20, 1LL << 50},
	            {"segment_bytes", 1 << 16, 1LL << 40}, {"max_entry_bytes", 1024, 1 << 30},
	            {"retry_backoff_ms", 1, 600000},       {"retry_backoff_max_ms", 1, 3600000}};
	long long val[6] = {0, 0, 0, 0, JOURNAL_RETRY_BACKOFF_MS, JOURNAL_RETRY_BACKOFF_MAX_MS};
	for (int i = 0; i < 6; i++) {
		json_t *n = json_object_get(j, nums[i].name);
		if (!n)
			continue;
		if (!json_is_integer(n) || json_integer_value(n) < nums[i].min ||
		    json_integer_value(n) > nums[i].max)
			return config__fail("journal.%s: must be an integer from %lld to %lld",
			                    nums[i].name, nums[i].min, nums[i].max);
		val[i] = json_integer_value(n);
	}
	opts.sync_interval_ms = (unsigned)val[0];
	opts.max_bytes = (uint64_t)val[1];
	opts.segment_bytes = (uint64_t)val[2];
	opts.max_entry_bytes = (uint32_t)val[3];
	opts.log = journal__log;
	opts.log_opaque = tb;
	if (val[5] < val[4])
		return config__fail("journal.retry_backoff_max_ms: must be at least "
		                    "retry_backoff_ms (%lld)",
		                    val[4]);
	tb->retry = calloc(1, sizeof(*tb->retry));
	if (!tb->retry)
		return MOSQ_ERR_NOMEM;
	pthread_condattr_t ca;
	pthread_mutex_init(&tb->retry->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&tb->retry->cond, &ca);
	pthread_condattr_destroy(&ca);
	tb->retry->backoff_ms = (unsigned)val[4];
	tb->retry->backoff_max_ms = (unsigned)val[5];
	snprintf(tb->retry->path, sizeof(tb->retry->path), "%s", path);
	tb->retry->opts = opts;
	snprintf(tb->retry->sync_name, sizeof(tb->retry->sync_name), "%s",
	         sync ? json_string_value(sync) : "always");
	return MOSQ_ERR_SUCCESS;
}

/* plugin.c, once the producers run: opens what journal__config checked. */
int journal__open(struct tributary *tb)
{
	struct tbp_journal_retry *r = tb->retry;
	char err[512];
	if (!r)
		return MOSQ_ERR_SUCCESS;
	tb->journal = tjournal_open(r->path, &r->opts, err, sizeof(err));
	if (!tb->journal)
		return config__fail("journal.dir: %s: %s", r->path, err);
	tjournal_stats st;
	tjournal_get_stats(tb->journal, &st);
	mosquitto_log_printf(MOSQ_LOG_NOTICE,
	                     TB_LOG_PREFIX "journal %s (sync %s): %llu unconfirmed events to "
	                                   "produce again",
	                     r->path, r->sync_name, (unsigned long long)st.depth);
	return MOSQ_ERR_SUCCESS;
}

void journal__produce_begin(struct tbp_cluster *c)
{
	pthread_mutex_lock(&c->retry_lock);
}

bool journal__held(struct tbp_cluster *c, uint64_t seq, const void *blob, size_t len)
{
	struct tbp_journal_retry *r = c->tb->retry;
	if (!atomic_load(&c->retrying))
		return seq < c->retry_covered;
	/* r->handoff is only written under this cluster's retry_lock. */
	if (r->handoff != c || seq < r->mark || r->tail_failed)
		return true;
	void *copy = malloc(len);
	if (copy && r->ntail == r->captail) {
		size_t ncap = r->captail ? r->captail * 2 : 64;
		struct journal_held *t = realloc(r->tail, ncap * sizeof(*t));
		if (t) {
			r->tail = t;
			r->captail = ncap;
		}
	}
	if (!copy || r->ntail == r->captail) {
		r->tail_failed = true;
		free(copy);
		return true;
	}
	memcpy(copy, blob, len);
	r->tail[r->ntail++] = (struct journal_held){seq, copy, len};
	return true;
}

void journal__produce_end(struct tbp_cluster *c)
{
	pthread_mutex_unlock(&c->retry_lock);
}

void journal__release(struct tributary *tb, uint64_t seq)
{
	if (tb->journal && seq)
		tjournal_release(tb->journal, seq);
}

/* The cluster an entry names, or NULL. */
static struct tbp_cluster *journal__entry_cluster(struct tributary *tb, const tjournal_record *r)
{
	for (size_t i = 0; i < r->header_count; i++) {
		const tjournal_header *h = &r->headers[i];
		if (h->value && h->name_len == strlen(TBP_JOURNAL_CLUSTER_HEADER) &&
		    !memcmp(h->name, TBP_JOURNAL_CLUSTER_HEADER, h->name_len)) {
			char name[128];
			snprintf(name, sizeof(name), "%.*s", (int)h->value_len,
			         (const char *)h->value);
			return config__cluster(tb, name);
		}
	}
	return NULL;
}

/* UNUSABLE: undecodable, or for a cluster no longer configured: it stays in
 * the journal for the operator, and a retry goes past it. */
enum journal_sent { JOURNAL_SENT, JOURNAL_SKIPPED, JOURNAL_REFUSED, JOURNAL_UNUSABLE };

/* Produces one journal entry (any thread). With `only`, entries of other
 * clusters are skipped. A refusal is logged in `err`. */
static enum journal_sent journal__produce_entry(struct tributary *tb, uint64_t seq,
                                                const void *data, size_t len,
                                                const struct tbp_cluster *only, char *err,
                                                size_t errlen)
{
	tjournal_header stack[64], *hdrs = stack;
	tjournal_record r;
	enum journal_sent sent = JOURNAL_SKIPPED;

	int n = tjournal_record_view(data, len, &r, hdrs, 64);
	if (n > 64 && (hdrs = malloc((size_t)n * sizeof(*hdrs))) != NULL)
		n = tjournal_record_view(data, len, &r, hdrs, (size_t)n);
	if (!hdrs) {
		snprintf(err, errlen, "journal: entry %llu: out of memory",
		         (unsigned long long)seq);
		return JOURNAL_REFUSED;
	}
	if (n < 0) {
		/* Undecodable: keep it for the operator (tributary-journal-tool dump). */
		snprintf(err, errlen, "journal: entry %llu cannot be decoded; left in the journal",
		         (unsigned long long)seq);
		sent = JOURNAL_UNUSABLE;
		goto out;
	}
	struct tbp_cluster *cluster = journal__entry_cluster(tb, &r);
	if (!cluster) {
		snprintf(err, errlen,
		         "journal: entry %llu names a cluster that is no longer configured; left "
		         "in the journal",
		         (unsigned long long)seq);
		sent = JOURNAL_UNUSABLE;
		goto out;
	}
	if (only && cluster != only)
		goto out;
	char perr[384];
	if (produce__record(cluster, &r, seq, perr, sizeof(perr))) {
		snprintf(err, errlen, "journal: entry %llu: %s", (unsigned long long)seq, perr);
		sent = JOURNAL_REFUSED;
	} else {
		sent = JOURNAL_SENT;
	}
out:
	if (hdrs != stack)
		free(hdrs);
	return sent;
}

static int journal__replay_one(uint64_t seq, const void *data, size_t len, void *opaque)
{
	struct tributary *tb = opaque;
	char err[512];
	enum journal_sent sent = journal__produce_entry(tb, seq, data, len, NULL, err, sizeof(err));
	if (sent == JOURNAL_REFUSED || sent == JOURNAL_UNUSABLE)
		mosquitto_log_printf(MOSQ_LOG_ERR, TB_LOG_PREFIX "%s", err);
	else if (sent == JOURNAL_SENT)
		atomic_fetch_add(&tb->stats.replayed, 1);
	return 0;
}

static void *journal__retry_main(void *arg);

/* Before any new traffic: the callbacks are registered after this. */
int journal__replay(struct tributary *tb)
{
	if (!tb->journal)
		return MOSQ_ERR_SUCCESS;
	int rc = tjournal_replay(tb->journal, journal__replay_one, tb);
	if (rc != TJOURNAL_OK) {
		mosquitto_log_printf(MOSQ_LOG_ERR, TB_LOG_PREFIX "journal: replay failed: %s",
		                     tjournal_strerror(rc));
		return MOSQ_ERR_UNKNOWN;
	}
	if (atomic_load(&tb->stats.replayed))
		mosquitto_log_printf(MOSQ_LOG_NOTICE,
		                     TB_LOG_PREFIX
		                     "journal: producing %llu unconfirmed events again",
		                     (unsigned long long)atomic_load(&tb->stats.replayed));
	if (pthread_create(&tb->retry->thread, NULL, journal__retry_main, tb) != 0) {
		mosquitto_log_printf(MOSQ_LOG_ERR,
		                     TB_LOG_PREFIX "journal: cannot start the retry thread");
		return MOSQ_ERR_UNKNOWN;
	}
	tb->retry->started = true;
	return MOSQ_ERR_SUCCESS;
}

/* ---- retrying failed deliveries while running (see the top of the file) ---- */

void journal__failing(struct tbp_cluster *c, bool purge)
{
	atomic_store(&c->retrying, true);
	atomic_store(&c->retry_again, true);
	/* What librdkafka still queues behind the failed event (its partition
	 * resumes after the idempotent producer's epoch bump) would reach Kafka
	 * before the event's retry: take it back; it fails with _PURGE_QUEUE and
	 * is produced again in order. Once per round: until the next round
	 * nothing new of this cluster enters librdkafka. */
	if (purge && atomic_exchange(&c->purge_armed, false)) {
		rd_kafka_resp_err_t err =
		    rd_kafka_purge(c->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_NON_BLOCKING);
		if (err)
			cluster__note_failure(c->tb,
			                      "cluster %s: cannot take back queued events: %s",
			                      c->name, rd_kafka_err2str(err));
	}
}

void journal__delivery_failed(struct tbp_cluster *c, bool purge)
{
	struct tbp_journal_retry *r = c->tb->retry;
	journal__failing(c, purge);
	pthread_mutex_lock(&r->lock);
	r->wanted = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

struct journal_round {
	struct tributary *tb;
	struct tbp_cluster *c;
	uint64_t below; /* 0: no bound */
	uint64_t next;  /* one past the last entry passed */
	bool failed;
};

static bool journal__retry_stopping(struct tributary *tb)
{
	pthread_mutex_lock(&tb->retry->lock);
	bool stop = tb->retry->stop;
	pthread_mutex_unlock(&tb->retry->lock);
	return stop;
}

/* A refusal or a new failure ends the round: producing later events of the
 * cluster now could let them overtake the one left behind. */
static int journal__retry_one(uint64_t seq, const void *data, size_t len, void *opaque)
{
	struct journal_round *rd = opaque;
	char err[512];
	if (rd->below && seq >= rd->below)
		return 1;
	rd->next = seq + 1;
	if (atomic_load(&rd->c->retry_again) || journal__retry_stopping(rd->tb)) {
		rd->failed = true;
		return 1;
	}
	switch (journal__produce_entry(rd->tb, seq, data, len, rd->c, err, sizeof(err))) {
	case JOURNAL_SENT:
		atomic_fetch_add(&rd->tb->stats.retried, 1);
		return 0;
	case JOURNAL_SKIPPED:
	case JOURNAL_UNUSABLE: /* logged at the start */
		return 0;
	case JOURNAL_REFUSED:
	default:
		cluster__note_failure(rd->tb, "%s (retried later)", err);
		rd->failed = true;
		return 1;
	}
}

static void journal__tail_clear(struct tbp_journal_retry *r)
{
	for (size_t i = 0; i < r->ntail; i++)
		free(r->tail[i].blob);
	r->ntail = 0;
	r->handoff = NULL;
	r->tail_failed = false;
}

/* One round for cluster c: true when it is done (no longer retrying). */
static bool journal__retry_cluster(struct tributary *tb, struct tbp_cluster *c)
{
	struct tbp_journal_retry *r = tb->retry;
	char fatal[256];
	if (rd_kafka_fatal_error(c->rk, fatal, sizeof(fatal))) {
		/* The producer will never deliver again: the events stay in the
		 * journal for the next start. */
		if (!atomic_exchange(&c->retry_fatal_told, true))
			cluster__note_failure(
			    tb,
			    "cluster %s: the producer has a fatal error (%s): its "
			    "events stay in the journal until the broker restarts",
			    c->name, fatal);
		return true;
	}
	/* Every delivery report served: nothing of this cluster is in
	 * librdkafka, so the journal's unreleased entries are what to produce. */
	if (rd_kafka_outq_len(c->rk) > 0)
		return false;
	/* A purge that journal__failing started (non-blocking) may still wait
	 * in a broker thread's queue, and would take back what this round
	 * produces: this one returns when the broker threads have served every
	 * purge queued before it. */
	rd_kafka_resp_err_t perr = rd_kafka_purge(c->rk, RD_KAFKA_PURGE_F_QUEUE);
	if (perr) {
		cluster__note_failure(tb, "cluster %s: cannot take back queued events: %s", c->name,
		                      rd_kafka_err2str(perr));
		return false;
	}
	atomic_store(&c->retry_again, false);
	atomic_store(&c->purge_armed, true);
	atomic_fetch_add(&c->retry_round, 1);

	struct journal_round rd = {.tb = tb, .c = c, .next = 1};
	int rc = tjournal_replay_from(tb->journal, 1, journal__retry_one, &rd);
	if (rc < 0)
		cluster__note_failure(tb, "journal: retry of cluster %s: %s", c->name,
		                      tjournal_strerror(rc));
	if (rc < 0 || rd.failed)
		return false;

	/* Hand back: from the mark on, held events are also copied to the tail. */
	tjournal_stats st;
	pthread_mutex_lock(&c->retry_lock);
	tjournal_get_stats(tb->journal, &st);
	r->handoff = c;
	r->mark = st.next_seq;
	pthread_mutex_unlock(&c->retry_lock);

	rd.below = st.next_seq;
	uint64_t from = rd.next;
	rc = tjournal_replay_from(tb->journal, from, journal__retry_one, &rd);
	if (rc < 0)
		cluster__note_failure(tb, "journal: retry of cluster %s: %s", c->name,
		                      tjournal_strerror(rc));

	bool done = false;
	char err[512];
	pthread_mutex_lock(&c->retry_lock);
	if (rc >= 0 && !rd.failed && !r->tail_failed && !atomic_load(&c->retry_again)) {
		done = true;
		for (size_t i = 0; i < r->ntail && done; i++) {
			enum journal_sent sent =
			    journal__produce_entry(tb, r->tail[i].seq, r->tail[i].blob,
			                           r->tail[i].len, c, err, sizeof(err));
			if (sent == JOURNAL_REFUSED) {
				cluster__note_failure(tb, "%s (retried later)", err);
				done = false;
			} else if (sent == JOURNAL_SENT) {
				atomic_fetch_add(&tb->stats.retried, 1);
			}
		}
		if (done) {
			/* What the producer thread meets below the mark now was produced. */
			c->retry_covered = r->mark;
			atomic_store(&c->purge_armed, true);
			atomic_store(&c->retrying, false);
		}
	}
	journal__tail_clear(r);
	pthread_mutex_unlock(&c->retry_lock);
	return done;
}

static void *journal__retry_main(void *arg)
{
	struct tributary *tb = arg;
	struct tbp_journal_retry *r = tb->retry;
	pthread_mutex_lock(&r->lock);
	while (!r->stop) {
		if (!r->wanted) {
			pthread_cond_wait(&r->cond, &r->lock);
			continue;
		}
		r->wanted = false;
		/* Backoff: the longest that a retrying cluster has earned, doubling
		 * with every round since its last confirmed delivery. */
		unsigned rounds = 0;
		for (size_t i = 0; i < tb->nclusters; i++) {
			unsigned n = atomic_load(&tb->clusters[i].retry_round);
			if (n > rounds)
				rounds = n;
		}
		uint64_t ms = (uint64_t)r->backoff_ms << (rounds < 20 ? rounds : 20);
		if (ms > r->backoff_max_ms)
			ms = r->backoff_max_ms;
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += (time_t)(ms / 1000);
		until.tv_nsec += (long)(ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		while (!r->stop && pthread_cond_timedwait(&r->cond, &r->lock, &until) == 0)
			;
		if (r->stop)
			break;
		pthread_mutex_unlock(&r->lock);
		bool again = false;
		for (size_t i = 0; i < tb->nclusters; i++) {
			struct tbp_cluster *c = &tb->clusters[i];
			if (atomic_load(&c->retrying) && !journal__retry_cluster(tb, c))
				again = true;
		}
		pthread_mutex_lock(&r->lock);
		if (again)
			r->wanted = true;
	}
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

void journal__stop_retry(struct tributary *tb)
{
	struct tbp_journal_retry *r = tb->retry;
	if (!r || !r->started)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
	pthread_join(r->thread, NULL);
	r->started = false;
}

static unsigned long long journal__retrying_clusters(struct tributary *tb)
{
	unsigned long long n = 0;
	for (size_t i = 0; i < tb->nclusters; i++) {
		n += atomic_load(&tb->clusters[i].retrying);
	}
	return n;
}

void journal__publish_stats(struct tributary *tb)
{
	tjournal_stats st;
	if (!tb->journal)
		return;
	tjournal_get_stats(tb->journal, &st);
	stats__put("$SYS/tributary/journal/depth", st.depth);
	stats__put("$SYS/tributary/journal/bytes", st.bytes);
	stats__put("$SYS/tributary/journal/oldest_age_ms", st.oldest_age_ms);
	stats__put("$SYS/tributary/journal/full", st.full);
	stats__put("$SYS/tributary/journal/retrying", journal__retrying_clusters(tb));
}

/* After the producers: their last delivery reports release entries. */
void journal__close(struct tributary *tb)
{
	if (tb->journal)
		tjournal_close(tb->journal);
	tb->journal = NULL;
	if (tb->retry) {
		journal__stop_retry(tb);
		journal__tail_clear(tb->retry);
		free(tb->retry->tail);
		pthread_cond_destroy(&tb->retry->cond);
		pthread_mutex_destroy(&tb->retry->lock);
		free(tb->retry);
		tb->retry = NULL;
	}
}

/* A full store refuses events until Kafka catches up: say so, but not for
 * every refused event. */
void journal__note_refusal(struct tributary *tb, int code)
{
	time_t now = time(NULL);
	if (now - tb->journal_warned_at < 10)
		return;
	tb->journal_warned_at = now;
	tjournal_stats st;
	tjournal_get_stats(tb->journal, &st);
	mosquitto_log_printf(MOSQ_LOG_WARNING,
	                     TB_LOG_PREFIX "journal: refusing new events: %s (%llu events, %llu of "
	                                   "%llu bytes waiting for Kafka)",
	                     tjournal_strerror(code), (unsigned long long)st.depth,
	                     (unsigned long long)st.bytes, (unsigned long long)st.max_bytes);
}
