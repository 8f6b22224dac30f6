/*
 * ngx_http_tributary_stream_module: Kafka records fanned out to browsers
 * over Server-Sent Events and WebSocket, with exact resume.
 *
 *     http {
 *         tributary_kafka_brokers 127.0.0.1:9092;
 *         server {
 *             location /notifications {
 *                 tributary_stream notifications;
 *                 tributary_stream_key $arg_user;
 *             }
 *             location = /tributary/status { tributary_stream_status; }
 *         }
 *     }
 *
 * Per worker, one live consumer (ngx_tributary_stream_kafka.c) feeds every
 * subscriber of the worker. Each record is turned into an event once, and
 * its SSE bytes (and WebSocket frame) are built once into a refcounted chunk
 * that all its subscribers' output queues point at.
 *
 * Positions (ngx_tributary_stream_position.h) give, per partition, the next
 * offset to read. The live consumer's position "live[p]" advances with each
 * record it hands us; a live subscriber's position is live[] itself, so one
 * id serves all of them. A subscriber that resumes from an older position
 * gets a replay reader and a private position next[]: partition p is served
 * by the reader until next[p] >= live[p], then by the live consumer (records
 * below next[p] skipped), so nothing is missed or repeated at the switch.
 * Its position is next[p] on replayed partitions and max(next[p], live[p])
 * on switched ones; once every partition is switched and live[] has caught
 * up everywhere, the private position is dropped and the subscriber shares
 * the live id again.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_tributary_stream_position.h"
#include "ngx_tributary_stream_event.h"
#include "ngx_tributary_stream_kafka.h"
#include "ngx_tributary_ws.h"
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
} ngx_http_tributary_stream_loc_conf_t;


/* where a position past a partition's end goes on */
#define NGX_TRIBUTARY_STREAM_RESET_END        0
#define NGX_TRIBUTARY_STREAM_RESET_BEGINNING  1


static ngx_conf_enum_t  ngx_http_tributary_stream_resets[] = {
    { ngx_string("end"), NGX_TRIBUTARY_STREAM_RESET_END },
    { ngx_string("beginning"), NGX_TRIBUTARY_STREAM_RESET_BEGINNING },
    { ngx_null_string, 0 }
};


/* Per-worker counters, in shared memory so any worker can report all. */
typedef struct {
    ngx_atomic_t               pid;
    ngx_atomic_t               subscribers;
    ngx_atomic_t               replays_active;
    ngx_atomic_t               replays_waiting;
    ngx_atomic_t               records;
    ngx_atomic_t               delivered;
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

    ngx_tributary_pos_kind_e   start;
    ngx_tributary_pos_entry_t *entries;
    size_t                     nentries;

    int64_t                   *next;           /* private position or NULL */
    int64_t                   *ahead;          /* per partition, or NULL */
    u_char                    *switched;       /* per partition */
    int32_t                    nswitched;
    ngx_tributary_replay_t    *replay;

    ngx_queue_t                out;            /* ngx_tributary_out_t */
    ngx_chain_t               *pending;        /* SSE: not yet in filters */
    ngx_chain_t              **pending_last;
    ngx_tributary_out_t       *pending_first;
    size_t                     out_bytes;
    ngx_uint_t                 out_events;
    ngx_msec_t                 last_write;

    ngx_tributary_ws_parser_t *ws_parser;
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


static ngx_int_t ngx_http_tributary_stream_init(ngx_conf_t *cf);
static void *ngx_http_tributary_stream_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_tributary_stream_init_main_conf(ngx_conf_t *cf,
    void *conf);
static void *ngx_http_tributary_stream_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_tributary_stream_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_tributary_stream(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tributary_stream_status(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_tributary_kafka_property(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_tributary_stream_init_process(ngx_cycle_t *cycle);
static void ngx_http_tributary_stream_exit_process(ngx_cycle_t *cycle);

static void ngx_tributary_stream_wake(ngx_event_t *ev);
static void ngx_tributary_stream_flush(ngx_tributary_sub_t *sub);
static ngx_int_t ngx_tributary_stream_send(ngx_tributary_sub_t *sub);
static void ngx_tributary_stream_detach(ngx_tributary_sub_t *sub);
static void ngx_tributary_stream_replay_next(void);


static ngx_command_t  ngx_http_tributary_stream_commands[] = {

    { ngx_string("tributary_kafka_brokers"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tributary_stream_main_conf_t, brokers),
      NULL },

    { ngx_string("tributary_kafka_property"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE2,
      ngx_http_tributary_kafka_property,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tributary_stream_max_replays"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_tributary_stream_main_conf_t, max_replays),
      NULL },

    { ngx_string("tributary_stream"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_tributary_stream,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tributary_stream_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tributary_stream_loc_conf_t, key),
      NULL },

    { ngx_string("tributary_stream_type"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_set_complex_value_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tributary_stream_loc_conf_t, type),
      NULL },

    { ngx_string("tributary_stream_heartbeat"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tributary_stream_loc_conf_t, heartbeat),
      NULL },

    { ngx_string("tributary_stream_retry"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tributary_stream_loc_conf_t, retry),
      NULL },

    { ngx_string("tributary_stream_buffer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tributary_stream_loc_conf_t, buffer),
      NULL },

    { ngx_string("tributary_stream_reset"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tributary_stream_loc_conf_t, reset),
      &ngx_http_tributary_stream_resets },

    { ngx_string("tributary_stream_allow_origin"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_tributary_ws_origins_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tributary_stream_loc_conf_t, origins),
      NULL },

    { ngx_string("tributary_stream_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_tributary_stream_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_tributary_stream_module_ctx = {
    NULL,                                  /* preconfiguration */
    ngx_http_tributary_stream_init,        /* postconfiguration */

    ngx_http_tributary_stream_create_main_conf, /* create main configuration */
    ngx_http_tributary_stream_init_main_conf,   /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_tributary_stream_create_loc_conf,  /* create location configuration */
    ngx_http_tributary_stream_merge_loc_conf    /* merge location configuration */
};


ngx_module_t  ngx_http_tributary_stream_module = {
    NGX_MODULE_V1,
    &ngx_http_tributary_stream_module_ctx, /* module context */
    ngx_http_tributary_stream_commands,    /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_tributary_stream_init_process, /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_tributary_stream_exit_process, /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static const ngx_str_t  ngx_tributary_stream_ws_protocols[] = {
    ngx_string("cloudevents.json")
};


/* The worker's state: nginx workers are single-threaded. */
static struct {
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
    unsigned                   running:1;
} ngx_tributary_stream;


static u_char  ngx_tributary_stream_ws_ping_bytes[2] = { 0x89, 0x00 };


/* chunks ------------------------------------------------------------------ */

static ngx_tributary_chunk_t *
ngx_tributary_chunk_alloc(size_t len)
{
    ngx_tributary_chunk_t  *ch;

    ch = ngx_alloc(offsetof(ngx_tributary_chunk_t, data) + len,
                   ngx_cycle->log);
    if (ch == NULL) {
        return NULL;
    }

    ch->refs = 1;
    ch->len = len;

    return ch;
}


static void
ngx_tributary_chunk_release(ngx_tributary_chunk_t *ch)
{
    if (ch && --ch->refs == 0) {
        ngx_free(ch);
    }
}


/* output queue ------------------------------------------------------------ */

static void
ngx_tributary_stream_mark_dirty(ngx_tributary_sub_t *sub)
{
    if (!sub->in_dirty) {
        ngx_queue_insert_tail(&ngx_tributary_stream.dirty, &sub->dirty);
        sub->in_dirty = 1;
    }
}


/* An output entry for len bytes of a chunk at off, not yet in a queue. */
static ngx_tributary_out_t *
ngx_tributary_stream_out(ngx_tributary_sub_t *sub, ngx_tributary_chunk_t *ch,
    size_t off, size_t len)
{
    ngx_tributary_out_t  *o;

    o = ngx_alloc(sizeof(ngx_tributary_out_t), ngx_cycle->log);
    if (o == NULL) {
        return NULL;
    }

    ngx_memzero(&o->buf, sizeof(ngx_buf_t));
    o->buf.start = ch->data + off;
    o->buf.pos = o->buf.start;
    o->buf.last = o->buf.start + len;
    o->buf.end = o->buf.last;
    o->buf.memory = 1;
    o->buf.flush = 1;
    o->buf.tag = (ngx_buf_tag_t) &ngx_http_tributary_stream_module;
    o->cl.buf = &o->buf;
    o->cl.next = NULL;
    o->chunk = ch;
    o->event_end = 0;

    ch->refs++;
    sub->out_bytes += len;

    return o;
}


/*
 * HTTP/1.1 chunk framing around what is pending, done here rather than by
 * nginx's chunked filter: that filter keeps links to the buffers it was
 * given in its busy list after they are sent and looks at them on its next
 * call, while ours are freed as soon as they are sent.
 */
static ngx_int_t
ngx_tributary_stream_frame(ngx_tributary_sub_t *sub)
{
    u_char                 *p;
    off_t                   size;
    ngx_chain_t            *cl;
    ngx_queue_t            *prev;
    ngx_tributary_out_t    *hdr, *trl;
    ngx_tributary_chunk_t  *ch;

    size = 0;
    for (cl = sub->pending; cl; cl = cl->next) {
        size += cl->buf->last - cl->buf->pos;
    }

    if (size == 0) {
        return NGX_OK;
    }

    ch = ngx_tributary_chunk_alloc(NGX_OFF_T_LEN + 2 + 2);
    if (ch == NULL) {
        return NGX_ERROR;
    }

    p = ngx_sprintf(ch->data, "%xO\r\n", size);
    ngx_memcpy(p, "\r\n", 2);

    hdr = ngx_tributary_stream_out(sub, ch, 0, p - ch->data);
    trl = ngx_tributary_stream_out(sub, ch, p - ch->data, 2);
    ngx_tributary_chunk_release(ch);

    if (hdr == NULL || trl == NULL) {
        ngx_free(hdr);
        ngx_free(trl);
        return NGX_ERROR;
    }

    /* a variable: the macro would read prev again after changing it */
    prev = ngx_queue_prev(&sub->pending_first->queue);
    ngx_queue_insert_after(prev, &hdr->queue);
    ngx_queue_insert_tail(&sub->out, &trl->queue);

    hdr->cl.next = sub->pending;
    sub->pending = &hdr->cl;
    *sub->pending_last = &trl->cl;
    sub->pending_last = &trl->cl.next;

    return NGX_OK;
}


/*
 * Queues len bytes of a chunk at offset for sub; the caller's reference is
 * not taken (the queue adds its own). NGX_DECLINED when the subscriber's
 * buffer limit would be exceeded (unless force).
 */
static ngx_int_t
ngx_tributary_stream_queue(ngx_tributary_sub_t *sub, ngx_tributary_chunk_t *ch,
    size_t off, size_t len, ngx_uint_t event_end, ngx_uint_t force)
{
    ngx_tributary_out_t  *o;

    if (!force && sub->out_bytes + len > sub->conf->buffer) {
        /* only what the socket does not take counts against the limit */
        if (sub->closing || ngx_tributary_stream_send(sub) == NGX_ERROR
            || sub->out_bytes + len > sub->conf->buffer)
        {
            return NGX_DECLINED;
        }
    }

    o = ngx_tributary_stream_out(sub, ch, off, len);
    if (o == NULL) {
        return NGX_ERROR;
    }

    o->event_end = event_end;

    ngx_queue_insert_tail(&sub->out, &o->queue);

    if (event_end) {
        sub->out_events++;
    }

    if (sub->pending == NULL) {
        sub->pending_first = o;
    }

    *sub->pending_last = &o->cl;
    sub->pending_last = &o->cl.next;

    ngx_tributary_stream_mark_dirty(sub);

    return NGX_OK;
}


static void
ngx_tributary_stream_release_sent(ngx_tributary_sub_t *sub, ngx_uint_t all)
{
    ngx_queue_t          *q;
    ngx_tributary_out_t  *o;

    while (!ngx_queue_empty(&sub->out)) {
        q = ngx_queue_head(&sub->out);
        o = ngx_queue_data(q, ngx_tributary_out_t, queue);

        if (!all && o->buf.pos != o->buf.last) {
            break;
        }

        ngx_queue_remove(q);
        sub->out_bytes -= o->buf.end - o->buf.start;

        if (o->event_end) {
            sub->out_events--;
        }

        ngx_tributary_chunk_release(o->chunk);
        ngx_free(o);
    }

    if (all) {
        sub->pending = NULL;
        sub->pending_last = &sub->pending;
    }
}


/* stats -------------------------------------------------------------------- */

#define ngx_tributary_stat(field)  (ngx_tributary_stream.stats->field)


static void
ngx_tributary_stream_count_subs(void)
{
    ngx_uint_t   n = 0, w = 0;
    ngx_queue_t *q;

    for (q = ngx_queue_head(&ngx_tributary_stream.subs);
         q != ngx_queue_sentinel(&ngx_tributary_stream.subs);
         q = ngx_queue_next(q))
    {
        n++;
    }

    for (q = ngx_queue_head(&ngx_tributary_stream.replay_wait);
         q != ngx_queue_sentinel(&ngx_tributary_stream.replay_wait);
         q = ngx_queue_next(q))
    {
        w++;
    }

    ngx_tributary_stat(subscribers) = n;
    ngx_tributary_stat(replays_waiting) = w;
    ngx_tributary_stat(replays_active) = ngx_tributary_stream.replays_active;
}


/* positions ---------------------------------------------------------------- */

/* The subscriber's position as text, into buf (room for the topic). */
static size_t
ngx_tributary_stream_sub_position(ngx_tributary_sub_t *sub, u_char *buf,
    size_t size)
{
    int32_t                 p, n;
    int64_t                 v[NGX_TRIBUTARY_POS_MAX_PARTITIONS];
    ngx_tributary_topic_t  *t = sub->topic;

    if (sub->next == NULL) {
        if (t->pos_len > size) {
            return 0;
        }
        ngx_memcpy(buf, t->pos, t->pos_len);
        return t->pos_len;
    }

    n = t->partitions;

    for (p = 0; p < n; p++) {
        v[p] = sub->next[p];
        if (sub->switched[p] && t->live[p] > v[p]) {
            v[p] = t->live[p];
        }
    }

    return ngx_tributary_stream_position_format((char *) buf, size, v, n);
}


/*
 * Drops the private position once it equals live[] everywhere: from then on
 * the subscriber shares the live events' ids.
 */
static void
ngx_tributary_stream_try_sync(ngx_tributary_sub_t *sub)
{
    int32_t                 p;
    ngx_tributary_topic_t  *t = sub->topic;

    if (sub->next == NULL || sub->nswitched != t->partitions) {
        return;
    }

    for (p = 0; p < t->partitions; p++) {
        if (sub->next[p] > t->live[p]) {
            return;
        }
    }

    sub->next = NULL;   /* r->pool memory, freed with the request */
}


static void
ngx_tributary_stream_update_pos(ngx_tributary_topic_t *t)
{
    size_t  len;

    len = ngx_tributary_stream_position_format((char *) t->pos,
              t->partitions * NGX_TRIBUTARY_POS_ENTRY_LEN, t->live,
              t->partitions);
    t->pos_len = len;
}


/* fan-out ------------------------------------------------------------------ */

static void
ngx_tributary_stream_cutoff(ngx_tributary_sub_t *sub, const char *reason)
{
    if (sub->closing) {
        return;
    }

    sub->closing = 1;
    sub->cut_reason = reason;

    ngx_log_error(NGX_LOG_INFO, sub->request->connection->log, 0,
                  "tributary_stream: subscriber cut off: %s "
                  "(%uz bytes, %ui events not yet sent)",
                  reason, sub->out_bytes, sub->out_events);

    ngx_tributary_stat(cutoffs)++;
    ngx_tributary_stat(dropped) += sub->out_events + 1;

    ngx_tributary_stream_mark_dirty(sub);
}


/*
 * The token the stream was opened with is no longer accepted (exp +
 * leeway, as tributary_jwt and the broker count): the stream ends with a
 * word to the client, as a cut-off does, but telling it to come back with a
 * fresh token and its position rather than "slow".
 */
static ngx_msec_t
ngx_tributary_stream_expiry_delay(ngx_tributary_sub_t *sub)
{
    ngx_msec_t   delay;
    ngx_time_t  *tp;

    /* to the millisecond: the token is refused from that second on */
    tp = ngx_timeofday();

    if (sub->expires <= tp->sec) {
        return 0;
    }

    delay = (ngx_msec_t) (sub->expires - tp->sec) * 1000 - tp->msec;

    return ngx_min(delay, NGX_TRIBUTARY_STREAM_MAX_TIMER);
}


static void
ngx_tributary_stream_expiry_handler(ngx_event_t *ev)
{
    ngx_msec_t            delay;
    ngx_tributary_sub_t  *sub = ev->data;

    if (sub->detached || sub->closing) {
        return;
    }

    /* a long wait is made of several timers; wall and timer clocks differ */
    delay = ngx_tributary_stream_expiry_delay(sub);

    if (delay) {
        ngx_add_timer(ev, delay);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, sub->request->connection->log, 0,
                  "tributary_stream: token expired, stream ended "
                  "(%uz bytes, %ui events not yet sent)",
                  sub->out_bytes, sub->out_events);

    sub->closing = 1;
    sub->reauth = 1;
    sub->cut_reason = "token expired";

    ngx_tributary_stream_flush(sub);
}


static void
ngx_tributary_stream_expiry_start(ngx_tributary_sub_t *sub)
{
    if (sub->expires == 0) {
        return;
    }

    sub->expiry.handler = ngx_tributary_stream_expiry_handler;
    sub->expiry.data = sub;
    sub->expiry.log = sub->request->connection->log;
    /* a graceful shutdown does not wait for it */
    sub->expiry.cancelable = 1;

    ngx_add_timer(&sub->expiry, ngx_tributary_stream_expiry_delay(sub));
}


static ngx_uint_t
ngx_tributary_stream_type_matches(ngx_tributary_sub_t *sub,
    ngx_tributary_stream_event_t *ev)
{
    if (!sub->has_type) {
        return 1;
    }

    if (ev->type == NULL) {
        return 0;
    }

    if (sub->type_prefix) {
        return ev->type_len >= sub->type.len
               && ngx_strncmp(ev->type, sub->type.data, sub->type.len) == 0;
    }

    return ev->type_len == sub->type.len
           && ngx_strncmp(ev->type, sub->type.data, sub->type.len) == 0;
}


/* Builds the WebSocket frame of ev at position pos. */
static ngx_tributary_chunk_t *
ngx_tributary_stream_ws_chunk(ngx_tributary_stream_event_t *ev, u_char *pos,
    size_t pos_len)
{
    size_t                  plen, hlen;
    ngx_tributary_chunk_t  *ch;

    plen = ngx_tributary_stream_event_ws_size(ev, pos_len);
    hlen = ngx_tributary_ws_header_size(plen, 0);

    ch = ngx_tributary_chunk_alloc(hlen + plen);
    if (ch == NULL) {
        return NULL;
    }

    ngx_tributary_ws_frame_header(ch->data, NGX_TRIBUTARY_WS_OP_TEXT, 1, plen,
                                  NULL);
    ngx_tributary_stream_event_ws_write(ev, (char *) pos, pos_len,
                                        (char *) ch->data + hlen);

    return ch;
}


/* The SSE event with its "id:" line for a given position. */
static ngx_tributary_chunk_t *
ngx_tributary_stream_sse_chunk(ngx_tributary_stream_event_t *ev, u_char *pos,
    size_t pos_len)
{
    u_char                 *p;
    ngx_tributary_chunk_t  *ch;

    ch = ngx_tributary_chunk_alloc(4 + pos_len + 1
                                   + ngx_tributary_stream_event_sse_size(ev));
    if (ch == NULL) {
        return NULL;
    }

    p = ngx_cpymem(ch->data, "id: ", 4);
    p = ngx_cpymem(p, pos, pos_len);
    *p++ = '\n';
    ngx_tributary_stream_event_sse_write(ev, (char *) p);

    return ch;
}


/* Queues one event for sub at its private position. */
static void
ngx_tributary_stream_deliver_private(ngx_tributary_sub_t *sub,
    ngx_tributary_stream_event_t *ev)
{
    u_char                  pos[NGX_TRIBUTARY_POS_MAX_PARTITIONS
                                * NGX_TRIBUTARY_POS_ENTRY_LEN];
    size_t                  len;
    ngx_int_t               rc;
    ngx_tributary_chunk_t  *ch;

    len = ngx_tributary_stream_sub_position(sub, pos, sizeof(pos));

    ch = sub->ws ? ngx_tributary_stream_ws_chunk(ev, pos, len)
                 : ngx_tributary_stream_sse_chunk(ev, pos, len);
    if (ch == NULL) {
        ngx_tributary_stream_cutoff(sub, "out of memory");
        return;
    }

    rc = ngx_tributary_stream_queue(sub, ch, 0, ch->len, 1, 0);
    ngx_tributary_chunk_release(ch);

    if (rc == NGX_OK) {
        ngx_tributary_stat(delivered)++;
    } else {
        ngx_tributary_stream_cutoff(sub, "slow consumer");
    }
}


typedef struct {
    ngx_tributary_stream_event_t  ev;
    ngx_tributary_chunk_t        *sse;
    ngx_tributary_chunk_t        *ws;
    unsigned                      built:1;
    unsigned                      failed:1;
} ngx_tributary_fanout_t;


static ngx_tributary_stream_event_t *
ngx_tributary_stream_event(ngx_tributary_fanout_t *f,
    const rd_kafka_message_t *m)
{
    if (!f->built) {
        f->built = 1;
        if (ngx_tributary_stream_event_build(m, &f->ev) != 0) {
            f->failed = 1;
        }
    }

    return f->failed ? NULL : &f->ev;
}


static void
ngx_tributary_stream_deliver_live(ngx_tributary_sub_t *sub,
    ngx_tributary_fanout_t *f, const rd_kafka_message_t *m)
{
    int32_t                        p = m->partition;
    ngx_int_t                      rc;
    ngx_tributary_chunk_t        **chp;
    ngx_tributary_topic_t         *t = sub->topic;
    ngx_tributary_stream_event_t  *ev;

    if (sub->closing) {
        return;
    }

    if (sub->next) {
        if (!sub->switched[p] || m->offset < sub->next[p]) {
            return;     /* the replay reader serves p, or did already */
        }
        sub->next[p] = m->offset + 1;
    }

    ev = ngx_tributary_stream_event(f, m);
    if (ev == NULL || !ngx_tributary_stream_type_matches(sub, ev)) {
        return;
    }

    if (sub->next) {
        ngx_tributary_stream_deliver_private(sub, ev);
        ngx_tributary_stream_try_sync(sub);
        return;
    }

    chp = sub->ws ? &f->ws : &f->sse;

    if (*chp == NULL) {
        *chp = sub->ws ? ngx_tributary_stream_ws_chunk(ev, t->pos, t->pos_len)
                       : ngx_tributary_stream_sse_chunk(ev, t->pos, t->pos_len);
        if (*chp == NULL) {
            ngx_tributary_stream_cutoff(sub, "out of memory");
            return;
        }
    }

    rc = ngx_tributary_stream_queue(sub, *chp, 0, (*chp)->len, 1, 0);

    if (rc == NGX_OK) {
        ngx_tributary_stat(delivered)++;
    } else {
        ngx_tributary_stream_cutoff(sub, "slow consumer");
    }
}


static ngx_tributary_topic_t *
ngx_tributary_stream_topic_of(const rd_kafka_message_t *m)
{
    ngx_uint_t   i;
    const char  *name;
    size_t       len;

    if (m->rkt == NULL) {
        return NULL;
    }

    name = rd_kafka_topic_name(m->rkt);
    len = ngx_strlen(name);

    for (i = 0; i < ngx_tributary_stream.ntopics; i++) {
        if (ngx_tributary_stream.topics[i].name.len == len
            && ngx_strncmp(ngx_tributary_stream.topics[i].name.data, name, len)
               == 0)
        {
            return &ngx_tributary_stream.topics[i];
        }
    }

    return NULL;
}


static void
ngx_tributary_stream_live_record(rd_kafka_message_t *m)
{
    ngx_uint_t               h;
    ngx_queue_t             *q, *next, *bucket;
    ngx_tributary_sub_t     *sub;
    ngx_tributary_topic_t   *t;
    ngx_tributary_fanout_t   f;

    if (m->err) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "tributary_stream: kafka: %s",
                      rd_kafka_message_errstr(m));
        return;
    }

    t = ngx_tributary_stream_topic_of(m);
    if (t == NULL || m->partition < 0 || m->partition >= t->partitions) {
        return;
    }

    ngx_tributary_stat(records)++;

    if (m->offset + 1 > t->live[m->partition]) {
        t->live[m->partition] = m->offset + 1;
    }

    ngx_tributary_stream_update_pos(t);

    ngx_memzero(&f, sizeof(f));

    for (q = ngx_queue_head(&t->unfiltered);
         q != ngx_queue_sentinel(&t->unfiltered);
         q = next)
    {
        next = ngx_queue_next(q);
        sub = ngx_queue_data(q, ngx_tributary_sub_t, fan);
        ngx_tributary_stream_deliver_live(sub, &f, m);
    }

    if (m->key) {
        h = ngx_hash_key(m->key, m->key_len);
        bucket = &t->buckets[h % NGX_TRIBUTARY_STREAM_BUCKETS];

        for (q = ngx_queue_head(bucket);
             q != ngx_queue_sentinel(bucket);
             q = next)
        {
            next = ngx_queue_next(q);
            sub = ngx_queue_data(q, ngx_tributary_sub_t, fan);

            if (sub->key_hash == h && sub->key.len == m->key_len
                && ngx_memcmp(sub->key.data, m->key, m->key_len) == 0)
            {
                ngx_tributary_stream_deliver_live(sub, &f, m);
            }
        }
    }

    if (f.built && !f.failed) {
        ngx_tributary_stream_event_free(&f.ev);
    }

    ngx_tributary_chunk_release(f.sse);
    ngx_tributary_chunk_release(f.ws);
}


/* replays ------------------------------------------------------------------ */

static void
ngx_tributary_stream_switch(ngx_tributary_sub_t *sub, int32_t p)
{
    ngx_tributary_topic_t  *t = sub->topic;

    if (sub->switched[p] || sub->next[p] < 0 || sub->next[p] < t->live[p]
        || (sub->ahead && sub->ahead[p] >= 0))
    {
        return;
    }

    sub->switched[p] = 1;
    sub->nswitched++;

    if (sub->replay) {
        ngx_tributary_kafka_replay_pause(sub->replay, p);
    }
}


static void
ngx_tributary_stream_replay_done(ngx_tributary_sub_t *sub)
{
    if (sub->replay) {
        ngx_tributary_kafka_replay_stop(sub->replay);
        sub->replay = NULL;
        ngx_tributary_stream.replays_active--;
    }

    if (sub->in_replaying) {
        ngx_queue_remove(&sub->replaying);
        sub->in_replaying = 0;
    }
}


/*
 * Tells the client that its position on partition p named an offset past
 * the partition's end, and where it goes on: an SSE event "reset" (with the
 * id of the corrected position) or a WebSocket message {"streamposition":
 * ..., "reset": ...}.
 */
static void
ngx_tributary_stream_reset(ngx_tributary_sub_t *sub, int32_t p, int64_t to)
{
    u_char                  pos[NGX_TRIBUTARY_POS_MAX_PARTITIONS
                                * NGX_TRIBUTARY_POS_ENTRY_LEN];
    u_char                  entry[NGX_TRIBUTARY_POS_ENTRY_LEN];
    u_char                 *e, *d;
    size_t                  len, plen;
    ngx_tributary_chunk_t  *ch;

    ngx_log_error(NGX_LOG_INFO, sub->request->connection->log, 0,
                  "tributary_stream: position p%D:o%L is past the end of "
                  "partition %D of \"%V\", which goes on at o%L",
                  p, sub->next[p], p, &sub->topic->name, to);

    sub->next[p] = to;
    sub->ahead[p] = -1;

    e = ngx_sprintf(entry, "p%D:o%L", p, to);
    len = ngx_tributary_stream_sub_position(sub, pos, sizeof(pos));

    if (sub->ws) {
        plen = sizeof("{\"streamposition\":\"\",\"reset\":\"\"}") - 1
               + len + (e - entry);

        ch = ngx_tributary_chunk_alloc(ngx_tributary_ws_header_size(plen, 0)
                                       + plen);
        if (ch == NULL) {
            goto failed;
        }

        d = ch->data + ngx_tributary_ws_frame_header(ch->data,
                                                     NGX_TRIBUTARY_WS_OP_TEXT,
                                                     1, plen, NULL);
        d = ngx_sprintf(d, "{\"streamposition\":\"%*s\",\"reset\":\"%*s\"}",
                        len, pos, e - entry, entry);

    } else {
        ch = ngx_tributary_chunk_alloc(sizeof("id: \nevent: reset\ndata: \n\n")
                                       - 1 + len + (e - entry));
        if (ch == NULL) {
            goto failed;
        }

        d = ngx_sprintf(ch->data, "id: %*s\nevent: reset\ndata: %*s\n\n",
                        len, pos, e - entry, entry);
    }

    ch->len = d - ch->data;

    if (ngx_tributary_stream_queue(sub, ch, 0, ch->len, 0, 1) != NGX_OK) {
        ngx_tributary_chunk_release(ch);
        goto failed;
    }

    ngx_tributary_chunk_release(ch);

    return;

failed:

    ngx_tributary_stream_cutoff(sub, "out of memory");
}


/*
 * A partition whose requested offset was beyond what the live consumer had
 * (sub->ahead[p], the live position then) is read by the replay reader
 * until Kafka says whether the offset exists. A reader never returns
 * records below the offset it was assigned at, nor reaches an end below it,
 * unless the offset was out of range and reset (auto.offset.reset
 * "earliest": from the log start). Then the stream goes on, with
 * tributary_stream_reset "end", from where live was when the client came
 * (or the end, if lower), so records that arrived since are delivered; with
 * "beginning", from the first record there is (the one at hand, or the end
 * of an empty partition). NGX_DECLINED when m is to be skipped.
 */
static ngx_int_t
ngx_tributary_stream_check_ahead(ngx_tributary_sub_t *sub,
    rd_kafka_message_t *m)
{
    int32_t  p = m->partition;
    int64_t  to;

    if (sub->ahead == NULL || sub->ahead[p] < 0) {
        return NGX_OK;
    }

    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (m->offset >= sub->next[p]) {
            sub->ahead[p] = -1;         /* it existed: go on from there */
            return NGX_OK;
        }

        to = (sub->conf->reset == NGX_TRIBUTARY_STREAM_RESET_END)
             ? ngx_min(sub->ahead[p], m->offset) : m->offset;

    } else if (m->err) {
        return NGX_OK;

    } else if (m->offset >= sub->next[p]) {
        sub->ahead[p] = -1;
        return NGX_OK;

    } else {
        to = (sub->conf->reset == NGX_TRIBUTARY_STREAM_RESET_END)
             ? sub->ahead[p] : m->offset;
    }

    ngx_tributary_stream_reset(sub, p, to);

    return (m->err == 0 && m->offset >= to) ? NGX_OK : NGX_DECLINED;
}


static void
ngx_tributary_stream_replay_record(ngx_tributary_sub_t *sub,
    rd_kafka_message_t *m)
{
    int32_t                        p = m->partition;
    ngx_tributary_topic_t         *t = sub->topic;
    ngx_tributary_stream_event_t   ev;

    if (p < 0 || p >= t->partitions || sub->switched[p] || sub->closing) {
        return;
    }

    if (ngx_tributary_stream_check_ahead(sub, m) != NGX_OK) {
        ngx_tributary_stream_switch(sub, p);
        goto done;
    }

    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        /* everything below the end offset has come through this reader */
        if (m->offset > sub->next[p]) {
            sub->next[p] = m->offset;
        }

    } else if (m->err) {
        ngx_log_error(NGX_LOG_WARN, sub->request->connection->log, 0,
                      "tributary_stream: replay: %s",
                      rd_kafka_message_errstr(m));
        return;

    } else {
        if (sub->next[p] >= 0 && m->offset < sub->next[p]) {
            return;
        }

        sub->next[p] = m->offset + 1;

        if (!sub->has_key
            || (m->key && m->key_len == sub->key.len
                && ngx_memcmp(m->key, sub->key.data, sub->key.len) == 0))
        {
            if (ngx_tributary_stream_event_build(m, &ev) == 0) {
                if (ngx_tributary_stream_type_matches(sub, &ev)) {
                    ngx_tributary_stream_deliver_private(sub, &ev);
                }
                ngx_tributary_stream_event_free(&ev);
            }
        }
    }

    ngx_tributary_stream_switch(sub, p);

done:

    if (sub->nswitched == t->partitions) {
        ngx_tributary_stream_replay_done(sub);
        ngx_tributary_stream_try_sync(sub);
    }
}


static void
ngx_tributary_stream_replay_begin(ngx_tributary_sub_t *sub)
{
    int32_t                 p;
    ngx_tributary_topic_t  *t = sub->topic;

    for (p = 0; p < t->partitions; p++) {
        ngx_tributary_stream_switch(sub, p);
    }

    if (sub->nswitched == t->partitions) {
        ngx_tributary_stream_try_sync(sub);
        return;
    }

    if (ngx_tributary_stream.replays_active
        >= ngx_tributary_stream.conf->max_replays)
    {
        ngx_queue_insert_tail(&ngx_tributary_stream.replay_wait, &sub->wait);
        sub->in_wait = 1;
        return;
    }

    sub->replay = ngx_tributary_kafka_replay_start(
                      sub->request->connection->log, t->index, t->partitions,
                      sub->next);
    if (sub->replay == NULL) {
        ngx_tributary_stream_cutoff(sub, "cannot start a replay reader");
        return;
    }

    /* partitions switched before the reader existed must not be read */
    for (p = 0; p < t->partitions; p++) {
        if (sub->switched[p]) {
            ngx_tributary_kafka_replay_pause(sub->replay, p);
        }
    }

    ngx_tributary_stream.replays_active++;
    ngx_queue_insert_tail(&ngx_tributary_stream.replaying, &sub->replaying);
    sub->in_replaying = 1;
}


static void
ngx_tributary_stream_replay_next(void)
{
    ngx_queue_t          *q;
    ngx_tributary_sub_t  *sub;

    while (ngx_tributary_stream.running
           && ngx_tributary_stream.replays_active
              < ngx_tributary_stream.conf->max_replays
           && !ngx_queue_empty(&ngx_tributary_stream.replay_wait))
    {
        q = ngx_queue_head(&ngx_tributary_stream.replay_wait);
        ngx_queue_remove(q);
        sub = ngx_queue_data(q, ngx_tributary_sub_t, wait);
        sub->in_wait = 0;

        ngx_tributary_stream_replay_begin(sub);
        ngx_tributary_stream_mark_dirty(sub);
    }
}


/* subscribing ---------------------------------------------------------------- */

/* Called once the topic's partitions are known. */
static void
ngx_tributary_stream_attach(ngx_tributary_sub_t *sub)
{
    size_t                  i;
    int32_t                 p;
    u_char                 *last, buf[NGX_TRIBUTARY_POS_MAX_PARTITIONS
                                       * NGX_TRIBUTARY_POS_ENTRY_LEN + 16];
    ngx_tributary_chunk_t  *ch;
    ngx_tributary_topic_t  *t = sub->topic;
    ngx_http_request_t     *r = sub->request;

    if (sub->has_key) {
        ngx_queue_insert_tail(
            &t->buckets[sub->key_hash % NGX_TRIBUTARY_STREAM_BUCKETS],
            &sub->fan);
    } else {
        ngx_queue_insert_tail(&t->unfiltered, &sub->fan);
    }

    sub->attached = 1;

    if (sub->start != NGX_TRIBUTARY_POS_NOW) {
        sub->next = ngx_palloc(r->pool, sizeof(int64_t) * t->partitions);
        sub->switched = ngx_pcalloc(r->pool, t->partitions);
        if (sub->next == NULL || sub->switched == NULL) {
            ngx_tributary_stream_cutoff(sub, "out of memory");
            return;
        }

        for (p = 0; p < t->partitions; p++) {
            sub->next[p] = -1;      /* not named: from the beginning */
        }

        for (i = 0; i < sub->nentries; i++) {
            p = sub->entries[i].partition;

            if (p >= t->partitions) {
                continue;
            }

            sub->next[p] = sub->entries[i].offset;

            if (sub->next[p] <= t->live[p]) {
                continue;
            }

            /* past live: perhaps past the end (see _check_ahead) */
            if (sub->ahead == NULL) {
                sub->ahead = ngx_palloc(r->pool, sizeof(int64_t)
                                                 * t->partitions);
                if (sub->ahead == NULL) {
                    ngx_tributary_stream_cutoff(sub, "out of memory");
                    return;
                }

                for (p = 0; p < t->partitions; p++) {
                    sub->ahead[p] = -1;
                }

                p = sub->entries[i].partition;
            }

            sub->ahead[p] = t->live[p];
        }

        ngx_tributary_stream_replay_begin(sub);
    }

    if (sub->ws) {
        return;
    }

    /*
     * An id without data sets the client's Last-Event-ID without an event,
     * so even a client that saw no event yet resumes exactly.
     */
    last = ngx_cpymem(buf, "id: ", 4);
    last += ngx_tributary_stream_sub_position(sub, last,
                                              sizeof(buf) - 4 - 2);
    *last++ = '\n';
    *last++ = '\n';

    ch = ngx_tributary_chunk_alloc(last - buf);
    if (ch == NULL) {
        ngx_tributary_stream_cutoff(sub, "out of memory");
        return;
    }

    ngx_memcpy(ch->data, buf, last - buf);
    (void) ngx_tributary_stream_queue(sub, ch, 0, ch->len, 0, 1);
    ngx_tributary_chunk_release(ch);
}


static void
ngx_tributary_stream_topic_ready(ngx_tributary_topic_t *t, int32_t partitions,
    int64_t *end)
{
    ngx_queue_t          *q;
    ngx_tributary_sub_t  *sub;

    if (partitions > NGX_TRIBUTARY_POS_MAX_PARTITIONS) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "tributary_stream: topic \"%V\" has %D partitions, "
                      "more than %d", &t->name, partitions,
                      NGX_TRIBUTARY_POS_MAX_PARTITIONS);
        ngx_free(end);
        return;
    }

    t->pos = ngx_alloc(partitions * NGX_TRIBUTARY_POS_ENTRY_LEN, ngx_cycle->log);
    if (t->pos == NULL) {
        ngx_free(end);
        return;
    }

    if (ngx_tributary_kafka_live_assign(t->index, partitions, end) != NGX_OK) {
        ngx_free(t->pos);
        t->pos = NULL;
        ngx_free(end);
        return;
    }

    t->live = end;
    t->partitions = partitions;
    ngx_tributary_stream_update_pos(t);

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                  "tributary_stream: topic \"%V\": %D partitions, live from %*s",
                  &t->name, partitions, t->pos_len, t->pos);

    while (!ngx_queue_empty(&t->waiting)) {
        q = ngx_queue_head(&t->waiting);
        ngx_queue_remove(q);
        sub = ngx_queue_data(q, ngx_tributary_sub_t, wait);
        sub->in_wait = 0;
        ngx_tributary_stream_attach(sub);
    }
}


/* sending ---------------------------------------------------------------- */

static void
ngx_tributary_stream_finish(ngx_tributary_sub_t *sub, ngx_int_t rc)
{
    ngx_http_request_t  *r = sub->request;
    ngx_connection_t    *c = r->connection;

    ngx_tributary_stream_detach(sub);
    ngx_http_finalize_request(r, rc);
    ngx_http_run_posted_requests(c);
}


/*
 * Hands what is queued to the connection and lets go of what went out.
 * NGX_ERROR: the connection failed (the caller finishes the request).
 */
static ngx_int_t
ngx_tributary_stream_send(ngx_tributary_sub_t *sub)
{
    ngx_int_t             rc;
    ngx_chain_t          *cl, *head, **ll;
    ngx_queue_t          *q;
    ngx_connection_t     *c;
    ngx_http_request_t   *r;
    ngx_tributary_out_t  *o;

    r = sub->request;
    c = r->connection;

    if (sub->failed) {
        return NGX_ERROR;
    }

    if (sub->ws) {
        if (!sub->ws_ready) {
            rc = ngx_tributary_ws_flush_response(r);
            if (rc == NGX_ERROR) {
                goto failed;
            }
            if (rc == NGX_AGAIN) {
                return NGX_AGAIN;
            }
            sub->ws_ready = 1;
        }

        /* the connection is ours: writev the unsent part of the queue */
        head = NULL;
        ll = &head;

        for (q = ngx_queue_head(&sub->out);
             q != ngx_queue_sentinel(&sub->out);
             q = ngx_queue_next(q))
        {
            o = ngx_queue_data(q, ngx_tributary_out_t, queue);
            if (o->buf.pos == o->buf.last) {
                continue;
            }
            o->cl.next = NULL;
            *ll = &o->cl;
            ll = &o->cl.next;
        }

        sub->pending = NULL;
        sub->pending_last = &sub->pending;

        if (head && c->write->ready) {
            cl = c->send_chain(c, head, 0);
            if (cl == NGX_CHAIN_ERROR) {
                goto failed;
            }
        }

    } else {
        if (sub->chunked && sub->pending
            && ngx_tributary_stream_frame(sub) != NGX_OK)
        {
            goto failed;
        }

        cl = sub->pending;
        sub->pending = NULL;
        sub->pending_last = &sub->pending;

        if (cl || c->buffered || r->out) {
            rc = ngx_http_output_filter(r, cl);
            if (rc == NGX_ERROR) {
                goto failed;
            }
        }
    }

    ngx_tributary_stream_release_sent(sub, 0);

    sub->last_write = ngx_current_msec;

    return ngx_queue_empty(&sub->out) ? NGX_OK : NGX_AGAIN;

failed:

    c->error = 1;
    sub->failed = 1;
    sub->closing = 1;
    ngx_tributary_stream_mark_dirty(sub);

    return NGX_ERROR;
}


/* Sends what is queued; finishes the request on error or cut-off. */
static void
ngx_tributary_stream_flush(ngx_tributary_sub_t *sub)
{
    u_char                 close[NGX_TRIBUTARY_WS_MAX_CLOSE_FRAME];
    size_t                 n;
    ngx_int_t              rc;
    ngx_connection_t      *c;
    ngx_http_request_t    *r;
    ngx_tributary_chunk_t *ch;

    r = sub->request;
    c = r->connection;

    if (sub->in_dirty) {
        ngx_queue_remove(&sub->dirty);
        sub->in_dirty = 0;
    }

    if (sub->detached) {
        return;
    }

    if (sub->cut_reason && !sub->failed) {
        /* a last word, sent if the socket takes it right away */
        if (sub->ws) {
            n = ngx_tributary_ws_close_frame(close,
                                             NGX_TRIBUTARY_WS_CLOSE_POLICY,
                                             sub->cut_reason,
                                             ngx_strlen(sub->cut_reason));

        } else if (sub->reauth) {
            /* no id: the client's Last-Event-ID stays its position */
            n = ngx_snprintf(close, sizeof(close),
                             "event: reauthenticate\ndata: %s\n\n",
                             sub->cut_reason) - close;

        } else {
            n = ngx_snprintf(close, sizeof(close), ": cut off: %s\n\n",
                             sub->cut_reason) - close;
        }

        sub->cut_reason = NULL;

        ch = ngx_tributary_chunk_alloc(n);
        if (ch) {
            ngx_memcpy(ch->data, close, n);
            (void) ngx_tributary_stream_queue(sub, ch, 0, n, 0, 1);
            ngx_tributary_chunk_release(ch);
        }
    }

    rc = ngx_tributary_stream_send(sub);

    if (rc == NGX_ERROR) {
        ngx_tributary_stream_finish(sub, NGX_HTTP_CLOSE);
        return;
    }

    if (sub->closing) {
        if (rc == NGX_OK && !sub->ws) {
            if (sub->chunked) {
                ch = ngx_tributary_chunk_alloc(5);
                if (ch) {
                    ngx_memcpy(ch->data, "0\r\n\r\n", 5);
                    sub->chunked = 0;
                    (void) ngx_tributary_stream_queue(sub, ch, 0, 5, 0, 1);
                    ngx_tributary_chunk_release(ch);
                    (void) ngx_tributary_stream_send(sub);
                }
            }

            ngx_tributary_stream_detach(sub);
            (void) ngx_http_send_special(r, NGX_HTTP_LAST);
            ngx_http_finalize_request(r, NGX_OK);
            ngx_http_run_posted_requests(c);
            return;
        }

        /* the peer does not read: let go of it now */
        ngx_tributary_stream_finish(sub, NGX_HTTP_CLOSE);
        return;
    }

    if (ngx_handle_write_event(c->write, 0) != NGX_OK) {
        ngx_tributary_stream_finish(sub, NGX_HTTP_CLOSE);
    }
}


static void
ngx_tributary_stream_flush_dirty(void)
{
    ngx_queue_t          *q;
    ngx_tributary_sub_t  *sub;

    while (!ngx_queue_empty(&ngx_tributary_stream.dirty)) {
        q = ngx_queue_head(&ngx_tributary_stream.dirty);
        sub = ngx_queue_data(q, ngx_tributary_sub_t, dirty);
        ngx_tributary_stream_flush(sub);
    }
}


static void
ngx_tributary_stream_write_handler(ngx_http_request_t *r)
{
    ngx_tributary_sub_t  *sub;

    sub = ngx_http_get_module_ctx(r, ngx_http_tributary_stream_module);
    if (sub == NULL || sub->detached) {
        return;
    }

    ngx_tributary_stream_flush(sub);
}


/* The WebSocket client's frames: answer pings and closes, ignore data. */
static void
ngx_tributary_stream_ws_read_handler(ngx_http_request_t *r)
{
    u_char                    buf[NGX_TRIBUTARY_STREAM_WS_READ], sink[512];
    u_char                   *out;
    size_t                    n;
    ssize_t                   got;
    const uint8_t            *in, *end;
    ngx_connection_t         *c = r->connection;
    ngx_tributary_sub_t      *sub;
    ngx_tributary_chunk_t    *ch;
    ngx_tributary_ws_parser_t *p;
    ngx_tributary_ws_event_e  ev;

    sub = ngx_http_get_module_ctx(r, ngx_http_tributary_stream_module);
    if (sub == NULL || sub->detached) {
        return;
    }

    p = sub->ws_parser;

    for ( ;; ) {
        got = c->recv(c, buf, sizeof(buf));

        if (got == NGX_AGAIN) {
            if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
                ngx_tributary_stream_finish(sub, NGX_HTTP_CLOSE);
            }
            return;
        }

        if (got <= 0) {
            c->error = 1;
            ngx_tributary_stream_finish(sub, NGX_HTTP_CLIENT_CLOSED_REQUEST);
            return;
        }

        in = buf;
        end = buf + got;

        while (in < end) {
            out = sink;
            ev = ngx_tributary_ws_parse(p, &in, end, &out, sink + sizeof(sink));

            switch (ev) {

            case NGX_TRIBUTARY_WS_PING:
                n = ngx_tributary_ws_header_size(p->control_len, 0);
                ch = ngx_tributary_chunk_alloc(n + p->control_len);
                if (ch) {
                    ngx_tributary_ws_frame_header(ch->data,
                        NGX_TRIBUTARY_WS_OP_PONG, 1, p->control_len, NULL);
                    ngx_memcpy(ch->data + n, p->control, p->control_len);
                    (void) ngx_tributary_stream_queue(sub, ch, 0, ch->len, 0, 1);
                    ngx_tributary_chunk_release(ch);
                }
                break;

            case NGX_TRIBUTARY_WS_CLOSE:
            case NGX_TRIBUTARY_WS_ERROR:
                n = ngx_tributary_ws_close_frame(buf,
                        ev == NGX_TRIBUTARY_WS_ERROR ? p->close_code
                                                     : NGX_TRIBUTARY_WS_CLOSE_NORMAL,
                        NULL, 0);
                ch = ngx_tributary_chunk_alloc(n);
                if (ch) {
                    ngx_memcpy(ch->data, buf, n);
                    (void) ngx_tributary_stream_queue(sub, ch, 0, n, 0, 1);
                    ngx_tributary_chunk_release(ch);
                }
                sub->closing = 1;
                ngx_tributary_stream_flush_dirty();
                return;

            default:
                break;
            }
        }

        ngx_tributary_stream_flush_dirty();

        if (sub->detached) {
            return;
        }
    }
}


/* worker events ---------------------------------------------------------- */

static void
ngx_tributary_stream_wake(ngx_event_t *ev)
{
    int32_t               partitions;
    int64_t              *end;
    ssize_t               n, i;
    size_t                bytes = 0;
    ngx_uint_t            t, budget, more = 0;
    ngx_queue_t          *q, *next;
    ngx_tributary_sub_t  *sub;
    rd_kafka_message_t   *msgs[NGX_TRIBUTARY_STREAM_BATCH];

    if (!ngx_tributary_stream.running) {
        return;
    }

    ngx_tributary_kafka_drain_wakeups();

    for (t = 0; t < ngx_tributary_stream.ntopics; t++) {
        if (ngx_tributary_stream.topics[t].partitions == 0
            && ngx_tributary_kafka_take_metadata(t, &partitions, &end) == NGX_OK)
        {
            ngx_tributary_stream_topic_ready(&ngx_tributary_stream.topics[t],
                                             partitions, end);
        }
    }

    /* replays first: they chase the live position and must catch it */
    for (q = ngx_queue_head(&ngx_tributary_stream.replaying);
         q != ngx_queue_sentinel(&ngx_tributary_stream.replaying);
         q = next)
    {
        next = ngx_queue_next(q);
        sub = ngx_queue_data(q, ngx_tributary_sub_t, replaying);

        n = ngx_tributary_kafka_replay_poll(sub->replay, msgs,
                                            NGX_TRIBUTARY_STREAM_BATCH);
        if (n == NGX_TRIBUTARY_STREAM_BATCH) {
            more = 1;
        }

        for (i = 0; i < n; i++) {
            if (sub->replay) {
                ngx_tributary_stream_replay_record(sub, msgs[i]);
            }
            rd_kafka_message_destroy(msgs[i]);
        }

        /* the reader may have been stopped: next is still valid */
    }

    ngx_tributary_stream_replay_next();

    for (budget = 0; budget < NGX_TRIBUTARY_STREAM_BUDGET; budget += n) {
        n = ngx_tributary_kafka_live_poll(msgs, NGX_TRIBUTARY_STREAM_BATCH);
        if (n <= 0) {
            break;
        }

        for (i = 0; i < n; i++) {
            bytes += msgs[i]->len;
            ngx_tributary_stream_live_record(msgs[i]);
            rd_kafka_message_destroy(msgs[i]);
        }

        if (n < NGX_TRIBUTARY_STREAM_BATCH) {
            break;
        }

        if (bytes >= ngx_tributary_stream.conf->budget) {
            more = 1;
            break;
        }
    }

    if (budget >= NGX_TRIBUTARY_STREAM_BUDGET) {
        more = 1;
    }

    ngx_tributary_stream_flush_dirty();
    ngx_tributary_stream_count_subs();

    /*
     * librdkafka signals only when a queue turns non-empty: come back, after
     * the next round of socket events.
     */
    if (more && !ngx_tributary_stream.wake_again.posted) {
        ngx_post_event(&ngx_tributary_stream.wake_again,
                       &ngx_posted_next_events);
    }
}


static void
ngx_tributary_stream_tick(ngx_event_t *ev)
{
    int64_t               lag = 0;
    ngx_uint_t            t;
    ngx_queue_t          *q, *next;
    ngx_tributary_sub_t  *sub;
    ngx_tributary_topic_t *topic;

    for (q = ngx_queue_head(&ngx_tributary_stream.subs);
         q != ngx_queue_sentinel(&ngx_tributary_stream.subs);
         q = next)
    {
        next = ngx_queue_next(q);
        sub = ngx_queue_data(q, ngx_tributary_sub_t, all);

        if (sub->attached) {
            ngx_tributary_stream_try_sync(sub);
        }

        if (ngx_current_msec - sub->last_write < sub->conf->heartbeat
            || !ngx_queue_empty(&sub->out))
        {
            continue;
        }

        if (sub->ws) {
            if (sub->ws_ready) {
                ngx_tributary_chunk_t *ch = ngx_tributary_chunk_alloc(2);
                if (ch) {
                    ngx_memcpy(ch->data, ngx_tributary_stream_ws_ping_bytes, 2);
                    (void) ngx_tributary_stream_queue(sub, ch, 0, 2, 0, 1);
                    ngx_tributary_chunk_release(ch);
                }
            }

        } else {
            (void) ngx_tributary_stream_queue(sub, ngx_tributary_stream.heartbeat,
                                              0, ngx_tributary_stream.heartbeat->len,
                                              0, 1);
        }
    }

    ngx_tributary_stream_flush_dirty();

    for (t = 0; t < ngx_tributary_stream.ntopics; t++) {
        topic = &ngx_tributary_stream.topics[t];
        if (topic->partitions) {
            lag += ngx_tributary_kafka_live_lag(t, topic->partitions,
                                                topic->live);
        }
    }

    ngx_tributary_stat(lag) = lag;
    ngx_tributary_stream_count_subs();

    ngx_add_timer(ev, NGX_TRIBUTARY_STREAM_TICK);
}


/* request handling -------------------------------------------------------- */

static void
ngx_tributary_stream_detach(ngx_tributary_sub_t *sub)
{
    if (sub->detached) {
        return;
    }

    sub->detached = 1;

    if (sub->attached) {
        ngx_queue_remove(&sub->fan);
        sub->attached = 0;
    }

    if (sub->in_wait) {
        ngx_queue_remove(&sub->wait);
        sub->in_wait = 0;
    }

    if (sub->in_dirty) {
        ngx_queue_remove(&sub->dirty);
        sub->in_dirty = 0;
    }

    ngx_queue_remove(&sub->all);

    if (sub->expiry.timer_set) {
        ngx_del_timer(&sub->expiry);
    }

    ngx_tributary_stream_replay_done(sub);
    ngx_tributary_stream_replay_next();
    ngx_tributary_stream_count_subs();
}


static void
ngx_tributary_stream_cleanup(void *data)
{
    ngx_tributary_sub_t  *sub = data;

    ngx_tributary_stream_detach(sub);

    /* the connection is going away: nothing will send these any more */
    ngx_tributary_stream_release_sent(sub, 1);
}


static ngx_int_t
ngx_tributary_stream_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *msg)
{
    size_t        len;
    ngx_buf_t    *b;
    ngx_int_t     rc;
    ngx_chain_t   out;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "tributary_stream: %ui: %s", status, msg);

    len = ngx_strlen(msg) + 1;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, msg, len - 1);
    *b->last++ = '\n';
    b->last_buf = (r == r->main);
    b->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    ngx_str_set(&r->headers_out.content_type, "text/plain");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static ngx_table_elt_t *
ngx_tributary_stream_header(ngx_http_request_t *r, const char *name)
{
    size_t            len = ngx_strlen(name);
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    for (part = &r->headers_in.headers.part; part; part = part->next) {
        h = part->elts;
        for (i = 0; i < part->nelts; i++) {
            if (h[i].key.len == len
                && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
            {
                return &h[i];
            }
        }
    }

    return NULL;
}


static ngx_int_t
ngx_tributary_stream_add_header(ngx_http_request_t *r, const char *name,
    const char *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value.data = (u_char *) value;
    h->value.len = ngx_strlen(value);

    return NGX_OK;
}


static ngx_int_t
ngx_tributary_stream_is_ws(ngx_http_request_t *r)
{
    ngx_table_elt_t  *h;

    h = r->headers_in.upgrade;
    if (h == NULL) {
        h = ngx_tributary_stream_header(r, "Upgrade");
    }

    return h && h->value.len == 9
           && ngx_strncasecmp(h->value.data, (u_char *) "websocket", 9) == 0;
}


/*
 * A stream opened with a JWT (tributary_jwt on) lasts as long as the token
 * is accepted: $tributary_jwt_expires, empty without a valid token.
 */
static ngx_int_t
ngx_tributary_stream_expires(ngx_http_request_t *r, ngx_tributary_sub_t *sub)
{
    ngx_http_variable_value_t              *vv;
    ngx_http_tributary_stream_main_conf_t  *mcf;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_tributary_stream_module);

    vv = ngx_http_get_indexed_variable(r, mcf->jwt_expires);
    if (vv == NULL) {
        return NGX_ERROR;
    }

    if (vv->not_found || vv->len == 0) {
        return NGX_OK;
    }

    sub->expires = ngx_atotm(vv->data, vv->len);
    if (sub->expires == NGX_ERROR) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tributary_stream_handler(ngx_http_request_t *r)
{
    u_char                                *dst, *src, *last;
    size_t                                 max;
    ngx_int_t                              rc;
    ngx_str_t                              pos, proto;
    const char                            *err;
    ngx_table_elt_t                       *h;
    ngx_pool_cleanup_t                    *cln;
    ngx_tributary_sub_t                   *sub;
    ngx_tributary_topic_t                 *t;
    ngx_http_tributary_stream_loc_conf_t  *lcf;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_tributary_stream_module);

    if (!ngx_tributary_stream.running || lcf->topic < 0) {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    t = &ngx_tributary_stream.topics[lcf->topic];

    sub = ngx_pcalloc(r->pool, sizeof(ngx_tributary_sub_t));
    if (sub == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sub->request = r;
    sub->conf = lcf;
    sub->topic = t;
    sub->ws = ngx_tributary_stream_is_ws(r);
    ngx_queue_init(&sub->out);
    sub->pending_last = &sub->pending;

    if (sub->ws) {
        if (ngx_tributary_ws_handshake_check(r, lcf->origins,
                ngx_tributary_stream_ws_protocols, 1, &proto, &rc)
            != NGX_OK)
        {
            return rc;
        }

    } else {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    if (lcf->key) {
        if (ngx_http_complex_value(r, lcf->key, &sub->key) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (sub->key.len == 0) {
            /* never fall back to everyone's events */
            return ngx_tributary_stream_error(r, NGX_HTTP_FORBIDDEN,
                       "no stream key for this request");
        }

        sub->has_key = 1;
        sub->key_hash = ngx_hash_key(sub->key.data, sub->key.len);
    }

    if (ngx_tributary_stream_expires(r, sub) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (lcf->type) {
        if (ngx_http_complex_value(r, lcf->type, &sub->type) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (sub->type.len) {
            sub->has_type = 1;
            if (sub->type.data[sub->type.len - 1] == '*') {
                sub->type_prefix = 1;
                sub->type.len--;
            }
        }
    }

    /* Last-Event-ID (an EventSource reconnecting) wins over ?from= */
    h = sub->ws ? NULL : ngx_tributary_stream_header(r, "Last-Event-ID");

    if (h) {
        pos = h->value;

    } else if (ngx_http_arg(r, (u_char *) "from", 4, &pos) == NGX_OK) {
        dst = ngx_pnalloc(r->pool, pos.len);
        if (dst == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        src = pos.data;
        last = dst;
        ngx_unescape_uri(&last, &src, pos.len, NGX_UNESCAPE_URI);
        pos.data = dst;
        pos.len = last - dst;

    } else {
        ngx_str_set(&pos, "now");
    }

    max = NGX_TRIBUTARY_POS_MAX_PARTITIONS;
    sub->entries = ngx_palloc(r->pool, sizeof(ngx_tributary_pos_entry_t) * max);
    if (sub->entries == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    err = NULL;
    sub->start = ngx_tributary_stream_position_parse((char *) pos.data, pos.len,
                     sub->entries, max, &sub->nentries, &err);

    if (sub->start == NGX_TRIBUTARY_POS_ERROR) {
        u_char  *msg;

        msg = ngx_pnalloc(r->pool, 64 + ngx_strlen(err));
        if (msg == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
        ngx_sprintf(msg, "invalid stream position (%s): %s%Z",
                    h ? "Last-Event-ID" : "from", err);

        return ngx_tributary_stream_error(r, NGX_HTTP_BAD_REQUEST, (char *) msg);
    }

    if (r->method == NGX_HTTP_HEAD && !sub->ws) {
        r->headers_out.status = NGX_HTTP_OK;
        ngx_str_set(&r->headers_out.content_type, "text/event-stream");
        r->headers_out.content_type_len = r->headers_out.content_type.len;
        r->header_only = 1;
        return ngx_http_send_header(r);
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_set_ctx(r, sub, ngx_http_tributary_stream_module);

    if (sub->ws) {
        sub->ws_parser = ngx_palloc(r->pool, sizeof(ngx_tributary_ws_parser_t));
        if (sub->ws_parser == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_tributary_ws_parser_init(sub->ws_parser, 1);
        sub->ws_parser->max_message_size = NGX_TRIBUTARY_WS_MAX_CONTROL;
        sub->ws_parser->accept_text = 1;

        rc = ngx_tributary_ws_handshake_accept(r, &proto);
        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        sub->ws_ready = (rc == NGX_OK);
        r->read_event_handler = ngx_tributary_stream_ws_read_handler;

    } else {
        u_char  *retry;

        r->headers_out.status = NGX_HTTP_OK;
        ngx_str_set(&r->headers_out.content_type, "text/event-stream");
        r->headers_out.content_type_len = r->headers_out.content_type.len;
        r->headers_out.content_type_lowcase = NULL;
        ngx_http_clear_content_length(r);
        ngx_http_clear_accept_ranges(r);
        ngx_http_clear_last_modified(r);

        if (ngx_tributary_stream_add_header(r, "Cache-Control", "no-cache")
               != NGX_OK
            || ngx_tributary_stream_add_header(r, "X-Accel-Buffering", "no")
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

#if (NGX_HTTP_GZIP)
        /* an event stream must not wait in a compressor's buffer */
        r->gzip_tested = 1;
        r->gzip_ok = 0;
#endif

        rc = ngx_http_send_header(r);
        if (rc == NGX_ERROR || rc > NGX_OK) {
            return rc;
        }

        /* we write the chunk framing ourselves; see _frame() */
        sub->chunked = r->chunked;
        r->chunked = 0;

        r->read_event_handler = ngx_http_test_reading;

        retry = ngx_pnalloc(r->pool, 32);
        if (retry == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        last = ngx_sprintf(retry, "retry: %M\n\n", lcf->retry);

        {
            ngx_tributary_chunk_t  *ch = ngx_tributary_chunk_alloc(last - retry);
            if (ch == NULL) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
            ngx_memcpy(ch->data, retry, last - retry);
            (void) ngx_tributary_stream_queue(sub, ch, 0, ch->len, 0, 1);
            ngx_tributary_chunk_release(ch);
        }
    }

    cln->handler = ngx_tributary_stream_cleanup;
    cln->data = sub;

    r->write_event_handler = ngx_tributary_stream_write_handler;

    if (r->connection->type == SOCK_STREAM) {
        (void) ngx_tcp_nodelay(r->connection);
    }

    ngx_queue_insert_tail(&ngx_tributary_stream.subs, &sub->all);
    sub->last_write = ngx_current_msec;

    ngx_tributary_stream_expiry_start(sub);

    if (t->partitions) {
        ngx_tributary_stream_attach(sub);

    } else {
        ngx_queue_insert_tail(&t->waiting, &sub->wait);
        sub->in_wait = 1;
    }

    r->main->count++;

    /*
     * Sent from the worker's event rather than here: an error while sending
     * would finalize the request under the content phase's feet.
     */
    ngx_tributary_stream_mark_dirty(sub);
    if (!ngx_tributary_stream.wake_again.posted) {
        ngx_post_event(&ngx_tributary_stream.wake_again, &ngx_posted_events);
    }

    return NGX_DONE;
}


/* status ------------------------------------------------------------------- */

static ngx_int_t
ngx_http_tributary_stream_status_handler(ngx_http_request_t *r)
{
    u_char                        *p;
    size_t                         len;
    ngx_int_t                      rc;
    ngx_buf_t                     *b;
    ngx_uint_t                     i, m;
    ngx_chain_t                    out;
    ngx_tributary_stream_stats_t  *st;

    static const struct {
        const char  *name;
        const char  *type;
        const char  *help;
        size_t       offset;
    } metrics[] = {
        { "tributary_stream_subscribers", "gauge",
          "Connected stream subscribers (SSE and WebSocket).",
          offsetof(ngx_tributary_stream_stats_t, subscribers) },
        { "tributary_stream_replays_active", "gauge",
          "Replay readers running.",
          offsetof(ngx_tributary_stream_stats_t, replays_active) },
        { "tributary_stream_replays_waiting", "gauge",
          "Subscribers waiting for a replay reader.",
          offsetof(ngx_tributary_stream_stats_t, replays_waiting) },
        { "tributary_stream_records_total", "counter",
          "Records received by the live consumer.",
          offsetof(ngx_tributary_stream_stats_t, records) },
        { "tributary_stream_events_delivered_total", "counter",
          "Events queued to subscribers.",
          offsetof(ngx_tributary_stream_stats_t, delivered) },
        { "tributary_stream_events_dropped_total", "counter",
          "Events lost to cut-off slow subscribers.",
          offsetof(ngx_tributary_stream_stats_t, dropped) },
        { "tributary_stream_slow_cutoffs_total", "counter",
          "Subscribers cut off for not reading fast enough.",
          offsetof(ngx_tributary_stream_stats_t, cutoffs) },
        { "tributary_stream_consumer_lag", "gauge",
          "Records in Kafka not yet received by the live consumer.",
          offsetof(ngx_tributary_stream_stats_t, lag) },
    };

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    if (ngx_tributary_stream.conf == NULL
        || ngx_tributary_stream.conf->zone == NULL
        || ngx_tributary_stream.conf->zone->data == NULL)
    {
        return NGX_HTTP_SERVICE_UNAVAILABLE;
    }

    st = ngx_tributary_stream.conf->zone->data;

    len = 0;
    for (m = 0; m < sizeof(metrics) / sizeof(metrics[0]); m++) {
        len += 64 + 2 * ngx_strlen(metrics[m].name) + ngx_strlen(metrics[m].help)
               + NGX_TRIBUTARY_STREAM_MAX_WORKERS
                 * (ngx_strlen(metrics[m].name) + 64 + NGX_ATOMIC_T_LEN);
    }

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = b->last;

    for (m = 0; m < sizeof(metrics) / sizeof(metrics[0]); m++) {
        p = ngx_sprintf(p, "# HELP %s %s\n# TYPE %s %s\n", metrics[m].name,
                        metrics[m].help, metrics[m].name, metrics[m].type);

        for (i = 0; i < NGX_TRIBUTARY_STREAM_MAX_WORKERS; i++) {
            if (st[i].pid == 0) {
                continue;
            }

            p = ngx_sprintf(p, "%s{worker=\"%ui\",pid=\"%uA\"} %uA\n",
                            metrics[m].name, i, st[i].pid,
                            *(ngx_atomic_t *) ((u_char *) &st[i]
                                               + metrics[m].offset));
        }
    }

    b->last = p;
    b->last_buf = (r == r->main);
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type, "text/plain; version=0.0.4");
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* configuration ------------------------------------------------------------ */

static void *
ngx_http_tributary_stream_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_tributary_stream_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_tributary_stream_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&mcf->topics, cf->pool, 2, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NULL;
    }

    mcf->max_replays = NGX_CONF_UNSET_UINT;
    mcf->budget = 256 * 1024;

    return mcf;
}


static char *
ngx_http_tributary_stream_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_tributary_stream_main_conf_t  *mcf = conf;

    ngx_conf_init_uint_value(mcf->max_replays, 4);

    return NGX_CONF_OK;
}


static void *
ngx_http_tributary_stream_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_tributary_stream_loc_conf_t  *lcf;

    lcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_tributary_stream_loc_conf_t));
    if (lcf == NULL) {
        return NULL;
    }

    lcf->topic = NGX_CONF_UNSET;
    lcf->key = NGX_CONF_UNSET_PTR;
    lcf->type = NGX_CONF_UNSET_PTR;
    lcf->heartbeat = NGX_CONF_UNSET_MSEC;
    lcf->retry = NGX_CONF_UNSET_MSEC;
    lcf->buffer = NGX_CONF_UNSET_SIZE;
    lcf->reset = NGX_CONF_UNSET_UINT;
    lcf->origins = NGX_CONF_UNSET_PTR;
    lcf->status = NGX_CONF_UNSET;

    return lcf;
}


static char *
ngx_http_tributary_stream_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_tributary_stream_loc_conf_t  *prev = parent;
    ngx_http_tributary_stream_loc_conf_t  *conf = child;

    ngx_conf_merge_value(conf->topic, prev->topic, -1);
    ngx_conf_merge_ptr_value(conf->key, prev->key, NULL);
    ngx_conf_merge_ptr_value(conf->type, prev->type, NULL);
    ngx_conf_merge_msec_value(conf->heartbeat, prev->heartbeat, 15000);
    ngx_conf_merge_msec_value(conf->retry, prev->retry, 3000);
    ngx_conf_merge_size_value(conf->buffer, prev->buffer, 256 * 1024);
    ngx_conf_merge_uint_value(conf->reset, prev->reset,
                              NGX_TRIBUTARY_STREAM_RESET_END);
    ngx_conf_merge_ptr_value(conf->origins, prev->origins, NULL);
    ngx_conf_merge_value(conf->status, prev->status, 0);

    if (conf->topic >= 0) {
        ngx_http_tributary_stream_main_conf_t  *mcf;

        mcf = ngx_http_conf_get_module_main_conf(cf,
                                                 ngx_http_tributary_stream_module);
        mcf->budget = ngx_min(mcf->budget, ngx_max(conf->buffer / 4, 4096));
    }

    if (conf->heartbeat < 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "tributary_stream_heartbeat must be at least 1s");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_tributary_stream(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tributary_stream_loc_conf_t  *lcf = conf;

    ngx_str_t                              *value, *topic;
    ngx_uint_t                              i;
    ngx_http_core_loc_conf_t               *clcf;
    ngx_http_tributary_stream_main_conf_t  *mcf;

    if (lcf->topic != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].len > 249) {
        return "needs a Kafka topic name";
    }

    mcf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_tributary_stream_module);

    topic = mcf->topics.elts;
    for (i = 0; i < mcf->topics.nelts; i++) {
        if (topic[i].len == value[1].len
            && ngx_strncmp(topic[i].data, value[1].data, value[1].len) == 0)
        {
            break;
        }
    }

    if (i == mcf->topics.nelts) {
        topic = ngx_array_push(&mcf->topics);
        if (topic == NULL) {
            return NGX_CONF_ERROR;
        }
        *topic = value[1];     /* NUL-terminated by the conf parser */
    }

    lcf->topic = i;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_tributary_stream_handler;

    return NGX_CONF_OK;
}


static char *
ngx_http_tributary_stream_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_tributary_stream_loc_conf_t  *lcf = conf;
    ngx_http_core_loc_conf_t              *clcf;

    if (lcf->status != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    lcf->status = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_tributary_stream_status_handler;

    return NGX_CONF_OK;
}


static char *
ngx_http_tributary_kafka_property(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_tributary_stream_main_conf_t  *mcf = conf;

    ngx_str_t     *value;
    ngx_keyval_t  *kv;

    value = cf->args->elts;

    if (mcf->properties == NULL) {
        mcf->properties = ngx_array_create(cf->pool, 4, sizeof(ngx_keyval_t));
        if (mcf->properties == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    kv = ngx_array_push(mcf->properties);
    if (kv == NULL) {
        return NGX_CONF_ERROR;
    }

    kv->key = value[1];
    kv->value = value[2];

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_tributary_stream_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_slab_pool_t  *shpool;

    if (data) {
        shm_zone->data = data;
        return NGX_OK;
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        shm_zone->data = shpool->data;
        return NGX_OK;
    }

    shm_zone->data = ngx_slab_calloc(shpool,
                         sizeof(ngx_tributary_stream_stats_t)
                         * NGX_TRIBUTARY_STREAM_MAX_WORKERS);
    if (shm_zone->data == NULL) {
        return NGX_ERROR;
    }

    shpool->data = shm_zone->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tributary_stream_init(ngx_conf_t *cf)
{
    ngx_str_t                               name;
    ngx_http_tributary_stream_main_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_tributary_stream_module);

    if (mcf->topics.nelts && mcf->brokers.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "tributary_stream needs tributary_kafka_brokers");
        return NGX_ERROR;
    }

    ngx_str_set(&name, "tributary_stream");

    mcf->zone = ngx_shared_memory_add(cf, &name, 8 * ngx_pagesize,
                                      &ngx_http_tributary_stream_module);
    if (mcf->zone == NULL) {
        return NGX_ERROR;
    }

    mcf->zone->init = ngx_http_tributary_stream_init_zone;

    /* set by the auth module (tributary_jwt), in the same .so */
    ngx_str_set(&name, "tributary_jwt_expires");

    mcf->jwt_expires = ngx_http_get_variable_index(cf, &name);
    if (mcf->jwt_expires == NGX_ERROR) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tributary_stream_init_process(ngx_cycle_t *cycle)
{
    ngx_uint_t                              i, b;
    ngx_str_t                              *names;
    ngx_tributary_topic_t                  *t;
    ngx_http_tributary_stream_main_conf_t  *mcf;

    ngx_tributary_stream.stats = &ngx_tributary_stream.local;

    if (ngx_process != NGX_PROCESS_WORKER && ngx_process != NGX_PROCESS_SINGLE) {
        return NGX_OK;
    }

    if (cycle->conf_ctx[ngx_http_module.index] == NULL) {
        return NGX_OK;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_tributary_stream_module);
    if (mcf == NULL) {
        return NGX_OK;
    }

    ngx_tributary_stream.conf = mcf;

    if (mcf->zone && mcf->zone->data
        && ngx_worker < NGX_TRIBUTARY_STREAM_MAX_WORKERS)
    {
        ngx_tributary_stream.stats =
            (ngx_tributary_stream_stats_t *) mcf->zone->data + ngx_worker;
        ngx_memzero(ngx_tributary_stream.stats,
                    sizeof(ngx_tributary_stream_stats_t));
        ngx_tributary_stream.stats->pid = ngx_pid;
    }

    ngx_queue_init(&ngx_tributary_stream.subs);
    ngx_queue_init(&ngx_tributary_stream.replay_wait);
    ngx_queue_init(&ngx_tributary_stream.replaying);
    ngx_queue_init(&ngx_tributary_stream.dirty);

    if (mcf->topics.nelts == 0) {
        return NGX_OK;
    }

    ngx_tributary_stream.ntopics = mcf->topics.nelts;
    ngx_tributary_stream.topics = ngx_pcalloc(cycle->pool,
        sizeof(ngx_tributary_topic_t) * mcf->topics.nelts);
    if (ngx_tributary_stream.topics == NULL) {
        return NGX_ERROR;
    }

    names = mcf->topics.elts;

    for (i = 0; i < mcf->topics.nelts; i++) {
        t = &ngx_tributary_stream.topics[i];
        t->name = names[i];
        t->index = i;
        ngx_queue_init(&t->unfiltered);
        ngx_queue_init(&t->waiting);

        t->buckets = ngx_palloc(cycle->pool,
                         sizeof(ngx_queue_t) * NGX_TRIBUTARY_STREAM_BUCKETS);
        if (t->buckets == NULL) {
            return NGX_ERROR;
        }

        for (b = 0; b < NGX_TRIBUTARY_STREAM_BUCKETS; b++) {
            ngx_queue_init(&t->buckets[b]);
        }
    }

    ngx_tributary_stream.heartbeat = ngx_tributary_chunk_alloc(6);
    if (ngx_tributary_stream.heartbeat == NULL) {
        return NGX_ERROR;
    }
    ngx_memcpy(ngx_tributary_stream.heartbeat->data, ": hb\n\n", 6);

    mcf->kafka.brokers = mcf->brokers;
    mcf->kafka.properties = mcf->properties;
    mcf->kafka.topics = names;
    mcf->kafka.ntopics = mcf->topics.nelts;
    mcf->kafka.on_wake = ngx_tributary_stream_wake;

    if (ngx_tributary_kafka_init(cycle, &mcf->kafka) != NGX_OK) {
        ngx_tributary_kafka_exit(cycle);
        /* the worker serves the rest of its locations; streams get 503 */
        return NGX_OK;
    }

    ngx_tributary_stream.wake_again.handler = ngx_tributary_stream_wake;
    ngx_tributary_stream.wake_again.log = cycle->log;
    ngx_tributary_stream.wake_again.data = &ngx_tributary_stream;

    ngx_tributary_stream.tick.handler = ngx_tributary_stream_tick;
    ngx_tributary_stream.tick.log = cycle->log;
    ngx_tributary_stream.tick.data = &ngx_tributary_stream;
    /* must not hold a shutting-down worker back; exit_process closes all */
    ngx_tributary_stream.tick.cancelable = 1;
    ngx_add_timer(&ngx_tributary_stream.tick, NGX_TRIBUTARY_STREAM_TICK);

    ngx_tributary_stream.running = 1;

    return NGX_OK;
}


static void
ngx_http_tributary_stream_exit_process(ngx_cycle_t *cycle)
{
    ngx_uint_t             i;
    ngx_queue_t           *q;
    ngx_tributary_sub_t   *sub;

    if (ngx_tributary_stream.conf == NULL || ngx_tributary_stream.ntopics == 0)
    {
        return;
    }

    /* clients reconnect with Last-Event-ID: closing them loses nothing */
    while (ngx_tributary_stream.subs.next
           && !ngx_queue_empty(&ngx_tributary_stream.subs))
    {
        q = ngx_queue_head(&ngx_tributary_stream.subs);
        sub = ngx_queue_data(q, ngx_tributary_sub_t, all);
        ngx_tributary_stream_finish(sub, NGX_HTTP_CLOSE);
    }

    ngx_tributary_stream.running = 0;

    if (ngx_tributary_stream.tick.timer_set) {
        ngx_del_timer(&ngx_tributary_stream.tick);
    }

    if (ngx_tributary_stream.wake_again.posted) {
        ngx_delete_posted_event(&ngx_tributary_stream.wake_again);
    }

    ngx_tributary_kafka_exit(cycle);

    for (i = 0; i < ngx_tributary_stream.ntopics; i++) {
        ngx_free(ngx_tributary_stream.topics[i].live);
        ngx_free(ngx_tributary_stream.topics[i].pos);
    }

    ngx_tributary_chunk_release(ngx_tributary_stream.heartbeat);
    ngx_tributary_stream.heartbeat = NULL;

    /*
     * After a reload the new worker with our number has the slot already
     * (old workers exit last): leave it to it.
     */
    if (ngx_tributary_stream.stats != &ngx_tributary_stream.local
        && ngx_tributary_stream.stats->pid == (ngx_atomic_uint_t) ngx_pid)
    {
        ngx_tributary_stream.stats->pid = 0;
    }
}
