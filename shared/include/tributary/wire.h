/*
 * Reading records in Confluent's wire format (magic byte 0, the schema id
 * as 4 bytes big-endian, then the payload) back to JSON, for the outbound
 * path (Kafka -> MQTT) and the nginx stream (docs/registry.md):
 *
 *   JSON Schema  the payload is the JSON: handed out as is
 *   Avro         the payload is Avro binary: decoded with the schema by id
 *                (shared/avro) to the Avro JSON encoding
 *   Protobuf     not decoded (the record is undecodable)
 *
 * A tb_wire_cache maps schema ids to what decoding needs. Ids are
 * immutable in a registry, so an entry is kept for the cache's life; an id
 * the registry does not know (40403) is remembered as such for
 * TB_WIRE_UNKNOWN_RETRY_S only (it may be registered later). Lookups and
 * additions may come from different threads (a lock inside); the network
 * is only used by tb_wire_fetch, which blocks: call it from a thread that
 * may wait, never from Mosquitto's main thread or an nginx event loop.
 */
#ifndef TRIBUTARY_WIRE_H
#define TRIBUTARY_WIRE_H

#include <stddef.h>

#include "tributary/registry.h"

#define TB_WIRE_HEADER_LEN 5
#define TB_WIRE_UNKNOWN_RETRY_S 60

typedef struct tb_wire_cache tb_wire_cache;

typedef enum tb_wire_status {
	TB_WIRE_OK,      /* *json, *jsonlen: the JSON (into `value`, or *owned) */
	TB_WIRE_MISSING, /* the schema *id is not cached: tb_wire_fetch it */
	TB_WIRE_BAD,     /* not decodable: err says why (no magic byte, an
	                    unknown id, bytes not of the schema, Protobuf) */
	TB_WIRE_NO_MEMORY,
} tb_wire_status;

/* The schema id of a value in the wire format; -1 when the value is
 * shorter than the header or does not start with the magic byte 0. */
int tb_wire_schema_id(const void *value, size_t len, int *id);

tb_wire_cache *tb_wire_cache_new(void);
void tb_wire_cache_free(tb_wire_cache *c);

/* 1 when schema `id` is cached (tb_wire_decode will not say MISSING). */
int tb_wire_cached(tb_wire_cache *c, int id);

/* Decodes `value` with the cached schemas only (no network). On
 * TB_WIRE_OK *json points at the JSON text: into `value` for a JSON
 * Schema payload (then *owned is NULL), else into *owned (malloc'd, the
 * caller frees it). `id` (may be NULL) is the record's schema id whenever
 * the header was read. */
tb_wire_status tb_wire_decode(tb_wire_cache *c, const void *value, size_t len, int *id,
                              const char **json, size_t *jsonlen, char **owned, char *err,
                              size_t errlen);

/* Fetches schema `id` from the registry (blocking) and caches it: 0 once
 * tb_wire_decode can tell (the schema, or that the registry does not know
 * the id or it cannot be used: those records are TB_WIRE_BAD); -1 when the
 * registry could not answer (no answer, 5xx, refused credentials, ...:
 * `e` says why; try again later). */
int tb_wire_fetch(tb_wire_cache *c, tb_registry *r, int id, tb_registry_error *e);

/* Caches schema `id` from its registry answer (what tb_wire_fetch does
 * after the request; for the unit tests). 0, or -1 when out of memory. */
int tb_wire_add(tb_wire_cache *c, int id, const char *schema_type, const char *schema,
                const char *error);

#endif
