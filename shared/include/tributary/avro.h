/*
 * Avro for registry routes (issue #19): an event's JSON data is validated
 * against a registry's Avro schema and encoded as Avro binary, as
 * Confluent's REST Proxy does for JSON input, and Avro records read from
 * Kafka are decoded back to JSON for web and mobile clients. libavro does
 * the schema parsing and the decoding; encoding writes the binary encoding
 * itself, straight from the parsed JSON (the bytes libavro would write,
 * without its per-value allocations); the JSON side follows the
 * Avro specification's JSON encoding (a union's non-null value is written
 * {"BRANCH": value}, bytes and fixed are strings of code points 0-255), the
 * same JSON that the REST Proxy takes and libavro's avro_value_to_json
 * writes, so that encode and decode are each other's inverse.
 *
 * A tb_avro_schema is immutable once parsed and may be used by several
 * threads at once (a tb_avro_buf by one at a time).
 */
#ifndef TRIBUTARY_AVRO_H
#define TRIBUTARY_AVRO_H

#include <stddef.h>

#include <jansson.h>

#include "tributary/jsonschema.h"

typedef struct tb_avro_schema tb_avro_schema;

/* Parses an Avro schema (the registry's `schema` text). NULL and a reason
 * in err when it is not a valid Avro schema. */
tb_avro_schema *tb_avro_schema_parse(const char *text, size_t len, char *err, size_t errlen);
void tb_avro_schema_free(tb_avro_schema *s);

/* The schema's type name (a record's name, else its type, e.g. "string"). */
const char *tb_avro_schema_name(const tb_avro_schema *s);

/* A growing output buffer, reused from call to call (zero-initialize it;
 * tb_avro_buf_free when done): len bytes at data. */
typedef struct {
	unsigned char *data;
	size_t len, cap;
} tb_avro_buf;
void tb_avro_buf_free(tb_avro_buf *b);

/* Validates data (as tjs_doc_parse read it; NULL is null) against the
 * schema and encodes it as Avro binary into out, replacing what out held:
 * no allocation once out has grown to the size of the encodings. 0 on
 * success; -1 when data does not match, err naming the JSON path and what
 * was expected there (e.g. "/lines/0/qty: expected an int, got a
 * string"); out's content is then undefined. */
int tb_avro_encode_value(const tb_avro_schema *s, const tjs_value *data, tb_avro_buf *out,
                         char *err, size_t errlen);

/* Decodes Avro binary written with this schema to JSON text (malloc'd,
 * NUL-terminated, *outlen bytes without the NUL). NULL and a reason in err
 * when the bytes are not a value of the schema (truncated, trailing bytes,
 * a bad union branch, ...). */
char *tb_avro_decode_json(const tb_avro_schema *s, const void *buf, size_t len, size_t *outlen,
                          char *err, size_t errlen);

#endif
