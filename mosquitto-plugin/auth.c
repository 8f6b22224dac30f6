/*
 * MOSQ_EVT_BASIC_AUTH: the MQTT password is a JWT (docs/security.md).
 *
 *   "auth": { "enabled": true, "keys": "jwks.json", "issuer": "...", "audience": "...",
 *             "acl": { "publish": [...], "subscribe": [...] } }
 *
 * The token is verified with shared/jwt; its identity claim (default "sub")
 * must be safe inside a topic, and a non-empty MQTT username must equal the
 * username claim. Clients whose username is listed in internal_usernames are
 * deferred to Mosquitto's own mechanisms (password_file, dynamic-security);
 * their client ids (internal_client_ids) are refused to JWT clients, so that
 * no token takes over an internal client's session.
 * With "enabled": false (or no "auth" section) no callback is registered, so
 * the plugin takes no part in authentication or access control at all.
 *
 * SIGHUP re-reads the section and the key file; Mosquitto then re-checks
 * every client against the new keys and rules (2.0 security_apply).
 */
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "tributary/util.h"

/* ---- small helpers -------------------------------------------------------- */

void auth__strv_free(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

/* A string or an array of strings -> NULL-terminated vector; NULL value -> empty. */
static int auth__strv(const json_t *v, char ***out, const char *where, char *err, size_t errlen)
{
	size_t n = json_is_array(v) ? json_array_size(v) : v ? 1 : 0, i;
	json_t *x;

	*out = calloc(n + 1, sizeof(**out));
	if (!*out)
		return snprintf(err, errlen, "out of memory"), -1;
	if (!v)
		return 0;
	if (json_is_string(v)) {
		if (!((*out)[0] = strdup(json_string_value(v))))
			return snprintf(err, errlen, "out of memory"), -1;
		return 0;
	}
	if (!json_is_array(v))
		return snprintf(err, errlen, "%s: must be a string or an array of strings", where),
		       -1;
	json_array_foreach(v, i, x)
	{
		if (!json_is_string(x) || !json_string_length(x))
			return snprintf(err, errlen, "%s[%zu]: must be a non-empty string", where,
			                i),
			       -1;
		if (!((*out)[i] = strdup(json_string_value(x))))
			return snprintf(err, errlen, "out of memory"), -1;
	}
	return 0;
}

/* ---- configuration ----------------------------------------------------------- */

static void auth__conf_free(struct auth__conf *c)
{
	if (!c)
		return;
	tjwt_keyset_unref(c->keys);
	free(c->keys_path);
	auth__strv_free(c->issuers);
	auth__strv_free(c->audiences);
	auth__strv_free(c->required);
	free(c->identity_claim);
	free(c->username_claim);
	auth__strv_free(c->internal);
	for (size_t i = 0; i < c->nreserved; i++)
		free(c->reserved[i].pattern);
	free(c->reserved);
	auth__strv_free(c->publish);
	auth__strv_free(c->subscribe);
	free(c);
}

static int auth__int(const json_t *o, const char *name, long min, long max, long dflt, long *out,
                     char *err, size_t errlen)
{
	json_t *v = json_object_get(o, name);

	if (!v) {
		*out = dflt;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
		return snprintf(err, errlen, "auth.%s: must be an integer from %ld to %ld", name,
		                min, max),
		       -1;
	*out = (long)json_integer_value(v);
	return 0;
}

static int auth__only(const json_t *o, const char *where, const char *const *allowed, char *err,
                      size_t errlen)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)o, key, v)
	{
		bool ok = false;
		for (const char *const *a = allowed; *a; a++)
			ok |= !strcmp(key, *a);
		if (!ok)
			return snprintf(err, errlen, "%s.%s: unknown option", where, key), -1;
	}
	return 0;
}

/* pattern with every {username} replaced by user, glob-escaped; NULL: no memory. */
static char *auth__pattern_for(const char *pattern, const char *user)
{
	static const char ph[] = "{username}";
	size_t n = strlen(pattern) + 1;
	char *out, *o;

	for (const char *p = strstr(pattern, ph); p; p = strstr(p + 1, ph))
		n += 2 * strlen(user);
	if (!(out = o = malloc(n)))
		return NULL;
	while (*pattern) {
		if (strncmp(pattern, ph, sizeof(ph) - 1)) {
			*o++ = *pattern++;
			continue;
		}
		for (const char *u = user; *u; u++) {
			if (strchr("*?[]\\", *u))
				*o++ = '\\';
			*o++ = *u;
		}
		pattern += sizeof(ph) - 1;
	}
	*o = '\0';
	return out;
}

/* auth.internal_client_ids: required with internal_usernames, so that the
 * client ids of internal clients are never free for a token to take. */
static int auth__reserved_load(struct auth__conf *c, const json_t *v, char *err, size_t errlen)
{
	char **pats = NULL;
	size_t ninternal = 0, n = 0;
	int rc = -1;

	while (c->internal[ninternal])
		ninternal++;
	if (auth__strv(v, &pats, "auth.internal_client_ids", err, errlen))
		goto done;
	if (ninternal && !pats[0]) {
		snprintf(err, errlen,
		         "auth.internal_client_ids: required with internal_usernames: the client "
		         "ids the internal clients use (glob patterns such as \"{username}-*\"), "
		         "which JWT clients may then not use");
		goto done;
	}
	if (!ninternal && pats[0]) {
		snprintf(err, errlen, "auth.internal_client_ids: needs internal_usernames");
		goto done;
	}
	for (char **p = pats; *p; p++)
		n += strstr(*p, "{username}") ? ninternal : 1;
	if (!(c->reserved = calloc(n ? n : 1, sizeof(*c->reserved)))) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	for (char **p = pats; *p; p++) {
		if (!**p || strspn(*p, "*") == strlen(*p)) {
			snprintf(err, errlen,
			         "auth.internal_client_ids: '%s' would reserve every client id",
			         *p);
			goto done;
		}
		for (size_t i = 0; i < (strstr(*p, "{username}") ? ninternal : 1); i++) {
			struct auth__reserved *r = &c->reserved[c->nreserved];
			r->owner = strstr(*p, "{username}") ? c->internal[i] : NULL;
			if (!(r->pattern =
			          r->owner ? auth__pattern_for(*p, r->owner) : strdup(*p))) {
				snprintf(err, errlen, "out of memory");
				goto done;
			}
			c->nreserved++;
		}
	}
	rc = 0;
done:
	auth__strv_free(pats);
	return rc;
}

/* Whether client_id is an internal client's: of the internal user `owner`,
 * or of any internal user when owner is NULL. */
static bool auth__reserved_match(const struct auth__conf *c, const char *client_id,
                                 const char *owner)
{
	for (size_t i = 0; i < c->nreserved; i++)
		if ((!owner || !c->reserved[i].owner || !strcmp(owner, c->reserved[i].owner)) &&
		    !fnmatch(c->reserved[i].pattern, client_id, 0))
			return true;
	return false;
}

/*
 * Checks the "auth" section of the plugin's configuration (NULL: none);
 * relative key paths are relative to `dir`. Returns 0 with *out NULL when
 * authentication is off, 0 with a conf, or -1 with err. Every option of
 * the section is read here, so that the checks between them
 * (internal_client_ids with internal_usernames, …) sit beside the options
 * they join; hence its length.
 */
static int auth__conf_load(const json_t *auth, const char *dir, struct auth__conf **out, char *err,
                           size_t errlen)
{
	static const char *const allowed[] = {"enabled",
	                                      "keys",
	                                      "algorithms",
	                                      "issuer",
	                                      "audience",
	                                      "leeway",
	                                      "max_age",
	                                      "required_claims",
	                                      "identity_claim",
	                                      "username_claim",
	                                      "max_token_bytes",
	                                      "internal_usernames",
	                                      "acl",
	                                      "internal_client_ids",
	                                      "disconnect_on_expiry",
	                                      "comment",
	                                      NULL};
	static const char *const acl_allowed[] = {"publish", "subscribe", "comment", NULL};
	static const char *const default_publish[] = {"events/#", NULL};
	static const char *const default_subscribe[] = {
	    "users/{sub}/#", "clients/{client_id}/errors", "clients/{client_id}/replies", NULL};
	json_t *v, *acl;
	struct auth__conf *c = NULL;
	char keypath[PATH_MAX], kerr[512];
	long n;
	int rc = -1;

	*out = NULL;
	if (!auth || (json_is_object(auth) && json_is_false(json_object_get(auth, "enabled")))) {
		rc = 0;
		goto cleanup;
	}
	if (!json_is_object(auth)) {
		snprintf(err, errlen, "auth: must be an object");
		goto cleanup;
	}
	if (auth__only(auth, "auth", allowed, err, errlen))
		goto cleanup;
	v = json_object_get(auth, "enabled");
	if (v && !json_is_boolean(v)) {
		snprintf(err, errlen, "auth.enabled: must be true or false");
		goto cleanup;
	}
	if (!(c = calloc(1, sizeof(*c)))) {
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}

	v = json_object_get(auth, "keys");
	if (!json_is_string(v) || !json_string_length(v)) {
		snprintf(err, errlen, "auth.keys: must be the path of a JWKS, PEM or secret file");
		goto cleanup;
	}
	if (json_string_value(v)[0] == '/')
		snprintf(keypath, sizeof(keypath), "%s", json_string_value(v));
	else
		snprintf(keypath, sizeof(keypath), "%s/%s", dir, json_string_value(v));
	if (!(c->keys_path = strdup(keypath))) {
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	if (!(c->keys = tjwt_keyset_load(keypath, kerr, sizeof(kerr)))) {
		snprintf(err, errlen, "auth.keys: %s", kerr);
		goto cleanup;
	}

	v = json_object_get(auth, "algorithms");
	if (v) {
		char **algs = NULL;
		int bad = auth__strv(v, &algs, "auth.algorithms", err, errlen);
		for (char **p = algs; !bad && p && *p; p++) {
			tjwt_alg alg = tjwt_alg_from_name(*p);
			if (!alg) {
				snprintf(err, errlen,
				         "auth.algorithms: '%s' is not one of RS256, ES256, HS256",
				         *p);
				bad = -1;
			}
			c->policy.algs |= alg;
		}
		auth__strv_free(algs);
		if (bad)
			goto cleanup;
	}
	if (auth__strv(json_object_get(auth, "issuer"), &c->issuers, "auth.issuer", err, errlen) ||
	    auth__strv(json_object_get(auth, "audience"), &c->audiences, "auth.audience", err,
	               errlen) ||
	    auth__strv(json_object_get(auth, "required_claims"), &c->required,
	               "auth.required_claims", err, errlen) ||
	    auth__strv(json_object_get(auth, "internal_usernames"), &c->internal,
	               "auth.internal_usernames", err, errlen) ||
	    auth__reserved_load(c, json_object_get(auth, "internal_client_ids"), err, errlen))
		goto cleanup;
	c->policy.issuers = (const char *const *)c->issuers;
	c->policy.audiences = (const char *const *)c->audiences;
	c->policy.required = (const char *const *)c->required;
	if (auth__int(auth, "leeway", 0, 3600, 30, &c->policy.leeway, err, errlen) ||
	    auth__int(auth, "max_age", 0, 366L * 86400, 0, &c->policy.max_age, err, errlen) ||
	    auth__int(auth, "max_token_bytes", 256, 1 << 20, TJWT_MAX_TOKEN_DEFAULT, &n, err,
	              errlen))
		goto cleanup;
	c->policy.max_token_len = (size_t)n;

	if ((json_object_get(auth, "identity_claim") &&
	     !json_is_string(json_object_get(auth, "identity_claim"))) ||
	    (json_object_get(auth, "username_claim") &&
	     !json_is_string(json_object_get(auth, "username_claim")))) {
		snprintf(err, errlen,
		         "auth.identity_claim / auth.username_claim: must be claim names");
		goto cleanup;
	}
	v = json_object_get(auth, "identity_claim");
	c->identity_claim = strdup(v ? json_string_value(v) : "sub");
	v = json_object_get(auth, "username_claim");
	c->username_claim =
	    c->identity_claim ? strdup(v ? json_string_value(v) : c->identity_claim) : NULL;
	if (!c->identity_claim || !c->username_claim) {
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	v = json_object_get(auth, "disconnect_on_expiry");
	if (v && !json_is_boolean(v)) {
		snprintf(err, errlen, "auth.disconnect_on_expiry: must be true or false");
		goto cleanup;
	}
	c->disconnect_on_expiry = !v || json_is_true(v);

	acl = json_object_get(auth, "acl");
	if (acl &&
	    (!json_is_object(acl) || auth__only(acl, "auth.acl", acl_allowed, err, errlen))) {
		if (!json_is_object(acl))
			snprintf(err, errlen, "auth.acl: must be an object {publish, subscribe}");
		goto cleanup;
	}
	{
		json_t *pub = json_object_get(acl, "publish"),
		       *sub = json_object_get(acl, "subscribe");
		json_t *dpub = NULL, *dsub = NULL;
		if (!pub) {
			pub = dpub = json_array();
			for (const char *const *p = default_publish; *p; p++)
				json_array_append_new(dpub, json_string(*p));
		}
		if (!sub) {
			sub = dsub = json_array();
			for (const char *const *p = default_subscribe; *p; p++)
				json_array_append_new(dsub, json_string(*p));
		}
		int bad = auth__strv(pub, &c->publish, "auth.acl.publish", err, errlen) ||
		          auth__strv(sub, &c->subscribe, "auth.acl.subscribe", err, errlen) ||
		          acl__check_templates(c->publish, "auth.acl.publish", err, errlen) ||
		          acl__check_templates(c->subscribe, "auth.acl.subscribe", err, errlen);
		json_decref(dpub);
		json_decref(dsub);
		if (bad)
			goto cleanup;
	}
	*out = c;
	c = NULL;
	rc = 0;
cleanup:
	auth__conf_free(c);
	return rc;
}

/* ---- clients ------------------------------------------------------------------ */

static size_t auth__hash(const char *s)
{
	return (size_t)tb_fnv1a(TB_FNV1A_BASIS, s, strlen(s));
}

struct auth__client *auth__find(struct tbp_auth *a, const char *client_id)
{
	if (!a->nbuckets)
		return NULL;
	for (struct auth__client *c = a->buckets[auth__hash(client_id) % a->nbuckets]; c;
	     c = c->next)
		if (!strcmp(c->client_id, client_id))
			return c;
	return NULL;
}

static void auth__client_free(struct auth__client *c)
{
	free(c->client_id);
	free(c->identity);
	json_decref(c->claims);
	auth__strv_free(c->publish);
	auth__strv_free(c->subscribe);
	free(c);
}

static void auth__remove(struct tbp_auth *a, const char *client_id)
{
	struct auth__client **pp = &a->buckets[auth__hash(client_id) % a->nbuckets];

	for (; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->client_id, client_id)) {
			struct auth__client *c = *pp;
			*pp = c->next;
			auth__client_free(c);
			a->count--;
			return;
		}
	}
}

/* Inserts or replaces the entry for c->client_id; takes ownership of c. */
static int auth__put(struct tbp_auth *a, struct auth__client *c)
{
	if (a->count + 1 > a->nbuckets) {
		size_t nb = a->nbuckets ? a->nbuckets * 2 : 256;
		struct auth__client **b = calloc(nb, sizeof(*b));
		if (!b) {
			auth__client_free(c);
			return -1;
		}
		for (size_t i = 0; i < a->nbuckets; i++) {
			for (struct auth__client *e = a->buckets[i], *next; e; e = next) {
				next = e->next;
				e->next = b[auth__hash(e->client_id) % nb];
				b[auth__hash(e->client_id) % nb] = e;
			}
		}
		free(a->buckets);
		a->buckets = b;
		a->nbuckets = nb;
	}
	if (auth__find(a, c->client_id))
		auth__remove(a, c->client_id);
	size_t h = auth__hash(c->client_id) % a->nbuckets;
	c->next = a->buckets[h];
	a->buckets[h] = c;
	a->count++;
	return 0;
}

static struct tbp_auth *auth__state(struct tributary *tb)
{
	return tb ? tb->auth : NULL;
}

const char *auth__subject(struct tributary *tb, const struct mosquitto *client)
{
	struct tbp_auth *a = auth__state(tb);
	const char *id = client ? mosquitto_client_id(client) : NULL;
	struct auth__client *c = a && id ? auth__find(a, id) : NULL;

	return c && c->client == client ? c->identity : NULL;
}

const json_t *auth__claims(struct tributary *tb, const struct mosquitto *client)
{
	struct tbp_auth *a = auth__state(tb);
	const char *id = client ? mosquitto_client_id(client) : NULL;
	struct auth__client *c = a && id ? auth__find(a, id) : NULL;

	return c && c->client == client ? c->claims : NULL;
}

/* ---- callbacks ------------------------------------------------------------------ */

static int auth__refuse(struct mosquitto *client, const char *why_fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int auth__refuse(struct mosquitto *client, const char *why_fmt, ...)
{
	char why[1024], qid[TB_LOG_ESCAPE_LEN];
	va_list ap;

	va_start(ap, why_fmt);
	vsnprintf(why, sizeof(why), why_fmt, ap);
	va_end(ap);
	mosquitto_log_printf(
	    MOSQ_LOG_NOTICE, TB_LOG_PREFIX "auth: refused client '%s' from %s: %s",
	    tb_log_escape(qid, sizeof(qid), mosquitto_client_id(client)),
	    mosquitto_client_address(client) ? mosquitto_client_address(client) : "?", why);
	return MOSQ_ERR_AUTH;
}

static int auth__on_basic_auth(int event, void *event_data, void *userdata)
{
	struct tbp_auth *a = userdata;
	struct auth__conf *conf = a->conf;
	struct mosquitto_evt_basic_auth *ed = event_data;
	const char *client_id = mosquitto_client_id(ed->client), *identity, *problem, *expected;
	struct auth__client *c, *prev;
	tjwt_result res;
	char q[TB_LOG_ESCAPE_LEN], qid[TB_LOG_ESCAPE_LEN];
	(void)event;

	if (!client_id)
		return auth__refuse(ed->client, "no client id");
	for (char **u = conf->internal; ed->username && u && *u; u++) {
		if (strcmp(*u, ed->username))
			continue;
		if (!auth__reserved_match(conf, client_id, *u))
			return auth__refuse(ed->client,
			                    "internal user '%s' must use a client id matching "
			                    "auth.internal_client_ids",
			                    tb_log_escape(q, sizeof(q), *u));
		return MOSQ_ERR_PLUGIN_DEFER;
	}
	if (!ed->password || !*ed->password)
		return auth__refuse(ed->client, "no token (the MQTT password must be a JWT)");
	if (tjwt_verify(conf->keys, &conf->policy, ed->password, strlen(ed->password), 0, &res) !=
	    TJWT_OK)
		return auth__refuse(ed->client, "%s: %s", tjwt_status_name(res.status),
		                    res.message);

	identity = tjwt_claim_string(res.claims, conf->identity_claim);
	if (!identity) {
		tjwt_result_clear(&res);
		return auth__refuse(ed->client,
		                    "token has no string claim '%s' to identify the user",
		                    conf->identity_claim);
	}
	if ((problem = tjwt_identity_problem(identity))) {
		auth__refuse(ed->client, "identity '%s' %s (not usable in topics)",
		             tb_log_escape(q, sizeof(q), identity), problem);
		tjwt_result_clear(&res);
		return MOSQ_ERR_AUTH;
	}
	if ((problem = tjwt_identity_problem(client_id))) {
		tjwt_result_clear(&res);
		return auth__refuse(ed->client, "client id %s (not usable in topics)", problem);
	}
	if (ed->username && *ed->username) {
		expected = tjwt_claim_string(res.claims, conf->username_claim);
		if (!expected || strcmp(expected, ed->username)) {
			auth__refuse(
			    ed->client, "username '%s' does not match the token's '%s' claim",
			    tb_log_escape(q, sizeof(q), ed->username), conf->username_claim);
			tjwt_result_clear(&res);
			return MOSQ_ERR_AUTH;
		}
	}
	/* Mosquitto 2.0 runs this before it looks for a session to take over:
	 * refused here, the internal client keeps its connection and session. */
	if (auth__reserved_match(conf, client_id, NULL)) {
		auth__refuse(
		    ed->client,
		    "client id is reserved for internal clients (auth.internal_client_ids); "
		    "identity '%s'",
		    tb_log_escape(q, sizeof(q), identity));
		tjwt_result_clear(&res);
		return MOSQ_ERR_AUTH;
	}
	prev = auth__find(a, client_id);
	if (prev && strcmp(prev->identity, identity)) {
		auth__refuse(ed->client, "client id is bound to another identity's session ('%s')",
		             tb_log_escape(q, sizeof(q), prev->identity));
		tjwt_result_clear(&res);
		return MOSQ_ERR_AUTH;
	}

	c = calloc(1, sizeof(*c));
	if (!c) {
		tjwt_result_clear(&res);
		return MOSQ_ERR_NOMEM;
	}
	c->client = ed->client;
	c->connected = true;
	c->client_id = strdup(client_id);
	c->identity = strdup(identity);
	c->claims = tjwt_result_steal_claims(&res);
	c->exp = json_number_value(json_object_get(c->claims, "exp"));
	c->publish = acl__expand(conf->publish, identity, client_id);
	c->subscribe = acl__expand(conf->subscribe, identity, client_id);
	if (!c->client_id || !c->identity || !c->publish || !c->subscribe) {
		auth__client_free(c);
		return MOSQ_ERR_NOMEM;
	}
	mosquitto_log_printf(
	    MOSQ_LOG_INFO, TB_LOG_PREFIX "auth: client '%s' authenticated as '%s' (%s%s%s)",
	    tb_log_escape(qid, sizeof(qid), client_id), tb_log_escape(q, sizeof(q), c->identity),
	    tjwt_alg_name(res.alg), res.kid[0] ? ", kid " : "", res.kid);
	return auth__put(a, c) ? MOSQ_ERR_NOMEM : MOSQ_ERR_SUCCESS;
}

static int auth__on_disconnect(int event, void *event_data, void *userdata)
{
	struct tbp_auth *a = userdata;
	struct mosquitto_evt_disconnect *ed = event_data;
	const char *id = mosquitto_client_id(ed->client);
	struct auth__client *c = id ? auth__find(a, id) : NULL;
	(void)event;

	/* A takeover disconnects the old connection after the new one has
	 * authenticated: only the current owner's disconnect counts. */
	if (!c || c->client != ed->client)
		return MOSQ_ERR_SUCCESS;
	if (mosquitto_client_clean_session(ed->client))
		auth__remove(a, id);
	else
		c->connected = false;
	return MOSQ_ERR_SUCCESS;
}

/* Tokens bound the life of a connection, not only its start. */
static int auth__on_tick(int event, void *event_data, void *userdata)
{
	struct tbp_auth *a = userdata;
	time_t now = time(NULL);
	char **expired = NULL;
	size_t n = 0, cap = 0;
	(void)event;
	(void)event_data;

	if (!a->conf->disconnect_on_expiry || now < a->next_scan)
		return MOSQ_ERR_SUCCESS;
	a->next_scan = now + 1;
	for (size_t i = 0; i < a->nbuckets; i++) {
		for (struct auth__client *c = a->buckets[i]; c; c = c->next) {
			if (!c->connected || c->exp <= 0 ||
			    (double)now < c->exp + (double)a->conf->policy.leeway)
				continue;
			if (n == cap) {
				char **x =
				    realloc(expired, (cap = cap ? cap * 2 : 16) * sizeof(*x));
				if (!x)
					goto kick;
				expired = x;
			}
			if (!(expired[n] = strdup(c->client_id)))
				goto kick;
			n++;
			c->connected = false; /* once */
		}
	}
kick:
	/* Kicking runs the disconnect callback, which edits the table: not while iterating it. */
	for (size_t i = 0; i < n; i++) {
		char q[TB_LOG_ESCAPE_LEN];
		mosquitto_log_printf(MOSQ_LOG_NOTICE,
		                     TB_LOG_PREFIX "auth: disconnecting client '%s': token expired",
		                     tb_log_escape(q, sizeof(q), expired[i]));
		mosquitto_kick_client_by_clientid(expired[i], false);
		free(expired[i]);
	}
	free(expired);
	return MOSQ_ERR_SUCCESS;
}

static void auth__log_ready(struct tbp_auth *a, const char *what)
{
	char keys[512];

	tjwt_keyset_describe(a->conf->keys, keys, sizeof(keys));
	mosquitto_log_printf(MOSQ_LOG_NOTICE, TB_LOG_PREFIX "auth: %s: JWT keys from %s: %s", what,
	                     a->conf->keys_path, keys);
}

/* plugin.c, on SIGHUP while authentication is on: `auth` is the section of
 * the file read again. */
void auth__reload(struct tributary *tb, const json_t *auth)
{
	struct tbp_auth *a = tb->auth;
	struct auth__conf *conf = NULL;
	char err[1024];

	if (auth__conf_load(auth, tb->config_dir, &conf, err, sizeof(err))) {
		mosquitto_log_printf(
		    MOSQ_LOG_ERR,
		    TB_LOG_PREFIX "auth: reload: keeping the previous keys and rules: %s", err);
		return;
	}
	if (!conf) {
		mosquitto_log_printf(MOSQ_LOG_WARNING,
		                     TB_LOG_PREFIX "auth: reload: turning JWT authentication off "
		                                   "needs a restart; keeping it on");
		return;
	}
	auth__conf_free(a->conf);
	a->conf = conf;
	auth__log_ready(a, "reloaded");
}

/* ---- life cycle -------------------------------------------------------------------- */

static const struct {
	int event;
	MOSQ_FUNC_generic_callback cb;
} auth__callbacks[] = {
    {MOSQ_EVT_BASIC_AUTH, auth__on_basic_auth},
    {MOSQ_EVT_ACL_CHECK, acl__on_check},
    {MOSQ_EVT_DISCONNECT, auth__on_disconnect},
    {MOSQ_EVT_TICK, auth__on_tick},
};

/* config.c: the "auth" section, checked; tb->auth stays NULL when off. */
int auth__config(struct tributary *tb, const json_t *auth)
{
	struct auth__conf *conf = NULL;
	struct tbp_auth *a;
	char err[1024];

	if (auth__conf_load(auth, tb->config_dir, &conf, err, sizeof(err)))
		return config__fail("%s", err);
	if (!conf)
		return MOSQ_ERR_SUCCESS;
	if (!(a = calloc(1, sizeof(*a)))) {
		auth__conf_free(conf);
		return MOSQ_ERR_NOMEM;
	}
	a->tb = tb;
	a->conf = conf;
	tb->auth = a;
	return MOSQ_ERR_SUCCESS;
}

int auth__start(struct tributary *tb)
{
	struct tbp_auth *a = tb->auth;
	int rc;

	if (!a) {
		mosquitto_log_printf(MOSQ_LOG_NOTICE,
		                     TB_LOG_PREFIX "auth: JWT authentication off; Mosquitto's own "
		                                   "authentication and ACLs apply");
		return MOSQ_ERR_SUCCESS;
	}
	a->registered = true;
	for (size_t i = 0; i < sizeof(auth__callbacks) / sizeof(auth__callbacks[0]); i++) {
		rc = mosquitto_callback_register(tb->pid, auth__callbacks[i].event,
		                                 auth__callbacks[i].cb, NULL, a);
		if (rc) {
			mosquitto_log_printf(
			    MOSQ_LOG_ERR, TB_LOG_PREFIX "auth: cannot register callbacks (%d)", rc);
			auth__cleanup(tb);
			return rc;
		}
	}
	auth__log_ready(a, "JWT authentication on");
	return MOSQ_ERR_SUCCESS;
}

void auth__cleanup(struct tributary *tb)
{
	struct tbp_auth *a = tb->auth;

	if (!a)
		return;
	for (size_t i = 0;
	     a->registered && i < sizeof(auth__callbacks) / sizeof(auth__callbacks[0]); i++)
		mosquitto_callback_unregister(tb->pid, auth__callbacks[i].event,
		                              auth__callbacks[i].cb, NULL);
	for (size_t i = 0; i < a->nbuckets; i++) {
		for (struct auth__client *c = a->buckets[i], *next; c; c = next) {
			next = c->next;
			auth__client_free(c);
		}
	}
	free(a->buckets);
	auth__conf_free(a->conf);
	free(a);
	tb->auth = NULL;
}
