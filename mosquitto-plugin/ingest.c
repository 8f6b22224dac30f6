/*
 * MOSQ_EVT_MESSAGE: every PUBLISH that matches an ingest route must be a
 * CloudEvent whose data is valid against its type's schema before it may
 * enter Kafka. Rejected messages never reach Kafka nor subscribers.
 *
 * Mosquitto 2.0.11: returning MOSQ_ERR_ACL_DENIED drops the message and
 * answers v5 clients with 0x87; any other error would disconnect the client,
 * so every failure here maps to ACL_DENIED or SUCCESS.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tributary.h"
#include "tributary/util.h"

#define INGEST_MAX_USER_PROPS 32
#define INGEST_MAX_ERRORS 10

struct ingest__msg {
	char *content_type;
	char *response_topic;
	void *correlation_data;
	uint16_t correlation_len;
	tb_ce_attr attrs[INGEST_MAX_USER_PROPS];
	char *names[INGEST_MAX_USER_PROPS];
	char *values[INGEST_MAX_USER_PROPS];
	size_t nattrs;
	bool too_many;
	bool binary; /* v5 binary mode: a `specversion` user property */
};

/* Property read functions hand out memory for plain free() (2.0.11). */
static void ingest__msg_clear(struct ingest__msg *m)
{
	free(m->content_type);
	free(m->response_topic);
	free(m->correlation_data);
	for (size_t i = 0; i < m->nattrs; i++) {
		free(m->names[i]);
		free(m->values[i]);
	}
}

static void ingest__read_properties(const mosquitto_property *props, struct ingest__msg *m)
{
	for (const mosquitto_property *p = props; p; p = mosquitto_property_next(p)) {
		switch (mosquitto_property_identifier(p)) {
		case MQTT_PROP_CONTENT_TYPE:
			if (!m->content_type)
				mosquitto_property_read_string(p, MQTT_PROP_CONTENT_TYPE,
							       &m->content_type, false);
			break;
		case MQTT_PROP_RESPONSE_TOPIC:
			if (!m->response_topic)
				mosquitto_property_read_string(p, MQTT_PROP_RESPONSE_TOPIC,
							       &m->response_topic, false);
			break;
		case MQTT_PROP_CORRELATION_DATA:
			if (!m->correlation_data)
				mosquitto_property_read_binary(p, MQTT_PROP_CORRELATION_DATA,
							       &m->correlation_data,
							       &m->correlation_len, false);
			break;
		case MQTT_PROP_USER_PROPERTY: {
			if (m->nattrs == INGEST_MAX_USER_PROPS) {
				m->too_many = true;
				break;
			}
			char *name = NULL, *value = NULL;
			if (mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name,
								&value, false) == NULL)
				break;
			m->names[m->nattrs] = name;
			m->values[m->nattrs] = value;
			m->attrs[m->nattrs].name = name;
			m->attrs[m->nattrs].value = value;
			m->nattrs++;
			if (!strcmp(name, "specversion"))
				m->binary = true;
			break;
		}
		default:
			break;
		}
	}
}

struct ingest__lookup_ctx {
	const tb_captures *caps;
	const tb_event *ev;
	struct mosquitto *client;
};

static int ingest__lookup(void *vctx, const char *name, size_t len, const char **value,
			  size_t *vlen)
{
	struct ingest__lookup_ctx *ctx = vctx;
	const tb_capture *c = tb_captures_get(ctx->caps, name, len);
	const char *v = NULL;
	char attr[32];
	if (c) {
		*value = c->value;
		*vlen = c->len;
		return 0;
	}
	if (len == 9 && !memcmp(name, "client_id", len))
		v = mosquitto_client_id(ctx->client);
	else if (len == 8 && !memcmp(name, "username", len))
		v = mosquitto_client_username(ctx->client);
	else if (len < sizeof(attr)) {
		memcpy(attr, name, len);
		attr[len] = '\0';
		v = tb_ce_attr_string(ctx->ev, attr);
	}
	if (!v || !*v)
		return -1;
	*value = v;
	*vlen = strlen(v);
	return 0;
}

/* Captures that go into a Kafka topic name must be non-empty and match the
 * route's capture_pattern: `events//x` or `events/order.secret/x` must not
 * create or reach topics `events.` or `events.order.secret`. */
static bool ingest__captures_ok(const struct tb_ingest_route *route, const tb_captures *caps,
				char *err, size_t errlen)
{
	for (int i = 0; i < caps->count; i++) {
		const tb_capture *c = &caps->cap[i];
		if (!(route->topic_captures & (1u << i)) ||
		    tb_capture_rule_ok(route->capture_rule, c->value, c->len))
			continue;
		if (c->len == 0)
			snprintf(err, errlen, "the topic level {%s} is empty", c->name);
		else
			snprintf(err, errlen, "the topic level {%s} does not match the route's "
					      "capture_pattern %s",
				 c->name, tb_capture_rule_text(route->capture_rule));
		return false;
	}
	return true;
}

/* The route's "types", when it lists them: `example.order.*` or
 * `example.{aggregate}.*` keep an aggregate's topic to its own events. */
static bool ingest__type_allowed(const struct tb_ingest_route *route, const tb_captures *caps,
				 const char *type)
{
	char want[512];
	if (!route->types)
		return true;
	for (size_t i = 0; i < route->ntypes; i++) {
		const struct tb_type_rule *t = &route->types[i];
		struct ingest__lookup_ctx lctx = {caps, NULL, NULL};
		int n = tb_template_expand(&t->type, ingest__lookup, &lctx, NULL, want,
					   sizeof(want), NULL);
		if (n < 0)
			continue;
		if (t->prefix ? !strncmp(type, want, (size_t)n) : !strcmp(type, want))
			return true;
	}
	return false;
}

struct ingest__response_ctx {
	struct tributary *tb;
	struct mosquitto *client;
};

static int ingest__response_lookup(void *vctx, const char *name, size_t len, const char **value,
				   size_t *vlen)
{
	struct ingest__response_ctx *ctx = vctx;
	const char *v = NULL;
	if (len == 9 && !memcmp(name, "client_id", len))
		v = mosquitto_client_id(ctx->client);
	else if (len == 8 && !memcmp(name, "username", len))
		v = mosquitto_client_username(ctx->client);
	else if (len == 3 && !memcmp(name, "sub", len))
		v = auth__subject(ctx->tb, ctx->client);
	if (!v || !*v)
		return -1;
	*value = v;
	*vlen = strlen(v);
	return 0;
}

/* A v5 Response Topic must be one the sender may ask its reply on
 * (ingest.response_topics), or the service's reply, with the sender's
 * correlation data, would be delivered to another client. */
static bool ingest__response_topic_ok(struct tributary *tb, struct mosquitto *client,
				      const char *topic)
{
	struct ingest__response_ctx ctx = {tb, client};
	char allowed[1024];
	if (strpbrk(topic, "+#"))
		return false;
	for (size_t i = 0; i < tb->nresponse_topics; i++) {
		const struct tb_response_topic *r = &tb->response_topics[i];
		bool match = false;
		/* A value with topic syntax would widen the template: skipped. */
		if (tb_template_expand(&r->topic, ingest__response_lookup, &ctx, "+#/", allowed,
				       sizeof(allowed), NULL) < 0)
			continue;
		if (!r->wildcard)
			match = !strcmp(topic, allowed);
		else if (mosquitto_topic_matches_sub(allowed, topic, &match) != MOSQ_ERR_SUCCESS)
			match = false;
		if (match)
			return true;
	}
	return false;
}

static enum tb_reject_reason ingest__reason(tb_ce_status st)
{
	switch (st) {
	case TB_CE_INVALID_UTF8: return TB_REJECT_INVALID_UTF8;
	case TB_CE_INVALID_JSON: return TB_REJECT_INVALID_JSON;
	case TB_CE_NOT_AN_EVENT: return TB_REJECT_NOT_AN_EVENT;
	case TB_CE_MISSING_ATTRIBUTE: return TB_REJECT_MISSING_ATTRIBUTE;
	case TB_CE_INVALID_ATTRIBUTE: return TB_REJECT_INVALID_ATTRIBUTE;
	case TB_CE_INVALID_DATA: return TB_REJECT_INVALID_DATA;
	default: return TB_REJECT_INTERNAL;
	}
}

/* Who sent it, for the authcontext extension. Never taken from the event:
 * the JWT subject when the plugin authenticated the client, else the
 * username the broker accepted, else the client id, unauthenticated. */
static int ingest__authcontext(struct tributary *tb, struct mosquitto *client, tb_event *ev)
{
	const char *subject = auth__subject(tb, client);
	if (subject)
		return tb_ce_set_authcontext(ev, "app_user", subject);
	const char *username = mosquitto_client_username(client);
	if (username && *username)
		return tb_ce_set_authcontext(ev, "user", username);
	return tb_ce_set_authcontext(ev, "unauthenticated", mosquitto_client_id(client));
}

int ingest__on_message(int event, void *event_data, void *userdata)
{
	struct tributary *tb = userdata;
	struct mosquitto_evt_message *msg = event_data;
	struct ingest__msg m = {0};
	tb_event ev = {0};
	tjs_result vres = {0};
	tb_captures caps;
	struct tb_ingest_route *route = NULL;
	char err[1024], kafka_topic[256], key[1024];
	struct tb_reject rej = {.event = NULL};
	struct resend__check resend = {.active = false};
	int rc = MOSQ_ERR_SUCCESS;
	(void)event;

	for (size_t i = 0; i < tb->nroutes; i++) {
		if (tb_pattern_match(&tb->routes[i].match, msg->topic, &caps)) {
			route = &tb->routes[i];
			break;
		}
	}
	if (!route) {
		if (!tb->reject_unmatched || msg->topic[0] == '$') {
			atomic_fetch_add(&tb->stats.passed, 1);
			return MOSQ_ERR_SUCCESS;
		}
		rej.reason = TB_REJECT_NO_ROUTE;
		rej.message = "no ingest route matches this topic";
		goto reject;
	}
	if (!ingest__captures_ok(route, &caps, err, sizeof(err))) {
		rej.reason = TB_REJECT_INVALID_TOPIC;
		rej.message = err;
		goto reject;
	}

	if (msg->payloadlen > route->max_payload) {
		snprintf(err, sizeof(err), "payload of %u bytes exceeds the route's maximum of %u",
			 msg->payloadlen, route->max_payload);
		rej.reason = TB_REJECT_TOO_LARGE;
		rej.message = err;
		goto reject;
	}

	ingest__read_properties(msg->properties, &m);
	if (m.too_many) {
		snprintf(err, sizeof(err), "more than %d user properties", INGEST_MAX_USER_PROPS);
		rej.reason = TB_REJECT_INVALID_ATTRIBUTE;
		rej.message = err;
		goto reject;
	}
	tb_ce_status st;
	if (m.binary)
		st = tb_ce_parse_binary(m.attrs, m.nattrs, m.content_type, msg->payload,
					msg->payloadlen, &ev, err, sizeof(err));
	else
		st = tb_ce_parse_structured(msg->payload, msg->payloadlen, &ev, err, sizeof(err));
	/* A QoS 2 event whose id the broker generates may be a retransmission
	 * (resend.c). */
	if (st == TB_CE_OK && msg->qos == 2 && tb->resend)
		resend__check(tb, msg, m.attrs, m.nattrs, m.content_type, &ev, &resend);
	if (st == TB_CE_OK)
		st = tb_ce_complete(&ev, err, sizeof(err));
	rej.event = &ev;
	if (st != TB_CE_OK) {
		rej.reason = ingest__reason(st);
		rej.message = err;
		goto reject;
	}

	/* Where it goes, before what it is: the route decides both. */
	struct ingest__lookup_ctx lctx = {&caps, &ev, msg->client};
	const char *missing = NULL;
	int tn = tb_template_expand(&route->topic, ingest__lookup, &lctx, NULL, kafka_topic,
				    sizeof(kafka_topic), &missing);
	if (tn == -1) {
		snprintf(err, sizeof(err), "cannot make a Kafka topic from '%s' ({%s} missing)",
			 route->topic.text, missing ? missing : "?");
		rej.reason = TB_REJECT_ROUTING;
		rej.message = err;
		goto reject;
	}
	if (tn < 0 || !tb_kafka_topic_valid(kafka_topic)) {
		snprintf(err, sizeof(err), "'%s' does not make a legal Kafka topic name%s%s%s",
			 route->topic.text, tn < 0 ? "" : " ('", tn < 0 ? "" : kafka_topic,
			 tn < 0 ? " (too long)" : "')");
		rej.reason = TB_REJECT_INVALID_TOPIC;
		rej.message = err;
		goto reject;
	}
	const char *keyp = NULL;
	size_t keylen = 0;
	if (route->key.text) {
		missing = NULL;
		int n = tb_template_expand(&route->key, ingest__lookup, &lctx, NULL, key,
					   sizeof(key), &missing);
		if (n < 0) {
			snprintf(err, sizeof(err), "cannot make the record key from '%s' ({%s} %s)",
				 route->key.text, missing ? missing : "?",
				 n == -2 ? "too long" : "missing");
			rej.reason = missing && !strcmp(missing, "partitionkey")
					 ? TB_REJECT_MISSING_ATTRIBUTE
					 : TB_REJECT_ROUTING;
			rej.message = err;
			goto reject;
		}
		keyp = key;
		keylen = (size_t)n;
	} else if ((keyp = tb_ce_attr_string(&ev, "partitionkey"))) {
		keylen = strlen(keyp);
	}

	const char *type = tb_ce_attr_string(&ev, "type");
	if (!ingest__type_allowed(route, &caps, type)) {
		snprintf(err, sizeof(err), "event type '%s' is not allowed on this topic", type);
		rej.reason = TB_REJECT_TYPE_NOT_ALLOWED;
		rej.message = err;
		goto reject;
	}
	if (m.response_topic && !ingest__response_topic_ok(tb, msg->client, m.response_topic)) {
		snprintf(err, sizeof(err),
			 "response topic '%s' is not one this client may receive replies on",
			 m.response_topic);
		rej.reason = TB_REJECT_INVALID_RESPONSE_TOPIC;
		rej.message = err;
		goto reject;
	}
	const tjs_schema *schema = tb_catalog_find(tb->catalog, type);
	if (!schema && route->schema_required) {
		snprintf(err, sizeof(err), "event type '%s' has no schema in the catalog", type);
		rej.reason = TB_REJECT_UNKNOWN_TYPE;
		rej.message = err;
		goto reject;
	}
	if (schema) {
		if (ev.has_data && !ev.data) {
			snprintf(err, sizeof(err),
				 "the schema of '%s' needs JSON data, not '%s'", type,
				 tb_ce_attr_string(&ev, "datacontenttype"));
			rej.reason = TB_REJECT_INVALID_DATA;
			rej.message = err;
			goto reject;
		}
		/* An event without data is validated as null. */
		bool ok = ev.data ? tjs_validate_value(schema, ev.data, &vres, INGEST_MAX_ERRORS)
				  : tjs_validate(schema, json_null(), &vres, INGEST_MAX_ERRORS);
		if (!ok) {
			if (vres.count)
				snprintf(err, sizeof(err), "data does not match the schema of '%s': %s%s%s",
					 type, vres.errors[0].instance_location,
					 vres.errors[0].instance_location[0] ? ": " : "",
					 vres.errors[0].message);
			else
				snprintf(err, sizeof(err), "data does not match the schema of '%s'",
					 type);
			rej.reason = TB_REJECT_SCHEMA;
			rej.message = err;
			rej.errors = &vres;
			goto reject;
		}
	}

	if (ingest__authcontext(tb, msg->client, &ev)) {
		/* Never on to Kafka without the sender's real identity. */
		rej.reason = TB_REJECT_INTERNAL;
		rej.message = "out of memory";
		goto reject;
	}

	if (topics__refuse(tb, route->cluster, kafka_topic, err, sizeof(err))) {
		rej.reason = TB_REJECT_TOPIC_NOT_COMPLIANT;
		rej.message = err;
		goto reject;
	}
	struct tb_origin origin = {.topic = msg->topic,
				   .client_id = mosquitto_client_id(msg->client),
				   .qos = msg->qos,
				   .response_topic = m.response_topic,
				   .correlation_data = m.correlation_data,
				   .correlation_len = m.correlation_len};
	if (produce__event(tb, route->cluster, kafka_topic, keyp, keylen, route->mode, &ev,
			   &origin, true, &rej.reason, err, sizeof(err))) {
		rej.message = err;
		goto reject;
	}
	atomic_fetch_add(&tb->stats.accepted, 1);
	if (resend.active)
		resend__accepted(tb, msg->client, &resend, &ev);

	if (route->mirror_cluster) {
		/* The mirror is a copy (e.g. a finite-retention audit stream): it
		 * is not journaled, and its failures are counted and logged. */
		char mtopic[256], merr[512];
		enum tb_reject_reason mwhy;
		if (tb_template_expand(&route->mirror_topic, ingest__lookup, &lctx, NULL, mtopic,
				       sizeof(mtopic), NULL) < 0 ||
		    !tb_kafka_topic_valid(mtopic) ||
		    topics__refuse(tb, route->mirror_cluster, mtopic, merr, sizeof(merr)) ||
		    produce__event(tb, route->mirror_cluster, mtopic, keyp, keylen, route->mode,
				   &ev, &origin, false, &mwhy, merr, sizeof(merr))) {
			atomic_fetch_add(&tb->stats.mirror_failed, 1);
			char qid[TB_LOG_ESCAPE_LEN];
			mosquitto_log_printf(
			    MOSQ_LOG_ERR, TB_LOG_PREFIX "mirror of event '%s' to cluster %s failed",
			    tb_log_escape(qid, sizeof(qid), tb_ce_attr_string(&ev, "id")),
			    route->mirror_cluster->name);
		}
	}
	goto cleanup;

reject:
	reject__publish(tb, msg->client, msg->topic, msg->qos, &rej);
	rc = MOSQ_ERR_ACL_DENIED;
cleanup:
	tjs_result_clear(&vres);
	tb_event_clear(&ev);
	ingest__msg_clear(&m);
	return rc;
}
