/*
 * The ingest path's routing, without the broker: which route an MQTT topic
 * takes (ingest.c's route step) and where its event goes in Kafka (the
 * target step): topic, record key, the types the route allows, the mirror's
 * topic. Unit-tested by tests/unit/test_plugin_ingest.c.
 */
#include <stdio.h>
#include <string.h>

#include "tributary.h"

/* A template's placeholders: the match pattern's captures, the sender's
 * client_id and username, or one of the event's attributes. */
struct ingest__lookup_ctx {
	const struct ingest__target *t;
	const tb_event *ev; /* NULL: captures only */
};

static int ingest__lookup(void *vctx, const char *name, size_t len, const char **value,
                          size_t *vlen)
{
	struct ingest__lookup_ctx *ctx = vctx;
	const tb_capture *c = tb_captures_get(&ctx->t->caps, name, len);
	const char *v = NULL;
	char attr[32];
	if (c) {
		*value = c->value;
		*vlen = c->len;
		return 0;
	}
	if (!ctx->ev)
		return -1;
	if (len == 9 && !memcmp(name, "client_id", len))
		v = ctx->t->client_id;
	else if (len == 8 && !memcmp(name, "username", len))
		v = ctx->t->username;
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

bool ingest__match(const struct tributary *tb, const char *topic, struct ingest__target *t)
{
	for (size_t i = 0; i < tb->nroutes; i++) {
		if (tb_pattern_match(&tb->routes[i].match, topic, &t->caps)) {
			t->route = &tb->routes[i];
			return true;
		}
	}
	t->route = NULL;
	return false;
}

/* Captures that go into a Kafka topic name must be non-empty and match the
 * route's capture_pattern: `events//x` or `events/order.secret/x` must not
 * create or reach topics `events.` or `events.order.secret`. */
bool ingest__route_accepts(const struct ingest__target *t, uint32_t payloadlen,
                           enum tbp_reject_reason *why, char *err, size_t errlen)
{
	const struct tbp_ingest_route *route = t->route;
	for (int i = 0; i < t->caps.count; i++) {
		const tb_capture *c = &t->caps.cap[i];
		if (!(route->topic_captures & (1u << i)) ||
		    tb_capture_rule_ok(route->capture_rule, c->value, c->len))
			continue;
		if (c->len == 0)
			snprintf(err, errlen, "the topic level {%s} is empty", c->name);
		else
			snprintf(err, errlen,
			         "the topic level {%s} does not match the route's "
			         "capture_pattern %s",
			         c->name, tb_capture_rule_text(route->capture_rule));
		*why = TBP_REJECT_INVALID_TOPIC;
		return false;
	}
	if (payloadlen > route->max_payload) {
		snprintf(err, errlen, "payload of %u bytes exceeds the route's maximum of %u",
		         payloadlen, route->max_payload);
		*why = TBP_REJECT_TOO_LARGE;
		return false;
	}
	return true;
}

/* The route's "types", when it lists them: `example.order.*` or
 * `example.{aggregate}.*` keep an aggregate's topic to its own events. */
static bool ingest__type_allowed(const struct ingest__target *t, const char *type)
{
	const struct tbp_ingest_route *route = t->route;
	struct ingest__lookup_ctx lctx = {t, NULL};
	char want[512];
	if (!route->types)
		return true;
	for (size_t i = 0; i < route->ntypes; i++) {
		const struct tbp_type_rule *r = &route->types[i];
		int n = tb_template_expand(&r->type, ingest__lookup, &lctx, NULL, want,
		                           sizeof(want), NULL);
		if (n < 0)
			continue;
		if (r->prefix ? !strncmp(type, want, (size_t)n) : !strcmp(type, want))
			return true;
	}
	return false;
}

bool ingest__locate(struct ingest__target *t, const tb_event *ev, enum tbp_reject_reason *why,
                    char *err, size_t errlen)
{
	const struct tbp_ingest_route *route = t->route;
	struct ingest__lookup_ctx lctx = {t, ev};
	const char *missing = NULL;
	int tn = tb_template_expand(&route->topic, ingest__lookup, &lctx, NULL, t->kafka_topic,
	                            sizeof(t->kafka_topic), &missing);
	if (tn == -1) {
		snprintf(err, errlen, "cannot make a Kafka topic from '%s' ({%s} missing)",
		         route->topic.text, missing ? missing : "?");
		*why = TBP_REJECT_ROUTING;
		return false;
	}
	if (tn < 0 || !tb_kafka_topic_valid(t->kafka_topic)) {
		snprintf(err, errlen, "'%s' does not make a legal Kafka topic name%s%s%s",
		         route->topic.text, tn < 0 ? "" : " ('", tn < 0 ? "" : t->kafka_topic,
		         tn < 0 ? " (too long)" : "')");
		*why = TBP_REJECT_INVALID_TOPIC;
		return false;
	}
	t->keyp = NULL;
	t->keylen = 0;
	if (route->key.text) {
		missing = NULL;
		int n = tb_template_expand(&route->key, ingest__lookup, &lctx, NULL, t->key,
		                           sizeof(t->key), &missing);
		if (n < 0) {
			snprintf(err, errlen, "cannot make the record key from '%s' ({%s} %s)",
			         route->key.text, missing ? missing : "?",
			         n == -2 ? "too long" : "missing");
			*why = missing && !strcmp(missing, "partitionkey")
			           ? TBP_REJECT_MISSING_ATTRIBUTE
			           : TBP_REJECT_ROUTING;
			return false;
		}
		t->keyp = t->key;
		t->keylen = (size_t)n;
	} else if ((t->keyp = tb_ce_attr_string(ev, "partitionkey"))) {
		t->keylen = strlen(t->keyp);
	}
	const char *type = tb_ce_attr_string(ev, "type");
	if (!ingest__type_allowed(t, type)) {
		snprintf(err, errlen, "event type '%s' is not allowed on this topic", type);
		*why = TBP_REJECT_TYPE_NOT_ALLOWED;
		return false;
	}
	return true;
}

bool ingest__mirror_topic(const struct ingest__target *t, const tb_event *ev, char *out,
                          size_t outlen)
{
	struct ingest__lookup_ctx lctx = {t, ev};
	return tb_template_expand(&t->route->mirror_topic, ingest__lookup, &lctx, NULL, out, outlen,
	                          NULL) >= 0 &&
	       tb_kafka_topic_valid(out);
}
