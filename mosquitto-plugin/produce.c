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
 * With a journal, the record is appended to it first and released by the
 * delivery report: the message's opaque is its journal sequence number.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tributary.h"
#include "tributary/journal.h"

static int produce__add_header(void *ctx, const char *name, const char *value, size_t len)
{
	return rd_kafka_header_add(ctx, name, -1, value, (ssize_t)len) ? -1 : 0;
}

static rd_kafka_headers_t *produce__headers(const tb_event *ev, enum tbp_kafka_mode mode,
                                            const struct tbp_origin *o)
{
	rd_kafka_headers_t *h = rd_kafka_headers_new(16);
	char qos[4];
	if (mode != TBP_MODE_STRUCTURED) {
		if (tb_ce_each_kafka_header(ev, produce__add_header, h))
			goto error;
	} else if (rd_kafka_header_add(h, "content-type", -1, "application/cloudevents+json", -1)) {
		goto error;
	}
	snprintf(qos, sizeof(qos), "%u", o->qos);
	if (rd_kafka_header_add(h, "mqtt_topic", -1, o->topic, -1) ||
	    rd_kafka_header_add(h, "mqtt_client_id", -1, o->client_id ? o->client_id : "", -1) ||
	    rd_kafka_header_add(h, "mqtt_qos", -1, qos, -1))
		goto error;
	if (o->response_topic &&
	    rd_kafka_header_add(h, "mqtt_response_topic", -1, o->response_topic, -1))
		goto error;
	if (o->correlation_data && rd_kafka_header_add(h, "mqtt_correlation_data", -1,
	                                               o->correlation_data, o->correlation_len))
		goto error;
	return h;
error:
	rd_kafka_headers_destroy(h);
	return NULL;
}

_Thread_local bool produce__sending;

int produce__send(struct tbp_cluster *cluster, const char *topic, const void *key, size_t keylen,
                  const void *value, size_t valuelen, rd_kafka_headers_t *hdrs, uint64_t seq,
                  char *err, size_t errlen)
{
	produce__sending = true;
	/* Never RD_KAFKA_MSG_F_BLOCK: this is the broker's main thread. A full
	 * local queue is a refusal the client hears about, not a stall. */
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
		return -1;
	}
	return 0;
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
	uint64_t seq = 0;
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
	rd_kafka_headers_t *hdrs = produce__headers(ev, mode, origin);
	if (!hdrs) {
		free(json);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	void *blob = NULL;
	size_t bloblen = 0;
	if (journal && tb->journal) {
		int jrc = journal__append(tb, cluster, kafka_topic, key, keylen, hdrs, value, vlen,
		                          &seq, &blob, &bloblen);
		if (jrc != TJOURNAL_OK) {
			free(json);
			rd_kafka_headers_destroy(hdrs);
			if (jrc == TJOURNAL_FULL || jrc == TJOURNAL_NOSPACE) {
				*why = TBP_REJECT_STORE_FULL;
				snprintf(err, errlen,
				         "the broker's event store is full (%s): try "
				         "again later",
				         tjournal_strerror(jrc));
			} else {
				snprintf(err, errlen, "the broker could not store the event: %s",
				         tjournal_strerror(jrc));
			}
			journal__note_refusal(tb, jrc);
			return -1;
		}
	}
	/* A cluster retrying failed deliveries produces new events after them,
	 * from the journal (journal_glue.c): they are accepted, not produced here. */
	int rc = 0;
	if (seq && journal__produce_begin(cluster, seq, blob, bloblen))
		rd_kafka_headers_destroy(hdrs);
	else
		rc = produce__send(cluster, kafka_topic, key, keylen, value, vlen, hdrs, seq, err,
		                   errlen);
	if (seq)
		journal__produce_end(cluster);
	free(json);
	if (rc) {
		/* Refused now, so the client hears of it: nothing to keep. */
		journal__release(tb, seq);
		*why = TBP_REJECT_KAFKA;
	}
	return rc;
}
