/*
 * tributary-registry's view of a catalog: every schema file (the types'
 * and the resources'), the subject each is registered under, and the
 * catalog files each one $refs, in an order where references come first.
 */
#ifndef TRIBUTARY_REGISTRY_PLAN_H
#define TRIBUTARY_REGISTRY_PLAN_H

#include <stdbool.h>
#include <stddef.h>

enum strategy { STRATEGY_RECORD, STRATEGY_TOPIC, STRATEGY_TOPIC_RECORD };

typedef struct {
	size_t file; /* index into plan.files */
	char *name;  /* the reference's name: the file's $id, else the $ref as written */
} plan_ref;

typedef struct {
	char *path; /* as the catalog names it */
	char *type; /* the event type, NULL for a resource */
	char *uri;  /* $id, else file:// of its real path */
	bool has_id;
	char *text; /* the file's content, registered as is */
	char *subject;
	plan_ref *refs;
	size_t nrefs;
	/* filled while pushing/checking */
	int version; /* registered version of this exact text, 0: none */
	int latest;  /* the subject's latest version, 0: a new subject */
	bool visiting, done;
} plan_file;

typedef struct {
	plan_file *files;
	size_t nfiles;
	size_t *order; /* references before their referrers */
	size_t norder;
} plan;

/* Reads the catalog and its files; subjects by `strategy` (`topic` needed
 * for the topic strategies). -1 with `err` on any problem. */
int plan_load(plan *p, const char *catalog, enum strategy strategy, const char *topic, char *err,
              size_t errlen);
void plan_free(plan *p);
/* The subject of event type `type` under `strategy` (malloc'd). */
char *plan_subject(enum strategy strategy, const char *topic, const char *type);

#endif
