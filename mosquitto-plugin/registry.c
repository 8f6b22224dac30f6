/*
 * The "registries" section: Confluent-compatible Schema Registries whose
 * JSON Schemas and Avro schemas ingest routes validate against
 * (docs/registry.md). Protobuf subjects are refused: no Debian C library
 * validates JSON against a .proto (libprotobuf-c needs generated code).
 *
 *   "registries": { "main": { "url": "https://psrc-x.confluent.cloud",
 *                             "basic.auth.user.info": "${SR_KEY}:${SR_SECRET}",
 *                             "max_age_s": 300 } }
 *
 * Threads: one per registry talks to it (shared/registry, blocking libcurl
 * calls) and compiles what it fetched. It loads every subject's latest
 * version at start, again every max_age_s, and a subject the publish path
 * asked for (registry__find queues it) at once. Each load makes a new
 * immutable set of compiled schemas that replaces the current one with one
 * atomic store; the main thread reads the current set without locks.
 *
 * Reclaiming a replaced set: the main thread is the one reader. Before it
 * reads, it publishes the set it is about to use in `hazard` (and checks
 * that it is still current); it clears `hazard` when its event is done. The
 * thread frees a replaced set only once `hazard` no longer names it (a
 * hazard pointer with one slot). Compiled schemas are shared between sets
 * by a count only the thread touches.
 *
 * A registry that fails (no answer, 5xx, refused credentials) is logged
 * and counted once per outage ($SYS/tributary/registry/NAME/outages); the
 * current set keeps serving. Log lines go through the failure log that the
 * main thread writes out (cluster.c): the broker's log is not ours to call
 * from this thread.
 *
 * SIGHUP (registry__reload) reads the section again: the main thread keeps
 * its own view of each registry's settings (tbp_registry), the thread its
 * copy (`conf`); a changed registry's new copy is handed to the thread,
 * which makes its client again and loads every subject at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tributary.h"
#include "tributary/registry.h"

#define REGISTRY_WANTED 64 /* subjects queued for a fetch, at most */
#define REGISTRY_RETRY_S 5 /* while the registry is down */
#define REGISTRY_MISS_S 1  /* a subject found missing is asked again after */
#define REGISTRY_MAX_REF_DEPTH 16
#define REGISTRY_PINNED 1000      /* older versions cached for dataschema, by default */
#define REGISTRY_PINS_MISSING 256 /* versions found missing, remembered at most */

struct regcache_entry {
	char *subject;
	int id, version;
	tjs_schema *schema;   /* a JSON Schema, compiled */
	tb_avro_schema *avro; /* or an Avro schema, parsed */
	char *error;          /* neither: why it cannot be used */
	unsigned refs;        /* the sets holding it; the thread's only */
};

struct regcache_set {
	size_t n;
	struct regcache_entry **e; /* sorted by subject */
};

/* An older version that a client's dataschema names (docs/registry.md,
 * "dataschema"): versions are immutable, so it is fetched once and kept,
 * up to the registry's pinned_versions (the oldest fetched goes first); or
 * found not to exist (`missing` says why: forgotten at each refresh, as
 * such a version may be registered later; REGISTRY_PINS_MISSING at most). */
struct regcache_pin {
	char *subject;
	int id, version;          /* a missing one's, as asked: the other is 0 */
	struct regcache_entry *e; /* NULL: missing */
	char *missing;
};

/* The pins the main thread reads: replaced whole, never changed. */
struct regcache_pins {
	size_t n;
	struct regcache_pin *p[];
};

struct regcache_pinreq {
	char *subject;
	int id, version; /* one of them 0 */
};

struct tbp_regcache {
	struct tbp_registry *reg;  /* the thread reads only its name */
	struct tbp_registry *conf; /* the thread's copy of the settings */
	struct tributary *tb;
	tb_registry *client;
	pthread_t thread;
	bool started;
	pthread_mutex_t lock; /* the fields below up to `loaded` */
	pthread_cond_t cond;
	bool stop;
	bool loaded; /* the first load is done (or failed) */
	char *wanted[REGISTRY_WANTED];
	size_t nwanted;
	struct tbp_registry *next_conf; /* from a reload, for the thread to take */
	struct regcache_pinreq pinwanted[REGISTRY_WANTED];
	size_t npinwanted;

	_Atomic(struct regcache_set *) current;
	_Atomic(struct regcache_set *) hazard; /* the set the main thread reads */
	_Atomic(struct regcache_pins *) pins;
	_Atomic(struct regcache_pins *) pin_hazard; /* the pins the main thread reads */
	atomic_uint_fast64_t npinned;
	atomic_uint_fast64_t outages;
	atomic_uint_fast64_t nschemas;

	/* the thread's own */
	bool down;
	json_t *missed; /* subject -> when it was found missing */
};

/* ---- configuration ---- */

static int registry__string(const json_t *j, const char *key, const char *where, char **out)
{
	json_t *v = json_object_get(j, key);
	if (!v)
		return MOSQ_ERR_SUCCESS;
	if (!json_is_string(v) || !json_string_length(v))
		return config__fail("%s.%s: must be a non-empty string", where, key);
	if (!(*out = strdup(json_string_value(v))))
		return MOSQ_ERR_NOMEM;
	return MOSQ_ERR_SUCCESS;
}

static int registry__config_one(struct tbp_registry *r, const json_t *j, const char *where,
                                const char *base_dir)
{
	static const char *const allowed[] = {"url",
	                                      "basic.auth.user.info",
	                                      "bearer.auth.token",
	                                      "ca",
	                                      "timeout_ms",
	                                      "max_age_s",
	                                      "start_timeout_ms",
	                                      "comment",
	                                      "pinned_versions",
	                                      NULL};
	char msg[320], *userinfo = NULL;
	long long n;
	int rc;
	if (!json_is_object(j))
		return config__fail("%s: must be an object with \"url\"", where);
	if ((rc = config__only(j, where, allowed)))
		return rc;
	if (!json_is_string(json_object_get(j, "url")))
		return config__fail("%s.url: must be the registry's base URL (http:// or https://)",
		                    where);
	if ((rc = registry__string(j, "url", where, &r->url)))
		return rc;
	if (strncmp(r->url, "http://", 7) && strncmp(r->url, "https://", 8))
		return config__fail("%s.url: must start with http:// or https://", where);
	size_t ulen = strlen(r->url);
	while (ulen > 8 && r->url[ulen - 1] == '/')
		r->url[--ulen] = '\0';
	if ((rc = registry__string(j, "basic.auth.user.info", where, &userinfo)) ||
	    (rc = registry__string(j, "bearer.auth.token", where, &r->bearer)))
		goto out;
	if (userinfo) {
		char *colon = strchr(userinfo, ':');
		if (!colon) {
			rc = config__fail("%s.basic.auth.user.info: must be USER:PASSWORD", where);
			goto out;
		}
		*colon = '\0';
		if (!(r->user = strdup(userinfo)) || !(r->password = strdup(colon + 1))) {
			rc = MOSQ_ERR_NOMEM;
			goto out;
		}
		if (r->bearer) {
			rc = config__fail("%s.bearer.auth.token: not with basic.auth.user.info",
			                  where);
			goto out;
		}
	}
	char *ca = NULL;
	if ((rc = registry__string(j, "ca", where, &ca)))
		goto out;
	if (ca && ca[0] != '/') {
		size_t len = strlen(base_dir) + strlen(ca) + 2;
		if (!(r->ca = malloc(len))) {
			free(ca);
			rc = MOSQ_ERR_NOMEM;
			goto out;
		}
		snprintf(r->ca, len, "%s/%s", base_dir, ca);
		free(ca);
	} else {
		r->ca = ca;
	}
	snprintf(msg, sizeof(msg), "%.160s.timeout_ms: must be 100 to 600000", where);
	if ((rc = config__int(j, "timeout_ms", 100, 600000, 10000, &n, msg)))
		goto out;
	r->timeout_ms = (long)n;
	snprintf(msg, sizeof(msg), "%.160s.max_age_s: must be 1 to 86400 seconds", where);
	if ((rc = config__int(j, "max_age_s", 1, 86400, 300, &n, msg)))
		goto out;
	r->max_age_s = (int)n;
	snprintf(msg, sizeof(msg), "%.160s.start_timeout_ms: must be 0 to 600000", where);
	if ((rc = config__int(j, "start_timeout_ms", 0, 600000, 5000, &n, msg)))
		goto out;
	r->start_timeout_ms = (long)n;
	snprintf(msg, sizeof(msg), "%.160s.pinned_versions: must be 1 to 1000000", where);
	if ((rc = config__int(j, "pinned_versions", 1, 1000000, REGISTRY_PINNED, &n, msg)))
		goto out;
	r->pinned_versions = (int)n;
out:
	free(userinfo);
	return rc;
}

int registry__config(struct tributary *tb, const json_t *registries, const char *base_dir)
{
	const char *name;
	json_t *j;
	char where[160];
	int rc;
	if (!registries)
		return MOSQ_ERR_SUCCESS;
	if (!json_is_object(registries))
		return config__fail("registries: must be an object of named registries, e.g. "
		                    "{\"main\": {\"url\": \"http://127.0.0.1:8081\"}}");
	tb->registries = calloc(json_object_size(registries) + 1, sizeof(*tb->registries));
	if (!tb->registries)
		return MOSQ_ERR_NOMEM;
	json_object_foreach((json_t *)registries, name, j)
	{
		struct tbp_registry *r = &tb->registries[tb->nregistries++];
		if (!(r->name = strdup(name)))
			return MOSQ_ERR_NOMEM;
		snprintf(where, sizeof(where), "registries.%s", name);
		if ((rc = registry__config_one(r, j, where, base_dir)))
			return rc;
	}
	return MOSQ_ERR_SUCCESS;
}

/* ---- reload (SIGHUP) ---- */

/* The settings' strings (not the struct). */
static void registry__settings_free(struct tbp_registry *r)
{
	free(r->name);
	free(r->url);
	free(r->user);
	free(r->password);
	free(r->bearer);
	free(r->ca);
}

/* A copy of the settings (registry__settings_dup), freed. */
static void registry__settings_drop(struct tbp_registry *r)
{
	if (r)
		registry__settings_free(r);
	free(r);
}

static void registry__list_free(struct tbp_registry *list, size_t n)
{
	for (size_t i = 0; list && i < n; i++)
		registry__settings_free(&list[i]);
	free(list);
}

static bool registry__str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b));
}

/* What changed between two settings of a registry, for the log ("" when
 * nothing did). */
static void registry__changes(const struct tbp_registry *a, const struct tbp_registry *b, char *out,
                              size_t outlen)
{
	struct {
		bool differs;
		const char *what;
	} c[] = {{registry__str_differs(a->url, b->url), "url"},
	         {registry__str_differs(a->user, b->user) ||
	              registry__str_differs(a->password, b->password) ||
	              registry__str_differs(a->bearer, b->bearer),
	          "credentials"},
	         {registry__str_differs(a->ca, b->ca), "ca"},
	         {a->timeout_ms != b->timeout_ms, "timeout_ms"},
	         {a->max_age_s != b->max_age_s, "max_age_s"},
	         {a->start_timeout_ms != b->start_timeout_ms, "start_timeout_ms"},
	         {a->pinned_versions != b->pinned_versions, "pinned_versions"}};
	size_t len = 0;
	out[0] = '\0';
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		if (c[i].differs && len < outlen)
			len += (size_t)snprintf(out + len, outlen - len, "%s%s", len ? ", " : "",
			                        c[i].what);
}

/* A copy of `r`'s settings; NULL without memory. */
static struct tbp_registry *registry__settings_dup(const struct tbp_registry *r)
{
	struct tbp_registry *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	*d = (struct tbp_registry){.timeout_ms = r->timeout_ms,
	                           .start_timeout_ms = r->start_timeout_ms,
	                           .max_age_s = r->max_age_s,
	                           .pinned_versions = r->pinned_versions};
	if (!(d->name = strdup(r->name)) || !(d->url = strdup(r->url)) ||
	    (r->user && !(d->user = strdup(r->user))) ||
	    (r->password && !(d->password = strdup(r->password))) ||
	    (r->bearer && !(d->bearer = strdup(r->bearer))) ||
	    (r->ca && !(d->ca = strdup(r->ca)))) {
		registry__settings_drop(d);
		return NULL;
	}
	return d;
}

static void regcache__hand_over(struct tbp_regcache *c, struct tbp_registry *conf);

/* The section read again, all checked before anything changes: a route
 * still names each registry it uses, or the previous settings stay. */
static bool registry__reload_check(struct tributary *tb, struct tbp_registry *next, size_t n)
{
	for (size_t i = 0; i < tb->nroutes; i++) {
		const struct tbp_registry *r = tb->routes[i].registry;
		bool found = false;
		for (size_t k = 0; r && k < n && !found; k++)
			found = !strcmp(next[k].name, r->name);
		if (r && !found) {
			mosquitto_log_printf(MOSQ_LOG_ERR,
			                     TB_LOG_PREFIX
			                     "reload: registries.%s: removed, but "
			                     "ingest.routes[%zu] uses it; keeping the "
			                     "previous registries",
			                     r->name, i);
			return false;
		}
	}
	for (size_t k = 0; k < n; k++)
		if (!config__registry(tb, next[k].name))
			mosquitto_log_printf(MOSQ_LOG_WARNING,
			                     TB_LOG_PREFIX
			                     "reload: registries.%s: new; routes are "
			                     "read at start only: ignored until a restart",
			                     next[k].name);
	return true;
}

int registry__reload(struct tributary *tb, const json_t *registries)
{
	struct tbp_registry *next = NULL;
	size_t n = 0;
	const char *name;
	json_t *j;
	char where[160], changes[160];
	int rc = MOSQ_ERR_INVAL;
	if (registries && !json_is_object(registries)) {
		config__fail("registries: must be an object of named registries");
		goto keep;
	}
	if (!(next = calloc(json_object_size(registries) + 1, sizeof(*next)))) {
		rc = MOSQ_ERR_NOMEM;
		goto keep;
	}
	json_object_foreach((json_t *)registries, name, j)
	{
		struct tbp_registry *r = &next[n++];
		if (!(r->name = strdup(name))) {
			rc = MOSQ_ERR_NOMEM;
			goto keep;
		}
		snprintf(where, sizeof(where), "registries.%s", name);
		if ((rc = registry__config_one(r, j, where, tb->config_dir)))
			goto keep;
	}
	if (!registry__reload_check(tb, next, n))
		goto keep;
	for (size_t i = 0; i < tb->nregistries; i++) {
		struct tbp_registry *r = &tb->registries[i], *nr = NULL;
		for (size_t k = 0; k < n && !nr; k++)
			if (!strcmp(next[k].name, r->name))
				nr = &next[k];
		if (!nr) {
			mosquitto_log_printf(MOSQ_LOG_NOTICE,
			                     TB_LOG_PREFIX
			                     "reload: registries.%s: removed (no route "
			                     "uses it); it stays until a restart",
			                     r->name);
			continue;
		}
		registry__changes(r, nr, changes, sizeof(changes));
		if (!changes[0])
			continue;
		struct tbp_registry *conf = registry__settings_dup(nr);
		if (!conf) {
			rc = MOSQ_ERR_NOMEM;
			goto keep;
		}
		/* the main thread's view, then the thread's copy */
		char *rname = r->name;
		struct tbp_regcache *cache = r->cache;
		r->name = NULL;
		registry__settings_free(r);
		*r = *nr;
		free(r->name);
		r->name = rname;
		r->cache = cache;
		memset(nr, 0, sizeof(*nr));
		if (r->cache)
			regcache__hand_over(r->cache, conf);
		else
			registry__settings_drop(conf);
		mosquitto_log_printf(MOSQ_LOG_NOTICE,
		                     TB_LOG_PREFIX "reload: registry %s (%s): %s changed, in "
		                                   "effect now",
		                     r->name, r->url, changes);
	}
	registry__list_free(next, n);
	return MOSQ_ERR_SUCCESS;
keep:
	if (rc == MOSQ_ERR_NOMEM)
		mosquitto_log_printf(MOSQ_LOG_ERR,
		                     TB_LOG_PREFIX "reload: registries: out of memory");
	mosquitto_log_printf(MOSQ_LOG_ERR,
	                     TB_LOG_PREFIX "reload: keeping the previous registries (see above)");
	registry__list_free(next, n);
	return rc;
}

/* ---- sets of compiled schemas (the thread's) ---- */

static void regcache__entry_unref(struct regcache_entry *e)
{
	if (--e->refs)
		return;
	free(e->subject);
	free(e->error);
	tjs_schema_free(e->schema);
	tb_avro_schema_free(e->avro);
	free(e);
}

static void regcache__set_free(struct regcache_set *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		regcache__entry_unref(s->e[i]);
	free(s->e);
	free(s);
}

static int regcache__cmp(const void *a, const void *b)
{
	return strcmp((*(struct regcache_entry *const *)a)->subject,
	              (*(struct regcache_entry *const *)b)->subject);
}

static struct regcache_entry *regcache__set_find(const struct regcache_set *s, const char *subject)
{
	struct regcache_entry key = {.subject = (char *)subject}, *kp = &key;
	if (!s || !s->n)
		return NULL;
	struct regcache_entry **e = bsearch(&kp, s->e, s->n, sizeof(*s->e), regcache__cmp);
	return e ? *e : NULL;
}

/* Returns once the main thread no longer reads `old` (a replaced set, or
 * replaced pins). */
static void regcache__unread(struct tbp_regcache *c, const void *old, bool pins)
{
	while (old && (pins ? (const void *)atomic_load(&c->pin_hazard)
	                    : (const void *)atomic_load(&c->hazard)) == old) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
}

/* Makes `next` (sorted here) the current set; frees the one it replaces
 * once the main thread no longer reads it. */
static void regcache__publish(struct tbp_regcache *c, struct regcache_set *next)
{
	if (next->n)
		qsort(next->e, next->n, sizeof(*next->e), regcache__cmp);
	atomic_store(&c->nschemas, next->n);
	struct regcache_set *old = atomic_exchange(&c->current, next);
	regcache__unread(c, old, false);
	regcache__set_free(old);
}

/* ---- fetching and compiling ---- */

/* Is this failure the registry's (down, overloaded, refusing us) rather
 * than the subject's? */
static bool regcache__is_outage(const tb_registry_error *e)
{
	return e->http_status == 0 || e->http_status == 401 || e->http_status == 403 ||
	       e->http_status >= 500 || e->http_status == 429;
}

static void regcache__outage(struct tbp_regcache *c, const tb_registry_error *e)
{
	if (c->down)
		return;
	c->down = true;
	atomic_fetch_add(&c->outages, 1);
	const char *why = e->http_status == 401 || e->http_status == 403
	                      ? "the registry refused the credentials"
	                      : "the registry is unavailable";
	cluster__note_failure(c->tb,
	                      "registry %s (%s): %s (HTTP %ld: %s); %zu cached schemas keep "
	                      "serving, retrying every %d s",
	                      c->reg->name, c->conf->url, why, e->http_status, e->message,
	                      (size_t)atomic_load(&c->nschemas),
	                      c->conf->max_age_s < REGISTRY_RETRY_S ? c->conf->max_age_s
	                                                            : REGISTRY_RETRY_S);
}

static void regcache__reachable(struct tbp_regcache *c)
{
	if (!c->down)
		return;
	c->down = false;
	cluster__note_failure(c->tb, "registry %s (%s): reachable again", c->reg->name,
	                      c->conf->url);
}

/* `name` (a reference's name, a $ref) made absolute against `base`. */
static void regcache__resolve(const char *base, const char *name, char *out, size_t outlen)
{
	const char *slash = strrchr(base, '/');
	if (strstr(name, "://") || !strncmp(name, "urn:", 4) || !slash)
		snprintf(out, outlen, "%s", name);
	else
		snprintf(out, outlen, "%.*s%s", (int)(slash - base + 1), base, name);
}

/* Registers the schemas `s` refers to (and theirs) in `reg` under their
 * names resolved against `base`, as $ref finds them. 0, 1 (the registry
 * failed: `e` set) or -1 (err set). */
static int regcache__add_refs(struct tbp_regcache *c, tjs_registry *reg,
                              const tb_registry_schema *s, const char *base, int depth,
                              tb_registry_error *e, char *err, size_t errlen)
{
	if (depth > REGISTRY_MAX_REF_DEPTH) {
		snprintf(err, errlen, "references nested deeper than %d", REGISTRY_MAX_REF_DEPTH);
		return -1;
	}
	for (size_t i = 0; i < s->nrefs; i++) {
		const tb_registry_ref *ref = &s->refs[i];
		tb_registry_schema rs = {0};
		char uri[1024], rerr[512];
		if (tb_registry_get_version(c->client, ref->subject, ref->version, &rs, e)) {
			if (regcache__is_outage(e))
				return 1;
			snprintf(err, errlen, "reference %s (subject %s version %d): %s", ref->name,
			         ref->subject, ref->version, e->message);
			return -1;
		}
		json_error_t jerr;
		json_t *doc = json_loads(rs.schema, JSON_REJECT_DUPLICATES, &jerr);
		int rc = -1;
		regcache__resolve(base, ref->name, uri, sizeof(uri));
		if (!doc)
			snprintf(err, errlen, "reference %s: not JSON: %s", ref->name, jerr.text);
		else if (tjs_registry_add(reg, uri, doc, rerr, sizeof(rerr)))
			snprintf(err, errlen, "reference %s: %s", ref->name, rerr);
		else {
			const char *id = json_string_value(json_object_get(doc, "$id"));
			char nbase[1024];
			regcache__resolve(uri, id ? id : uri, nbase, sizeof(nbase));
			rc = regcache__add_refs(c, reg, &rs, nbase, depth + 1, e, err, errlen);
		}
		json_decref(doc);
		tb_registry_schema_clear(&rs);
		if (rc)
			return rc;
	}
	return 0;
}

/* The entry of a fetched version: compiled, or with the reason it cannot
 * be. NULL when the registry failed (`e` set) or out of memory. */
static struct regcache_entry *regcache__compile(struct tbp_regcache *c, const char *subject,
                                                const tb_registry_schema *s, tb_registry_error *e)
{
	struct regcache_entry *en = calloc(1, sizeof(*en));
	char err[1024] = "", base[1024];
	json_t *doc = NULL;
	tjs_registry *reg = NULL;
	if (!en || !(en->subject = strdup(subject)))
		goto nomem;
	en->id = s->id;
	en->version = s->version;
	if (s->schema_type && !strcmp(s->schema_type, "AVRO")) {
		char aerr[900];
		if (s->nrefs)
			snprintf(err, sizeof(err),
			         "it is an Avro schema with references: not supported");
		else if (!(en->avro = tb_avro_schema_parse(s->schema, strlen(s->schema), aerr,
		                                           sizeof(aerr))))
			snprintf(err, sizeof(err), "%s", aerr);
		goto unusable;
	}
	if (s->schema_type && !strcmp(s->schema_type, "PROTOBUF")) {
		snprintf(err, sizeof(err),
		         "it is a Protobuf schema: not supported (no C library validates JSON "
		         "data against a .proto without generated code; docs/registry.md)");
		goto unusable;
	}
	if (s->schema_type && strcmp(s->schema_type, "JSON")) {
		snprintf(err, sizeof(err), "it is a %s schema: not supported", s->schema_type);
		goto unusable;
	}
	json_error_t jerr;
	if (!(doc = json_loads(s->schema, JSON_REJECT_DUPLICATES, &jerr))) {
		snprintf(err, sizeof(err), "its schema is not JSON: %s", jerr.text);
		goto unusable;
	}
	const char *id =
	    json_is_object(doc) ? json_string_value(json_object_get(doc, "$id")) : NULL;
	if (id)
		snprintf(base, sizeof(base), "%s", id);
	else
		snprintf(base, sizeof(base), "%s/schemas/ids/%d", c->conf->url, s->id);
	if (!(reg = tjs_registry_new()))
		goto nomem;
	int rc = regcache__add_refs(c, reg, s, base, 0, e, err, sizeof(err));
	if (rc > 0)
		goto failed;
	if (rc == 0) {
		/* Confluent's default draft for a schema without $schema */
		tjs_options opts = {.default_draft = TJS_DRAFT_7, .format_assert = true};
		char cerr[900];
		en->schema = tjs_compile(reg, doc, base, &opts, cerr, sizeof(cerr));
		if (!en->schema)
			snprintf(err, sizeof(err), "its schema does not compile: %s", cerr);
	}
unusable:
	if (!en->schema && !en->avro && !(en->error = strdup(err)))
		goto nomem;
	if (en->error)
		cluster__note_failure(c->tb, "registry %s: subject %s version %d (id %d): %s",
		                      c->reg->name, subject, s->version, s->id, err);
	en->refs = 0;
	json_decref(doc);
	if (reg)
		tjs_registry_free(reg);
	return en;
nomem:
	snprintf(e->message, sizeof(e->message), "out of memory");
	e->http_status = -1;
failed:
	json_decref(doc);
	if (reg)
		tjs_registry_free(reg);
	if (en) {
		en->refs = 1;
		regcache__entry_unref(en);
	}
	return NULL;
}

/* The latest version of `subject`: the cached entry when it is still
 * that version, else a new one. 0 with *out (maybe NULL: no such subject),
 * or 1 when the registry failed. */
static int regcache__fetch(struct tbp_regcache *c, const struct regcache_set *cur,
                           const char *subject, struct regcache_entry **out)
{
	tb_registry_schema s = {0};
	tb_registry_error e = {0};
	*out = NULL;
	if (tb_registry_get_version(c->client, subject, TB_REGISTRY_LATEST, &s, &e)) {
		if (regcache__is_outage(&e)) {
			regcache__outage(c, &e);
			return 1;
		}
		return 0; /* 40401: no such subject (any other 4xx: neither usable) */
	}
	struct regcache_entry *old = regcache__set_find(cur, subject);
	if (old && old->id == s.id && old->version == s.version)
		*out = old;
	else if (!(*out = regcache__compile(c, subject, &s, &e))) {
		tb_registry_schema_clear(&s);
		if (e.http_status >= 0)
			regcache__outage(c, &e);
		return 1;
	}
	tb_registry_schema_clear(&s);
	return 0;
}

static struct regcache_set *regcache__set_new(size_t cap)
{
	struct regcache_set *s = calloc(1, sizeof(*s));
	if (s && !(s->e = calloc(cap + 1, sizeof(*s->e)))) {
		free(s);
		return NULL;
	}
	return s;
}

static void regcache__set_add(struct regcache_set *s, struct regcache_entry *e)
{
	e->refs++;
	s->e[s->n++] = e;
}

/* Every subject's latest version, as a new set; the current one stays
 * when the registry fails. */
static void regcache__load_all(struct tbp_regcache *c)
{
	json_t *subjects = NULL;
	tb_registry_error e = {0};
	struct regcache_set *cur = atomic_load(&c->current);
	if (tb_registry_subjects(c->client, &subjects, &e)) {
		regcache__outage(c, &e);
		return;
	}
	struct regcache_set *next = regcache__set_new(json_array_size(subjects));
	size_t i;
	json_t *v;
	if (!next)
		goto out;
	json_array_foreach(subjects, i, v)
	{
		struct regcache_entry *en;
		if (!json_is_string(v))
			continue;
		if (regcache__fetch(c, cur, json_string_value(v), &en)) {
			regcache__set_free(next); /* the current set keeps its own */
			goto out;
		}
		if (en)
			regcache__set_add(next, en);
	}
	regcache__reachable(c);
	regcache__publish(c, next);
out:
	json_decref(subjects);
}

/* The current set with `subject`'s latest version added or replaced. */
static void regcache__load_one(struct tbp_regcache *c, const char *subject)
{
	struct regcache_set *cur = atomic_load(&c->current);
	json_t *missed = json_object_get(c->missed, subject);
	time_t now = time(NULL);
	struct regcache_entry *en;
	if (missed && now - (time_t)json_integer_value(missed) < REGISTRY_MISS_S)
		return;
	if (regcache__set_find(cur, subject) || regcache__fetch(c, cur, subject, &en))
		return;
	regcache__reachable(c);
	if (!en) {
		json_object_set_new(c->missed, subject, json_integer(now));
		return;
	}
	json_object_del(c->missed, subject);
	struct regcache_set *next = regcache__set_new((cur ? cur->n : 0) + 1);
	if (!next) {
		en->refs++;
		regcache__entry_unref(en);
		return;
	}
	for (size_t i = 0; cur && i < cur->n; i++)
		regcache__set_add(next, cur->e[i]);
	regcache__set_add(next, en);
	regcache__publish(c, next);
}

/* ---- older versions pinned by dataschema (the thread's) ---- */

static void regcache__pin_free(struct regcache_pin *p)
{
	if (p->e)
		regcache__entry_unref(p->e);
	free(p->subject);
	free(p->missing);
	free(p);
}

/* Main thread and thread: the pin of `subject` by version (or by id when
 * `version` is 0), or NULL. */
static const struct regcache_pin *regcache__pins_find(const struct regcache_pins *ps,
                                                      const char *subject, int id, int version)
{
	for (size_t i = 0; ps && i < ps->n; i++) {
		const struct regcache_pin *p = ps->p[i];
		if ((version ? p->version == version : p->id == id) && !strcmp(p->subject, subject))
			return p;
	}
	return NULL;
}

enum regcache_keep { REGCACHE_KEEP_ALL, REGCACHE_KEEP_FOUND, REGCACHE_KEEP_NONE };

/* New pins for the main thread: the current ones that `keep` keeps, and
 * `add` (taken) when not NULL, the oldest of its kind dropped beyond
 * pinned_versions (found) or REGISTRY_PINS_MISSING (missing). */
static void regcache__pins_update(struct tbp_regcache *c, enum regcache_keep keep,
                                  struct regcache_pin *add)
{
	struct regcache_pins *cur = atomic_load(&c->pins);
	size_t n = cur ? cur->n : 0, nkeep = 0, ndropped = 0;
	struct regcache_pins *next = calloc(1, sizeof(*next) + (n + 1) * sizeof(next->p[0]));
	struct regcache_pin **dropped = calloc(n + 1, sizeof(*dropped));
	if (!next || !dropped) {
		free(next);
		free(dropped);
		if (add)
			regcache__pin_free(add);
		return;
	}
	/* found and missing ones bounded apart: asking for versions that do
	 * not exist never drops the ones that do */
	bool found = add && add->e;
	for (size_t i = 0; i < n; i++)
		nkeep +=
		    (keep == REGCACHE_KEEP_ALL || (keep == REGCACHE_KEEP_FOUND && cur->p[i]->e)) &&
		    !cur->p[i]->e == !found;
	size_t max = found ? (size_t)c->conf->pinned_versions : REGISTRY_PINS_MISSING;
	size_t skip = add && nkeep + 1 > max ? nkeep + 1 - max : 0;
	for (size_t i = 0; i < n; i++) {
		struct regcache_pin *p = cur->p[i];
		bool kept = keep == REGCACHE_KEEP_ALL || (keep == REGCACHE_KEEP_FOUND && p->e);
		if (kept && skip && !p->e == !found) {
			skip--;
			kept = false;
		}
		if (kept)
			next->p[next->n++] = p;
		else
			dropped[ndropped++] = p;
	}
	if (add)
		next->p[next->n++] = add;
	if (!ndropped && !add) {
		free(next);
		free(dropped);
		return;
	}
	size_t nfound = 0;
	for (size_t i = 0; i < next->n; i++)
		nfound += next->p[i]->e != NULL;
	atomic_store(&c->npinned, nfound);
	struct regcache_pins *old = atomic_exchange(&c->pins, next);
	regcache__unread(c, old, true);
	for (size_t i = 0; i < ndropped; i++)
		regcache__pin_free(dropped[i]);
	free(dropped);
	free(old);
}

/* Why a pinned version cannot be had, from the registry's answer. */
static void regcache__pin_missing(const struct tbp_regcache *c, const struct regcache_pinreq *q,
                                  bool by_id_found, const tb_registry_error *e, char *out,
                                  size_t outlen)
{
	if (q->version && (e->error_code == TB_REGISTRY_SUBJECT_NOT_FOUND ||
	                   e->error_code == TB_REGISTRY_VERSION_NOT_FOUND))
		snprintf(out, outlen, "subject '%s' has no version %d in registry %s", q->subject,
		         q->version, c->reg->name);
	else if (!q->version && !by_id_found && e->error_code == TB_REGISTRY_SCHEMA_NOT_FOUND)
		snprintf(out, outlen, "registry %s has no schema id %d", c->reg->name, q->id);
	else if (!q->version && by_id_found &&
	         (e->error_code == TB_REGISTRY_SUBJECT_NOT_FOUND ||
	          e->error_code == TB_REGISTRY_SCHEMA_NOT_FOUND))
		snprintf(out, outlen,
		         "schema id %d of registry %s is not a version of subject '%s'", q->id,
		         c->reg->name, q->subject);
	else
		snprintf(out, outlen, "registry %s refused %s %d of subject '%s' (HTTP %ld: %s)",
		         c->reg->name, q->version ? "version" : "schema id",
		         q->version ? q->version : q->id, q->subject, e->http_status, e->message);
}

/* The version `q` names, fetched and compiled (or found missing) into the
 * pins. By id: the schema, then the subject's version that holds it (a
 * lookup): an id of another subject is not this subject's version. */
static void regcache__load_pin(struct tbp_regcache *c, const struct regcache_pinreq *q)
{
	tb_registry_schema s = {0}, found = {0};
	tb_registry_error e = {0};
	char why[600];
	struct regcache_pin *p;
	if (regcache__pins_find(atomic_load(&c->pins), q->subject, q->id, q->version))
		return;
	if (!(p = calloc(1, sizeof(*p))) || !(p->subject = strdup(q->subject))) {
		free(p);
		return;
	}
	p->id = q->id;
	p->version = q->version;
	int rc = q->version ? tb_registry_get_version(c->client, q->subject, q->version, &s, &e)
	                    : tb_registry_get_by_id(c->client, q->id, &s, &e);
	bool by_id_found = !rc && !q->version;
	if (by_id_found && !(rc = tb_registry_lookup(c->client, q->subject, &s, &found, &e))) {
		s.version = found.version;
		s.id = q->id;
	}
	if (rc && regcache__is_outage(&e)) {
		regcache__outage(c, &e);
		goto drop;
	}
	if (rc) {
		regcache__pin_missing(c, q, by_id_found, &e, why, sizeof(why));
		if (!(p->missing = strdup(why)))
			goto drop;
	} else {
		struct regcache_entry *cur =
		    regcache__set_find(atomic_load(&c->current), q->subject);
		p->id = s.id;
		p->version = s.version;
		if (cur && cur->id == s.id && cur->version == s.version)
			p->e = cur;
		else if (!(p->e = regcache__compile(c, q->subject, &s, &e))) {
			if (e.http_status >= 0)
				regcache__outage(c, &e);
			goto drop;
		}
		p->e->refs++;
	}
	regcache__reachable(c);
	tb_registry_schema_clear(&s);
	tb_registry_schema_clear(&found);
	regcache__pins_update(c, REGCACHE_KEEP_ALL, p);
	return;
drop:
	tb_registry_schema_clear(&s);
	tb_registry_schema_clear(&found);
	regcache__pin_free(p);
}

/* The registry's client, made from `conf`; NULL with err set. */
static tb_registry *regcache__client(const struct tbp_registry *conf, char *err, size_t errlen)
{
	tb_registry_opts o = {.url = conf->url,
	                      .username = conf->user,
	                      .password = conf->password,
	                      .bearer = conf->bearer,
	                      .ca_file = conf->ca,
	                      .timeout_ms = conf->timeout_ms,
	                      .retries = 1};
	return tb_registry_new(&o, err, errlen);
}

/* Main thread (a reload): `conf` (taken) for the thread's next turn. */
static void regcache__hand_over(struct tbp_regcache *c, struct tbp_registry *conf)
{
	pthread_mutex_lock(&c->lock);
	registry__settings_drop(c->next_conf);
	c->next_conf = conf;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* The thread takes new settings (taken): a new client; at another URL, the
 * schemas cached from the previous one are dropped (their ids are not this
 * registry's). True when they are in use: every subject is loaded again. */
static bool regcache__reconfigure(struct tbp_regcache *c, struct tbp_registry *conf)
{
	char err[512];
	tb_registry *client = regcache__client(conf, err, sizeof(err));
	if (!client) {
		cluster__note_failure(c->tb,
		                      "registry %s: reload: %s; keeping the previous settings",
		                      c->reg->name, err);
		registry__settings_drop(conf);
		return false;
	}
	bool moved = strcmp(conf->url, c->conf->url) != 0;
	tb_registry_free(c->client);
	c->client = client;
	registry__settings_drop(c->conf);
	c->conf = conf;
	if (moved) {
		struct regcache_set *empty = regcache__set_new(0);
		if (empty)
			regcache__publish(c, empty);
		regcache__pins_update(c, REGCACHE_KEEP_NONE, NULL);
		json_object_clear(c->missed);
		c->down = false; /* another registry: its outages are its own */
	}
	return true;
}

static void *regcache__run(void *arg)
{
	struct tbp_regcache *c = arg;
	struct timespec next;
	regcache__load_all(c);
	pthread_mutex_lock(&c->lock);
	c->loaded = true;
	pthread_cond_broadcast(&c->cond);
	clock_gettime(CLOCK_REALTIME, &next);
	next.tv_sec += c->down ? REGISTRY_RETRY_S : c->conf->max_age_s;
	while (!c->stop) {
		char *wanted[REGISTRY_WANTED];
		size_t nwanted;
		int rc = 0;
		while (!c->stop && !c->nwanted && !c->npinwanted && !c->next_conf &&
		       rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&c->cond, &c->lock, &next);
		if (c->stop)
			break;
		struct tbp_registry *conf = c->next_conf;
		c->next_conf = NULL;
		nwanted = c->nwanted;
		memcpy(wanted, c->wanted, nwanted * sizeof(*wanted));
		c->nwanted = 0;
		struct regcache_pinreq pinwanted[REGISTRY_WANTED];
		size_t npinwanted = c->npinwanted;
		memcpy(pinwanted, c->pinwanted, npinwanted * sizeof(*pinwanted));
		c->npinwanted = 0;
		pthread_mutex_unlock(&c->lock);
		bool reconfigured = conf && regcache__reconfigure(c, conf);
		for (size_t i = 0; i < nwanted; i++) {
			if (!c->down)
				regcache__load_one(c, wanted[i]);
			free(wanted[i]);
		}
		for (size_t i = 0; i < npinwanted; i++) {
			if (!c->down)
				regcache__load_pin(c, &pinwanted[i]);
			free(pinwanted[i].subject);
		}
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		if (reconfigured || rc == ETIMEDOUT || now.tv_sec >= next.tv_sec) {
			regcache__load_all(c);
			regcache__pins_update(c, REGCACHE_KEEP_FOUND, NULL); /* asked again */
			clock_gettime(CLOCK_REALTIME, &next);
			int wait = c->conf->max_age_s;
			if (c->down && wait > REGISTRY_RETRY_S)
				wait = REGISTRY_RETRY_S;
			next.tv_sec += wait;
		}
		pthread_mutex_lock(&c->lock);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- the main thread's side ---- */

bool registry__find(struct tbp_registry *r, const char *subject, struct tbp_schema_ref *out)
{
	struct tbp_regcache *c = r->cache;
	struct regcache_set *s;
	do {
		s = atomic_load(&c->current);
		atomic_store(&c->hazard, s);
	} while (atomic_load(&c->current) != s);
	struct regcache_entry *e = regcache__set_find(s, subject);
	if (e) {
		*out = (struct tbp_schema_ref){.subject = e->subject,
		                               .id = e->id,
		                               .version = e->version,
		                               .schema = e->schema,
		                               .avro = e->avro,
		                               .error = e->error};
		return true;
	}
	/* Queued for the thread, never waited for: when it is busy (the lock
	 * taken), the next event of this subject asks again. */
	if (pthread_mutex_trylock(&c->lock))
		return false;
	bool queued = false;
	for (size_t i = 0; i < c->nwanted && !queued; i++)
		queued = !strcmp(c->wanted[i], subject);
	if (!queued && c->nwanted < REGISTRY_WANTED && (c->wanted[c->nwanted] = strdup(subject))) {
		c->nwanted++;
		pthread_cond_signal(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
	return false;
}

void registry__release(struct tbp_registry *r)
{
	atomic_store(&r->cache->hazard, NULL);
	atomic_store(&r->cache->pin_hazard, NULL);
}

/* `ds` as URL/schemas/ids/ID or URL/subjects/SUBJECT/versions/VERSION of
 * the registry at `url`: false when it is neither. */
static bool registry__parse_dataschema(const char *url, const char *ds, const char **subj,
                                       size_t *subjlen, int *id, int *version)
{
	size_t ulen = strlen(url);
	const char *num, *rest = ds + ulen;
	*subj = NULL;
	if (strncmp(ds, url, ulen))
		return false;
	if (!strncmp(rest, "/schemas/ids/", 13))
		num = rest + 13;
	else if (!strncmp(rest, "/subjects/", 10)) {
		const char *v = NULL;
		*subj = rest + 10;
		for (const char *f = *subj; (f = strstr(f, "/versions/")); f++)
			v = f;
		if (!v || v == *subj)
			return false;
		*subjlen = (size_t)(v - *subj);
		num = v + 10;
	} else
		return false;
	if (num[0] < '1' || num[0] > '9' || strlen(num) > 9 ||
	    strspn(num, "0123456789") != strlen(num))
		return false;
	*(*subj ? version : id) = atoi(num);
	return true;
}

/* Main thread: `subject`'s version (or schema id) queued for the thread;
 * never waited for (when the lock is taken, the next event asks again). */
static void registry__want_pin(struct tbp_regcache *c, const char *subject, int id, int version)
{
	if (pthread_mutex_trylock(&c->lock))
		return;
	bool queued = false;
	for (size_t i = 0; i < c->npinwanted && !queued; i++)
		queued = c->pinwanted[i].id == id && c->pinwanted[i].version == version &&
		         !strcmp(c->pinwanted[i].subject, subject);
	struct regcache_pinreq *q = &c->pinwanted[c->npinwanted];
	if (!queued && c->npinwanted < REGISTRY_WANTED && (q->subject = strdup(subject))) {
		q->id = id;
		q->version = version;
		c->npinwanted++;
		pthread_cond_signal(&c->cond);
	}
	pthread_mutex_unlock(&c->lock);
}

enum registry_pin registry__dataschema(struct tbp_registry *r, const char *subject, const char *ds,
                                       struct tbp_schema_ref *s, char *err, size_t errlen)
{
	struct tbp_regcache *c = r->cache;
	const char *dsubj;
	size_t dlen = 0;
	int id = 0, version = 0;
	if (!registry__parse_dataschema(r->url, ds, &dsubj, &dlen, &id, &version)) {
		snprintf(err, errlen,
		         "dataschema '%s' is not a schema of registry %s: it must be "
		         "%s/schemas/ids/ID or %s/subjects/%s/versions/VERSION (the latest: "
		         "%s/schemas/ids/%d, version %d)",
		         ds, r->name, r->url, r->url, subject, r->url, s->id, s->version);
		return REGISTRY_PIN_INVALID;
	}
	if (dsubj && (strlen(subject) != dlen || strncmp(dsubj, subject, dlen))) {
		snprintf(err, errlen,
		         "dataschema '%s' names subject '%.*s', but this event's subject is '%s'",
		         ds, (int)dlen, dsubj, subject);
		return REGISTRY_PIN_INVALID;
	}
	if (version ? version == s->version : id == s->id)
		return REGISTRY_PIN_LATEST;
	struct regcache_pins *ps;
	do {
		ps = atomic_load(&c->pins);
		atomic_store(&c->pin_hazard, ps);
	} while (atomic_load(&c->pins) != ps);
	const struct regcache_pin *p = regcache__pins_find(ps, subject, id, version);
	if (!p) {
		registry__want_pin(c, subject, id, version);
		snprintf(
		    err, errlen,
		    "%s %d of subject '%s' (dataschema) is not cached yet: it is being fetched "
		    "from registry %s, try again later",
		    version ? "version" : "schema id", version ? version : id, subject, r->name);
		return REGISTRY_PIN_PENDING;
	}
	if (p->missing) {
		snprintf(err, errlen, "dataschema '%s': %s", ds, p->missing);
		return REGISTRY_PIN_INVALID;
	}
	*s = (struct tbp_schema_ref){.subject = p->e->subject,
	                             .id = p->e->id,
	                             .version = p->e->version,
	                             .schema = p->e->schema,
	                             .error = p->e->error};
	return REGISTRY_PIN_PINNED;
}

int registry__start(struct tributary *tb)
{
	char err[512];
	for (size_t i = 0; i < tb->nregistries; i++) {
		struct tbp_registry *r = &tb->registries[i];
		struct tbp_regcache *c = calloc(1, sizeof(*c));
		if (!c)
			return MOSQ_ERR_NOMEM;
		r->cache = c;
		c->reg = r;
		c->tb = tb;
		if (!(c->conf = registry__settings_dup(r)) || !(c->missed = json_object()))
			return MOSQ_ERR_NOMEM;
		if (!(c->client = regcache__client(c->conf, err, sizeof(err)))) {
			mosquitto_log_printf(MOSQ_LOG_ERR, TB_LOG_PREFIX "registry %s: %s", r->name,
			                     err);
			return MOSQ_ERR_INVAL;
		}
		pthread_mutex_init(&c->lock, NULL);
		pthread_cond_init(&c->cond, NULL);
		if (pthread_create(&c->thread, NULL, regcache__run, c)) {
			mosquitto_log_printf(MOSQ_LOG_ERR,
			                     TB_LOG_PREFIX "registry %s: cannot start its thread",
			                     r->name);
			return MOSQ_ERR_UNKNOWN;
		}
		c->started = true;
	}
	/* The first loads, side by side; each waited for start_timeout_ms at
	 * most, counted from now (the start waits for the longest of them). */
	struct timespec t0;
	clock_gettime(CLOCK_REALTIME, &t0);
	for (size_t i = 0; i < tb->nregistries; i++) {
		struct tbp_registry *r = &tb->registries[i];
		struct tbp_regcache *c = r->cache;
		struct timespec until = t0;
		until.tv_sec += r->start_timeout_ms / 1000;
		until.tv_nsec += (r->start_timeout_ms % 1000) * 1000000;
		if (until.tv_nsec >= 1000000000) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000;
		}
		pthread_mutex_lock(&c->lock);
		while (!c->loaded &&
		       pthread_cond_timedwait(&c->cond, &c->lock, &until) != ETIMEDOUT)
			;
		bool loaded = c->loaded;
		pthread_mutex_unlock(&c->lock);
		if (loaded)
			mosquitto_log_printf(MOSQ_LOG_NOTICE,
			                     TB_LOG_PREFIX "registry %s (%s): %zu subjects loaded, "
			                                   "refreshed every %d s",
			                     r->name, r->url, (size_t)atomic_load(&c->nschemas),
			                     r->max_age_s);
		else
			mosquitto_log_printf(MOSQ_LOG_WARNING,
			                     TB_LOG_PREFIX
			                     "registry %s (%s): not loaded within "
			                     "start_timeout_ms %ld; starting without it "
			                     "(its events are refused schema_unavailable "
			                     "until their schemas arrive)",
			                     r->name, r->url, r->start_timeout_ms);
	}
	cluster__log_failures(tb);
	return MOSQ_ERR_SUCCESS;
}

void registry__cleanup(struct tributary *tb)
{
	for (size_t i = 0; i < tb->nregistries; i++) {
		struct tbp_registry *r = &tb->registries[i];
		struct tbp_regcache *c = r->cache;
		if (c && c->started) {
			pthread_mutex_lock(&c->lock);
			c->stop = true;
			pthread_cond_broadcast(&c->cond);
			pthread_mutex_unlock(&c->lock);
			pthread_join(c->thread, NULL);
			pthread_mutex_destroy(&c->lock);
			pthread_cond_destroy(&c->cond);
		}
		if (c) {
			for (size_t k = 0; k < c->nwanted; k++)
				free(c->wanted[k]);
			for (size_t k = 0; k < c->npinwanted; k++)
				free(c->pinwanted[k].subject);
			struct regcache_pins *ps = atomic_load(&c->pins);
			for (size_t k = 0; ps && k < ps->n; k++)
				regcache__pin_free(ps->p[k]);
			free(ps);
			regcache__set_free(atomic_load(&c->current));
			tb_registry_free(c->client);
			json_decref(c->missed);
			registry__settings_drop(c->conf);
			registry__settings_drop(c->next_conf);
			free(c);
		}
		registry__settings_free(r);
	}
	free(tb->registries);
	tb->registries = NULL;
	tb->nregistries = 0;
}

void registry__publish_stats(struct tributary *tb)
{
	char topic[256];
	for (size_t i = 0; i < tb->nregistries; i++) {
		struct tbp_registry *r = &tb->registries[i];
		if (!r->cache)
			continue;
		snprintf(topic, sizeof(topic), "$SYS/tributary/registry/%s/outages", r->name);
		stats__put(topic, atomic_load(&r->cache->outages));
		snprintf(topic, sizeof(topic), "$SYS/tributary/registry/%s/schemas", r->name);
		stats__put(topic, atomic_load(&r->cache->nschemas));
		snprintf(topic, sizeof(topic), "$SYS/tributary/registry/%s/pinned", r->name);
		stats__put(topic, atomic_load(&r->cache->npinned));
	}
}
