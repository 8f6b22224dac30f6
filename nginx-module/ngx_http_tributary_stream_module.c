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
 * Per worker, one live consumer (ngx_tributary_kafka.c) feeds every
 * subscriber of the worker. Each record is turned into an event once, and
 * its SSE bytes (and WebSocket frame) are built once into a refcounted chunk
 * that all its subscribers' output queues point at.
 *
 * Positions (tributary/position.h) give, per partition, the next
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

#include "ngx_tributary_stream.h"


static ngx_conf_enum_t  ngx_http_tributary_stream_resets[] = {
    { ngx_string("end"), NGX_TRIBUTARY_STREAM_RESET_END },
    { ngx_string("beginning"), NGX_TRIBUTARY_STREAM_RESET_BEGINNING },
    { ngx_null_string, 0 }
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
static char *ngx_http_tributary_stream_registry(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_tributary_stream_topic_registry(ngx_conf_t *cf,
    ngx_http_tributary_stream_main_conf_t *mcf,
    ngx_http_tributary_stream_loc_conf_t *conf);
static char *ngx_http_tributary_kafka_property(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static ngx_int_t ngx_http_tributary_stream_init_process(ngx_cycle_t *cycle);
static void ngx_http_tributary_stream_exit_process(ngx_cycle_t *cycle);


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

    { ngx_string("tributary_stream_registry"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_tributary_stream_registry,
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


ngx_tributary_stream_worker_t  ngx_tributary_stream;


static u_char  ngx_tributary_stream_ws_ping_bytes[2] = { 0x89, 0x00 };


/* worker events ---------------------------------------------------------- */

static void
ngx_tributary_stream_live_handler(void *data, rd_kafka_message_t *m)
{
    ngx_tributary_stream_live_record(m);
}


static void
ngx_tributary_stream_replay_handler(void *data, rd_kafka_message_t *m)
{
    ngx_tributary_sub_t  *sub = data;

    if (sub->replay) {
        ngx_tributary_stream_replay_record(sub, m);
    }
}


/*
 * Records held until their schema is fetched (tributary_stream_registry):
 * hands over the ready ones, in order. 1 while the first still waits.
 * The handler may empty the array (a replay that ends).
 */
static ngx_uint_t
ngx_tributary_stream_release_held(rd_kafka_message_t **held,
    ngx_uint_t *nheld, void (*handler)(void *data, rd_kafka_message_t *m),
    void *data)
{
    rd_kafka_message_t  *m;

    while (*nheld) {
        if (!ngx_tributary_stream_record_ready(held[0])) {
            return 1;
        }

        m = held[0];
        (*nheld)--;
        ngx_memmove(&held[0], &held[1], *nheld * sizeof(m));

        handler(data, m);
        rd_kafka_message_destroy(m);
    }

    return 0;
}


/*
 * Takes n polled records: handed over in order while they are ready; from
 * the first that is not, held (with every one after it). 1 if any is held.
 */
static ngx_uint_t
ngx_tributary_stream_take(rd_kafka_message_t **msgs, ssize_t n,
    rd_kafka_message_t **held, ngx_uint_t *nheld,
    void (*handler)(void *data, rd_kafka_message_t *m), void *data)
{
    ssize_t  i;

    for (i = 0; i < n; i++) {
        if (*nheld || !ngx_tributary_stream_record_ready(msgs[i])) {
            held[(*nheld)++] = msgs[i];
            continue;
        }

        handler(data, msgs[i]);
        rd_kafka_message_destroy(msgs[i]);
    }

    return *nheld != 0;
}

static void
ngx_tributary_stream_wake(ngx_event_t *ev)
{
    int32_t               partitions;
    int64_t              *end;
    ssize_t               n, i;
    size_t                bytes = 0;
    ngx_uint_t            t, budget, more = 0, holding;
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

        /* records waiting for their schema: no more until they went */
        if (ngx_tributary_stream_release_held(sub->held, &sub->nheld,
                                              ngx_tributary_stream_replay_handler,
                                              sub)
            || sub->replay == NULL)
        {
            continue;
        }

        n = ngx_tributary_kafka_replay_poll(sub->replay, msgs,
                                            NGX_TRIBUTARY_STREAM_BATCH);
        if (n == NGX_TRIBUTARY_STREAM_BATCH) {
            more = 1;
        }

        if (n <= 0) {
            continue;
        }

        if (sub->held == NULL) {
            sub->held = ngx_palloc(sub->request->pool,
                           sizeof(rd_kafka_message_t *)
                           * NGX_TRIBUTARY_STREAM_BATCH);

            if (sub->held == NULL) {
                for (i = 0; i < n; i++) {
                    rd_kafka_message_destroy(msgs[i]);
                }

                ngx_tributary_stream_finish(sub,
                                            NGX_HTTP_INTERNAL_SERVER_ERROR);
                continue;
            }
        }

        ngx_tributary_stream_take(msgs, n, sub->held, &sub->nheld,
                                  ngx_tributary_stream_replay_handler, sub);

        /* the reader may have been stopped: next is still valid */
    }

    ngx_tributary_stream_replay_next();

    ngx_tributary_registry_report(ev->log);

    /*
     * live records waiting for their schema: no more until they went (the
     * registry thread wakes us when it has fetched or failed)
     */
    holding = ngx_tributary_stream_release_held(ngx_tributary_stream.held,
                                                &ngx_tributary_stream.nheld,
                                                ngx_tributary_stream_live_handler,
                                                NULL);

    for (budget = 0;
         !holding && budget < NGX_TRIBUTARY_STREAM_BUDGET;
         budget += n)
    {
        n = ngx_tributary_kafka_live_poll(msgs, NGX_TRIBUTARY_STREAM_BATCH);
        if (n <= 0) {
            break;
        }

        for (i = 0; i < n; i++) {
            bytes += msgs[i]->len;
        }

        holding = ngx_tributary_stream_take(msgs, n,
                                            ngx_tributary_stream.held,
                                            &ngx_tributary_stream.nheld,
                                            ngx_tributary_stream_live_handler,
                                            NULL);

        if (n < NGX_TRIBUTARY_STREAM_BATCH) {
            break;
        }

        if (bytes >= ngx_tributary_stream.conf->budget) {
            more = 1;
            break;
        }
    }

    if (budget >= NGX_TRIBUTARY_STREAM_BUDGET && !holding) {
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
                (void) ngx_tributary_stream_queue_copy(sub,
                           ngx_tributary_stream_ws_ping_bytes, 2);
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

void
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
    size_t      len;
    ngx_buf_t  *b;

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "tributary_stream: %ui: %s", status, msg);

    len = ngx_strlen(msg) + 1;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, msg, len - 1);
    *b->last++ = '\n';

    return ngx_tributary_stream_respond(r, status, "text/plain", b);
}


static ngx_int_t
ngx_tributary_stream_is_ws(ngx_http_request_t *r)
{
    ngx_uint_t        n;
    ngx_table_elt_t  *h;

    h = r->headers_in.upgrade;
    if (h == NULL) {
        h = ngx_tributary_ws_header(r, "Upgrade", &n);
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


/*
 * The subscriber's key and event type filter, from tributary_stream_key
 * and tributary_stream_type. NGX_OK, or NGX_DECLINED with *rc set to what
 * the handler returns.
 */
static ngx_int_t
ngx_tributary_stream_filters(ngx_http_request_t *r, ngx_tributary_sub_t *sub,
    ngx_int_t *rc)
{
    ngx_http_tributary_stream_loc_conf_t  *lcf = sub->conf;

    *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    if (lcf->key) {
        if (ngx_http_complex_value(r, lcf->key, &sub->key) != NGX_OK) {
            return NGX_DECLINED;
        }

        if (sub->key.len == 0) {
            /* never fall back to everyone's events */
            *rc = ngx_tributary_stream_error(r, NGX_HTTP_FORBIDDEN,
                      "no stream key for this request");
            return NGX_DECLINED;
        }

        sub->has_key = 1;
        sub->key_hash = ngx_hash_key(sub->key.data, sub->key.len);
    }

    if (ngx_tributary_stream_expires(r, sub) != NGX_OK) {
        return NGX_DECLINED;
    }

    if (lcf->type) {
        if (ngx_http_complex_value(r, lcf->type, &sub->type) != NGX_OK) {
            return NGX_DECLINED;
        }

        if (sub->type.len) {
            sub->has_type = 1;
            if (sub->type.data[sub->type.len - 1] == '*') {
                sub->type_prefix = 1;
                sub->type.len--;
            }
        }
    }

    return NGX_OK;
}


/*
 * Where the subscriber starts: Last-Event-ID (an EventSource reconnecting)
 * wins over ?from=, "now" without either. NGX_OK, or NGX_DECLINED with *rc
 * set to what the handler returns.
 */
static ngx_int_t
ngx_tributary_stream_start(ngx_http_request_t *r, ngx_tributary_sub_t *sub,
    ngx_int_t *rc)
{
    u_char           *dst, *src, *last, *msg;
    size_t            max;
    ngx_uint_t        n;
    ngx_str_t         pos;
    const char       *err;
    ngx_table_elt_t  *h;

    *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    h = sub->ws ? NULL : ngx_tributary_ws_header(r, "Last-Event-ID", &n);

    if (h) {
        pos = h->value;

    } else if (ngx_http_arg(r, (u_char *) "from", 4, &pos) == NGX_OK) {
        dst = ngx_pnalloc(r->pool, pos.len);
        if (dst == NULL) {
            return NGX_DECLINED;
        }
        src = pos.data;
        last = dst;
        ngx_unescape_uri(&last, &src, pos.len, NGX_UNESCAPE_URI);
        pos.data = dst;
        pos.len = last - dst;

    } else {
        ngx_str_set(&pos, "now");
    }

    max = TB_POS_MAX_PARTITIONS;
    sub->entries = ngx_palloc(r->pool, sizeof(tb_pos_entry) * max);
    if (sub->entries == NULL) {
        return NGX_DECLINED;
    }

    err = NULL;
    sub->start = tb_pos_parse((char *) pos.data, pos.len,
                     sub->entries, max, &sub->nentries, &err);

    if (sub->start != TB_POS_ERROR) {
        return NGX_OK;
    }

    msg = ngx_pnalloc(r->pool, 64 + ngx_strlen(err));
    if (msg == NULL) {
        return NGX_DECLINED;
    }

    ngx_sprintf(msg, "invalid stream position (%s): %s%Z",
                h ? "Last-Event-ID" : "from", err);

    *rc = ngx_tributary_stream_error(r, NGX_HTTP_BAD_REQUEST, (char *) msg);

    return NGX_DECLINED;
}


/*
 * The WebSocket opening: "101 Switching Protocols" (possibly not all sent
 * yet: see _send()), then the client's frames are read by
 * ngx_tributary_stream_ws_read_handler(). NGX_OK, or what the handler
 * returns.
 */
static ngx_int_t
ngx_tributary_stream_open_ws(ngx_http_request_t *r, ngx_tributary_sub_t *sub,
    ngx_str_t *proto)
{
    ngx_int_t  rc;

    sub->ws_parser = ngx_palloc(r->pool, sizeof(tb_ws_parser));
    if (sub->ws_parser == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    tb_ws_parser_init(sub->ws_parser, 1);
    sub->ws_parser->max_message_size = TB_WS_MAX_CONTROL;
    sub->ws_parser->accept_text = 1;

    rc = ngx_tributary_ws_handshake_accept(r, proto);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    sub->ws_ready = (rc == NGX_OK);
    r->read_event_handler = ngx_tributary_stream_ws_read_handler;

    return NGX_OK;
}


/*
 * The SSE opening: the response header (text/event-stream, never cached,
 * buffered or compressed on the way), then "retry:", queued. NGX_OK, or
 * what the handler returns.
 */
static ngx_int_t
ngx_tributary_stream_open_sse(ngx_http_request_t *r, ngx_tributary_sub_t *sub)
{
    u_char     *last, retry[32];
    ngx_int_t   rc;
    ngx_str_t   no_cache = ngx_string("no-cache"), no = ngx_string("no");

    r->headers_out.status = NGX_HTTP_OK;
    ngx_str_set(&r->headers_out.content_type, "text/event-stream");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    ngx_http_clear_content_length(r);
    ngx_http_clear_accept_ranges(r);
    ngx_http_clear_last_modified(r);

    if (ngx_tributary_ws_add_header(r, "Cache-Control", &no_cache) != NGX_OK
        || ngx_tributary_ws_add_header(r, "X-Accel-Buffering", &no) != NGX_OK)
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

    last = ngx_snprintf(retry, sizeof(retry), "retry: %M\n\n",
                        sub->conf->retry);

    if (ngx_tributary_stream_queue_copy(sub, retry, last - retry) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tributary_stream_handler(ngx_http_request_t *r)
{
    ngx_int_t                              rc;
    ngx_str_t                              proto;
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

    if (ngx_tributary_stream_filters(r, sub, &rc) != NGX_OK
        || ngx_tributary_stream_start(r, sub, &rc) != NGX_OK)
    {
        return rc;
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

    rc = sub->ws ? ngx_tributary_stream_open_ws(r, sub, &proto)
                 : ngx_tributary_stream_open_sse(r, sub);
    if (rc != NGX_OK) {
        return rc;
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
        != NGX_OK
        || ngx_array_init(&mcf->registries, cf->pool, 1,
                          sizeof(ngx_tributary_registry_conf_t))
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
    lcf->registry = NGX_CONF_UNSET;

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
    ngx_conf_merge_value(conf->registry, prev->registry,
                         NGX_TRIBUTARY_REGISTRY_OFF);

    if (conf->topic >= 0) {
        ngx_http_tributary_stream_main_conf_t  *mcf;

        mcf = ngx_http_conf_get_module_main_conf(cf,
                                                 ngx_http_tributary_stream_module);
        mcf->budget = ngx_min(mcf->budget, ngx_max(conf->buffer / 4, 4096));

        if (ngx_http_tributary_stream_topic_registry(cf, mcf, conf)
            != NGX_CONF_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    if (conf->heartbeat < 1000) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "tributary_stream_heartbeat must be at least 1s");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * A topic's records are decoded once for all its subscribers: every
 * location of a topic names the same registry, or none.
 */
static char *
ngx_http_tributary_stream_topic_registry(ngx_conf_t *cf,
    ngx_http_tributary_stream_main_conf_t *mcf,
    ngx_http_tributary_stream_loc_conf_t *conf)
{
    ngx_str_t                      *names;
    ngx_uint_t                      i;
    ngx_tributary_registry_conf_t  *regs;

    if (mcf->topic_registry == NULL) {
        mcf->topic_registry = ngx_palloc(cf->pool,
                                  sizeof(ngx_int_t) * mcf->topics.nelts);
        if (mcf->topic_registry == NULL) {
            return NGX_CONF_ERROR;
        }

        for (i = 0; i < mcf->topics.nelts; i++) {
            mcf->topic_registry[i] = NGX_CONF_UNSET;  /* no location yet */
        }
    }

    if (mcf->topic_registry[conf->topic] == NGX_CONF_UNSET) {
        mcf->topic_registry[conf->topic] = conf->registry;
        return NGX_CONF_OK;
    }

    if (mcf->topic_registry[conf->topic] == conf->registry) {
        return NGX_CONF_OK;
    }

    names = mcf->topics.elts;
    regs = mcf->registries.elts;

    if (mcf->topic_registry[conf->topic] < 0 || conf->registry < 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "tributary_stream \"%V\": one location of this "
                           "topic has tributary_stream_registry and another "
                           "not; every location of a topic needs the same "
                           "registry (or none)", &names[conf->topic]);

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "tributary_stream \"%V\": another location of "
                           "this topic reads it through the registry %V; "
                           "every location of a topic needs the same "
                           "registry (or none)", &names[conf->topic],
                           &regs[mcf->topic_registry[conf->topic]].url);
    }

    return NGX_CONF_ERROR;
}


static char *
ngx_http_tributary_stream_registry(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_tributary_stream_loc_conf_t  *lcf = conf;

    ngx_http_tributary_stream_main_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf,
                                             ngx_http_tributary_stream_module);

    return ngx_tributary_registry_parse(cf, &mcf->registries, &lcf->registry);
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
    clcf->handler = ngx_tributary_stream_status_handler;

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

    if (ngx_tributary_registry_init(cycle, &mcf->registries) != NGX_OK) {
        return NGX_ERROR;
    }

    for (i = 0; mcf->topic_registry && i < mcf->topics.nelts; i++) {
        t = &ngx_tributary_stream.topics[i];
        if (mcf->topic_registry[i] >= 0) {
            t->registry = ngx_tributary_registry_get(mcf->topic_registry[i]);
            t->wire = ngx_tributary_registry_cache(t->registry);
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

    while (ngx_tributary_stream.nheld) {
        rd_kafka_message_destroy(
            ngx_tributary_stream.held[--ngx_tributary_stream.nheld]);
    }

    ngx_tributary_kafka_exit(cycle);
    ngx_tributary_registry_exit();

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

