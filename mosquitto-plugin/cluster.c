/*
 * One librdkafka producer per named cluster, with its own poll thread for
 * delivery reports so that they are served even when Mosquitto's tick does
 * not fire (per_listener_settings true) and never on the main thread.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tributary.h"
#include "tributary/kafka.h"

void cluster__note_failure(struct tributary *tb, const char *fmt, ...)
{
	struct tbp_failure_log *fl = &tb->failures;
	va_list ap;
	pthread_mutex_lock(&fl->lock);
	if (fl->count < TB_FAILURE_LOG) {
		va_start(ap, fmt);
		vsnprintf(fl->lines[fl->count++], sizeof(fl->lines[0]), fmt, ap);
		va_end(ap);
	} else {
		fl->dropped++;
	}
	pthread_mutex_unlock(&fl->lock);
}

/* Main thread: the broker's log is not ours to call from other threads. */
void cluster__log_failures(struct tributary *tb)
{
	struct tbp_failure_log *fl = &tb->failures;
	char lines[TB_FAILURE_LOG][256];
	unsigned n, dropped;
	pthread_mutex_lock(&fl->lock);
	n = fl->count;
	dropped = fl->dropped;
	memcpy(lines, fl->lines, sizeof(lines[0]) * n);
	fl->count = 0;
	fl->dropped = 0;
	pthread_mutex_unlock(&fl->lock);
	for (unsigned i = 0; i < n; i++)
		mosquitto_log_printf(MOSQ_LOG_ERR, TB_LOG_PREFIX "%s", lines[i]);
	if (dropped)
		mosquitto_log_printf(
		    MOSQ_LOG_ERR, TB_LOG_PREFIX "%u more delivery failures (see $SYS/tributary/)",
		    dropped);
}

/* A message taken back by journal__delivery_failed's purge that is not in
 * the journal (a mirror copy): produced again from its delivery report. */
static void cluster__produce_again(struct tbp_cluster *c, const rd_kafka_message_t *m)
{
	rd_kafka_headers_t *h = NULL, *copy = NULL;
	if (rd_kafka_message_headers(m, &h) == RD_KAFKA_RESP_ERR_NO_ERROR && h &&
	    !(copy = rd_kafka_headers_copy(h))) {
		atomic_fetch_add(&c->tb->stats.mirror_failed, 1);
		return;
	}
	rd_kafka_resp_err_t err = rd_kafka_producev(
	    c->rk, RD_KAFKA_V_TOPIC(rd_kafka_topic_name(m->rkt)),
	    RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
	    RD_KAFKA_V_HEADERS(copy), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
	if (err) {
		if (copy)
			rd_kafka_headers_destroy(copy);
		atomic_fetch_add(&c->tb->stats.mirror_failed, 1);
		cluster__note_failure(c->tb, "cluster %s: delivery to %s failed: %s", c->name,
		                      rd_kafka_topic_name(m->rkt), rd_kafka_err2str(err));
	}
}

static void cluster__on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct tbp_cluster *c = opaque;
	uint64_t seq = (uint64_t)(uintptr_t)m->_private;
	(void)rk;
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		atomic_fetch_add(&c->tb->stats.produced, 1);
		atomic_store(&c->retry_round, 0);
		journal__release(c->tb, seq);
		return;
	}
	if (m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE) {
		/* Taken back behind a failed event: produced again after it. */
		if (seq)
			journal__delivery_failed(c, false);
		else
			cluster__produce_again(c, m);
		return;
	}
	atomic_fetch_add(&c->tb->stats.delivery_failed, 1);
	cluster__note_failure(c->tb, "cluster %s: delivery to %s failed: %s%s", c->name,
	                      rd_kafka_topic_name(m->rkt), rd_kafka_err2str(m->err),
	                      seq ? " (kept in the journal, produced again)" : "");
	if (seq)
		journal__delivery_failed(c, true);
}

/* librdkafka's own thread, as soon as a request's failure is known: the
 * delivery report comes later, on the poll thread, when the partition may
 * have sent the events queued behind the failed one already (it resumes
 * after the idempotent producer's epoch bump). Not for timeouts, which the
 * main librdkafka thread reports while it holds its locks: the delivery
 * report takes those back. Not for a refused produce() either (reported
 * here too, on the thread that called it, which produce.c handles). */
static rd_kafka_resp_err_t cluster__on_ack(rd_kafka_t *rk, rd_kafka_message_t *m, void *opaque)
{
	struct tbp_cluster *c = rd_kafka_opaque(rk);
	(void)opaque;
	if (c && c->tb->journal && m->_private && !produce__sending && m->err &&
	    m->err != RD_KAFKA_RESP_ERR__PURGE_QUEUE && m->err != RD_KAFKA_RESP_ERR__MSG_TIMED_OUT)
		journal__failing(c, true);
	return RD_KAFKA_RESP_ERR_NO_ERROR;
}

static void cluster__on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct tbp_cluster *c = opaque;
	(void)rk;
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		char fatal[256];
		rd_kafka_fatal_error(c->rk, fatal, sizeof(fatal));
		cluster__note_failure(c->tb, "cluster %s: FATAL: %s", c->name, fatal);
		return;
	}
	cluster__note_failure(c->tb, "cluster %s: %s", c->name, reason);
}

/* librdkafka logs from its own threads: warnings and errors wait for the
 * main thread to drain them into the broker's log. Its notices and debug
 * lines (the `debug` property) go to standard error as librdkafka prints
 * them by default: too many for that queue, and stdio is thread-safe. */
static void cluster__on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	struct tbp_cluster *c = rd_kafka_opaque(rk);
	if (!c)
		return;
	if (level <= 4)
		cluster__note_failure(c->tb, "cluster %s: librdkafka %s: %s", c->name, fac, buf);
	else
		fprintf(stderr, TB_LOG_PREFIX "cluster %s: librdkafka %s: %s\n", c->name, fac, buf);
}

/* librdkafka's threads and the poll thread keep the default scheduling
 * (they ran as SCHED_BATCH while the main thread called rd_kafka_producev
 * itself and woke them for nearly every batch: their wake-ups then did not
 * preempt it). The main thread no longer wakes them, and SCHED_BATCH's
 * wake-up latency on busy cores set the p99 publish-to-Kafka: measured at
 * 10k msg/s on Apache Kafka, 3 runs each in turns, p99 median 574 ms as
 * SCHED_BATCH vs 104 ms as SCHED_OTHER (p50 22.8 vs 9.1 ms) on 2 cores
 * under a load average of 13-16 (bench/ingest.sh's header). */
static rd_kafka_resp_err_t cluster__on_new(rd_kafka_t *rk, const rd_kafka_conf_t *conf,
                                           void *opaque, char *err, size_t errlen)
{
	(void)conf;
	(void)err;
	(void)errlen;
	return rd_kafka_interceptor_add_on_acknowledgement(rk, "tributary-retry", cluster__on_ack,
	                                                   opaque);
}

/* librdkafka 2.0 learns the partitions of a topic it has not produced to
 * yet only at its next topic scan, up to a second after the first record:
 * measured, p99 publish-to-Kafka over a fresh broker's first 4 s at 10k
 * msg/s was 216-237 ms (3.4 ms once warm). The metadata of every topic, fetched here at
 * start and again well within the cache's lifetime (metadata.max.age.ms,
 * 15 minutes by default), lets a new topic's first record be partitioned
 * at once. Off the main thread; a timeout only means the scan does it. */
#define CLUSTER_WARM_INTERVAL_S 300
#define CLUSTER_WARM_TIMEOUT_MS 1000

static void cluster__warm_metadata(struct tbp_cluster *c)
{
	const struct rd_kafka_metadata *md;
	if (rd_kafka_metadata(c->rk, 1, NULL, &md, CLUSTER_WARM_TIMEOUT_MS) ==
	    RD_KAFKA_RESP_ERR_NO_ERROR)
		rd_kafka_metadata_destroy(md);
}

static void *cluster__poll(void *arg)
{
	struct tbp_cluster *c = arg;
	time_t warmed = 0;
	while (!atomic_load(&c->stop)) {
		time_t now = time(NULL);
		if (now - warmed >= CLUSTER_WARM_INTERVAL_S) {
			cluster__warm_metadata(c);
			warmed = now;
		}
		topics__poll(c);
		rd_kafka_poll(c->rk, 100);
	}
	return NULL;
}

/* config.c: the producer's librdkafka configuration, checked; kept in c->conf
 * until cluster__start. */
int cluster__config(struct tbp_cluster *c, const json_t *props, bool journaled)
{
	char err[512], what[128];
	pthread_mutex_init(&c->retry_lock, NULL);
	c->retry_lock_init = true;
	atomic_store(&c->purge_armed, true);
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	snprintf(what, sizeof(what), "clusters.%s", c->name);

	/* Defaults that keep streams exact; a cluster may lower them (Azure Event
	 * Hubs has no idempotent producer), which is logged. A reconnect
	 * backoff of at most a second (librdkafka: 10 s) so that a journal
	 * starts draining within a second of Kafka's return. */
	if (rd_kafka_conf_set(conf, "enable.idempotence", "true", err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "acks", "all", err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "partitioner", "murmur2_random", err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "client.id", "tributary-mosquitto", err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "reconnect.backoff.max.ms", "1000", err, sizeof(err))) {
		mosquitto_log_printf(MOSQ_LOG_ERR, TB_LOG_PREFIX "%s: %s", what, err);
		rd_kafka_conf_destroy(conf);
		return MOSQ_ERR_INVAL;
	}
	/* With a journal behind it, an event is never given up: librdkafka
	 * retries through any outage (unless the cluster sets a timeout). */
	if (journaled && rd_kafka_conf_set(conf, "message.timeout.ms", "0", err, sizeof(err))) {
		mosquitto_log_printf(MOSQ_LOG_ERR, TB_LOG_PREFIX "%s: %s", what, err);
		rd_kafka_conf_destroy(conf);
		return MOSQ_ERR_INVAL;
	}
	if (!json_object_get(props, "bootstrap.servers")) {
		rd_kafka_conf_destroy(conf);
		return config__fail("%s.bootstrap.servers: required", what);
	}
	if (tb_kafka_conf_apply(conf, props, what, err, sizeof(err))) {
		rd_kafka_conf_destroy(conf);
		return config__fail("%s", err);
	}
	char val[64];
	size_t vlen = sizeof(val);
	/* The main thread refuses a record that librdkafka would refuse as too
	 * large: it no longer hands records to librdkafka itself (produce.c). */
	c->max_message_bytes = 1000000;
	if (rd_kafka_conf_get(conf, "message.max.bytes", val, &vlen) == RD_KAFKA_CONF_OK)
		c->max_message_bytes = strtoul(val, NULL, 10);
	vlen = sizeof(val);
	if (rd_kafka_conf_get(conf, "enable.idempotence", val, &vlen) == RD_KAFKA_CONF_OK &&
	    strcmp(val, "true") != 0)
		mosquitto_log_printf(MOSQ_LOG_WARNING,
		                     TB_LOG_PREFIX
		                     "%s: enable.idempotence is off: Kafka may store "
		                     "duplicates and reorder a key's events on retries",
		                     what);
	if (rd_kafka_conf_interceptor_add_on_new(conf, "tributary-retry", cluster__on_new, NULL)) {
		mosquitto_log_printf(MOSQ_LOG_ERR,
		                     TB_LOG_PREFIX "%s: cannot add the retry interceptor", what);
		rd_kafka_conf_destroy(conf);
		return MOSQ_ERR_UNKNOWN;
	}
	rd_kafka_conf_set_opaque(conf, c);
	rd_kafka_conf_set_dr_msg_cb(conf, cluster__on_delivery);
	rd_kafka_conf_set_error_cb(conf, cluster__on_error);
	rd_kafka_conf_set_log_cb(conf, cluster__on_log);
	c->conf = conf;
	return MOSQ_ERR_SUCCESS;
}

/* plugin.c: the producer, its poll thread and its producer thread. */
int cluster__start(struct tbp_cluster *c)
{
	char err[512];
	c->rk = rd_kafka_new(RD_KAFKA_PRODUCER, c->conf, err, sizeof(err));
	if (!c->rk) {
		/* rd_kafka_new frees conf only on success: cluster__stop does. */
		mosquitto_log_printf(MOSQ_LOG_ERR, TB_LOG_PREFIX "clusters.%s: %s", c->name, err);
		return MOSQ_ERR_INVAL;
	}
	c->conf = NULL;
	atomic_store(&c->stop, false);
	if (pthread_create(&c->poller, NULL, cluster__poll, c) != 0) {
		mosquitto_log_printf(
		    MOSQ_LOG_ERR, TB_LOG_PREFIX "clusters.%s: cannot start poll thread", c->name);
		return MOSQ_ERR_UNKNOWN;
	}
	c->poller_started = true;
	if (produce__start(c)) {
		mosquitto_log_printf(MOSQ_LOG_ERR,
		                     TB_LOG_PREFIX "clusters.%s: cannot start producer thread",
		                     c->name);
		return MOSQ_ERR_UNKNOWN;
	}
	mosquitto_log_printf(MOSQ_LOG_INFO, TB_LOG_PREFIX "cluster %s: producer %s started",
	                     c->name, rd_kafka_name(c->rk));
	return MOSQ_ERR_SUCCESS;
}

static void cluster__destroy_lock(struct tbp_cluster *c)
{
	if (c->retry_lock_init)
		pthread_mutex_destroy(&c->retry_lock);
	c->retry_lock_init = false;
}

void cluster__stop(struct tbp_cluster *c, int flush_timeout_ms)
{
	if (c->conf)
		rd_kafka_conf_destroy(c->conf);
	c->conf = NULL;
	if (!c->rk) {
		cluster__destroy_lock(c);
		return;
	}
	/* What the ring holds first, then what librdkafka holds. */
	produce__stop(c, flush_timeout_ms);
	rd_kafka_resp_err_t err = rd_kafka_flush(c->rk, flush_timeout_ms);
	int left = rd_kafka_outq_len(c->rk);
	if (err || left > 0)
		mosquitto_log_printf(MOSQ_LOG_ERR,
		                     TB_LOG_PREFIX "cluster %s: %d events not confirmed by Kafka "
		                                   "after %d ms at shutdown",
		                     c->name, left, flush_timeout_ms);
	atomic_store(&c->stop, true);
	if (c->poller_started)
		pthread_join(c->poller, NULL);
	c->poller_started = false;
	rd_kafka_destroy(c->rk);
	c->rk = NULL;
	cluster__destroy_lock(c);
}
