/*
 * JSON Schema validation (drafts 4, 6, 7, 2019-09, 2020-12) on jansson.
 *
 * A schema is compiled once into a tjs_schema; validating against it is
 * re-entrant and thread-safe (no global mutable state). Remote references
 * resolve only against documents registered in a tjs_registry (the shipped
 * meta-schemas are always there), never the network.
 */
#ifndef TRIBUTARY_JSONSCHEMA_H
#define TRIBUTARY_JSONSCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

typedef enum tjs_draft {
	TJS_DRAFT_DEFAULT = 0, /* as the options say, else 2020-12 */
	TJS_DRAFT_4 = 4,
	TJS_DRAFT_6 = 6,
	TJS_DRAFT_7 = 7,
	TJS_DRAFT_2019_09 = 2019,
	TJS_DRAFT_2020_12 = 2020,
} tjs_draft;

typedef struct tjs_options {
	tjs_draft default_draft; /* used when a schema has no $schema */
	bool format_assert;      /* `format` asserts instead of annotating */
	unsigned max_depth;      /* instance nesting / ref depth bound; 0 = library default */
} tjs_options;

typedef struct tjs_error {
	char *instance_location; /* JSON pointer into the instance, "" for the root */
	char *keyword_location;  /* JSON pointer of the failing keyword, through $ref */
	char *message;           /* human-readable */
} tjs_error;

typedef struct tjs_result {
	size_t count;
	tjs_error *errors;
} tjs_result;

typedef struct tjs_registry tjs_registry;
typedef struct tjs_schema tjs_schema;

/* A registry holds documents by absolute URI; it starts with the shipped
 * meta-schemas. Reference counted: compiled schemas keep theirs alive. */
tjs_registry *tjs_registry_new(void);
void tjs_registry_free(tjs_registry *reg);

/* Registers a document under `uri` (and under any $id it contains).
 * Takes its own reference to `doc`. Returns 0, or -1 with `err` filled. */
int tjs_registry_add(tjs_registry *reg, const char *uri, json_t *doc, char *err, size_t errlen);

/* Compiles `schema` (base URI `base_uri`, may be NULL). The schema is
 * checked against its meta-schema; NULL with `err` filled when it is invalid
 * or a reference cannot be resolved. */
tjs_schema *tjs_compile(tjs_registry *reg, json_t *schema, const char *base_uri,
			const tjs_options *opts, char *err, size_t errlen);
void tjs_schema_free(tjs_schema *schema);

/* Validates `instance`. With `result` non-NULL, up to `max_errors` errors
 * (0 = all) are collected into it; free them with tjs_result_clear. */
bool tjs_validate(const tjs_schema *schema, const json_t *instance, tjs_result *result,
		  size_t max_errors);
void tjs_result_clear(tjs_result *result);

#endif
