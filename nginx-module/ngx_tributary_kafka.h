/*
 * The Kafka side of tributary_stream, per worker process:
 *
 *  - one live consumer (created in init_process, after fork) assigned every
 *    partition of every topic any tributary_stream location names, without
 *    consumer-group membership: group.id is set only because librdkafka's
 *    rd_kafka_assign() refuses to work without one; the handle never
 *    subscribes, joins or commits;
 *  - replay readers: one short-lived consumer handle per subscriber that
 *    resumes from an older position, bounded per worker by the caller;
 *  - one pipe whose read end is an nginx connection: librdkafka writes to it
 *    (rd_kafka_queue_io_event_enable) when a consumer queue becomes
 *    non-empty, and the metadata thread writes to it when it has found a
 *    topic's partitions and their end offsets.
 *
 * Why a metadata thread: a live consumer must know each partition's end
 * offset as a number (it is part of every event id), and librdkafka only
 * offers blocking calls for metadata and watermarks. A small thread per
 * worker makes those calls (short timeouts, retrying each second while a
 * topic is missing or the cluster is down) and hands the result over; the
 * worker then assigns the live consumer at exactly those offsets, so that
 * "live" has a known numeric start on every partition. Nothing here calls
 * librdkafka with a non-zero timeout on the worker's thread, and handles
 * are destroyed on a helper thread (rd_kafka_destroy waits for librdkafka's
 * threads) except at worker exit.
 */

#ifndef NGX_TRIBUTARY_KAFKA_H_INCLUDED_
#define NGX_TRIBUTARY_KAFKA_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <librdkafka/rdkafka.h>


typedef struct ngx_tributary_replay_s  ngx_tributary_replay_t;


typedef struct {
    ngx_str_t      brokers;
    ngx_array_t   *properties;       /* ngx_keyval_t, passed verbatim */
    ngx_str_t     *topics;
    ngx_uint_t     ntopics;
    ngx_event_handler_pt  on_wake;   /* called on the worker for any wakeup */
} ngx_tributary_kafka_conf_t;


ngx_int_t ngx_tributary_kafka_init(ngx_cycle_t *cycle,
    ngx_tributary_kafka_conf_t *conf);
void ngx_tributary_kafka_exit(ngx_cycle_t *cycle);

/* Empties the wakeup pipe; call first in on_wake. */
void ngx_tributary_kafka_drain_wakeups(void);

/* Wakes the worker (on_wake runs); any thread may call it. */
void ngx_tributary_kafka_wake(void);

/*
 * Hands over what the metadata thread found for topic i: its partition
 * count and, per partition, the end offset at that time (ngx_alloc'd, the
 * caller frees). NGX_DECLINED while nothing new is there.
 */
ngx_int_t ngx_tributary_kafka_take_metadata(ngx_uint_t i, int32_t *partitions,
    int64_t **end);

/* Assigns the live consumer to topic i's partitions from those offsets. */
ngx_int_t ngx_tributary_kafka_live_assign(ngx_uint_t i, int32_t partitions,
    const int64_t *from);

/* Up to max records or errors from the live consumer, without waiting. */
ssize_t ngx_tributary_kafka_live_poll(rd_kafka_message_t **msgs, size_t max);

/* Sum over topic i of cached high watermark minus next[p]: consumer lag. */
int64_t ngx_tributary_kafka_live_lag(ngx_uint_t i, int32_t partitions,
    const int64_t *next);

/*
 * A reader of topic i from next[p] on each partition p (a negative next[p]
 * is the beginning); it reports partition EOF as messages with err
 * RD_KAFKA_RESP_ERR__PARTITION_EOF and offset = the end reached.
 */
ngx_tributary_replay_t *ngx_tributary_kafka_replay_start(ngx_log_t *log,
    ngx_uint_t i, int32_t partitions, const int64_t *next);
ssize_t ngx_tributary_kafka_replay_poll(ngx_tributary_replay_t *rp,
    rd_kafka_message_t **msgs, size_t max);
void ngx_tributary_kafka_replay_pause(ngx_tributary_replay_t *rp,
    int32_t partition);
void ngx_tributary_kafka_replay_stop(ngx_tributary_replay_t *rp);

#endif /* NGX_TRIBUTARY_KAFKA_H_INCLUDED_ */
