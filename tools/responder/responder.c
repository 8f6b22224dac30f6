/*
 * tributary-responder: an example service that answers MQTT v5 requests
 * through Kafka alone.
 *
 * A client publishes example.order.quote.requested with a Response Topic
 * and Correlation Data; the plugin produces it to Kafka (events.order) with
 * headers mqtt_response_topic and mqtt_correlation_data. This service reads
 * it in its consumer group, prices the order and produces
 * example.order.quote.issued (binary-mode CloudEvent) to Kafka topic
 * `replies` with both headers copied. The plugin's reply route publishes it
 * to the response topic with the correlation data: no HTTP, no state, any
 * broker instance.
 *
 * Offsets: per partition, a record's offset is stored once it and every
 * record before it are done (requests: Kafka confirmed the reply), and
 * auto-commit commits it. A reply that cannot be delivered stops the
 * service before its offset is stored, so a restart answers again what had
 * not been answered (at-least-once).
 *
 *   tributary-responder [--brokers 127.0.0.1:9092] [--group tributary-responder]
 *                       [--topic events.order] [--reply-topic replies]
 *                       [--source urn:tributary:responder] [--valid-for 900]
 *                       [--from-beginning] [-X librdkafka.property=value]...
 */
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "tributary/json_encode.h"
#include "tributary/kafka.h"
#include "tributary/util.h"

#define REQUEST_TYPE "example.order.quote.requested"
#define REPLY_TYPE "example.order.quote.issued"

static volatile sig_atomic_t run = 1;

static void on_signal(int sig)
{
	(void)sig;
	run = 0;
}

struct opts {
	const char *brokers, *group, *topic, *reply_topic, *source;
	long valid_for;
	bool from_beginning, verbose;
	char *props[64]; /* -X name=value */
	int nprops;
};

/* The records of one partition in the order read, until done. */
struct pending {
	int64_t offset;
	bool done;
	struct partition *part;
	struct pending *next;
};

struct partition {
	char *topic;
	int32_t partition;
	struct pending *head, *tail;
};

struct responder {
	struct opts o;
	rd_kafka_t *consumer, *producer;
	struct partition **parts;
	size_t nparts;
	unsigned long long requests, answered, skipped, failed;
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: tributary-responder [options]\n"
	    "  Answers " REQUEST_TYPE " events (Kafka, from MQTT v5 requests)\n"
	    "  with " REPLY_TYPE " records carrying the request's\n"
	    "  mqtt_response_topic and mqtt_correlation_data headers.\n\n"
	    "  -b, --brokers HOST:PORT   bootstrap servers (127.0.0.1:9092)\n"
	    "  -g, --group ID            consumer group (tributary-responder)\n"
	    "  -t, --topic NAME          requests topic (events.order)\n"
	    "  -r, --reply-topic NAME    replies topic (replies)\n"
	    "  -s, --source URI          CloudEvents source of replies (urn:tributary:responder)\n"
	    "      --valid-for SECONDS   how long a quote is valid (900)\n"
	    "      --from-beginning      a new group starts at the oldest request, not the newest\n"
	    "  -X NAME=VALUE             librdkafka property for consumer and producer\n"
	    "  -v, --verbose             log every reply\n"
	    "  -h, --help\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
	    {"brokers", required_argument, 0, 'b'},  {"group", required_argument, 0, 'g'},
	    {"topic", required_argument, 0, 't'},    {"reply-topic", required_argument, 0, 'r'},
	    {"source", required_argument, 0, 's'},   {"valid-for", required_argument, 0, 'V'},
	    {"from-beginning", no_argument, 0, 'B'}, {"verbose", no_argument, 0, 'v'},
	    {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
	*o = (struct opts){.brokers = "127.0.0.1:9092",
	                   .group = "tributary-responder",
	                   .topic = "events.order",
	                   .reply_topic = "replies",
	                   .source = "urn:tributary:responder",
	                   .valid_for = 900};
	int c;
	while ((c = getopt_long(argc, argv, "b:g:t:r:s:X:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			o->brokers = optarg;
			break;
		case 'g':
			o->group = optarg;
			break;
		case 't':
			o->topic = optarg;
			break;
		case 'r':
			o->reply_topic = optarg;
			break;
		case 's':
			o->source = optarg;
			break;
		case 'V':
			o->valid_for = strtol(optarg, NULL, 10);
			if (o->valid_for <= 0) {
				fprintf(stderr,
				        "responder: --valid-for must be a positive number\n");
				return 2;
			}
			break;
		case 'B':
			o->from_beginning = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 'X':
			if (o->nprops == 64 || !strchr(optarg, '=')) {
				fprintf(stderr, "responder: -X NAME=VALUE (at most 64)\n");
				return 2;
			}
			o->props[o->nprops++] = optarg;
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 2;
	}
	return 0;
}

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value)
{
	char err[512];
	if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "responder: %s\n", err);
		return -1;
	}
	return 0;
}

static int conf_common(rd_kafka_conf_t *conf, const struct opts *o)
{
	if (conf_set(conf, "bootstrap.servers", o->brokers))
		return -1;
	for (int i = 0; i < o->nprops; i++) {
		char name[256];
		const char *eq = strchr(o->props[i], '=');
		snprintf(name, sizeof(name), "%.*s", (int)(eq - o->props[i]), o->props[i]);
		if (conf_set(conf, name, eq + 1))
			return -1;
	}
	return 0;
}

static struct partition *partition_of(struct responder *r, const char *topic, int32_t p)
{
	for (size_t i = 0; i < r->nparts; i++)
		if (r->parts[i]->partition == p && !strcmp(r->parts[i]->topic, topic))
			return r->parts[i];
	struct partition **parts = realloc(r->parts, sizeof(*parts) * (r->nparts + 1));
	if (!parts)
		return NULL;
	r->parts = parts;
	struct partition *part = calloc(1, sizeof(*part));
	if (!part || !(part->topic = strdup(topic))) {
		free(part);
		return NULL;
	}
	part->partition = p;
	r->parts[r->nparts++] = part;
	return part;
}

/* Stores the offset after the last record of an unbroken run of done ones. */
static void partition_advance(struct responder *r, struct partition *part)
{
	int64_t last = -1;
	while (part->head && part->head->done) {
		struct pending *n = part->head;
		last = n->offset;
		part->head = n->next;
		if (!part->head)
			part->tail = NULL;
		free(n);
	}
	if (last < 0)
		return;
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, part->topic, part->partition)->offset = last + 1;
	rd_kafka_resp_err_t err = rd_kafka_offsets_store(r->consumer, l);
	if (!err)
		err = l->elems[0].err;
	/* __STATE: the partition was revoked meanwhile; its next owner reads
	 * from the last commit and answers those requests again. */
	if (err && err != RD_KAFKA_RESP_ERR__STATE)
		fprintf(stderr, "responder: cannot store offset: %s\n", rd_kafka_err2str(err));
	rd_kafka_topic_partition_list_destroy(l);
}

static struct pending *pending_add(struct responder *r, const rd_kafka_message_t *m)
{
	struct partition *part = partition_of(r, rd_kafka_topic_name(m->rkt), m->partition);
	struct pending *n = part ? calloc(1, sizeof(*n)) : NULL;
	if (!n)
		return NULL;
	n->offset = m->offset;
	n->part = part;
	if (part->tail)
		part->tail->next = n;
	else
		part->head = n;
	part->tail = n;
	return n;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct responder *r = opaque;
	struct pending *n = m->_private;
	(void)rk;
	if (m->err) {
		/* Kafka gave up on it (message.timeout.ms): stop before its offset
		 * can be stored, so that a restart answers the request again. */
		r->failed++;
		fprintf(stderr, "responder: reply to %s [%d] at %lld not delivered: %s; stopping\n",
		        n->part->topic, (int)n->part->partition, (long long)n->offset,
		        rd_kafka_err2str(m->err));
		run = 0;
		return;
	}
	r->answered++;
	n->done = true;
	partition_advance(r, n->part);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	(void)opaque;
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		char fatal[512];
		rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
		fprintf(stderr, "responder: %s: FATAL: %s\n", rd_kafka_name(rk), fatal);
		run = 0;
		return;
	}
	fprintf(stderr, "responder: %s: %s\n", rd_kafka_name(rk), reason);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	(void)opaque;
	bool cooperative = !strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE");
	rd_kafka_error_t *error = NULL;
	rd_kafka_resp_err_t aerr = RD_KAFKA_RESP_ERR_NO_ERROR;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		if (cooperative)
			error = rd_kafka_incremental_assign(rk, parts);
		else
			aerr = rd_kafka_assign(rk, parts);
		fprintf(stderr, "responder: assigned %d partitions\n", parts->cnt);
	} else {
		if (err != RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS)
			fprintf(stderr, "responder: rebalance error: %s\n", rd_kafka_err2str(err));
		if (cooperative)
			error = rd_kafka_incremental_unassign(rk, parts);
		else
			aerr = rd_kafka_assign(rk, NULL);
		fprintf(stderr, "responder: revoked %d partitions\n", parts->cnt);
	}
	if (error) {
		fprintf(stderr, "responder: assign: %s\n", rd_kafka_error_string(error));
		rd_kafka_error_destroy(error);
	} else if (aerr) {
		fprintf(stderr, "responder: assign: %s\n", rd_kafka_err2str(aerr));
	}
}

/* The example's price list: a stable price per SKU, 1.00 to 99.99. */
static long long unit_price_cents(const char *sku)
{
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)sku; *p; p++)
		h = (h ^ *p) * 16777619u;
	return 100 + (long long)(h % 9900u);
}

static void rfc3339_in(long seconds, char out[32])
{
	struct timespec ts;
	struct tm tm;
	char base[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	time_t t = ts.tv_sec + seconds;
	gmtime_r(&t, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 32, "%.19s.%03dZ", base, (int)(ts.tv_nsec / 1000000));
}

/* The request's data, from a binary (ce_* headers) or structured record. */
static json_t *request_data(const rd_kafka_message_t *m, rd_kafka_headers_t *h, bool *is_request)
{
	size_t n = 0;
	const char *type = tb_kafka_header(h, "ce_type", &n);
	const char *ct = tb_kafka_header(h, "content-type", NULL);
	*is_request = false;
	if (type) {
		if (n != strlen(REQUEST_TYPE) || memcmp(type, REQUEST_TYPE, n))
			return NULL;
		*is_request = true;
		return json_loadb(m->payload, m->len, 0, NULL);
	}
	if (ct && !strncasecmp(ct, "application/cloudevents+json", 28)) {
		json_t *ev = json_loadb(m->payload, m->len, 0, NULL);
		const char *t = json_string_value(json_object_get(ev, "type"));
		json_t *data = NULL;
		if (t && !strcmp(t, REQUEST_TYPE)) {
			*is_request = true;
			data = json_incref(json_object_get(ev, "data"));
		}
		json_decref(ev);
		return data;
	}
	return NULL;
}

/* {orderId, total, currency, validUntil}, or NULL with `why`. */
static char *quote(const struct opts *o, const json_t *req, const char **why)
{
	const char *order = json_string_value(json_object_get(req, "orderId"));
	const char *currency = json_string_value(json_object_get(req, "currency"));
	json_t *lines = json_object_get(req, "lines");
	long long cents = 0;
	if (!order || !currency || !json_is_array(lines)) {
		*why = "request data without orderId, currency or lines";
		return NULL;
	}
	size_t i;
	json_t *line;
	json_array_foreach(lines, i, line)
	{
		const char *sku = json_string_value(json_object_get(line, "sku"));
		json_int_t qty = json_integer_value(json_object_get(line, "qty"));
		if (!sku || qty < 1 || qty > 1000000) {
			*why = "an order line without sku or a positive qty";
			return NULL;
		}
		cents += unit_price_cents(sku) * qty;
	}
	char until[32];
	rfc3339_in(o->valid_for, until);
	json_t *q = json_pack("{s:s, s:f, s:s, s:s}", "orderId", order, "total",
	                      (double)cents / 100.0, "currency", currency, "validUntil", until);
	char *text = q ? tb_json_encode(q, NULL) : NULL;
	json_decref(q);
	if (!text)
		*why = "out of memory";
	return text;
}

static int add_header(rd_kafka_headers_t *h, const char *name, const void *v, ssize_t len)
{
	rd_kafka_resp_err_t err = rd_kafka_header_add(h, name, -1, v, len);
	if (err)
		fprintf(stderr, "responder: header %s: %s\n", name, rd_kafka_err2str(err));
	return err ? -1 : 0;
}

/* Produces the reply; the request's offset is stored by its delivery
 * report. Returns 0 when the reply is queued. */
static int answer(struct responder *r, const rd_kafka_message_t *m, rd_kafka_headers_t *rh,
                  const char *data, struct pending *n)
{
	size_t rtlen = 0, cdlen = 0;
	const char *rt = tb_kafka_header(rh, "mqtt_response_topic", &rtlen);
	const void *cd = tb_kafka_header(rh, "mqtt_correlation_data", &cdlen);
	char id[TB_UUID_LEN + 1], now[TB_TIME_LEN + 1];
	tb_uuid7(id);
	tb_time_rfc3339(now);

	rd_kafka_headers_t *h = rd_kafka_headers_new(10);
	if (add_header(h, "ce_specversion", "1.0", -1) || add_header(h, "ce_id", id, -1) ||
	    add_header(h, "ce_source", r->o.source, -1) ||
	    add_header(h, "ce_type", REPLY_TYPE, -1) || add_header(h, "ce_time", now, -1) ||
	    add_header(h, "content-type", "application/json", -1) ||
	    add_header(h, "mqtt_response_topic", rt, (ssize_t)rtlen) ||
	    (cd && add_header(h, "mqtt_correlation_data", cd, (ssize_t)cdlen))) {
		rd_kafka_headers_destroy(h);
		return -1;
	}
	rd_kafka_resp_err_t err;
	for (;;) {
		err =
		    rd_kafka_producev(r->producer, RD_KAFKA_V_TOPIC(r->o.reply_topic),
		                      RD_KAFKA_V_KEY(m->key, m->key_len),
		                      RD_KAFKA_V_VALUE((void *)data, strlen(data)),
		                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		                      RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(n), RD_KAFKA_V_END);
		if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || !run)
			break;
		rd_kafka_poll(r->producer, 100); /* make room: serve delivery reports */
	}
	if (err) {
		fprintf(stderr, "responder: cannot produce the reply: %s\n", rd_kafka_err2str(err));
		rd_kafka_headers_destroy(h); /* still ours when producev failed */
		return -1;
	}
	if (r->o.verbose)
		fprintf(stderr, "responder: %s [%d] at %lld -> %.*s\n", rd_kafka_topic_name(m->rkt),
		        (int)m->partition, (long long)m->offset, (int)rtlen, rt);
	return 0;
}

static void handle(struct responder *r, rd_kafka_message_t *m)
{
	rd_kafka_headers_t *h = NULL;
	bool is_request;
	const char *why = NULL;
	struct pending *n = pending_add(r, m);
	if (!n) {
		fprintf(stderr, "responder: out of memory; stopping\n");
		run = 0;
		return;
	}
	if (rd_kafka_message_headers(m, &h))
		h = NULL;
	json_t *req = request_data(m, h, &is_request);
	char *data = NULL;
	if (is_request) {
		r->requests++;
		if (!tb_kafka_header(h, "mqtt_response_topic", NULL))
			why = "no mqtt_response_topic header (not an MQTT v5 request)";
		else if (!req)
			why = "data is not JSON";
		else
			data = quote(&r->o, req, &why);
		if (data && answer(r, m, h, data, n) == 0)
			goto done; /* the delivery report completes it */
		r->skipped++;
		fprintf(stderr, "responder: %s [%d] at %lld not answered: %s\n",
		        rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset,
		        why ? why : "cannot produce");
	}
	n->done = true; /* nothing to wait for */
	partition_advance(r, n->part);
done:
	free(data);
	json_decref(req);
}

static int setup(struct responder *r)
{
	char err[512];
	rd_kafka_conf_t *pc = rd_kafka_conf_new(), *cc = rd_kafka_conf_new();
	if (conf_common(pc, &r->o) || conf_set(pc, "client.id", "tributary-responder") ||
	    conf_set(pc, "enable.idempotence", "true") || conf_set(pc, "linger.ms", "1") ||
	    conf_common(cc, &r->o) || conf_set(cc, "client.id", "tributary-responder") ||
	    conf_set(cc, "group.id", r->o.group) ||
	    conf_set(cc, "enable.auto.offset.store", "false") ||
	    conf_set(cc, "auto.offset.reset", r->o.from_beginning ? "earliest" : "latest")) {
		rd_kafka_conf_destroy(pc);
		rd_kafka_conf_destroy(cc);
		return -1;
	}
	rd_kafka_conf_set_opaque(pc, r);
	rd_kafka_conf_set_dr_msg_cb(pc, on_delivery);
	rd_kafka_conf_set_error_cb(pc, on_error);
	rd_kafka_conf_set_opaque(cc, r);
	rd_kafka_conf_set_error_cb(cc, on_error);
	rd_kafka_conf_set_rebalance_cb(cc, on_rebalance);

	r->producer = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof(err));
	if (!r->producer) {
		fprintf(stderr, "responder: producer: %s\n", err);
		rd_kafka_conf_destroy(pc);
		rd_kafka_conf_destroy(cc);
		return -1;
	}
	r->consumer = rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof(err));
	if (!r->consumer) {
		fprintf(stderr, "responder: consumer: %s\n", err);
		rd_kafka_conf_destroy(cc);
		return -1;
	}
	rd_kafka_resp_err_t e = rd_kafka_poll_set_consumer(r->consumer);
	if (e) {
		fprintf(stderr, "responder: %s\n", rd_kafka_err2str(e));
		return -1;
	}
	rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(subs, r->o.topic, RD_KAFKA_PARTITION_UA);
	e = rd_kafka_subscribe(r->consumer, subs);
	rd_kafka_topic_partition_list_destroy(subs);
	if (e) {
		fprintf(stderr, "responder: subscribe %s: %s\n", r->o.topic, rd_kafka_err2str(e));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct responder r = {0};
	int rc = parse_opts(argc, argv, &r.o);
	if (rc)
		return rc == 1 ? 0 : rc;
	if (setup(&r)) {
		if (r.consumer)
			rd_kafka_destroy(r.consumer);
		if (r.producer)
			rd_kafka_destroy(r.producer);
		return 1;
	}
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	fprintf(stderr, "responder: %s -> %s, group %s, brokers %s\n", r.o.topic, r.o.reply_topic,
	        r.o.group, r.o.brokers);

	while (run) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(r.consumer, 100);
		if (m) {
			if (m->err) {
				if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
					fprintf(stderr, "responder: consumer: %s\n",
					        rd_kafka_message_errstr(m));
			} else {
				handle(&r, m);
			}
			rd_kafka_message_destroy(m);
		}
		rd_kafka_poll(r.producer, 0); /* delivery reports -> offsets */
	}

	fprintf(stderr, "responder: stopping: flushing replies\n");
	rd_kafka_resp_err_t err = rd_kafka_flush(r.producer, 10000);
	if (err)
		fprintf(stderr, "responder: %d replies not delivered at shutdown: %s\n",
		        rd_kafka_outq_len(r.producer), rd_kafka_err2str(err));
	/* Commits the offsets stored by the delivery reports above. */
	err = rd_kafka_consumer_close(r.consumer);
	if (err)
		fprintf(stderr, "responder: consumer close: %s\n", rd_kafka_err2str(err));
	rd_kafka_destroy(r.consumer);
	rd_kafka_destroy(r.producer);
	for (size_t i = 0; i < r.nparts; i++) {
		for (struct pending *n = r.parts[i]->head, *next; n; n = next) {
			next = n->next;
			free(n);
		}
		free(r.parts[i]->topic);
		free(r.parts[i]);
	}
	free(r.parts);
	fprintf(stderr, "responder: %llu requests, %llu answered, %llu not answered, %llu failed\n",
	        r.requests, r.answered, r.skipped, r.failed);
	return 0;
}
