/*
 * CloudEvents -> Kafka record, per the CloudEvents Kafka binding:
 * binary mode (value = data, ce_* headers, content-type) by default, or
 * structured mode (value = the whole event as JSON), or Confluent's wire
 * format (value = magic byte 0, the 4-byte big-endian schema id, then the
 * JSON data as Confluent's JSON Schema serializer writes it, or the data in
 * Avro binary as its Avro serializer does; headers as in binary mode).
 * Every record also
 * carries where it came from in MQTT (headers mqtt_*), which is what lets a
 * service answer a v5 request: mqtt_response_topic + mqtt_correlation_data.
 *
 * The main thread hands the record to librdkafka through its cluster's
 * ring (ring.c), never itself: it encodes the record once, into a ring slot
 * that keeps its buffer from event to event, in the journal's record format
 * (tjournal_record_encode); with a journal, appends that very buffer to it
 * (before the callback returns, so before the PUBACK); and publishes the
 * slot. The cluster's producer thread drains the ring in batches into
 * rd_kafka_producev, the journal sequence number as the message opaque,
 * which the delivery report releases. One ring and one producer thread per
 * cluster keep each key's order.
 *
 * What the main thread can no longer hear from rd_kafka_producev it checks
 * before accepting, so that an event it accepts is never lost: a full ring,
 * a full librdkafka queue (the producer thread saw __QUEUE_FULL and has not
 * yet handed its event over) and a producer with a fatal error are refused
 * (kafka_unavailable), and so is a record above the cluster's
 * message.max.bytes. The producer thread waits for room when librdkafka's
 * queue is full. Any other refusal by librdkafka (e.g. a topic that Kafka
 * says does not exist) is handled as a failed delivery: a journaled event
 * stays in the journal and is produced again (journal_glue.c), one without
 * a journal is counted and logged, as a failed delivery report is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tributary.h"
#include "tributary/journal.h"

/* Slots per cluster ring, and the most events one batch hands over. */
#define PRODUCE_RING_SLOTS 8192
#define PRODUCE_BATCH 512
/* The most events the main thread commits without waking the producer
 * thread, within one turn of Mosquitto's main loop. */
#define PRODUCE_KICK_EVERY 64
/* While events keep coming, the producer thread naps this long between
 * batches instead of sleeping until woken: under load the main thread then
 * makes no wake-up call at all, for at most this much latency. */
#define PRODUCE_NAP_NS 500000L
/* While librdkafka's queue is full: how long the producer thread sleeps. */
#define PRODUCE_FULL_SLEEP_NS 1000000L
/* The most a record can take beyond its key, value and header bytes on the
 * wire (librdkafka's RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD is below this), and
 * per header (two varint lengths). */
#define PRODUCE_WIRE_OVERHEAD 64
#define PRODUCE_WIRE_PER_HEADER 10

/* The record's headers on the main thread: on the stack for an event of
 * up to PRODUCE_STACK_HEADERS, else allocated. */
#define PRODUCE_STACK_HEADERS 48
#define PRODUCE_NAME_MAX 80 /* "ce_" and an attribute name (<= 64) */
struct produce__hdrs {
	tjournal_header *h;
	char (*names)[PRODUCE_NAME_MAX];
	size_t n, cap;
	size_t bytes; /* names and values */
};

static int produce__add(struct produce__hdrs *hs, const char *name, const void *value, size_t len)
{
	size_t nl = strlen(name);
	if (hs->n == hs->cap || nl >= PRODUCE_NAME_MAX)
		return -1;
	size_t i = hs->n++;
	memcpy(hs->names[i], name, nl + 1);
	hs->h[i] = (tjournal_header){hs->names[i], nl, value, len};
	hs->bytes += nl + len;
	return 0;
}

static int produce__add_header(void *ctx, const char *name, const char *value, size_t len)
{
	return produce__add(ctx, name, value, len);
}

static int produce__headers(struct produce__hdrs *hs, const tb_event *ev, enum tbp_kafka_mode mode,
                            const struct tbp_origin *o, char *qos)
{
	if (mode != TBP_MODE_STRUCTURED) {
		if (tb_ce_each_kafka_header(ev, produce__add_header, hs))
			return -1;
	} else if (produce__add(hs, "content-type", "application/cloudevents+json", 28)) {
		return -1;
	}
	snprintf(qos, 4, "%u", o->qos);
	const char *cid = o->client_id ? o->client_id : "";
	if (produce__add(hs, "mqtt_topic", o->topic, strlen(o->topic)) ||
	    produce__add(hs, "mqtt_client_id", cid, strlen(cid)) ||
	    produce__add(hs, "mqtt_qos", qos, strlen(qos)))
		return -1;
	if (o->response_topic &&
	    produce__add(hs, "mqtt_response_topic", o->response_topic, strlen(o->response_topic)))
		return -1;
	if (o->correlation_data &&
	    produce__add(hs, "mqtt_correlation_data", o->correlation_data, o->correlation_len))
		return -1;
	return 0;
}

_Thread_local bool produce__sending;

rd_kafka_resp_err_t produce__send(struct tbp_cluster *cluster, const char *topic, const void *key,
                                  size_t keylen, const void *value, size_t valuelen,
                                  rd_kafka_headers_t *hdrs, uint64_t seq, char *err, size_t errlen)
{
	produce__sending = true;
	/* Never RD_KAFKA_MSG_F_BLOCK: a full local queue is the caller's to
	 * handle (the producer thread waits; the main thread refuses first). */
	rd_kafka_resp_err_t rerr = rd_kafka_producev(
	    cluster->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key ? keylen : 0),
	    RD_KAFKA_V_VALUE((void *)value, value ? valuelen : 0), RD_KAFKA_V_HEADERS(hdrs),
	    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE((void *)(uintptr_t)seq),
	    RD_KAFKA_V_END);
	produce__sending = false;
	if (rerr) {
		rd_kafka_headers_destroy(hdrs);
		snprintf(err, errlen, "Kafka cluster %s refused the event: %s", cluster->name,
		         rd_kafka_err2str(rerr));
	}
	return rerr;
}

rd_kafka_resp_err_t produce__record(struct tbp_cluster *cluster, const tjournal_record *r,
                                    uint64_t seq, char *err, size_t errlen)
{
	char topic[256];
	if (r->topic_len >= sizeof(topic)) {
		snprintf(err, errlen, "Kafka cluster %s refused the event: topic name too long",
		         cluster->name);
		return RD_KAFKA_RESP_ERR__INVALID_ARG;
	}
	memcpy(topic, r->topic, r->topic_len);
	topic[r->topic_len] = '\0';
	rd_kafka_headers_t *kh = rd_kafka_headers_new(r->header_count);
	for (size_t i = 0; i < r->header_count; i++) {
		const tjournal_header *h = &r->headers[i];
		if (h->name_len == strlen(TBP_JOURNAL_CLUSTER_HEADER) &&
		    !memcmp(h->name, TBP_JOURNAL_CLUSTER_HEADER, h->name_len))
			continue;
		if (rd_kafka_header_add(kh, h->name, (ssize_t)h->name_len, h->value,
		                        h->value ? (ssize_t)h->value_len : 0)) {
			rd_kafka_headers_destroy(kh);
			snprintf(err, errlen, "cannot copy the record's headers");
			return RD_KAFKA_RESP_ERR__INVALID_ARG;
		}
	}
	return produce__send(cluster, topic, r->key, r->key_len, r->value, r->value_len, kh, seq,
	                     err, errlen);
}

/* Refusals the producer thread would meet, heard before the event is
 * accepted: 0, or -1 with err. */
static int produce__refused(struct tbp_cluster *c, size_t wire, char *err, size_t errlen)
{
	int refusing = atomic_load_explicit(&c->refusing, memory_order_relaxed);
	if (refusing == TBP_REFUSING_QUEUE_FULL)
		snprintf(err, errlen, "Kafka cluster %s refused the event: %s", c->name,
		         rd_kafka_err2str(RD_KAFKA_RESP_ERR__QUEUE_FULL));
	else if (refusing == TBP_REFUSING_FATAL)
		snprintf(err, errlen, "Kafka cluster %s refused the event: %s", c->name,
		         rd_kafka_err2str(RD_KAFKA_RESP_ERR__FATAL));
	else if (wire > c->max_message_bytes)
		snprintf(err, errlen, "Kafka cluster %s refused the event: %s", c->name,
		         rd_kafka_err2str(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE));
	else
		return 0;
	return -1;
}

/* The journal's refusal, as the client hears it. */
static void produce__journal_refused(struct tributary *tb, int jrc, enum tbp_reject_reason *why,
                                     char *err, size_t errlen)
{
	if (jrc == TJOURNAL_FULL || jrc == TJOURNAL_NOSPACE) {
		*why = TBP_REJECT_STORE_FULL;
		snprintf(err, errlen, "the broker's event store is full (%s): try again later",
		         tjournal_strerror(jrc));
	} else {
		snprintf(err, errlen, "the broker could not store the event: %s",
		         tjournal_strerror(jrc));
	}
	journal__note_refusal(tb, jrc);
}

int produce__event(struct tributary *tb, struct tbp_cluster *cluster, const char *kafka_topic,
                   const char *key, size_t keylen, enum tbp_kafka_mode mode,
                   const struct tbp_confluent_value *cv, const tb_event *ev,
                   const struct tbp_origin *origin, bool journal, enum tbp_reject_reason *why,
                   char *err, size_t errlen)
{
	char *json = NULL;
	const void *value;
	size_t vlen;
	int rc = -1;
	*why = TBP_REJECT_INTERNAL;
	if (mode == TBP_MODE_STRUCTURED) {
		json = tb_ce_to_json(ev, &vlen);
		if (!json) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		value = json;
	} else if (mode == TBP_MODE_CONFLUENT) {
		/* An event without data was validated as null: its value says so. */
		const char *data = ev->has_data ? ev->data_bytes : "null";
		size_t dlen = ev->has_data ? ev->data_len : 4;
		uint32_t schema_id = (uint32_t)cv->schema_id;
		if (cv->payload) {
			data = cv->payload;
			dlen = cv->len;
		}
		json = malloc(5 + dlen);
		if (!json) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		json[0] = 0;
		json[1] = (char)(schema_id >> 24);
		json[2] = (char)(schema_id >> 16);
		json[3] = (char)(schema_id >> 8);
		json[4] = (char)schema_id;
		memcpy(json + 5, data, dlen);
		value = json;
		vlen = 5 + dlen;
	} else {
		value = ev->has_data ? ev->data_bytes : NULL;
		vlen = ev->has_data ? ev->data_len : 0;
	}

	/* Headers: the event's (at most one per attribute, and content-type),
	 * the five mqtt_* and the journal's cluster. */
	tjournal_header stack_h[PRODUCE_STACK_HEADERS];
	char stack_names[PRODUCE_STACK_HEADERS][PRODUCE_NAME_MAX];
	struct produce__hdrs hs = {.h = stack_h, .names = stack_names, .cap = ev->nattrs + 7};
	if (hs.cap > PRODUCE_STACK_HEADERS) {
		hs.h = malloc(hs.cap * sizeof(*hs.h));
		hs.names = malloc(hs.cap * sizeof(*hs.names));
		if (!hs.h || !hs.names) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
	}
	char qos[4];
	if (produce__headers(&hs, ev, mode, origin, qos)) {
		snprintf(err, errlen, "the event's attributes cannot be Kafka headers");
		goto out;
	}
	bool journaled = journal && tb->journal;
	if (journaled &&
	    produce__add(&hs, TBP_JOURNAL_CLUSTER_HEADER, cluster->name, strlen(cluster->name))) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	tjournal_record rec = {.topic = kafka_topic,
	                       .topic_len = strlen(kafka_topic),
	                       .key = key,
	                       .key_len = key ? keylen : 0,
	                       .headers = hs.h,
	                       .header_count = hs.n,
	                       .value = value,
	                       .value_len = vlen};
	size_t size = tjournal_record_size(&rec);
	if (!size) {
		snprintf(err, errlen, "the event cannot be made a Kafka record");
		goto out;
	}
	size_t wire =
	    PRODUCE_WIRE_OVERHEAD + keylen + vlen + hs.bytes + hs.n * PRODUCE_WIRE_PER_HEADER;
	if (produce__refused(cluster, wire, err, errlen)) {
		*why = TBP_REJECT_KAFKA;
		goto out;
	}
	struct tbp_ring_slot *slot;
	int rrc = ring__reserve(&cluster->ring, size, &slot);
	if (rrc == RING_FULL) {
		*why = TBP_REJECT_KAFKA;
		snprintf(err, errlen,
		         "Kafka cluster %s refused the event: its producer's queue is full",
		         cluster->name);
		goto out;
	}
	if (rrc != RING_OK) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	tjournal_record_encode(&rec, slot->buf, size);
	if (journaled) {
		int jrc = tjournal_append(tb->journal, slot->buf, size, &slot->seq);
		if (jrc != TJOURNAL_OK) {
			/* The slot is not published: the next event takes it. */
			produce__journal_refused(tb, jrc, why, err, errlen);
			goto out;
		}
	}
	slot->flags = journal ? 0 : TBP_SLOT_MIRROR;
	ring__commit(&cluster->ring);
	/* One wake-up per turn of the main loop (produce__tick), or per
	 * PRODUCE_KICK_EVERY events of a long turn; per event while no tick
	 * has been seen (per_listener_settings true: no global tick). */
	if (!tb->ticking || ++cluster->unkicked >= PRODUCE_KICK_EVERY) {
		ring__kick(&cluster->ring);
		cluster->unkicked = 0;
	}
	rc = 0;
out:
	if (hs.h != stack_h) {
		free(hs.h);
		free(hs.names);
	}
	free(json);
	return rc;
}

void produce__tick(struct tributary *tb)
{
	tb->ticking = true;
	for (size_t i = 0; i < tb->nclusters; i++) {
		struct tbp_cluster *c = &tb->clusters[i];
		if (c->unkicked) {
			ring__kick(&c->ring);
			c->unkicked = 0;
		}
	}
}

/* ---- the producer thread: the ring into librdkafka ---- */

struct produce__scratch {
	tjournal_header *hv;
	size_t cap;
	char err[512];
};

/* Hands one slot's record to librdkafka. */
static rd_kafka_resp_err_t produce__slot(struct tbp_cluster *c, struct produce__scratch *ps,
                                         const struct tbp_ring_slot *s)
{
	tjournal_record r;
	int n = tjournal_record_view(s->buf, s->len, &r, ps->hv, ps->cap);
	if (n > (int)ps->cap) {
		tjournal_header *hv = realloc(ps->hv, (size_t)n * sizeof(*hv));
		if (!hv) {
			snprintf(ps->err, sizeof(ps->err), "out of memory");
			return RD_KAFKA_RESP_ERR__FAIL;
		}
		ps->hv = hv;
		ps->cap = (size_t)n;
		n = tjournal_record_view(s->buf, s->len, &r, ps->hv, ps->cap);
	}
	if (n < 0) {
		snprintf(ps->err, sizeof(ps->err), "undecodable record");
		return RD_KAFKA_RESP_ERR__BAD_MSG;
	}
	return produce__record(c, &r, s->seq, ps->err, sizeof(ps->err));
}

/* An accepted event that librdkafka refused (not for a full queue): a
 * journaled one is produced again from the journal, as a failed delivery
 * is; another is counted and logged as one. */
static void produce__failed(struct tbp_cluster *c, const struct tbp_ring_slot *s,
                            rd_kafka_resp_err_t e, const char *err)
{
	struct tributary *tb = c->tb;
	if (e == RD_KAFKA_RESP_ERR__FATAL)
		atomic_store(&c->refusing, TBP_REFUSING_FATAL);
	atomic_fetch_add(
	    s->flags & TBP_SLOT_MIRROR ? &tb->stats.mirror_failed : &tb->stats.delivery_failed, 1);
	cluster__note_failure(tb, "cluster %s: %s%s", c->name, err,
	                      s->seq ? " (kept in the journal, produced again)" : "");
	if (s->seq)
		journal__delivery_failed(c, true);
}

/* Up to n slots into librdkafka, under the cluster's retry_lock when it has
 * a journal (journal_glue.c: while the cluster retries, the retry thread
 * produces its journaled events). Returns how many were consumed: fewer
 * than n when librdkafka's queue is full. */
static size_t produce__batch(struct tbp_cluster *c, struct produce__scratch *ps, size_t n)
{
	bool journaled = c->tb->journal != NULL;
	size_t done = 0;
	if (journaled)
		journal__produce_begin(c);
	for (; done < n; done++) {
		struct tbp_ring_slot *s = ring__slot(&c->ring, done);
		if (journaled && s->seq && journal__held(c, s->seq, s->buf, s->len))
			continue;
		rd_kafka_resp_err_t e = produce__slot(c, ps, s);
		if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			atomic_store(&c->refusing, TBP_REFUSING_QUEUE_FULL);
			break;
		}
		if (e)
			produce__failed(c, s, e, ps->err);
		else if (atomic_load_explicit(&c->refusing, memory_order_relaxed) ==
		         TBP_REFUSING_QUEUE_FULL)
			atomic_store(&c->refusing, TBP_REFUSING_NONE);
	}
	if (journaled)
		journal__produce_end(c);
	ring__release(&c->ring, done);
	return done;
}

static long long produce__now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* At shutdown, when librdkafka's queue stayed full past the flush timeout:
 * what the ring still holds is not produced (a journaled event stays in the
 * journal, produced at the next start). */
static void produce__abandon(struct tbp_cluster *c)
{
	size_t n = ring__available(&c->ring), kept = 0;
	for (size_t i = 0; i < n; i++) {
		const struct tbp_ring_slot *s = ring__slot(&c->ring, i);
		if (s->seq)
			kept++;
		else
			atomic_fetch_add(s->flags & TBP_SLOT_MIRROR ? &c->tb->stats.mirror_failed
			                                            : &c->tb->stats.delivery_failed,
			                 1);
	}
	ring__release(&c->ring, n);
	cluster__note_failure(c->tb,
	                      "cluster %s: %zu events not handed to Kafka at shutdown (%zu kept "
	                      "in the journal)",
	                      c->name, n, kept);
}

static void *produce__main(void *arg)
{
	struct tbp_cluster *c = arg;
	struct produce__scratch ps = {0};
	bool busy = false;
	for (;;) {
		size_t n = ring__available(&c->ring);
		if (!n) {
			if (atomic_load(&c->producer_stop))
				break;
			if (busy) {
				/* Events keep coming: look again after a short nap
				 * rather than ask the main thread for a wake-up (a
				 * system call on its time). Asleep once a nap found
				 * nothing. */
				busy = false;
				struct timespec nap = {0, PRODUCE_NAP_NS};
				nanosleep(&nap, NULL);
				continue;
			}
			ring__wait(&c->ring, &c->producer_stop, 1000);
			continue;
		}
		busy = true;
		if (n > PRODUCE_BATCH)
			n = PRODUCE_BATCH;
		if (produce__batch(c, &ps, n) == n)
			continue;
		/* librdkafka's queue is full: wait for its delivery reports. */
		if (atomic_load(&c->producer_stop) &&
		    produce__now_ms() >= atomic_load(&c->producer_deadline_ms)) {
			produce__abandon(c);
			break;
		}
		struct timespec ts = {0, PRODUCE_FULL_SLEEP_NS};
		nanosleep(&ts, NULL);
	}
	free(ps.hv);
	return NULL;
}

int produce__start(struct tbp_cluster *c)
{
	if (ring__init(&c->ring, PRODUCE_RING_SLOTS))
		return MOSQ_ERR_NOMEM;
	atomic_store(&c->producer_stop, false);
	atomic_store(&c->refusing, TBP_REFUSING_NONE);
	if (pthread_create(&c->producer, NULL, produce__main, c) != 0)
		return MOSQ_ERR_UNKNOWN;
	c->producer_started = true;
	return MOSQ_ERR_SUCCESS;
}

void produce__stop(struct tbp_cluster *c, int timeout_ms)
{
	if (c->producer_started) {
		atomic_store(&c->producer_deadline_ms, produce__now_ms() + timeout_ms);
		atomic_store(&c->producer_stop, true);
		ring__wake(&c->ring);
		pthread_join(c->producer, NULL);
		c->producer_started = false;
	}
	ring__free(&c->ring);
}
