/*
 * JWT authentication (auth.c) and identity-based topic rules (acl.c).
 *
 * Everything runs on Mosquitto's main thread, so the state needs no locks;
 * a reload builds a new auth__conf and swaps the pointer.
 */
#ifndef TRIBUTARY_PLUGIN_AUTH_H
#define TRIBUTARY_PLUGIN_AUTH_H

#include "tributary.h"
#include "tributary/jwt.h"

/* An internal_client_ids glob; owner is the internal username it was
 * expanded for ({username}), NULL when any internal user may use it. */
struct auth__reserved {
	char *pattern;
	const char *owner; /* points into auth__conf.internal */
};

/* The "auth" section of the configuration, immutable once built. */
struct auth__conf {
	tjwt_keyset *keys;
	char *keys_path;
	tjwt_policy policy; /* points into the arrays below */
	char **issuers;     /* NULL-terminated */
	char **audiences;
	char **required;
	char *identity_claim;            /* default "sub" */
	char *username_claim;            /* default: identity_claim */
	char **internal;                 /* usernames left to Mosquitto's own checks */
	struct auth__reserved *reserved; /* client ids of internal clients */
	size_t nreserved;
	char **publish; /* topic filter templates */
	char **subscribe;
	bool disconnect_on_expiry;
};

/* What the broker knows about a JWT-authenticated client, keyed by client id.
 * Entries of persistent sessions outlive the connection, so that nobody else
 * can take the session (and its queued messages) over with another token. */
struct auth__client {
	struct auth__client *next;
	char *client_id;
	const struct mosquitto *client; /* compared, never dereferenced */
	char *identity;
	json_t *claims;
	double exp; /* 0: none */
	bool connected;
	bool expiry_logged;
	char **publish; /* expanded filters, NULL-terminated */
	char **subscribe;
};

struct tbp_auth {
	struct tributary *tb;
	struct auth__conf *conf;
	struct auth__client **buckets;
	size_t nbuckets, count;
	time_t next_scan;
	bool registered; /* auth__start registered the callbacks */
};

/* auth.c */
struct auth__client *auth__find(struct tbp_auth *a, const char *client_id);
void auth__strv_free(char **v);

/* acl.c */
int acl__check_templates(char **templates, const char *where, char *err, size_t errlen);
/* Expands the configured templates for one client; NULL-terminated, or NULL on error. */
char **acl__expand(char **templates, const char *identity, const char *client_id);
int acl__on_check(int event, void *event_data, void *userdata);
/* Exposed for tests and for the reasons in logs. */
bool acl__filter_within(const char *filter, const char *allowed);

#endif
