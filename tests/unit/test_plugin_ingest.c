/*
 * The plugin's ingest routing and its configuration, without a broker:
 * mosquitto-plugin/config.c (the "ingest" section and its errors) and
 * mosquitto-plugin/ingest_route.c (which route, which Kafka topic and key).
 *
 * Linked with those two plugin objects (see the Makefile), libtributary and
 * Mosquitto's client library (mosquitto_sub_topic_check). The one broker
 * function they call, mosquitto_log_printf, is defined here: it keeps the
 * last line, so that each configuration error can be checked word for word.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "../../mosquitto-plugin/tributary.h"

static char last_log[2048];

void mosquitto_log_printf(int level, const char *fmt, ...)
{
	va_list ap;
	(void)level;
	va_start(ap, fmt);
	vsnprintf(last_log, sizeof(last_log), fmt, ap);
	va_end(ap);
}

struct fixture {
	struct tributary tb;
	struct tbp_cluster clusters[2];
	struct tbp_registry registries[1];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	f->clusters[0].name = "main";
	f->clusters[1].name = "audit";
	f->tb.clusters = f->clusters;
	f->tb.nclusters = 2;
	f->registries[0].name = "sr";
	f->tb.registries = f->registries;
	f->tb.nregistries = 1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	config__ingest_free(&f->tb);
	free(f);
	return 0;
}

/* config__ingest over `text` (the "ingest" section); last_log cleared. */
static int load(struct fixture *f, const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);
	if (!j)
		fail_msg("bad test JSON: %s: %s", text, jerr.text);
	last_log[0] = '\0';
	config__ingest_free(&f->tb);
	int rc = config__ingest(&f->tb, j);
	json_decref(j);
	return rc;
}

/* ---- configuration errors ---------------------------------------------- */

static void test_config_errors_name_the_option(void **state)
{
	static const struct {
		const char *json, *log;
	} cases[] = {
	    {"[]", "config: ingest: must be an object with \"routes\""},
	    {"{\"routes\": [], \"colour\": 1}", "config: ingest.colour: unknown option"},
	    {"{\"routes\": {}}", "config: ingest.routes: must be an array"},
	    {"{\"unmatched\": \"drop\", \"routes\": []}",
	     "config: ingest.unmatched: must be \"pass\" or \"reject\""},
	    {"{\"qos2_resend_clients\": -1, \"routes\": []}",
	     "config: ingest.qos2_resend_clients: must be 0 (off) to 10000000 clients"},
	    {"{\"error_topic\": 7, \"routes\": []}",
	     "config: ingest.error_topic: must be a string"},
	    {"{\"response_topics\": [\"r/{user}\"], \"routes\": []}",
	     "config: ingest.response_topics[0]: unknown placeholder {user} (use {client_id}, "
	     "{username}, {sub})"},
	    {"{\"response_topics\": \"r\", \"routes\": []}",
	     "config: ingest.response_topics: must be an array of MQTT topic templates (empty: no "
	     "response topic allowed)"},
	    {"{\"routes\": [7]}", "config: ingest.routes[0]: must be an object"},
	    {"{\"routes\": [{\"match\": \"a\", \"topic\": \"t\", \"kind\": 1}]}",
	     "config: ingest.routes[0].kind: unknown option"},
	    {"{\"routes\": [{\"match\": \"a/#/b\", \"topic\": \"t\"}]}",
	     "config: ingest.routes[0].match: "},
	    {"{\"routes\": [{\"match\": \"a\", \"topic\": \"\"}]}",
	     "config: ingest.routes[0].topic: must be a non-empty string"},
	    {"{\"routes\": [{\"match\": \"e/{aggregate}\", \"topic\": \"e.{agg}\"}]}",
	     "config: ingest.routes[0].topic: unknown placeholder {agg} (not in the match "
	     "pattern, nor one of client_id, username, type, source, subject, id, "
	     "partitionkey)"},
	    {"{\"routes\": [{\"match\": \"a\", \"topic\": \"t\", \"cluster\": \"nope\"}]}",
	     "config: ingest.routes[0].cluster: no cluster named \"nope\" in \"clusters\""},
	    {"{\"routes\": [{\"match\": \"a\", \"topic\": \"t\", \"max_payload\": 0}]}",
	     "config: ingest.routes[0].max_payload: must be 1 to 268435455 bytes"},
	    {"{\"routes\": [{\"match\": \"a\", \"topic\": \"t\", \"kafka_mode\": \"fancy\"}]}",
	     "config: ingest.routes[0].kafka_mode: must be \"binary\" or \"structured\""},
	    {"{\"routes\": [{\"match\": \"a\", \"topic\": \"t\", \"schema_required\": 1}]}",
	     "config: ingest.routes[0].schema_required: must be true or false"},
	    {"{\"routes\": [{\"match\": \"a\", \"topic\": \"t\", \"mirror\": {\"cluster\": "
	     "\"x\", \"topic\": \"m\"}}]}",
	     "config: ingest.routes[0].mirror.cluster: no cluster named \"x\""},
	    {"{\"routes\": [{\"match\": \"a\", \"topic\": \"t\", \"mirror\": {\"cluster\": "
	     "\"audit\"}}]}",
	     "config: ingest.routes[0].mirror.topic: must be a non-empty string"},
	    {"{\"routes\": [{\"match\": \"e/{a}\", \"topic\": \"e.{a}\", \"capture_pattern\": "
	     "\"[a-z\"}]}",
	     "config: ingest.routes[0].capture_pattern: '[a-z' is not a PCRE2"},
	    {"{\"routes\": [{\"match\": \"e/{a}\", \"topic\": \"e\", \"types\": []}]}",
	     "config: ingest.routes[0].types: must be a non-empty array of event types (omit it "
	     "to accept any type)"},
	    {"{\"routes\": [{\"match\": \"e/{a}\", \"topic\": \"e\", \"types\": [\"x.*.y\"]}]}",
	     "config: ingest.routes[0].types[0]: must be an event type, or a prefix ending in "
	     "'*'"},
	    {"{\"routes\": [{\"match\": \"e/{a}\", \"topic\": \"e\", \"types\": [\"x.{id}\"]}]}",
	     "config: ingest.routes[0].types[0]: unknown placeholder {id} (not in the match "
	     "pattern)"},
	    {"{\"routes\": [{\"match\": \"a\", \"topic\": \"t\", \"registry\": \"nope\"}]}",
	     "config: ingest.routes[0].registry: no registry named \"nope\" in \"registries\""},
	    {"{\"routes\": [{\"match\": \"a\", \"topic\": \"t\", \"registry\": \"sr\", "
	     "\"schema_required\": false}]}",
	     "config: ingest.routes[0].schema_required: a registry route always validates"},
	    {"{\"routes\": [{\"match\": \"a\", \"topic\": \"t\", \"subject_strategy\": "
	     "\"record\"}]}",
	     "config: ingest.routes[0].subject_strategy: only with \"registry\""},
	    {"{\"routes\": [{\"match\": \"a\", \"topic\": \"t\", \"registry\": \"sr\", "
	     "\"subject_strategy\": \"type\"}]}",
	     "config: ingest.routes[0].subject_strategy: must be \"topic\", \"record\" or "
	     "\"topic-record\""},
	    {"{\"routes\": [{\"match\": \"a\", \"topic\": \"t\", \"value_format\": \"avro\"}]}",
	     "config: ingest.routes[0].value_format: must be \"cloudevents-binary\", "
	     "\"cloudevents-structured\" or \"confluent\""},
	    {"{\"routes\": [{\"match\": \"a\", \"topic\": \"t\", \"value_format\": "
	     "\"confluent\"}]}",
	     "config: ingest.routes[0].value_format: \"confluent\" needs a registry route"},
	    {"{\"routes\": [{\"match\": \"a\", \"topic\": \"t\", \"kafka_mode\": \"binary\", "
	     "\"value_format\": \"cloudevents-binary\"}]}",
	     "config: ingest.routes[0].kafka_mode: not with value_format"},
	    {"{\"routes\": [{\"match\": \"a\", \"topic\": \"t\"}, {\"match\": \"b\"}]}",
	     "config: ingest.routes[1].topic: must be a non-empty string"},
	};
	struct fixture *f = *state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = load(f, cases[i].json);
		if (rc != MOSQ_ERR_INVAL || !strstr(last_log, cases[i].log))
			fail_msg("%s: rc %d, log '%s', want '%s'", cases[i].json, rc, last_log,
			         cases[i].log);
	}
}

static void test_config_defaults(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(load(f, "{\"routes\": [{\"match\": \"a/{id}\", \"topic\": \"t\"}]}"),
	                 MOSQ_ERR_SUCCESS);
	assert_string_equal(last_log, "");
	const struct tbp_ingest_route *r = &f->tb.routes[0];
	assert_int_equal(f->tb.nroutes, 1);
	assert_ptr_equal(r->cluster, &f->clusters[0]); /* "main" */
	assert_true(r->schema_required);
	assert_int_equal(r->max_payload, 256 * 1024);
	assert_int_equal(r->mode, TBP_MODE_BINARY);
	assert_null(r->mirror_cluster);
	assert_null(r->types);
	assert_null(r->key.text);
	assert_false(f->tb.reject_unmatched);
	assert_int_equal(f->tb.resend_clients, 0);
	assert_string_equal(f->tb.error_topic.text, "clients/{client_id}/errors");
	/* the client's replies and its error topic */
	assert_int_equal(f->tb.nresponse_topics, 2);
	assert_string_equal(f->tb.response_topics[0].topic.text, "clients/{client_id}/replies");
	assert_string_equal(f->tb.response_topics[1].topic.text, "clients/{client_id}/errors");
}

static void test_config_schemas_and_value_format(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(
	    load(f, "{\"routes\": ["
	            "{\"match\": \"a\", \"topic\": \"t\", \"kafka_mode\": \"structured\"},"
	            "{\"match\": \"b\", \"topic\": \"t\", \"value_format\": "
	            "\"cloudevents-structured\"},"
	            "{\"match\": \"c\", \"topic\": \"t\", \"registry\": \"sr\"},"
	            "{\"match\": \"d\", \"topic\": \"t\", \"registry\": \"sr\", "
	            "\"subject_strategy\": \"topic-record\", \"value_format\": \"confluent\"}]}"),
	    MOSQ_ERR_SUCCESS);
	const struct tbp_ingest_route *r = f->tb.routes;
	assert_int_equal(r[0].mode, TBP_MODE_STRUCTURED); /* kafka_mode: the older name */
	assert_int_equal(r[1].mode, TBP_MODE_STRUCTURED);
	assert_null(r[1].registry);
	assert_ptr_equal(r[2].registry, &f->registries[0]);
	assert_int_equal(r[2].strategy, TBP_SUBJECT_TOPIC); /* Confluent's default */
	assert_int_equal(r[2].mode, TBP_MODE_BINARY);
	assert_int_equal(r[3].strategy, TBP_SUBJECT_TOPIC_RECORD);
	assert_int_equal(r[3].mode, TBP_MODE_CONFLUENT);
}

/* ---- routing ------------------------------------------------------------ */

#define ROUTES                                                                                     \
	"{\"unmatched\": \"reject\", \"routes\": ["                                                \
	"{\"match\": \"events/{aggregate}/{id}\", \"topic\": \"events.{aggregate}\","              \
	" \"key\": \"{id}\", \"types\": [\"example.{aggregate}.*\", \"example.any\"],"             \
	" \"mirror\": {\"cluster\": \"audit\", \"topic\": \"audit.{aggregate}\"}},"                \
	"{\"match\": \"small/{id}\", \"topic\": \"small\", \"max_payload\": 10},"                  \
	"{\"match\": \"pk/{id}\", \"topic\": \"pk\", \"cluster\": \"audit\"},"                     \
	"{\"match\": \"needpk/{id}\", \"topic\": \"pk\", \"key\": \"{partitionkey}\"},"            \
	"{\"match\": \"by-user/{id}\", \"topic\": \"u.{username}\", \"key\": \"{client_id}\"},"    \
	"{\"match\": \"by-subject\", \"topic\": \"s.{subject}\"},"                                 \
	"{\"match\": \"events/#\", \"topic\": \"events.other\"}]}"

struct routed {
	struct ingest__target t;
	tb_event ev;
	enum tbp_reject_reason why;
	char err[512];
};

static void parse_event(tb_event *ev, const char *json)
{
	char err[256];
	memset(ev, 0, sizeof(*ev));
	if (tb_ce_parse_structured(json, strlen(json), ev, err, sizeof(err)) != TB_CE_OK ||
	    tb_ce_complete(ev, err, sizeof(err)) != TB_CE_OK)
		fail_msg("bad test event %s: %s", json, err);
}

#define EVENT(type, extra)                                                                         \
	"{\"specversion\": \"1.0\", \"id\": \"1\", \"source\": \"/t\", \"type\": \"" type          \
	"\"" extra "}"

/* ingest.c's route and target steps, for `topic` and `event`: true when
 * the event may go, with r->t.kafka_topic and the key set. */
static bool route(struct fixture *f, struct routed *r, const char *topic, uint32_t payloadlen,
                  const char *event)
{
	memset(r, 0, sizeof(*r));
	r->t.client_id = "client-1";
	r->t.username = "alice";
	if (!ingest__match(&f->tb, topic, &r->t)) {
		snprintf(r->err, sizeof(r->err), "no route");
		r->why = TBP_REJECT_NO_ROUTE;
		return false;
	}
	if (!ingest__route_accepts(&r->t, payloadlen, &r->why, r->err, sizeof(r->err)))
		return false;
	parse_event(&r->ev, event);
	return ingest__locate(&r->t, &r->ev, &r->why, r->err, sizeof(r->err));
}

static void routed_clear(struct routed *r)
{
	tb_event_clear(&r->ev);
}

static void test_route_to_topic_key_and_mirror(void **state)
{
	struct fixture *f = *state;
	struct routed r;
	char mirror[256];
	assert_int_equal(load(f, ROUTES), MOSQ_ERR_SUCCESS);
	assert_true(f->tb.reject_unmatched);

	assert_true(route(f, &r, "events/order/42", 100, EVENT("example.order.placed", "")));
	assert_ptr_equal(r.t.route, &f->tb.routes[0]);
	assert_ptr_equal(r.t.route->cluster, &f->clusters[0]);
	assert_string_equal(r.t.kafka_topic, "events.order");
	assert_int_equal(r.t.keylen, 2);
	assert_memory_equal(r.t.keyp, "42", 2);
	assert_true(ingest__mirror_topic(&r.t, &r.ev, mirror, sizeof(mirror)));
	assert_string_equal(mirror, "audit.order");
	routed_clear(&r);

	/* a listed type that is not a prefix */
	assert_true(route(f, &r, "events/order/42", 100, EVENT("example.any", "")));
	routed_clear(&r);
	/* first match wins: events/a/b/c is the catch-all's */
	assert_true(route(f, &r, "events/order/42/x", 100, EVENT("example.user.created", "")));
	assert_string_equal(r.t.kafka_topic, "events.other");
	assert_null(r.t.keyp);
	routed_clear(&r);
	/* no route */
	assert_false(route(f, &r, "other/x", 100, NULL));
	assert_int_equal(r.why, TBP_REJECT_NO_ROUTE);
}

static void test_route_refusals(void **state)
{
	static const struct {
		const char *topic;
		uint32_t payloadlen;
		const char *event;
		enum tbp_reject_reason why;
		const char *err;
	} cases[] = {
	    {"events/order/42", 10, EVENT("example.user.created", ""), TBP_REJECT_TYPE_NOT_ALLOWED,
	     "event type 'example.user.created' is not allowed on this topic"},
	    {"events/order/42", 10, EVENT("example.anything", ""), TBP_REJECT_TYPE_NOT_ALLOWED,
	     "event type 'example.anything' is not allowed on this topic"},
	    {"events//42", 10, NULL, TBP_REJECT_INVALID_TOPIC,
	     "the topic level {aggregate} is empty"},
	    {"events/order.secret/42", 10, NULL, TBP_REJECT_INVALID_TOPIC,
	     "the topic level {aggregate} does not match the route's capture_pattern "
	     "[A-Za-z0-9_-]+"},
	    {"small/1", 11, NULL, TBP_REJECT_TOO_LARGE,
	     "payload of 11 bytes exceeds the route's maximum of 10"},
	    {"needpk/1", 10, EVENT("x.y", ""), TBP_REJECT_MISSING_ATTRIBUTE,
	     "cannot make the record key from '{partitionkey}' ({partitionkey} missing)"},
	    {"by-subject", 10, EVENT("x.y", ""), TBP_REJECT_ROUTING,
	     "cannot make a Kafka topic from 's.{subject}' ({subject} missing)"},
	    {"by-subject", 10, EVENT("x.y", ", \"subject\": \"a/b\""), TBP_REJECT_INVALID_TOPIC,
	     "'s.{subject}' does not make a legal Kafka topic name ('s.a/b')"},
	};
	struct fixture *f = *state;
	struct routed r;
	assert_int_equal(load(f, ROUTES), MOSQ_ERR_SUCCESS);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		/* the payload length only matters to max_payload */
		bool ok = route(f, &r, cases[i].topic, cases[i].payloadlen,
		                cases[i].event ? cases[i].event : EVENT("x.y", ""));
		if (ok || r.why != cases[i].why || strcmp(r.err, cases[i].err))
			fail_msg("%s: %s, reason %d '%s', want %d '%s'", cases[i].topic,
			         ok ? "routed" : "refused", r.why, r.err, cases[i].why,
			         cases[i].err);
		routed_clear(&r);
	}
}

static void test_route_keys_and_sender(void **state)
{
	struct fixture *f = *state;
	struct routed r;
	assert_int_equal(load(f, ROUTES), MOSQ_ERR_SUCCESS);
	/* no "key": the partitionkey extension, else none */
	assert_true(route(f, &r, "pk/1", 10, EVENT("x.y", ", \"partitionkey\": \"p-7\"")));
	assert_ptr_equal(r.t.route->cluster, &f->clusters[1]);
	assert_int_equal(r.t.keylen, 3);
	assert_memory_equal(r.t.keyp, "p-7", 3);
	routed_clear(&r);
	assert_true(route(f, &r, "pk/1", 10, EVENT("x.y", "")));
	assert_null(r.t.keyp);
	assert_int_equal(r.t.keylen, 0);
	routed_clear(&r);
	/* the sender, never the event, fills {username} and {client_id} */
	assert_true(route(f, &r, "by-user/1", 10, EVENT("x.y", ", \"username\": \"mallory\"")));
	assert_string_equal(r.t.kafka_topic, "u.alice");
	assert_int_equal(r.t.keylen, strlen("client-1"));
	assert_memory_equal(r.t.keyp, "client-1", r.t.keylen);
	routed_clear(&r);
	/* an anonymous sender has no {username} */
	memset(&r, 0, sizeof(r));
	r.t.client_id = "client-1";
	assert_true(ingest__match(&f->tb, "by-user/1", &r.t));
	parse_event(&r.ev, EVENT("x.y", ""));
	assert_false(ingest__locate(&r.t, &r.ev, &r.why, r.err, sizeof(r.err)));
	assert_int_equal(r.why, TBP_REJECT_ROUTING);
	assert_string_equal(r.err, "cannot make a Kafka topic from 'u.{username}' ({username} "
	                           "missing)");
	routed_clear(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_config_errors_name_the_option, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_defaults, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_config_schemas_and_value_format, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_route_to_topic_key_and_mirror, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_route_refusals, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_route_keys_and_sender, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
