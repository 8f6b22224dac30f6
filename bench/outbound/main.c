/*
 * Outbound benchmark tool (Kafka -> MQTT), driven by bench/outbound.sh.
 *
 *   outbound produce     --brokers B --topic T --count N [--size 200]
 *       N records as fast as librdkafka takes them (keys u0..u63), flushed.
 *   outbound kafka-rate  --brokers B --topic T --count N
 *       a plain librdkafka consumer (new group, earliest) reads N records:
 *       the Kafka ceiling. Prints msgs_per_s.
 *   outbound mqtt-rate   --port P --filter F --count N [--timeout 120]
 *       a libmosquitto subscriber counts N messages; msgs_per_s from the
 *       first to the last.
 *   outbound latency     --brokers B --topic T --rate R --seconds S
 *                        (--port P --filter F | --kafka)
 *       produces R records/s, each carrying its send time (CLOCK_MONOTONIC),
 *       and measures send -> receipt at an MQTT subscriber or, with
 *       --kafka, at a plain librdkafka consumer. Prints p50_ms p99_ms.
 *       Records of the first --warmup-ms (500) are delivered but not
 *       counted: the first moments of a new producer and subscriber are
 *       start-up, not the steady state (same for both paths).
 *
 * --fetch-wait MS: the plain consumer's fetch.wait.max.ms (100).
 * Output: one line of key=value pairs.
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <mosquitto.h>

#define MAX_SAMPLES 2000000

static struct {
	const char *brokers, *topic, *filter, *host, *fetch_wait;
	int port, size, seconds, timeout, warmup_ms;
	long count, warmup; /* records not counted in the latency */
	double rate;
	bool kafka;
} opt = {"127.0.0.1:9092",
         "bench.out",
         "sandbox/bench/#",
         "127.0.0.1",
         "100",
         1883,
         200,
         5,
         120,
         500,
         100000,
         0,
         1000,
         false};

static atomic_long received;
static atomic_bool done;
static uint64_t first_ns, last_ns;
static uint64_t *samples;
static atomic_size_t nsamples;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, "outbound-bench: %s: %s\n", what, why);
	exit(1);
}

/* Payload: "<send ns> <seq> " then padding to opt.size. */
static void on_payload(const void *p, size_t len)
{
	uint64_t now = now_ns();
	char buf[32];
	size_t n = len < sizeof(buf) - 1 ? len : sizeof(buf) - 1;
	memcpy(buf, p, n);
	buf[n] = '\0';
	char *end;
	uint64_t t = strtoull(buf, &end, 10);
	long seq = strtol(end, NULL, 10);
	long r = atomic_fetch_add(&received, 1) + 1;
	if (r == 1)
		first_ns = now;
	last_ns = now;
	if (t && now > t && seq >= opt.warmup) {
		size_t i = atomic_fetch_add(&nsamples, 1);
		if (i < MAX_SAMPLES)
			samples[i] = now - t;
	}
	if (opt.count > 0 && r >= opt.count && !opt.seconds)
		atomic_store(&done, true);
}

static atomic_long delivered, failed;
static char last_error[256];

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (m->err) {
		atomic_fetch_add(&failed, 1);
		snprintf(last_error, sizeof(last_error), "%s", rd_kafka_err2str(m->err));
	} else {
		atomic_fetch_add(&delivered, 1);
	}
}

static rd_kafka_t *kafka_new(rd_kafka_type_t type, const char *group)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", opt.brokers, err, sizeof(err)) ||
	    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof(err)))
		die("conf", err);
	if (type == RD_KAFKA_PRODUCER) {
		/* linger 0: a record is in Kafka as soon as possible, so that the
		 * latency is mostly the consumer side's. */
		if (rd_kafka_conf_set(conf, "linger.ms", opt.seconds ? "0" : "5", err,
		                      sizeof(err)) ||
		    rd_kafka_conf_set(conf, "max.in.flight.requests.per.connection", "1", err,
		                      sizeof(err)) ||
		    rd_kafka_conf_set(conf, "queue.buffering.max.messages", "1000000", err,
		                      sizeof(err)))
			die("conf", err);
		rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	} else {
		if (rd_kafka_conf_set(conf, "group.id", group, err, sizeof(err)) ||
		    rd_kafka_conf_set(conf, "auto.offset.reset",
		                      opt.seconds ? "latest" : "earliest", err, sizeof(err)) ||
		    rd_kafka_conf_set(conf, "enable.auto.commit", "false", err, sizeof(err)) ||
		    rd_kafka_conf_set(conf, "fetch.wait.max.ms", opt.fetch_wait, err, sizeof(err)))
			die("conf", err);
	}
	rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
	if (!rk)
		die("rd_kafka_new", err);
	return rk;
}

static void produce_one(rd_kafka_t *rk, long seq, char *buf)
{
	char key[8];
	int n = snprintf(buf, (size_t)opt.size, "%" PRIu64 " %ld ", now_ns(), seq);
	if (n < opt.size)
		memset(buf + n, 'x', (size_t)(opt.size - n));
	snprintf(key, sizeof(key), "u%ld", seq % 64);
	for (;;) {
		rd_kafka_resp_err_t err = rd_kafka_producev(
		    rk, RD_KAFKA_V_TOPIC(opt.topic), RD_KAFKA_V_KEY(key, strlen(key)),
		    RD_KAFKA_V_VALUE(buf, (size_t)opt.size),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
		if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
			rd_kafka_poll(rk, 10);
			continue;
		}
		if (err)
			die("produce", rd_kafka_err2str(err));
		break;
	}
	rd_kafka_poll(rk, 0);
}

static int cmd_produce(void)
{
	rd_kafka_t *rk = kafka_new(RD_KAFKA_PRODUCER, NULL);
	char *buf = malloc((size_t)opt.size + 1);
	uint64_t t0 = now_ns();
	for (long i = 0; i < opt.count; i++)
		produce_one(rk, i, buf);
	if (rd_kafka_flush(rk, 60000))
		die("flush", "records not delivered");
	double s = (double)(now_ns() - t0) / 1e9;
	if (atomic_load(&failed)) {
		fprintf(stderr, "outbound-bench: %ld records not delivered: %s\n",
		        atomic_load(&failed), last_error);
		return 1;
	}
	printf("produced=%ld msgs_per_s=%.0f\n", atomic_load(&delivered), (double)opt.count / s);
	free(buf);
	rd_kafka_destroy(rk);
	return 0;
}

static void *consume_thread(void *arg)
{
	rd_kafka_t *rk = arg;
	while (!atomic_load(&done)) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (!m)
			continue;
		if (!m->err)
			on_payload(m->payload, m->len);
		rd_kafka_message_destroy(m);
	}
	return NULL;
}

static rd_kafka_t *consumer_start(pthread_t *th)
{
	char group[64];
	snprintf(group, sizeof(group), "bench-%" PRIu64, now_ns());
	rd_kafka_t *rk = kafka_new(RD_KAFKA_CONSUMER, group);
	rd_kafka_poll_set_consumer(rk);
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(l, opt.topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t err = rd_kafka_subscribe(rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (err)
		die("subscribe", rd_kafka_err2str(err));
	pthread_create(th, NULL, consume_thread, rk);
	return rk;
}

static void consumer_stop(rd_kafka_t *rk, pthread_t th)
{
	atomic_store(&done, true);
	pthread_join(th, NULL);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
}

static void wait_count(void)
{
	uint64_t deadline = now_ns() + (uint64_t)opt.timeout * 1000000000u;
	while (atomic_load(&received) < opt.count && now_ns() < deadline)
		usleep(1000);
}

static int cmd_kafka_rate(void)
{
	pthread_t th;
	rd_kafka_t *rk = consumer_start(&th);
	wait_count();
	long got = atomic_load(&received);
	consumer_stop(rk, th);
	double s = (double)(last_ns - first_ns) / 1e9;
	printf("received=%ld msgs_per_s=%.0f\n", got, got > 1 && s > 0 ? (double)got / s : 0.0);
	return got >= opt.count ? 0 : 1;
}

static void on_connect(struct mosquitto *m, void *ud, int rc)
{
	(void)ud;
	if (rc)
		die("mqtt connect", mosquitto_connack_string(rc));
	mosquitto_subscribe(m, NULL, opt.filter, 0);
}

static atomic_bool subscribed;
static void on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *q)
{
	(void)m;
	(void)ud;
	(void)mid;
	(void)n;
	(void)q;
	atomic_store(&subscribed, true);
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
	(void)m;
	(void)ud;
	on_payload(msg->payload, (size_t)msg->payloadlen);
}

static struct mosquitto *mqtt_start(void)
{
	mosquitto_lib_init();
	struct mosquitto *m = mosquitto_new(NULL, true, NULL);
	if (!m)
		die("mosquitto_new", "out of memory");
	mosquitto_connect_callback_set(m, on_connect);
	mosquitto_subscribe_callback_set(m, on_subscribe);
	mosquitto_message_callback_set(m, on_message);
	int rc = mosquitto_connect(m, opt.host, opt.port, 60);
	if (rc)
		die("mosquitto_connect", mosquitto_strerror(rc));
	mosquitto_loop_start(m);
	for (int i = 0; i < 500 && !atomic_load(&subscribed); i++)
		usleep(10000);
	if (!atomic_load(&subscribed))
		die("mqtt", "no SUBACK");
	return m;
}

static void mqtt_stop(struct mosquitto *m)
{
	mosquitto_disconnect(m);
	mosquitto_loop_stop(m, false);
	mosquitto_destroy(m);
	mosquitto_lib_cleanup();
}

static int cmd_mqtt_rate(void)
{
	struct mosquitto *m = mqtt_start();
	printf("subscribed\n");
	fflush(stdout);
	wait_count();
	long got = atomic_load(&received);
	mqtt_stop(m);
	double s = (double)(last_ns - first_ns) / 1e9;
	printf("received=%ld msgs_per_s=%.0f\n", got, got > 1 && s > 0 ? (double)got / s : 0.0);
	return got >= opt.count ? 0 : 1;
}

static int cmd_latency(void)
{
	struct mosquitto *m = NULL;
	pthread_t th;
	rd_kafka_t *consumer = NULL;
	if (opt.kafka) {
		consumer = consumer_start(&th);
		sleep(4); /* group join: "latest" must be resolved before we send */
	} else {
		m = mqtt_start();
	}
	rd_kafka_t *p = kafka_new(RD_KAFKA_PRODUCER, NULL);
	char *buf = malloc((size_t)opt.size + 1);
	opt.warmup = (long)(opt.rate * opt.warmup_ms / 1000);
	long total = (long)(opt.rate * opt.seconds) + opt.warmup;
	uint64_t t0 = now_ns();
	for (long i = 0; i < total; i++) {
		uint64_t due = t0 + (uint64_t)((double)i * 1e9 / opt.rate);
		uint64_t now;
		while ((now = now_ns()) < due) {
			uint64_t gap = due - now;
			if (gap > 200000)
				usleep((useconds_t)(gap / 2000));
			rd_kafka_poll(p, 0);
		}
		produce_one(p, i, buf);
	}
	rd_kafka_flush(p, 30000);
	uint64_t deadline = now_ns() + 5000000000u;
	while (atomic_load(&received) < total && now_ns() < deadline)
		usleep(1000);
	long got = atomic_load(&received);
	if (opt.kafka)
		consumer_stop(consumer, th);
	else
		mqtt_stop(m);
	rd_kafka_destroy(p);
	free(buf);
	size_t n = atomic_load(&nsamples);
	if (n > MAX_SAMPLES)
		n = MAX_SAMPLES;
	qsort(samples, n, sizeof(*samples), cmp_u64);
	double p50 = n ? (double)samples[n / 2] / 1e6 : -1;
	double p99 = n ? (double)samples[(size_t)((double)n * 0.99)] / 1e6 : -1;
	double max = n ? (double)samples[n - 1] / 1e6 : -1;
	printf("sent=%ld received=%ld p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", total, got, p50, p99,
	       max);
	return got >= total ? 0 : 1;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {{"brokers", required_argument, 0, 'b'},
	                                         {"topic", required_argument, 0, 't'},
	                                         {"count", required_argument, 0, 'n'},
	                                         {"size", required_argument, 0, 's'},
	                                         {"port", required_argument, 0, 'p'},
	                                         {"filter", required_argument, 0, 'f'},
	                                         {"rate", required_argument, 0, 'r'},
	                                         {"seconds", required_argument, 0, 'S'},
	                                         {"timeout", required_argument, 0, 'T'},
	                                         {"kafka", no_argument, 0, 'k'},
	                                         {"fetch-wait", required_argument, 0, 'w'},
	                                         {"warmup-ms", required_argument, 0, 'W'},
	                                         {0, 0, 0, 0}};
	if (argc < 2) {
		fprintf(stderr, "usage: outbound produce|kafka-rate|mqtt-rate|latency [options]\n");
		return 2;
	}
	const char *cmd = argv[1];
	int c;
	optind = 2;
	opt.seconds = 0;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'b':
			opt.brokers = optarg;
			break;
		case 't':
			opt.topic = optarg;
			break;
		case 'n':
			opt.count = atol(optarg);
			break;
		case 's':
			opt.size = atoi(optarg) < 32 ? 32 : atoi(optarg);
			break;
		case 'p':
			opt.port = atoi(optarg);
			break;
		case 'f':
			opt.filter = optarg;
			break;
		case 'r':
			opt.rate = atof(optarg);
			break;
		case 'S':
			opt.seconds = atoi(optarg);
			break;
		case 'T':
			opt.timeout = atoi(optarg);
			break;
		case 'k':
			opt.kafka = true;
			break;
		case 'w':
			opt.fetch_wait = optarg;
			break;
		case 'W':
			opt.warmup_ms = atoi(optarg);
			break;
		default:
			return 2;
		}
	}
	samples = calloc(MAX_SAMPLES, sizeof(*samples));
	if (!samples)
		die("samples", "out of memory");
	if (!strcmp(cmd, "produce"))
		return cmd_produce();
	if (!strcmp(cmd, "kafka-rate"))
		return cmd_kafka_rate();
	if (!strcmp(cmd, "mqtt-rate"))
		return cmd_mqtt_rate();
	if (!strcmp(cmd, "latency")) {
		if (opt.seconds <= 0)
			opt.seconds = 5;
		return cmd_latency();
	}
	fprintf(stderr, "outbound-bench: unknown command %s\n", cmd);
	return 2;
}
