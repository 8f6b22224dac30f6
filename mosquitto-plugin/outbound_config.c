/*
 * The "outbound" section of the plugin configuration:
 *
 *   "outbound": {
 *     "cluster": "main",                       consumer of this cluster
 *     "group_id": "tributary-${HOSTNAME}",     default "tributary-" + broker_id
 *     "start": "latest",                       a new group's first position
 *     "consumer": { librdkafka properties },   on top of the cluster's
 *                                               connection settings
 *     "queue": { "capacity": 10000, "resume_below": 5000, "pause_after_ms": 1000 },
 *     "max_per_tick": 1000,
 *     "max_payload": 0,                        bytes, 0: MQTT's own limit
 *     "wake": "auto",                          see outbound_wake.c; false: off
 *     "routes": [
 *       { "kafka_topic": "notifications", "topic": "users/{key}/notifications",
 *         "type": "example.*", "header": {"name": "n", "value": "v"},
 *         "qos": 1, "retain": false, "format": "binary", "message_expiry": 0,
 *         "registry": "main" },                records in that registry's wire
 *                                               format, decoded to JSON
 *       { "kafka_topic": "replies", "reply": true, "allow": ["clients/+/replies"] }
 *     ]
 *   }
 *
 * Everything is checked here, at start; a bad value stops the broker with a
 * line naming the option (as config.c does for the rest).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outbound.h"

/* The consumer takes only the cluster's connection settings: the producer
 * tuning there (acks, linger.ms, idempotence...) means nothing to a consumer
 * and librdkafka would warn about each. */
static bool obconf__connection_prop(const char *name)
{
	static const char *const prefixes[] = {"bootstrap.servers",
	                                       "metadata.",
	                                       "security.protocol",
	                                       "sasl.",
	                                       "ssl.",
	                                       "ssl_",
	                                       "enable.ssl.",
	                                       "socket.",
	                                       "reconnect.",
	                                       "broker.address.",
	                                       "broker.version.",
	                                       "api.version.",
	                                       "client.rack",
	                                       "client.dns.lookup",
	                                       "connections.max.idle.ms",
	                                       "topic.metadata.",
	                                       "debug",
	                                       "log_level",
	                                       "log.connection.close",
	                                       NULL};
	for (const char *const *p = prefixes; *p; p++)
		if (!strncmp(name, *p, strlen(*p)))
			return true;
	return false;
}

/* Placeholders of an outbound topic template. */
static int obconf__check_name(void *ctx, const char *name)
{
	const char *where = ctx;
	if (!strcmp(name, "key") || !strcmp(name, "kafka_topic") || !strcmp(name, "partition"))
		return 0;
	if (!strncmp(name, "header.", 7) && name[7])
		return 0;
	if (!strncmp(name, "ce.", 3) && name[3])
		return 0;
	return config__fail("%s: unknown placeholder {%s} (use {key}, {kafka_topic}, "
	                    "{partition}, {header.NAME} or {ce.ATTRIBUTE})",
	                    where, name);
}

static int obconf__strdup(char **out, const char *s)
{
	*out = strdup(s);
	return *out ? MOSQ_ERR_SUCCESS : MOSQ_ERR_NOMEM;
}

static int obconf__allow(struct ob_route *r, const json_t *allow, const char *where)
{
	char err[256];
	size_t n = json_is_array(allow) ? json_array_size(allow) : 1;
	if (!allow || (!json_is_string(allow) && !json_is_array(allow)) || n == 0)
		return config__fail("%s.allow: a reply route needs the MQTT topic patterns replies "
		                    "may go to, e.g. \"clients/+/replies\"",
		                    where);
	r->allow = calloc(n, sizeof(*r->allow));
	if (!r->allow)
		return MOSQ_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		const json_t *p = json_is_array(allow) ? json_array_get(allow, i) : allow;
		const char *text = json_string_value(p);
		if (!text)
			return config__fail("%s.allow[%zu]: must be a string", where, i);
		if (text[0] == '$' || !strcmp(text, "#"))
			return config__fail(
			    "%s.allow[%zu]: \"%s\" is too wide (replies may not go to "
			    "every topic nor to $ topics)",
			    where, i, text);
		if (tb_pattern_compile(&r->allow[i], text, err, sizeof(err)))
			return config__fail("%s.allow[%zu]: %s", where, i, err);
		r->nallow++;
	}
	return MOSQ_ERR_SUCCESS;
}

/* The registry's connection settings, copied. */
static int obconf__wire_new(struct ob_wire *w, const struct tbp_registry *reg)
{
	tb_registry_opts *o = &w->opts;
	o->timeout_ms = reg->timeout_ms;
	o->retries = 1;
	if ((reg->user && !(o->username = strdup(reg->user))) ||
	    (reg->password && !(o->password = strdup(reg->password))) ||
	    (reg->bearer && !(o->bearer = strdup(reg->bearer))) ||
	    (reg->ca && !(o->ca_file = strdup(reg->ca))) || !(o->url = strdup(reg->url)) ||
	    !(w->name = strdup(reg->name)) || !(w->cache = tb_wire_cache_new()))
		return MOSQ_ERR_NOMEM;
	return MOSQ_ERR_SUCCESS;
}

/* "registry": the records of the route's Kafka topic are in that
 * registry's wire format. Every route of a topic says the same: a topic's
 * records are decoded once, before any route is chosen. */
static int obconf__wire(struct tbp_outbound *ob, struct ob_route *r, const json_t *j,
                        const char *where)
{
	json_t *v = json_object_get(j, "registry");
	const char *name = json_string_value(v);
	struct tbp_registry *reg = NULL;
	if (v && (!name || !(reg = config__registry(ob->tb, name))))
		return config__fail("%s.registry: must name an entry of \"registries\"", where);
	if (reg) {
		size_t i = 0;
		while (i < ob->nwires && strcmp(ob->wires[i].name, reg->name))
			i++;
		if (i == ob->nwires) {
			int rc = obconf__wire_new(&ob->wires[i], reg);
			ob->nwires++;
			if (rc)
				return rc;
		}
		r->wire = &ob->wires[i];
	}
	for (struct ob_route *o = ob->routes; o < r; o++)
		if (!strcmp(o->kafka_topic, r->kafka_topic) && o->wire != r->wire)
			return config__fail(
			    "%s.registry: outbound.routes[%zu] reads Kafka topic %s %s; every "
			    "route of a topic must name the same registry (or none)",
			    where, (size_t)(o - ob->routes), r->kafka_topic,
			    o->wire ? "through another registry" : "without one");
	return MOSQ_ERR_SUCCESS;
}

static int obconf__route(struct tbp_outbound *ob, struct ob_route *r, const json_t *j, size_t idx)
{
	static const char *const allowed[] = {
	    "kafka_topic", "type",   "header",         "topic",    "reply",   "allow", "qos",
	    "retain",      "format", "message_expiry", "registry", "comment", NULL};
	char where[64], err[256];
	int rc;
	snprintf(where, sizeof(where), "outbound.routes[%zu]", idx);
	if (!json_is_object(j))
		return config__fail("%s: must be an object", where);
	if ((rc = config__only(j, where, allowed)))
		return rc;

	const char *kt = json_string_value(json_object_get(j, "kafka_topic"));
	if (!kt || !tb_kafka_topic_valid(kt))
		return config__fail("%s.kafka_topic: must be a Kafka topic name", where);
	if ((rc = obconf__strdup(&r->kafka_topic, kt)))
		return rc;

	json_t *type = json_object_get(j, "type");
	if (type) {
		const char *t = json_string_value(type);
		if (!t || !*t || !strcmp(t, "*"))
			return config__fail(
			    "%s.type: must be a CloudEvents type, or a prefix ending "
			    "in '*'",
			    where);
		if ((rc = obconf__strdup(&r->type, t)))
			return rc;
		size_t n = strlen(r->type);
		if (r->type[n - 1] == '*') {
			r->type[n - 1] = '\0';
			r->type_prefix = true;
		}
	}

	json_t *header = json_object_get(j, "header");
	if (header) {
		static const char *const hallowed[] = {"name", "value", NULL};
		char sub[96];
		snprintf(sub, sizeof(sub), "%s.header", where);
		if (!json_is_object(header) || (rc = config__only(header, sub, hallowed)) ||
		    !json_string_value(json_object_get(header, "name")) ||
		    !json_string_value(json_object_get(header, "value")))
			return rc ? rc
			          : config__fail("%s: must be {\"name\": ..., \"value\": ...}",
			                         sub);
		if ((rc = obconf__strdup(&r->header_name,
		                         json_string_value(json_object_get(header, "name")))) ||
		    (rc = obconf__strdup(&r->header_value,
		                         json_string_value(json_object_get(header, "value")))))
			return rc;
	}

	json_t *reply = json_object_get(j, "reply");
	if (reply && !json_is_boolean(reply))
		return config__fail("%s.reply: must be true or false", where);
	r->reply = reply && json_is_true(reply);
	json_t *topic = json_object_get(j, "topic");
	if (r->reply) {
		if (topic)
			return config__fail(
			    "%s: a reply route takes its MQTT topic from the record's "
			    "mqtt_response_topic header; remove \"topic\"",
			    where);
		if ((rc = obconf__allow(r, json_object_get(j, "allow"), where)))
			return rc;
	} else {
		const char *t = json_string_value(topic);
		if (json_object_get(j, "allow"))
			return config__fail("%s.allow: only for reply routes", where);
		if (!t || !*t)
			return config__fail("%s.topic: must be an MQTT topic template, e.g. "
			                    "\"users/{key}/notifications\" (or \"reply\": true)",
			                    where);
		if (strchr(t, '+') || strchr(t, '#'))
			return config__fail("%s.topic: no wildcards in a topic to publish to",
			                    where);
		if (tb_template_compile(&r->topic, t, err, sizeof(err)))
			return config__fail("%s.topic: %s", where, err);
		char sub[96];
		snprintf(sub, sizeof(sub), "%s.topic", where);
		if ((rc = tb_template_each_name(&r->topic, obconf__check_name, sub)))
			return rc;
	}

	json_t *qos = json_object_get(j, "qos");
	if (qos &&
	    (!json_is_integer(qos) || json_integer_value(qos) < 0 || json_integer_value(qos) > 2))
		return config__fail("%s.qos: must be 0, 1 or 2", where);
	r->qos = qos ? (int)json_integer_value(qos) : 1;

	json_t *retain = json_object_get(j, "retain");
	if (retain && !json_is_boolean(retain))
		return config__fail("%s.retain: must be true or false", where);
	r->retain = retain && json_is_true(retain);
	if (r->retain && r->reply)
		return config__fail("%s.retain: a reply is for one request, never retained", where);

	const char *fmt = json_string_value(json_object_get(j, "format"));
	if (json_object_get(j, "format") && !fmt)
		return config__fail("%s.format: must be \"binary\" or \"structured\"", where);
	if (!fmt || !strcmp(fmt, "binary"))
		r->format = OB_FORMAT_BINARY;
	else if (!strcmp(fmt, "structured"))
		r->format = OB_FORMAT_STRUCTURED;
	else
		return config__fail("%s.format: must be \"binary\" or \"structured\"", where);

	json_t *exp = json_object_get(j, "message_expiry");
	if (exp && (!json_is_integer(exp) || json_integer_value(exp) < 0 ||
	            json_integer_value(exp) > UINT32_MAX))
		return config__fail("%s.message_expiry: must be 0 (none) to 4294967295 seconds",
		                    where);
	r->message_expiry = exp ? (uint32_t)json_integer_value(exp) : 0;
	return obconf__wire(ob, r, j, where);
}

static int obconf__size(const json_t *parent, const char *name, const char *where, size_t min,
                        size_t max, size_t def, size_t *out)
{
	json_t *v = json_object_get(parent, name);
	if (!v) {
		*out = def;
		return MOSQ_ERR_SUCCESS;
	}
	if (!json_is_integer(v) || json_integer_value(v) < (json_int_t)min ||
	    (json_int_t)max < json_integer_value(v))
		return config__fail("%s.%s: must be an integer from %zu to %zu", where, name, min,
		                    max);
	*out = (size_t)json_integer_value(v);
	return MOSQ_ERR_SUCCESS;
}

static int obconf__kafka(struct tbp_outbound *ob, const json_t *j, const json_t *clusters)
{
	const char *cname = json_string_value(json_object_get(j, "cluster"));
	if (json_object_get(j, "cluster") && !cname)
		return config__fail("outbound.cluster: must be the name of a cluster");
	cname = cname ? cname : "main";
	json_t *cprops = json_object_get(clusters, cname);
	if (!json_is_object(cprops))
		return config__fail("outbound.cluster: no cluster named \"%s\" in \"clusters\"",
		                    cname);
	if (obconf__strdup(&ob->cluster_name, cname))
		return MOSQ_ERR_NOMEM;

	ob->kafka_props = json_object();
	if (!ob->kafka_props)
		return MOSQ_ERR_NOMEM;
	const char *key;
	json_t *v;
	json_object_foreach(cprops, key, v)
	{
		if (obconf__connection_prop(key))
			json_object_set(ob->kafka_props, key, v);
	}
	json_t *consumer = json_object_get(j, "consumer");
	if (consumer && !json_is_object(consumer))
		return config__fail(
		    "outbound.consumer: must be an object of librdkafka properties");
	json_object_foreach(consumer, key, v)
	{
		if (!strcmp(key, "group.id") || !strcmp(key, "enable.auto.offset.store") ||
		    !strcmp(key, "auto.offset.reset"))
			return config__fail("outbound.consumer.%s: set by the plugin (use "
			                    "outbound.group_id / outbound.start)",
			                    key);
		json_object_set(ob->kafka_props, key, v);
	}

	const char *gid = json_string_value(json_object_get(j, "group_id"));
	if (json_object_get(j, "group_id") && (!gid || !*gid))
		return config__fail("outbound.group_id: must be a non-empty string");
	if (gid) {
		if (obconf__strdup(&ob->group_id, gid))
			return MOSQ_ERR_NOMEM;
	} else {
		/* One group per broker instance: each instance must see every record,
		 * since the client it is for may be connected to any of them. */
		size_t n = strlen(ob->tb->broker_id) + 16;
		ob->group_id = malloc(n);
		if (!ob->group_id)
			return MOSQ_ERR_NOMEM;
		snprintf(ob->group_id, n, "tributary-%s", ob->tb->broker_id);
	}

	const char *start = json_string_value(json_object_get(j, "start"));
	if (json_object_get(j, "start") && !start)
		return config__fail("outbound.start: must be \"latest\" or \"earliest\"");
	start = start ? start : "latest";
	if (strcmp(start, "latest") && strcmp(start, "earliest"))
		return config__fail("outbound.start: must be \"latest\" or \"earliest\"");
	return obconf__strdup(&ob->start, start);
}

static int obconf__topics(struct tbp_outbound *ob)
{
	ob->topics = calloc(ob->nroutes, sizeof(*ob->topics));
	if (!ob->topics)
		return MOSQ_ERR_NOMEM;
	for (size_t i = 0; i < ob->nroutes; i++) {
		bool seen = false;
		for (size_t k = 0; k < ob->ntopics; k++)
			if (!strcmp(ob->topics[k], ob->routes[i].kafka_topic))
				seen = true;
		if (!seen)
			ob->topics[ob->ntopics++] = ob->routes[i].kafka_topic;
	}
	return MOSQ_ERR_SUCCESS;
}

int outbound__config(struct tributary *tb, const json_t *j, const json_t *clusters)
{
	static const char *const allowed[] = {"cluster", "group_id",     "start",       "consumer",
	                                      "queue",   "max_per_tick", "max_payload", "wake",
	                                      "routes",  "comment",      NULL};
	static const char *const qallowed[] = {"capacity", "resume_below", "pause_after_ms", NULL};
	int rc;
	if (!j)
		return MOSQ_ERR_SUCCESS;
	if (!json_is_object(j))
		return config__fail("outbound: must be an object with \"routes\"");
	if ((rc = config__only(j, "outbound", allowed)))
		return rc;

	struct tbp_outbound *ob = calloc(1, sizeof(*ob));
	if (!ob)
		return MOSQ_ERR_NOMEM;
	ob->tb = tb;
	tb->outbound = ob;
	outbound__wake_init(&ob->wake);

	if ((rc = obconf__kafka(ob, j, clusters)))
		return rc;

	json_t *queue = json_object_get(j, "queue");
	if (queue &&
	    (!json_is_object(queue) || (rc = config__only(queue, "outbound.queue", qallowed))))
		return rc ? rc : config__fail("outbound.queue: must be an object");
	if ((rc = obconf__size(queue, "capacity", "outbound.queue", 1, 10000000, 10000,
	                       &ob->capacity)))
		return rc;
	if ((rc = obconf__size(queue, "resume_below", "outbound.queue", 0, ob->capacity - 1,
	                       ob->capacity / 2, &ob->resume_below)))
		return rc;
	size_t pause_after;
	if ((rc = obconf__size(queue, "pause_after_ms", "outbound.queue", 0, 60000, 1000,
	                       &pause_after)))
		return rc;
	ob->pause_after_ms = (int)pause_after;
	if ((rc = obconf__size(j, "max_per_tick", "outbound", 1, 1000000, 1000, &ob->max_per_tick)))
		return rc;
	if ((rc = obconf__size(j, "max_payload", "outbound", 0, 268435455, 0, &ob->max_payload)))
		return rc;

	json_t *wake = json_object_get(j, "wake");
	if (!wake || !(json_is_false(wake) || json_is_null(wake))) {
		json_t *dflt = wake ? NULL : json_string("auto");
		rc = outbound__wake_config(&ob->wake, wake ? wake : dflt, tb->broker_id);
		json_decref(dflt);
		if (rc)
			return rc;
		ob->wake_enabled = true;
	}

	json_t *routes = json_object_get(j, "routes");
	if (!json_is_array(routes) || json_array_size(routes) == 0)
		return config__fail("outbound.routes: must be an array of at least one route");
	ob->routes = calloc(json_array_size(routes), sizeof(*ob->routes));
	ob->wires = calloc(json_array_size(routes), sizeof(*ob->wires));
	if (!ob->routes || !ob->wires)
		return MOSQ_ERR_NOMEM;
	size_t i;
	json_t *r;
	json_array_foreach(routes, i, r)
	{
		ob->nroutes++;
		if ((rc = obconf__route(ob, &ob->routes[i], r, i)))
			return rc;
	}
	return obconf__topics(ob);
}

void outbound__config_free(struct tbp_outbound *ob)
{
	for (size_t i = 0; i < ob->nroutes; i++) {
		struct ob_route *r = &ob->routes[i];
		free(r->kafka_topic);
		free(r->type);
		free(r->header_name);
		free(r->header_value);
		tb_template_free(&r->topic);
		for (size_t k = 0; k < r->nallow; k++)
			tb_pattern_free(&r->allow[k]);
		free(r->allow);
	}
	free(ob->routes);
	for (size_t i = 0; i < ob->nwires; i++) {
		struct ob_wire *w = &ob->wires[i];
		tb_registry_free(w->client);
		tb_wire_cache_free(w->cache);
		free(w->name);
		free((char *)w->opts.url);
		free((char *)w->opts.username);
		free((char *)w->opts.password);
		free((char *)w->opts.bearer);
		free((char *)w->opts.ca_file);
	}
	free(ob->wires);
	free(ob->topics);
	json_decref(ob->kafka_props);
	free(ob->cluster_name);
	free(ob->group_id);
	free(ob->start);
	outbound__wake_free(&ob->wake);
}
