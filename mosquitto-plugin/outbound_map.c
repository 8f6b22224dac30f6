/*
 * One Kafka record -> one MQTT message, on the consumer thread so that the
 * broker's thread only copies and publishes.
 *
 * Records from any producer are accepted; what they carry decides the
 * mapping (CloudEvents Kafka binding):
 *   binary mode   ce_* headers, the value is the data, `content-type` header
 *   structured    content-type application/cloudevents+json, the value is
 *                 the whole event
 *   anything else a plain record: the value as is
 * A route's format then decides what subscribers get:
 *   binary        the value as payload; ce_* headers as v5 user properties
 *                 (prefix dropped), `content-type` as the Content Type
 *                 property. Structured and plain records pass unchanged.
 *   structured    a CloudEvents JSON document, readable by any MQTT version:
 *                 built from a binary record, passed through from a
 *                 structured one; plain records are dropped (not_cloudevents).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "outbound.h"
#include "tributary/kafka.h"
#include "tributary/util.h"

#define MAP_MAX_TOPIC 4096
#define MAP_MAX_ATTRS 64

enum map_kind { MAP_PLAIN, MAP_BINARY, MAP_STRUCTURED };

struct map_ctx {
	rd_kafka_message_t *msg;
	rd_kafka_headers_t *hdrs;
	const char *kafka_topic;
	enum map_kind kind;
	json_t *event; /* structured: the parsed value, on demand */
	bool event_tried;
	char partition[16];
};

static const char *map__header(struct map_ctx *c, const char *name, size_t *len)
{
	return c->hdrs ? tb_kafka_header(c->hdrs, name, len) : NULL;
}

static bool map__is_structured(const char *ct, size_t len)
{
	static const char s[] = "application/cloudevents+json";
	size_t n = sizeof(s) - 1;
	return ct && len >= n && !strncasecmp(ct, s, n) &&
	       (len == n || ct[n] == ';' || ct[n] == ' ');
}

static const json_t *map__event(struct map_ctx *c)
{
	if (c->kind != MAP_STRUCTURED)
		return NULL;
	if (!c->event_tried) {
		c->event_tried = true;
		c->event = json_loadb(c->msg->payload, c->msg->len, JSON_REJECT_DUPLICATES, NULL);
		if (c->event && !json_is_object(c->event)) {
			json_decref(c->event);
			c->event = NULL;
		}
	}
	return c->event;
}

/* A CloudEvents attribute of the record, whatever its mode. */
static const char *map__attr(struct map_ctx *c, const char *name, size_t namelen, size_t *len)
{
	if (c->kind == MAP_BINARY) {
		char h[80];
		if (namelen > sizeof(h) - 4)
			return NULL;
		snprintf(h, sizeof(h), "ce_%.*s", (int)namelen, name);
		return map__header(c, h, len);
	}
	const json_t *ev = map__event(c);
	if (!ev)
		return NULL;
	char key[80];
	if (namelen >= sizeof(key))
		return NULL;
	memcpy(key, name, namelen);
	key[namelen] = '\0';
	json_t *v = json_object_get(ev, key);
	if (!json_is_string(v))
		return NULL;
	*len = json_string_length(v);
	return json_string_value(v);
}

static int map__lookup(void *vctx, const char *name, size_t namelen, const char **value,
                       size_t *len)
{
	struct map_ctx *c = vctx;
	const char *v = NULL;
	size_t n = 0;
	if (namelen == 3 && !memcmp(name, "key", 3)) {
		v = c->msg->key;
		n = c->msg->key_len;
	} else if (namelen == 11 && !memcmp(name, "kafka_topic", 11)) {
		v = c->kafka_topic;
		n = strlen(v);
	} else if (namelen == 9 && !memcmp(name, "partition", 9)) {
		v = c->partition;
		n = strlen(v);
	} else if (namelen > 7 && !memcmp(name, "header.", 7)) {
		char h[256];
		if (namelen - 7 >= sizeof(h))
			return -1;
		memcpy(h, name + 7, namelen - 7);
		h[namelen - 7] = '\0';
		v = map__header(c, h, &n);
	} else if (namelen > 3 && !memcmp(name, "ce.", 3)) {
		v = map__attr(c, name + 3, namelen - 3, &n);
	}
	if (!v || n == 0)
		return -1;
	*value = v;
	*len = n;
	return 0;
}

static bool map__route_matches(struct map_ctx *c, const struct ob_route *r)
{
	if (strcmp(r->kafka_topic, c->kafka_topic))
		return false;
	if (r->type) {
		size_t n = 0;
		const char *t = map__attr(c, "type", 4, &n);
		size_t want = strlen(r->type);
		if (!t || (r->type_prefix ? n < want : n != want) || memcmp(t, r->type, want))
			return false;
	}
	if (r->header_name) {
		size_t n = 0;
		const char *v = map__header(c, r->header_name, &n);
		if (!v || n != strlen(r->header_value) || memcmp(v, r->header_value, n))
			return false;
	}
	return true;
}

/* What the broker itself would refuse, or should: topics to publish to. */
static bool map__mqtt_topic_ok(const char *t, size_t n)
{
	if (n == 0 || n > 65535 || t[0] == '$' || memchr(t, '\0', n) || memchr(t, '+', n) ||
	    memchr(t, '#', n))
		return false;
	return tb_utf8_valid(t, n);
}

/* Strings for MQTT properties: UTF-8 without NUL (MQTT v5 1.5.4). */
static bool map__string_ok(const char *s, size_t n)
{
	return n <= 65535 && !memchr(s, '\0', n) && tb_utf8_valid(s, n);
}

struct map_out {
	char topic[MAP_MAX_TOPIC];
	size_t topic_len;
	const char *content_type;
	size_t content_type_len;
	bool user_props; /* ce_* headers as user properties */
	char *owned;     /* structured JSON built here */
	const void *payload;
	size_t len;
	const void *correlation;
	size_t correlation_len;
};

static enum ob_drop map__reply_topic(struct map_ctx *c, const struct ob_route *r, struct map_out *o,
                                     char *detail, size_t dlen)
{
	size_t n = 0;
	const char *rt = map__header(c, "mqtt_response_topic", &n);
	if (!rt) {
		snprintf(detail, dlen, "no mqtt_response_topic header");
		return OB_DROP_NO_RESPONSE_TOPIC;
	}
	if (n >= sizeof(o->topic) || !map__mqtt_topic_ok(rt, n)) {
		snprintf(detail, dlen, "mqtt_response_topic is not a topic to publish to");
		return OB_DROP_REPLY_TOPIC_REFUSED;
	}
	memcpy(o->topic, rt, n);
	o->topic[n] = '\0';
	o->topic_len = n;
	for (size_t i = 0; i < r->nallow; i++)
		if (tb_pattern_match(&r->allow[i], o->topic, NULL))
			goto allowed;
	char q[64];
	snprintf(detail, dlen, "'%s' matches none of the route's allowed patterns",
	         tb_log_escape(q, sizeof(q), o->topic));
	return OB_DROP_REPLY_TOPIC_REFUSED;
allowed:
	o->correlation = map__header(c, "mqtt_correlation_data", &o->correlation_len);
	if (o->correlation && o->correlation_len > 65535) {
		snprintf(detail, dlen, "mqtt_correlation_data longer than 65535 bytes");
		return OB_DROP_TOO_LARGE;
	}
	return OB_DROP_NONE;
}

static enum ob_drop map__template_topic(struct map_ctx *c, const struct ob_route *r,
                                        struct map_out *o, char *detail, size_t dlen)
{
	const char *missing = NULL;
	/* A value may fill one topic level, never add levels or wildcards. */
	int n = tb_template_expand(&r->topic, map__lookup, c, "+#/", o->topic, sizeof(o->topic),
	                           &missing);
	if (n < 0) {
		snprintf(detail, dlen, "%s{%s}",
		         n == -2 ? "topic too long: " : "missing or invalid ",
		         missing ? missing : "?");
		return OB_DROP_TOPIC_INVALID;
	}
	o->topic_len = (size_t)n;
	if (!map__mqtt_topic_ok(o->topic, o->topic_len)) {
		char q[64];
		snprintf(detail, dlen, "'%s' is not a valid topic to publish to",
		         tb_log_escape(q, sizeof(q), o->topic));
		return OB_DROP_TOPIC_INVALID;
	}
	return OB_DROP_NONE;
}

/* binary record -> CloudEvents JSON */
static enum ob_drop map__to_structured(struct map_ctx *c, struct map_out *o, char *detail,
                                       size_t dlen)
{
	tb_ce_attr attrs[MAP_MAX_ATTRS];
	size_t nattrs = 0;
	const char *name;
	const void *val;
	size_t size;
	char *ct = NULL;
	enum ob_drop drop = OB_DROP_NONE;
	tb_event ev = {0};
	char err[256];

	for (size_t i = 0; !rd_kafka_header_get_all(c->hdrs, i, &name, &val, &size); i++) {
		if (strncmp(name, "ce_", 3))
			continue;
		if (nattrs == MAP_MAX_ATTRS || !map__string_ok(val, size)) {
			snprintf(detail, dlen, "%s",
			         nattrs == MAP_MAX_ATTRS ? "too many ce_ headers"
			                                 : "a ce_ header is not UTF-8 text");
			drop = OB_DROP_INVALID_EVENT;
			goto done;
		}
		attrs[nattrs].name = name + 3;
		attrs[nattrs].value = strndup(val, size);
		if (!attrs[nattrs].value) {
			drop = OB_DROP_BROKER_REFUSED;
			snprintf(detail, dlen, "out of memory");
			goto done;
		}
		nattrs++;
	}
	if (o->content_type && !(ct = strndup(o->content_type, o->content_type_len))) {
		drop = OB_DROP_BROKER_REFUSED;
		snprintf(detail, dlen, "out of memory");
		goto done;
	}
	if (tb_ce_parse_binary(attrs, nattrs, ct, c->msg->payload, c->msg->len, &ev, err,
	                       sizeof(err)) != TB_CE_OK) {
		char q[96]; /* attribute names and values of the record */
		snprintf(detail, dlen, "%s", tb_log_escape(q, sizeof(q), err));
		drop = OB_DROP_INVALID_EVENT;
		goto done;
	}
	o->owned = tb_ce_to_json(&ev, &o->len);
	if (!o->owned) {
		drop = OB_DROP_BROKER_REFUSED;
		snprintf(detail, dlen, "out of memory");
		goto done;
	}
	o->payload = o->owned;
	o->content_type = "application/cloudevents+json";
	o->content_type_len = strlen(o->content_type);
done:
	tb_event_clear(&ev);
	free(ct);
	for (size_t i = 0; i < nattrs; i++)
		free((char *)attrs[i].value);
	return drop;
}

static enum ob_drop map__payload(struct map_ctx *c, const struct ob_route *r, struct map_out *o,
                                 char *detail, size_t dlen)
{
	o->payload = c->msg->payload;
	o->len = c->msg->len;
	o->content_type = map__header(c, "content-type", &o->content_type_len);
	if (o->content_type && !map__string_ok(o->content_type, o->content_type_len))
		o->content_type = NULL;
	if (r->format == OB_FORMAT_BINARY) {
		o->user_props = c->kind == MAP_BINARY;
		return OB_DROP_NONE;
	}
	switch (c->kind) {
	case MAP_STRUCTURED:
		return OB_DROP_NONE;
	case MAP_BINARY:
		return map__to_structured(c, o, detail, dlen);
	case MAP_PLAIN:
		break;
	}
	snprintf(detail, dlen,
	         "structured route, and the record has no ce_ headers nor "
	         "content-type application/cloudevents+json");
	return OB_DROP_NOT_CLOUDEVENTS;
}

static void map__classify(struct map_ctx *c)
{
	size_t n = 0;
	const char *ct = map__header(c, "content-type", &n);
	if (map__is_structured(ct, n))
		c->kind = MAP_STRUCTURED;
	else if (map__header(c, "ce_specversion", &n))
		c->kind = MAP_BINARY;
	else
		c->kind = MAP_PLAIN;
}

/* Lays out the item and its strings in one allocation. */
static struct ob_item *map__item(struct map_ctx *c, const struct ob_route *r, struct map_out *o)
{
	size_t nprops = 0,
	       strings = o->topic_len + 1 + (o->content_type ? o->content_type_len + 1 : 0);
	const char *name;
	const void *val;
	size_t size;
	if (o->user_props) {
		for (size_t i = 0; !rd_kafka_header_get_all(c->hdrs, i, &name, &val, &size); i++) {
			if (strncmp(name, "ce_", 3) || !name[3] ||
			    !map__string_ok(name, strlen(name)) || !map__string_ok(val, size))
				continue;
			nprops++;
			strings += strlen(name) - 3 + 1 + size + 1;
		}
	}
	struct ob_item *it = malloc(sizeof(*it) + nprops * sizeof(struct ob_prop) + strings);
	if (!it)
		return NULL;
	memset(it, 0, sizeof(*it));
	it->drop = OB_DROP_NONE;
	it->route = r;
	it->props = (struct ob_prop *)(it + 1);
	char *s = (char *)(it->props + nprops);
	memcpy(s, o->topic, o->topic_len + 1);
	it->topic = s;
	s += o->topic_len + 1;
	if (o->content_type) {
		memcpy(s, o->content_type, o->content_type_len);
		s[o->content_type_len] = '\0';
		it->content_type = s;
		s += o->content_type_len + 1;
	}
	if (o->user_props) {
		for (size_t i = 0; !rd_kafka_header_get_all(c->hdrs, i, &name, &val, &size); i++) {
			if (strncmp(name, "ce_", 3) || !name[3] ||
			    !map__string_ok(name, strlen(name)) || !map__string_ok(val, size))
				continue;
			size_t nl = strlen(name) - 3;
			memcpy(s, name + 3, nl + 1);
			it->props[it->nprops].name = s;
			s += nl + 1;
			memcpy(s, val, size);
			s[size] = '\0';
			it->props[it->nprops].value = s;
			s += size + 1;
			it->nprops++;
		}
	}
	it->owned = o->owned;
	it->payload = o->payload;
	it->len = o->len;
	it->correlation = o->correlation;
	it->correlation_len = (uint16_t)o->correlation_len;
	return it;
}

static struct ob_item *map__dropped(enum ob_drop drop, const char *detail)
{
	struct ob_item *it = calloc(1, sizeof(*it));
	if (!it)
		return NULL;
	it->drop = drop;
	snprintf(it->detail, sizeof(it->detail), "%s", detail);
	return it;
}

/* NULL only when out of memory; the record then stays with the caller. */
struct ob_item *outbound__map(struct tb_outbound *ob, rd_kafka_message_t *msg)
{
	struct map_ctx c = {.msg = msg, .kafka_topic = rd_kafka_topic_name(msg->rkt)};
	struct map_out *o = NULL;
	const struct ob_route *route = NULL;
	struct ob_item *it = NULL;
	char detail[160] = "";
	enum ob_drop drop;

	if (rd_kafka_message_headers(msg, &c.hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
		c.hdrs = NULL;
	snprintf(c.partition, sizeof(c.partition), "%d", (int)msg->partition);
	map__classify(&c);

	for (size_t i = 0; i < ob->nroutes && !route; i++)
		if (map__route_matches(&c, &ob->routes[i]))
			route = &ob->routes[i];
	if (!route) {
		snprintf(detail, sizeof(detail), "no outbound route for this record");
		drop = OB_DROP_NO_ROUTE;
		goto dropped;
	}
	o = calloc(1, sizeof(*o));
	if (!o)
		goto done;
	drop = route->reply ? map__reply_topic(&c, route, o, detail, sizeof(detail))
	                    : map__template_topic(&c, route, o, detail, sizeof(detail));
	if (drop == OB_DROP_NONE)
		drop = map__payload(&c, route, o, detail, sizeof(detail));
	if (drop == OB_DROP_NONE &&
	    (o->len > MQTT_MAX_PAYLOAD - 65536 || (ob->max_payload && o->len > ob->max_payload))) {
		snprintf(detail, sizeof(detail), "payload of %zu bytes", o->len);
		drop = OB_DROP_TOO_LARGE;
	}
	if (drop != OB_DROP_NONE)
		goto dropped;
	it = map__item(&c, route, o);
	if (it)
		o->owned = NULL; /* now the item's */
	goto done;
dropped:
	it = map__dropped(drop, detail);
done:
	if (it) {
		it->msg = msg;
		if (!it->route)
			it->route = route;
	}
	if (o)
		free(o->owned);
	free(o);
	json_decref(c.event);
	return it;
}

void outbound__item_free(struct ob_item *it)
{
	if (!it)
		return;
	if (it->msg)
		rd_kafka_message_destroy(it->msg);
	free(it->owned);
	free(it);
}
