/* The Schema Registry client (shared/registry): what needs no server. The
 * calls against a registry are tested by tests/integration/registry-tool.sh. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "tributary/registry.h"

static void test_url(void **state)
{
	(void)state;
	const char *seg[] = {"subjects", "a/b c%.-_~é", "versions", "latest"};
	char *u = tb_registry_url("http://r:8081/", seg, 4, NULL);
	assert_string_equal(u, "http://r:8081/subjects/a%2Fb%20c%25.-_~%C3%A9/versions/latest");
	free(u);
	/* a base with a path prefix (Apicurio's ccompat API) and a query */
	const char *seg2[] = {"compatibility", "subjects", "orders-value", "versions", "3"};
	u = tb_registry_url("http://h/apis/ccompat/v7//", seg2, 5, "verbose=true");
	assert_string_equal(
	    u, "http://h/apis/ccompat/v7/compatibility/subjects/orders-value/versions/3"
	       "?verbose=true");
	free(u);
	u = tb_registry_url("https://h", NULL, 0, NULL);
	assert_string_equal(u, "https://h");
	free(u);
}

static void test_error_confluent_body(void **state)
{
	(void)state;
	tb_registry_error e;
	const char *body = "{\"error_code\":40401,\"message\":\"Subject 'x' not found.\"}";
	tb_registry_parse_error(404, body, strlen(body), &e);
	assert_int_equal(e.http_status, 404);
	assert_int_equal(e.error_code, TB_REGISTRY_SUBJECT_NOT_FOUND);
	assert_string_equal(e.message, "HTTP 404, error_code 40401: Subject 'x' not found.");
}

static void test_error_other_bodies(void **state)
{
	(void)state;
	tb_registry_error e;
	const char *html = "<html>502 Bad Gateway</html>\nmore";
	tb_registry_parse_error(502, html, strlen(html), &e);
	assert_int_equal(e.http_status, 502);
	assert_int_equal(e.error_code, 0);
	assert_string_equal(e.message, "HTTP 502: <html>502 Bad Gateway</html>");
	tb_registry_parse_error(401, "", 0, &e);
	assert_string_equal(e.message, "HTTP 401 (empty body)");
	/* JSON without the fields: the body is shown */
	tb_registry_parse_error(500, "{\"a\":1}", 7, &e);
	assert_string_equal(e.message, "HTTP 500: {\"a\":1}");
	/* a message without a code */
	const char *m = "{\"message\":\"Unauthorized\"}";
	tb_registry_parse_error(401, m, strlen(m), &e);
	assert_int_equal(e.error_code, 0);
	assert_string_equal(e.message, "HTTP 401, error_code 0: Unauthorized");
}

static void test_parse_schema(void **state)
{
	(void)state;
	tb_registry_schema s;
	tb_registry_error e;
	const char *body = "{\"subject\":\"o\",\"version\":2,\"id\":7,\"schemaType\":\"JSON\","
	                   "\"schema\":\"{}\",\"references\":[{\"name\":\"https://x/l.json\","
	                   "\"subject\":\"l\",\"version\":1}]}";
	assert_int_equal(tb_registry_parse_schema(body, strlen(body), &s, &e), 0);
	assert_string_equal(s.subject, "o");
	assert_int_equal(s.version, 2);
	assert_int_equal(s.id, 7);
	assert_string_equal(s.schema_type, "JSON");
	assert_string_equal(s.schema, "{}");
	assert_int_equal(s.nrefs, 1);
	assert_string_equal(s.refs[0].name, "https://x/l.json");
	assert_string_equal(s.refs[0].subject, "l");
	assert_int_equal(s.refs[0].version, 1);
	tb_registry_schema_clear(&s);

	/* GET /schemas/ids/{id}: no subject; no schemaType means Avro */
	body = "{\"schema\":\"\\\"string\\\"\"}";
	assert_int_equal(tb_registry_parse_schema(body, strlen(body), &s, &e), 0);
	assert_null(s.subject);
	assert_string_equal(s.schema_type, "AVRO");
	assert_int_equal(s.nrefs, 0);
	tb_registry_schema_clear(&s);

	static const char *const bad[] = {"[1]",
	                                  "not json",
	                                  "{\"id\":\"7\"}",
	                                  "{\"schema\":1}",
	                                  "{\"references\":[{\"name\":\"a\",\"subject\":\"b\"}]}",
	                                  "{\"references\":{}}"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		assert_int_equal(tb_registry_parse_schema(bad[i], strlen(bad[i]), &s, &e), -1);
		assert_int_equal(e.http_status, 0);
		assert_true(strlen(e.message) > 0);
		assert_null(s.schema); /* cleared */
	}
}

static void test_schema_request(void **state)
{
	(void)state;
	tb_registry_ref refs[] = {{"https://x/l.json", "l", 3}};
	tb_registry_schema s = {
	    .schema = "{\"type\":\"object\"}", .schema_type = "JSON", .refs = refs, .nrefs = 1};
	json_t *j = tb_registry_schema_request(&s);
	char *txt = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(txt,
	                    "{\"references\":[{\"name\":\"https://x/l.json\",\"subject\":\"l\","
	                    "\"version\":3}],\"schema\":\"{\\\"type\\\":\\\"object\\\"}\","
	                    "\"schemaType\":\"JSON\"}");
	free(txt);
	json_decref(j);
	/* Avro: schemaType left out, as older registries want */
	tb_registry_schema a = {.schema = "\"string\"", .schema_type = "AVRO"};
	j = tb_registry_schema_request(&a);
	txt = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(txt, "{\"schema\":\"\\\"string\\\"\"}");
	free(txt);
	json_decref(j);
}

static void test_backoff(void **state)
{
	(void)state;
	tb_registry_opts o = {.backoff_ms = 100, .max_backoff_ms = 1000};
	assert_int_equal(tb_registry_backoff(&o, 1), 100);
	assert_int_equal(tb_registry_backoff(&o, 2), 200);
	assert_int_equal(tb_registry_backoff(&o, 4), 800);
	assert_int_equal(tb_registry_backoff(&o, 5), 1000);
	assert_int_equal(tb_registry_backoff(&o, 40), 1000);
	tb_registry_opts d = {0};
	assert_int_equal(tb_registry_backoff(&d, 1), 200);
}

static void test_new_refuses(void **state)
{
	(void)state;
	char err[256];
	tb_registry_opts o = {0};
	assert_null(tb_registry_new(&o, err, sizeof err));
	assert_string_equal(err, "registry: no URL");
	o.url = "ftp://x";
	assert_null(tb_registry_new(&o, err, sizeof err));
	assert_non_null(strstr(err, "not http:// or https://"));
	o.url = "http://x";
	o.username = "k";
	assert_null(tb_registry_new(&o, err, sizeof err));
	assert_non_null(strstr(err, "both a user name and a password"));
	o.password = "s";
	o.bearer = "t";
	assert_null(tb_registry_new(&o, err, sizeof err));
	assert_non_null(strstr(err, "exclude each other"));
}

/* Nothing listens: a transport error (no HTTP status), after the retries
 * and their waits. */
static void test_unreachable_retries(void **state)
{
	(void)state;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof sa;
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	close(fd); /* a port nobody listens on */
	char url[64], err[256];
	snprintf(url, sizeof url, "http://127.0.0.1:%u", ntohs(sa.sin_port));
	tb_registry_opts o = {
	    .url = url, .retries = 2, .backoff_ms = 50, .connect_timeout_ms = 1000};
	tb_registry *r = tb_registry_new(&o, err, sizeof err);
	assert_non_null(r);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	json_t *subjects = NULL;
	tb_registry_error e;
	assert_int_equal(tb_registry_subjects(r, &subjects, &e), -1);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_null(subjects);
	assert_int_equal(e.http_status, 0);
	assert_non_null(strstr(e.message, "GET http://127.0.0.1:"));
	assert_non_null(strstr(e.message, "/subjects: "));
	long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
	assert_true(ms >= 150); /* waited 50 + 100 ms between the 3 attempts */
	tb_registry_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_url),
	    cmocka_unit_test(test_error_confluent_body),
	    cmocka_unit_test(test_error_other_bodies),
	    cmocka_unit_test(test_parse_schema),
	    cmocka_unit_test(test_schema_request),
	    cmocka_unit_test(test_backoff),
	    cmocka_unit_test(test_new_refuses),
	    cmocka_unit_test(test_unreachable_retries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
