/*
 * ngx_http_tributary_module: MQTT over WebSocket.
 *
 * "tributary_mqtt_pass host:port" terminates WebSocket (RFC 6455,
 * subprotocol "mqtt") in the location and relays the MQTT byte stream to a
 * broker's plain TCP listener: payload of client data frames goes to the
 * broker as-is, broker bytes come back as binary frames. MQTT packets are not
 * parsed; WebSocket messages and MQTT packets need not line up.
 *
 * Each connection has three fixed buffers (buffer_size): raw client frames,
 * unmasked bytes for the broker, and one framed message for the client. A
 * side is not read while the buffer it feeds is full, which is the
 * back-pressure in both directions. Everything runs on the worker's event
 * loop: non-blocking connect, read/write handlers on both connections and
 * timers.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "tributary/ws.h"
#include "ngx_tributary_ws_handshake.h"


typedef struct {
    ngx_addr_t                 *addrs;
    ngx_uint_t                  naddrs;
    ngx_str_t                   url;

    ngx_msec_t                  connect_timeout;
    ngx_msec_t                  idle_timeout;
    ngx_msec_t                  send_timeout;
    size_t                      buffer_size;
    size_t                      max_frame_size;
    size_t                      max_message_size;
    ngx_array_t                *allow_origin;
} ngx_http_tributary_mqtt_loc_conf_t;


typedef struct {
    ngx_http_request_t                  *request;
    ngx_http_tributary_mqtt_loc_conf_t  *conf;

    ngx_peer_connection_t                peer;
    ngx_connection_t                    *upstream;

    tb_ws_parser                         parser;

    ngx_buf_t                           *client_in;
    ngx_buf_t                           *to_broker;
    ngx_buf_t                           *to_client;

    size_t                               pong_len;
    size_t                               pong_sent;
    size_t                               close_len;
    size_t                               close_sent;
    u_char                               pong[TB_WS_MAX_CONTROL_FRAME];
    u_char                               close[TB_WS_MAX_CONTROL_FRAME];

    unsigned                             connected:1;
    unsigned                             client_eof:1;     /* not read */
    unsigned                             client_done:1;    /* input ignored */
    unsigned                             client_gone:1;    /* cannot write */
    unsigned                             broker_done:1;    /* not read */
    unsigned                             close_queued:1;
    unsigned                             moved:1;          /* bytes moved */
} ngx_http_tributary_mqtt_ctx_t;


static ngx_int_t ngx_http_tributary_mqtt_handler(ngx_http_request_t *r);
static void ngx_http_tributary_mqtt_connect(
    ngx_http_tributary_mqtt_ctx_t *ctx);
static void ngx_http_tributary_mqtt_downstream_handler(ngx_event_t *ev);
static void ngx_http_tributary_mqtt_upstream_handler(ngx_event_t *ev);
static void ngx_http_tributary_mqtt_process(ngx_http_tributary_mqtt_ctx_t *ctx);
static ngx_int_t ngx_http_tributary_mqtt_read_client(
    ngx_http_tributary_mqtt_ctx_t *ctx);
static void ngx_http_tributary_mqtt_parse(ngx_http_tributary_mqtt_ctx_t *ctx);
static ngx_int_t ngx_http_tributary_mqtt_write_broker(
    ngx_http_tributary_mqtt_ctx_t *ctx);
static ngx_int_t ngx_http_tributary_mqtt_read_broker(
    ngx_http_tributary_mqtt_ctx_t *ctx);
static ngx_int_t ngx_http_tributary_mqtt_write_client(
    ngx_http_tributary_mqtt_ctx_t *ctx);
static ngx_int_t ngx_http_tributary_mqtt_send(ngx_connection_t *c,
    u_char *data, size_t len, size_t *sent);
static ngx_int_t ngx_http_tributary_mqtt_send_rest(ngx_connection_t *c,
    u_char *frame, size_t len, size_t *done);
static void ngx_http_tributary_mqtt_queue_close(
    ngx_http_tributary_mqtt_ctx_t *ctx, ngx_uint_t code, const char *reason);
static void ngx_http_tributary_mqtt_broker_lost(
    ngx_http_tributary_mqtt_ctx_t *ctx, const char *doing);
static void ngx_http_tributary_mqtt_broker_failed(
    ngx_http_tributary_mqtt_ctx_t *ctx, ngx_uint_t code, const char *reason);
static void ngx_http_tributary_mqtt_client_gone(
    ngx_http_tributary_mqtt_ctx_t *ctx, ngx_uint_t flush);
static void ngx_http_tributary_mqtt_close_upstream(
    ngx_http_tributary_mqtt_ctx_t *ctx);
static void ngx_http_tributary_mqtt_cleanup(void *data);

static void *ngx_http_tributary_mqtt_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_tributary_mqtt_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_tributary_mqtt_pass(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);


/* offered by the client in this order of preference is the client's */
static ngx_str_t  ngx_http_tributary_mqtt_protocols[] = {
    ngx_string("mqtt"),
    ngx_string("mqttv3.1")
};


static ngx_command_t  ngx_http_tributary_commands[] = {

    { ngx_string("tributary_mqtt_pass"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_tributary_mqtt_pass,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tributary_mqtt_connect_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tributary_mqtt_loc_conf_t, connect_timeout),
      NULL },

    { ngx_string("tributary_mqtt_idle_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tributary_mqtt_loc_conf_t, idle_timeout),
      NULL },

    { ngx_string("tributary_mqtt_send_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tributary_mqtt_loc_conf_t, send_timeout),
      NULL },

    { ngx_string("tributary_mqtt_buffer_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tributary_mqtt_loc_conf_t, buffer_size),
      NULL },

    { ngx_string("tributary_mqtt_max_frame_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tributary_mqtt_loc_conf_t, max_frame_size),
      NULL },

    { ngx_string("tributary_mqtt_max_message_size"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tributary_mqtt_loc_conf_t, max_message_size),
      NULL },

    { ngx_string("tributary_mqtt_allow_origin"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_tributary_ws_origins_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tributary_mqtt_loc_conf_t, allow_origin),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_tributary_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_tributary_mqtt_create_loc_conf,
    ngx_http_tributary_mqtt_merge_loc_conf
};


ngx_module_t  ngx_http_tributary_module = {
    NGX_MODULE_V1,
    &ngx_http_tributary_module_ctx,        /* module context */
    ngx_http_tributary_commands,           /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_int_t
ngx_http_tributary_mqtt_handler(ngx_http_request_t *r)
{
    size_t                               n;
    ngx_int_t                            rc;
    ngx_str_t                            protocol;
    ngx_buf_t                           *hb;
    ngx_connection_t                    *c;
    ngx_http_cleanup_t                  *cln;
    ngx_http_core_loc_conf_t            *clcf;
    ngx_http_tributary_mqtt_ctx_t       *ctx;
    ngx_http_tributary_mqtt_loc_conf_t  *mlcf;

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_tributary_module);
    c = r->connection;

    if (ngx_tributary_ws_handshake_check(r, mlcf->allow_origin,
                                         ngx_http_tributary_mqtt_protocols,
                                         2, &protocol, &rc)
        != NGX_OK)
    {
        return rc;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_tributary_mqtt_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->conf = mlcf;

    ctx->client_in = ngx_create_temp_buf(r->pool, mlcf->buffer_size);
    ctx->to_broker = ngx_create_temp_buf(r->pool, mlcf->buffer_size);
    /* frames are built in place: room for a header before the payload */
    ctx->to_client = ngx_create_temp_buf(r->pool, mlcf->buffer_size
                                         + TB_WS_MAX_SERVER_HEADER);
    if (ctx->client_in == NULL || ctx->to_broker == NULL
        || ctx->to_client == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    tb_ws_parser_init(&ctx->parser, 1);
    ctx->parser.max_frame_size = mlcf->max_frame_size;
    ctx->parser.max_message_size = mlcf->max_message_size;

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_tributary_mqtt_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_tributary_module);

    if (ngx_tributary_ws_handshake_accept(r, &protocol) == NGX_ERROR) {
        return NGX_ERROR;
    }

    /* the request stays until the relay finalizes it */
    r->main->count++;

    /* frames a client sent right behind its handshake */
    hb = r->header_in;
    n = hb->last - hb->pos;
    if (n) {
        if (n > mlcf->buffer_size) {
            n = mlcf->buffer_size;
        }
        ctx->client_in->last = ngx_cpymem(ctx->client_in->last, hb->pos, n);
        hb->pos += n;
    }

    c->log->action = "relaying MQTT over WebSocket";

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    if (clcf->tcp_nodelay) {
        (void) ngx_tcp_nodelay(c);
    }

    c->read->handler = ngx_http_tributary_mqtt_downstream_handler;
    c->write->handler = ngx_http_tributary_mqtt_downstream_handler;
    r->read_event_handler = ngx_http_block_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    /* lets a graceful shutdown reach us through c->close (1001 Going Away) */
    c->idle = 1;

    ngx_http_tributary_mqtt_connect(ctx);
    ngx_http_tributary_mqtt_process(ctx);

    return NGX_DONE;
}


static void
ngx_http_tributary_mqtt_connect(ngx_http_tributary_mqtt_ctx_t *ctx)
{
    ngx_int_t                  rc;
    ngx_connection_t          *c, *uc;
    ngx_http_request_t        *r;
    ngx_peer_connection_t     *pc;
    ngx_http_core_loc_conf_t  *clcf;

    r = ctx->request;
    c = r->connection;
    pc = &ctx->peer;

    pc->sockaddr = ctx->conf->addrs[0].sockaddr;
    pc->socklen = ctx->conf->addrs[0].socklen;
    pc->name = &ctx->conf->addrs[0].name;
    pc->get = ngx_event_get_peer;
    pc->log = c->log;
    pc->log_error = NGX_ERROR_ERR;

    c->log->action = "connecting to MQTT broker";

    rc = ngx_event_connect_peer(pc);

    c->log->action = "relaying MQTT over WebSocket";

    if (rc == NGX_ERROR || rc == NGX_BUSY || rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "tributary: cannot connect to MQTT broker %V",
                      pc->name);
        ngx_http_tributary_mqtt_broker_failed(ctx,
                                    TB_WS_CLOSE_TRY_AGAIN_LATER,
                                    "broker unavailable");
        return;
    }

    uc = pc->connection;
    ctx->upstream = uc;

    uc->data = ctx;
    uc->pool = r->pool;
    uc->log = c->log;
    uc->read->log = c->log;
    uc->write->log = c->log;
    uc->read->handler = ngx_http_tributary_mqtt_upstream_handler;
    uc->write->handler = ngx_http_tributary_mqtt_upstream_handler;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);
    if (clcf->tcp_nodelay) {
        (void) ngx_tcp_nodelay(uc);
    }

    if (rc == NGX_AGAIN) {
        ngx_add_timer(uc->write, ctx->conf->connect_timeout);
        return;
    }

    ctx->connected = 1;
}


static void
ngx_http_tributary_mqtt_downstream_handler(ngx_event_t *ev)
{
    ngx_connection_t               *c;
    ngx_http_request_t             *r;
    ngx_http_tributary_mqtt_ctx_t  *ctx;

    c = ev->data;
    r = c->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_tributary_module);

    ngx_http_set_log_request(c->log, r);

    if (c->close) {
        /* the worker is shutting down gracefully */
        c->close = 0;
        c->idle = 0;

        if (!ctx->close_queued) {
            ngx_http_tributary_mqtt_queue_close(ctx,
                                        TB_WS_CLOSE_GOING_AWAY,
                                        "server shutting down");
        }

    } else if (ev->timedout) {
        ev->timedout = 0;

        if (ev->write) {
            ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                          "tributary: client timed out reading");
            c->timedout = 1;
            ngx_http_tributary_mqtt_client_gone(ctx, 0);

        } else if (!ctx->close_queued) {
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "tributary: WebSocket idle timeout");
            ngx_http_tributary_mqtt_queue_close(ctx,
                                        TB_WS_CLOSE_NORMAL,
                                        "idle timeout");
        }
    }

    ngx_http_tributary_mqtt_process(ctx);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_tributary_mqtt_upstream_handler(ngx_event_t *ev)
{
    int                             err;
    socklen_t                       len;
    ngx_connection_t               *c, *uc;
    ngx_http_tributary_mqtt_ctx_t  *ctx;

    uc = ev->data;
    ctx = uc->data;
    c = ctx->request->connection;

    ngx_http_set_log_request(c->log, ctx->request);

    if (!ctx->connected) {
        err = 0;

        if (ev->timedout) {
            err = NGX_ETIMEDOUT;

        } else {
            len = sizeof(int);
            if (getsockopt(uc->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len)
                == -1)
            {
                err = ngx_socket_errno;
            }
        }

        if (err) {
            ngx_log_error(NGX_LOG_ERR, c->log, err,
                          "tributary: connect() to MQTT broker %V failed",
                          ctx->peer.name);
            ngx_http_tributary_mqtt_close_upstream(ctx);
            ngx_http_tributary_mqtt_broker_failed(ctx,
                                    TB_WS_CLOSE_TRY_AGAIN_LATER,
                                    "broker unavailable");
            goto done;
        }

        ctx->connected = 1;

        if (uc->write->timer_set) {
            ngx_del_timer(uc->write);
        }

    } else if (ev->timedout) {
        ev->timedout = 0;

        if (ev->write) {
            ngx_log_error(NGX_LOG_ERR, c->log, NGX_ETIMEDOUT,
                          "tributary: MQTT broker %V stopped reading",
                          ctx->peer.name);
            ngx_http_tributary_mqtt_close_upstream(ctx);
            ngx_http_tributary_mqtt_broker_failed(ctx,
                                    TB_WS_CLOSE_INTERNAL_ERROR,
                                    "broker timed out");
        }
    }

done:

    ngx_http_tributary_mqtt_process(ctx);
    ngx_http_run_posted_requests(c);
}


/*
 * Moves bytes in both directions until nothing more can move, then either
 * finalizes the request or waits for events.
 */
static void
ngx_http_tributary_mqtt_process(ngx_http_tributary_mqtt_ctx_t *ctx)
{
    ngx_uint_t           progress;
    ngx_connection_t    *c, *uc;
    ngx_http_request_t  *r;

    r = ctx->request;
    c = r->connection;
    ctx->moved = 0;

    do {
        progress = 0;

        progress |= ngx_http_tributary_mqtt_read_client(ctx);
        ngx_http_tributary_mqtt_parse(ctx);

        if (ctx->client_eof && ctx->client_in->pos == ctx->client_in->last) {
            ctx->client_done = 1;
        }

        progress |= ngx_http_tributary_mqtt_write_broker(ctx);
        progress |= ngx_http_tributary_mqtt_read_broker(ctx);
        progress |= ngx_http_tributary_mqtt_write_client(ctx);

        /* the client is done and what it sent has reached the broker */
        if (ctx->upstream && ctx->client_done
            && ctx->to_broker->pos == ctx->to_broker->last)
        {
            ngx_http_tributary_mqtt_close_upstream(ctx);
        }

    } while (progress);

    if (ctx->upstream == NULL
        && (ctx->client_gone
            || (ctx->close_queued && ctx->close_sent == ctx->close_len)))
    {
        if (c->read->timer_set) {
            ngx_del_timer(c->read);
        }

        if (c->write->timer_set) {
            ngx_del_timer(c->write);
        }

        c->idle = 0;

        /*
         * After our close frame nginx's lingering close half-closes the
         * socket and reads until the client closes, so that the client's
         * own close frame cannot reset the connection before it has read
         * ours.
         */
        r->lingering_close = !ctx->client_gone;

        ngx_http_finalize_request(r, NGX_DONE);
        return;
    }

    if (!ctx->client_gone) {
        if (ngx_handle_read_event(c->read, 0) != NGX_OK
            || ngx_handle_write_event(c->write, 0) != NGX_OK)
        {
            ngx_http_tributary_mqtt_client_gone(ctx, 0);
            ngx_http_tributary_mqtt_process(ctx);
            return;
        }

        if (!c->write->ready
            && (r->out || ctx->to_client->pos < ctx->to_client->last
                || ctx->pong_len || ctx->close_sent < ctx->close_len))
        {
            if (!c->write->timer_set) {
                ngx_add_timer(c->write, ctx->conf->send_timeout);
            }

        } else if (c->write->timer_set) {
            ngx_del_timer(c->write);
        }

        if (ctx->moved || !c->read->timer_set) {
            ngx_add_timer(c->read, ctx->conf->idle_timeout);
        }
    }

    uc = ctx->upstream;

    if (uc && ctx->connected) {
        if (ngx_handle_read_event(uc->read, 0) != NGX_OK
            || ngx_handle_write_event(uc->write, 0) != NGX_OK)
        {
            ngx_http_tributary_mqtt_close_upstream(ctx);
            ngx_http_tributary_mqtt_broker_failed(ctx,
                                    TB_WS_CLOSE_INTERNAL_ERROR,
                                    "broker connection error");
            ngx_http_tributary_mqtt_process(ctx);
            return;
        }

        if (!uc->write->ready && ctx->to_broker->pos < ctx->to_broker->last) {
            if (!uc->write->timer_set) {
                ngx_add_timer(uc->write, ctx->conf->send_timeout);
            }

        } else if (uc->write->timer_set) {
            ngx_del_timer(uc->write);
        }
    }
}


static ngx_int_t
ngx_http_tributary_mqtt_read_client(ngx_http_tributary_mqtt_ctx_t *ctx)
{
    ssize_t            n;
    ngx_buf_t         *b;
    ngx_connection_t  *c;

    c = ctx->request->connection;
    b = ctx->client_in;

    if (ctx->client_done || ctx->client_eof || !c->read->ready
        || b->last == b->end)
    {
        return 0;
    }

    n = c->recv(c, b->last, b->end - b->last);

    if (n == NGX_AGAIN) {
        return 0;
    }

    if (n == 0 || n == NGX_ERROR) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "tributary: client closed the connection without a "
                      "close frame");
        /* what the client sent before it vanished still goes to the broker,
         * e.g. a PUBLISH followed by an abrupt close */
        ngx_http_tributary_mqtt_client_gone(ctx, n == 0);
        return 1;
    }

    b->last += n;
    ctx->moved = 1;

    return 1;
}


static void
ngx_http_tributary_mqtt_parse(ngx_http_tributary_mqtt_ctx_t *ctx)
{
    size_t              len;
    u_char             *out;
    ngx_buf_t          *in, *ub;
    tb_ws_event         ev;
    tb_ws_parser       *p;
    const uint8_t      *pos;
    ngx_connection_t   *c;

    c = ctx->request->connection;
    in = ctx->client_in;
    ub = ctx->to_broker;
    p = &ctx->parser;

    while (!ctx->client_done && in->pos < in->last) {

        /* a ping may replace a queued pong, not one half sent */
        if (ctx->pong_sent) {
            break;
        }

        pos = in->pos;
        out = ub->last;

        ev = tb_ws_parse(p, &pos, in->last, &out, ub->end);

        in->pos = (u_char *) pos;
        ub->last = out;

        switch (ev) {

        case TB_WS_AGAIN:
            goto done;

        case TB_WS_MESSAGE:
        case TB_WS_PONG:
            break;

        case TB_WS_PING:
            ctx->pong_len = tb_ws_control_frame(ctx->pong, TB_WS_OP_PONG,
                                                p->control, p->control_len);
            ctx->pong_sent = 0;
            break;

        case TB_WS_CLOSE:
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                           "tributary: client close %ui",
                           (ngx_uint_t) p->close_code);

            /* echo the client's code, as RFC 6455 5.5.1 suggests */
            ngx_http_tributary_mqtt_queue_close(ctx, p->close_code, NULL);
            ctx->client_done = 1;
            goto done;

        case TB_WS_ERROR:
            ngx_log_error(NGX_LOG_INFO, c->log, 0,
                          "tributary: WebSocket protocol error from client: "
                          "%s, closing with %ui", p->error,
                          (ngx_uint_t) p->close_code);
            ngx_http_tributary_mqtt_queue_close(ctx, p->close_code, p->error);
            ctx->client_done = 1;
            goto done;
        }
    }

done:

    if (in->pos == in->last) {
        in->pos = in->start;
        in->last = in->start;

    } else if (in->last == in->end && in->pos > in->start) {
        len = in->last - in->pos;
        ngx_memmove(in->start, in->pos, len);
        in->pos = in->start;
        in->last = in->start + len;
    }
}


static ngx_int_t
ngx_http_tributary_mqtt_write_broker(ngx_http_tributary_mqtt_ctx_t *ctx)
{
    size_t      sent;
    ngx_int_t   rc;
    ngx_buf_t  *b;

    b = ctx->to_broker;

    if (ctx->upstream == NULL || !ctx->connected || b->pos == b->last
        || !ctx->upstream->write->ready)
    {
        return 0;
    }

    rc = ngx_http_tributary_mqtt_send(ctx->upstream, b->pos, b->last - b->pos,
                                      &sent);

    if (rc == NGX_ERROR) {
        ngx_http_tributary_mqtt_broker_lost(ctx, "sending to");
        return 1;
    }

    if (sent == 0) {
        return 0;
    }

    b->pos += sent;
    ctx->moved = 1;

    if (b->pos == b->last) {
        b->pos = b->start;
        b->last = b->start;
    }

    return 1;
}


static ngx_int_t
ngx_http_tributary_mqtt_read_broker(ngx_http_tributary_mqtt_ctx_t *ctx)
{
    size_t             h;
    ssize_t            n;
    u_char            *payload;
    ngx_buf_t         *b;
    ngx_connection_t  *uc;

    uc = ctx->upstream;
    b = ctx->to_client;

    /* one frame at a time; a pong goes out before the next one */
    if (uc == NULL || !ctx->connected || ctx->broker_done
        || b->pos < b->last || ctx->pong_len || !uc->read->ready)
    {
        return 0;
    }

    payload = b->start + TB_WS_MAX_SERVER_HEADER;

    n = uc->recv(uc, payload, b->end - payload);

    if (n == NGX_AGAIN) {
        return 0;
    }

    if (n == 0) {
        ngx_log_error(NGX_LOG_INFO, ctx->request->connection->log, 0,
                      "tributary: MQTT broker closed the connection");
        ngx_http_tributary_mqtt_close_upstream(ctx);
        ngx_http_tributary_mqtt_broker_failed(ctx,
                                    TB_WS_CLOSE_NORMAL,
                                    "broker closed the connection");
        return 1;
    }

    if (n == NGX_ERROR) {
        ngx_http_tributary_mqtt_broker_lost(ctx, "reading from");
        return 1;
    }

    h = tb_ws_header_size(n, 0);
    b->pos = payload - h;
    b->last = payload + n;
    (void) tb_ws_frame_header(b->pos, TB_WS_OP_BINARY,
                                         1, n, NULL);
    ctx->moved = 1;

    return 1;
}


static ngx_int_t
ngx_http_tributary_mqtt_write_client(ngx_http_tributary_mqtt_ctx_t *ctx)
{
    size_t              sent;
    ngx_int_t           rc, progress;
    ngx_buf_t          *b;
    ngx_connection_t   *c;
    ngx_http_request_t *r;

    r = ctx->request;
    c = r->connection;
    b = ctx->to_client;
    progress = 0;

    if (ctx->client_gone) {
        /* nobody to send to: drop what is queued */
        b->pos = b->last = b->start;
        ctx->pong_len = 0;
        return 0;
    }

    while (c->write->ready) {

        if (r->out) {
            /* the rest of the 101 response */
            rc = ngx_tributary_ws_flush_response(r);
            if (rc == NGX_ERROR) {
                goto failed;
            }
            if (rc == NGX_AGAIN) {
                break;
            }
            continue;
        }

        if (b->pos < b->last) {
            rc = ngx_http_tributary_mqtt_send(c, b->pos, b->last - b->pos,
                                              &sent);
            if (rc == NGX_ERROR) {
                goto failed;
            }
            if (sent == 0) {
                break;
            }

            b->pos += sent;
            ctx->moved = 1;
            progress = 1;

            if (b->pos == b->last) {
                b->pos = b->start;
                b->last = b->start;
            }
            continue;
        }

        if (ctx->pong_len && (ctx->close_len == 0 || ctx->pong_sent)) {
            rc = ngx_http_tributary_mqtt_send_rest(c, ctx->pong, ctx->pong_len,
                                                   &ctx->pong_sent);
            if (rc == NGX_ERROR) {
                goto failed;
            }
            if (rc == NGX_AGAIN) {
                break;
            }

            progress = 1;

            if (ctx->pong_sent == ctx->pong_len) {
                ctx->pong_len = 0;
                ctx->pong_sent = 0;
            }
            continue;
        }

        /* the close frame is the last one: after every data frame */
        if (ctx->close_sent < ctx->close_len && ctx->broker_done) {
            ctx->pong_len = 0;

            rc = ngx_http_tributary_mqtt_send_rest(c, ctx->close,
                                                   ctx->close_len,
                                                   &ctx->close_sent);
            if (rc == NGX_ERROR) {
                goto failed;
            }
            if (rc == NGX_AGAIN) {
                break;
            }

            progress = 1;
            continue;
        }

        break;
    }

    return progress;

failed:

    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                  "tributary: sending to client failed");
    ngx_http_tributary_mqtt_client_gone(ctx, 0);

    return 1;
}


/*
 * Sends what is left of a control frame (the first *done of its len bytes
 * went out already): NGX_OK when some more did, NGX_AGAIN when the socket
 * takes none now, or NGX_ERROR.
 */
static ngx_int_t
ngx_http_tributary_mqtt_send_rest(ngx_connection_t *c, u_char *frame,
    size_t len, size_t *done)
{
    size_t  sent;

    if (ngx_http_tributary_mqtt_send(c, frame + *done, len - *done, &sent)
        == NGX_ERROR)
    {
        return NGX_ERROR;
    }

    if (sent == 0) {
        return NGX_AGAIN;
    }

    *done += sent;

    return NGX_OK;
}


/* NGX_OK with *sent bytes (0: would block), or NGX_ERROR */
static ngx_int_t
ngx_http_tributary_mqtt_send(ngx_connection_t *c, u_char *data, size_t len,
    size_t *sent)
{
    ssize_t  n;

    *sent = 0;

    n = c->send(c, data, len);

    if (n == NGX_ERROR) {
        c->error = 1;
        return NGX_ERROR;
    }

    if (n > 0) {
        *sent = n;
    }

    return NGX_OK;
}


/*
 * Ends the session from our side: no more client input is processed, no more
 * broker output is read; the close frame follows the data frame in flight.
 */
static void
ngx_http_tributary_mqtt_queue_close(ngx_http_tributary_mqtt_ctx_t *ctx,
    ngx_uint_t code, const char *reason)
{
    if (ctx->close_queued) {
        return;
    }

    ctx->close_queued = 1;
    ctx->client_done = 1;
    ctx->broker_done = 1;

    ctx->close_len = tb_ws_close_frame(ctx->close, code, reason,
                                                  reason ? ngx_strlen(reason)
                                                         : 0);
    ctx->close_sent = 0;
}


static void
ngx_http_tributary_mqtt_broker_failed(ngx_http_tributary_mqtt_ctx_t *ctx,
    ngx_uint_t code, const char *reason)
{
    ctx->broker_done = 1;
    ngx_http_tributary_mqtt_queue_close(ctx, code, reason);
}


/* The broker's connection failed while "sending to" or "reading from" it. */
static void
ngx_http_tributary_mqtt_broker_lost(ngx_http_tributary_mqtt_ctx_t *ctx,
    const char *doing)
{
    ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                  "tributary: %s MQTT broker %V failed", doing, ctx->peer.name);
    ngx_http_tributary_mqtt_close_upstream(ctx);
    ngx_http_tributary_mqtt_broker_failed(ctx, TB_WS_CLOSE_INTERNAL_ERROR,
                                          "broker connection lost");
}


/*
 * flush: the client closed its end cleanly (EOF), so what it sent up to then
 * is still parsed and delivered to the broker before the broker side closes.
 */
static void
ngx_http_tributary_mqtt_client_gone(ngx_http_tributary_mqtt_ctx_t *ctx,
    ngx_uint_t flush)
{
    ctx->client_eof = 1;
    ctx->client_gone = 1;
    ctx->broker_done = 1;

    if (!flush) {
        ctx->client_done = 1;
        ngx_http_tributary_mqtt_close_upstream(ctx);
    }
}


static void
ngx_http_tributary_mqtt_close_upstream(ngx_http_tributary_mqtt_ctx_t *ctx)
{
    if (ctx->upstream == NULL) {
        return;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "tributary: close broker connection");

    ngx_close_connection(ctx->upstream);
    ctx->upstream = NULL;
    ctx->peer.connection = NULL;
    ctx->broker_done = 1;
}


static void
ngx_http_tributary_mqtt_cleanup(void *data)
{
    ngx_http_tributary_mqtt_ctx_t  *ctx = data;

    ngx_http_tributary_mqtt_close_upstream(ctx);
}


static void *
ngx_http_tributary_mqtt_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_tributary_mqtt_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_tributary_mqtt_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->addrs = NULL;
     *     conf->naddrs = 0;
     *     conf->url = { 0, NULL };
     */

    conf->connect_timeout = NGX_CONF_UNSET_MSEC;
    conf->idle_timeout = NGX_CONF_UNSET_MSEC;
    conf->send_timeout = NGX_CONF_UNSET_MSEC;
    conf->buffer_size = NGX_CONF_UNSET_SIZE;
    conf->max_frame_size = NGX_CONF_UNSET_SIZE;
    conf->max_message_size = NGX_CONF_UNSET_SIZE;
    conf->allow_origin = NGX_CONF_UNSET_PTR;

    return conf;
}


static char *
ngx_http_tributary_mqtt_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_tributary_mqtt_loc_conf_t  *prev = parent;
    ngx_http_tributary_mqtt_loc_conf_t  *conf = child;

    ngx_conf_merge_msec_value(conf->connect_timeout, prev->connect_timeout,
                              5000);
    ngx_conf_merge_msec_value(conf->idle_timeout, prev->idle_timeout, 300000);
    ngx_conf_merge_msec_value(conf->send_timeout, prev->send_timeout, 60000);
    ngx_conf_merge_size_value(conf->buffer_size, prev->buffer_size,
                              16 * 1024);
    ngx_conf_merge_size_value(conf->max_frame_size, prev->max_frame_size,
                              16 * 1024 * 1024);
    ngx_conf_merge_size_value(conf->max_message_size, prev->max_message_size,
                              64 * 1024 * 1024);
    ngx_conf_merge_ptr_value(conf->allow_origin, prev->allow_origin, NULL);

    if (conf->buffer_size < 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tributary_mqtt_buffer_size\" must be at least 1k");
        return NGX_CONF_ERROR;
    }

    if (conf->max_frame_size == 0 || conf->max_message_size == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tributary_mqtt_max_frame_size\" and "
                           "\"tributary_mqtt_max_message_size\" cannot be 0");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static char *
ngx_http_tributary_mqtt_pass(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tributary_mqtt_loc_conf_t  *mlcf = conf;

    ngx_str_t                 *value;
    ngx_url_t                  u;
    ngx_http_core_loc_conf_t  *clcf;

    if (mlcf->addrs) {
        return "is duplicate";
    }

    value = cf->args->elts;

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = value[1];
    u.default_port = 1883;
    u.no_resolve = 0;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
        if (u.err) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "%s in \"%V\" of \"tributary_mqtt_pass\"",
                               u.err, &u.url);
        }
        return NGX_CONF_ERROR;
    }

    if (u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no address for \"%V\" in \"tributary_mqtt_pass\"",
                           &u.url);
        return NGX_CONF_ERROR;
    }

    if (u.uri.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tributary_mqtt_pass\" takes host:port, not a "
                           "URI: \"%V\"", &u.url);
        return NGX_CONF_ERROR;
    }

    mlcf->addrs = u.addrs;
    mlcf->naddrs = u.naddrs;
    mlcf->url = u.url;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_tributary_mqtt_handler;

    return NGX_CONF_OK;
}
