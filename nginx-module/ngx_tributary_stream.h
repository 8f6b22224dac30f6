/*
 * The private types of ngx_http_tributary_stream_module, shared by its
 * files:
 *
 *     ngx_http_tributary_stream_module.c  configuration, the request handler
 *                                         (SSE and WebSocket openings) and
 *                                         the worker's events
 *     ngx_tributary_stream_fanout.c       positions, fan-out of live records,
 *                                         replays, subscribing
 *     ngx_tributary_stream_out.c          chunks, output queues, sending
 *     ngx_tributary_stream_status.c       Prometheus status
 *
 * and by the codecs and the Kafka side they use (ngx_tributary_stream_*.h,
 * ngx_tributary_ws*.h). See the module file for how it works.
 */

#ifndef NGX_TRIBUTARY_STREAM_H_INCLUDED_
#define NGX_TRIBUTARY_STREAM_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "tributary/position.h"
#include "ngx_tributary_stream_event.h"
#include "ngx_tributary_kafka.h"
#include "ngx_tributary_stream_registry.h"
#include "tributary/ws.h"
#include "ngx_tributary_ws_handshake.h"


#define NGX_TRIBUTARY_STREAM_BUCKETS      1024
#define NGX_TRIBUTARY_STREAM_BATCH        64
/*
 * Work per wakeup: then the worker goes back to epoll so that sockets drain
 * and clients read before more is queued. A burst never lands in the
 * subscribers' buffers all at once: one wakeup queues at most a quarter of
 * the smallest tributary_stream_buffer (in record values), so only a
 * subscriber that stays behind is cut off, not one whose socket was full
 * for a moment.
 */
#define NGX_TRIBUTARY_STREAM_BUDGET       1024            /* records */
#define NGX_TRIBUTARY_STREAM_TICK         1000
#define NGX_TRIBUTARY_STREAM_MAX_WORKERS  64
#define NGX_TRIBUTARY_STREAM_WS_READ      4096
/* a longer wait for a token's expiry is made of several timers */
#define NGX_TRIBUTARY_STREAM_MAX_TIMER    86400000        /* ms */


typedef struct {
    ngx_str_t                  brokers;
    ngx_array_t               *properties;     /* ngx_keyval_t */
    ngx_array_t                topics;         /* ngx_str_t */
    ngx_array_t                registries;     /* ngx_tributary_registry_conf_t */
    ngx_int_t                 *topic_registry; /* per topic: an index into
                                                  registries, or
                                                  NGX_TRIBUTARY_REGISTRY_OFF */
    ngx_uint_t                 max_replays;
    size_t                     budget;         /* bytes per wakeup */
    ngx_int_t                  jwt_expires;    /* $tributary_jwt_expires */
    ngx_shm_zone_t            *zone;
    ngx_tributary_kafka_conf_t kafka;
} ngx_http_tributary_stream_main_conf_t;


typedef struct {
    ngx_int_t                  topic;          /* index, or -1 */
    ngx_http_complex_value_t  *key;
    ngx_http_complex_value_t  *type;
    ngx_msec_t                 heartbeat;
    ngx_msec_t                 retry;
    size_t                     buffer;
    ngx_uint_t                 reset;          /* NGX_TRIBUTARY_STREAM_RESET_ */
    ngx_array_t               *origins;
    ngx_flag_t                 status;
    ngx_int_t                  registry;       /* index, or
                                                  NGX_TRIBUTARY_REGISTRY_OFF */
} ngx_http_tributary_stream_loc_conf_t;


/* where a position past a partition's end goes on */
#define NGX_TRIBUTARY_STREAM_RESET_END        0
#define NGX_TRIBUTARY_STREAM_RESET_BEGINNING  1


/* Per-worker counters, in shared memory so any worker can report all. */
typedef struct {
    ngx_atomic_t               pid;
    ngx_atomic_t               subscribers;
    ngx_atomic_t               replays_active;
    ngx_atomic_t               replays_waiting;
    ngx_atomic_t               records;
    ngx_atomic_t               delivered;
    ngx_atomic_t               not_events;
    ngx_atomic_t               undecodable;
    ngx_atomic_t               dropped;
    ngx_atomic_t               cutoffs;
    ngx_atomic_t               lag;
} ngx_tributary_stream_stats_t;


typedef struct {
    ngx_uint_t                 refs;
    size_t                     len;
    u_char                     data[1];
} ngx_tributary_chunk_t;


typedef struct {
    ngx_queue_t                queue;
    ngx_buf_t                  buf;
    ngx_chain_t                cl;
    ngx_tributary_chunk_t     *chunk;
    unsigned                   event_end:1;
} ngx_tributary_out_t;


typedef struct ngx_tributary_sub_s  ngx_tributary_sub_t;

typedef struct {
    ngx_str_t                  name;
    ngx_uint_t                 index;
    int32_t                    partitions;     /* 0 until known */
    int64_t                   *live;
    u_char                    *pos;            /* live[] as text */
    size_t                     pos_len;
    ngx_queue_t                unfiltered;
    ngx_queue_t               *buckets;
    ngx_queue_t                waiting;        /* for partitions */
    ngx_tributary_registry_t  *registry;       /* its wire format, or NULL */
    tb_wire_cache             *wire;
} ngx_tributary_topic_t;


struct ngx_tributary_sub_s {
    ngx_http_request_t        *request;
    ngx_http_tributary_stream_loc_conf_t *conf;
    ngx_tributary_topic_t     *topic;

    ngx_queue_t                all;            /* worker's subscribers */
    ngx_queue_t                fan;            /* bucket or unfiltered */
    ngx_queue_t                wait;           /* topic->waiting or replays */
    ngx_queue_t                replaying;      /* worker's replays */
    ngx_queue_t                dirty;

    ngx_str_t                  key;
    ngx_str_t                  type;
    ngx_uint_t                 key_hash;

    tb_pos_kind                start;
    tb_pos_entry              *entries;
    size_t                     nentries;

    int64_t                   *next;           /* private position or NULL */
    int64_t                   *ahead;          /* per partition, or NULL */
    u_char                    *switched;       /* per partition */
    int32_t                    nswitched;
    ngx_tributary_replay_t    *replay;
    rd_kafka_message_t       **held;           /* replayed, waiting for their
                                                  schema (r->pool) */
    ngx_uint_t                 nheld;

    ngx_queue_t                out;            /* ngx_tributary_out_t */
    ngx_chain_t               *pending;        /* SSE: not yet in filters */
    ngx_chain_t              **pending_last;
    ngx_tributary_out_t       *pending_first;
    size_t                     out_bytes;
    ngx_uint_t                 out_events;
    ngx_msec_t                 last_write;

    tb_ws_parser              *ws_parser;
    const char                *cut_reason;     /* set when cut off */

    time_t                     expires;        /* the token's, or 0 */
    ngx_event_t                expiry;

    unsigned                   ws:1;
    unsigned                   has_key:1;
    unsigned                   has_type:1;
    unsigned                   type_prefix:1;
    unsigned                   attached:1;
    unsigned                   in_wait:1;
    unsigned                   in_replaying:1;
    unsigned                   in_dirty:1;
    unsigned                   detached:1;
    unsigned                   closing:1;
    unsigned                   ws_ready:1;      /* 101 fully sent */
    unsigned                   failed:1;        /* connection error */
    unsigned                   chunked:1;       /* we frame the chunks */
    unsigned                   reauth:1;        /* ended: token expired */
};


/* The worker's state: nginx workers are single-threaded. */
typedef struct {
    ngx_http_tributary_stream_main_conf_t *conf;
    ngx_tributary_topic_t     *topics;
    ngx_uint_t                 ntopics;
    ngx_queue_t                subs;
    ngx_queue_t                replay_wait;
    ngx_queue_t                replaying;
    ngx_queue_t                dirty;
    ngx_uint_t                 replays_active;
    ngx_event_t                tick;
    ngx_event_t                wake_again;
    ngx_tributary_stream_stats_t *stats;
    ngx_tributary_stream_stats_t  local;
    ngx_tributary_chunk_t     *heartbeat;      /* ": hb" comment, shared */
    rd_kafka_message_t        *held[NGX_TRIBUTARY_STREAM_BATCH];
    ngx_uint_t                 nheld;          /* live records waiting for
                                                  their schema, in order */
    unsigned                   running:1;
} ngx_tributary_stream_worker_t;


#define ngx_tributary_stat(field)  (ngx_tributary_stream.stats->field)


extern ngx_module_t                   ngx_http_tributary_stream_module;
extern ngx_tributary_stream_worker_t  ngx_tributary_stream;


/* ngx_http_tributary_stream_module.c */
void ngx_tributary_stream_detach(ngx_tributary_sub_t *sub);

/* ngx_tributary_stream_fanout.c */
void ngx_tributary_stream_try_sync(ngx_tributary_sub_t *sub);
void ngx_tributary_stream_expiry_start(ngx_tributary_sub_t *sub);
void ngx_tributary_stream_live_record(rd_kafka_message_t *m);
void ngx_tributary_stream_replay_record(ngx_tributary_sub_t *sub,
    rd_kafka_message_t *m);
void ngx_tributary_stream_replay_done(ngx_tributary_sub_t *sub);
void ngx_tributary_stream_replay_next(void);
ngx_uint_t ngx_tributary_stream_record_ready(const rd_kafka_message_t *m);
void ngx_tributary_stream_attach(ngx_tributary_sub_t *sub);
void ngx_tributary_stream_topic_ready(ngx_tributary_topic_t *t,
    int32_t partitions, int64_t *end);

/* ngx_tributary_stream_out.c */
ngx_tributary_chunk_t *ngx_tributary_chunk_alloc(size_t len);
void ngx_tributary_chunk_release(ngx_tributary_chunk_t *ch);
void ngx_tributary_stream_mark_dirty(ngx_tributary_sub_t *sub);
ngx_int_t ngx_tributary_stream_queue(ngx_tributary_sub_t *sub,
    ngx_tributary_chunk_t *ch, size_t off, size_t len, ngx_uint_t event_end,
    ngx_uint_t force);
ngx_int_t ngx_tributary_stream_queue_copy(ngx_tributary_sub_t *sub,
    const u_char *data, size_t len);
ngx_int_t ngx_tributary_stream_respond(ngx_http_request_t *r,
    ngx_uint_t status, const char *type, ngx_buf_t *b);
void ngx_tributary_stream_release_sent(ngx_tributary_sub_t *sub,
    ngx_uint_t all);
void ngx_tributary_stream_finish(ngx_tributary_sub_t *sub, ngx_int_t rc);
void ngx_tributary_stream_flush(ngx_tributary_sub_t *sub);
void ngx_tributary_stream_flush_dirty(void);
void ngx_tributary_stream_write_handler(ngx_http_request_t *r);
void ngx_tributary_stream_ws_read_handler(ngx_http_request_t *r);

/* ngx_tributary_stream_status.c */
void ngx_tributary_stream_count_subs(void);
ngx_int_t ngx_tributary_stream_status_handler(ngx_http_request_t *r);

#endif /* NGX_TRIBUTARY_STREAM_H_INCLUDED_ */
