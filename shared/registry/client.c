/*
 * Confluent Schema Registry REST API v1 client over libcurl
 * (tributary/registry.h).
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "tributary/registry.h"

#define TB_REGISTRY_MEDIA "application/vnd.schemaregistry.v1+json"
#define MAX_BODY (64u << 20)

struct tb_registry {
	tb_registry_opts o;
	char *url;
	char *username;
	char *password;
	char *bearer_header;
	char *ca_file;
	CURL *curl;
};

typedef struct {
	char *data;
	size_t len;
	size_t cap;
	bool too_big;
} buf;

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void registry__curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void seterr(tb_registry_error *e, long status, int code, const char *fmt, ...)
{
	if (!e)
		return;
	e->http_status = status;
	e->error_code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

tb_registry *tb_registry_new(const tb_registry_opts *opts, char *err, size_t errlen)
{
	tb_registry *r = NULL;

	if (!opts || !opts->url || !*opts->url) {
		snprintf(err, errlen, "registry: no URL");
		return NULL;
	}
	if (strncmp(opts->url, "http://", 7) && strncmp(opts->url, "https://", 8)) {
		snprintf(err, errlen, "registry: URL '%s' is not http:// or https://", opts->url);
		return NULL;
	}
	if (opts->bearer && opts->username) {
		snprintf(err, errlen,
		         "registry: a bearer token and a user name exclude each other");
		return NULL;
	}
	if (!!opts->username != !!opts->password) {
		snprintf(err, errlen, "registry: basic auth needs both a user name and a password");
		return NULL;
	}
	pthread_once(&curl_once, registry__curl_init);
	if (curl_init_rc != CURLE_OK) {
		snprintf(err, errlen, "registry: libcurl: %s", curl_easy_strerror(curl_init_rc));
		return NULL;
	}
	r = calloc(1, sizeof *r);
	if (!r)
		goto nomem;
	r->o = *opts;
	if (r->o.timeout_ms <= 0)
		r->o.timeout_ms = 10000;
	if (r->o.connect_timeout_ms <= 0)
		r->o.connect_timeout_ms = 5000;
	if (r->o.retries == 0)
		r->o.retries = 3;
	else if (r->o.retries < 0)
		r->o.retries = 0;
	if (r->o.backoff_ms <= 0)
		r->o.backoff_ms = 200;
	if (r->o.max_backoff_ms <= 0)
		r->o.max_backoff_ms = 5000;
	r->url = strdup(opts->url);
	if (!r->url)
		goto nomem;
	size_t n = strlen(r->url);
	while (n > 0 && r->url[n - 1] == '/')
		r->url[--n] = '\0';
	r->username = dup_or_null(opts->username);
	r->password = dup_or_null(opts->password);
	r->ca_file = dup_or_null(opts->ca_file);
	if ((opts->username && !r->username) || (opts->password && !r->password) ||
	    (opts->ca_file && !r->ca_file))
		goto nomem;
	if (opts->bearer) {
		size_t len = strlen(opts->bearer) + sizeof "Authorization: Bearer ";
		r->bearer_header = malloc(len);
		if (!r->bearer_header)
			goto nomem;
		snprintf(r->bearer_header, len, "Authorization: Bearer %s", opts->bearer);
	}
	r->o.url = r->url;
	r->o.username = r->username;
	r->o.password = r->password;
	r->o.ca_file = r->ca_file;
	r->o.bearer = NULL;
	r->curl = curl_easy_init();
	if (!r->curl) {
		snprintf(err, errlen, "registry: curl_easy_init failed");
		tb_registry_free(r);
		return NULL;
	}
	return r;
nomem:
	snprintf(err, errlen, "registry: out of memory");
	tb_registry_free(r);
	return NULL;
}

void tb_registry_free(tb_registry *r)
{
	if (!r)
		return;
	if (r->curl)
		curl_easy_cleanup(r->curl);
	free(r->url);
	free(r->username);
	if (r->password) {
		memset(r->password, 0, strlen(r->password));
		free(r->password);
	}
	if (r->bearer_header) {
		memset(r->bearer_header, 0, strlen(r->bearer_header));
		free(r->bearer_header);
	}
	free(r->ca_file);
	free(r);
}

void tb_registry_schema_clear(tb_registry_schema *s)
{
	if (!s)
		return;
	free(s->subject);
	free(s->schema_type);
	free(s->schema);
	for (size_t i = 0; i < s->nrefs; i++) {
		free(s->refs[i].name);
		free(s->refs[i].subject);
	}
	free(s->refs);
	memset(s, 0, sizeof *s);
}

/* --- URLs, errors, bodies ------------------------------------------------ */

static bool unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

char *tb_registry_url(const char *base, const char *const *segments, size_t nsegments,
                      const char *query)
{
	size_t blen = strlen(base);
	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	size_t len = blen + 1;
	for (size_t i = 0; i < nsegments; i++)
		len += 1 + 3 * strlen(segments[i]);
	if (query)
		len += 1 + strlen(query);
	char *url = malloc(len);
	if (!url)
		return NULL;
	memcpy(url, base, blen);
	char *p = url + blen;
	for (size_t i = 0; i < nsegments; i++) {
		*p++ = '/';
		for (const unsigned char *s = (const unsigned char *)segments[i]; *s; s++) {
			if (unreserved(*s)) {
				*p++ = (char)*s;
			} else {
				static const char hex[] = "0123456789ABCDEF";
				*p++ = '%';
				*p++ = hex[*s >> 4];
				*p++ = hex[*s & 15];
			}
		}
	}
	if (query) {
		*p++ = '?';
		size_t qlen = strlen(query);
		memcpy(p, query, qlen);
		p += qlen;
	}
	*p = '\0';
	return url;
}

void tb_registry_parse_error(long http_status, const char *body, size_t len, tb_registry_error *e)
{
	json_error_t jerr;
	json_t *j = body && len ? json_loadb(body, len, 0, &jerr) : NULL;
	json_t *code = j ? json_object_get(j, "error_code") : NULL;
	json_t *msg = j ? json_object_get(j, "message") : NULL;

	if (json_is_integer(code) || json_is_string(msg)) {
		int c = json_is_integer(code) ? (int)json_integer_value(code) : 0;
		const char *m = json_is_string(msg) ? json_string_value(msg) : "(no message)";
		seterr(e, http_status, c, "HTTP %ld, error_code %d: %s", http_status, c, m);
	} else if (body && len) {
		size_t n = 0;
		while (n < len && n < 200 && body[n] != '\n' && body[n] != '\r')
			n++;
		seterr(e, http_status, 0, "HTTP %ld: %.*s", http_status, (int)n, body);
	} else {
		seterr(e, http_status, 0, "HTTP %ld (empty body)", http_status);
	}
	json_decref(j);
}

static char *json_strdup(json_t *j)
{
	return json_is_string(j) ? strdup(json_string_value(j)) : NULL;
}

static int parse_refs(json_t *refs, tb_registry_schema *out, tb_registry_error *e)
{
	if (!refs || json_is_null(refs))
		return 0;
	if (!json_is_array(refs)) {
		seterr(e, 0, 0, "registry answer: references is not an array");
		return -1;
	}
	size_t n = json_array_size(refs);
	if (!n)
		return 0;
	out->refs = calloc(n, sizeof *out->refs);
	if (!out->refs) {
		seterr(e, 0, 0, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *ref = json_array_get(refs, i);
		json_t *v = json_object_get(ref, "version");
		tb_registry_ref *dst = &out->refs[out->nrefs];
		dst->name = json_strdup(json_object_get(ref, "name"));
		dst->subject = json_strdup(json_object_get(ref, "subject"));
		out->nrefs++;
		if (!dst->name || !dst->subject || !json_is_integer(v)) {
			seterr(e, 0, 0,
			       "registry answer: reference %zu lacks name, subject or version", i);
			return -1;
		}
		dst->version = (int)json_integer_value(v);
	}
	return 0;
}

int tb_registry_parse_schema(const char *body, size_t len, tb_registry_schema *out,
                             tb_registry_error *e)
{
	json_error_t jerr;
	memset(out, 0, sizeof *out);
	json_t *j = json_loadb(body, len, 0, &jerr);
	if (!json_is_object(j)) {
		seterr(e, 0, 0, "registry answer is not a JSON object: %s",
		       j ? "another JSON value" : jerr.text);
		json_decref(j);
		return -1;
	}
	json_t *schema = json_object_get(j, "schema");
	json_t *type = json_object_get(j, "schemaType");
	json_t *id = json_object_get(j, "id");
	json_t *version = json_object_get(j, "version");
	if (json_object_get(j, "subject") && !json_is_string(json_object_get(j, "subject")))
		goto bad;
	if ((id && !json_is_integer(id)) || (version && !json_is_integer(version)) ||
	    (schema && !json_is_string(schema)) ||
	    (type && !json_is_string(type) && !json_is_null(type)))
		goto bad;
	out->subject = json_strdup(json_object_get(j, "subject"));
	out->id = id ? (int)json_integer_value(id) : 0;
	out->version = version ? (int)json_integer_value(version) : 0;
	/* The API leaves schemaType out for Avro, its default. */
	out->schema_type = strdup(json_is_string(type) ? json_string_value(type) : "AVRO");
	out->schema = schema ? strdup(json_string_value(schema)) : NULL;
	if (!out->schema_type || (schema && !out->schema))
		goto nomem;
	if (parse_refs(json_object_get(j, "references"), out, e))
		goto error;
	json_decref(j);
	return 0;
bad:
	seterr(e, 0, 0, "registry answer: a field of the schema has the wrong type");
	goto error;
nomem:
	seterr(e, 0, 0, "out of memory");
error:
	json_decref(j);
	tb_registry_schema_clear(out);
	return -1;
}

json_t *tb_registry_schema_request(const tb_registry_schema *s)
{
	json_t *j = json_object();
	if (!j)
		return NULL;
	json_object_set_new(j, "schema", json_string(s->schema ? s->schema : ""));
	/* schemaType is left out for Avro: older registries know no other. */
	if (s->schema_type && strcmp(s->schema_type, "AVRO"))
		json_object_set_new(j, "schemaType", json_string(s->schema_type));
	if (s->nrefs) {
		json_t *refs = json_array();
		for (size_t i = 0; i < s->nrefs; i++)
			json_array_append_new(
			    refs, json_pack("{s:s, s:s, s:i}", "name", s->refs[i].name, "subject",
			                    s->refs[i].subject, "version", s->refs[i].version));
		json_object_set_new(j, "references", refs);
	}
	return j;
}

long tb_registry_backoff(const tb_registry_opts *o, int attempt)
{
	long b = o->backoff_ms > 0 ? o->backoff_ms : 200;
	long max = o->max_backoff_ms > 0 ? o->max_backoff_ms : 5000;
	for (int i = 1; i < attempt && b < max; i++)
		b *= 2;
	return b < max ? b : max;
}

/* --- HTTP ---------------------------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	buf *b = arg;
	size_t len = size * n;
	if (b->len + len + 1 > MAX_BODY) {
		b->too_big = true;
		return 0;
	}
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + len + 1)
			cap *= 2;
		char *d = realloc(b->data, cap);
		if (!d)
			return 0;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return len;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* What may pass on its own: not a bad URL, a certificate nobody trusts,
 * an answer too large. */
static bool retriable_transport(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

static bool retriable_status(long status)
{
	return status == 429 || status >= 500;
}

/* One request with its retries. 0 with `out` holding a 2xx body (the
 * caller frees out->data), or -1 with `e` set (and `out` empty). */
static int request(tb_registry *r, const char *method, const char *url, json_t *body, buf *out,
                   tb_registry_error *e)
{
	char *payload = NULL;
	struct curl_slist *h = NULL;
	int rc = -1;
	memset(out, 0, sizeof *out);

	if (!url) {
		seterr(e, 0, 0, "out of memory");
		return -1;
	}
	if (body && !(payload = json_dumps(body, JSON_COMPACT))) {
		seterr(e, 0, 0, "out of memory");
		return -1;
	}
	h = curl_slist_append(h, "Accept: " TB_REGISTRY_MEDIA ", application/json");
	if (payload)
		h = curl_slist_append(h, "Content-Type: " TB_REGISTRY_MEDIA);
	if (r->bearer_header)
		h = curl_slist_append(h, r->bearer_header);
	if (!h) {
		seterr(e, 0, 0, "out of memory");
		goto out;
	}
	for (int attempt = 0;; attempt++) {
		CURL *c = r->curl;
		char cerr[CURL_ERROR_SIZE] = "";
		long status = 0;
		curl_easy_reset(c);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
		if (payload)
			curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
		curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, r->o.timeout_ms);
		curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, r->o.connect_timeout_ms);
		curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
		curl_easy_setopt(c, CURLOPT_USERAGENT, "tributary-registry-client");
		if (r->username) {
			curl_easy_setopt(c, CURLOPT_HTTPAUTH, CURLAUTH_BASIC);
			curl_easy_setopt(c, CURLOPT_USERNAME, r->username);
			curl_easy_setopt(c, CURLOPT_PASSWORD, r->password);
		}
		if (r->ca_file)
			curl_easy_setopt(c, CURLOPT_CAINFO, r->ca_file);
		if (r->o.insecure) {
			curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
			curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
		}
		CURLcode cc = curl_easy_perform(c);
		if (cc == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		if (cc == CURLE_OK && status >= 200 && status < 300) {
			rc = 0;
			break;
		}
		if (cc != CURLE_OK)
			seterr(e, 0, 0, "%s %s: %s", method, url,
			       out->too_big ? "answer too large"
			       : *cerr      ? cerr
			                    : curl_easy_strerror(cc));
		else
			tb_registry_parse_error(status, out->data, out->len, e);
		bool retry = cc != CURLE_OK ? retriable_transport(cc) : retriable_status(status);
		free(out->data);
		memset(out, 0, sizeof *out);
		if (!retry || attempt >= r->o.retries)
			break;
		sleep_ms(tb_registry_backoff(&r->o, attempt + 1));
	}
out:
	curl_slist_free_all(h);
	free(payload);
	return rc;
}

static json_t *request_json(tb_registry *r, const char *method, char *url, json_t *body,
                            tb_registry_error *e)
{
	buf b;
	int rc = request(r, method, url, body, &b, e);
	free(url);
	if (rc)
		return NULL;
	json_error_t jerr;
	json_t *j = json_loadb(b.data ? b.data : "", b.len, JSON_DECODE_ANY, &jerr);
	if (!j)
		seterr(e, 200, 0, "registry answer is not JSON: %s", jerr.text);
	free(b.data);
	return j;
}

static int request_schema(tb_registry *r, const char *method, char *url, json_t *body,
                          tb_registry_schema *out, tb_registry_error *e)
{
	buf b;
	int rc = request(r, method, url, body, &b, e);
	free(url);
	if (rc) {
		memset(out, 0, sizeof *out);
		return -1;
	}
	rc = tb_registry_parse_schema(b.data ? b.data : "", b.len, out, e);
	free(b.data);
	return rc;
}

static char *url_of(tb_registry *r, const char *query, size_t n, ...)
{
	const char *seg[8];
	va_list ap;
	va_start(ap, n);
	for (size_t i = 0; i < n && i < 8; i++)
		seg[i] = va_arg(ap, const char *);
	va_end(ap);
	return tb_registry_url(r->url, seg, n < 8 ? n : 8, query);
}

static const char *version_seg(int version, char *tmp, size_t len)
{
	if (version == TB_REGISTRY_LATEST)
		return "latest";
	snprintf(tmp, len, "%d", version);
	return tmp;
}

/* --- The API ------------------------------------------------------------- */

static int array_answer(json_t *j, json_t **out, tb_registry_error *e, const char *what)
{
	if (!j)
		return -1;
	if (!json_is_array(j)) {
		seterr(e, 200, 0, "registry answer to %s is not an array", what);
		json_decref(j);
		return -1;
	}
	*out = j;
	return 0;
}

int tb_registry_subjects(tb_registry *r, json_t **subjects, tb_registry_error *e)
{
	return array_answer(request_json(r, "GET", url_of(r, NULL, 1, "subjects"), NULL, e),
	                    subjects, e, "GET /subjects");
}

int tb_registry_versions(tb_registry *r, const char *subject, json_t **versions,
                         tb_registry_error *e)
{
	return array_answer(
	    request_json(r, "GET", url_of(r, NULL, 3, "subjects", subject, "versions"), NULL, e),
	    versions, e, "GET /subjects/{subject}/versions");
}

int tb_registry_get_version(tb_registry *r, const char *subject, int version,
                            tb_registry_schema *out, tb_registry_error *e)
{
	char v[16];
	return request_schema(
	    r, "GET",
	    url_of(r, NULL, 4, "subjects", subject, "versions", version_seg(version, v, sizeof v)),
	    NULL, out, e);
}

int tb_registry_get_by_id(tb_registry *r, int id, tb_registry_schema *out, tb_registry_error *e)
{
	char v[16];
	snprintf(v, sizeof v, "%d", id);
	if (request_schema(r, "GET", url_of(r, NULL, 3, "schemas", "ids", v), NULL, out, e))
		return -1;
	out->id = id;
	return 0;
}

int tb_registry_lookup(tb_registry *r, const char *subject, const tb_registry_schema *s,
                       tb_registry_schema *out, tb_registry_error *e)
{
	json_t *body = tb_registry_schema_request(s);
	int rc = request_schema(r, "POST", url_of(r, NULL, 2, "subjects", subject), body, out, e);
	json_decref(body);
	return rc;
}

int tb_registry_register(tb_registry *r, const char *subject, const tb_registry_schema *s, int *id,
                         tb_registry_error *e)
{
	json_t *body = tb_registry_schema_request(s);
	json_t *j =
	    request_json(r, "POST", url_of(r, NULL, 3, "subjects", subject, "versions"), body, e);
	json_decref(body);
	if (!j)
		return -1;
	json_t *jid = json_object_get(j, "id");
	int rc = 0;
	if (!json_is_integer(jid)) {
		seterr(e, 200, 0, "registry answer to a registration has no id");
		rc = -1;
	} else if (id) {
		*id = (int)json_integer_value(jid);
	}
	json_decref(j);
	return rc;
}

int tb_registry_check(tb_registry *r, const char *subject, int version, const tb_registry_schema *s,
                      bool *compatible, json_t **messages, tb_registry_error *e)
{
	char v[16];
	json_t *body = tb_registry_schema_request(s);
	json_t *j = request_json(r, "POST",
	                         url_of(r, "verbose=true", 5, "compatibility", "subjects", subject,
	                                "versions", version_seg(version, v, sizeof v)),
	                         body, e);
	json_decref(body);
	if (messages)
		*messages = NULL;
	if (!j)
		return -1;
	json_t *ok = json_object_get(j, "is_compatible");
	if (!json_is_boolean(ok)) {
		seterr(e, 200, 0, "registry answer to a compatibility check has no is_compatible");
		json_decref(j);
		return -1;
	}
	*compatible = json_is_true(ok);
	json_t *m = json_object_get(j, "messages");
	if (messages && json_is_array(m))
		*messages = json_incref(m);
	json_decref(j);
	return 0;
}

int tb_registry_get_config(tb_registry *r, const char *subject, char **level, tb_registry_error *e)
{
	char *url = subject ? url_of(r, "defaultToGlobal=true", 2, "config", subject)
	                    : url_of(r, NULL, 1, "config");
	json_t *j = request_json(r, "GET", url, NULL, e);
	if (!j)
		return -1;
	/* Confluent answers compatibilityLevel; some registries compatibility. */
	json_t *l = json_object_get(j, "compatibilityLevel");
	if (!json_is_string(l))
		l = json_object_get(j, "compatibility");
	if (!json_is_string(l)) {
		seterr(e, 200, 0, "registry answer to GET /config has no compatibilityLevel");
		json_decref(j);
		return -1;
	}
	*level = strdup(json_string_value(l));
	json_decref(j);
	if (!*level) {
		seterr(e, 0, 0, "out of memory");
		return -1;
	}
	return 0;
}
