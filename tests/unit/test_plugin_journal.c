/*
 * The plugin's journal glue (mosquitto-plugin/journal_glue.c) and the
 * configuration errors of the sections other than "ingest", without a
 * running broker.
 *
 * Linked with every plugin object, plugin.c included (see the Makefile): the
 * test loads the plugin through mosquitto_plugin_init with a configuration
 * file, as Mosquitto does, and produces through produce__event, which is what
 * the MESSAGE callback calls once an event is accepted (before its PUBACK).
 *
 * Test doubles: the Mosquitto broker API functions that the plugin calls
 * (mosquitto_log_printf, mosquitto_broker_publish, mosquitto_callback_register,
 * ...) are defined here, at link time; they record what they are given (the
 * log lines, the retained $SYS values) so that the test checks them. The unit
 * under test is the glue, not Mosquitto; the integration tests run the real
 * broker (reliability-journal*, journal-*, config-errors).
 *
 * Kafka is real: the plugin's librdkafka producer talks to librdkafka's mock
 * cluster, in process (rd_kafka_mock_cluster_new), deliberately: its fault
 * injection (rd_kafka_mock_push_request_errors) answers Produce requests with
 * a permanent error, which is what sends a delivery to the glue's retry
 * thread, and a broker can be set down or slowed. What reached Kafka is read
 * back with a librdkafka consumer.
 */
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../mosquitto-plugin/tributary.h"
#include <librdkafka/rdkafka_mock.h>
#include "tributary/journal.h"

/* ---- Mosquitto broker API: test doubles that record ------------------- */

static pthread_mutex_t doubles_lock = PTHREAD_MUTEX_INITIALIZER;
static char logged[1 << 16]; /* every log line, newline-separated */

void mosquitto_log_printf(int level, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	(void)level;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&doubles_lock);
	size_t len = strlen(logged);
	snprintf(logged + len, sizeof(logged) - len, "%s\n", line);
	pthread_mutex_unlock(&doubles_lock);
}

void *mosquitto_malloc(size_t size)
{
	return malloc(size);
}

void mosquitto_free(void *mem)
{
	free(mem);
}

/* The retained $SYS values, the latest of each topic. */
#define SYS_MAX 128
static struct {
	char topic[128];
	char value[32];
} sys[SYS_MAX];
static size_t nsys;

int mosquitto_broker_publish(const char *clientid, const char *topic, int payloadlen, void *payload,
                             int qos, bool retain, mosquitto_property *properties)
{
	(void)clientid;
	(void)qos;
	(void)properties;
	assert_true(retain);
	pthread_mutex_lock(&doubles_lock);
	size_t i = 0;
	while (i < nsys && strcmp(sys[i].topic, topic))
		i++;
	assert_true(i < SYS_MAX);
	if (i == nsys)
		snprintf(sys[nsys++].topic, sizeof(sys[0].topic), "%s", topic);
	snprintf(sys[i].value, sizeof(sys[i].value), "%.*s", payloadlen, (char *)payload);
	pthread_mutex_unlock(&doubles_lock);
	free(payload); /* the broker owns it on success */
	return MOSQ_ERR_SUCCESS;
}

static const char *sys_value(const char *topic)
{
	for (size_t i = 0; i < nsys; i++)
		if (!strcmp(sys[i].topic, topic))
			return sys[i].value;
	return "(not published)";
}

int mosquitto_callback_register(mosquitto_plugin_id_t *identifier, int event,
                                MOSQ_FUNC_generic_callback cb_func, const void *event_data,
                                void *userdata)
{
	(void)identifier;
	(void)event;
	(void)cb_func;
	(void)event_data;
	(void)userdata;
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_callback_unregister(mosquitto_plugin_id_t *identifier, int event,
                                  MOSQ_FUNC_generic_callback cb_func, const void *event_data)
{
	(void)identifier;
	(void)event;
	(void)cb_func;
	(void)event_data;
	return MOSQ_ERR_SUCCESS;
}

/* Never reached here (no client connects); defined for the link. */
const char *mosquitto_client_address(const struct mosquitto *client)
{
	(void)client;
	fail_msg("unexpected mosquitto_client_address");
	return NULL;
}
bool mosquitto_client_clean_session(const struct mosquitto *client)
{
	(void)client;
	fail_msg("unexpected mosquitto_client_clean_session");
	return false;
}
const char *mosquitto_client_id(const struct mosquitto *client)
{
	(void)client;
	fail_msg("unexpected mosquitto_client_id");
	return NULL;
}
int mosquitto_client_protocol_version(const struct mosquitto *client)
{
	(void)client;
	fail_msg("unexpected mosquitto_client_protocol_version");
	return 0;
}
const char *mosquitto_client_username(const struct mosquitto *client)
{
	(void)client;
	fail_msg("unexpected mosquitto_client_username");
	return NULL;
}
int mosquitto_kick_client_by_clientid(const char *clientid, bool with_will)
{
	(void)clientid;
	(void)with_will;
	fail_msg("unexpected mosquitto_kick_client_by_clientid");
	return 0;
}

/* ---- fixture: the mock cluster, a directory, the plugin ---------------- */

#define TOPIC "events.order"
#define PRODUCE_API_KEY 0 /* Kafka's Produce request */

struct fixture {
	rd_kafka_t *mock_rk; /* owns the mock cluster */
	rd_kafka_mock_cluster_t *mc;
	char dir[PATH_MAX];
	char config[PATH_MAX + 32];
	void *plugin; /* mosquitto_plugin_init's userdata: struct tributary */
	int ev_id;
};

static int setup(void **state)
{
	char err[512];
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_plugin_journal.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->config, sizeof(f->config), "%s/tributary.json", f->dir);
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	assert_int_equal(rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err)),
	                 RD_KAFKA_CONF_OK);
	f->mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
	assert_non_null(f->mock_rk);
	f->mc = rd_kafka_mock_cluster_new(f->mock_rk, 1);
	assert_non_null(f->mc);
	/* One partition: the order of a key's events is the partition's. */
	assert_int_equal(rd_kafka_mock_topic_create(f->mc, TOPIC, 1, 1), 0);
	pthread_mutex_lock(&doubles_lock);
	logged[0] = '\0';
	nsys = 0;
	pthread_mutex_unlock(&doubles_lock);
	*state = f;
	return 0;
}

static void plugin_unload(struct fixture *f)
{
	if (f->plugin)
		assert_int_equal(mosquitto_plugin_cleanup(f->plugin, NULL, 0), MOSQ_ERR_SUCCESS);
	f->plugin = NULL;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[PATH_MAX + 16];
	plugin_unload(f);
	rd_kafka_mock_cluster_destroy(f->mc);
	rd_kafka_destroy(f->mock_rk);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* `text` with @CATALOG@ the repository's catalog, @BOOTSTRAP@ the mock
 * cluster's bootstrap servers and @DIR@ the test's directory. */
static void expand(struct fixture *f, const char *text, char *out, size_t outlen)
{
	char catalog[PATH_MAX];
	const struct {
		const char *name, *value;
	} vars[] = {{"@CATALOG@", catalog},
	            {"@BOOTSTRAP@", rd_kafka_mock_cluster_bootstraps(f->mc)},
	            {"@DIR@", f->dir}};
	size_t n = 0;
	assert_non_null(realpath("schemas/catalog.json", catalog));
	while (*text) {
		size_t i = 0;
		while (i < 3 && strncmp(text, vars[i].name, strlen(vars[i].name)))
			i++;
		const char *add = i < 3 ? vars[i].value : text;
		size_t len = i < 3 ? strlen(add) : 1;
		assert_true(n + len < outlen);
		memcpy(out + n, add, len);
		n += len;
		text += i < 3 ? strlen(vars[i].name) : 1;
	}
	out[n] = '\0';
}

static void write_config(struct fixture *f, const char *text)
{
	char json[8192];
	expand(f, text, json, sizeof(json));
	FILE *fp = fopen(f->config, "w");
	assert_non_null(fp);
	fputs(json, fp);
	assert_int_equal(fclose(fp), 0);
}

static int plugin_load(struct fixture *f)
{
	struct mosquitto_opt opt = {.key = "config", .value = f->config};
	static int identifier;
	pthread_mutex_lock(&doubles_lock);
	logged[0] = '\0';
	pthread_mutex_unlock(&doubles_lock);
	return mosquitto_plugin_init((mosquitto_plugin_id_t *)&identifier, &f->plugin, &opt, 1);
}

/* A cluster "main" on the mock, a journal with a short retry backoff. */
#define JOURNAL_CONFIG                                                                             \
	"{\"catalog\": \"@CATALOG@\", \"clusters\": {\"main\": {\"bootstrap.servers\": "           \
	"\"@BOOTSTRAP@\","                                                                         \
	" \"linger.ms\": 1, \"max.in.flight.requests.per.connection\": 1}},"                       \
	" \"ingest\": {\"routes\": []}, \"shutdown\": {\"flush_timeout_ms\": 200},"                \
	" \"journal\": {\"dir\": \"@DIR@/journal\", \"sync\": \"never\","                          \
	" \"retry_backoff_ms\": 300, \"retry_backoff_max_ms\": 1000}}"
#define BACKOFF_MS 300
#define BACKOFF_MAX_MS 1000

static struct tributary *plugin_start(struct fixture *f)
{
	write_config(f, JOURNAL_CONFIG);
	if (plugin_load(f) != MOSQ_ERR_SUCCESS)
		fail_msg("the plugin did not start: %s", logged);
	return f->plugin;
}

/* produce__event, as the MESSAGE callback calls it for an accepted event:
 * the value is the event's data, "<key>-<n>". */
static void send_event(struct fixture *f, struct tributary *tb, const char *key, int n)
{
	char json[256], err[512];
	tb_event ev;
	enum tbp_reject_reason why;
	snprintf(json, sizeof(json),
	         "{\"specversion\": \"1.0\", \"id\": \"%d\", \"source\": \"/t\", \"type\": "
	         "\"x.y\", \"datacontenttype\": \"text/plain\", \"data\": \"%s-%d\"}",
	         ++f->ev_id, key, n);
	memset(&ev, 0, sizeof(ev));
	if (tb_ce_parse_structured(json, strlen(json), &ev, err, sizeof(err)) != TB_CE_OK ||
	    tb_ce_complete(&ev, err, sizeof(err)) != TB_CE_OK)
		fail_msg("bad test event %s: %s", json, err);
	struct tbp_origin origin = {.topic = "events/order/1", .client_id = "c1", .qos = 1};
	if (produce__event(tb, &tb->clusters[0], TOPIC, key, strlen(key), TBP_MODE_BINARY, 0, &ev,
	                   &origin, true, &why, err, sizeof(err)))
		fail_msg("produce__event refused %s: %s", json, err);
	tb_event_clear(&ev);
}

static uint64_t journal_depth(struct tributary *tb)
{
	tjournal_stats st;
	tjournal_get_stats(tb->journal, &st);
	return st.depth;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Waits up to 20 s for `cond`, polling every 5 ms. */
#define WAIT_FOR(cond, what)                                                                       \
	do {                                                                                       \
		long long until_ = now_ms() + 20000;                                               \
		while (!(cond) && now_ms() < until_)                                               \
			usleep(5000);                                                              \
		if (!(cond))                                                                       \
			fail_msg("timed out waiting for %s; log:\n%s", what, logged);              \
	} while (0)

/* Every record of TOPIC that the mock cluster holds, values in order; at
 * least `want` of them (waits for them). */
static size_t kafka_values(struct fixture *f, char values[][32], size_t max, size_t want)
{
	char err[512];
	size_t n = 0;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	assert_int_equal(rd_kafka_conf_set(conf, "bootstrap.servers",
	                                   rd_kafka_mock_cluster_bootstraps(f->mc), err,
	                                   sizeof(err)),
	                 RD_KAFKA_CONF_OK);
	assert_int_equal(rd_kafka_conf_set(conf, "group.id", "test", err, sizeof(err)),
	                 RD_KAFKA_CONF_OK);
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof(err));
	assert_non_null(rk);
	rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(parts, TOPIC, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
	assert_int_equal(rd_kafka_assign(rk, parts), 0);
	rd_kafka_topic_partition_list_destroy(parts);
	long long until = now_ms() + 10000;
	/* Past `want`, a second more for any duplicate. */
	while (now_ms() < until) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
		if (!m)
			continue;
		if (!m->err) {
			assert_true(n < max);
			snprintf(values[n++], 32, "%.*s", (int)m->len, (const char *)m->payload);
			if (n == want)
				until = now_ms() + 1000;
		}
		rd_kafka_message_destroy(m);
	}
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	return n;
}

/* Every event "<key>-<n>" for keys a, b, c and n < per_key reached Kafka,
 * each key's in order (a duplicate may follow: at least once). */
static void check_kafka(struct fixture *f, int per_key)
{
	static char values[1024][32];
	const char *keys[] = {"a", "b", "c"};
	size_t n = kafka_values(f, values, 1024, 3 * (size_t)per_key);
	for (int k = 0; k < 3; k++) {
		int next = 0; /* the first event of this key not yet seen */
		for (size_t i = 0; i < n; i++) {
			int seen;
			if (values[i][0] != keys[k][0] || sscanf(values[i] + 2, "%d", &seen) != 1)
				continue;
			if (seen > next)
				fail_msg("key %s: event %d reached Kafka before event %d", keys[k],
				         seen, next);
			if (seen == next)
				next++;
		}
		if (next != per_key)
			fail_msg("key %s: %d of %d events reached Kafka", keys[k], next, per_key);
	}
}

/* Produces events n0 <= n < n1 of keys a, b and c, interleaved, 3 ms
 * apart: with Kafka's answers 20 ms late, a Produce request carries the
 * first few, and the later ones wait behind it in librdkafka's queue. */
static void send_events(struct fixture *f, struct tributary *tb, int n0, int n1)
{
	const char *keys[] = {"a", "b", "c"};
	for (int n = n0; n < n1; n++) {
		for (int k = 0; k < 3; k++)
			send_event(f, tb, keys[k], n);
		usleep(3000);
	}
}

static void push_produce_errors(struct fixture *f, size_t cnt)
{
	rd_kafka_resp_err_t errs[8];
	assert_true(cnt <= 8);
	for (size_t i = 0; i < cnt; i++)
		errs[i] = RD_KAFKA_RESP_ERR_INVALID_RECORD; /* permanent */
	rd_kafka_mock_push_request_errors_array(f->mc, PRODUCE_API_KEY, cnt, errs);
}

/* Waits for the cluster to retry (a delivery failed for good): the time. */
static long long wait_retrying(struct tributary *tb)
{
	WAIT_FOR(atomic_load(&tb->stats.delivery_failed) >= 1 &&
	             atomic_load(&tb->clusters[0].retrying),
	         "a failed delivery");
	return now_ms();
}

static void wait_drained(struct tributary *tb)
{
	WAIT_FOR(!atomic_load(&tb->clusters[0].retrying) && journal_depth(tb) == 0,
	         "the journal to drain");
}

/* ---- appended before PUBACK, released by the delivery report ----------- */

static void test_released_on_delivery_report(void **state)
{
	struct fixture *f = *state;
	struct tributary *tb = plugin_start(f);
	/* Kafka answers 300 ms late: the event waits in the journal meanwhile. */
	assert_int_equal(rd_kafka_mock_broker_set_rtt(f->mc, 1, 300), 0);
	send_event(f, tb, "a", 0);
	send_event(f, tb, "b", 0);
	send_event(f, tb, "c", 0);
	assert_int_equal(journal_depth(tb), 3);
	assert_int_equal(atomic_load(&tb->stats.produced), 0);
	stats__publish(tb);
	assert_string_equal(sys_value("$SYS/tributary/journal/depth"), "3");
	WAIT_FOR(atomic_load(&tb->stats.produced) == 3, "the delivery reports");
	WAIT_FOR(journal_depth(tb) == 0, "the journal to release the events");
	stats__publish(tb);
	assert_string_equal(sys_value("$SYS/tributary/journal/depth"), "0");
	assert_string_equal(sys_value("$SYS/tributary/produced"), "3");
	assert_string_equal(sys_value("$SYS/tributary/retried"), "0");
	assert_string_equal(sys_value("$SYS/tributary/replayed"), "0");
	assert_string_equal(sys_value("$SYS/tributary/journal/retrying"), "0");
	check_kafka(f, 1);
}

/* A refused Produce request keeps the event in the journal. */
static void test_failed_delivery_stays_in_journal(void **state)
{
	struct fixture *f = *state;
	struct tributary *tb = plugin_start(f);
	/* Every Produce request fails for good, for a while. */
	push_produce_errors(f, 8);
	send_event(f, tb, "a", 0);
	wait_retrying(tb);
	assert_int_equal(journal_depth(tb), 1);
	stats__publish(tb);
	assert_string_equal(sys_value("$SYS/tributary/journal/depth"), "1");
	assert_string_equal(sys_value("$SYS/tributary/journal/retrying"), "1");
	assert_string_equal(sys_value("$SYS/tributary/delivery_failures"), "1");
	assert_int_equal(atomic_load(&tb->stats.produced), 0);
	/* The tick drains the failures that other threads noted into the log. */
	stats__on_tick(0, NULL, tb);
	char line[512];
	snprintf(line, sizeof(line),
	         "tributary: cluster main: delivery to events.order failed: %s (kept in the "
	         "journal, produced again)\n",
	         rd_kafka_err2str(RD_KAFKA_RESP_ERR_INVALID_RECORD));
	if (!strstr(logged, line))
		fail_msg("log: %s", logged);
}

/* ---- a failed delivery, produced again from the journal ---------------- */

static void test_retry_with_backoff_in_key_order(void **state)
{
	struct fixture *f = *state;
	struct tributary *tb = plugin_start(f);
	/* Responses 20 ms late, one request in flight: events queue behind a
	 * failed request (taken back, produced again after it). */
	assert_int_equal(rd_kafka_mock_broker_set_rtt(f->mc, 1, 20), 0);

	/* One Produce request fails for good. */
	push_produce_errors(f, 1);
	send_events(f, tb, 0, 10);
	long long failed_at = wait_retrying(tb);
	/* While the cluster retries, new events are journaled, not produced:
	 * they reach Kafka after the failed ones, not during the backoff. */
	send_events(f, tb, 10, 20);
	stats__publish(tb);
	assert_string_equal(sys_value("$SYS/tributary/journal/retrying"), "1");
	WAIT_FOR(atomic_load(&tb->stats.retried) >= 1, "the first retry");
	long long retried_at = now_ms();
	/* The first round waits retry_backoff_ms (the failure was seen up to
	 * one poll, 5 ms, late). */
	if (retried_at - failed_at < BACKOFF_MS - 10)
		fail_msg("retried %lld ms after the failure, before the %d ms backoff",
		         retried_at - failed_at, BACKOFF_MS);
	wait_drained(tb);
	check_kafka(f, 20);
	stats__publish(tb);
	assert_string_equal(sys_value("$SYS/tributary/journal/depth"), "0");
	assert_string_equal(sys_value("$SYS/tributary/journal/retrying"), "0");
	unsigned long long retried = strtoull(sys_value("$SYS/tributary/retried"), NULL, 10);
	if (retried < 1 || retried != atomic_load(&tb->stats.retried))
		fail_msg("$SYS/tributary/retried: %s", sys_value("$SYS/tributary/retried"));

	/* Three consecutive requests fail for good: the first and the next two
	 * rounds fail; the backoff doubles each round, up to
	 * retry_backoff_max_ms: 300 + 600 + 1000 ms before the round that
	 * succeeds. */
	push_produce_errors(f, 3);
	send_events(f, tb, 20, 30);
	failed_at = wait_retrying(tb);
	wait_drained(tb);
	long long drained_at = now_ms();
	if (drained_at - failed_at < BACKOFF_MS + 2 * BACKOFF_MS + BACKOFF_MAX_MS - 10)
		fail_msg("three failed rounds over in %lld ms: no exponential backoff",
		         drained_at - failed_at);
	check_kafka(f, 30);
	stats__publish(tb);
	assert_string_equal(sys_value("$SYS/tributary/journal/depth"), "0");
	assert_string_equal(sys_value("$SYS/tributary/journal/retrying"), "0");
	assert_string_equal(sys_value("$SYS/tributary/replayed"), "0");
	assert_int_not_equal(strcmp(sys_value("$SYS/tributary/delivery_failures"), "0"), 0);
	if (strtoull(sys_value("$SYS/tributary/retried"), NULL, 10) <= retried)
		fail_msg("$SYS/tributary/retried: %s", sys_value("$SYS/tributary/retried"));
}

/* ---- replay at start ----------------------------------------------------- */

static void test_replay_at_start(void **state)
{
	struct fixture *f = *state;
	const char *keys[] = {"a", "b", "c"};
	/* Kafka unreachable: the events stay in the journal past the stop. */
	assert_int_equal(rd_kafka_mock_broker_set_down(f->mc, 1), 0);
	struct tributary *tb = plugin_start(f);
	for (int n = 0; n < 5; n++)
		for (int k = 0; k < 3; k++)
			send_event(f, tb, keys[k], n);
	assert_int_equal(journal_depth(tb), 15);
	plugin_unload(f);

	assert_int_equal(rd_kafka_mock_broker_set_up(f->mc, 1), 0);
	tb = plugin_start(f);
	char notice[PATH_MAX + 128];
	snprintf(notice, sizeof(notice),
	         "tributary: journal %s/journal (sync never): 15 unconfirmed events to produce "
	         "again\n",
	         f->dir);
	assert_non_null(strstr(logged, notice));
	assert_non_null(strstr(logged, "tributary: journal: producing 15 unconfirmed events "
	                               "again\n"));
	assert_int_equal(atomic_load(&tb->stats.replayed), 15);
	WAIT_FOR(journal_depth(tb) == 0, "the replayed events' delivery reports");
	check_kafka(f, 5);
	stats__publish(tb);
	assert_string_equal(sys_value("$SYS/tributary/replayed"), "15");
	assert_string_equal(sys_value("$SYS/tributary/produced"), "15");
	assert_string_equal(sys_value("$SYS/tributary/journal/depth"), "0");
	assert_string_equal(sys_value("$SYS/tributary/retried"), "0");
}

/* ---- configuration errors ---------------------------------------------- */

#define CATALOG "\"catalog\": \"@CATALOG@\""
#define CLUSTER "\"clusters\": {\"main\": {\"bootstrap.servers\": \"@BOOTSTRAP@\"}}"
#define BASE CATALOG ", " CLUSTER ", \"ingest\": {\"routes\": []}"
#define ROUTE "{\"match\": \"events/{aggregate}/{id}\", \"topic\": \"events.{aggregate}\"}"

static void test_config_errors_name_the_option(void **state)
{
	static const struct {
		const char *json, *log;
	} cases[] = {
	    /* the file and its other small sections */
	    {"{" BASE ", \"colour\": 1}", "config: config.colour: unknown option"},
	    {"{" CLUSTER ", \"ingest\": {\"routes\": []}}",
	     "config: catalog: must be the path of the schema catalog (catalog.json)"},
	    {"{" BASE ", \"stats\": {\"sys_interval\": -1}}",
	     "config: stats.sys_interval: must be 0 (off) to 86400 seconds"},
	    {"{" BASE ", \"shutdown\": {\"flush_timeout_ms\": 600001}}",
	     "config: shutdown.flush_timeout_ms: must be 0 to 600000"},
	    /* journal */
	    {"{" BASE ", \"journal\": []}", "config: journal: must be an object"},
	    {"{" BASE ", \"journal\": {\"dir\": \"j\", \"colour\": 1}}",
	     "config: journal.colour: unknown option"},
	    {"{" BASE ", \"journal\": {}}", "config: journal.dir: required (a directory)"},
	    {"{" BASE ", \"journal\": {\"dir\": \"\"}}",
	     "config: journal.dir: required (a directory)"},
	    {"{" BASE ", \"journal\": {\"dir\": \"j\", \"sync\": \"sometimes\"}}",
	     "config: journal.sync: must be \"always\", \"interval\" or \"never\""},
	    {"{" BASE ", \"journal\": {\"dir\": \"j\", \"sync\": 1}}",
	     "config: journal.sync: must be \"always\", \"interval\" or \"never\""},
	    {"{" BASE ", \"journal\": {\"dir\": \"j\", \"sync_interval_ms\": 0}}",
	     "config: journal.sync_interval_ms: must be an integer from 1 to 60000"},
	    {"{" BASE ", \"journal\": {\"dir\": \"j\", \"max_bytes\": 1000}}",
	     "config: journal.max_bytes: must be an integer from 1048576 to 1125899906842624"},
	    {"{" BASE ", \"journal\": {\"dir\": \"j\", \"segment_bytes\": \"big\"}}",
	     "config: journal.segment_bytes: must be an integer from 65536 to 1099511627776"},
	    {"{" BASE ", \"journal\": {\"dir\": \"j\", \"max_entry_bytes\": 1073741825}}",
	     "config: journal.max_entry_bytes: must be an integer from 1024 to 1073741824"},
	    {"{" BASE ", \"journal\": {\"dir\": \"j\", \"retry_backoff_ms\": 0}}",
	     "config: journal.retry_backoff_ms: must be an integer from 1 to 600000"},
	    {"{" BASE ", \"journal\": {\"dir\": \"j\", \"retry_backoff_max_ms\": 3600001}}",
	     "config: journal.retry_backoff_max_ms: must be an integer from 1 to 3600000"},
	    {"{" BASE ", \"journal\": {\"dir\": \"j\", \"retry_backoff_ms\": 500, "
	     "\"retry_backoff_max_ms\": 100}}",
	     "config: journal.retry_backoff_max_ms: must be at least retry_backoff_ms (500)"},
	    /* journal__open, once the producers run: the directory is a file */
	    {"{" BASE ", \"journal\": {\"dir\": \"tributary.json\"}}",
	     "config: journal.dir: @DIR@/tributary.json: "},
	    /* clusters */
	    {"{" CATALOG ", \"ingest\": {\"routes\": []}}",
	     "config: clusters: must name at least one Kafka cluster, e.g. {\"main\": "
	     "{\"bootstrap.servers\": \"host:9092\"}}"},
	    {"{" CATALOG ", \"clusters\": {}, \"ingest\": {\"routes\": []}}",
	     "config: clusters: must name at least one Kafka cluster"},
	    {"{" CATALOG ", \"clusters\": {\"main\": 1}, \"ingest\": {\"routes\": []}}",
	     "config: clusters.main: must be an object of librdkafka properties"},
	    {"{" CATALOG ", \"clusters\": {\"main\": {}}, \"ingest\": {\"routes\": []}}",
	     "config: clusters.main.bootstrap.servers: required"},
	    {"{" CATALOG ", \"clusters\": {\"main\": {\"bootstrap.servers\": \"x:1\", "
	     "\"acks.please\": \"1\"}}, \"ingest\": {\"routes\": []}}",
	     "config: clusters.main.acks.please: "},
	    /* outbound */
	    {"{" BASE ", \"outbound\": []}", "config: outbound: must be an object with \"routes\""},
	    {"{" BASE ", \"outbound\": {\"routes\": []}}",
	     "config: outbound.routes: must be an array of at least one route"},
	    {"{" BASE ", \"outbound\": {\"cluster\": \"nope\", \"routes\": [{\"kafka_topic\": "
	     "\"n\", \"topic\": \"u/{key}\"}]}}",
	     "config: outbound.cluster: no cluster named \"nope\" in \"clusters\""},
	    {"{" BASE ", \"outbound\": {\"start\": \"now\", \"routes\": [{\"kafka_topic\": "
	     "\"n\", \"topic\": \"u/{key}\"}]}}",
	     "config: outbound.start: must be \"latest\" or \"earliest\""},
	    {"{" BASE ", \"outbound\": {\"routes\": [{\"kafka_topic\": \"n\", \"topic\": "
	     "\"u/{key}\", \"qos\": 3}]}}",
	     "config: outbound.routes[0].qos: must be 0, 1 or 2"},
	    {"{" BASE ", \"outbound\": {\"routes\": [{\"kafka_topic\": \"n\", \"topic\": "
	     "\"u/#\"}]}}",
	     "config: outbound.routes[0].topic: no wildcards in a topic to publish to"},
	    /* topics */
	    {"{" CATALOG ", " CLUSTER ", \"ingest\": {\"routes\": [" ROUTE "]}, \"topics\": "
	     "{\"clusters\": {\"main\": {\"policy\": \"strict\"}}}}",
	     "config: topics.clusters.main.policy: must be"},
	    {"{" CATALOG ", " CLUSTER ", \"ingest\": {\"routes\": [" ROUTE "]}, \"topics\": "
	     "{\"clusters\": {\"main\": {\"policy\": \"verify\", \"configs\": {\"retention.ms\": "
	     "60000}}}}}",
	     "config: topics: ingest.routes[0].topic (\"events.{aggregate}\" on cluster main) "
	     "wants finite retention"},
	    /* auth */
	    {"{" BASE ", \"auth\": {\"keys\": 1}}",
	     "config: auth.keys: must be the path of a JWKS, PEM or secret file"},
	    {"{" BASE ", \"auth\": {\"keys\": \"@DIR@/jwt-secret\", \"internal_usernames\": "
	     "[\"relay\"]}}",
	     "config: auth.internal_client_ids: required with internal_usernames"},
	    {"{" BASE ", \"auth\": {\"keys\": \"@DIR@/jwt-secret\", \"internal_usernames\": "
	     "[\"relay\"], \"internal_client_ids\": [\"relay-*\", \"**\"]}}",
	     "config: auth.internal_client_ids: '**' would reserve every client id"},
	};
	struct fixture *f = *state;
	char secret[PATH_MAX + 16];
	snprintf(secret, sizeof(secret), "%s/jwt-secret", f->dir);
	FILE *fp = fopen(secret, "w");
	assert_non_null(fp);
	fputs("0123456789abcdef0123456789abcdef0123456789abcdef", fp);
	assert_int_equal(fclose(fp), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char want[1024];
		expand(f, cases[i].log, want, sizeof(want));
		write_config(f, cases[i].json);
		int rc = plugin_load(f);
		if (rc == MOSQ_ERR_SUCCESS)
			plugin_unload(f);
		if (rc == MOSQ_ERR_SUCCESS || !strstr(logged, want))
			fail_msg("%s: rc %d, log '%s', want '%s'", cases[i].json, rc, logged, want);
		assert_null(f->plugin);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_released_on_delivery_report, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_failed_delivery_stays_in_journal, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_retry_with_backoff_in_key_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_replay_at_start, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_errors_name_the_option, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
