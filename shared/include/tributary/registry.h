/*
 * A client of the Confluent Schema Registry REST API v1 (and of the
 * registries that speak it: Apicurio's ccompat API, Redpanda, Karapace),
 * over libcurl. Every call blocks until the registry answered, the timeout
 * passed or the retries ran out: call it only from a thread that may wait
 * (never from Mosquitto's main thread). A tb_registry holds one curl
 * handle (its connection is reused): use it from one thread at a time.
 *
 *   tb_registry_opts o = { .url = "http://127.0.0.1:8081" };
 *   tb_registry *r = tb_registry_new(&o, err, sizeof err);
 *   tb_registry_schema s;
 *   tb_registry_error e;
 *   if (tb_registry_get_version(r, "example.order.placed", TB_REGISTRY_LATEST, &s, &e))
 *           fprintf(stderr, "%s\n", e.message);
 *
 * Requests carry `Accept: application/vnd.schemaregistry.v1+json`; bodies
 * are sent as `application/vnd.schemaregistry.v1+json` too. A transport
 * error, HTTP 429 or any 5xx is retried (opts.retries times, the wait
 * doubling from opts.backoff_ms); another 4xx is not.
 */
#ifndef TRIBUTARY_REGISTRY_H
#define TRIBUTARY_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

typedef struct tb_registry tb_registry;

typedef struct {
	const char *url;         /* base URL, e.g. https://psrc-xxxx.confluent.cloud */
	const char *username;    /* basic auth (Confluent Cloud: API key) */
	const char *password;    /* (API secret) */
	const char *bearer;      /* Authorization: Bearer TOKEN (not with username) */
	const char *ca_file;     /* PEM bundle to verify the server with */
	bool insecure;           /* do not verify the server's certificate */
	long timeout_ms;         /* per attempt, 0: 10000 */
	long connect_timeout_ms; /* 0: 5000 */
	int retries;             /* after the first attempt; < 0: none, 0: 3 */
	long backoff_ms;         /* first wait between attempts, doubling; 0: 200 */
	long max_backoff_ms;     /* 0: 5000 */
} tb_registry_opts;

/* Why a call failed: the HTTP status (0: none was received, the transport
 * failed), the registry's own error_code when its body had one (40401
 * subject not found, 40402 version not found, 40403 schema not found,
 * 42201 invalid schema, 409 incompatible, ...) and a message for humans. */
typedef struct {
	long http_status;
	int error_code;
	char message[512];
} tb_registry_error;

/* Confluent's error codes the callers test for. */
#define TB_REGISTRY_SUBJECT_NOT_FOUND 40401
#define TB_REGISTRY_VERSION_NOT_FOUND 40402
#define TB_REGISTRY_SCHEMA_NOT_FOUND 40403

#define TB_REGISTRY_LATEST (-1)

typedef struct {
	char *name; /* as the referring schema names it ($ref for JSON Schema) */
	char *subject;
	int version;
} tb_registry_ref;

typedef struct {
	char *subject; /* NULL from tb_registry_get_by_id */
	int version;   /* 0 from tb_registry_get_by_id */
	int id;
	char *schema_type; /* "AVRO" (the registry's default), "JSON", "PROTOBUF" */
	char *schema;      /* the schema's text */
	tb_registry_ref *refs;
	size_t nrefs;
} tb_registry_schema;

tb_registry *tb_registry_new(const tb_registry_opts *opts, char *err, size_t errlen);
void tb_registry_free(tb_registry *r);
void tb_registry_schema_clear(tb_registry_schema *s);

/* GET /subjects: a JSON array of strings (the caller's reference). */
int tb_registry_subjects(tb_registry *r, json_t **subjects, tb_registry_error *e);
/* GET /subjects/{subject}/versions: a JSON array of integers. */
int tb_registry_versions(tb_registry *r, const char *subject, json_t **versions,
                         tb_registry_error *e);
/* GET /subjects/{subject}/versions/{version|latest} */
int tb_registry_get_version(tb_registry *r, const char *subject, int version,
                            tb_registry_schema *out, tb_registry_error *e);
/* GET /schemas/ids/{id} */
int tb_registry_get_by_id(tb_registry *r, int id, tb_registry_schema *out, tb_registry_error *e);
/* POST /subjects/{subject}: the version (and id) under which this exact
 * schema is registered; fails with error_code 40401 or 40403 when not. */
int tb_registry_lookup(tb_registry *r, const char *subject, const tb_registry_schema *s,
                       tb_registry_schema *out, tb_registry_error *e);
/* POST /subjects/{subject}/versions: the schema's id (a new version, or the
 * existing one when the same schema is registered already). */
int tb_registry_register(tb_registry *r, const char *subject, const tb_registry_schema *s, int *id,
                         tb_registry_error *e);
/* POST /compatibility/subjects/{subject}/versions/{version|latest}?verbose=true:
 * `compatible` set, and when not, `messages` (if not NULL) the registry's
 * reasons (a JSON array of strings, or NULL when it gave none). */
int tb_registry_check(tb_registry *r, const char *subject, int version, const tb_registry_schema *s,
                      bool *compatible, json_t **messages, tb_registry_error *e);
/* GET /config or GET /config/{subject} (subject not NULL; with
 * defaultToGlobal=true): the compatibility level, malloc'd. */
int tb_registry_get_config(tb_registry *r, const char *subject, char **level, tb_registry_error *e);

/* The pieces, exposed for the unit tests. */

/* base + "/" + each segment percent-encoded (RFC 3986 unreserved kept) +
 * query (appended as is when not NULL). malloc'd, NULL when out of memory. */
char *tb_registry_url(const char *base, const char *const *segments, size_t nsegments,
                      const char *query);
/* Fills `e` from an HTTP status and the response body: Confluent's
 * {"error_code": N, "message": "..."} when the body is that, else the
 * body's first line. */
void tb_registry_parse_error(long http_status, const char *body, size_t len, tb_registry_error *e);
/* Parses a schema object of the API (a version, GET /schemas/ids/{id}, a
 * lookup answer). 0, or -1 with `e` set. */
int tb_registry_parse_schema(const char *body, size_t len, tb_registry_schema *out,
                             tb_registry_error *e);
/* The request body of a register, lookup or compatibility call. */
json_t *tb_registry_schema_request(const tb_registry_schema *s);
/* The wait before retry number `attempt` (1-based). */
long tb_registry_backoff(const tb_registry_opts *opts, int attempt);

#endif
