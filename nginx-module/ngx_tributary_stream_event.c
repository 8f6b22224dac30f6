/*
 * Kafka record -> CloudEvents JSON and its SSE / WebSocket encodings; see
 * ngx_tributary_stream_event.h. Records are read as the plugin reads them
 * (shared/cloudevents, CloudEvents Kafka protocol binding).
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>

#include "tributary/cloudevents.h"
#include "tributary/jsonschema.h"
#include "tributary/util.h"
#include "tributary/wire.h"

#include "ngx_tributary_stream_event.h"


static int
ngx_tributary_event_is_json_type(const char *ct, size_t len)
{
    size_t  n;

    /* media type without parameters, e.g. "application/json; charset=utf-8" */
    for (n = 0; n < len && ct[n] != ';' && ct[n] != ' '; n++) {
        /* void */
    }

    return (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
           || (n == 9 && strncasecmp(ct, "text/json", 9) == 0)
           || (n > 5 && strncasecmp(ct + n - 5, "+json", 5) == 0);
}


static int ngx_tributary_event_build_value(const rd_kafka_message_t *m,
    const void *value, size_t len, rd_kafka_headers_t *hdrs,
    ngx_tributary_stream_event_t *ev);


static json_t *
ngx_tributary_event_base64(const unsigned char *in, size_t len)
{
    int      n;
    char    *out;
    json_t  *s;

    if (len > INT_MAX / 4 * 3 - 3) {
        return NULL;
    }

    out = malloc((len + 2) / 3 * 4 + 1);
    if (out == NULL) {
        return NULL;
    }

    n = EVP_EncodeBlock((unsigned char *) out, in, (int) len);

    s = json_stringn(out, (size_t) n);
    free(out);

    return s;
}


/*
 * Sets "data" (or "data_base64") of obj from the record value: the JSON
 * already parsed when there is (a binary-mode event's data, parsed by
 * shared/cloudevents: not parsed again), else parsed here when the content
 * type is JSON or absent, else a string when UTF-8, else base64.
 */
static int
ngx_tributary_event_set_data(json_t *obj, const void *value, size_t len,
    const tjs_value *parsed, int parse, const char *ct, size_t ct_len)
{
    json_t  *data;

    if (value == NULL) {
        return 0;
    }

    data = NULL;

    if (parsed) {
        data = tjs_value_to_json(parsed);

    } else if (parse
               && (ct == NULL || ngx_tributary_event_is_json_type(ct, ct_len)))
    {
        data = json_loadb(value, len, JSON_DECODE_ANY, NULL);
    }

    if (data == NULL) {
        data = json_stringn(value, len);    /* NULL unless UTF-8 */
    }

    if (data) {
        return json_object_set_new(obj, "data", data);
    }

    data = ngx_tributary_event_base64(value, len);
    if (data == NULL) {
        return -1;
    }

    return json_object_set_new(obj, "data_base64", data);
}


static void
ngx_tributary_event_set_key(json_t *obj, const rd_kafka_message_t *m)
{
    json_t  *key;

    if (m->key == NULL || json_object_get(obj, "partitionkey")) {
        return;
    }

    key = json_stringn(m->key, m->key_len);
    if (key) {
        json_object_set_new(obj, "partitionkey", key);
    }
}


/* The attributes of a binary-mode event, as read by shared/cloudevents. */
static json_t *
ngx_tributary_event_binary(const tb_event *ce)
{
    size_t   i;
    json_t  *obj;

    obj = json_object();

    for (i = 0; obj && i < ce->nattrs; i++) {
        if (json_object_set_new(obj, ce->attrs[i].name,
                                json_stringn(ce->attrs[i].value,
                                             ce->attrs[i].len))
            != 0)
        {
            json_decref(obj);
            obj = NULL;
        }
    }

    return obj;
}


/*
 * A record in a registry's wire format: its JSON in *value, *len (into the
 * record, or ev->decoded); an Avro record's headers copied with
 * content-type application/json in *own. 1: not decodable (ev->undecodable
 * and the reason in not_event); -1: out of memory.
 */
static int
ngx_tributary_event_decode(const rd_kafka_message_t *m, tb_wire_cache *wire,
    ngx_tributary_stream_event_t *ev, const void **value, size_t *len,
    rd_kafka_headers_t **hdrs, rd_kafka_headers_t **own)
{
    int              id = -1;
    char             err[512];
    const char      *json;
    tb_wire_status   st;

    st = tb_wire_decode(wire, m->payload, m->len, &id, &json, len,
                        &ev->decoded, err, sizeof(err));

    switch (st) {

    case TB_WIRE_OK:
        *value = json;
        break;

    case TB_WIRE_MISSING:
        /* the callers hold such records until their schema is fetched */
        snprintf(err, sizeof(err), "schema id %d not fetched", id);
        /* fall through */

    case TB_WIRE_BAD:
        ev->undecodable = 1;
        tb_log_escape(ev->not_event, sizeof(ev->not_event), err);
        return 1;

    case TB_WIRE_NO_MEMORY:
        return -1;
    }

    if (ev->decoded == NULL || *hdrs == NULL) {
        return 0;
    }

    /* Avro became JSON: so says its content type now */
    *own = rd_kafka_headers_copy(*hdrs);
    if (*own == NULL) {
        return -1;
    }

    *hdrs = *own;
    rd_kafka_header_remove(*hdrs, "content-type");

    return rd_kafka_header_add(*hdrs, "content-type", -1, "application/json",
                               -1)
           ? -1 : 0;
}


int
ngx_tributary_stream_event_build(const rd_kafka_message_t *m,
    tb_wire_cache *wire, ngx_tributary_stream_event_t *ev)
{
    int                    rc;
    size_t                 len;
    const void            *value;
    rd_kafka_headers_t    *hdrs = NULL, *own = NULL;

    memset(ev, 0, sizeof(*ev));

    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        hdrs = NULL;
    }

    value = m->payload;
    len = m->len;

    if (wire) {
        rc = ngx_tributary_event_decode(m, wire, ev, &value, &len, &hdrs,
                                        &own);
        if (rc != 0) {
            if (own) {
                rd_kafka_headers_destroy(own);
            }
            if (rc < 0) {
                ngx_tributary_stream_event_free(ev);
            }
            return rc < 0 ? -1 : 0;
        }
    }

    rc = ngx_tributary_event_build_value(m, value, len, hdrs, ev);

    if (own) {
        rd_kafka_headers_destroy(own);
    }

    if (rc != 0) {
        ngx_tributary_stream_event_free(ev);
    }

    return rc;
}


static int
ngx_tributary_event_build_value(const rd_kafka_message_t *m,
    const void *value, size_t len, rd_kafka_headers_t *hdrs,
    ngx_tributary_stream_event_t *ev)
{
    char                   err[256];
    size_t                 ct_len;
    json_t                *obj = NULL, *v;
    tb_event               ce;
    const char            *ct, *type;
    tb_ce_status           st;

    switch (tb_ce_kafka_read(hdrs, &ct, &ct_len)) {

    case TB_CE_KAFKA_STRUCTURED:
        obj = value ? json_loadb(value, len, 0, NULL) : NULL;

        if (obj && json_is_object(obj)) {
            ev->structured = 1;
            ev->cloudevent = 1;

        } else {
            json_decref(obj);
            obj = NULL;
            snprintf(ev->not_event, sizeof(ev->not_event),
                     "content-type application/cloudevents+json, "
                     "but the value is not a JSON object");
        }

        break;

    case TB_CE_KAFKA_BINARY:
        st = tb_ce_kafka_parse_binary(hdrs, value, len, &ce, err,
                                      sizeof(err));
        if (st == TB_CE_NO_MEMORY) {
            return -1;
        }

        if (st != TB_CE_OK) {
            /* header names and values of the record: escaped for the log */
            tb_log_escape(ev->not_event, sizeof(ev->not_event), err);
            break;
        }

        obj = ngx_tributary_event_binary(&ce);

        if (obj == NULL
            || ngx_tributary_event_set_data(obj, value, len, ce.data, 0, ct,
                                            ct_len)
               != 0)
        {
            tb_event_clear(&ce);
            json_decref(obj);
            return -1;
        }

        tb_event_clear(&ce);

        ev->cloudevent = 1;
        break;

    case TB_CE_KAFKA_PLAIN:
        break;
    }

    if (obj == NULL) {
        /* a plain record, or one that is not a valid event */
        obj = json_object();
        if (obj == NULL) {
            return -1;
        }

        if (ct) {
            v = json_stringn(ct, ct_len);
            if (v) {
                json_object_set_new(obj, "datacontenttype", v);
            }
        }

        if (ngx_tributary_event_set_data(obj, value, len, NULL, 1, ct, ct_len)
            != 0)
        {
            json_decref(obj);
            return -1;
        }

        ev->raw = value ? value : "";
        ev->raw_len = value ? len : 0;
    }

    if (ev->cloudevent) {
        ngx_tributary_event_set_key(obj, m);

        type = json_string_value(json_object_get(obj, "type"));
        if (type) {
            ev->type_len = json_string_length(json_object_get(obj, "type"));
            ev->type = malloc(ev->type_len + 1);
            if (ev->type == NULL) {
                json_decref(obj);
                return -1;
            }
            memcpy(ev->type, type, ev->type_len + 1);
        }
    }

    ev->json = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);

    if (ev->json == NULL) {
        return -1;
    }

    ev->json_len = strlen(ev->json);

    return 0;
}


void
ngx_tributary_stream_event_free(ngx_tributary_stream_event_t *ev)
{
    free(ev->json);
    free(ev->type);
    free(ev->decoded);
    ev->json = NULL;
    ev->type = NULL;
    ev->decoded = NULL;
}


static int
ngx_tributary_event_type_ok(const ngx_tributary_stream_event_t *ev)
{
    return ev->type && ev->type_len
           && memchr(ev->type, '\n', ev->type_len) == NULL
           && memchr(ev->type, '\r', ev->type_len) == NULL
           && memchr(ev->type, '\0', ev->type_len) == NULL;
}


/*
 * Calls back for each line of the raw value: SSE has no escaping, so a
 * value with line breaks becomes several data lines, which the client
 * joins with "\n" again.
 */
static char *
ngx_tributary_event_raw_lines(const ngx_tributary_stream_event_t *ev,
    char *p, size_t *size)
{
    const char  *s = ev->raw, *end = ev->raw + ev->raw_len, *e;
    size_t       n = 0;

    for ( ;; ) {
        for (e = s; e < end && *e != '\n' && *e != '\r'; e++) {
            /* void */
        }

        n += 6 + (size_t) (e - s) + 1;
        if (p) {
            memcpy(p, "data: ", 6);
            memcpy(p + 6, s, (size_t) (e - s));
            p += 6 + (e - s);
            *p++ = '\n';
        }

        if (e == end) {
            break;
        }

        s = e + 1;
        if (*e == '\r' && s < end && *s == '\n') {
            s++;
        }
    }

    if (size) {
        *size = n;
    }

    return p;
}


size_t
ngx_tributary_stream_event_sse_size(const ngx_tributary_stream_event_t *ev)
{
    size_t  n = 0, lines;

    if (ngx_tributary_event_type_ok(ev)) {
        n += 7 + ev->type_len + 1;
    }

    if (ev->cloudevent) {
        n += 6 + ev->json_len + 1;

    } else {
        ngx_tributary_event_raw_lines(ev, NULL, &lines);
        n += lines;
    }

    return n + 1;
}


char *
ngx_tributary_stream_event_sse_write(const ngx_tributary_stream_event_t *ev,
    char *p)
{
    if (ngx_tributary_event_type_ok(ev)) {
        memcpy(p, "event: ", 7);
        memcpy(p + 7, ev->type, ev->type_len);
        p += 7 + ev->type_len;
        *p++ = '\n';
    }

    if (ev->cloudevent) {
        memcpy(p, "data: ", 6);
        memcpy(p + 6, ev->json, ev->json_len);
        p += 6 + ev->json_len;
        *p++ = '\n';

    } else {
        p = ngx_tributary_event_raw_lines(ev, p, NULL);
    }

    *p++ = '\n';

    return p;
}


size_t
ngx_tributary_stream_event_ws_size(const ngx_tributary_stream_event_t *ev,
    size_t pos_len)
{
    /* {"streamposition":"POS"  +  , + rest, or } when the object is empty */
    return 19 + pos_len + 1 + (ev->json_len > 2 ? 1 + ev->json_len - 1 : 1);
}


char *
ngx_tributary_stream_event_ws_write(const ngx_tributary_stream_event_t *ev,
    const char *pos, size_t pos_len, char *p)
{
    memcpy(p, "{\"streamposition\":\"", 19);
    memcpy(p + 19, pos, pos_len);
    p += 19 + pos_len;
    *p++ = '"';

    if (ev->json_len > 2) {
        *p++ = ',';
        memcpy(p, ev->json + 1, ev->json_len - 1);
        p += ev->json_len - 1;

    } else {
        *p++ = '}';
    }

    return p;
}
