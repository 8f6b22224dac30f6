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

/* ---- Fast path: validating from bytes ----
 *
 * tjs_doc_parse reads JSON (RFC 8259, UTF-8) into an immutable document
 * that lives in one arena: no per-value allocations, strings decoded once
 * (NUL-terminated, with their length), object members in document order.
 * It accepts what json_loadb(JSON_DECODE_ANY | JSON_REJECT_DUPLICATES)
 * accepts, plus the flags below, plus the numbers RFC 8259 allows and
 * jansson refuses (integers beyond 64 bits, 1e400): a number beyond a
 * 64-bit integer, beyond a double's range, or with more than 17
 * significant digits (more than a double carries) is a JSON_REAL that
 * keeps its literal, which the validator compares exactly and
 * tjs_value_dump writes unchanged. A document may be read by any number of
 * threads; free it with tjs_doc_free (values are owned by it). */
typedef struct tjs_doc tjs_doc;
typedef struct tjs_value tjs_value;

enum {
	TJS_PARSE_ALLOW_NUL = 1 << 0,        /* "\u0000" in strings, as JSON_ALLOW_NUL */
	TJS_PARSE_ALLOW_DUPLICATES = 1 << 1, /* keep every member of a repeated key */
	TJS_PARSE_BIGINT_AS_REAL = 1 << 2,   /* integers beyond 64 bits read as plain doubles */
};

/* NULL on invalid JSON or no memory, with `err` ("... at line L, column C"). */
tjs_doc *tjs_doc_parse(const char *bytes, size_t len, unsigned flags, char *err, size_t errlen);
void tjs_doc_free(tjs_doc *doc);
const tjs_value *tjs_doc_root(const tjs_doc *doc);

/* Read access; the json_type values are jansson's. Accessors given a value of
 * another type return 0 / NULL. */
json_type tjs_value_type(const tjs_value *v);
const char *tjs_value_string(const tjs_value *v, size_t *len); /* NUL-terminated */
json_int_t tjs_value_integer(const tjs_value *v);
/* JSON_REAL or JSON_INTEGER as a double (the nearest; +-inf beyond) */
double tjs_value_real(const tjs_value *v);
/* A number's literal as written, when the document keeps it (see above),
 * else NULL. */
const char *tjs_value_number_text(const tjs_value *v, size_t *len);
size_t tjs_value_size(const tjs_value *v); /* array items or object members */
const tjs_value *tjs_value_at(const tjs_value *array, size_t i);
/* Member i of an object (document order); key and its length. */
const tjs_value *tjs_value_member(const tjs_value *object, size_t i, const char **key,
                                  size_t *keylen);
/* The JSON text of member i of the document's root object, exactly as in
 * the input given to tjs_doc_parse (so valid only while that input is):
 * lets a caller pass a member on without serializing it again. False for
 * any other object. */
bool tjs_value_member_raw(const tjs_value *object, size_t i, const char **raw, size_t *rawlen);
const tjs_value *tjs_value_get(const tjs_value *object, const char *key);
/* A jansson copy of the value (new reference), for code that wants json_t;
 * a kept literal becomes its nearest double, NULL if beyond a double's range. */
json_t *tjs_value_to_json(const tjs_value *v);
/* Compact JSON text, malloc'ed and NUL-terminated, in the format of
 * tb_json_encode (shortest round-trip reals, UTF-8 kept). */
char *tjs_value_dump(const tjs_value *v, size_t *len);

/* tjs_validate on a parsed value: same errors (locations and messages). */
bool tjs_validate_value(const tjs_schema *schema, const tjs_value *instance, tjs_result *result,
                        size_t max_errors);
/* Parses `bytes` (flags as tjs_doc_parse) and validates the document. Not
 * JSON: false, with one error at "" whose message starts "not valid JSON". */
bool tjs_validate_bytes(const tjs_schema *schema, const char *bytes, size_t len, unsigned flags,
                        tjs_result *result, size_t max_errors);

#endif
