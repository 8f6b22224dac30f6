/*
 * One Kafka record -> one MQTT message, on the consumer thread so that the
 * broker's thread only copies and publishes.
 *
 * Records from any producer are accepted; what they carry decides the
 * mapping (CloudEvents Kafka binding, read by shared/cloudevents as for the
 * nginx stream):
 *   structured    content-type application/cloudevents+json, the value is
 *                 the whole event
 *   binary mode   a ce_specversion header: ce_* headers, the value is the
 *                 data, `content-type` header. One whose headers and value
 *                 are not a valid event is a plain record (counted,
 *                 logged): no partial set of attributes goes out.
 *   anything else a plain record: the value as is
 * A route's format then decides what subscribers get:
 *   binary        the value as payload; ce_* headers as v5 user properties
 *                 (prefix dropped), `content-type` as the Content Type
 *                 property. Structured and plain records pass unchanged.
 *   structured    a CloudEvents JSON document, readable by any MQTT version:
 *                 built from a binary record, passed through from a
 *                 structured one; plain records are dropped (not_cloudevents).
 *
 * A topic whose routes name a registry has its records in that registry's
 * wire format (magic byte 0, schema id, payload): the value is decoded to
 * JSON first (shared/registry/wire.c), and everything above reads the JSON
 * in its place. A schema not cached yet is fetched here, on the consumer
 * thread, before the record goes any further: records keep their order,
 * and while the registry cannot answer the record is held (outbound__map
 * returns NULL and is called again). A record that cannot be decoded (no
 * magic byte, an id the registry does not know, bytes not of the schema,
 * Protobuf) is dropped, counted and logged as `undecodable`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "outbound.h"
#include "tributary/kafka.h"
#include "tributary/util.h"

#define MAP_MAX_TOPIC 4096

enum map_kind { MAP_PLAIN, MAP_BINARY, MAP_STRUCTURED };

struct map_ctx {
	rd_kafka_message_t *msg;
	const void *value; /* the record's value, or what it decoded to */
	size_t len;
	char *decoded; /* malloc'd: Avro decoded to JSON */
	rd_kafka_headers_t *hdrs;
	rd_kafka_headers_t *own_hdrs; /* hdrs with content-type application/json */
	const char *kafka_topic;
	enum map_kind kind;
	const char *content_type; /* the content-type header, NULL: none */
	size_t content_type_len;
	tb_event ev;         /* binary: the event the record carries */
	char not_event[160]; /* why a ce_specversion record is plain */
	json_t *event;       /* structured: the parsed value, on demand */
	bool event_tried;
	char partition[16];
};

static const char *map__header(struct map_ctx *c, const char *name, size_t *len)
{
	return c->hdrs ? tb_kafka_header(c->hdrs, name, len) : NULL;
}

static const json_t *map__event(struct map_ctx *c)
{
	if (c->kind != MAP_STRUCTURED)
		return NULL;
	if (!c->event_tried) {
		c->event_tried = true;
		c->event = json_loadb(c->value, c->len, JSON_REJECT_DUPLICATES, NULL);
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
	char key[80];
	if (namelen >= sizeof(key))
		return NULL;
	memcpy(key, name, namelen);
	key[namelen] = '\0';
	if (c->kind == MAP_BINARY) {
		const char *v = tb_ce_attr_string(&c->ev, key);
		if (v)
			*len = strlen(v);
		return v;
	}
	const json_t *ev = map__event(c);
	if (!ev)
		return NULL;
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
	o->owned = tb_ce_to_json(&c->ev, &o->len);
	if (!o->owned) {
		snprintf(detail, dlen, "out of memory");
		return OB_DROP_BROKER_REFUSED;
	}
	o->payload = o->owned;
	o->content_type = "application/cloudevents+json";
	o->content_type_len = strlen(o->content_type);
	return OB_DROP_NONE;
}

static enum ob_drop map__payload(struct map_ctx *c, const struct ob_route *r, struct map_out *o,
                                 char *detail, size_t dlen)
{
	o->payload = c->value;
	o->len = c->len;
	if (c->decoded) { /* the item keeps it until published */
		o->owned = c->decoded;
		c->decoded = NULL;
	}
	o->content_type = c->content_type;
	o->content_type_len = c->content_type_len;
	if (o->content_type && !map__string_ok(o->content_type, o->content_type_len))
		o->content_type = NULL;
	if (r->format == OB_FORMAT_BINARY) {
		o->user_props = c->kind == MAP_BINARY;
		return OB_DROP_NONE;
	}
	if (c->not_event[0]) {
		snprintf(detail, dlen, "%s", c->not_event);
		return OB_DROP_INVALID_EVENT;
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
	         "structured route, and the record has no ce_specversion header nor "
	         "content-type application/cloudevents+json");
	return OB_DROP_NOT_CLOUDEVENTS;
}

/* -1 only when out of memory. */
static int map__classify(struct map_ctx *c)
{
	char err[256];
	switch (tb_ce_kafka_read(c->hdrs, &c->content_type, &c->content_type_len)) {
	case TB_CE_KAFKA_STRUCTURED:
		c->kind = MAP_STRUCTURED;
		return 0;
	case TB_CE_KAFKA_PLAIN:
		c->kind = MAP_PLAIN;
		return 0;
	case TB_CE_KAFKA_BINARY:
		break;
	}
	tb_ce_status st =
	    tb_ce_kafka_parse_binary(c->hdrs, c->value, c->len, &c->ev, err, sizeof(err));
	if (st == TB_CE_NO_MEMORY)
		return -1;
	if (st != TB_CE_OK) {
		char q[sizeof(c->not_event)]; /* header names and values of the record */
		snprintf(c->not_event, sizeof(c->not_event), "%s",
		         tb_log_escape(q, sizeof(q), err));
		c->kind = MAP_PLAIN;
		return 0;
	}
	/* User properties are MQTT strings (MQTT v5 1.5.4). */
	for (size_t i = 0; i < c->ev.nattrs; i++)
		if (c->ev.attrs[i].len > 65535) {
			snprintf(c->not_event, sizeof(c->not_event),
			         "attribute '%s' is longer than 65535 bytes", c->ev.attrs[i].name);
			tb_event_clear(&c->ev);
			c->kind = MAP_PLAIN;
			return 0;
		}
	c->kind = MAP_BINARY;
	return 0;
}

/* The route's registry for the record's topic, NULL: none. */
static struct ob_wire *map__wire(struct tbp_outbound *ob, const char *kafka_topic)
{
	for (size_t i = 0; i < ob->nroutes; i++)
		if (!strcmp(ob->routes[i].kafka_topic, kafka_topic))
			return ob->routes[i].wire;
	return NULL;
}

/* Waits up to ms for `stop`, in short steps. */
static void map__pause(struct tbp_outbound *ob, int ms)
{
	for (int t = 0; t < ms && !atomic_load(&ob->stop); t += 50)
		usleep(50000);
}

/* Fetches schema `id` (blocking: the consumer thread's to do). 0 once it
 * is known (or known to be unusable), -1 while the registry cannot answer:
 * logged once per outage, the record held. */
static int map__fetch(struct tbp_outbound *ob, struct ob_wire *w, const char *kafka_topic, int id)
{
	char err[512];
	tb_registry_error e = {0};
	if (!w->client && !(w->client = tb_registry_new(&w->opts, err, sizeof(err)))) {
		snprintf(e.message, sizeof(e.message), "%s", err);
		goto down;
	}
	if (tb_wire_fetch(w->cache, w->client, id, &e) == 0) {
		if (w->down)
			outbound__note(ob, MOSQ_LOG_NOTICE,
			               "outbound: registry %s (%s) reachable again", w->name,
			               w->opts.url);
		w->down = false;
		return 0;
	}
down:
	if (!w->down)
		outbound__note(ob, MOSQ_LOG_WARNING,
		               "outbound: registry %s (%s): cannot fetch schema id %d for a record "
		               "of %s (HTTP %ld: %s); its records wait, in order, until it answers",
		               w->name, w->opts.url, id, kafka_topic, e.http_status, e.message);
	w->down = true;
	map__pause(ob, 1000);
	return -1;
}

/* The record's value in the registry's wire format, as JSON, in c->value.
 * 0 done; 1 undecodable (detail says why); -1 held: try again later. */
static int map__decode(struct tbp_outbound *ob, struct map_ctx *c, struct ob_wire *w, char *detail,
                       size_t dlen)
{
	char err[512];
	const char *json;
	size_t n;
	int id;
	tb_wire_status st;
	while ((st = tb_wire_decode(w->cache, c->msg->payload, c->msg->len, &id, &json, &n,
	                            &c->decoded, err, sizeof(err))) == TB_WIRE_MISSING)
		if (map__fetch(ob, w, c->kafka_topic, id))
			return -1;
	if (st == TB_WIRE_NO_MEMORY)
		return -1;
	if (st == TB_WIRE_BAD) {
		char q[sizeof(err)];
		snprintf(detail, dlen, "registry %s: %s", w->name,
		         tb_log_escape(q, sizeof(q), err));
		return 1;
	}
	c->value = json;
	c->len = n;
	/* Avro became JSON: so says its content type now */
	if (c->decoded && c->hdrs) {
		if (!(c->own_hdrs = rd_kafka_headers_copy(c->hdrs)))
			return -1;
		c->hdrs = c->own_hdrs;
		rd_kafka_header_remove(c->hdrs, "content-type");
		if (rd_kafka_header_add(c->hdrs, "content-type", -1, "application/json", -1))
			return -1;
	}
	return 0;
}

/* A binary record that is not a valid event goes out as a plain one: said
 * in the log at most every 10 s (consumer thread only), always counted.
 * A record a route drops instead has the drop's own log line. */
static void map__note_not_event(struct tbp_outbound *ob, struct map_ctx *c, bool published)
{
	time_t now = time(NULL);
	atomic_fetch_add(&ob->stats.not_events, 1);
	if (!published)
		return;
	if (ob->not_event_logged_at && now - ob->not_event_logged_at < 10) {
		ob->not_event_unlogged++;
		return;
	}
	char more[48] = "";
	if (ob->not_event_unlogged)
		snprintf(more, sizeof(more), " (and %llu more since)",
		         (unsigned long long)ob->not_event_unlogged);
	outbound__note(ob, MOSQ_LOG_WARNING,
	               "outbound: record %s [%d] at offset %lld is not a valid CloudEvent (%s), "
	               "published as a plain record%s",
	               c->kafka_topic, (int)c->msg->partition, (long long)c->msg->offset,
	               c->not_event, more);
	ob->not_event_logged_at = now;
	ob->not_event_unlogged = 0;
}

/* Lays out the item and its strings in one allocation. */
static struct ob_item *map__item(struct map_ctx *c, const struct ob_route *r, struct map_out *o)
{
	size_t nprops = 0,
	       strings = o->topic_len + 1 + (o->content_type ? o->content_type_len + 1 : 0);
	if (o->user_props) {
		/* every attribute but datacontenttype, the Content Type */
		for (size_t i = 0; i < c->ev.nattrs; i++) {
			if (!strcmp(c->ev.attrs[i].name, "datacontenttype"))
				continue;
			nprops++;
			strings += strlen(c->ev.attrs[i].name) + 1 + c->ev.attrs[i].len + 1;
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
		for (size_t i = 0; i < c->ev.nattrs; i++) {
			const tb_ce_attrval *a = &c->ev.attrs[i];
			if (!strcmp(a->name, "datacontenttype"))
				continue;
			size_t nl = strlen(a->name);
			memcpy(s, a->name, nl + 1);
			it->props[it->nprops].name = s;
			s += nl + 1;
			memcpy(s, a->value, a->len + 1);
			it->props[it->nprops].value = s;
			s += a->len + 1;
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

/* NULL when out of memory or while the record's schema cannot be fetched;
 * the record then stays with the caller, who tries again. */
struct ob_item *outbound__map(struct tbp_outbound *ob, rd_kafka_message_t *msg)
{
	struct map_ctx c = {.msg = msg,
	                    .value = msg->payload,
	                    .len = msg->len,
	                    .kafka_topic = rd_kafka_topic_name(msg->rkt)};
	struct map_out *o = NULL;
	const struct ob_route *route = NULL;
	struct ob_item *it = NULL;
	char detail[160] = "";
	enum ob_drop drop;

	if (rd_kafka_message_headers(msg, &c.hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
		c.hdrs = NULL;
	snprintf(c.partition, sizeof(c.partition), "%d", (int)msg->partition);
	struct ob_wire *w = map__wire(ob, c.kafka_topic);
	if (w) {
		int rc = map__decode(ob, &c, w, detail, sizeof(detail));
		if (rc < 0)
			goto done;
		if (rc > 0) {
			drop = OB_DROP_UNDECODABLE;
			goto dropped;
		}
	}
	if (map__classify(&c))
		goto done;

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
	if (c.not_event[0] && it)
		map__note_not_event(ob, &c, it->drop == OB_DROP_NONE);
	if (it) {
		it->msg = msg;
		if (!it->route)
			it->route = route;
	}
	if (o)
		free(o->owned);
	free(o);
	json_decref(c.event);
	tb_event_clear(&c.ev);
	free(c.decoded);
	if (c.own_hdrs)
		rd_kafka_headers_destroy(c.own_hdrs);
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
