/*
 * MOSQ_EVT_MESSAGE: every PUBLISH that matches an ingest route must be a
 * CloudEvent whose data is valid against its type's schema before it may
 * enter Kafka. Rejected messages never reach Kafka nor subscribers.
 *
 * Mosquitto 2.0.11: returning MOSQ_ERR_ACL_DENIED drops the message and
 * answers v5 clients with 0x87; any other error would disconnect the client,
 * so every failure here maps to ACL_DENIED or SUCCESS.
 */
#include <stdarg.h>
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
		const struct tbp_response_topic *r = &tb->response_topics[i];
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

static enum tbp_reject_reason ingest__reason(tb_ce_status st)
{
	switch (st) {
	case TB_CE_INVALID_UTF8:
		return TBP_REJECT_INVALID_UTF8;
	case TB_CE_INVALID_JSON:
		return TBP_REJECT_INVALID_JSON;
	case TB_CE_NOT_AN_EVENT:
		return TBP_REJECT_NOT_AN_EVENT;
	case TB_CE_MISSING_ATTRIBUTE:
		return TBP_REJECT_MISSING_ATTRIBUTE;
	case TB_CE_INVALID_ATTRIBUTE:
		return TBP_REJECT_INVALID_ATTRIBUTE;
	case TB_CE_INVALID_DATA:
		return TBP_REJECT_INVALID_DATA;
	default:
		return TBP_REJECT_INTERNAL;
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

/*
 * The publish path, one named step each, sharing one context:
 *
 *   route     which ingest route the MQTT topic matches, and its limits
 *   parse     the MQTT message as a CloudEvent (v5 properties, resend, ids)
 *   target    where it goes: Kafka topic, record key, allowed types, and
 *             the v5 Response Topic
 *   validate  what it is: the data against its type's schema
 *   produce   who sent it (authcontext), then journal and Kafka
 *   mirror    the route's copy to a second cluster, best effort
 *
 * Target comes before validate: the route decides both, and an event that
 * fails both is refused for where it goes. A step that refuses the message
 * returns false with ctx->rej set; the first refusal is the one reported.
 */
struct ingest__ctx {
	struct tributary *tb;
	const struct mosquitto_evt_message *msg;
	struct ingest__target t; /* the route, and where the event goes */
	struct ingest__msg m;
	tb_event ev;
	tjs_result vres;
	struct resend__check resend;
	const char *type;
	struct tbp_origin origin;
	struct tbp_registry *held; /* a registry route's: registry__release at the end */
	struct tbp_schema_ref sref;
	struct tbp_confluent_value cv; /* a confluent route's value (Avro: tb->avro_buf) */
	struct tbp_reject rej;
	char err[1024];
};

/* Refuses the message for `reason`; the message is formatted into ctx->err
 * unless `fmt` is NULL (ctx->err already says why). */
static bool ingest__refuse(struct ingest__ctx *ctx, enum tbp_reject_reason reason, const char *fmt,
                           ...) __attribute__((format(printf, 3, 4)));
static bool ingest__refuse(struct ingest__ctx *ctx, enum tbp_reject_reason reason, const char *fmt,
                           ...)
{
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
		va_end(ap);
	}
	ctx->rej.reason = reason;
	ctx->rej.message = ctx->err;
	return false;
}

/* route: false without a refusal (ctx->rej.message NULL) when the message
 * is left to the broker: no route matches and unmatched is "pass", or a $
 * topic. */
static bool ingest__route(struct ingest__ctx *ctx)
{
	struct tributary *tb = ctx->tb;
	const struct mosquitto_evt_message *msg = ctx->msg;
	enum tbp_reject_reason why;
	if (!ingest__match(tb, msg->topic, &ctx->t)) {
		if (!tb->reject_unmatched || msg->topic[0] == '$')
			return false;
		return ingest__refuse(ctx, TBP_REJECT_NO_ROUTE,
		                      "no ingest route matches this topic");
	}
	if (!ingest__route_accepts(&ctx->t, msg->payloadlen, &why, ctx->err, sizeof(ctx->err)))
		return ingest__refuse(ctx, why, NULL);
	return true;
}

static bool ingest__parse(struct ingest__ctx *ctx)
{
	const struct mosquitto_evt_message *msg = ctx->msg;
	struct ingest__msg *m = &ctx->m;
	ingest__read_properties(msg->properties, m);
	if (m->too_many)
		return ingest__refuse(ctx, TBP_REJECT_INVALID_ATTRIBUTE,
		                      "more than %d user properties", INGEST_MAX_USER_PROPS);
	tb_ce_status st;
	if (m->binary)
		st = tb_ce_parse_binary(m->attrs, m->nattrs, m->content_type, msg->payload,
		                        msg->payloadlen, &ctx->ev, ctx->err, sizeof(ctx->err));
	else
		st = tb_ce_parse_structured(msg->payload, msg->payloadlen, &ctx->ev, ctx->err,
		                            sizeof(ctx->err));
	/* A QoS 2 event whose id the broker generates may be a retransmission
	 * (resend.c). */
	if (st == TB_CE_OK && msg->qos == 2 && ctx->tb->resend)
		resend__check(ctx->tb, msg, m->attrs, m->nattrs, m->content_type, &ctx->ev,
		              &ctx->resend);
	if (st == TB_CE_OK)
		st = tb_ce_complete(&ctx->ev, ctx->err, sizeof(ctx->err));
	ctx->rej.event = &ctx->ev;
	if (st != TB_CE_OK)
		return ingest__refuse(ctx, ingest__reason(st), NULL);
	ctx->type = tb_ce_attr_string(&ctx->ev, "type");
	return true;
}

/* target: where it goes, before what it is: the route decides both. */
static bool ingest__target(struct ingest__ctx *ctx)
{
	enum tbp_reject_reason why;
	if (!ingest__locate(&ctx->t, &ctx->ev, &why, ctx->err, sizeof(ctx->err)))
		return ingest__refuse(ctx, why, NULL);
	const char *rt = ctx->m.response_topic;
	if (rt && !ingest__response_topic_ok(ctx->tb, ctx->msg->client, rt))
		return ingest__refuse(
		    ctx, TBP_REJECT_INVALID_RESPONSE_TOPIC,
		    "response topic '%s' is not one this client may receive replies on", rt);
	return true;
}

/* The registry subject of the event, by the route's strategy. */
static bool ingest__subject(struct ingest__ctx *ctx, char *out, size_t outlen)
{
	int n;
	switch (ctx->t.route->strategy) {
	case TBP_SUBJECT_RECORD:
		n = snprintf(out, outlen, "%s", ctx->type);
		break;
	case TBP_SUBJECT_TOPIC_RECORD:
		n = snprintf(out, outlen, "%s-%s", ctx->t.kafka_topic, ctx->type);
		break;
	default:
		n = snprintf(out, outlen, "%s-value", ctx->t.kafka_topic);
		break;
	}
	return n >= 0 && (size_t)n < outlen;
}

/* A registry route's schema: the subject's latest version as the cache
 * holds it, or the older one a client's dataschema names; never waited
 * for. */
static bool ingest__registry_schema(struct ingest__ctx *ctx, const tjs_schema **schema)
{
	struct tbp_registry *r = ctx->t.route->registry;
	struct tbp_schema_ref *s = &ctx->sref;
	char subject[600];
	if (!ingest__subject(ctx, subject, sizeof(subject)))
		return ingest__refuse(ctx, TBP_REJECT_SCHEMA_UNAVAILABLE,
		                      "the subject of event type '%s' is too long", ctx->type);
	ctx->held = r;
	if (!registry__find(r, subject, s))
		return ingest__refuse(ctx, TBP_REJECT_SCHEMA_UNAVAILABLE,
		                      "no schema for subject '%s' of registry %s yet: it is being "
		                      "fetched, try again later",
		                      subject, r->name);
	const char *ds = tb_ce_attr_string(&ctx->ev, "dataschema");
	switch (ds ? registry__dataschema(r, subject, ds, s, ctx->err, sizeof(ctx->err))
	           : REGISTRY_PIN_LATEST) {
	case REGISTRY_PIN_INVALID:
		return ingest__refuse(ctx, TBP_REJECT_INVALID_ATTRIBUTE, NULL);
	case REGISTRY_PIN_PENDING:
		return ingest__refuse(ctx, TBP_REJECT_SCHEMA_UNAVAILABLE, NULL);
	default:
		break;
	}
	if (!s->schema && !s->avro)
		return ingest__refuse(ctx, TBP_REJECT_SCHEMA_UNAVAILABLE,
		                      "subject '%s' version %d of registry %s cannot be used: %s",
		                      subject, s->version, r->name, s->error);
	*schema = s->schema;
	ctx->cv.schema_id = s->id;
	return true;
}

/* An Avro subject's data: validated by encoding it (an event without data
 * as null), the bytes kept for the record. Only in Confluent's wire
 * format: a CloudEvents record of Avro bytes would not say which schema
 * wrote them. */
static bool ingest__validate_avro(struct ingest__ctx *ctx)
{
	const struct tbp_schema_ref *s = &ctx->sref;
	struct tbp_registry *r = ctx->t.route->registry;
	tb_avro_buf *buf = &ctx->tb->avro_buf; /* the main thread's */
	char aerr[700];
	if (ctx->t.route->mode != TBP_MODE_CONFLUENT)
		return ingest__refuse(ctx, TBP_REJECT_SCHEMA_UNAVAILABLE,
		                      "subject '%s' version %d of registry %s is an Avro schema: "
		                      "its events need a route with value_format \"confluent\"",
		                      s->subject, s->version, r->name);
	if (ctx->ev.has_data && !ctx->ev.data)
		return ingest__refuse(ctx, TBP_REJECT_INVALID_DATA,
		                      "the Avro schema of '%s' needs JSON data, not '%s'",
		                      ctx->type, tb_ce_attr_string(&ctx->ev, "datacontenttype"));
	/* straight from the parsed data (NULL: none, null) into the buffer */
	if (tb_avro_encode_value(s->avro, ctx->ev.data, buf, aerr, sizeof(aerr)))
		return ingest__refuse(ctx, TBP_REJECT_SCHEMA,
		                      "data does not match the Avro schema of '%s' (subject '%s' "
		                      "version %d): %s",
		                      ctx->type, s->subject, s->version, aerr);
	ctx->cv.payload = buf->data;
	ctx->cv.len = buf->len;
	return true;
}

static bool ingest__validate(struct ingest__ctx *ctx)
{
	const char *type = ctx->type;
	const tjs_schema *schema = NULL;
	if (ctx->t.route->registry) {
		if (!ingest__registry_schema(ctx, &schema))
			return false;
		if (ctx->sref.avro)
			return ingest__validate_avro(ctx);
	} else {
		schema = tb_catalog_find(ctx->tb->catalog, type);
		if (!schema && ctx->t.route->schema_required)
			return ingest__refuse(ctx, TBP_REJECT_UNKNOWN_TYPE,
			                      "event type '%s' has no schema in the catalog", type);
		if (!schema)
			return true;
	}
	if (ctx->ev.has_data && !ctx->ev.data)
		return ingest__refuse(ctx, TBP_REJECT_INVALID_DATA,
		                      "the schema of '%s' needs JSON data, not '%s'", type,
		                      tb_ce_attr_string(&ctx->ev, "datacontenttype"));
	/* An event without data is validated as null. */
	tjs_result *vres = &ctx->vres;
	if (ctx->ev.data ? tjs_validate_value(schema, ctx->ev.data, vres, INGEST_MAX_ERRORS)
	                 : tjs_validate(schema, json_null(), vres, INGEST_MAX_ERRORS))
		return true;
	ctx->rej.errors = vres;
	if (!vres->count)
		return ingest__refuse(ctx, TBP_REJECT_SCHEMA,
		                      "data does not match the schema of '%s'", type);
	return ingest__refuse(
	    ctx, TBP_REJECT_SCHEMA, "data does not match the schema of '%s': %s%s%s", type,
	    vres->errors[0].instance_location, vres->errors[0].instance_location[0] ? ": " : "",
	    vres->errors[0].message);
}

static bool ingest__produce(struct ingest__ctx *ctx)
{
	struct tributary *tb = ctx->tb;
	const struct mosquitto_evt_message *msg = ctx->msg;
	if (ingest__authcontext(tb, msg->client, &ctx->ev))
		/* Never on to Kafka without the sender's real identity. */
		return ingest__refuse(ctx, TBP_REJECT_INTERNAL, "out of memory");
	if (topics__refuse(tb, ctx->t.route->cluster, ctx->t.kafka_topic, ctx->err,
	                   sizeof(ctx->err)))
		return ingest__refuse(ctx, TBP_REJECT_TOPIC_NOT_COMPLIANT, NULL);
	ctx->origin = (struct tbp_origin){.topic = msg->topic,
	                                  .client_id = mosquitto_client_id(msg->client),
	                                  .qos = msg->qos,
	                                  .response_topic = ctx->m.response_topic,
	                                  .correlation_data = ctx->m.correlation_data,
	                                  .correlation_len = ctx->m.correlation_len};
	if (produce__event(tb, ctx->t.route->cluster, ctx->t.kafka_topic, ctx->t.keyp,
	                   ctx->t.keylen, ctx->t.route->mode, &ctx->cv, &ctx->ev, &ctx->origin,
	                   true, &ctx->rej.reason, ctx->err, sizeof(ctx->err))) {
		ctx->rej.message = ctx->err;
		return false;
	}
	atomic_fetch_add(&tb->stats.accepted, 1);
	if (ctx->resend.active)
		resend__accepted(tb, msg->client, &ctx->resend, &ctx->ev);
	return true;
}

/* mirror: the copy (e.g. a finite-retention audit stream) is not journaled,
 * and its failures are counted and logged, never refused. */
static void ingest__mirror(struct ingest__ctx *ctx)
{
	const struct tbp_ingest_route *route = ctx->t.route;
	char mtopic[256], merr[512];
	enum tbp_reject_reason mwhy;
	if (!route->mirror_cluster)
		return;
	if (ingest__mirror_topic(&ctx->t, &ctx->ev, mtopic, sizeof(mtopic)) &&
	    !topics__refuse(ctx->tb, route->mirror_cluster, mtopic, merr, sizeof(merr)) &&
	    !produce__event(ctx->tb, route->mirror_cluster, mtopic, ctx->t.keyp, ctx->t.keylen,
	                    route->mode, &ctx->cv, &ctx->ev, &ctx->origin, false, &mwhy, merr,
	                    sizeof(merr)))
		return;
	atomic_fetch_add(&ctx->tb->stats.mirror_failed, 1);
	char qid[TB_LOG_ESCAPE_LEN];
	mosquitto_log_printf(MOSQ_LOG_ERR,
	                     TB_LOG_PREFIX "mirror of event '%s' to cluster %s failed",
	                     tb_log_escape(qid, sizeof(qid), tb_ce_attr_string(&ctx->ev, "id")),
	                     route->mirror_cluster->name);
}

int ingest__on_message(int event, void *event_data, void *userdata)
{
	const struct mosquitto_evt_message *msg = event_data;
	struct ingest__ctx ctx = {.tb = userdata,
	                          .msg = msg,
	                          .t = {.client_id = mosquitto_client_id(msg->client),
	                                .username = mosquitto_client_username(msg->client)}};
	int rc = MOSQ_ERR_SUCCESS;
	(void)event;

	if (!ingest__route(&ctx)) {
		if (ctx.rej.message)
			goto reject;
		atomic_fetch_add(&ctx.tb->stats.passed, 1);
		return MOSQ_ERR_SUCCESS;
	}
	if (!ingest__parse(&ctx) || !ingest__target(&ctx) || !ingest__validate(&ctx) ||
	    !ingest__produce(&ctx))
		goto reject;
	ingest__mirror(&ctx);
	goto cleanup;

reject:
	reject__publish(ctx.tb, ctx.msg->client, ctx.msg->topic, ctx.msg->qos, &ctx.rej);
	rc = MOSQ_ERR_ACL_DENIED;
cleanup:
	if (ctx.held)
		registry__release(ctx.held);
	tjs_result_clear(&ctx.vres);
	tb_event_clear(&ctx.ev);
	ingest__msg_clear(&ctx.m);
	return rc;
}
