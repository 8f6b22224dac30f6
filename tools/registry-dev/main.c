/*
 * tributary-registry-dev: a small Confluent-compatible Schema Registry for
 * the tests and `make run`, NOT for production. Its state lives in a
 * compacted Kafka topic (`_schemas`, as Confluent's does): read whole at
 * start, and every write is produced there (acks=all) before it is
 * answered. It serves the subset of the REST API v1 Tributary uses, JSON
 * Schema and Avro (docs/registry.md lists what it does and does not):
 *
 *   GET  /subjects                       GET  /schemas/ids/{id}
 *   GET  /subjects/{s}/versions          POST /subjects/{s}  (lookup)
 *   GET  /subjects/{s}/versions/{v|latest}
 *   POST /subjects/{s}/versions          (register, with references)
 *   POST /compatibility/subjects/{s}/versions/{v|latest}
 *   GET|PUT /config, GET|PUT /config/{s}
 *
 *   tributary-registry-dev --bootstrap HOST:PORT [--listen ADDR:PORT]
 *                          [--topic _schemas] [--user USER:PASSWORD] [--bearer TOKEN]
 *                          [--tls-cert FILE --tls-key FILE]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <microhttpd.h>

#include "compat.h"
#include "tributary/avro.h"

#define MEDIA "application/vnd.schemaregistry.v1+json"
#define MAX_REQUEST (8u << 20)

typedef struct {
	char *subject;
	int version;
	int id;
	json_t *rec; /* {subject, version, id, schemaType, schema, references} */
} version_t;

static struct {
	version_t *v;
	size_t n, cap;
	int next_id;
	json_t *config; /* subject (or "" for global) -> level */
	const char *topic;
	rd_kafka_t *producer;
	const char *auth_user;
	const char *auth_pass;
	const char *bearer;
	volatile sig_atomic_t stop;
} st;

static const char *const LEVELS[] = {"NONE",           "BACKWARD",           "BACKWARD_TRANSITIVE",
                                     "FORWARD",        "FORWARD_TRANSITIVE", "FULL",
                                     "FULL_TRANSITIVE"};

/* --- state ---------------------------------------------------------------- */

static int apply_record(const char *key, size_t klen, const char *val, size_t vlen)
{
	json_t *k = json_loadb(key, klen, 0, NULL);
	json_t *v = val ? json_loadb(val, vlen, 0, NULL) : NULL;
	const char *type = json_string_value(json_object_get(k, "keytype"));
	int rc = 0;
	if (!type) {
		rc = -1;
	} else if (!strcmp(type, "CONFIG")) {
		const char *s = json_string_value(json_object_get(k, "subject"));
		const char *l = json_string_value(json_object_get(v, "compatibilityLevel"));
		if (l)
			json_object_set_new(st.config, s ? s : "", json_string(l));
		else
			json_object_del(st.config, s ? s : "");
	} else if (!strcmp(type, "SCHEMA") && json_is_object(v)) {
		if (st.n == st.cap) {
			st.cap = st.cap ? 2 * st.cap : 64;
			st.v = realloc(st.v, st.cap * sizeof *st.v);
			if (!st.v) {
				fprintf(stderr, "registry-dev: out of memory\n");
				exit(1);
			}
		}
		version_t *x = &st.v[st.n++];
		x->subject = strdup(json_string_value(json_object_get(v, "subject")));
		x->version = (int)json_integer_value(json_object_get(v, "version"));
		x->id = (int)json_integer_value(json_object_get(v, "id"));
		x->rec = json_incref(v);
		if (x->id >= st.next_id)
			st.next_id = x->id + 1;
	} else {
		rc = -1;
	}
	json_decref(k);
	json_decref(v);
	return rc;
}

static version_t *find(const char *subject, int version /* -1: latest */)
{
	version_t *best = NULL;
	for (size_t i = 0; i < st.n; i++)
		if (!strcmp(st.v[i].subject, subject) &&
		    (version < 0 ? !best || st.v[i].version > best->version
		                 : st.v[i].version == version))
			best = &st.v[i];
	return best;
}

static const char *level_of(const char *subject)
{
	const char *l = subject ? json_string_value(json_object_get(st.config, subject)) : NULL;
	if (!l)
		l = json_string_value(json_object_get(st.config, ""));
	return l ? l : "BACKWARD";
}

/* Same schema: same type, same JSON (whitespace and key order aside), same
 * references. */
static bool same_schema(json_t *a, json_t *b)
{
	const char *ta = json_string_value(json_object_get(a, "schemaType"));
	const char *tb = json_string_value(json_object_get(b, "schemaType"));
	if (strcmp(ta ? ta : "JSON", tb ? tb : "JSON"))
		return false;
	json_t *sa =
	    json_loads(json_string_value(json_object_get(a, "schema")), JSON_DECODE_ANY, NULL);
	json_t *sb =
	    json_loads(json_string_value(json_object_get(b, "schema")), JSON_DECODE_ANY, NULL);
	bool same = sa && sb && json_equal(sa, sb);
	json_decref(sa);
	json_decref(sb);
	json_t *ra = json_object_get(a, "references"), *rb = json_object_get(b, "references");
	size_t na = json_array_size(ra), nb = json_array_size(rb);
	return same && na == nb && (!na || json_equal(ra, rb));
}

/* --- Kafka ---------------------------------------------------------------- */

static rd_kafka_resp_err_t delivered_err;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	delivered_err = m->err;
}

static int ensure_topic(rd_kafka_t *rk, char *err, size_t errlen)
{
	char e[256];
	rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(st.topic, 1, 1, e, sizeof e);
	if (!nt) {
		snprintf(err, errlen, "topic %s: %s", st.topic, e);
		return -1;
	}
	if (rd_kafka_NewTopic_set_config(nt, "cleanup.policy", "compact")) {
		rd_kafka_NewTopic_destroy(nt);
		snprintf(err, errlen, "topic %s: cannot set cleanup.policy", st.topic);
		return -1;
	}
	rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
	rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
	rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
	int rc = -1;
	if (!ev) {
		snprintf(err, errlen, "topic %s: no answer from Kafka in 30 s", st.topic);
	} else {
		const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
		size_t n = 0;
		const rd_kafka_topic_result_t **tr =
		    res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
		rd_kafka_resp_err_t te = rd_kafka_event_error(ev);
		if (!te && n == 1)
			te = rd_kafka_topic_result_error(tr[0]);
		if (te == RD_KAFKA_RESP_ERR_NO_ERROR ||
		    te == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
			rc = 0;
		else
			snprintf(err, errlen, "topic %s: %s", st.topic, rd_kafka_err2str(te));
		rd_kafka_event_destroy(ev);
	}
	rd_kafka_queue_destroy(q);
	rd_kafka_NewTopic_destroy(nt);
	return rc;
}

static rd_kafka_t *new_client(rd_kafka_type_t type, const char *bootstrap, char *err, size_t errlen)
{
	rd_kafka_conf_t *c = rd_kafka_conf_new();
	if (rd_kafka_conf_set(c, "bootstrap.servers", bootstrap, err, errlen) ||
	    (type == RD_KAFKA_PRODUCER &&
	     (rd_kafka_conf_set(c, "acks", "all", err, errlen) ||
	      rd_kafka_conf_set(c, "enable.idempotence", "true", err, errlen))) ||
	    (type == RD_KAFKA_CONSUMER &&
	     (rd_kafka_conf_set(c, "group.id", "tributary-registry-dev", err, errlen) ||
	      rd_kafka_conf_set(c, "enable.auto.commit", "false", err, errlen)))) {
		rd_kafka_conf_destroy(c);
		return NULL;
	}
	if (type == RD_KAFKA_PRODUCER)
		rd_kafka_conf_set_dr_msg_cb(c, on_delivery);
	rd_kafka_t *rk = rd_kafka_new(type, c, err, errlen);
	if (!rk)
		rd_kafka_conf_destroy(c);
	return rk;
}

/* Reads the topic from its start to its end. */
static int load_state(const char *bootstrap, char *err, size_t errlen)
{
	rd_kafka_t *c = new_client(RD_KAFKA_CONSUMER, bootstrap, err, errlen);
	if (!c)
		return -1;
	int64_t lo = 0, hi = 0;
	rd_kafka_resp_err_t e;
	int rc = -1;
	/* A topic just created has no leader (or no partition known to the
	 * client) for a moment. */
	for (int tries = 0; tries < 60; tries++) {
		e = rd_kafka_query_watermark_offsets(c, st.topic, 0, &lo, &hi, 30000);
		if (e != RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION &&
		    e != RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE &&
		    e != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART &&
		    e != RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION)
			break;
		usleep(500 * 1000);
	}
	if (e) {
		snprintf(err, errlen, "topic %s: offsets: %s", st.topic, rd_kafka_err2str(e));
		goto out;
	}
	rd_kafka_topic_partition_list_t *pl = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(pl, st.topic, 0)->offset = lo;
	e = rd_kafka_assign(c, pl);
	rd_kafka_topic_partition_list_destroy(pl);
	if (e) {
		snprintf(err, errlen, "topic %s: assign: %s", st.topic, rd_kafka_err2str(e));
		goto out;
	}
	int64_t pos = lo;
	int idle = 0;
	while (pos < hi) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 1000);
		if (!m) {
			if (++idle == 30) {
				snprintf(err, errlen, "topic %s: stuck at offset %lld of %lld",
				         st.topic, (long long)pos, (long long)hi);
				goto out;
			}
			continue;
		}
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			rd_kafka_message_destroy(m);
			continue;
		}
		if (m->err) {
			snprintf(err, errlen, "topic %s: %s", st.topic, rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			goto out;
		}
		if (apply_record(m->key, m->key_len, m->payload, m->len))
			fprintf(stderr, "registry-dev: skipped record at offset %lld (not ours)\n",
			        (long long)m->offset);
		pos = m->offset + 1;
		rd_kafka_message_destroy(m);
	}
	rc = 0;
out:
	rd_kafka_consumer_close(c);
	rd_kafka_destroy(c);
	return rc;
}

/* Produces key/value and waits for the broker's acknowledgement. */
static int persist(json_t *key, json_t *value, char *err, size_t errlen)
{
	char *k = json_dumps(key, JSON_COMPACT | JSON_SORT_KEYS);
	char *v = json_dumps(value, JSON_COMPACT | JSON_SORT_KEYS);
	int rc = -1;
	delivered_err = RD_KAFKA_RESP_ERR__IN_PROGRESS;
	rd_kafka_resp_err_t e =
	    rd_kafka_producev(st.producer, RD_KAFKA_V_TOPIC(st.topic), RD_KAFKA_V_PARTITION(0),
	                      RD_KAFKA_V_KEY(k, strlen(k)), RD_KAFKA_V_VALUE(v, strlen(v)),
	                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
	if (e) {
		snprintf(err, errlen, "produce: %s", rd_kafka_err2str(e));
		goto out;
	}
	e = rd_kafka_flush(st.producer, 15000);
	if (e || delivered_err) {
		snprintf(err, errlen, "Kafka did not take the write: %s",
		         rd_kafka_err2str(e ? e : delivered_err));
		goto out;
	}
	rc = apply_record(k, strlen(k), v, strlen(v));
	if (rc)
		snprintf(err, errlen, "internal: record not applied");
out:
	free(k);
	free(v);
	return rc;
}

/* --- HTTP ----------------------------------------------------------------- */

typedef struct {
	char *data;
	size_t len;
	bool too_big;
} reqbody;

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", MEDIA);
	enum MHD_Result rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, int code,
                                  const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return send_json(c, status, json_pack("{s:i, s:s}", "error_code", code, "message", msg));
}

static json_t *version_json(const version_t *x)
{
	json_t *j = json_deep_copy(x->rec);
	const char *t = json_string_value(json_object_get(j, "schemaType"));
	if (t && !strcmp(t, "AVRO"))
		json_object_del(j, "schemaType");
	if (!json_array_size(json_object_get(j, "references")))
		json_object_del(j, "references");
	return j;
}

/* Splits the URL path into at most 6 decoded segments. */
static size_t split_path(char *path, char **seg, size_t max)
{
	size_t n = 0;
	for (char *p = strtok(path, "/"); p && n < max; p = strtok(NULL, "/")) {
		MHD_http_unescape(p);
		seg[n++] = p;
	}
	return n;
}

static int parse_version(const char *s)
{
	if (!strcmp(s, "latest") || !strcmp(s, "-1"))
		return -1;
	char *end;
	long v = strtol(s, &end, 10);
	return *s && !*end && v > 0 && v < 1000000 ? (int)v : 0;
}

/* The request's schema object, checked: schema is valid JSON, references
 * name registered versions. NULL after an error answer was queued in *rc. */
static json_t *request_schema(struct MHD_Connection *c, const reqbody *b, enum MHD_Result *rc)
{
	json_error_t je;
	json_t *j = json_loadb(b->data ? b->data : "", b->len, 0, &je);
	json_t *schema = json_object_get(j, "schema");
	if (!json_is_object(j) || !json_is_string(schema)) {
		*rc = send_error(c, 422, 42201, "the request is not {\"schema\": \"...\"}: %s",
		                 j ? "no schema string" : je.text);
		goto bad;
	}
	const char *type = json_string_value(json_object_get(j, "schemaType"));
	if (!type)
		type = "AVRO";
	json_t *refs = json_object_get(j, "references");
	if (!strcmp(type, "AVRO")) {
		char err[512];
		const char *text = json_string_value(schema);
		tb_avro_schema *as = tb_avro_schema_parse(text, strlen(text), err, sizeof err);
		if (!as) {
			*rc = send_error(c, 422, 42201, "Invalid schema: %s", err);
			goto bad;
		}
		tb_avro_schema_free(as);
		if (json_array_size(refs)) {
			*rc = send_error(c, 422, 42201,
			                 "Avro references: not handled by this dev registry");
			goto bad;
		}
	} else if (strcmp(type, "JSON")) {
		*rc = send_error(
		    c, 422, 42201,
		    "schemaType %s: this dev registry handles JSON Schema and Avro only", type);
		goto bad;
	} else {
		json_t *parsed = json_loads(json_string_value(schema), 0, &je);
		if (!json_is_object(parsed) && !json_is_boolean(parsed)) {
			*rc = send_error(c, 422, 42201, "invalid JSON schema: %s",
			                 parsed ? "not an object or boolean" : je.text);
			json_decref(parsed);
			goto bad;
		}
		json_decref(parsed);
	}
	size_t i;
	json_t *ref;
	if (refs && !json_is_array(refs) && !json_is_null(refs)) {
		*rc = send_error(c, 422, 42201, "references is not an array");
		goto bad;
	}
	json_array_foreach(refs, i, ref)
	{
		const char *n = json_string_value(json_object_get(ref, "name"));
		const char *s = json_string_value(json_object_get(ref, "subject"));
		json_t *v = json_object_get(ref, "version");
		if (!n || !s || !json_is_integer(v)) {
			*rc = send_error(c, 422, 42201,
			                 "reference %zu needs name, subject and version", i);
			goto bad;
		}
		if (!find(s, (int)json_integer_value(v))) {
			*rc = send_error(c, 422, 42201,
			                 "reference %s: subject %s version %d not found", n, s,
			                 (int)json_integer_value(v));
			goto bad;
		}
	}
	json_t *out =
	    json_pack("{s:O, s:s, s:o}", "schema", schema, "schemaType", type, "references",
	              json_is_array(refs) ? json_incref(refs) : json_array());
	json_decref(j);
	return out;
bad:
	json_decref(j);
	return NULL;
}

/* Checks `cand` against the subject's versions as its level says. */
static bool compatible(const char *subject, json_t *cand, int against, json_t *messages)
{
	const char *level = level_of(subject);
	if (!strcmp(level, "NONE"))
		return true;
	bool transitive = strstr(level, "TRANSITIVE") != NULL;
	bool back = !strncmp(level, "BACKWARD", 8) || !strncmp(level, "FULL", 4);
	bool fwd = !strncmp(level, "FORWARD", 7) || !strncmp(level, "FULL", 4);
	version_t *latest = find(subject, against);
	if (!latest)
		return true;
	bool ok = true;
	const char *ctext = json_string_value(json_object_get(cand, "schema"));
	const char *ctype = json_string_value(json_object_get(cand, "schemaType"));
	json_t *cs = json_loads(ctext, 0, NULL);
	for (size_t i = 0; i < st.n; i++) {
		version_t *x = &st.v[i];
		if (strcmp(x->subject, subject) || (x != latest && !(transitive && against < 0)))
			continue;
		const char *xtext = json_string_value(json_object_get(x->rec, "schema"));
		const char *xtype = json_string_value(json_object_get(x->rec, "schemaType"));
		char where[64];
		snprintf(where, sizeof where, "version %d", x->version);
		if (strcmp(xtype ? xtype : "AVRO", ctype)) {
			char m[128];
			snprintf(m, sizeof m, "%s: the schema type changed from %s to %s", where,
			         xtype ? xtype : "AVRO", ctype);
			json_array_append_new(messages, json_string(m));
			ok = false;
		} else if (!strcmp(ctype, "AVRO")) {
			if (back && !compat_avro_backward(xtext, ctext, where, messages))
				ok = false;
			if (fwd && !compat_avro_backward(ctext, xtext, where, messages))
				ok = false;
		} else {
			json_t *xs = json_loads(xtext, 0, NULL);
			if (back && !compat_json_backward(xs, cs, where, messages))
				ok = false;
			if (fwd && !compat_json_backward(cs, xs, where, messages))
				ok = false;
			json_decref(xs);
		}
	}
	json_decref(cs);
	return ok;
}

static enum MHD_Result do_register(struct MHD_Connection *c, const char *subject, const reqbody *b)
{
	enum MHD_Result rc;
	json_t *cand = request_schema(c, b, &rc);
	if (!cand)
		return rc;
	int id = 0;
	for (size_t i = 0; i < st.n; i++)
		if (same_schema(st.v[i].rec, cand)) {
			if (!strcmp(st.v[i].subject, subject)) {
				id = st.v[i].id;
				json_decref(cand);
				return send_json(c, 200, json_pack("{s:i}", "id", id));
			}
			id = st.v[i].id; /* the same schema keeps its id across subjects */
		}
	json_t *msgs = json_array();
	if (!compatible(subject, cand, -1, msgs)) {
		char *m = json_dumps(msgs, JSON_COMPACT);
		rc = send_error(c, 409, 409,
		                "Schema being registered is incompatible with an earlier schema "
		                "for subject \"%s\": %s",
		                subject, m);
		free(m);
		json_decref(msgs);
		json_decref(cand);
		return rc;
	}
	json_decref(msgs);
	version_t *latest = find(subject, -1);
	int version = latest ? latest->version + 1 : 1;
	if (!id)
		id = st.next_id;
	json_object_set_new(cand, "subject", json_string(subject));
	json_object_set_new(cand, "version", json_integer(version));
	json_object_set_new(cand, "id", json_integer(id));
	json_t *key = json_pack("{s:s, s:s, s:i, s:i}", "keytype", "SCHEMA", "subject", subject,
	                        "version", version, "magic", 1);
	char err[256];
	int prc = persist(key, cand, err, sizeof err);
	json_decref(key);
	json_decref(cand);
	if (prc)
		return send_error(c, 500, 50001, "Error in the backend data store: %s", err);
	fprintf(stderr, "registry-dev: registered %s version %d id %d\n", subject, version, id);
	return send_json(c, 200, json_pack("{s:i}", "id", id));
}

static enum MHD_Result do_lookup(struct MHD_Connection *c, const char *subject, const reqbody *b)
{
	enum MHD_Result rc;
	json_t *cand = request_schema(c, b, &rc);
	if (!cand)
		return rc;
	if (!find(subject, -1)) {
		json_decref(cand);
		return send_error(c, 404, 40401, "Subject '%s' not found.", subject);
	}
	for (size_t i = 0; i < st.n; i++)
		if (!strcmp(st.v[i].subject, subject) && same_schema(st.v[i].rec, cand)) {
			json_decref(cand);
			return send_json(c, 200, version_json(&st.v[i]));
		}
	json_decref(cand);
	return send_error(c, 404, 40403, "Schema not found");
}

static enum MHD_Result do_config(struct MHD_Connection *c, const char *method, const char *subject,
                                 const reqbody *b)
{
	if (!strcmp(method, "GET")) {
		const char *dflt =
		    MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "defaultToGlobal");
		const char *l =
		    subject ? json_string_value(json_object_get(st.config, subject)) : NULL;
		if (subject && !l && !(dflt && !strcmp(dflt, "true")))
			return send_error(
			    c, 404, 40408,
			    "Subject '%s' does not have subject-level compatibility configured",
			    subject);
		return send_json(c, 200,
		                 json_pack("{s:s}", "compatibilityLevel", l ? l : level_of(NULL)));
	}
	json_t *j = json_loadb(b->data ? b->data : "", b->len, 0, NULL);
	const char *l = json_string_value(json_object_get(j, "compatibility"));
	bool known = false;
	for (size_t i = 0; l && i < sizeof LEVELS / sizeof *LEVELS; i++)
		known |= !strcmp(l, LEVELS[i]);
	if (!known) {
		json_decref(j);
		return send_error(c, 422, 42203, "Invalid compatibility level");
	}
	json_t *key =
	    json_pack("{s:s, s:s?, s:i}", "keytype", "CONFIG", "subject", subject, "magic", 0);
	json_t *val = json_pack("{s:s}", "compatibilityLevel", l);
	char err[256];
	int prc = persist(key, val, err, sizeof err);
	json_decref(key);
	json_decref(val);
	enum MHD_Result rc =
	    prc ? send_error(c, 500, 50001, "Error in the backend data store: %s", err)
	        : send_json(c, 200, json_pack("{s:s}", "compatibility", l));
	json_decref(j);
	return rc;
}

/* With --user and/or --bearer, a request needs one of them. */
static bool authorized(struct MHD_Connection *c)
{
	if (!st.auth_user && !st.bearer)
		return true;
	if (st.bearer) {
		const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization");
		if (h && !strncmp(h, "Bearer ", 7) && !strcmp(h + 7, st.bearer))
			return true;
	}
	if (!st.auth_user)
		return false;
	char *pass = NULL;
	char *user = MHD_basic_auth_get_username_password(c, &pass);
	bool ok = user && pass && !strcmp(user, st.auth_user) && !strcmp(pass, st.auth_pass);
	MHD_free(user);
	MHD_free(pass);
	return ok;
}

static enum MHD_Result route(struct MHD_Connection *c, const char *method, char *path,
                             const reqbody *b)
{
	char *s[6];
	size_t n = split_path(path, s, 6);
	bool get = !strcmp(method, "GET"), post = !strcmp(method, "POST");
	int v;

	if (n == 1 && get && !strcmp(s[0], "subjects")) {
		json_t *a = json_array();
		for (size_t i = 0; i < st.n; i++)
			if (st.v[i].version == 1)
				json_array_append_new(a, json_string(st.v[i].subject));
		return send_json(c, 200, a);
	}
	if (n >= 2 && !strcmp(s[0], "subjects")) {
		if (n == 2 && post)
			return do_lookup(c, s[1], b);
		if (n == 3 && post && !strcmp(s[2], "versions"))
			return do_register(c, s[1], b);
		if (get && n >= 3 && !strcmp(s[2], "versions")) {
			if (!find(s[1], -1))
				return send_error(c, 404, 40401, "Subject '%s' not found.", s[1]);
			if (n == 3) {
				json_t *a = json_array();
				for (size_t i = 0; i < st.n; i++)
					if (!strcmp(st.v[i].subject, s[1]))
						json_array_append_new(
						    a, json_integer(st.v[i].version));
				return send_json(c, 200, a);
			}
			if (n == 4) {
				if (!(v = parse_version(s[3])))
					return send_error(
					    c, 422, 42202,
					    "The specified version '%s' is not a valid version id.",
					    s[3]);
				version_t *x = find(s[1], v);
				if (!x)
					return send_error(c, 404, 40402, "Version %s not found.",
					                  s[3]);
				return send_json(c, 200, version_json(x));
			}
		}
	}
	if (n == 3 && get && !strcmp(s[0], "schemas") && !strcmp(s[1], "ids")) {
		int id = atoi(s[2]);
		for (size_t i = 0; i < st.n; i++)
			if (st.v[i].id == id) {
				json_t *j = version_json(&st.v[i]);
				json_object_del(j, "subject");
				json_object_del(j, "version");
				json_object_del(j, "id");
				return send_json(c, 200, j);
			}
		return send_error(c, 404, 40403, "Schema %s not found", s[2]);
	}
	if (n == 5 && post && !strcmp(s[0], "compatibility") && !strcmp(s[1], "subjects") &&
	    !strcmp(s[3], "versions")) {
		if (!(v = parse_version(s[4])))
			return send_error(c, 422, 42202,
			                  "The specified version '%s' is not a valid version id.",
			                  s[4]);
		if (v > 0 && !find(s[2], v))
			return send_error(c, 404, find(s[2], -1) ? 40402 : 40401,
			                  "Subject '%s' version %s not found.", s[2], s[4]);
		enum MHD_Result rc;
		json_t *cand = request_schema(c, b, &rc);
		if (!cand)
			return rc;
		json_t *msgs = json_array();
		bool ok = compatible(s[2], cand, v, msgs);
		json_decref(cand);
		json_t *ans = json_pack("{s:b}", "is_compatible", ok);
		const char *verbose =
		    MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "verbose");
		if (verbose && !strcmp(verbose, "true"))
			json_object_set(ans, "messages", msgs);
		json_decref(msgs);
		return send_json(c, 200, ans);
	}
	if ((n == 1 || n == 2) && !strcmp(s[0], "config") && (get || !strcmp(method, "PUT")))
		return do_config(c, method, n == 2 ? s[1] : NULL, b);
	return send_error(c, 404, 404, "HTTP 404 Not Found: %s %s", method, n ? s[0] : "/");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **ctx)
{
	(void)cls;
	(void)version;
	reqbody *b = *ctx;
	if (!b) {
		*ctx = b = calloc(1, sizeof *b);
		return b ? MHD_YES : MHD_NO;
	}
	if (*size) {
		if (b->len + *size > MAX_REQUEST) {
			b->too_big = true;
		} else {
			char *d = realloc(b->data, b->len + *size + 1);
			if (!d)
				return MHD_NO;
			memcpy(d + b->len, data, *size);
			b->data = d;
			b->len += *size;
			d[b->len] = '\0';
		}
		*size = 0;
		return MHD_YES;
	}
	if (!authorized(c)) {
		char *s = strdup("{\"error_code\":401,\"message\":\"Unauthorized\"}");
		struct MHD_Response *r =
		    MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
		MHD_add_response_header(r, "Content-Type", MEDIA);
		enum MHD_Result rc =
		    MHD_queue_basic_auth_fail_response(c, "tributary-registry-dev", r);
		MHD_destroy_response(r);
		return rc;
	}
	if (b->too_big)
		return send_error(c, 413, 413, "request body over %u bytes", MAX_REQUEST);
	char *path = strdup(url);
	enum MHD_Result rc = route(c, method, path, b);
	free(path);
	return rc;
}

static void on_done(void *cls, struct MHD_Connection *c, void **ctx,
                    enum MHD_RequestTerminationCode t)
{
	(void)cls;
	(void)c;
	(void)t;
	reqbody *b = *ctx;
	if (b) {
		free(b->data);
		free(b);
	}
	*ctx = NULL;
}

static char *read_pem(const char *path)
{
	FILE *f = fopen(path, "r");
	char *data = NULL;
	size_t cap = 0;
	if (!f || getdelim(&data, &cap, '\0', f) < 0) {
		fprintf(stderr, "registry-dev: %s: %s\n", path, strerror(errno));
		free(data);
		data = NULL;
	}
	if (f)
		fclose(f);
	return data;
}

static void on_signal(int sig)
{
	(void)sig;
	st.stop = 1;
}

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: tributary-registry-dev --bootstrap HOST:PORT [--listen ADDR:PORT]\n"
	    "                              [--topic NAME] [--user USER:PASSWORD] [--bearer TOKEN]\n"
	    "                              [--tls-cert FILE --tls-key FILE]\n"
	    "  --bootstrap   Kafka that keeps the registry's state\n"
	    "  --listen      default 127.0.0.1:8081\n"
	    "  --topic       default _schemas (compacted, created when missing)\n"
	    "  --user        require HTTP basic auth with these credentials\n"
	    "  --bearer      require Authorization: Bearer TOKEN (or --user's)\n"
	    "  --tls-cert F  serve HTTPS with this PEM certificate (and --tls-key F)\n");
}

int main(int argc, char **argv)
{
	const char *bootstrap = NULL, *listen_at = "127.0.0.1:8081";
	char *user = NULL;
	const char *cert_file = NULL, *key_file = NULL;
	static const struct option opts[] = {{"bootstrap", required_argument, NULL, 'b'},
	                                     {"listen", required_argument, NULL, 'l'},
	                                     {"topic", required_argument, NULL, 't'},
	                                     {"user", required_argument, NULL, 'u'},
	                                     {"bearer", required_argument, NULL, 'B'},
	                                     {"tls-cert", required_argument, NULL, 'C'},
	                                     {"tls-key", required_argument, NULL, 'K'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	int o;
	st.topic = "_schemas";
	while ((o = getopt_long(argc, argv, "b:l:t:u:h", opts, NULL)) != -1) {
		switch (o) {
		case 'b':
			bootstrap = optarg;
			break;
		case 'l':
			listen_at = optarg;
			break;
		case 't':
			st.topic = optarg;
			break;
		case 'C':
			cert_file = optarg;
			break;
		case 'K':
			key_file = optarg;
			break;
		case 'B':
			st.bearer = optarg;
			break;
		case 'u':
			user = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!bootstrap || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (user) {
		char *colon = strchr(user, ':');
		if (!colon) {
			fprintf(stderr, "registry-dev: --user wants USER:PASSWORD\n");
			return 2;
		}
		*colon = '\0';
		st.auth_user = user;
		st.auth_pass = colon + 1;
	}
	struct sockaddr_in sa = {.sin_family = AF_INET};
	char host[64];
	const char *colon = strrchr(listen_at, ':');
	int port = colon ? atoi(colon + 1) : 0;
	if (!colon || (size_t)(colon - listen_at) >= sizeof host || port <= 0 || port > 65535) {
		fprintf(stderr, "registry-dev: --listen wants ADDR:PORT, not '%s'\n", listen_at);
		return 2;
	}
	snprintf(host, sizeof host, "%.*s", (int)(colon - listen_at), listen_at);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "registry-dev: --listen: '%s' is not an IPv4 address\n", host);
		return 2;
	}
	sa.sin_port = htons((uint16_t)port);

	char err[512];
	st.config = json_object();
	st.next_id = 1;
	st.producer = new_client(RD_KAFKA_PRODUCER, bootstrap, err, sizeof err);
	if (!st.producer || ensure_topic(st.producer, err, sizeof err) ||
	    load_state(bootstrap, err, sizeof err)) {
		fprintf(stderr, "registry-dev: Kafka %s: %s\n", bootstrap, err);
		return 1;
	}
	char *cert = NULL, *key = NULL;
	if (!!cert_file != !!key_file) {
		fprintf(stderr, "registry-dev: --tls-cert and --tls-key go together\n");
		return 2;
	}
	if (cert_file && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
		fprintf(stderr, "registry-dev: this libmicrohttpd has no TLS\n");
		return 1;
	}
	if (cert_file && (!(cert = read_pem(cert_file)) || !(key = read_pem(key_file)))) {
		free(cert);
		return 1;
	}
	struct MHD_OptionItem tls[] = {
	    {cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, cert},
	    {MHD_OPTION_HTTPS_MEM_KEY, 0, key},
	    {MHD_OPTION_END, 0, NULL},
	};
	struct MHD_Daemon *d = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | (cert ? MHD_USE_TLS : 0), 0, NULL,
	    NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
	    MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
	    MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "registry-dev: cannot listen on %s\n", listen_at);
		return 1;
	}
	fprintf(stderr, "registry-dev: listening on %s://%s (%zu schema versions from %s)\n",
	        cert ? "https" : "http", listen_at, st.n, st.topic);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	while (!st.stop)
		pause();
	MHD_stop_daemon(d);
	rd_kafka_flush(st.producer, 5000);
	rd_kafka_destroy(st.producer);
	for (size_t i = 0; i < st.n; i++) {
		free(st.v[i].subject);
		json_decref(st.v[i].rec);
	}
	free(st.v);
	json_decref(st.config);
	free(cert);
	free(key);
	return 0;
}
