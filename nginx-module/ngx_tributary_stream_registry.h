/*
 * tributary_stream_registry: topics whose records are in a Schema
 * Registry's wire format (magic byte 0, schema id, payload), decoded back
 * to JSON for browsers (docs/registry.md).
 *
 * Per worker, one thread fetches schemas by id (shared/registry, blocking
 * libcurl calls; never on the event loop) into one cache per registry
 * (tributary/wire.h), kept for the worker's life: ids are immutable. A
 * record whose schema is not cached yet is held by the caller, with every
 * record after it, until the thread has it (it wakes the worker through
 * the Kafka wakeup pipe); while the registry cannot answer the thread asks
 * again every second. The thread never calls nginx: the worker logs what
 * it reports (an outage once, and its end).
 */

#ifndef NGX_TRIBUTARY_STREAM_REGISTRY_H_INCLUDED_
#define NGX_TRIBUTARY_STREAM_REGISTRY_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>

#include <librdkafka/rdkafka.h>

#include "tributary/wire.h"


typedef struct {
    ngx_str_t      url;
    ngx_str_t      user;           /* basic auth, or empty */
    ngx_str_t      password;
    ngx_str_t      bearer;         /* or empty */
    ngx_str_t      ca;             /* PEM bundle, or empty: the system's */
    ngx_msec_t     timeout;
} ngx_tributary_registry_conf_t;


typedef struct ngx_tributary_registry_s  ngx_tributary_registry_t;


/* "tributary_stream_registry URL [user=USER:PASSWORD | bearer=TOKEN]
 * [ca=FILE] [timeout=TIME]": the index of the registry in `registries`
 * (ngx_tributary_registry_conf_t; the same URL twice is one registry);
 * "tributary_stream_registry off": NGX_TRIBUTARY_REGISTRY_OFF (not -1,
 * which is NGX_CONF_UNSET). */
#define NGX_TRIBUTARY_REGISTRY_OFF  -2
char *ngx_tributary_registry_parse(ngx_conf_t *cf, ngx_array_t *registries,
    ngx_int_t *index);

/* The worker's registries (one per element of `registries`) and their
 * thread. */
ngx_int_t ngx_tributary_registry_init(ngx_cycle_t *cycle,
    ngx_array_t *registries);
void ngx_tributary_registry_exit(void);
ngx_tributary_registry_t *ngx_tributary_registry_get(ngx_uint_t index);
tb_wire_cache *ngx_tributary_registry_cache(ngx_tributary_registry_t *reg);

/* 1 when the record can be built now (its schema is cached, or it is not
 * in the wire format at all); 0 when its schema is being fetched: hold it,
 * and every record after it, until a wakeup finds it ready. */
ngx_uint_t ngx_tributary_registry_ready(ngx_tributary_registry_t *reg,
    const rd_kafka_message_t *m);

/* Logs what the thread reported (an outage, its end); call on wakeups. */
void ngx_tributary_registry_report(ngx_log_t *log);

#endif /* NGX_TRIBUTARY_STREAM_REGISTRY_H_INCLUDED_ */
