/*
 * The outbound Kafka consumer: one high-level consumer in its own group per
 * broker instance, polled on its own thread. Offsets are stored by the main
 * thread once a record is in the broker's hands (outbound.c) and committed
 * by librdkafka's auto-commit, so a restart resumes after the last record
 * the broker took: at-least-once.
 *
 * Back-pressure: once the hand-over queue holds `capacity` records the
 * thread stops taking records and waits until the queue is down to
 * `resume_below`; meanwhile librdkafka keeps what it prefetched, within
 * queued.max.messages.kbytes, and stops fetching beyond that. If the queue
 * stays full for `pause_after_ms` the partitions are paused, so that the
 * thread can go back to polling (rebalances, errors, max.poll.interval.ms)
 * without receiving; librdkafka then discards its prefetch and, on resume,
 * fetches again from the position after the last record it returned.
 * Nothing is dropped and memory stays bounded by the capacity plus the
 * prefetch limit. Pausing is the last resort rather than the first because
 * librdkafka 2.0.2's fetcher only notices a resume on its next 1 s wake-up
 * (measured: up to ~1 s without records after each resume).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "outbound.h"
#include "tributary/kafka.h"
#include "tributary/util.h"

static int consumer__level(int syslog_level)
{
	if (syslog_level <= LOG_ERR)
		return MOSQ_LOG_ERR;
	if (syslog_level == LOG_WARNING)
		return MOSQ_LOG_WARNING;
	if (syslog_level <= LOG_INFO)
		return MOSQ_LOG_INFO;
	return MOSQ_LOG_DEBUG;
}

static void consumer__on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	struct tbp_outbound *ob = rd_kafka_opaque(rk);
	outbound__note(ob, consumer__level(level), "outbound consumer: %s: %s", fac, buf);
}

static void consumer__on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct tbp_outbound *ob = opaque;
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		char fatal[256];
		rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
		outbound__note(ob, MOSQ_LOG_ERR, "outbound consumer: FATAL: %s", fatal);
		return;
	}
	atomic_fetch_add(&ob->stats.kafka_errors, 1);
	outbound__note(ob, MOSQ_LOG_WARNING, "outbound consumer: %s", reason);
}

static void consumer__on_commit(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
	struct tbp_outbound *ob = opaque;
	(void)rk;
	(void)offsets;
	if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
		outbound__note(ob, MOSQ_LOG_WARNING, "outbound consumer: offset commit failed: %s",
		               rd_kafka_err2str(err));
}

/*
 * auto.offset.reset alone would leave a partition that has never had a
 * record without a committed offset, and a restart would then start it at
 * "latest" again: whatever arrived while the broker was down would be
 * skipped. So a group's first position is resolved and committed at once.
 */
static void consumer__pin_start(struct tbp_outbound *ob, rd_kafka_t *rk,
                                rd_kafka_topic_partition_list_t *parts)
{
	rd_kafka_topic_partition_list_t *committed = rd_kafka_topic_partition_list_copy(parts);
	rd_kafka_topic_partition_list_t *ask = rd_kafka_topic_partition_list_new(parts->cnt);
	rd_kafka_topic_partition_list_t *pin = rd_kafka_topic_partition_list_new(parts->cnt);
	bool latest = !strcmp(ob->start, "latest");
	rd_kafka_resp_err_t err = rd_kafka_committed(rk, committed, 10000);
	if (err) {
		outbound__note(
		    ob, MOSQ_LOG_WARNING,
		    "outbound consumer: cannot read committed offsets (%s); new partitions "
		    "start at the %s offset",
		    rd_kafka_err2str(err), ob->start);
		goto done;
	}
	/* One ListOffsets request per leader for all of them, not a watermark
	 * query per partition: with Kafka slow or gone each query waits up to
	 * its whole timeout, this thread polls nothing meanwhile, and at
	 * shutdown the main thread waits for it (measured: 42 s after SIGTERM
	 * with 6 partitions and a 6 s round trip). */
	for (int i = 0; i < committed->cnt; i++) {
		rd_kafka_topic_partition_t *c = &committed->elems[i];
		if (c->err || c->offset >= 0)
			continue;
		rd_kafka_topic_partition_list_add(ask, c->topic, c->partition)->offset =
		    latest ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING;
	}
	if (ask->cnt && (err = rd_kafka_offsets_for_times(rk, ask, 5000))) {
		outbound__note(ob, MOSQ_LOG_WARNING,
		               "outbound consumer: no start offsets for %d partitions (%s)",
		               ask->cnt, rd_kafka_err2str(err));
		goto done;
	}
	for (int i = 0; i < ask->cnt; i++) {
		rd_kafka_topic_partition_t *a = &ask->elems[i];
		if (a->err || a->offset < 0) {
			outbound__note(ob, MOSQ_LOG_WARNING,
			               "outbound consumer: %s [%d]: no start offset (%s)", a->topic,
			               (int)a->partition, rd_kafka_err2str(a->err));
			continue;
		}
		rd_kafka_topic_partition_t *p =
		    rd_kafka_topic_partition_list_find(parts, a->topic, a->partition);
		if (p)
			p->offset = a->offset;
		rd_kafka_topic_partition_list_add(pin, a->topic, a->partition)->offset = a->offset;
	}
	if (pin->cnt) {
		err = rd_kafka_commit(rk, pin, 1);
		if (err)
			outbound__note(ob, MOSQ_LOG_WARNING,
			               "outbound consumer: cannot commit the start offsets: %s",
			               rd_kafka_err2str(err));
		else
			outbound__note(
			    ob, MOSQ_LOG_NOTICE,
			    "outbound: %d partitions without a committed offset start at "
			    "the %s offset",
			    pin->cnt, ob->start);
	}
done:
	rd_kafka_topic_partition_list_destroy(pin);
	rd_kafka_topic_partition_list_destroy(ask);
	rd_kafka_topic_partition_list_destroy(committed);
}

static void consumer__pause(struct tbp_outbound *ob, rd_kafka_topic_partition_list_t *parts,
                            bool pause)
{
	rd_kafka_topic_partition_list_t *own = NULL;
	if (!parts) {
		if (rd_kafka_assignment(ob->rk, &own))
			return;
		parts = own;
	}
	rd_kafka_resp_err_t err = pause ? rd_kafka_pause_partitions(ob->rk, parts)
	                                : rd_kafka_resume_partitions(ob->rk, parts);
	if (err)
		outbound__note(ob, MOSQ_LOG_ERR, "outbound consumer: cannot %s partitions: %s",
		               pause ? "pause" : "resume", rd_kafka_err2str(err));
	if (own)
		rd_kafka_topic_partition_list_destroy(own);
}

static void consumer__count_assignment(struct tbp_outbound *ob)
{
	rd_kafka_topic_partition_list_t *a = NULL;
	if (rd_kafka_assignment(ob->rk, &a) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		atomic_store(&ob->stats.assigned, (uint_fast64_t)a->cnt);
		rd_kafka_topic_partition_list_destroy(a);
	}
}

static void consumer__rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                                rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct tbp_outbound *ob = opaque;
	bool cooperative = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
	rd_kafka_error_t *error = NULL;
	rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;

	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		consumer__pin_start(ob, rk, parts);
		if (cooperative)
			error = rd_kafka_incremental_assign(rk, parts);
		else
			aerr = rd_kafka_assign(rk, parts);
		if (!error && !aerr && atomic_load(&ob->stats.paused))
			consumer__pause(ob, parts, true);
		consumer__count_assignment(ob);
		if (!error && !aerr)
			outbound__note(ob, MOSQ_LOG_NOTICE,
			               "outbound: assigned %d partitions (group %s, %llu in all)",
			               parts->cnt, ob->group_id,
			               (unsigned long long)atomic_load(&ob->stats.assigned));
	} else {
		if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
			outbound__note(ob, MOSQ_LOG_ERR, "outbound consumer: rebalance failed: %s",
			               rd_kafka_err2str(err));
		if (cooperative)
			error = rd_kafka_incremental_unassign(rk, parts);
		else
			aerr = rd_kafka_assign(rk, NULL);
		consumer__count_assignment(ob);
		if (cooperative && rd_kafka_assignment_lost(rk))
			outbound__note(ob, MOSQ_LOG_WARNING, "outbound consumer: assignment lost");
	}
	if (error) {
		outbound__note(ob, MOSQ_LOG_ERR, "outbound consumer: incremental assignment: %s",
		               rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
	} else if (aerr) {
		outbound__note(ob, MOSQ_LOG_ERR, "outbound consumer: assignment: %s",
		               rd_kafka_err2str(aerr));
	}
}

static void consumer__on_record_error(struct tbp_outbound *ob, const rd_kafka_message_t *m)
{
	if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
		return;
	atomic_fetch_add(&ob->stats.kafka_errors, 1);
	outbound__note(ob, MOSQ_LOG_WARNING, "outbound consumer: %s%s%s [%d]: %s",
	               m->rkt ? "topic " : "", m->rkt ? rd_kafka_topic_name(m->rkt) : "",
	               m->rkt ? "" : "-", (int)m->partition, rd_kafka_message_errstr(m));
}

static void *consumer__run(void *arg)
{
	struct tbp_outbound *ob = arg;
	bool full = false;
	uint64_t full_since = 0;
	while (!atomic_load(&ob->stop)) {
		outbound__queue_free_done(&ob->queue);
		bool paused = atomic_load(&ob->stats.paused);
		if (paused && outbound__queue_depth(&ob->queue) <= ob->resume_below) {
			atomic_store(&ob->stats.paused, false);
			consumer__pause(ob, NULL, false);
			paused = false;
		}
		if (full && !paused) {
			int wait =
			    ob->pause_after_ms - (int)((tb_monotonic_us() - full_since) / 1000);
			if (wait > 0 && outbound__queue_wait(&ob->queue, wait < 100 ? wait : 100) >
			                    ob->resume_below)
				continue; /* still full: check `stop`, then wait again */
			full = false;
			if (outbound__queue_depth(&ob->queue) > ob->resume_below) {
				atomic_store(&ob->stats.paused, true);
				atomic_fetch_add(&ob->stats.pauses, 1);
				consumer__pause(ob, NULL, true);
				paused = true;
			}
		}
		/* Paused: a short poll, to resume soon after the tick drained us. */
		rd_kafka_message_t *m = rd_kafka_consumer_poll(ob->rk, paused ? 5 : 100);
		if (!m)
			continue;
		if (m->err) {
			consumer__on_record_error(ob, m);
			rd_kafka_message_destroy(m);
			continue;
		}
		atomic_fetch_add(&ob->stats.received, 1);
		struct ob_item *it;
		while (!(it = outbound__map(ob, m)) && !atomic_load(&ob->stop))
			usleep(10000); /* out of memory: hold the record, never drop it */
		if (!it) {
			rd_kafka_message_destroy(m);
			break;
		}
		size_t depth = outbound__queue_push(&ob->queue, it);
		if (ob->wake_enabled)
			outbound__wake(ob);
		if (!paused && depth >= ob->capacity) {
			full = true;
			full_since = tb_monotonic_us();
			atomic_fetch_add(&ob->stats.full, 1);
		}
	}
	return NULL;
}

int outbound__consumer_start(struct tbp_outbound *ob)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_resp_err_t rerr;
	rd_kafka_topic_partition_list_t *subs = NULL;
	int rc = MOSQ_ERR_INVAL;

	/* Defaults first, then the cluster's connection settings and
	 * outbound.consumer, then what the delivery guarantee depends on. */
	if (rd_kafka_conf_set(conf, "client.id", "tributary-mosquitto-outbound", err,
	                      sizeof(err)) ||
	    rd_kafka_conf_set(conf, "queued.max.messages.kbytes", "16384", err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "fetch.wait.max.ms", "100", err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "auto.commit.interval.ms", "1000", err, sizeof(err)) ||
	    tb_kafka_conf_apply(conf, ob->kafka_props, "outbound.consumer", err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "group.id", ob->group_id, err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "enable.auto.commit", "true", err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "enable.auto.offset.store", "false", err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "auto.offset.reset", ob->start, err, sizeof(err))) {
		rd_kafka_conf_destroy(conf);
		return config__fail("%s", err);
	}
	rd_kafka_conf_set_opaque(conf, ob);
	rd_kafka_conf_set_log_cb(conf, consumer__on_log);
	rd_kafka_conf_set_error_cb(conf, consumer__on_error);
	rd_kafka_conf_set_rebalance_cb(conf, consumer__rebalance);
	rd_kafka_conf_set_offset_commit_cb(conf, consumer__on_commit);

	ob->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!ob->rk) {
		rd_kafka_conf_destroy(conf);
		mosquitto_log_printf(MOSQ_LOG_ERR, TB_LOG_PREFIX "outbound consumer: %s", err);
		return MOSQ_ERR_INVAL;
	}
	/* Everything (records, rebalances, errors) through consumer_poll. */
	rerr = rd_kafka_poll_set_consumer(ob->rk);
	if (rerr) {
		mosquitto_log_printf(MOSQ_LOG_ERR, TB_LOG_PREFIX "outbound consumer: %s",
		                     rd_kafka_err2str(rerr));
		goto cleanup;
	}
	subs = rd_kafka_topic_partition_list_new((int)ob->ntopics);
	for (size_t i = 0; i < ob->ntopics; i++)
		rd_kafka_topic_partition_list_add(subs, ob->topics[i], RD_KAFKA_PARTITION_UA);
	rerr = rd_kafka_subscribe(ob->rk, subs);
	if (rerr) {
		mosquitto_log_printf(MOSQ_LOG_ERR, TB_LOG_PREFIX "outbound consumer: subscribe: %s",
		                     rd_kafka_err2str(rerr));
		goto cleanup;
	}
	atomic_store(&ob->stop, false);
	if (pthread_create(&ob->thread, NULL, consumer__run, ob) != 0) {
		mosquitto_log_printf(MOSQ_LOG_ERR, TB_LOG_PREFIX "outbound: cannot start thread");
		rc = MOSQ_ERR_UNKNOWN;
		goto cleanup;
	}
	ob->thread_started = true;
	rc = MOSQ_ERR_SUCCESS;
cleanup:
	if (subs)
		rd_kafka_topic_partition_list_destroy(subs);
	return rc;
}

/* Stops polling; the handle is closed by outbound__consumer_close. */
void outbound__consumer_stop(struct tbp_outbound *ob)
{
	atomic_store(&ob->stop, true);
	if (ob->thread_started)
		pthread_join(ob->thread, NULL);
	ob->thread_started = false;
}

/* After outbound__consumer_stop and after the offsets of what the broker
 * took were stored: leaves the group, committing them. Bounded by
 * `timeout_ms`: at shutdown Kafka may be gone, and rd_kafka_consumer_close
 * would then wait up to session.timeout.ms. Not committed means delivered
 * again after the restart, never lost. */
void outbound__consumer_close(struct tbp_outbound *ob, int timeout_ms)
{
	const struct rd_kafka_metadata *md = NULL;
	if (!ob->rk)
		return;
	/* Closing against an unreachable cluster cannot finish, and
	 * rd_kafka_destroy would then wait for it: ask first. */
	rd_kafka_resp_err_t err = rd_kafka_metadata(ob->rk, 0, NULL, &md, 1000);
	if (err) {
		mosquitto_log_printf(MOSQ_LOG_WARNING,
		                     TB_LOG_PREFIX
		                     "outbound consumer: Kafka unreachable at shutdown (%s); "
		                     "leaving without a final commit: records since the last "
		                     "commit will be delivered again after the restart",
		                     rd_kafka_err2str(err));
		return;
	}
	rd_kafka_metadata_destroy(md);
	rd_kafka_queue_t *q = rd_kafka_queue_new(ob->rk);
	rd_kafka_error_t *error = rd_kafka_consumer_close_queue(ob->rk, q);
	if (error) {
		mosquitto_log_printf(MOSQ_LOG_WARNING, TB_LOG_PREFIX "outbound consumer: close: %s",
		                     rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
	} else {
		uint64_t deadline = tb_monotonic_us() + (uint64_t)timeout_ms * 1000u;
		/* Serves the rebalance callback (revocation) and the final commit.
		 * The consumer queue is forwarded here too, so records fetched
		 * after the thread stopped polling arrive as well: consume_queue
		 * hands them back (rd_kafka_queue_poll_callback aborts the process
		 * on them: rdkafka_queue.c "res != RD_KAFKA_OP_RES_PASS"). Never
		 * published, their offsets are not stored: they come again after
		 * the restart. */
		while (!rd_kafka_consumer_closed(ob->rk) && tb_monotonic_us() < deadline) {
			rd_kafka_message_t *m = rd_kafka_consume_queue(q, 50);
			if (m)
				rd_kafka_message_destroy(m);
		}
		ob->closed = rd_kafka_consumer_closed(ob->rk);
		if (!ob->closed)
			mosquitto_log_printf(MOSQ_LOG_WARNING,
			                     TB_LOG_PREFIX
			                     "outbound consumer: not closed after %d ms "
			                     "(Kafka unreachable?); records since the last "
			                     "commit will be delivered again after the restart",
			                     timeout_ms);
	}
	rd_kafka_queue_destroy(q);
}

void outbound__consumer_destroy(struct tbp_outbound *ob)
{
	if (!ob->rk)
		return;
	rd_kafka_destroy_flags(ob->rk, ob->closed ? 0 : RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	ob->rk = NULL;
}
