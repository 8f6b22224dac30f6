/*
 * A Kafka record as the event tributary_stream sends to browsers.
 *
 * The CloudEvents Kafka protocol binding gives three shapes of record, told
 * apart by shared/cloudevents (tb_ce_kafka_read) as on the plugin's
 * outbound path:
 *  - structured mode: "content-type: application/cloudevents+json"
 *    (parameters allowed; checked first), value = the whole event as JSON;
 *  - binary mode: a "ce_specversion" header; "ce_<attribute>" headers,
 *    "content-type" header = datacontenttype, value = data;
 *  - anything else: a plain record, sent as a generic event (no type) whose
 *    data is the raw value.
 * A record of either mode that is not a valid event (a bad ce_ header, JSON
 * data that does not parse, a structured value that is not an object) is
 * sent as a plain record too, with the reason in not_event: nothing of it
 * is left out silently.
 * Either way the result is one JSON object: the event in the CloudEvents
 * JSON format (data as JSON when the content type is JSON or absent and the
 * value parses, a string when it is UTF-8 text, else data_base64), plus the
 * "partitionkey" extension from the record key when the event has none; a
 * plain record becomes {"data": ...}.
 *
 * A topic whose records are in a Schema Registry's wire format (magic byte
 * 0, schema id, payload; tributary_stream_registry) is decoded first: the
 * JSON Schema payload as it is, Avro to its JSON encoding; the JSON then
 * takes the value's place above (content-type application/json for Avro).
 *
 * No nginx headers: built once per record on the worker, shared by every
 * subscriber it goes to.
 */

#ifndef NGX_TRIBUTARY_STREAM_EVENT_H_INCLUDED_
#define NGX_TRIBUTARY_STREAM_EVENT_H_INCLUDED_

#include <stddef.h>

#include <librdkafka/rdkafka.h>

#include "tributary/wire.h"


typedef struct {
    char        *json;         /* the event object, compact; malloc'd */
    size_t       json_len;
    char        *type;         /* CloudEvents type or NULL; malloc'd */
    size_t       type_len;
    const char  *raw;          /* plain record: the value (in the message,
                                  or in decoded) */
    size_t       raw_len;
    char         not_event[160]; /* why a CloudEvents record is plain, or
                                    why it is undecodable */
    char        *decoded;      /* an Avro value as JSON; malloc'd */
    unsigned     undecodable:1; /* not in the registry's wire format, or
                                   not decodable: not to be sent */
    unsigned     cloudevent:1;
    unsigned     structured:1;
} ngx_tributary_stream_event_t;


/*
 * 0 on success; -1 only when memory runs out. With `wire` (the topic's
 * records are in a Schema Registry's wire format) the value is decoded to
 * JSON first, with the schemas cached there; a record that cannot be is
 * `undecodable`, the reason in not_event. Free with _free either way.
 */
int ngx_tributary_stream_event_build(const rd_kafka_message_t *m,
    tb_wire_cache *wire, ngx_tributary_stream_event_t *ev);
void ngx_tributary_stream_event_free(ngx_tributary_stream_event_t *ev);

/*
 * The SSE lines of the event after the "id:" line: "event: TYPE\n" (when
 * there is a type without line breaks), then "data: " lines (the JSON for a
 * CloudEvent, the raw value line by line for a plain record), then the
 * blank line. _size gives the exact length _write writes.
 */
size_t ngx_tributary_stream_event_sse_size(const ngx_tributary_stream_event_t *ev);
char *ngx_tributary_stream_event_sse_write(const ngx_tributary_stream_event_t *ev,
    char *p);

/*
 * The WebSocket message: the event object with "streamposition": pos added
 * as its first member. _size gives the exact length _write writes.
 */
size_t ngx_tributary_stream_event_ws_size(const ngx_tributary_stream_event_t *ev,
    size_t pos_len);
char *ngx_tributary_stream_event_ws_write(const ngx_tributary_stream_event_t *ev,
    const char *pos, size_t pos_len, char *p);

#endif /* NGX_TRIBUTARY_STREAM_EVENT_H_INCLUDED_ */
