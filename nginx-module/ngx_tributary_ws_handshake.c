/*
 * RFC 6455 opening handshake (server side); see ngx_tributary_ws_handshake.h.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <openssl/evp.h>

#include "ngx_tributary_ws_handshake.h"


#define NGX_TRIBUTARY_WS_GUID  "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


typedef ngx_int_t (*ngx_tributary_ws_token_pt)(ngx_str_t *token, void *data);


static ngx_int_t ngx_tributary_ws_each_token(ngx_http_request_t *r,
    const char *name, ngx_tributary_ws_token_pt handler, void *data);
static ngx_int_t ngx_tributary_ws_has_token(ngx_http_request_t *r,
    const char *name, const char *token);
static ngx_int_t ngx_tributary_ws_origin_allowed(ngx_http_request_t *r,
    ngx_array_t *origins);
static ngx_int_t ngx_tributary_ws_validate(ngx_http_request_t *r,
    ngx_array_t *origins, const ngx_str_t *protocols, ngx_uint_t n,
    ngx_str_t *protocol);
static ngx_int_t ngx_tributary_ws_reject(ngx_http_request_t *r,
    ngx_int_t status);


typedef struct {
    const char        *token;
    ngx_uint_t         found;
} ngx_tributary_ws_find_t;


typedef struct {
    const ngx_str_t   *protocols;
    ngx_uint_t         n;
    ngx_uint_t         offered;
    ngx_str_t         *selected;
} ngx_tributary_ws_select_t;


static ngx_int_t
ngx_tributary_ws_find_token(ngx_str_t *token, void *data)
{
    ngx_tributary_ws_find_t  *f = data;

    if (token->len == ngx_strlen(f->token)
        && ngx_strncasecmp(token->data, (u_char *) f->token, token->len) == 0)
    {
        f->found = 1;
        return NGX_DONE;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_tributary_ws_select_token(ngx_str_t *token, void *data)
{
    ngx_uint_t                  i;
    ngx_tributary_ws_select_t  *s = data;

    s->offered = 1;

    /* subprotocol names are case-sensitive tokens */
    for (i = 0; i < s->n; i++) {
        if (token->len == s->protocols[i].len
            && ngx_strncmp(token->data, s->protocols[i].data, token->len) == 0)
        {
            *s->selected = s->protocols[i];
            return NGX_DONE;
        }
    }

    return NGX_OK;
}


/*
 * The only way in for a content handler: a refused handshake is answered
 * here, so that every WebSocket location refuses the same way.
 */
ngx_int_t
ngx_tributary_ws_handshake_check(ngx_http_request_t *r, ngx_array_t *origins,
    const ngx_str_t *protocols, ngx_uint_t n, ngx_str_t *protocol,
    ngx_int_t *rc)
{
    ngx_int_t  status;

    status = ngx_tributary_ws_validate(r, origins, protocols, n, protocol);
    if (status == NGX_OK) {
        return NGX_OK;
    }

    *rc = ngx_tributary_ws_reject(r, status);

    return NGX_DECLINED;
}


static ngx_int_t
ngx_tributary_ws_validate(ngx_http_request_t *r, ngx_array_t *origins,
    const ngx_str_t *protocols, ngx_uint_t n, ngx_str_t *protocol)
{
    u_char                     buf[32];
    ngx_str_t                  decoded;
    ngx_uint_t                 count;
    ngx_table_elt_t           *h;
    ngx_tributary_ws_select_t  sel;

    ngx_str_null(protocol);

    if (r != r->main) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->method != NGX_HTTP_GET) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    if (!ngx_tributary_ws_has_token(r, "Upgrade", "websocket")
        || !ngx_tributary_ws_has_token(r, "Connection", "upgrade"))
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "tributary: not a WebSocket upgrade request");
        return NGX_TRIBUTARY_WS_UPGRADE_REQUIRED;
    }

    /* HTTP/1.0 cannot upgrade; nginx 1.22 has no RFC 8441 for HTTP/2 */
    if (r->http_version != NGX_HTTP_VERSION_11) {
        return NGX_HTTP_BAD_REQUEST;
    }

    h = ngx_tributary_ws_header(r, "Sec-WebSocket-Version", &count);
    if (h == NULL || count != 1 || h->value.len != 2
        || ngx_strncmp(h->value.data, "13", 2) != 0)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "tributary: unsupported WebSocket version \"%V\"",
                      h ? &h->value : &r->uri);
        return NGX_TRIBUTARY_WS_UPGRADE_REQUIRED;
    }

    h = ngx_tributary_ws_header(r, "Sec-WebSocket-Key", &count);
    if (h == NULL || count != 1 || h->value.len != 24) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "tributary: missing or invalid Sec-WebSocket-Key");
        return NGX_HTTP_BAD_REQUEST;
    }

    decoded.data = buf;
    if (ngx_decode_base64(&decoded, &h->value) != NGX_OK || decoded.len != 16)
    {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "tributary: Sec-WebSocket-Key is not 16 base64 bytes");
        return NGX_HTTP_BAD_REQUEST;
    }

    if (r->headers_in.content_length_n > 0 || r->headers_in.chunked) {
        return NGX_HTTP_BAD_REQUEST;
    }

    if (ngx_tributary_ws_origin_allowed(r, origins) != NGX_OK) {
        return NGX_HTTP_FORBIDDEN;
    }

    sel.protocols = protocols;
    sel.n = n;
    sel.offered = 0;
    sel.selected = protocol;

    if (ngx_tributary_ws_each_token(r, "Sec-WebSocket-Protocol",
                                    ngx_tributary_ws_select_token, &sel)
        == NGX_ERROR)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (sel.offered && protocol->len == 0) {
        /* answering without one would make browsers fail anyway */
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "tributary: no supported WebSocket subprotocol offered");
        return NGX_HTTP_BAD_REQUEST;
    }

    return NGX_OK;
}


ngx_int_t
ngx_tributary_ws_handshake_accept(ngx_http_request_t *r, ngx_str_t *protocol)
{
    u_char           *accept;
    ngx_int_t         rc;
    ngx_str_t         value;
    ngx_uint_t        count;
    ngx_table_elt_t  *key;

    key = ngx_tributary_ws_header(r, "Sec-WebSocket-Key", &count);
    if (key == NULL) {
        return NGX_ERROR;
    }

    accept = ngx_pnalloc(r->pool, NGX_TRIBUTARY_WS_ACCEPT_LEN);
    if (accept == NULL
        || ngx_tributary_ws_accept_key(&key->value, accept) != NGX_OK)
    {
        return NGX_ERROR;
    }

    r->headers_out.status = NGX_HTTP_SWITCHING_PROTOCOLS;
    ngx_str_set(&r->headers_out.status_line, "101 Switching Protocols");
    r->headers_out.content_length_n = -1;
    r->keepalive = 0;

    ngx_str_set(&value, "websocket");
    if (ngx_tributary_ws_add_header(r, "Upgrade", &value) != NGX_OK) {
        return NGX_ERROR;
    }

    value.data = accept;
    value.len = NGX_TRIBUTARY_WS_ACCEPT_LEN;
    if (ngx_tributary_ws_add_header(r, "Sec-WebSocket-Accept", &value)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (protocol->len
        && ngx_tributary_ws_add_header(r, "Sec-WebSocket-Protocol", protocol)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK) {
        return NGX_ERROR;
    }

    /* the write filter holds back small output unless told to flush */
    rc = ngx_http_send_special(r, NGX_HTTP_FLUSH);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    return r->out ? NGX_AGAIN : NGX_OK;
}


ngx_int_t
ngx_tributary_ws_flush_response(ngx_http_request_t *r)
{
    if (r->out == NULL) {
        return NGX_OK;
    }

    if (ngx_http_output_filter(r, NULL) == NGX_ERROR) {
        return NGX_ERROR;
    }

    return r->out ? NGX_AGAIN : NGX_OK;
}


ngx_int_t
ngx_tributary_ws_accept_key(ngx_str_t *key, u_char *out)
{
    u_char        digest[EVP_MAX_MD_SIZE];
    ngx_str_t     src, dst;
    unsigned int  len;
    EVP_MD_CTX   *md;

    md = EVP_MD_CTX_new();
    if (md == NULL) {
        return NGX_ERROR;
    }

    if (!EVP_DigestInit_ex(md, EVP_sha1(), NULL)
        || !EVP_DigestUpdate(md, key->data, key->len)
        || !EVP_DigestUpdate(md, NGX_TRIBUTARY_WS_GUID,
                             sizeof(NGX_TRIBUTARY_WS_GUID) - 1)
        || !EVP_DigestFinal_ex(md, digest, &len))
    {
        EVP_MD_CTX_free(md);
        return NGX_ERROR;
    }

    EVP_MD_CTX_free(md);

    src.data = digest;
    src.len = len;
    dst.data = out;

    ngx_encode_base64(&dst, &src);

    return dst.len == NGX_TRIBUTARY_WS_ACCEPT_LEN ? NGX_OK : NGX_ERROR;
}


char *
ngx_tributary_ws_origins_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t     *value, *o;
    ngx_uint_t     i;
    ngx_array_t  **a;

    a = (ngx_array_t **) (p + cmd->offset);

    if (*a != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    *a = ngx_array_create(cf->pool, cf->args->nelts - 1, sizeof(ngx_str_t));
    if (*a == NULL) {
        return NGX_CONF_ERROR;
    }

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (!(value[i].len == 1 && value[i].data[0] == '*')
            && !(value[i].len == 4 && ngx_strncmp(value[i].data, "null", 4)
                                      == 0)
            && ngx_strlcasestrn(value[i].data, value[i].data + value[i].len,
                                (u_char *) "://", 3 - 1) == NULL)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid origin \"%V\": expected \"*\" or "
                               "scheme://host[:port]", &value[i]);
            return NGX_CONF_ERROR;
        }

        if (value[i].data[value[i].len - 1] == '/') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid origin \"%V\": an origin has no path",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        o = ngx_array_push(*a);
        if (o == NULL) {
            return NGX_CONF_ERROR;
        }

        *o = value[i];
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_tributary_ws_origin_allowed(ngx_http_request_t *r, ngx_array_t *origins)
{
    ngx_str_t        *o;
    ngx_uint_t        i, count;
    ngx_table_elt_t  *h;

    if (origins == NULL || origins == NGX_CONF_UNSET_PTR) {
        return NGX_OK;
    }

    h = ngx_tributary_ws_header(r, "Origin", &count);
    if (h == NULL) {
        /* not a browser: the allow-list guards against other sites' pages */
        return NGX_OK;
    }

    o = origins->elts;

    for (i = 0; i < origins->nelts; i++) {
        if (o[i].len == 1 && o[i].data[0] == '*') {
            return NGX_OK;
        }

        if (count == 1 && o[i].len == h->value.len
            && ngx_strncasecmp(o[i].data, h->value.data, o[i].len) == 0)
        {
            return NGX_OK;
        }
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "tributary: WebSocket origin \"%V\" is not allowed",
                  &h->value);

    return NGX_DECLINED;
}


/*
 * nginx's own error page for status, except for 426 Upgrade Required (no
 * page in nginx), sent here with the reason phrase, "Sec-WebSocket-Version:
 * 13" (RFC 6455 4.4) and "Upgrade: websocket".
 */
static ngx_int_t
ngx_tributary_ws_reject(ngx_http_request_t *r, ngx_int_t status)
{
    ngx_int_t  rc;
    ngx_str_t  value;

    if (status != NGX_TRIBUTARY_WS_UPGRADE_REQUIRED) {
        return status;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    r->headers_out.status = 426;
    ngx_str_set(&r->headers_out.status_line, "426 Upgrade Required");
    r->headers_out.content_length_n = 0;
    r->header_only = 1;

    ngx_str_set(&value, "13");
    if (ngx_tributary_ws_add_header(r, "Sec-WebSocket-Version", &value)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->http_version == NGX_HTTP_VERSION_11) {
        ngx_str_set(&value, "websocket");
        if (ngx_tributary_ws_add_header(r, "Upgrade", &value) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    return ngx_http_send_header(r);
}


ngx_table_elt_t *
ngx_tributary_ws_header(ngx_http_request_t *r, const char *name,
    ngx_uint_t *count)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *found;

    len = ngx_strlen(name);
    found = NULL;
    *count = 0;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            if (found == NULL) {
                found = &h[i];
            }
            (*count)++;
        }
    }

    return found;
}


/*
 * Calls handler for every comma-separated token of every header line named
 * name, until the handler returns something other than NGX_OK.
 */
static ngx_int_t
ngx_tributary_ws_each_token(ngx_http_request_t *r, const char *name,
    ngx_tributary_ws_token_pt handler, void *data)
{
    u_char           *p, *end, *start;
    size_t            len;
    ngx_int_t         rc;
    ngx_str_t         token;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    len = ngx_strlen(name);
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len != len
            || ngx_strncasecmp(h[i].key.data, (u_char *) name, len) != 0)
        {
            continue;
        }

        p = h[i].value.data;
        end = p + h[i].value.len;

        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ',')) {
                p++;
            }

            start = p;

            while (p < end && *p != ',') {
                p++;
            }

            token.data = start;
            token.len = p - start;

            while (token.len
                   && (token.data[token.len - 1] == ' '
                       || token.data[token.len - 1] == '\t'))
            {
                token.len--;
            }

            if (token.len == 0) {
                continue;
            }

            rc = handler(&token, data);
            if (rc != NGX_OK) {
                return rc;
            }
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_tributary_ws_has_token(ngx_http_request_t *r, const char *name,
    const char *token)
{
    ngx_tributary_ws_find_t  f;

    f.token = token;
    f.found = 0;

    (void) ngx_tributary_ws_each_token(r, name, ngx_tributary_ws_find_token,
                                       &f);

    return f.found;
}


ngx_int_t
ngx_tributary_ws_add_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;

    return NGX_OK;
}
