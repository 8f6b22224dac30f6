/* The "topics" section, template matching and desired-vs-actual (shared/kafka/topics.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "tributary/topics.h"

#define BASE                                                                                       \
	"\"clusters\": {\"main\": {\"bootstrap.servers\": \"x:1\"}, \"audit\": "                   \
	"{\"bootstrap.servers\": \"y:1\"}},"                                                       \
	"\"ingest\": {\"routes\": ["                                                               \
	"{\"match\": \"events/{aggregate}/{id}\", \"topic\": \"events.{aggregate}\","              \
	" \"mirror\": {\"cluster\": \"audit\", \"topic\": \"audit-{aggregate}\"}},"                \
	"{\"match\": \"orders/{id}\", \"topic\": \"orders\"},"                                     \
	"{\"match\": \"again/{aggregate}/{id}\", \"topic\": \"events.{aggregate}\"}]},"            \
	"\"outbound\": {\"routes\": [{\"kafka_topic\": \"notifications\", \"topic\": "             \
	"\"u/{key}\"}]}"

/* Parses BASE plus `topics` (the section's JSON); returns tb_topics_parse's status. */
static int parse(tb_topics *t, const char *topics, char *err, size_t errlen)
{
	char text[4096];
	json_error_t jerr;
	snprintf(text, sizeof(text), "{" BASE "%s%s}", topics ? ", \"topics\": " : "",
	         topics ? topics : "");
	json_t *root = json_loads(text, 0, &jerr);
	assert_non_null(root);
	err[0] = '\0';
	int rc = tb_topics_parse(t, root, err, errlen);
	json_decref(root);
	return rc;
}

static const tb_topic_spec *spec(const tb_topics *t, const char *cluster, const char *text)
{
	for (size_t i = 0; i < t->nspecs; i++)
		if (!strcmp(t->specs[i].cluster, cluster) && !strcmp(t->specs[i].topic.text, text))
			return &t->specs[i];
	return NULL;
}

static const char *config(const tb_topic_spec *s, const char *name)
{
	for (size_t i = 0; i < s->nconfigs; i++)
		if (!strcmp(s->configs[i].name, name))
			return s->configs[i].value;
	return NULL;
}

static void test_parse_defaults(void **state)
{
	(void)state;
	tb_topics t;
	char err[512];
	assert_int_equal(parse(&t, NULL, err, sizeof(err)), 0);
	assert_int_equal(t.nspecs, 0);
	assert_int_equal(tb_topics_policy_of(&t, "main"), TB_TOPICS_OFF);
	tb_topics_free(&t);

	assert_int_equal(
	    parse(&t, "{\"clusters\": {\"main\": {\"policy\": \"enforce\"}}}", err, sizeof(err)),
	    0);
	assert_int_equal(tb_topics_policy_of(&t, "main"), TB_TOPICS_ENFORCE);
	assert_int_equal(tb_topics_policy_of(&t, "audit"), TB_TOPICS_OFF);
	assert_int_equal(t.startup_timeout_ms, 10000);
	/* events.{aggregate} once (two routes), orders, notifications; not the mirror. */
	assert_int_equal(t.nspecs, 3);
	const tb_topic_spec *s = spec(&t, "main", "events.{aggregate}");
	assert_non_null(s);
	assert_true(s->is_template);
	assert_string_equal(s->origin, "ingest.routes[0].topic");
	assert_int_equal(s->partitions, -1);
	assert_int_equal(s->replication_factor, -1);
	assert_string_equal(config(s, "retention.ms"), "-1");
	assert_string_equal(config(s, "retention.bytes"), "-1");
	assert_false(s->finite_ok);
	s = spec(&t, "main", "notifications");
	assert_non_null(s);
	assert_false(s->is_template);
	assert_non_null(spec(&t, "main", "orders"));
	tb_topics_free(&t);
}

static void test_parse_layers(void **state)
{
	(void)state;
	tb_topics t;
	char err[512];
	assert_int_equal(
	    parse(&t,
	          "{\"startup_timeout_ms\": 500, \"clusters\": {"
	          "\"main\": {\"policy\": \"create\", \"partitions\": 6, \"replication_factor\": 3,"
	          " \"configs\": {\"min.insync.replicas\": 2}},"
	          "\"audit\": {\"policy\": \"verify\", \"retention\": \"finite-ok\"}},"
	          "\"topics\": {\"events.{aggregate}\": {\"names\": [\"events.order\"],"
	          " \"partitions\": 12},"
	          " \"notifications\": {\"configs\": {\"retention.ms\": 86400000},"
	          " \"retention\": \"finite-ok\"}}}",
	          err, sizeof(err)),
	    0);
	assert_int_equal(t.startup_timeout_ms, 500);
	const tb_topic_spec *s = spec(&t, "main", "events.{aggregate}");
	assert_int_equal(s->partitions, 12);
	assert_int_equal(s->replication_factor, 3);
	assert_string_equal(config(s, "min.insync.replicas"), "2");
	assert_string_equal(config(s, "retention.ms"), "-1");
	assert_int_equal(s->nnames, 1);
	assert_string_equal(s->names[0], "events.order");
	s = spec(&t, "main", "notifications");
	assert_int_equal(s->partitions, 6);
	assert_string_equal(config(s, "retention.ms"), "86400000");
	assert_true(s->finite_ok);
	s = spec(&t, "audit", "audit-{aggregate}");
	assert_non_null(s);
	assert_true(s->finite_ok);
	assert_string_equal(s->origin, "ingest.routes[0].mirror.topic");

	/* A literal topic wins over a template that makes it too. */
	assert_ptr_equal(tb_topics_match(&t, "main", "events.order"),
	                 spec(&t, "main", "events.{aggregate}"));
	assert_ptr_equal(tb_topics_match(&t, "main", "orders"), spec(&t, "main", "orders"));
	assert_null(tb_topics_match(&t, "main", "other"));
	assert_null(tb_topics_match(&t, "audit", "events.order"));
	tb_topics_free(&t);
}

static void expect_error(const char *topics, const char *needle)
{
	tb_topics t;
	char err[512];
	assert_int_equal(parse(&t, topics, err, sizeof(err)), -1);
	if (!strstr(err, needle))
		fail_msg("error '%s' does not contain '%s'", err, needle);
}

static void test_parse_errors(void **state)
{
	(void)state;
	expect_error("[]", "topics: must be an object");
	expect_error("{\"clusters\": {}, \"colour\": 1}", "topics.colour: unknown option");
	expect_error("{}", "topics.clusters: must be an object");
	expect_error("{\"clusters\": {\"nope\": {\"policy\": \"verify\"}}}",
	             "topics.clusters.nope: no cluster named \"nope\"");
	expect_error("{\"clusters\": {\"main\": {}}}", "topics.clusters.main.policy: must be");
	expect_error("{\"clusters\": {\"main\": {\"policy\": \"strict\"}}}",
	             "topics.clusters.main.policy: must be");
	expect_error("{\"clusters\": {\"main\": {\"policy\": \"verify\", \"size\": 1}}}",
	             "topics.clusters.main.size: unknown option");
	expect_error("{\"clusters\": {\"main\": {\"policy\": \"verify\", \"partitions\": 0}}}",
	             "topics.clusters.main.partitions: must be an integer from 1");
	expect_error(
	    "{\"clusters\": {\"main\": {\"policy\": \"verify\", \"retention\": \"short\"}}}",
	    "topics.clusters.main.retention: must be \"infinite\" or \"finite-ok\"");
	expect_error("{\"clusters\": {\"main\": {\"policy\": \"verify\", \"configs\": []}}}",
	             "topics.clusters.main.configs: must be an object");
	expect_error("{\"clusters\": {\"main\": {\"policy\": \"verify\", \"configs\": "
	             "{\"retention.ms\": 1.5}}}}",
	             "topics.clusters.main.configs.retention.ms: must be a string, integer");
	expect_error("{\"startup_timeout_ms\": -1, \"clusters\": {}}",
	             "topics.startup_timeout_ms: must be an integer");
	expect_error("{\"clusters\": {\"main\": {\"policy\": \"verify\"}}, \"topics\": "
	             "{\"evnts.{aggregate}\": {}}}",
	             "topics.topics.evnts.{aggregate}: not the topic of an ingest route");
	expect_error("{\"clusters\": {\"main\": {\"policy\": \"verify\"}}, \"topics\": "
	             "{\"orders\": {\"names\": [\"orders\"]}}}",
	             "topics.topics.orders.names: only for a template");
	expect_error("{\"clusters\": {\"main\": {\"policy\": \"verify\"}}, \"topics\": "
	             "{\"events.{aggregate}\": {\"names\": [\"audit.order\"]}}}",
	             "topics.topics.events.{aggregate}.names[0]: \"audit.order\" is not a topic");
	expect_error("{\"clusters\": {\"main\": {\"policy\": \"verify\"}}, \"topics\": "
	             "{\"events.{aggregate}\": {\"names\": [\"events.a b\"]}}}",
	             "names[0]: must be a Kafka topic name");
	/* Finite retention is wanted only when said so. */
	expect_error("{\"clusters\": {\"main\": {\"policy\": \"verify\"}}, \"topics\": "
	             "{\"orders\": {\"configs\": {\"retention.ms\": 3600000}}}}",
	             "ingest.routes[1].topic (\"orders\" on cluster main) wants finite retention "
	             "(retention.ms=3600000)");
	expect_error("{\"clusters\": {\"main\": {\"policy\": \"verify\", \"configs\": "
	             "{\"cleanup.policy\": \"compact\"}}}}",
	             "wants finite retention (cleanup.policy=compact)");
}

static void test_template_match(void **state)
{
	(void)state;
	tb_template t;
	char err[128];
	assert_int_equal(tb_template_compile(&t, "events.{aggregate}", err, sizeof(err)), 0);
	assert_true(tb_topics_template_match(&t, "events.order"));
	assert_true(tb_topics_template_match(&t, "events.order.v2"));
	assert_false(tb_topics_template_match(&t, "events."));
	assert_false(tb_topics_template_match(&t, "eventsXorder"));
	assert_false(tb_topics_template_match(&t, "audit.order"));
	tb_template_free(&t);
	assert_int_equal(tb_template_compile(&t, "t.{a}.x.{b}", err, sizeof(err)), 0);
	assert_true(tb_topics_template_match(&t, "t.1.x.2"));
	assert_true(tb_topics_template_match(&t, "t.1.x.x.2")); /* {a}=1, {b}=x.2 */
	assert_false(tb_topics_template_match(&t, "t.1.y.2"));
	assert_false(tb_topics_template_match(&t, "t.1.x."));
	tb_template_free(&t);
	/* Many placeholders over a long name that does not match: no blow-up. */
	char name[251];
	memset(name, 'a', 249);
	name[249] = '\0';
	assert_int_equal(
	    tb_template_compile(&t, "{a}{b}{c}{d}{e}{f}{g}{h}{i}{j}x", err, sizeof(err)), 0);
	assert_false(tb_topics_template_match(&t, name));
	name[248] = 'x';
	assert_true(tb_topics_template_match(&t, name));
	name[249] = 'x';
	name[250] = '\0';
	assert_false(tb_topics_template_match(&t, name)); /* 250: longer than Kafka allows */
	tb_template_free(&t);
}

/* Compares `topic` as Kafka would describe it (partitions, replication
 * factor, configs) with `spec`; checks the verdict. */
static void compare(const tb_topic_spec *spec, const char *topic, int partitions, int rf,
                    tb_topic_config *cfg, size_t n, enum tb_topic_verdict verdict,
                    tb_topic_report *r)
{
	tb_topic_actual a = {.exists = true,
	                     .partitions = partitions,
	                     .replication_factor = rf,
	                     .configs = cfg,
	                     .nconfigs = n};
	assert_int_equal(tb_topics_compare(spec, topic, &a, r), 0);
	assert_int_equal(r->verdict, verdict);
}

static void test_compare(void **state)
{
	(void)state;
	tb_topics t;
	char err[512], line[512];
	tb_topic_report r;
	assert_int_equal(
	    parse(&t,
	          "{\"clusters\": {\"main\": {\"policy\": \"enforce\", \"partitions\": "
	          "3}, \"audit\": {\"policy\": \"verify\", \"retention\": "
	          "\"finite-ok\"}}}",
	          err, sizeof(err)),
	    0);
	const tb_topic_spec *ev = spec(&t, "main", "events.{aggregate}");
	const tb_topic_spec *au = spec(&t, "audit", "audit-{aggregate}");

	tb_topic_actual missing = {.exists = false};
	assert_int_equal(tb_topics_compare(ev, "events.order", &missing, &r), 0);
	assert_int_equal(r.verdict, TB_TOPIC_MISSING);
	assert_true(tb_topic_verdict_is_error(r.verdict));
	tb_topic_report_clear(&r);

	tb_topic_config good[] = {
	    {"retention.ms", "-1"}, {"retention.bytes", "-1"}, {"cleanup.policy", "delete"}};
	compare(ev, "events.order", 3, 1, good, 3, TB_TOPIC_OK, &r);
	assert_string_equal(r.retention, "infinite");
	assert_int_equal(r.ndiffs, 0);
	tb_topic_report_clear(&r);

	/* Partitions are compared only when wanted; the replication factor was not. */
	compare(ev, "events.order", 1, 2, good, 3, TB_TOPIC_DIFFERS, &r);
	assert_int_equal(r.ndiffs, 1);
	assert_string_equal(r.diffs[0].setting, "partitions");
	assert_string_equal(r.diffs[0].wanted, "3");
	assert_string_equal(r.diffs[0].actual, "1");
	tb_topic_report_clear(&r);

	tb_topic_config hour[] = {
	    {"retention.ms", "3600000"}, {"retention.bytes", "-1"}, {"cleanup.policy", "delete"}};
	compare(ev, "events.legacy", 3, 1, hour, 3, TB_TOPIC_FINITE, &r);
	assert_string_equal(r.retention, "retention.ms=3600000");
	assert_int_equal(r.ndiffs, 1);
	assert_string_equal(r.diffs[0].setting, "retention.ms");
	assert_string_equal(r.diffs[0].wanted, "-1");
	assert_string_equal(r.diffs[0].actual, "3600000");
	assert_false(r.diffs[0].warning);
	tb_topic_report_line(&r, line, sizeof(line));
	assert_string_equal(line,
	                    "topic events.legacy (cluster main): finite-retention "
	                    "(retention.ms=3600000); retention.ms: wanted -1, actual 3600000");
	tb_topic_report_clear(&r);

	/* The audit mirror: finite by design, a warning. */
	tb_topic_config week[] = {{"retention.ms", "604800000"}, {"retention.bytes", "-1"}};
	compare(au, "audit-order", 3, 1, week, 2, TB_TOPIC_WARNING, &r);
	assert_false(tb_topic_verdict_is_error(r.verdict));
	assert_true(r.diffs[0].warning);
	tb_topic_report_line(&r, line, sizeof(line));
	assert_string_equal(line, "topic audit-order (cluster audit): warning "
	                          "(retention.ms=604800000, finite-ok); retention.ms: wanted -1, "
	                          "actual 604800000");
	tb_topic_report_clear(&r);

	/* Compaction deletes records too; a config the broker did not report. */
	tb_topic_config compact[] = {{"retention.ms", "-1"}, {"cleanup.policy", "compact,delete"}};
	compare(ev, "events.c", 3, 1, compact, 2, TB_TOPIC_FINITE, &r);
	assert_string_equal(r.retention, "cleanup.policy=compact,delete");
	assert_int_equal(r.ndiffs, 1);
	assert_string_equal(r.diffs[0].setting, "retention.bytes");
	assert_string_equal(r.diffs[0].actual, "(none)");
	tb_topic_report_clear(&r);

	tb_topics_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse_defaults), cmocka_unit_test(test_parse_layers),
	    cmocka_unit_test(test_parse_errors),   cmocka_unit_test(test_template_match),
	    cmocka_unit_test(test_compare),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
