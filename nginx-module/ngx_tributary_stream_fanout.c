/*
 * ngx_http_tributary_stream_module: subscribers' positions, the fan-out
 * of live records to them, replays of what they missed, and attaching a
 * new subscriber once its topic's partitions are known.
 */

#include "ngx_tributary_stream.h"


/* positions ---------------------------------------------------------------- */

/* The subscriber's position as text, into buf (room for the topic). */
static size_t
ngx_tributary_stream_sub_position(ngx_tributary_sub_t *sub, u_char *buf,
    size_t size)
{
    int32_t                 p, n;
    int64_t                 v[TB_POS_MAX_PARTITIONS];
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

    return tb_pos_format((char *) buf, size, v, n);
}


/*
 * Drops the private position once it equals live[] everywhere: from then on
 * the subscriber shares the live events' ids.
 */
void
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

    len = tb_pos_format((char *) t->pos,
              t->partitions * TB_POS_ENTRY_LEN, t->live,
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


void
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
    hlen = tb_ws_header_size(plen, 0);

    ch = ngx_tributary_chunk_alloc(hlen + plen);
    if (ch == NULL) {
        return NULL;
    }

    tb_ws_frame_header(ch->data, TB_WS_OP_TEXT, 1, plen,
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
    u_char                  pos[TB_POS_MAX_PARTITIONS
                                * TB_POS_ENTRY_LEN];
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


/*
 * A CloudEvents record that is not a valid event, sent as a plain record,
 * or a record that cannot be decoded from a registry's wire format, not
 * sent: counted, and logged at most every 10 s per worker for each.
 */
static void
ngx_tributary_stream_not_event(const rd_kafka_message_t *m,
    const ngx_tributary_stream_event_t *ev)
{
    u_char             more[48], *p;
    time_t             now;
    ngx_uint_t         k = ev->undecodable;
    static time_t      logged[2];
    static ngx_uint_t  unlogged[2];

    if (k) {
        ngx_tributary_stat(undecodable)++;
    } else {
        ngx_tributary_stat(not_events)++;
    }

    now = ngx_time();
    if (logged[k] && now - logged[k] < 10) {
        unlogged[k]++;
        return;
    }

    p = more;
    if (unlogged[k]) {
        p = ngx_snprintf(more, sizeof(more) - 1, " (and %ui more since)",
                         unlogged[k]);
    }
    *p = '\0';

    if (k) {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "tributary_stream: record %s [%d] at offset %O not "
                      "sent (undecodable): %s%s",
                      rd_kafka_topic_name(m->rkt), (int) m->partition,
                      (off_t) m->offset, ev->not_event, more);

    } else {
        ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                      "tributary_stream: record %s [%d] at offset %O is not a "
                      "valid CloudEvent (%s), sent as a plain record%s",
                      rd_kafka_topic_name(m->rkt), (int) m->partition,
                      (off_t) m->offset, ev->not_event, more);
    }

    logged[k] = now;
    unlogged[k] = 0;
}


typedef struct {
    ngx_tributary_stream_event_t  ev;
    ngx_tributary_chunk_t        *sse;
    ngx_tributary_chunk_t        *ws;
    tb_wire_cache                *wire;
    unsigned                      built:1;
    unsigned                      failed:1;
} ngx_tributary_fanout_t;


static ngx_tributary_stream_event_t *
ngx_tributary_stream_event(ngx_tributary_fanout_t *f,
    const rd_kafka_message_t *m)
{
    if (!f->built) {
        f->built = 1;
        if (ngx_tributary_stream_event_build(m, f->wire, &f->ev) != 0) {
            f->failed = 1;

        } else if (f->ev.not_event[0]) {
            ngx_tributary_stream_not_event(m, &f->ev);
            f->failed = f->ev.undecodable;
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


/*
 * 1 when the record can be turned into an event now; 0 when its topic's
 * registry is fetching its schema: the caller holds it, and every record
 * after it, and asks again on a later wakeup.
 */
ngx_uint_t
ngx_tributary_stream_record_ready(const rd_kafka_message_t *m)
{
    ngx_tributary_topic_t  *t;

    if (m->err) {
        return 1;
    }

    t = ngx_tributary_stream_topic_of(m);

    return t == NULL || ngx_tributary_registry_ready(t->registry, m);
}


void
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
    f.wire = t->wire;

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

    if (f.built) {
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


void
ngx_tributary_stream_replay_done(ngx_tributary_sub_t *sub)
{
    /* before the reader goes: its messages first */
    while (sub->nheld) {
        rd_kafka_message_destroy(sub->held[--sub->nheld]);
    }

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
    u_char                  pos[TB_POS_MAX_PARTITIONS
                                * TB_POS_ENTRY_LEN];
    u_char                  entry[TB_POS_ENTRY_LEN];
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

        ch = ngx_tributary_chunk_alloc(tb_ws_header_size(plen, 0)
                                       + plen);
        if (ch == NULL) {
            goto failed;
        }

        d = ch->data + tb_ws_frame_header(ch->data,
                                                     TB_WS_OP_TEXT,
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


void
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
            if (ngx_tributary_stream_event_build(m, t->wire, &ev) == 0) {
                if (ev.undecodable) {
                    ngx_tributary_stream_not_event(m, &ev);

                } else if (ngx_tributary_stream_type_matches(sub, &ev)) {
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


void
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
void
ngx_tributary_stream_attach(ngx_tributary_sub_t *sub)
{
    size_t                  i;
    int32_t                 p;
    u_char                 *last, buf[TB_POS_MAX_PARTITIONS
                                       * TB_POS_ENTRY_LEN + 16];
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

    if (sub->start != TB_POS_NOW) {
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

    if (ngx_tributary_stream_queue_copy(sub, buf, last - buf) != NGX_OK) {
        ngx_tributary_stream_cutoff(sub, "out of memory");
    }
}


void
ngx_tributary_stream_topic_ready(ngx_tributary_topic_t *t, int32_t partitions,
    int64_t *end)
{
    ngx_queue_t          *q;
    ngx_tributary_sub_t  *sub;

    if (partitions > TB_POS_MAX_PARTITIONS) {
        ngx_log_error(NGX_LOG_ERR, ngx_cycle->log, 0,
                      "tributary_stream: topic \"%V\" has %D partitions, "
                      "more than %d", &t->name, partitions,
                      TB_POS_MAX_PARTITIONS);
        ngx_free(end);
        return;
    }

    t->pos = ngx_alloc(partitions * TB_POS_ENTRY_LEN, ngx_cycle->log);
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


