/*
 * Outbound: Kafka -> MQTT. Start/stop, the tick that publishes on the main
 * thread, and the counters under $SYS/tributary/outbound/.
 *
 * Offsets: a record's offset is stored one tick after its
 * mosquitto_broker_publish. The broker only queues a plugin's message
 * (db.plugin_msgs) and hands it to subscribers and persistent sessions at
 * the start of the next loop iteration; a shutdown in between would lose
 * it. By the next tick it is in the sessions, so storing then keeps
 * at-least-once across restarts.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "outbound.h"

static const char *const outbound__drops[OB_DROP__COUNT] = {
    [OB_DROP_NO_ROUTE] = "no_route",
    [OB_DROP_TOPIC_INVALID] = "topic_invalid",
    [OB_DROP_NO_RESPONSE_TOPIC] = "no_response_topic",
    [OB_DROP_REPLY_TOPIC_REFUSED] = "reply_topic_refused",
    [OB_DROP_NOT_CLOUDEVENTS] = "not_cloudevents",
    [OB_DROP_INVALID_EVENT] = "invalid_event",
    [OB_DROP_TOO_LARGE] = "too_large",
    [OB_DROP_BROKER_REFUSED] = "broker_refused",
    [OB_DROP_UNDECODABLE] = "undecodable",
};

const char *outbound__drop_name(enum ob_drop d)
{
	return d >= 0 && d < OB_DROP__COUNT ? outbound__drops[d] : "unknown";
}

void outbound__note(struct tbp_outbound *ob, int level, const char *fmt, ...)
{
	struct ob_log *l = &ob->log;
	va_list ap;
	pthread_mutex_lock(&l->lock);
	if (l->count < OB_LOG_LINES) {
		va_start(ap, fmt);
		vsnprintf(l->line[l->count], sizeof(l->line[0]), fmt, ap);
		va_end(ap);
		l->level[l->count++] = level;
	} else {
		l->dropped++;
	}
	pthread_mutex_unlock(&l->lock);
}

static void outbound__log_notes(struct tbp_outbound *ob)
{
	struct ob_log *l = &ob->log;
	struct ob_log copy;
	pthread_mutex_lock(&l->lock);
	copy.count = l->count;
	copy.dropped = l->dropped;
	memcpy(copy.level, l->level, sizeof(l->level[0]) * l->count);
	memcpy(copy.line, l->line, sizeof(l->line[0]) * l->count);
	l->count = 0;
	l->dropped = 0;
	pthread_mutex_unlock(&l->lock);
	for (unsigned i = 0; i < copy.count; i++)
		mosquitto_log_printf(copy.level[i], TB_LOG_PREFIX "%s", copy.line[i]);
	if (copy.dropped)
		mosquitto_log_printf(MOSQ_LOG_WARNING,
		                     TB_LOG_PREFIX "outbound: %u more log lines "
		                                   "skipped",
		                     copy.dropped);
}

/* One line per reason at most every 10 s, with how many went unlogged. */
static void outbound__log_drop(struct tbp_outbound *ob, const struct ob_item *it)
{
	time_t now = time(NULL);
	enum ob_drop d = it->drop;
	if (ob->drop_logged_at[d] && now - ob->drop_logged_at[d] < 10) {
		ob->drop_unlogged[d]++;
		return;
	}
	char more[48] = "";
	if (ob->drop_unlogged[d])
		snprintf(more, sizeof(more), " (and %llu more since)",
		         (unsigned long long)ob->drop_unlogged[d]);
	mosquitto_log_printf(MOSQ_LOG_WARNING,
	                     TB_LOG_PREFIX "outbound: record %s [%d] at offset %lld not published "
	                                   "(%s): %s%s",
	                     rd_kafka_topic_name(it->msg->rkt), (int)it->msg->partition,
	                     (long long)it->msg->offset, outbound__drop_name(d), it->detail, more);
	ob->drop_logged_at[d] = now;
	ob->drop_unlogged[d] = 0;
}

/* Broker memory only from here: payload with mosquitto_malloc, properties
 * with mosquitto_property_add_*; mosquitto_broker_publish takes both. */
static int outbound__publish(struct ob_item *it)
{
	mosquitto_property *props = NULL;
	void *payload = NULL;
	int rc;
	if (it->len) {
		payload = mosquitto_malloc(it->len);
		if (!payload)
			return MOSQ_ERR_NOMEM;
		memcpy(payload, it->payload, it->len);
	}
	if (it->content_type &&
	    (rc =
	         mosquitto_property_add_string(&props, MQTT_PROP_CONTENT_TYPE, it->content_type)) &&
	    rc != MOSQ_ERR_MALFORMED_UTF8)
		goto error;
	for (size_t i = 0; i < it->nprops; i++) {
		/* The broker's own UTF-8 rules are a little stricter than ours
		 * (control characters): such a property is left out. */
		rc = mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY,
		                                        it->props[i].name, it->props[i].value);
		if (rc && rc != MOSQ_ERR_MALFORMED_UTF8)
			goto error;
	}
	if (it->correlation &&
	    (rc = mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, it->correlation,
	                                        it->correlation_len)))
		goto error;
	if (it->route->message_expiry &&
	    (rc = mosquitto_property_add_int32(&props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL,
	                                       it->route->message_expiry)))
		goto error;
	rc = mosquitto_broker_publish(NULL, it->topic, (int)it->len, payload, it->route->qos,
	                              it->route->retain, props);
	if (rc)
		goto error;
	return MOSQ_ERR_SUCCESS;
error:
	mosquitto_free(payload);
	mosquitto_property_free_all(&props);
	return rc;
}

/* Offsets of what the previous tick published: one rd_kafka_offsets_store
 * per tick, with the last record of each partition (a partition's records
 * are in offset order in the list), rather than a call, and the toppar lock
 * it takes, per record. The items go back to the consumer thread, which
 * frees them. */
static void outbound__store_offsets(struct tbp_outbound *ob)
{
	struct ob_item *first = ob->unstored, *last = ob->unstored_tail;
	rd_kafka_topic_partition_t *p = NULL;
	ob->unstored = ob->unstored_tail = NULL;
	if (!first)
		return;
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(8);
	for (struct ob_item *it = first; it; it = it->next) {
		const rd_kafka_message_t *m = it->msg;
		const char *topic = rd_kafka_topic_name(m->rkt);
		/* Records of one partition mostly come in runs: try the last
		 * one first. */
		if (!p || p->partition != m->partition || strcmp(p->topic, topic))
			p = rd_kafka_topic_partition_list_find(parts, topic, m->partition);
		if (!p)
			p = rd_kafka_topic_partition_list_add(parts, topic, m->partition);
		p->offset = m->offset + 1; /* where to resume */
		p->opaque = (void *)((uintptr_t)p->opaque + 1);
	}
	/* Fails only for a partition revoked meanwhile: its new owner starts
	 * from the last commit and may repeat it (at-least-once). */
	rd_kafka_resp_err_t err = rd_kafka_offsets_store(ob->rk, parts);
	for (int i = 0; i < parts->cnt; i++)
		if (err || parts->elems[i].err)
			atomic_fetch_add(&ob->stats.offset_store_failed,
			                 (uintptr_t)parts->elems[i].opaque);
	rd_kafka_topic_partition_list_destroy(parts);
	outbound__queue_recycle(&ob->queue, first, last);
}

static int outbound__on_tick(int event, void *event_data, void *userdata)
{
	struct tbp_outbound *ob = userdata;
	size_t taken, left, published = 0;
	(void)event;
	(void)event_data;

	outbound__log_notes(ob);
	if (ob->wake_enabled)
		outbound__wake_service(ob);
	outbound__store_offsets(ob);

	/* Cleared before taking: a record pushed after the take wakes us again. */
	atomic_store(&ob->wake.pending, false);
	struct ob_item *it = outbound__queue_take(&ob->queue, ob->max_per_tick, &taken, &left);
	while (it) {
		struct ob_item *next = it->next;
		if (it->drop == OB_DROP_NONE && outbound__publish(it) != MOSQ_ERR_SUCCESS) {
			it->drop = OB_DROP_BROKER_REFUSED;
			snprintf(it->detail, sizeof(it->detail), "mosquitto_broker_publish failed");
		}
		if (it->drop == OB_DROP_NONE) {
			published++;
		} else {
			atomic_fetch_add(&ob->stats.dropped[it->drop], 1);
			outbound__log_drop(ob, it);
		}
		it->next = NULL;
		if (ob->unstored_tail)
			ob->unstored_tail->next = it;
		else
			ob->unstored = it;
		ob->unstored_tail = it;
		it = next;
	}
	if (published)
		atomic_fetch_add(&ob->stats.published, published);
	/* More waiting, or (option) make sure the loop comes round again soon
	 * rather than relying on the queue_plugin_msgs ordering. */
	if (ob->wake_enabled && (left > 0 || (published && ob->wake.after_publish)))
		outbound__wake(ob);
	return MOSQ_ERR_SUCCESS;
}

void outbound__publish_stats(struct tributary *tb)
{
	struct tbp_outbound *ob = tb->outbound;
	char topic[128];
	unsigned long long dropped = 0;
	if (!ob)
		return;
	for (int d = 0; d < OB_DROP__COUNT; d++) {
		unsigned long long n = atomic_load(&ob->stats.dropped[d]);
		dropped += n;
		snprintf(topic, sizeof(topic), "$SYS/tributary/outbound/dropped/%s",
		         outbound__drops[d]);
		stats__put(topic, n);
	}
	stats__put("$SYS/tributary/outbound/dropped", dropped);
	stats__put("$SYS/tributary/outbound/received", atomic_load(&ob->stats.received));
	stats__put("$SYS/tributary/outbound/published", atomic_load(&ob->stats.published));
	stats__put("$SYS/tributary/outbound/not_events", atomic_load(&ob->stats.not_events));
	stats__put("$SYS/tributary/outbound/queue_depth", outbound__queue_depth(&ob->queue));
	stats__put("$SYS/tributary/outbound/paused", atomic_load(&ob->stats.paused) ? 1 : 0);
	stats__put("$SYS/tributary/outbound/queue_full", atomic_load(&ob->stats.full));
	stats__put("$SYS/tributary/outbound/pauses", atomic_load(&ob->stats.pauses));
	stats__put("$SYS/tributary/outbound/assigned_partitions", atomic_load(&ob->stats.assigned));
	stats__put("$SYS/tributary/outbound/wakes", atomic_load(&ob->stats.wakes));
	stats__put("$SYS/tributary/outbound/kafka_errors", atomic_load(&ob->stats.kafka_errors));
}

int outbound__start(struct tributary *tb)
{
	struct tbp_outbound *ob = tb->outbound;
	int rc;
	if (!ob)
		return MOSQ_ERR_SUCCESS;
	outbound__queue_init(&ob->queue, ob->resume_below);
	pthread_mutex_init(&ob->log.lock, NULL);
	ob->started = true;
	if ((rc = outbound__consumer_start(ob)))
		return rc;
	rc = mosquitto_callback_register(tb->pid, MOSQ_EVT_TICK, outbound__on_tick, NULL, ob);
	if (rc) {
		mosquitto_log_printf(MOSQ_LOG_ERR,
		                     TB_LOG_PREFIX "outbound: cannot register the tick "
		                                   "callback (%d)",
		                     rc);
		return rc;
	}
	ob->callbacks_registered = true;
	mosquitto_log_printf(MOSQ_LOG_NOTICE,
	                     TB_LOG_PREFIX
	                     "outbound: %zu routes from %zu Kafka topics of cluster %s, "
	                     "group %s, queue %zu, wake %s%s%s",
	                     ob->nroutes, ob->ntopics, ob->cluster_name, ob->group_id, ob->capacity,
	                     !ob->wake_enabled     ? "off"
	                     : ob->wake.autodetect ? "auto"
	                                           : ob->wake.host,
	                     ob->wake_enabled && !ob->wake.autodetect ? ":" : "",
	                     ob->wake_enabled && !ob->wake.autodetect ? ob->wake.port : "");
	return MOSQ_ERR_SUCCESS;
}

void outbound__stop(struct tributary *tb)
{
	struct tbp_outbound *ob = tb->outbound;
	if (!ob)
		return;
	if (ob->callbacks_registered)
		mosquitto_callback_unregister(tb->pid, MOSQ_EVT_TICK, outbound__on_tick, NULL);
	ob->callbacks_registered = false;
	if (ob->started) {
		outbound__consumer_stop(ob);
		/* What was published in the last tick never reached the sessions
		 * (the loop ended first): left unstored, it comes back after a
		 * restart. Then leave the group, committing what was stored. */
		struct ob_item *it = ob->unstored;
		while (it) {
			struct ob_item *next = it->next;
			outbound__item_free(it);
			it = next;
		}
		ob->unstored = ob->unstored_tail = NULL;
		outbound__queue_destroy(&ob->queue);
		outbound__consumer_close(ob, tb->flush_timeout_ms);
		outbound__log_notes(ob);
		outbound__consumer_destroy(ob);
		pthread_mutex_destroy(&ob->log.lock);
	}
	outbound__config_free(ob);
	free(ob);
	tb->outbound = NULL;
}
