/*
 * ngx_http_tributary_stream_module: the worker's gauges, and
 * tributary_stream_status, every worker's counters (in shared memory) in
 * the Prometheus text format.
 */

#include "ngx_tributary_stream.h"


void
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


ngx_int_t
ngx_tributary_stream_status_handler(ngx_http_request_t *r)
{
    u_char                        *p;
    size_t                         len;
    ngx_int_t                      rc;
    ngx_buf_t                     *b;
    ngx_uint_t                     i, m;
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
        { "tributary_stream_records_not_events_total", "counter",
          "CloudEvents records (ce_specversion or structured) that are not "
          "valid events, sent as plain records.",
          offsetof(ngx_tributary_stream_stats_t, not_events) },
        { "tributary_stream_records_undecodable_total", "counter",
          "Records of a tributary_stream_registry topic that could not be "
          "decoded from the registry's wire format, not sent.",
          offsetof(ngx_tributary_stream_stats_t, undecodable) },
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

    return ngx_tributary_stream_respond(r, NGX_HTTP_OK,
                                        "text/plain; version=0.0.4", b);
}

