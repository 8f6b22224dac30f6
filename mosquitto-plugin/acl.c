/*
 * MOSQ_EVT_ACL_CHECK for JWT-authenticated clients: each may publish and
 * subscribe only within the topic filters that the "auth.acl" templates give
 * its identity, e.g. publish "events/#", subscribe "users/{sub}/#".
 *
 * A subscription must lie entirely inside an allowed filter, so "users/+/#"
 * or "#" are refused even though they overlap "users/alice/#". Clients the
 * plugin did not authenticate (auth.internal_usernames) are deferred to
 * Mosquitto's own acl_file / dynamic-security.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "tributary/util.h"

static const char *const acl__placeholders[] = {"{sub}", "{identity}", "{client_id}", NULL};

/* Whether every topic matched by `filter` is matched by `allowed`; with a
 * plain topic as `filter` this is ordinary MQTT matching. */
bool acl__filter_within(const char *f, const char *a)
{
	/* MQTT 4.7.2: wildcards at the first level do not match $-topics. */
	if (f[0] == '$' && (a[0] == '+' || a[0] == '#'))
		return false;
	for (;;) {
		size_t fl = strcspn(f, "/"), al = strcspn(a, "/");
		if (al == 1 && a[0] == '#')
			return true;
		if (fl == 1 && f[0] == '#')
			return false;
		if (!(al == 1 && a[0] == '+')) {
			if (fl == 1 && f[0] == '+')
				return false;
			if (fl != al || memcmp(f, a, fl))
				return false;
		}
		f += fl;
		a += al;
		if (!*f)
			return !*a || !strcmp(a, "/#"); /* "x/#" also matches "x" */
		if (!*a)
			return false;
		f++;
		a++;
	}
}

/* Templates are checked once at configuration time with a stand-in value. */
int acl__check_templates(char **templates, const char *where, char *err, size_t errlen)
{
	for (size_t i = 0; templates && templates[i]; i++) {
		char **x = acl__expand(&templates[i], "x", "x");
		const char *t = templates[i];
		int rc = 0;
		for (const char *p = strchr(t, '{'); p; p = strchr(p + 1, '{')) {
			bool known = false;
			for (const char *const *n = acl__placeholders; *n; n++)
				if (!strncmp(p, *n, strlen(*n)))
					known = true;
			if (!known) {
				snprintf(
				    err, errlen,
				    "%s[%zu]: unknown placeholder in '%s' (use {sub}, {client_id})",
				    where, i, t);
				rc = -1;
				break;
			}
		}
		if (!rc && (!x || !x[0] || mosquitto_sub_topic_check(x[0]) != MOSQ_ERR_SUCCESS)) {
			snprintf(err, errlen, "%s[%zu]: '%s' is not a valid MQTT topic filter",
			         where, i, t);
			rc = -1;
		}
		auth__strv_free(x);
		if (rc)
			return rc;
	}
	return 0;
}

static char *acl__expand_one(const char *t, const char *identity, const char *client_id)
{
	size_t cap = strlen(t) + 1, len = 0;
	char *out;

	for (const char *p = t; (p = strchr(p, '{')); p++)
		cap += strlen(identity) + strlen(client_id);
	out = malloc(cap);
	if (!out)
		return NULL;
	while (*t) {
		const char *v = NULL;
		size_t skip = 0;
		if (*t == '{') {
			if (!strncmp(t, "{sub}", 5) || !strncmp(t, "{identity}", 10)) {
				v = identity;
				skip = t[1] == 's' ? 5 : 10;
			} else if (!strncmp(t, "{client_id}", 11)) {
				v = client_id;
				skip = 11;
			}
		}
		if (v) {
			memcpy(out + len, v, strlen(v));
			len += strlen(v);
			t += skip;
		} else {
			out[len++] = *t++;
		}
	}
	out[len] = '\0';
	return out;
}

char **acl__expand(char **templates, const char *identity, const char *client_id)
{
	size_t n = 0;
	char **out;

	while (templates && templates[n])
		n++;
	out = calloc(n + 1, sizeof(*out));
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (!(out[i] = acl__expand_one(templates[i], identity, client_id))) {
			auth__strv_free(out);
			return NULL;
		}
	}
	return out;
}

static bool acl__internal(const struct auth__conf *conf, const char *username)
{
	for (char **u = conf->internal; username && u && *u; u++)
		if (!strcmp(*u, username))
			return true;
	return false;
}

static const char *acl__access_name(int access)
{
	switch (access) {
	case MOSQ_ACL_READ:
		return "receive from";
	case MOSQ_ACL_WRITE:
		return "publish to";
	case MOSQ_ACL_SUBSCRIBE:
		return "subscribe to";
	default:
		return "access";
	}
}

int acl__on_check(int event, void *event_data, void *userdata)
{
	struct tbp_auth *a = userdata;
	struct mosquitto_evt_acl_check *ed = event_data;
	const char *id = mosquitto_client_id(ed->client);
	struct auth__client *c = id ? auth__find(a, id) : NULL;
	(void)event;

	if (!c || c->client != ed->client) {
		if (acl__internal(a->conf, mosquitto_client_username(ed->client)))
			return MOSQ_ERR_PLUGIN_DEFER;
		/* e.g. a persistent session restored from disk that no token has
		 * claimed since the broker started: nothing may flow to it. */
		return MOSQ_ERR_ACL_DENIED;
	}
	if (ed->access == MOSQ_ACL_UNSUBSCRIBE)
		return MOSQ_ERR_SUCCESS;
	if (c->exp > 0 && (double)time(NULL) >= c->exp + (double)a->conf->policy.leeway) {
		if (!c->expiry_logged) {
			char qid[TB_LOG_ESCAPE_LEN], qsub[TB_LOG_ESCAPE_LEN];
			mosquitto_log_printf(MOSQ_LOG_NOTICE,
			                     TB_LOG_PREFIX
			                     "acl: token of client '%s' (%s) has expired; "
			                     "refusing its traffic until it reconnects",
			                     tb_log_escape(qid, sizeof(qid), id),
			                     tb_log_escape(qsub, sizeof(qsub), c->identity));
			c->expiry_logged = true;
		}
		return MOSQ_ERR_ACL_DENIED;
	}
	for (char **f = ed->access == MOSQ_ACL_WRITE ? c->publish : c->subscribe; f && *f; f++)
		if (acl__filter_within(ed->topic, *f))
			return MOSQ_ERR_SUCCESS;
	if (ed->access != MOSQ_ACL_READ) {
		char qid[TB_LOG_ESCAPE_LEN], qsub[TB_LOG_ESCAPE_LEN], qtopic[TB_LOG_ESCAPE_LEN];
		mosquitto_log_printf(
		    MOSQ_LOG_NOTICE, TB_LOG_PREFIX "acl: client '%s' (%s) may not %s '%s'",
		    tb_log_escape(qid, sizeof(qid), id),
		    tb_log_escape(qsub, sizeof(qsub), c->identity), acl__access_name(ed->access),
		    tb_log_escape(qtopic, sizeof(qtopic), ed->topic));
	}
	return MOSQ_ERR_ACL_DENIED;
}
