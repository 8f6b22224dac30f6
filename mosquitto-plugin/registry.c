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

struct tbp_regcache {
	struct tbp_registry *reg;
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

	_Atomic(struct regcache_set *) current;
	_Atomic(struct regcache_set *) hazard; /* the set the main thread reads */
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
	static const char *const allowed[] = {
	    "url",       "basic.auth.user.info", "bearer.auth.token", "ca", "timeout_ms",
	    "max_age_s", "start_timeout_ms",     "comment",           NULL};
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

/* Makes `next` (sorted here) the current set; frees the one it replaces
 * once the main thread no longer reads it. */
static void regcache__publish(struct tbp_regcache *c, struct regcache_set *next)
{
	if (next->n)
		qsort(next->e, next->n, sizeof(*next->e), regcache__cmp);
	atomic_store(&c->nschemas, next->n);
	struct regcache_set *old = atomic_exchange(&c->current, next);
	while (old && atomic_load(&c->hazard) == old) {
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
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
	                      c->reg->name, c->reg->url, why, e->http_status, e->message,
	                      (size_t)atomic_load(&c->nschemas),
	                      c->reg->max_age_s < REGISTRY_RETRY_S ? c->reg->max_age_s
	                                                           : REGISTRY_RETRY_S);
}

static void regcache__reachable(struct tbp_regcache *c)
{
	if (!c->down)
		return;
	c->down = false;
	cluster__note_failure(c->tb, "registry %s (%s): reachable again", c->reg->name,
	                      c->reg->url);
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
		snprintf(base, sizeof(base), "%s/schemas/ids/%d", c->reg->url, s->id);
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

static void *regcache__run(void *arg)
{
	struct tbp_regcache *c = arg;
	struct timespec next;
	regcache__load_all(c);
	pthread_mutex_lock(&c->lock);
	c->loaded = true;
	pthread_cond_broadcast(&c->cond);
	clock_gettime(CLOCK_REALTIME, &next);
	next.tv_sec += c->down ? REGISTRY_RETRY_S : c->reg->max_age_s;
	while (!c->stop) {
		char *wanted[REGISTRY_WANTED];
		size_t nwanted;
		int rc = 0;
		while (!c->stop && !c->nwanted && rc != ETIMEDOUT)
			rc = pthread_cond_timedwait(&c->cond, &c->lock, &next);
		if (c->stop)
			break;
		nwanted = c->nwanted;
		memcpy(wanted, c->wanted, nwanted * sizeof(*wanted));
		c->nwanted = 0;
		pthread_mutex_unlock(&c->lock);
		for (size_t i = 0; i < nwanted; i++) {
			if (!c->down)
				regcache__load_one(c, wanted[i]);
			free(wanted[i]);
		}
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		if (rc == ETIMEDOUT || now.tv_sec >= next.tv_sec) {
			regcache__load_all(c);
			clock_gettime(CLOCK_REALTIME, &next);
			int wait = c->reg->max_age_s;
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
		tb_registry_opts o = {.url = r->url,
		                      .username = r->user,
		                      .password = r->password,
		                      .bearer = r->bearer,
		                      .ca_file = r->ca,
		                      .timeout_ms = r->timeout_ms,
		                      .retries = 1};
		if (!(c->missed = json_object()) ||
		    !(c->client = tb_registry_new(&o, err, sizeof(err)))) {
			mosquitto_log_printf(MOSQ_LOG_ERR, TB_LOG_PREFIX "registry %s: %s", r->name,
			                     c->missed ? err : "out of memory");
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
			regcache__set_free(atomic_load(&c->current));
			tb_registry_free(c->client);
			json_decref(c->missed);
			free(c);
		}
		free(r->name);
		free(r->url);
		free(r->user);
		free(r->password);
		free(r->bearer);
		free(r->ca);
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
	}
}
