/*
 * Ingest load generator: N MQTT connections (libmosquitto) publish 1 KB
 * example.order.placed events; prints acknowledged msg/s (QoS 1: PUBACKs;
 * QoS 0: messages written to the socket, libmosquitto's on_publish, with at
 * most --window queued per connection, so that the figure is what the broker
 * took in, not what the client library buffered), counted after a one-second
 * warm-up that fills the socket buffers, and, with --kafka,
 * publish-to-Kafka latency percentiles measured by a librdkafka consumer in
 * this process that matches each record's ce_id (which carries the send
 * time). With --sub, the latency is publish-to-subscriber instead (for the
 * bare-Mosquitto baseline).
 *
 *   loadgen --port 1883 --conns 10 --qos 1 --seconds 5 [--rate 10000]
 *           [--kafka 127.0.0.1:9092 --topic events.order [--fetch-wait-ms 1]] [--sub]
 *           [--mqtt-prefix events/order]
 *
 * Events go to MQTT topics PREFIX/ORDER_ID (--mqtt-prefix, default
 * events/order).
 *
 * --fetch-wait-ms is the consumer's fetch.wait.max.ms: 1 for librdkafka's
 * mock, which holds an empty fetch for the whole wait even when a record
 * arrives; a real broker answers a waiting fetch as soon as one does, and a
 * 1 ms wait there only makes it answer a thousand empty fetches a second.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <mosquitto.h>

#define MAX_SAMPLES 4000000

static struct {
	const char *host, *kafka, *topic, *fetch_wait_ms, *mqtt_prefix;
	int port, conns, qos, seconds, size, window, sub;
	double rate;
} opt = {"127.0.0.1", NULL, "events.order", "1", "events/order", 1883, 10, 1, 5, 1024, 64, 0, 0};

static atomic_uint_fast64_t acked, sent, received;
static atomic_bool stop;
static uint64_t *samples;
static atomic_size_t nsamples;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void record_latency(const char *id, size_t len)
{
	/* id: bench-<send ns>-<conn>-<seq> */
	if (len < 7 || memcmp(id, "bench-", 6) != 0)
		return;
	uint64_t t = strtoull(id + 6, NULL, 10);
	uint64_t now = now_ns();
	atomic_fetch_add(&received, 1);
	size_t i = atomic_fetch_add(&nsamples, 1);
	if (i < MAX_SAMPLES && now > t)
		samples[i] = now - t;
}

struct conn {
	int idx;
	struct mosquitto *m;
	sem_t window;
	pthread_t thread;
	uint64_t seq;
};

static void on_publish(struct mosquitto *m, void *obj, int mid)
{
	struct conn *c = obj;
	(void)m;
	(void)mid;
	atomic_fetch_add(&acked, 1);
	sem_post(&c->window);
}

static void on_message(struct mosquitto *m, void *obj, const struct mosquitto_message *msg)
{
	(void)m;
	(void)obj;
	const char *p = strstr(msg->payload, "\"id\":\"");
	if (p)
		record_latency(p + 6, strcspn(p + 6, "\""));
}

static void build_event(char *buf, size_t size, struct conn *c, char *order_id)
{
	uint64_t t = now_ns();
	snprintf(order_id, 37, "%08x-0000-4000-8000-%012" PRIx64, (unsigned)c->idx, c->seq % 64);
	int n = snprintf(buf, size,
	                 "{\"specversion\":\"1.0\",\"id\":\"bench-%" PRIu64 "-%d-%" PRIu64
	                 "\",\"source\":\"urn:bench\",\"type\":\"example.order.placed\","
	                 "\"datacontenttype\":\"application/json\",\"data\":{\"orderId\":\"%s\","
	                 "\"customerId\":\"bench-customer\",\"total\":%" PRIu64
	                 ",\"currency\":\"EUR\",\"lines\":[",
	                 t, c->idx, c->seq, order_id, c->seq);
	/* Pad with order lines to the requested size. */
	int line = 0;
	while ((size_t)n < size - 40) {
		n += snprintf(buf + n, size - (size_t)n, "%s{\"sku\":\"SKU-%04d\",\"qty\":%d}",
		              line ? "," : "", line, line + 1);
		line++;
	}
	snprintf(buf + n, size - (size_t)n, "]}}");
}

static void *publisher(void *arg)
{
	struct conn *c = arg;
	char *buf = malloc((size_t)opt.size + 64);
	char order_id[40], topic[160];
	double per_conn = opt.rate > 0 ? opt.rate / opt.conns : 0;
	uint64_t start = now_ns();
	while (!atomic_load(&stop)) {
		if (per_conn > 0) {
			uint64_t due = start + (uint64_t)((double)c->seq * 1e9 / per_conn);
			uint64_t now = now_ns();
			if (due > now) {
				struct timespec ts = {0, (long)(due - now)};
				nanosleep(&ts, NULL);
			}
		}
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_nsec += 100000000;
		if (dl.tv_nsec >= 1000000000) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000;
		}
		if (sem_timedwait(&c->window, &dl) != 0)
			continue;
		build_event(buf, (size_t)opt.size + 64, c, order_id);
		snprintf(topic, sizeof(topic), "%s/%s", opt.mqtt_prefix, order_id);
		int rc =
		    mosquitto_publish(c->m, NULL, topic, (int)strlen(buf), buf, opt.qos, false);
		if (rc != MOSQ_ERR_SUCCESS) {
			sem_post(&c->window);
			usleep(1000);
			continue;
		}
		c->seq++;
		atomic_fetch_add(&sent, 1);
	}
	free(buf);
	return NULL;
}

static void *kafka_consumer(void *arg)
{
	rd_kafka_t *rk = arg;
	while (!atomic_load(&stop)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (!m)
			continue;
		if (!m->err) {
			rd_kafka_headers_t *h = NULL;
			const void *v;
			size_t n;
			if (rd_kafka_message_headers(m, &h) == 0 &&
			    rd_kafka_header_get_last(h, "ce_id", &v, &n) == 0)
				record_latency(v, n);
		}
		rd_kafka_message_destroy(m);
	}
	return NULL;
}

static rd_kafka_t *kafka_start(void)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", opt.kafka, err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "group.id", "bench-loadgen", err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "fetch.wait.max.ms", opt.fetch_wait_ms, err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "fetch.error.backoff.ms", "1", err, sizeof(err))) {
		fprintf(stderr, "loadgen: %s\n", err);
		exit(2);
	}
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	if (!rk) {
		fprintf(stderr, "loadgen: %s\n", err);
		exit(2);
	}
	const rd_kafka_metadata_t *md;
	rd_kafka_topic_t *t = rd_kafka_topic_new(rk, opt.topic, NULL);
	if (rd_kafka_metadata(rk, 0, t, &md, 10000) || md->topic_cnt != 1 ||
	    md->topics[0].partition_cnt == 0) {
		fprintf(stderr, "loadgen: no metadata for topic %s\n", opt.topic);
		exit(2);
	}
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(8);
	for (int i = 0; i < md->topics[0].partition_cnt; i++)
		rd_kafka_topic_partition_list_add(parts, opt.topic, i)->offset =
		    RD_KAFKA_OFFSET_END;
	rd_kafka_metadata_destroy(md);
	rd_kafka_topic_destroy(t);
	if (rd_kafka_assign(rk, parts)) {
		fprintf(stderr, "loadgen: assign failed\n");
		exit(2);
	}
	rd_kafka_topic_partition_list_destroy(parts);
	return rk;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {{"host", 1, 0, 'h'},        {"port", 1, 0, 'p'},
	                                   {"conns", 1, 0, 'c'},       {"qos", 1, 0, 'q'},
	                                   {"seconds", 1, 0, 's'},     {"size", 1, 0, 'z'},
	                                   {"rate", 1, 0, 'r'},        {"kafka", 1, 0, 'k'},
	                                   {"topic", 1, 0, 't'},       {"window", 1, 0, 'w'},
	                                   {"sub", 0, 0, 'S'},         {"fetch-wait-ms", 1, 0, 'F'},
	                                   {"mqtt-prefix", 1, 0, 'P'}, {0, 0, 0, 0}};
	int o;
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 'h':
			opt.host = optarg;
			break;
		case 'p':
			opt.port = atoi(optarg);
			break;
		case 'c':
			opt.conns = atoi(optarg);
			break;
		case 'q':
			opt.qos = atoi(optarg);
			break;
		case 's':
			opt.seconds = atoi(optarg);
			break;
		case 'z':
			opt.size = atoi(optarg);
			break;
		case 'r':
			opt.rate = atof(optarg);
			break;
		case 'k':
			opt.kafka = optarg;
			break;
		case 't':
			opt.topic = optarg;
			break;
		case 'w':
			opt.window = atoi(optarg);
			break;
		case 'S':
			opt.sub = 1;
			break;
		case 'F':
			opt.fetch_wait_ms = optarg;
			break;
		case 'P':
			if (strlen(optarg) > 100) {
				fprintf(stderr, "loadgen: --mqtt-prefix: at most 100 characters\n");
				return 2;
			}
			opt.mqtt_prefix = optarg;
			break;
		default:
			fprintf(stderr, "see the comment at the top of bench/ingest/loadgen.c\n");
			return 2;
		}
	}
	if (opt.size < 256)
		opt.size = 256;
	samples = calloc(MAX_SAMPLES, sizeof(*samples));
	mosquitto_lib_init();

	rd_kafka_t *rk = NULL;
	pthread_t kthread, sthread_dummy;
	(void)sthread_dummy;
	if (opt.kafka) {
		rk = kafka_start();
		pthread_create(&kthread, NULL, kafka_consumer, rk);
		usleep(500000); /* let the assignment settle at the end offsets */
	}
	struct mosquitto *subm = NULL;
	if (opt.sub) {
		subm = mosquitto_new(NULL, true, NULL);
		mosquitto_message_callback_set(subm, on_message);
		if (mosquitto_connect(subm, opt.host, opt.port, 60) ||
		    mosquitto_subscribe(subm, NULL, "events/#", opt.qos) ||
		    mosquitto_loop_start(subm)) {
			fprintf(stderr, "loadgen: subscriber cannot connect\n");
			return 2;
		}
		usleep(200000);
	}

	struct conn *conns = calloc((size_t)opt.conns, sizeof(*conns));
	for (int i = 0; i < opt.conns; i++) {
		struct conn *c = &conns[i];
		c->idx = i;
		sem_init(&c->window, 0, (unsigned)opt.window);
		c->m = mosquitto_new(NULL, true, c);
		mosquitto_int_option(c->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
		mosquitto_publish_callback_set(c->m, on_publish);
		mosquitto_max_inflight_messages_set(c->m, (unsigned)opt.window);
		if (mosquitto_connect(c->m, opt.host, opt.port, 60) != MOSQ_ERR_SUCCESS ||
		    mosquitto_loop_start(c->m) != MOSQ_ERR_SUCCESS) {
			fprintf(stderr, "loadgen: cannot connect to %s:%d\n", opt.host, opt.port);
			return 2;
		}
	}
	usleep(200000);
	for (int i = 0; i < opt.conns; i++)
		pthread_create(&conns[i].thread, NULL, publisher, &conns[i]);
	sleep(1);
	uint64_t acked_at_start = atomic_load(&acked);
	uint64_t t0 = now_ns();
	sleep((unsigned)opt.seconds);
	uint64_t acked_at_end = atomic_load(&acked);
	uint64_t t1 = now_ns();
	atomic_store(&stop, true);
	for (int i = 0; i < opt.conns; i++)
		pthread_join(conns[i].thread, NULL);
	atomic_store(&stop, false);
	/* Let the tail reach Kafka / the subscriber before counting. */
	for (int i = 0;
	     i < 50 && (opt.kafka || opt.sub) && atomic_load(&received) < atomic_load(&sent); i++)
		usleep(100000);
	atomic_store(&stop, true);
	if (rk) {
		pthread_join(kthread, NULL);
		rd_kafka_consumer_close(rk);
		rd_kafka_destroy(rk);
	}
	for (int i = 0; i < opt.conns; i++) {
		mosquitto_disconnect(conns[i].m);
		mosquitto_loop_stop(conns[i].m, true);
		mosquitto_destroy(conns[i].m);
	}
	if (subm) {
		mosquitto_disconnect(subm);
		mosquitto_loop_stop(subm, true);
		mosquitto_destroy(subm);
	}
	double secs = (double)(t1 - t0) / 1e9;
	size_t n = atomic_load(&nsamples);
	if (n > MAX_SAMPLES)
		n = MAX_SAMPLES;
	qsort(samples, n, sizeof(*samples), cmp_u64);
	double p50 = n ? (double)samples[n / 2] / 1e6 : -1;
	double p99 = n ? (double)samples[(size_t)((double)n * 0.99)] / 1e6 : -1;
	printf("msgs_per_s=%.0f sent=%" PRIu64 " acked=%" PRIu64 " received=%" PRIu64
	       " p50_ms=%.3f p99_ms=%.3f\n",
	       (double)(acked_at_end - acked_at_start) / secs, atomic_load(&sent),
	       atomic_load(&acked), atomic_load(&received), p50, p99);
	mosquitto_lib_cleanup();
	return 0;
}
