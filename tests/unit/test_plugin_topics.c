/*
 * The plugin's "topics" section on the main thread's side
 * (mosquitto-plugin/topics.c), without a broker or Kafka: what
 * topics__refuse decides per event, and that it never waits for the
 * cluster thread's lock.
 *
 * topics.c is included here with a small TOPICS_MAX_TRACKED (4), so that a
 * full table is cheap to reach; it is linked with config.c and
 * ingest_route.c like the other plugin unit tests (see the Makefile). The
 * broker functions topics.c calls are defined here: the log keeps every
 * line, so that "logged once" can be checked. The cluster thread's side
 * (topics__poll asks Kafka) is the integration test's (tests/integration/
 * topics.sh); here its results are recorded as topics__poll records them.
 */
#define TOPICS_MAX_TRACKED 4
#include "../../mosquitto-plugin/topics.c"

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>
#include <cmocka.h>

static char logged[1 << 14];

void mosquitto_log_printf(int level, const char *fmt, ...)
{
	va_list ap;
	size_t len = strlen(logged);
	(void)level;
	va_start(ap, fmt);
	vsnprintf(logged + len, sizeof(logged) - len, fmt, ap);
	va_end(ap);
	len = strlen(logged);
	snprintf(logged + len, sizeof(logged) - len, "\n");
}

int mosquitto_callback_register(mosquitto_plugin_id_t *identifier, int event,
                                MOSQ_FUNC_generic_callback cb_func, const void *event_data,
                                void *userdata)
{
	(void)identifier, (void)event, (void)cb_func, (void)event_data, (void)userdata;
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_callback_unregister(mosquitto_plugin_id_t *identifier, int event,
                                  MOSQ_FUNC_generic_callback cb_func, const void *event_data)
{
	(void)identifier, (void)event, (void)cb_func, (void)event_data;
	return MOSQ_ERR_SUCCESS;
}

void stats__put(const char *topic, unsigned long long value)
{
	(void)topic, (void)value;
}

struct fixture {
	struct tributary tb;
	struct tbp_cluster clusters[1];
};

/* The plugin configured with `policy` on cluster main, whose one route
 * produces to the template events.{aggregate}. */
static struct fixture *fixture_new(const char *policy)
{
	char text[1024];
	json_error_t jerr;
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->clusters[0].name = "main";
	f->clusters[0].tb = &f->tb;
	f->tb.clusters = f->clusters;
	f->tb.nclusters = 1;
	snprintf(text, sizeof(text),
	         "{\"clusters\": {\"main\": {\"bootstrap.servers\": \"x:1\"}},"
	         " \"ingest\": {\"routes\": [{\"match\": \"events/{aggregate}/{id}\","
	         " \"topic\": \"events.{aggregate}\"}]},"
	         " \"topics\": {\"clusters\": {\"main\": {\"policy\": \"%s\"}}}}",
	         policy);
	json_t *root = json_loads(text, 0, &jerr);
	assert_non_null(root);
	assert_int_equal(topics__config(&f->tb, root), MOSQ_ERR_SUCCESS);
	json_decref(root);
	assert_non_null(topics__state(&f->tb));
	logged[0] = '\0';
	return f;
}

static void fixture_free(struct fixture *f)
{
	topics__cleanup(&f->tb);
	free(f);
}

static bool refuse(struct fixture *f, const char *topic, char *err, size_t errlen)
{
	err[0] = '\0';
	return topics__refuse(&f->tb, &f->clusters[0], topic, err, errlen);
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

/* With enforce, a managed topic beyond the table's limit cannot be checked:
 * its events are refused with a reason that says so, logged once. */
static void test_full_table_refused_under_enforce(void **state)
{
	char err[512], name[64];
	(void)state;
	struct fixture *f = fixture_new("enforce");
	for (int i = 0; i < TOPICS_MAX_TRACKED; i++) {
		snprintf(name, sizeof(name), "events.t%d", i);
		assert_false(refuse(f, name, err, sizeof(err)));
	}
	assert_true(refuse(f, "events.late", err, sizeof(err)));
	assert_string_equal(err, "Kafka topic events.late cannot be checked: cluster main already "
	                         "tracks 4 topics (the limit); refused by the topics policy "
	                         "enforce");
	assert_true(refuse(f, "events.later", err, sizeof(err)));
	assert_int_equal(count(logged, "cluster main already tracks 4 topics (the limit): topic "
	                               "events.late and every further new topic cannot be "
	                               "checked; their events are refused (policy enforce)"),
	                 1);
	assert_int_equal(count(logged, "already tracks"), 1);
	/* the topics tracked before go on; one no route names is not refused */
	assert_false(refuse(f, "events.t0", err, sizeof(err)));
	assert_false(refuse(f, "unmanaged.topic", err, sizeof(err)));
	struct tbp_topics_state *st = topics__state(&f->tb);
	assert_int_equal(atomic_load(&st->refused), 2);
	assert_int_equal(atomic_load(&st->untracked), 2);
	fixture_free(f);
}

/* With verify, such a topic's events go on, but not silently. */
static void test_full_table_logged_under_verify(void **state)
{
	char err[512], name[64];
	(void)state;
	struct fixture *f = fixture_new("verify");
	for (int i = 0; i <= TOPICS_MAX_TRACKED + 1; i++) {
		snprintf(name, sizeof(name), "events.t%d", i);
		assert_false(refuse(f, name, err, sizeof(err)));
	}
	assert_int_equal(count(logged, "cluster main already tracks 4 topics (the limit): topic "
	                               "events.t4 and every further new topic cannot be checked "
	                               "(counted in $SYS/tributary/topics/untracked)"),
	                 1);
	assert_int_equal(atomic_load(&topics__state(&f->tb)->untracked), 2);
	fixture_free(f);
}

struct call {
	struct fixture *f;
	const char *topic;
	char err[512];
	atomic_bool done;
	bool refused;
};

static void *call_refuse(void *arg)
{
	struct call *c = arg;
	c->refused = refuse(c->f, c->topic, c->err, sizeof(c->err));
	atomic_store(&c->done, true);
	return NULL;
}

/* topics__refuse from another thread (the main thread) while the test
 * holds the table's lock (the cluster thread's): true when it returned
 * within a second, i.e. without waiting for the lock. */
static bool refuse_while_locked(struct fixture *f, struct call *c, const char *topic)
{
	struct tbp_topics_state *st = topics__state(&f->tb);
	pthread_t t;
	*c = (struct call){.f = f, .topic = topic};
	pthread_mutex_lock(&st->lock);
	assert_int_equal(pthread_create(&t, NULL, call_refuse, c), 0);
	for (int i = 0; i < 100 && !atomic_load(&c->done); i++)
		usleep(10000);
	bool returned = atomic_load(&c->done);
	pthread_mutex_unlock(&st->lock);
	pthread_join(t, NULL);
	return returned;
}

/* The per-event decision reads the snapshot: it never waits for the lock
 * the cluster's thread holds while it records a check. */
static void test_refuse_never_waits_for_the_lock(void **state)
{
	struct call c;
	char err[512];
	(void)state;
	struct fixture *f = fixture_new("enforce");
	struct tbp_topics_state *st = topics__state(&f->tb);
	struct topics__cluster *tc = &st->clusters[0];

	/* a topic never seen: not waited for, not refused */
	assert_true(refuse_while_locked(f, &c, "events.new"));
	assert_false(c.refused);

	/* the cluster's thread records a check: events.legacy has finite
	 * retention, then its snapshot is published */
	tb_topic_report r = {.topic = "events.legacy", .verdict = TB_TOPIC_FINITE, .exists = true};
	snprintf(r.retention, sizeof(r.retention), "retention.ms=3600000");
	pthread_mutex_lock(&st->lock);
	topics__record(st, tc, &r, 1, "enforce");
	pthread_mutex_unlock(&st->lock);
	topics__publish_snap(st, tc);

	assert_true(refuse_while_locked(f, &c, "events.legacy"));
	assert_true(c.refused);
	assert_string_equal(c.err, "Kafka topic events.legacy has finite retention "
	                           "(retention.ms=3600000): refused by the topics policy enforce "
	                           "of cluster main");
	/* events.new was added to the table by the first call once unlocked,
	 * or is added now */
	assert_false(refuse(f, "events.new", err, sizeof(err)));
	fixture_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_table_refused_under_enforce),
	    cmocka_unit_test(test_full_table_logged_under_verify),
	    cmocka_unit_test(test_refuse_never_waits_for_the_lock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
