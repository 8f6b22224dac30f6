/*
 * Rejections: v5 clients get PUBACK/PUBREC 0x87 from the broker (the only
 * code Mosquitto 2.0 lets a plugin choose); every client, 3.1.1 included,
 * also gets a CloudEvent of type tributary.event.rejected on its error topic
 * (clients/{client_id}/errors), saying what was wrong and where.
 */
#include <stdio.h>
#include <string.h>

#include "tributary.h"
#include "tributary/json_encode.h"
#include "tributary/util.h"

struct reject__ctx {
	const char *client_id;
};

static int reject__lookup(void *vctx, const char *name, size_t len, const char **value,
                          size_t *vlen)
{
	struct reject__ctx *ctx = vctx;
	if (len == 9 && !memcmp(name, "client_id", 9) && ctx->client_id) {
		*value = ctx->client_id;
		*vlen = strlen(ctx->client_id);
		return 0;
	}
	return -1;
}

static json_t *reject__errors(const tjs_result *res)
{
	json_t *arr = json_array();
	if (!res)
		return arr;
	for (size_t i = 0; i < res->count; i++) {
		const tjs_error *e = &res->errors[i];
		json_array_append_new(arr,
		                      json_pack("{s:s,s:s,s:s}", "instanceLocation",
		                                e->instance_location ? e->instance_location : "",
		                                "keywordLocation",
		                                e->keyword_location ? e->keyword_location : "",
		                                "message", e->message ? e->message : ""));
	}
	return arr;
}

void reject__publish(struct tributary *tb, struct mosquitto *client, const char *mqtt_topic,
                     int qos, const struct tbp_reject *rej)
{
	const char *client_id = mosquitto_client_id(client);
	char topic[512], id[TB_UUID_LEN + 1], now[TB_TIME_LEN + 1];
	const char *bad = NULL;
	struct reject__ctx ctx = {client_id};

	char qid[TB_LOG_ESCAPE_LEN], qtopic[TB_LOG_ESCAPE_LEN], qmsg[2 * TB_LOG_ESCAPE_LEN];

	atomic_fetch_add(&tb->stats.rejected[rej->reason], 1);
	/* The message echoes the client's event (attribute names, type, schema
	 * errors): escaped whole, its own quotes included. */
	mosquitto_log_printf(
	    MOSQ_LOG_NOTICE, TB_LOG_PREFIX "rejected event from '%s' on '%s': %s: %s",
	    tb_log_escape(qid, sizeof(qid), client_id),
	    tb_log_escape(qtopic, sizeof(qtopic), mqtt_topic), stats__reason_name(rej->reason),
	    tb_log_escape(qmsg, sizeof(qmsg), rej->message));

	/* A client id with topic syntax in it would publish somewhere else. */
	if (tb_template_expand(&tb->error_topic, reject__lookup, &ctx, "+#/", topic, sizeof(topic),
	                       &bad) < 0) {
		mosquitto_log_printf(MOSQ_LOG_WARNING,
		                     TB_LOG_PREFIX "no error event for client '%s': its id cannot "
		                                   "be used in a topic",
		                     tb_log_escape(qid, sizeof(qid), client_id));
		return;
	}

	tb_uuid7(id);
	tb_time_rfc3339(now);
	json_t *data =
	    json_pack("{s:s,s:s,s:{s:s,s:i},s:o}", "reason", stats__reason_name(rej->reason),
	              "message", rej->message, "mqtt", "topic", mqtt_topic, "qos", qos, "errors",
	              reject__errors(rej->errors));
	if (!data)
		return;
	if (rej->event && rej->event->attrs) {
		json_t *evinfo = json_object();
		const char *eid = tb_ce_attr_string(rej->event, "id");
		const char *etype = tb_ce_attr_string(rej->event, "type");
		const char *esrc = tb_ce_attr_string(rej->event, "source");
		if (eid)
			json_object_set_new(evinfo, "id", json_string(eid));
		if (etype)
			json_object_set_new(evinfo, "type", json_string(etype));
		if (esrc)
			json_object_set_new(evinfo, "source", json_string(esrc));
		json_object_set_new(data, "event", evinfo);
	}
	json_t *ce =
	    json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o}", "specversion", "1.0", "id", id, "source",
	              "tributary://broker", "type", "tributary.event.rejected", "subject",
	              mqtt_topic, "time", now, "datacontenttype", "application/json", "data", data);
	if (!ce)
		return;
	json_object_set_new(ce, "source", json_sprintf("tributary://%s", tb->broker_id));
	size_t len;
	char *text = tb_json_encode(ce, &len);
	json_decref(ce);
	if (!text)
		return;
	/* The broker takes ownership of a payload from its own allocator. */
	void *payload = mosquitto_malloc(len);
	if (payload) {
		memcpy(payload, text, len);
		mosquitto_broker_publish(NULL, topic, (int)len, payload, 1, false, NULL);
	}
	free(text);
}
