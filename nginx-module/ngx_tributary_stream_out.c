/*
 * ngx_http_tributary_stream_module: chunks (refcounted bytes shared by
 * every subscriber they go to), each subscriber's output queue, and
 * sending it: SSE through nginx's output filters, WebSocket frames straight
 * to the connection once the handshake is out.
 */

#include "ngx_tributary_stream.h"


static ngx_int_t ngx_tributary_stream_send(ngx_tributary_sub_t *sub);


/* chunks ------------------------------------------------------------------ */

ngx_tributary_chunk_t *
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


void
ngx_tributary_chunk_release(ngx_tributary_chunk_t *ch)
{
    if (ch && --ch->refs == 0) {
        ngx_free(ch);
    }
}


/* output queue ------------------------------------------------------------ */

void
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
ngx_int_t
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


/*
 * Queues a copy of len bytes for sub alone (a heartbeat, a pong, a last
 * word), whatever its buffer limit.
 */
ngx_int_t
ngx_tributary_stream_queue_copy(ngx_tributary_sub_t *sub, const u_char *data,
    size_t len)
{
    ngx_int_t               rc;
    ngx_tributary_chunk_t  *ch;

    ch = ngx_tributary_chunk_alloc(len);
    if (ch == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(ch->data, data, len);
    rc = ngx_tributary_stream_queue(sub, ch, 0, len, 0, 1);
    ngx_tributary_chunk_release(ch);

    return rc;
}


/* A whole response of its own (an error, the status page): b, as type. */
ngx_int_t
ngx_tributary_stream_respond(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, ngx_buf_t *b)
{
    ngx_int_t    rc;
    ngx_chain_t  out;

    b->last_buf = (r == r->main);
    b->last_in_chain = 1;

    r->headers_out.status = status;
    r->headers_out.content_length_n = b->last - b->pos;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type_len = r->headers_out.content_type.len;

    rc = ngx_http_send_header(r);
    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


void
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


/* sending ---------------------------------------------------------------- */

void
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
void
ngx_tributary_stream_flush(ngx_tributary_sub_t *sub)
{
    u_char               close[TB_WS_MAX_CONTROL_FRAME];
    size_t               n;
    ngx_int_t            rc;
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

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
            n = tb_ws_close_frame(close,
                                             TB_WS_CLOSE_POLICY,
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

        (void) ngx_tributary_stream_queue_copy(sub, close, n);
    }

    rc = ngx_tributary_stream_send(sub);

    if (rc == NGX_ERROR) {
        ngx_tributary_stream_finish(sub, NGX_HTTP_CLOSE);
        return;
    }

    if (sub->closing) {
        if (rc == NGX_OK && !sub->ws) {
            if (sub->chunked) {
                sub->chunked = 0;
                if (ngx_tributary_stream_queue_copy(sub,
                        (u_char *) "0\r\n\r\n", 5) == NGX_OK)
                {
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


void
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


void
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
void
ngx_tributary_stream_ws_read_handler(ngx_http_request_t *r)
{
    u_char                buf[NGX_TRIBUTARY_STREAM_WS_READ], sink[512];
    u_char                ctl[TB_WS_MAX_CONTROL_FRAME];
    u_char               *out;
    size_t                n;
    ssize_t               got;
    const uint8_t        *in, *end;
    tb_ws_event           ev;
    tb_ws_parser         *p;
    ngx_connection_t     *c = r->connection;
    ngx_tributary_sub_t  *sub;

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
            ev = tb_ws_parse(p, &in, end, &out, sink + sizeof(sink));

            switch (ev) {

            case TB_WS_PING:
                n = tb_ws_control_frame(ctl, TB_WS_OP_PONG, p->control,
                                        p->control_len);
                (void) ngx_tributary_stream_queue_copy(sub, ctl, n);
                break;

            case TB_WS_CLOSE:
            case TB_WS_ERROR:
                n = tb_ws_close_frame(ctl,
                                      ev == TB_WS_ERROR ? p->close_code
                                                        : TB_WS_CLOSE_NORMAL,
                                      NULL, 0);
                (void) ngx_tributary_stream_queue_copy(sub, ctl, n);
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

