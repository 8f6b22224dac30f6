/*
 * RFC 6455 server opening handshake for nginx HTTP modules, shared by the
 * Tributary modules that speak WebSocket (MQTT relay, Kafka fan-out).
 *
 * A content handler that takes a WebSocket:
 *
 *     if (ngx_tributary_ws_handshake_check(r, origins, protocols, n, &proto,
 *                                          &rc)
 *         != NGX_OK)
 *     {
 *         return rc;                      refused: the answer is chosen
 *     }
 *
 *     r->main->count++;                   the request lives on
 *     if (ngx_tributary_ws_handshake_accept(r, &proto) != NGX_OK) ...
 *     ...install read/write handlers on r->connection...
 *     return NGX_DONE;
 *
 * After accept the caller owns r->connection: frames are written with
 * c->send() (first finish anything still in r->out, see
 * ngx_tributary_ws_flush_response()) and read with c->recv(), using the
 * codec in tributary/ws.h (shared/ws).
 */

#ifndef NGX_TRIBUTARY_WS_HANDSHAKE_H_INCLUDED_
#define NGX_TRIBUTARY_WS_HANDSHAKE_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* base64(SHA-1(key + GUID)) is always 28 characters */
#define NGX_TRIBUTARY_WS_ACCEPT_LEN         28

#define NGX_TRIBUTARY_WS_UPGRADE_REQUIRED   426


/*
 * Validates the opening handshake: GET, HTTP/1.1, "Upgrade: websocket",
 * "Connection: upgrade", "Sec-WebSocket-Version: 13", a Sec-WebSocket-Key of
 * 16 base64-encoded bytes, no request body, an Origin in the allow-list
 * (origins: array of ngx_str_t, NULL or containing "*" = any; requests
 * without Origin, i.e. not from a browser, are allowed), and a subprotocol:
 * the first one the client offers that is among protocols[0..n-1] is
 * returned in *protocol (empty when the client offers none).
 *
 * Returns NGX_OK, or NGX_DECLINED with *rc set to what the content handler
 * returns to refuse the handshake (the one refusal path of every WebSocket
 * location): 400, 403, 405 or 500 for nginx's error page, or the result of
 * sending "426 Upgrade Required" with "Sec-WebSocket-Version: 13" (RFC 6455
 * 4.4) and "Upgrade: websocket" (a wrong or missing version, or a plain
 * request without Upgrade; nginx has no page for 426).
 */
ngx_int_t ngx_tributary_ws_handshake_check(ngx_http_request_t *r,
    ngx_array_t *origins, const ngx_str_t *protocols, ngx_uint_t n,
    ngx_str_t *protocol, ngx_int_t *rc);

/*
 * Sends "101 Switching Protocols" with Sec-WebSocket-Accept (and
 * Sec-WebSocket-Protocol when protocol is not empty), and flushes it.
 * NGX_OK or NGX_AGAIN (part of the response is still in r->out) on success.
 */
ngx_int_t ngx_tributary_ws_handshake_accept(ngx_http_request_t *r,
    ngx_str_t *protocol);

/*
 * Writes what is left of the 101 response (r->out) before the caller's own
 * frames: NGX_OK when nothing is left, NGX_AGAIN, or NGX_ERROR.
 */
ngx_int_t ngx_tributary_ws_flush_response(ngx_http_request_t *r);

/* Sec-WebSocket-Accept for a Sec-WebSocket-Key; out has 28 bytes of room. */
ngx_int_t ngx_tributary_ws_accept_key(ngx_str_t *key, u_char *out);

/*
 * The first request header of that name (any case), and in *count how many
 * there are; NULL when none.
 */
ngx_table_elt_t *ngx_tributary_ws_header(ngx_http_request_t *r,
    const char *name, ngx_uint_t *count);

/* Adds a response header; the bytes of name and value must outlive it. */
ngx_int_t ngx_tributary_ws_add_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value);

/*
 * Directive handler for an origin allow-list ("*" or origins such as
 * https://app.example.com), storing an ngx_array_t * of ngx_str_t at
 * cmd->offset; use NGX_CONF_UNSET_PTR as the unset value.
 */
char *ngx_tributary_ws_origins_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

#endif /* NGX_TRIBUTARY_WS_HANDSHAKE_H_INCLUDED_ */
