/*
 * CloudEvents 1.0: reading events from MQTT (structured JSON, or binary mode
 * with attributes as MQTT v5 user properties) and writing them to Kafka
 * (binary mode: ce_* headers + data as value; or structured JSON).
 */
#ifndef TRIBUTARY_CLOUDEVENTS_H
#define TRIBUTARY_CLOUDEVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "tributary/jsonschema.h"

typedef enum tb_ce_status {
	TB_CE_OK = 0,
	TB_CE_INVALID_UTF8,
	TB_CE_INVALID_JSON,
	TB_CE_NOT_AN_EVENT, /* JSON but not an object */
	TB_CE_MISSING_ATTRIBUTE,
	TB_CE_INVALID_ATTRIBUTE,
	TB_CE_INVALID_DATA, /* e.g. JSON content type with non-JSON data */
	TB_CE_NO_MEMORY,
} tb_ce_status;

/* The machine-readable reason for a status ("invalid_json", ...). */
const char *tb_ce_status_reason(tb_ce_status st);

/* A context attribute, its value as text: a string as is, an integer as its
 * decimal literal, a boolean as true or false (how headers carry them). */
typedef enum tb_ce_kind { TB_CE_STRING, TB_CE_INTEGER, TB_CE_BOOLEAN } tb_ce_kind;

typedef struct tb_ce_attrval {
	const char *name;
	const char *value; /* NUL-terminated */
	size_t len;
	tb_ce_kind kind;
} tb_ce_attrval;

#define TB_CE_INLINE_ATTRS 16

typedef struct tb_event {
	/* Context attributes in the order given. A small table, not a JSON
	 * object: the names and values point into the event's document, the
	 * caller's binary-mode attributes or the fields below, so an event
	 * costs no allocation per attribute on the broker's main thread. */
	tb_ce_attrval *attrs;
	size_t nattrs, attrs_cap;
	tb_ce_attrval attrs_inline[TB_CE_INLINE_ATTRS];
	char gen_id[40], gen_time[32]; /* a generated id and time */
	char *auth;                    /* authtype and authid, copied */
	tjs_doc *event_doc;            /* the structured event, behind its attributes */
	const tjs_value *data;         /* parsed data when it is JSON, else NULL */
	tjs_doc *doc;                  /* the parsed document behind `data` */
	/* The data as bytes (the Kafka value in binary mode): points into the
	 * structured payload, so the event must not outlive it. */
	const char *data_bytes;
	size_t data_len;
	char *owned; /* storage behind data_bytes when we made it */
	bool has_data;
} tb_event;

typedef struct tb_ce_attr {
	const char *name;
	const char *value;
} tb_ce_attr;

/* A JSON object with "specversion" (CloudEvents JSON format). `payload` must
 * outlive `ev` only until tb_event_clear (data is re-encoded). */
tb_ce_status tb_ce_parse_structured(const char *payload, size_t len, tb_event *ev, char *err,
                                    size_t errlen);
/* Binary mode: attributes by name, datacontenttype from the MQTT Content
 * Type, payload = data. All referenced, not copied: keep them alive until
 * tb_event_clear. */
tb_ce_status tb_ce_parse_binary(const tb_ce_attr *attrs, size_t nattrs, const char *content_type,
                                const char *payload, size_t len, tb_event *ev, char *err,
                                size_t errlen);

/* Fills a missing id (UUIDv7) and time (now), then checks the required
 * attributes (specversion 1.0, id, source, type) and the formats of the
 * optional ones. */
tb_ce_status tb_ce_complete(tb_event *ev, char *err, size_t errlen);

/* Before tb_ce_complete, for an event received again (a QoS 2
 * retransmission): the id and, when `time` is not NULL, the time generated
 * for its first copy fill the missing attributes instead of new ones.
 * Returns 1 when it set the id, 0 when the event has one, -1 out of memory. */
int tb_ce_reuse_generated(tb_event *ev, const char *id, const char *time);

/* The authcontext extension, always overwritten: clients cannot set it. */
int tb_ce_set_authcontext(tb_event *ev, const char *authtype, const char *authid);

const char *tb_ce_attr_string(const tb_event *ev, const char *name); /* NULL if absent */

/* true for absent, application/json, text/json and any +json type. */
bool tb_ce_content_type_is_json(const char *content_type);

/* Binary mode headers: calls `add` for ce_<name> of each attribute (value as
 * text) and content-type (datacontenttype, or application/json, implied for
 * JSON data without one); returns the first non-zero result of `add`. */
int tb_ce_each_kafka_header(const tb_event *ev,
                            int (*add)(void *ctx, const char *name, const char *value, size_t len),
                            void *ctx);

/* The whole event as CloudEvents JSON (structured mode), malloc'ed. */
char *tb_ce_to_json(const tb_event *ev, size_t *len);

void tb_event_clear(tb_event *ev);

/*
 * Reading Kafka records (CloudEvents Kafka protocol binding), one rule for
 * every consumer of records (the plugin's outbound path, the nginx stream):
 *   structured  content-type application/cloudevents+json (checked first)
 *   binary      a ce_specversion header: ce_* headers are the attributes,
 *               content-type the datacontenttype, the value the data
 *   plain       anything else
 */
typedef enum tb_ce_kafka_mode {
	TB_CE_KAFKA_PLAIN,
	TB_CE_KAFKA_BINARY,
	TB_CE_KAFKA_STRUCTURED,
} tb_ce_kafka_mode;

/* More ce_ headers than this: not an event. */
#define TB_CE_KAFKA_MAX_ATTRS 64

/* true when the media type of `ct` (before any ';' parameter, blanks around
 * it ignored) is application/cloudevents+json, compared case-insensitively. */
bool tb_ce_is_structured_type(const char *ct, size_t len);

/* The record's mode, and its content-type header (the last one; NULL when
 * it has none) in *ct, *ct_len when they are not NULL. `hdrs` may be NULL. */
tb_ce_kafka_mode tb_ce_kafka_read(const rd_kafka_headers_t *hdrs, const char **ct, size_t *ct_len);

/* Calls `fn` for each ce_ header, in order: the name without the prefix,
 * the value (not NUL-terminated, NULL for a null value) and its length;
 * returns the first non-zero result of `fn`. */
int tb_ce_kafka_each_attr(const rd_kafka_headers_t *hdrs,
                          int (*fn)(void *ctx, const char *name, const void *value, size_t len),
                          void *ctx);

/* A binary-mode record as an event: its ce_ headers (at most
 * TB_CE_KAFKA_MAX_ATTRS, each a valid attribute name with a UTF-8 value
 * without control characters, none twice), content-type as datacontenttype
 * and the value as data, which must be JSON when that type is JSON; without
 * a content-type, data that is not JSON is kept as bytes (ev->data NULL).
 * Attributes are copied; the data points
 * into `value`: keep it until tb_event_clear. On failure, `err` says why
 * (it quotes header names and values: escape it before logging). */
tb_ce_status tb_ce_kafka_parse_binary(const rd_kafka_headers_t *hdrs, const void *value, size_t len,
                                      tb_event *ev, char *err, size_t errlen);

#endif
