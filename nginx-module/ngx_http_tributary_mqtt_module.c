/*
 * ngx_http_tributary_module: MQTT over WebSocket.
 *
 * "tributary_mqtt_pass host:port[/uri]" terminates the browser's WebSocket
 * (RFC 6455, subprotocol "mqtt") in the location and relays MQTT to a
 * broker, over one of two kinds of broker listener
 * (tributary_mqtt_protocol):
 *
 * websockets (default): the module opens a WebSocket of its own to the
 *     broker's websockets listener and forwards the browser's frames as they
 *     are (still masked): it reads only their headers, in passing, for the
 *     limits and the protocol rules, and answers control frames itself. The
 *     broker's frames go to the browser as they are too; their headers are
 *     followed only to know where a frame of our own (pong, close) may go.
 * mqtt: the broker's plain TCP listener. Payload of client data frames is
 *     unmasked and goes to the broker as a byte stream; broker bytes come
 *     back as binary frames.
 *
 * MQTT packets are not parsed, with one exception: where tributary_jwt is on,
 * the first packet (CONNECT) is rewritten to carry the verified token as its
 * password and the token's identity as its username, so that browser code
 * never holds the token; a CONNECT with credentials of its own is refused
 * with a CONNACK "bad user name or password". Until that CONNECT has gone,
 * the websockets relay unmasks and re-frames the client's bytes too.
 *
 * Each connection has fixed buffers (buffer_size): raw client frames,
 * bytes for the broker (unmasked stream; re-framed), and broker output for
 * the client. A side is not read while the buffer it feeds is full, which
 * is the back-pressure in both directions. Everything runs on the worker's
 * event loop: non-blocking connect, read/write handlers on both connections
 * and timers.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "tributary/ws.h"
#include "ngx_tributary_ws_handshake.h"
#include "ngx_http_tributary_jwt.h"


#define NGX_HTTP_TRIBUTARY_MQTT_WEBSOCKETS  1
#define NGX_HTTP_TRIBUTARY_MQTT_TCP         2

/* a CONNACK frame (MQTT 5: 5 bytes) in front of the close frame */
#define NGX_HTTP_TRIBUTARY_MQTT_CONNACK_MAX  8


typedef struct {
    ngx_addr_t                 *addrs;
    ngx_uint_t                  naddrs;
    ngx_str_t                   url;
    ngx_str_t                   host;           /* Host of the handshake */
    ngx_str_t                   uri;
    ngx_uint_t                  protocol;

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

    /* websockets: the handshake request, then re-framed to_broker bytes */
    ngx_buf_t                           *framed;

    /* websockets, passthrough: client_in bytes before scan are checked */
    u_char                              *scan;
    uint64_t                             frame_left;
    uint64_t                             message_size;

    /* websockets: to_client has a frame boundary at cut (NULL: none) */
    u_char                              *cut;
    uint64_t                             bframe_left;
    size_t                               bhdr_len;
    u_char                               bhdr[TB_WS_MAX_HEADER];

    u_char                               accept[NGX_TRIBUTARY_WS_ACCEPT_LEN];

    ngx_str_t                            token;      /* tributary_jwt */
    ngx_str_t                            identity;

    size_t                               pong_len;
    size_t                               pong_sent;
    size_t                               close_len;
    size_t                               close_sent;
    u_char                               pong[TB_WS_MAX_CONTROL_FRAME];
    u_char                               close[TB_WS_MAX_CONTROL_FRAME
                                           + NGX_HTTP_TRIBUTARY_MQTT_CONNACK_MAX];

    unsigned                             connected:1;
    unsigned                             client_eof:1;     /* not read */
    unsigned                             client_done:1;    /* input ignored */
    unsigned                             client_gone:1;    /* cannot write */
    unsigned                             broker_done:1;    /* not read */
    unsigned                             close_queued:1;
    unsigned                             moved:1;          /* bytes moved */
    unsigned                             websockets:1;
    unsigned                             request_sent:1;
    unsigned                             handshaken:1;
    unsigned                             passthrough:1;
    unsigned                             in_message:1;
    unsigned                             connect_pending:1; /* jwt */
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
static void ngx_http_tributary_mqtt_scan(ngx_http_tributary_mqtt_ctx_t *ctx);
static void ngx_http_tributary_mqtt_control(ngx_http_tributary_mqtt_ctx_t *ctx,
    u_char *frame, size_t len);
static ngx_int_t ngx_http_tributary_mqtt_rewrite_connect(
    ngx_http_tributary_mqtt_ctx_t *ctx);
static void ngx_http_tributary_mqtt_refuse_connect(
    ngx_http_tributary_mqtt_ctx_t *ctx, ngx_uint_t level);
static ngx_int_t ngx_http_tributary_mqtt_ws_request(
    ngx_http_tributary_mqtt_ctx_t *ctx, ngx_str_t *protocol);
static ngx_int_t ngx_http_tributary_mqtt_ws_response(
    ngx_http_tributary_mqtt_ctx_t *ctx);
static void ngx_http_tributary_mqtt_follow_broker(
    ngx_http_tributary_mqtt_ctx_t *ctx, u_char *p, u_char *last);
static ngx_uint_t ngx_http_tributary_mqtt_broker_pending(
    ngx_http_tributary_mqtt_ctx_t *ctx);
static ngx_buf_t *ngx_http_tributary_mqtt_broker_out(
    ngx_http_tributary_mqtt_ctx_t *ctx, size_t *len);
static ngx_int_t ngx_http_tributary_mqtt_read_broker_ws(
    ngx_http_tributary_mqtt_ctx_t *ctx);
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


static ngx_conf_enum_t  ngx_http_tributary_mqtt_listeners[] = {
    { ngx_string("websockets"), NGX_HTTP_TRIBUTARY_MQTT_WEBSOCKETS },
    { ngx_string("mqtt"), NGX_HTTP_TRIBUTARY_MQTT_TCP },
    { ngx_null_string, 0 }
};


static ngx_command_t  ngx_http_tributary_commands[] = {

    { ngx_string("tributary_mqtt_pass"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_tributary_mqtt_pass,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tributary_mqtt_protocol"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tributary_mqtt_loc_conf_t, protocol),
      &ngx_http_tributary_mqtt_listeners },

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
    ngx_str_t                            token, identity;
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

    /* where tributary_jwt is on, its access check has passed already */
    rc = ngx_http_tributary_jwt_credentials(r, &token, &identity);

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc == NGX_ABORT) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "tributary: no valid token for the MQTT CONNECT");
        return NGX_HTTP_FORBIDDEN;
    }

    if (rc == NGX_OK && (token.len > 65535 || identity.len > 65535)) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "tributary: token too long for an MQTT password");
        return NGX_HTTP_FORBIDDEN;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_tributary_mqtt_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->conf = mlcf;
    ctx->websockets = (mlcf->protocol == NGX_HTTP_TRIBUTARY_MQTT_WEBSOCKETS);

    if (rc == NGX_OK) {
        ctx->token = token;
        ctx->identity = identity;
        ctx->connect_pending = 1;
    }

    ctx->client_in = ngx_create_temp_buf(r->pool, mlcf->buffer_size);
    /* the websockets relay without tributary_jwt forwards client_in itself */
    if (ctx->websockets && !ctx->connect_pending) {
        ctx->to_broker = ngx_calloc_buf(r->pool);

    } else {
        ctx->to_broker = ngx_create_temp_buf(r->pool, mlcf->buffer_size);
    }

    /* frames are built in place: room for a header before the payload */
    ctx->to_client = ngx_create_temp_buf(r->pool, mlcf->buffer_size
                                         + TB_WS_MAX_SERVER_HEADER);
    if (ctx->client_in == NULL || ctx->to_broker == NULL
        || ctx->to_client == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ctx->websockets) {
        /* the handshake request; then our frames, if any (tributary_jwt) */
        ctx->framed = ngx_create_temp_buf(r->pool, ctx->connect_pending
                                          ? mlcf->buffer_size + TB_WS_MAX_HEADER
                                          : mlcf->uri.len + mlcf->host.len
                                            + 256);
        if (ctx->framed == NULL
            || ngx_http_tributary_mqtt_ws_request(ctx, &protocol) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ctx->passthrough = !ctx->connect_pending;
        ctx->scan = ctx->client_in->start;
        ctx->cut = ctx->to_client->start;
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

        if (ctx->passthrough) {
            ngx_http_tributary_mqtt_scan(ctx);

            /* what is left is the start of a frame that will not end */
            if (ctx->client_eof && ctx->client_in->pos == ctx->scan) {
                ctx->client_done = 1;
            }

        } else {
            ngx_http_tributary_mqtt_parse(ctx);
        }

        if (ctx->client_eof && ctx->client_in->pos == ctx->client_in->last) {
            ctx->client_done = 1;
        }

        progress |= ngx_http_tributary_mqtt_write_broker(ctx);

        progress |= ctx->websockets
                    ? ngx_http_tributary_mqtt_read_broker_ws(ctx)
                    : ngx_http_tributary_mqtt_read_broker(ctx);
        progress |= ngx_http_tributary_mqtt_write_client(ctx);

        /* the client is done and what it sent has reached the broker */
        if (ctx->upstream && ctx->client_done
            && !ngx_http_tributary_mqtt_broker_pending(ctx))
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

        if (!uc->write->ready && ngx_http_tributary_mqtt_broker_pending(ctx))
        {
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
            if (ctx->connect_pending) {
                ngx_http_tributary_mqtt_rewrite_connect(ctx);

                /* the rewrite moves the stream to a buffer of its own */
                ub = ctx->to_broker;
            }

            if (ctx->websockets && !ctx->connect_pending && !ctx->client_done)
            {
                /* at a frame boundary: from here on frames go as they are */
                ctx->passthrough = 1;
                goto done;
            }

            break;

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

    if (ctx->connect_pending && !ctx->client_done) {
        ngx_http_tributary_mqtt_rewrite_connect(ctx);
    }

    if (in->pos == in->last) {
        in->pos = in->start;
        in->last = in->start;

    } else if (in->last == in->end && in->pos > in->start) {
        len = in->last - in->pos;
        ngx_memmove(in->start, in->pos, len);
        in->pos = in->start;
        in->last = in->start + len;
    }

    ctx->scan = in->pos;
}


/*
 * Passthrough: checks the headers of the client's frames in client_in
 * (RFC 6455 5.2 and the limits) and moves scan over every byte that may go
 * to the broker as it is. Control frames are the module's to answer: once
 * what precedes one has gone, it is taken out of the stream.
 */
static void
ngx_http_tributary_mqtt_scan(ngx_http_tributary_mqtt_ctx_t *ctx)
{
    u_char      *p;
    size_t       avail, hlen, len;
    uint64_t     n;
    ngx_uint_t   op, fin, i;
    ngx_buf_t   *in;
    const char  *error;
    ngx_uint_t   code;

    in = ctx->client_in;
    code = TB_WS_CLOSE_PROTOCOL_ERROR;

    while (!ctx->client_done && ctx->scan < in->last) {

        if (ctx->frame_left) {
            len = ngx_min(ctx->frame_left, (uint64_t) (in->last - ctx->scan));
            ctx->scan += len;
            ctx->frame_left -= len;
            continue;
        }

        p = ctx->scan;
        avail = in->last - p;

        if (avail < 2) {
            break;
        }

        hlen = 2 + ((p[1] & 0x7f) == 126 ? 2 : (p[1] & 0x7f) == 127 ? 8 : 0)
               + ((p[1] & 0x80) ? 4 : 0);

        if (avail < hlen) {
            break;
        }

        fin = p[0] & 0x80;
        op = p[0] & 0x0f;
        n = p[1] & 0x7f;

        if (n == 126) {
            n = ((uint64_t) p[2] << 8) | p[3];

        } else if (n == 127) {
            n = 0;
            for (i = 2; i < 10; i++) {
                n = (n << 8) | p[i];
            }
        }

        if (p[0] & 0x70) {
            error = "reserved bits set";
            goto failed;
        }

        if (!(p[1] & 0x80)) {
            error = "unmasked client frame";
            goto failed;
        }

        if (n >> 63) {
            error = "frame length has its top bit set";
            goto failed;
        }

        if (op & 0x8) {
            if (op > TB_WS_OP_PONG) {
                error = "reserved opcode";
                goto failed;
            }

            if (!fin) {
                error = "fragmented control frame";
                goto failed;
            }

            if (n > TB_WS_MAX_CONTROL) {
                error = "control frame longer than 125";
                goto failed;
            }

            /* the whole frame, after what precedes it has gone */
            if (avail < hlen + n || in->pos < p
                || (op == TB_WS_OP_PING && ctx->pong_sent))
            {
                break;
            }

            ngx_http_tributary_mqtt_control(ctx, p, hlen + n);

            in->pos = p + hlen + n;
            ctx->scan = in->pos;
            continue;
        }

        switch (op) {

        case TB_WS_OP_BINARY:
            if (ctx->in_message) {
                error = "new message inside a fragmented message";
                goto failed;
            }

            ctx->message_size = 0;
            break;

        case TB_WS_OP_CONT:
            if (!ctx->in_message) {
                error = "continuation frame outside a message";
                goto failed;
            }

            break;

        case TB_WS_OP_TEXT:
            if (ctx->in_message) {
                error = "new message inside a fragmented message";
                goto failed;
            }

            code = TB_WS_CLOSE_UNSUPPORTED;
            error = "text messages are not accepted";
            goto failed;

        default:
            error = "reserved opcode";
            goto failed;
        }

        if (n > ctx->conf->max_frame_size) {
            code = TB_WS_CLOSE_TOO_BIG;
            error = "frame too big";
            goto failed;
        }

        if (n > ctx->conf->max_message_size - ctx->message_size) {
            code = TB_WS_CLOSE_TOO_BIG;
            error = "message too big";
            goto failed;
        }

        ctx->message_size += n;
        ctx->in_message = !fin;
        ctx->frame_left = n;
        ctx->scan = p + hlen;
    }

    goto done;

failed:

    ngx_log_error(NGX_LOG_INFO, ctx->request->connection->log, 0,
                  "tributary: WebSocket protocol error from client: %s, "
                  "closing with %ui", error, code);
    ngx_http_tributary_mqtt_queue_close(ctx, code, error);

done:

    if (in->pos == in->last) {
        in->pos = in->start;
        in->last = in->start;
        ctx->scan = in->start;

    } else if (in->last == in->end && in->pos > in->start) {
        len = in->last - in->pos;
        ngx_memmove(in->start, in->pos, len);
        ctx->scan -= in->pos - in->start;
        in->pos = in->start;
        in->last = in->start + len;
    }
}


/* A whole control frame from the client, in passthrough. */
static void
ngx_http_tributary_mqtt_control(ngx_http_tributary_mqtt_ctx_t *ctx,
    u_char *frame, size_t len)
{
    uint8_t            *out;
    tb_ws_event         ev;
    tb_ws_parser        p;
    const uint8_t      *pos;
    ngx_connection_t   *c;

    c = ctx->request->connection;

    tb_ws_parser_init(&p, 1);

    pos = frame;
    out = NULL;

    ev = tb_ws_parse(&p, &pos, frame + len, &out, NULL);

    switch (ev) {

    case TB_WS_PING:
        ctx->pong_len = tb_ws_control_frame(ctx->pong, TB_WS_OP_PONG,
                                            p.control, p.control_len);
        ctx->pong_sent = 0;
        break;

    case TB_WS_CLOSE:
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, c->log, 0,
                       "tributary: client close %ui",
                       (ngx_uint_t) p.close_code);
        ngx_http_tributary_mqtt_queue_close(ctx, p.close_code, NULL);
        break;

    case TB_WS_ERROR:
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "tributary: WebSocket protocol error from client: "
                      "%s, closing with %ui", p.error,
                      (ngx_uint_t) p.close_code);
        ngx_http_tributary_mqtt_queue_close(ctx, p.close_code, p.error);
        break;

    default: /* TB_WS_PONG */
        break;
    }
}


/* MQTT 5: a property length (variable byte integer) and what it covers */
static ngx_int_t
ngx_http_tributary_mqtt_skip_properties(u_char **q, u_char *end)
{
    size_t      len;
    ngx_uint_t  shift;

    len = 0;

    for (shift = 0; shift <= 21; shift += 7) {
        if (*q == end) {
            return NGX_ERROR;
        }

        len |= (size_t) (**q & 0x7f) << shift;

        if (!(*(*q)++ & 0x80)) {
            if ((size_t) (end - *q) < len) {
                return NGX_ERROR;
            }

            *q += len;
            return NGX_OK;
        }
    }

    return NGX_ERROR;
}


#define ngx_http_tributary_mqtt_need(q, end, n)                               \
    if ((size_t) ((end) - (q)) < (size_t) (n)) goto malformed

/*
 * tributary_jwt: the client's first packet, a CONNECT, once whole in
 * to_broker, gets the token's identity as its username and the token as its
 * password (MQTT 3.1, 3.1.1 and 5 put both last, in that order). A CONNECT
 * with a username or password of its own is refused; one the broker would
 * refuse anyway (malformed) closes the connection.
 */
static ngx_int_t
ngx_http_tributary_mqtt_rewrite_connect(ngx_http_tributary_mqtt_ctx_t *ctx)
{
    u_char      *p, *q, *end, *body, *dst;
    size_t       rl, nrl, total, n, flags_at;
    ngx_uint_t   i, shift, level;
    ngx_buf_t   *b, *nb;
    const char  *why;

    b = ctx->to_broker;
    p = b->pos;
    end = b->last;

    if (end - p < 2) {
        return NGX_AGAIN;
    }

    why = "the first MQTT packet is not a CONNECT";

    if (p[0] != 0x10) {
        goto malformed;
    }

    rl = 0;
    shift = 0;

    for (i = 1; /* void */; i++) {
        if (i > 4) {
            goto malformed;
        }

        if (p + i >= end) {
            return NGX_AGAIN;
        }

        rl |= (size_t) (p[i] & 0x7f) << shift;
        shift += 7;

        if (!(p[i] & 0x80)) {
            break;
        }
    }

    body = p + i + 1;
    total = (body - p) + rl;

    if ((size_t) (end - p) < total) {
        if (total > (size_t) (b->end - b->start)) {
            why = "the MQTT CONNECT is larger than tributary_mqtt_buffer_size";
            goto malformed;
        }

        return NGX_AGAIN;
    }

    why = "malformed MQTT CONNECT";
    q = body;
    end = body + rl;

    ngx_http_tributary_mqtt_need(q, end, 2);
    n = (q[0] << 8) | q[1];
    q += 2;
    ngx_http_tributary_mqtt_need(q, end, n + 4);

    if (!(n == 4 && ngx_strncmp(q, "MQTT", 4) == 0)
        && !(n == 6 && ngx_strncmp(q, "MQIsdp", 6) == 0))
    {
        goto malformed;
    }

    q += n;
    level = q[0];
    flags_at = q + 1 - body;

    if (level < 3 || level > 5) {
        goto malformed;
    }

    if (q[1] & 0xc0) {
        ngx_http_tributary_mqtt_refuse_connect(ctx, level);
        return NGX_DECLINED;
    }

    q += 4;

    /* MQTT 5 properties: the broker checks them */
    if (level == 5 && ngx_http_tributary_mqtt_skip_properties(&q, end) != NGX_OK)
    {
        goto malformed;
    }

    /* client identifier */
    ngx_http_tributary_mqtt_need(q, end, 2);
    n = (q[0] << 8) | q[1];
    q += 2;
    ngx_http_tributary_mqtt_need(q, end, n);
    q += n;

    if (body[flags_at] & 0x04) {
        if (level == 5
            && ngx_http_tributary_mqtt_skip_properties(&q, end) != NGX_OK)
        {
            goto malformed;
        }

        /* will topic, will payload */
        for (i = 0; i < 2; i++) {
            ngx_http_tributary_mqtt_need(q, end, 2);
            n = (q[0] << 8) | q[1];
            q += 2;
            ngx_http_tributary_mqtt_need(q, end, n);
            q += n;
        }
    }

    if (q != end) {
        goto malformed;
    }

    rl = end - body;
    nrl = rl + 4 + ctx->identity.len + ctx->token.len;

    n = 5 + nrl + (b->last - end);
    nb = ngx_create_temp_buf(ctx->request->pool,
                             ngx_max(n, ctx->conf->buffer_size));
    if (nb == NULL) {
        why = "out of memory";
        goto malformed;
    }

    dst = nb->last;
    *dst++ = 0x10;

    for (n = nrl; n >= 0x80; n >>= 7) {
        *dst++ = (u_char) (n | 0x80);
    }
    *dst++ = (u_char) n;

    ngx_memcpy(dst, body, rl);
    dst[flags_at] |= 0xc0;
    dst += rl;

    *dst++ = (u_char) (ctx->identity.len >> 8);
    *dst++ = (u_char) ctx->identity.len;
    dst = ngx_cpymem(dst, ctx->identity.data, ctx->identity.len);
    *dst++ = (u_char) (ctx->token.len >> 8);
    *dst++ = (u_char) ctx->token.len;
    dst = ngx_cpymem(dst, ctx->token.data, ctx->token.len);

    dst = ngx_cpymem(dst, end, b->last - end);
    nb->last = dst;

    ctx->to_broker = nb;
    ctx->connect_pending = 0;

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ctx->request->connection->log, 0,
                   "tributary: MQTT CONNECT as \"%V\"", &ctx->identity);

    return NGX_OK;

malformed:

    ngx_log_error(NGX_LOG_INFO, ctx->request->connection->log, 0,
                  "tributary: %s, closing", why);
    ngx_http_tributary_mqtt_queue_close(ctx, TB_WS_CLOSE_POLICY,
                                        "expected an MQTT CONNECT");
    ngx_http_tributary_mqtt_close_upstream(ctx);

    return NGX_ERROR;
}


/*
 * The client brought credentials of its own where the module supplies
 * them: CONNACK "bad user name or password" (MQTT 3.1.1 3.2.2.3: 0x04;
 * MQTT 5 3.2.2.2: 0x86), then, as both require, the connection is closed
 * (close 1008); the broker never sees the CONNECT.
 */
static void
ngx_http_tributary_mqtt_refuse_connect(ngx_http_tributary_mqtt_ctx_t *ctx,
    ngx_uint_t level)
{
    size_t   h, n;
    u_char   connack[5];

    ngx_log_error(NGX_LOG_INFO, ctx->request->connection->log, 0,
                  "tributary: MQTT CONNECT with a username or password "
                  "refused: tributary_jwt supplies them");

    if (ctx->close_queued) {
        return;
    }

    connack[0] = 0x20;
    connack[2] = 0;

    if (level == 5) {
        connack[1] = 3;
        connack[3] = 0x86;
        connack[4] = 0;
        n = 5;

    } else {
        connack[1] = 2;
        connack[3] = 0x04;
        n = 4;
    }

    ngx_http_tributary_mqtt_queue_close(ctx, TB_WS_CLOSE_POLICY,
                                        "bad user name or password");
    ngx_http_tributary_mqtt_close_upstream(ctx);

    h = tb_ws_header_size(n, 0);
    ngx_memmove(ctx->close + h + n, ctx->close, ctx->close_len);
    (void) tb_ws_frame_header(ctx->close, TB_WS_OP_BINARY, 1, n, NULL);
    ngx_memcpy(ctx->close + h, connack, n);
    ctx->close_len += h + n;
}


static ngx_int_t
ngx_http_tributary_mqtt_write_broker(ngx_http_tributary_mqtt_ctx_t *ctx)
{
    size_t      len, sent;
    ngx_int_t   rc;
    ngx_buf_t  *b;

    if (ctx->upstream == NULL || !ctx->connected
        || !ctx->upstream->write->ready)
    {
        return 0;
    }

    b = ngx_http_tributary_mqtt_broker_out(ctx, &len);
    if (b == NULL) {
        return 0;
    }

    rc = ngx_http_tributary_mqtt_send(ctx->upstream, b->pos, len, &sent);

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

        if (b == ctx->client_in) {
            /* room to read again at once: the read event is edge-triggered */
            ctx->scan = b->start;

        } else if (b == ctx->framed && !ctx->request_sent) {
            ctx->request_sent = 1;
        }
    }

    return 1;
}


/* bytes for the broker that it will get (a pending CONNECT is not sent) */
static ngx_uint_t
ngx_http_tributary_mqtt_broker_pending(ngx_http_tributary_mqtt_ctx_t *ctx)
{
    if (ctx->to_broker->pos < ctx->to_broker->last && !ctx->connect_pending) {
        return 1;
    }

    if (!ctx->websockets) {
        return 0;
    }

    return ctx->framed->pos < ctx->framed->last
           || (ctx->passthrough && ctx->client_in->pos < ctx->scan);
}


/*
 * What goes to the broker next: len bytes at the returned buffer's pos, or
 * NULL when nothing can go now. With websockets: the handshake request,
 * then (once the broker has answered) frames built from to_broker, then
 * the client's own frames up to what has been checked.
 */
static ngx_buf_t *
ngx_http_tributary_mqtt_broker_out(ngx_http_tributary_mqtt_ctx_t *ctx,
    size_t *len)
{
    size_t      n;
    uint32_t    key;
    ngx_buf_t  *b, *fb;

    b = ctx->to_broker;

    if (!ctx->websockets) {
        *len = b->last - b->pos;
        return (*len && !ctx->connect_pending) ? b : NULL;
    }

    fb = ctx->framed;

    if (!ctx->request_sent) {
        *len = fb->last - fb->pos;
        return fb;
    }

    if (!ctx->handshaken) {
        return NULL;
    }

    if (fb->pos == fb->last && b->pos < b->last && !ctx->connect_pending) {
        /* the unmasked stream so far, in a frame of our own */
        n = ngx_min((size_t) (b->last - b->pos),
                    (size_t) (fb->end - fb->start) - TB_WS_MAX_HEADER);
        key = (uint32_t) ngx_random();

        fb->pos = fb->start;
        fb->last = fb->start + tb_ws_frame_header(fb->start, TB_WS_OP_BINARY,
                                                  1, n, (u_char *) &key);
        tb_ws_mask_copy(fb->last, b->pos, n, (u_char *) &key, 0);
        fb->last += n;

        b->pos += n;
        if (b->pos == b->last) {
            b->pos = b->start;
            b->last = b->start;
        }
    }

    if (fb->pos < fb->last) {
        *len = fb->last - fb->pos;
        return fb;
    }

    if (ctx->passthrough && ctx->client_in->pos < ctx->scan) {
        *len = ctx->scan - ctx->client_in->pos;
        return ctx->client_in;
    }

    return NULL;
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


/*
 * Data frames, then a pong, then the close frame, which is the last one.
 * With websockets the broker's frames go out as they are and a frame of our
 * own waits for a boundary between two of them (cut); to_client of the TCP
 * relay holds one whole frame. A close when the broker's last frame will not
 * end (the broker is gone or no longer read) cannot be a frame: the
 * connection just closes.
 */
static ngx_int_t
ngx_http_tributary_mqtt_write_client(ngx_http_tributary_mqtt_ctx_t *ctx)
{
    size_t               sent;
    u_char              *limit;
    ngx_int_t            rc, progress;
    ngx_uint_t           control, at_cut;
    ngx_buf_t           *b;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    r = ctx->request;
    c = r->connection;
    b = ctx->to_client;
    progress = 0;

    if (ctx->client_gone) {
        /* nobody to send to: drop what is queued */
        b->pos = b->last = b->start;
        ctx->cut = NULL;
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

        control = ctx->pong_len
                  || (ctx->close_sent < ctx->close_len && ctx->broker_done);

        /* with websockets, to_client holds the broker's 101 until it is in */
        limit = (ctx->websockets && !ctx->handshaken) ? b->pos : b->last;

        /* up to the next boundary, or on towards one */
        if (ctx->websockets && control && ctx->pong_sent == 0
            && ctx->close_sent == 0)
        {
            if (ctx->cut && ctx->cut > b->pos) {
                limit = ctx->cut;

            } else if (ctx->cut == b->pos) {
                limit = b->pos;
            }
        }

        if (ctx->pong_sent == 0 && ctx->close_sent == 0 && b->pos < limit) {
            rc = ngx_http_tributary_mqtt_send(c, b->pos, limit - b->pos,
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
                ctx->cut = (ctx->bframe_left == 0 && ctx->bhdr_len == 0)
                           ? b->start : NULL;
            }
            continue;
        }

        at_cut = ctx->websockets ? (ctx->cut == b->pos) : (b->pos == b->last);

        if (ctx->pong_len
            && (ctx->pong_sent || (at_cut && ctx->close_len == 0)))
        {
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

        if (ctx->close_sent < ctx->close_len && ctx->broker_done) {

            if (ctx->close_sent == 0) {
                if (!at_cut && ctx->handshaken) {
                    ngx_log_error(NGX_LOG_INFO, c->log, 0,
                                  "tributary: closing in the middle of a "
                                  "broker frame, without a close frame");
                    ctx->close_sent = ctx->close_len;
                    b->pos = b->last = b->start;
                    ctx->cut = NULL;
                    progress = 1;
                    break;
                }

                /* what follows the last whole frame will not be whole */
                b->pos = b->last = b->start;
                ctx->cut = b->start;
                ctx->pong_len = 0;
            }

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
 * websockets: the opening handshake the module sends the broker, in framed
 * (sent before anything else), with the subprotocol the client chose
 * ("mqtt" when it named none: Mosquitto's listener needs one).
 */
static ngx_int_t
ngx_http_tributary_mqtt_ws_request(ngx_http_tributary_mqtt_ctx_t *ctx,
    ngx_str_t *protocol)
{
    u_char      raw[16], key[24];
    ngx_str_t   src, dst, proto;
    ngx_buf_t  *b;
    ngx_uint_t  i;

    for (i = 0; i < 16; i++) {
        raw[i] = (u_char) ngx_random();
    }

    src.data = raw;
    src.len = 16;
    dst.data = key;
    ngx_encode_base64(&dst, &src);

    if (ngx_tributary_ws_accept_key(&dst, ctx->accept) != NGX_OK) {
        return NGX_ERROR;
    }

    if (protocol->len) {
        proto = *protocol;

    } else {
        ngx_str_set(&proto, "mqtt");
    }

    b = ctx->framed;

    /* the merge made sure that it fits */
    b->last = ngx_slprintf(b->last, b->end, "GET %V HTTP/1.1\r\n"
                          "Host: %V\r\n"
                          "Upgrade: websocket\r\n"
                          "Connection: Upgrade\r\n"
                          "Sec-WebSocket-Key: %V\r\n"
                          "Sec-WebSocket-Version: 13\r\n"
                          "Sec-WebSocket-Protocol: %V\r\n\r\n",
                          &ctx->conf->uri, &ctx->conf->host, &dst, &proto);

    return NGX_OK;
}


/*
 * websockets: the broker's answer to the handshake, at to_client's pos.
 * NGX_OK when it accepted (pos moves past the header), NGX_AGAIN, or
 * NGX_ERROR (logged).
 */
static ngx_int_t
ngx_http_tributary_mqtt_ws_response(ngx_http_tributary_mqtt_ctx_t *ctx)
{
    u_char      *end, *p, *eol;
    ngx_buf_t   *b;
    const char  *why;

    b = ctx->to_client;

    end = ngx_strlcasestrn(b->pos, b->last, (u_char *) "\r\n\r\n", 4 - 1);

    if (end == NULL) {
        if (b->last < b->end) {
            return NGX_AGAIN;
        }

        why = "a response header too long";
        end = b->last;
        goto failed;
    }

    why = "a response other than 101";

    if (end - b->pos < 12 || ngx_strncmp(b->pos, "HTTP/1.1 101", 12) != 0) {
        goto failed;
    }

    why = "a wrong Sec-WebSocket-Accept";

    p = ngx_strlcasestrn(b->pos, end, (u_char *) "\nsec-websocket-accept:",
                         sizeof("\nsec-websocket-accept:") - 1 - 1);
    if (p == NULL) {
        goto failed;
    }

    p += sizeof("\nsec-websocket-accept:") - 1;

    while (p < end && (*p == ' ' || *p == '\t')) {
        p++;
    }

    if (end - p < NGX_TRIBUTARY_WS_ACCEPT_LEN
        || ngx_strncmp(p, ctx->accept, NGX_TRIBUTARY_WS_ACCEPT_LEN) != 0)
    {
        goto failed;
    }

    b->pos = end + 4;
    ctx->cut = b->pos;
    ctx->handshaken = 1;

    return NGX_OK;

failed:

    eol = ngx_strlchr(b->pos, end, '\r');
    if (eol == NULL) {
        eol = end;
    }

    ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                  "tributary: MQTT broker %V did not accept the WebSocket: "
                  "%s (\"%*s\"); is it a websockets listener "
                  "(tributary_mqtt_protocol)?", ctx->peer.name, why,
                  ngx_min(eol - b->pos, 80), b->pos);

    return NGX_ERROR;
}


/*
 * websockets: follows the broker's frame headers over the bytes it just
 * sent, [p, last) of to_client, so that cut always marks the last frame
 * boundary there.
 */
static void
ngx_http_tributary_mqtt_follow_broker(ngx_http_tributary_mqtt_ctx_t *ctx,
    u_char *p, u_char *last)
{
    size_t      need, n;
    uint64_t    len;
    ngx_uint_t  i;

    while (p < last) {

        if (ctx->bframe_left) {
            n = ngx_min(ctx->bframe_left, (uint64_t) (last - p));
            p += n;
            ctx->bframe_left -= n;

            if (ctx->bframe_left == 0) {
                ctx->cut = p;
            }

            continue;
        }

        ctx->bhdr[ctx->bhdr_len++] = *p++;

        if (ctx->bhdr_len < 2) {
            continue;
        }

        len = ctx->bhdr[1] & 0x7f;
        need = 2 + (len == 126 ? 2 : len == 127 ? 8 : 0)
               + ((ctx->bhdr[1] & 0x80) ? 4 : 0);

        if (ctx->bhdr_len < need) {
            continue;
        }

        if (len == 126) {
            len = ((uint64_t) ctx->bhdr[2] << 8) | ctx->bhdr[3];

        } else if (len == 127) {
            len = 0;
            for (i = 2; i < 10; i++) {
                len = (len << 8) | ctx->bhdr[i];
            }
        }

        ctx->bhdr_len = 0;
        ctx->bframe_left = len;

        if (len == 0) {
            ctx->cut = p;
        }
    }
}


static ngx_int_t
ngx_http_tributary_mqtt_read_broker_ws(ngx_http_tributary_mqtt_ctx_t *ctx)
{
    u_char            *last;
    ssize_t            n;
    ngx_buf_t         *b;
    ngx_connection_t  *uc;

    uc = ctx->upstream;
    b = ctx->to_client;

    /* the handshake's answer is read even after the client is done */
    if (uc == NULL || !ctx->connected || !ctx->request_sent
        || (ctx->broker_done && ctx->handshaken) || !uc->read->ready)
    {
        return 0;
    }

    if (b->pos == b->last) {
        b->pos = b->start;
        b->last = b->start;
        ctx->cut = (ctx->bframe_left == 0 && ctx->bhdr_len == 0)
                   ? b->start : NULL;
    }

    if (b->last == b->end) {
        return 0;
    }

    n = uc->recv(uc, b->last, b->end - b->last);

    if (n == NGX_AGAIN) {
        return 0;
    }

    if (n == 0) {
        if (ctx->handshaken) {
            ngx_log_error(NGX_LOG_INFO, ctx->request->connection->log, 0,
                          "tributary: MQTT broker closed the connection");

        } else {
            ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                          "tributary: MQTT broker %V closed the connection "
                          "during the WebSocket handshake; is it a "
                          "websockets listener (tributary_mqtt_protocol)?",
                          ctx->peer.name);
        }

        ngx_http_tributary_mqtt_close_upstream(ctx);
        ngx_http_tributary_mqtt_broker_failed(ctx,
                                    ctx->handshaken ? TB_WS_CLOSE_NORMAL
                                                  : TB_WS_CLOSE_INTERNAL_ERROR,
                                    ctx->handshaken
                                    ? "broker closed the connection"
                                    : "broker handshake failed");
        return 1;
    }

    if (n == NGX_ERROR) {
        ngx_http_tributary_mqtt_broker_lost(ctx, "reading from");
        return 1;
    }

    last = b->last;
    b->last += n;
    ctx->moved = 1;

    if (!ctx->handshaken) {
        switch (ngx_http_tributary_mqtt_ws_response(ctx)) {

        case NGX_AGAIN:
            return 1;

        case NGX_ERROR:
            ngx_http_tributary_mqtt_close_upstream(ctx);
            ngx_http_tributary_mqtt_broker_failed(ctx,
                                    TB_WS_CLOSE_INTERNAL_ERROR,
                                    "broker handshake failed");
            return 1;
        }

        last = b->pos;

        if (ctx->broker_done) {
            b->pos = b->last;
            return 1;
        }
    }

    ngx_http_tributary_mqtt_follow_broker(ctx, last, b->last);

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
     *     conf->host = { 0, NULL };
     *     conf->uri = { 0, NULL };
     */

    conf->connect_timeout = NGX_CONF_UNSET_MSEC;
    conf->idle_timeout = NGX_CONF_UNSET_MSEC;
    conf->send_timeout = NGX_CONF_UNSET_MSEC;
    conf->buffer_size = NGX_CONF_UNSET_SIZE;
    conf->max_frame_size = NGX_CONF_UNSET_SIZE;
    conf->max_message_size = NGX_CONF_UNSET_SIZE;
    conf->allow_origin = NGX_CONF_UNSET_PTR;
    conf->protocol = NGX_CONF_UNSET_UINT;

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
    ngx_conf_merge_uint_value(conf->protocol, prev->protocol,
                              NGX_HTTP_TRIBUTARY_MQTT_WEBSOCKETS);

    if (conf->addrs && conf->protocol == NGX_HTTP_TRIBUTARY_MQTT_TCP
        && conf->uri.len)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tributary_mqtt_pass\" takes host:port, not a "
                           "URI, with \"tributary_mqtt_protocol mqtt\": "
                           "\"%V\"", &conf->url);
        return NGX_CONF_ERROR;
    }

    if (conf->uri.len == 0) {
        ngx_str_set(&conf->uri, "/mqtt");
    }

    if (conf->buffer_size < 1024) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tributary_mqtt_buffer_size\" must be at least 1k");
        return NGX_CONF_ERROR;
    }

    /* the handshake request to the broker fits in one buffer */
    if (conf->addrs && conf->uri.len + conf->host.len + 256 > conf->buffer_size)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tributary_mqtt_pass\" address \"%V\" is too "
                           "long", &conf->url);
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

    mlcf->addrs = u.addrs;
    mlcf->naddrs = u.naddrs;
    mlcf->url = u.url;
    mlcf->uri = u.uri;
    mlcf->host.data = u.url.data;
    mlcf->host.len = u.url.len - u.uri.len;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_tributary_mqtt_handler;

    return NGX_CONF_OK;
}
