/*
 * The dev registry's JSON Schema compatibility check, a simplification of
 * Confluent's (docs/registry.md says exactly what it covers). Backward:
 * can `reader` validate every document that `writer` accepted? It answers
 * "no" for:
 *   - a property required by the reader and not by the writer;
 *   - a property (or the schema) whose `type` the reader narrowed: a type
 *     the writer allowed that the reader does not ("integer" counts as
 *     within "number");
 *   - a property the writer declared that the reader no longer declares
 *     while the reader has additionalProperties: false;
 *   - additionalProperties turned false where the writer allowed them;
 *   - an enum the reader narrowed (a value of the writer's enum missing).
 * It descends into `properties` and array `items` present on both sides.
 * `$ref`, combinators (allOf/anyOf/oneOf/not), conditionals and other
 * keywords (minimum, pattern, ...) are not compared. A message per problem
 * is appended to `messages`, prefixed by `where` and the JSON path.
 */
#ifndef TRIBUTARY_REGISTRY_DEV_COMPAT_H
#define TRIBUTARY_REGISTRY_DEV_COMPAT_H

#include <stdbool.h>
#include <jansson.h>

bool compat_json_backward(json_t *writer, json_t *reader, const char *where, json_t *messages);

/* Avro (compat_avro.c): can data written with the `writer` schema (text)
 * be read with the `reader` schema, by the specification's resolution
 * rules? libavro's resolution, with reader fields that have a default
 * allowed and enum symbols the reader dropped refused. */
bool compat_avro_backward(const char *writer, const char *reader, const char *where,
                          json_t *messages);

#endif
