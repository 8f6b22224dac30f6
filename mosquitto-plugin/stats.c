/* Counters, published as retained messages under $SYS/tributary/. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tributary.h"

static const char *const stats__reasons[TBP_REJECT__COUNT] = {
    [TBP_REJECT_NO_ROUTE] = "no_route",
    [TBP_REJECT_TOO_LARGE] = "payload_too_large",
    [TBP_REJECT_INVALID_UTF8] = "invalid_utf8",
    [TBP_REJECT_INVALID_JSON] = "invalid_json",
    [TBP_REJECT_NOT_AN_EVENT] = "not_an_event",
    [TBP_REJECT_MISSING_ATTRIBUTE] = "missing_attribute",
    [TBP_REJECT_INVALID_ATTRIBUTE] = "invalid_attribute",
    [TBP_REJECT_INVALID_DATA] = "invalid_data",
    [TBP_REJECT_UNKNOWN_TYPE] = "unknown_type",
    [TBP_REJECT_SCHEMA] = "schema_validation_failed",
    [TBP_REJECT_ROUTING] = "routing_failed",
    [TBP_REJECT_INVALID_TOPIC] = "invalid_topic",
    [TBP_REJECT_TYPE_NOT_ALLOWED] = "type_not_allowed",
    [TBP_REJECT_INVALID_RESPONSE_TOPIC] = "invalid_response_topic",
    [TBP_REJECT_KAFKA] = "kafka_unavailable",
    [TBP_REJECT_STORE_FULL] = "store_full",
    [TBP_REJECT_TOPIC_NOT_COMPLIANT] = "topic_not_compliant",
    [TBP_REJECT_SCHEMA_UNAVAILABLE] = "schema_unavailable",
    [TBP_REJECT_INTERNAL] = "internal_error",
};

const char *stats__reason_name(enum tbp_reject_reason r)
{
	return r < TBP_REJECT__COUNT ? stats__reasons[r] : "unknown";
}

/* A retained $SYS counter; the broker takes a payload from its allocator. */
void stats__put(const char *topic, unsigned long long value)
{
	char text[32];
	int len = snprintf(text, sizeof(text), "%llu", value);
	void *payload = mosquitto_malloc((size_t)len);
	if (!payload)
		return;
	memcpy(payload, text, (size_t)len);
	if (mosquitto_broker_publish(NULL, topic, len, payload, 0, true, NULL))
		mosquitto_free(payload);
}

void stats__publish(struct tributary *tb)
{
	struct tbp_stats *s = &tb->stats;
	char topic[128];
	unsigned long long rejected = 0;
	for (int r = 0; r < TBP_REJECT__COUNT; r++) {
		unsigned long long n = atomic_load(&s->rejected[r]);
		rejected += n;
		snprintf(topic, sizeof(topic), "$SYS/tributary/rejected/%s", stats__reasons[r]);
		stats__put(topic, n);
	}
	stats__put("$SYS/tributary/accepted", atomic_load(&s->accepted));
	stats__put("$SYS/tributary/passed", atomic_load(&s->passed));
	stats__put("$SYS/tributary/rejected", rejected);
	stats__put("$SYS/tributary/produced", atomic_load(&s->produced));
	stats__put("$SYS/tributary/delivery_failures", atomic_load(&s->delivery_failed));
	stats__put("$SYS/tributary/mirror_failures", atomic_load(&s->mirror_failed));
	unsigned long long depth = 0;
	for (size_t i = 0; i < tb->nclusters; i++)
		depth += (unsigned long long)rd_kafka_outq_len(tb->clusters[i].rk) +
		         ring__depth(&tb->clusters[i].ring);
	stats__put("$SYS/tributary/queue_depth", depth);
	stats__put("$SYS/tributary/replayed", atomic_load(&s->replayed));
	stats__put("$SYS/tributary/retried", atomic_load(&s->retried));
	stats__put("$SYS/tributary/qos2_resent", atomic_load(&s->resent));
	journal__publish_stats(tb);
	outbound__publish_stats(tb);
	registry__publish_stats(tb);
}

int stats__on_tick(int event, void *event_data, void *userdata)
{
	struct tributary *tb = userdata;
	(void)event;
	(void)event_data;
	produce__tick(tb);
	cluster__log_failures(tb);
	if (tb->sys_interval_s > 0) {
		time_t now = time(NULL);
		if (now >= tb->next_sys) {
			tb->next_sys = now + tb->sys_interval_s;
			stats__publish(tb);
		}
	}
	return MOSQ_ERR_SUCCESS;
}
