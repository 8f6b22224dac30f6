/*
 * Per-worker Kafka consumers of tributary_stream; see
 * ngx_tributary_kafka.h for the design.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <pthread.h>

#include "ngx_tributary_kafka.h"


#define NGX_TRIBUTARY_KAFKA_META_TIMEOUT   2000     /* ms, on the thread */
#define NGX_TRIBUTARY_KAFKA_META_RETRY     1        /* s */


typedef struct {
    int32_t        partitions;
    int64_t       *end;
    unsigned       found:1;        /* the thread has a result */
    unsigned       taken:1;        /* the worker took it */
} ngx_tributary_kafka_meta_t;


struct ngx_tributary_replay_s {
    rd_kafka_t          *rk;
    rd_kafka_queue_t    *queue;
    ngx_uint_t           topic;
};


typedef struct ngx_tributary_kafka_reaper_s  ngx_tributary_kafka_reaper_t;

struct ngx_tributary_kafka_reaper_s {
    pthread_t                      tid;
    rd_kafka_t                    *rk;
    ngx_tributary_kafka_reaper_t  *next;
};


static struct {
    ngx_tributary_kafka_conf_t    *conf;
    ngx_log_t                     *log;
    rd_kafka_t                    *live;
    rd_kafka_queue_t              *live_queue;
    int                            wake[2];
    ngx_connection_t              *wake_conn;
    ngx_uint_t                     replay_seq;

    pthread_t                      meta_tid;
    unsigned                       meta_running:1;
    pthread_mutex_t                lock;
    pthread_cond_t                 cond;
    int                            stop;
    ngx_tributary_kafka_meta_t    *meta;

    ngx_tributary_kafka_reaper_t  *reapers;
} ngx_tributary_kafka = { .wake = { -1, -1 } };


static void
ngx_tributary_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
    const char *buf)
{
    ngx_uint_t  l;

    /* Only ever called on the worker: log.queue is on, served by our polls. */
    l = level <= 3 ? NGX_LOG_ERR : level <= 4 ? NGX_LOG_WARN
        : level <= 6 ? NGX_LOG_INFO : NGX_LOG_DEBUG;

    ngx_log_error(l, ngx_tributary_kafka.log, 0, "tributary_stream: kafka %s: %s: %s",
                  rd_kafka_name(rk), fac, buf);
}


static rd_kafka_t *
ngx_tributary_kafka_new(ngx_log_t *log, const char *group, int eof)
{
    char             errstr[512], *name, *value;
    ngx_uint_t       i;
    ngx_keyval_t    *kv;
    rd_kafka_t      *rk;
    rd_kafka_conf_t *kc;
    ngx_tributary_kafka_conf_t  *conf = ngx_tributary_kafka.conf;

    static const char  *defaults[][2] = {
        { "enable.auto.commit", "false" },
        { "enable.auto.offset.store", "false" },
        /* a position older than the log start: read what is left */
        { "auto.offset.reset", "earliest" },
        { "log.queue", "true" },
        { "client.id", "tributary-nginx-stream" },
    };

    kc = rd_kafka_conf_new();

    for (i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        if (rd_kafka_conf_set(kc, defaults[i][0], defaults[i][1], errstr,
                              sizeof(errstr)) != RD_KAFKA_CONF_OK)
        {
            goto failed;
        }
    }

    if (rd_kafka_conf_set(kc, "group.id", group, errstr, sizeof(errstr))
            != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(kc, "enable.partition.eof", eof ? "true" : "false",
                             errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK
        || rd_kafka_conf_set(kc, "bootstrap.servers",
                             (char *) conf->brokers.data, errstr,
                             sizeof(errstr)) != RD_KAFKA_CONF_OK)
    {
        goto failed;
    }

    if (conf->properties) {
        kv = conf->properties->elts;
        for (i = 0; i < conf->properties->nelts; i++) {
            /* the conf parser NUL-terminated both (ngx_conf_read_token) */
            name = (char *) kv[i].key.data;
            value = (char *) kv[i].value.data;

            if (rd_kafka_conf_set(kc, name, value, errstr, sizeof(errstr))
                != RD_KAFKA_CONF_OK)
            {
                goto failed;
            }
        }
    }

    rd_kafka_conf_set_log_cb(kc, ngx_tributary_kafka_log_cb);

    rk = rd_kafka_new(RD_KAFKA_CONSUMER, kc, errstr, sizeof(errstr));
    if (rk == NULL) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "tributary_stream: rd_kafka_new() failed: %s", errstr);
        return NULL;
    }

    if (rd_kafka_set_log_queue(rk, NULL) != RD_KAFKA_RESP_ERR_NO_ERROR
        || rd_kafka_poll_set_consumer(rk) != RD_KAFKA_RESP_ERR_NO_ERROR)
    {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "tributary_stream: cannot forward kafka queues");
        rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        return NULL;
    }

    return rk;

failed:

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "tributary_stream: kafka configuration: %s", errstr);
    rd_kafka_conf_destroy(kc);
    return NULL;
}


static rd_kafka_queue_t *
ngx_tributary_kafka_queue(rd_kafka_t *rk)
{
    rd_kafka_queue_t  *q;

    q = rd_kafka_queue_get_consumer(rk);
    if (q == NULL) {
        return NULL;
    }

    /* librdkafka writes one byte when the queue turns non-empty */
    rd_kafka_queue_io_event_enable(q, ngx_tributary_kafka.wake[1], "k", 1);

    return q;
}


void
ngx_tributary_kafka_wake(void)
{
    ssize_t  n;

    n = write(ngx_tributary_kafka.wake[1], "m", 1);
    (void) n;   /* a full pipe already means "wake up" */
}


/*
 * The metadata thread: blocking librdkafka calls with bounded timeouts,
 * never touching nginx (no logging either; the worker logs what it gets).
 */
static void *
ngx_tributary_kafka_meta_thread(void *arg)
{
    int32_t                       np, p;
    int64_t                       lo, hi, *end;
    ngx_uint_t                    i, pending;
    struct timespec               ts;
    rd_kafka_topic_t             *rkt;
    rd_kafka_resp_err_t           err;
    const rd_kafka_metadata_t    *md;
    ngx_tributary_kafka_conf_t   *conf = ngx_tributary_kafka.conf;

    (void) arg;

    for ( ;; ) {
        pending = 0;

        for (i = 0; i < conf->ntopics; i++) {
            pthread_mutex_lock(&ngx_tributary_kafka.lock);
            if (ngx_tributary_kafka.stop) {
                pthread_mutex_unlock(&ngx_tributary_kafka.lock);
                return NULL;
            }
            if (ngx_tributary_kafka.meta[i].found) {
                pthread_mutex_unlock(&ngx_tributary_kafka.lock);
                continue;
            }
            pthread_mutex_unlock(&ngx_tributary_kafka.lock);

            pending++;

            rkt = rd_kafka_topic_new(ngx_tributary_kafka.live,
                                     (char *) conf->topics[i].data, NULL);
            if (rkt == NULL) {
                continue;
            }

            err = rd_kafka_metadata(ngx_tributary_kafka.live, 0, rkt, &md,
                                    NGX_TRIBUTARY_KAFKA_META_TIMEOUT);
            rd_kafka_topic_destroy(rkt);

            if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                continue;
            }

            np = 0;
            if (md->topic_cnt == 1 && md->topics[0].err == 0) {
                np = md->topics[0].partition_cnt;
            }
            rd_kafka_metadata_destroy(md);

            if (np <= 0) {
                continue;
            }

            end = malloc(sizeof(int64_t) * np);
            if (end == NULL) {
                continue;
            }

            for (p = 0; p < np; p++) {
                err = rd_kafka_query_watermark_offsets(ngx_tributary_kafka.live,
                          (char *) conf->topics[i].data, p, &lo, &hi,
                          NGX_TRIBUTARY_KAFKA_META_TIMEOUT);
                if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
                    break;
                }
                end[p] = hi;
            }

            if (p < np) {
                free(end);
                continue;
            }

            pthread_mutex_lock(&ngx_tributary_kafka.lock);
            ngx_tributary_kafka.meta[i].partitions = np;
            ngx_tributary_kafka.meta[i].end = end;
            ngx_tributary_kafka.meta[i].found = 1;
            pthread_mutex_unlock(&ngx_tributary_kafka.lock);

            pending--;
            ngx_tributary_kafka_wake();
        }

        if (pending == 0) {
            return NULL;
        }

        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += NGX_TRIBUTARY_KAFKA_META_RETRY;

        pthread_mutex_lock(&ngx_tributary_kafka.lock);
        if (!ngx_tributary_kafka.stop) {
            pthread_cond_timedwait(&ngx_tributary_kafka.cond,
                                   &ngx_tributary_kafka.lock, &ts);
        }
        pthread_mutex_unlock(&ngx_tributary_kafka.lock);
    }
}


ngx_int_t
ngx_tributary_kafka_init(ngx_cycle_t *cycle, ngx_tributary_kafka_conf_t *conf)
{
    char               group[64];
    ngx_connection_t  *c;

    ngx_tributary_kafka.conf = conf;
    ngx_tributary_kafka.log = cycle->log;

    if (pipe2(ngx_tributary_kafka.wake, O_NONBLOCK | O_CLOEXEC) == -1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "tributary_stream: pipe2() failed");
        return NGX_ERROR;
    }

    ngx_tributary_kafka.meta = ngx_calloc(sizeof(ngx_tributary_kafka_meta_t)
                                          * conf->ntopics, cycle->log);
    if (ngx_tributary_kafka.meta == NULL) {
        return NGX_ERROR;
    }

    ngx_snprintf((u_char *) group, sizeof(group), "tributary-stream-%P%Z",
                 ngx_pid);

    ngx_tributary_kafka.live = ngx_tributary_kafka_new(cycle->log, group, 0);
    if (ngx_tributary_kafka.live == NULL) {
        return NGX_ERROR;
    }

    ngx_tributary_kafka.live_queue =
        ngx_tributary_kafka_queue(ngx_tributary_kafka.live);
    if (ngx_tributary_kafka.live_queue == NULL) {
        return NGX_ERROR;
    }

    c = ngx_get_connection(ngx_tributary_kafka.wake[0], cycle->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    c->read->handler = conf->on_wake;
    c->read->log = cycle->log;
    c->write->log = cycle->log;
    c->data = NULL;
    ngx_tributary_kafka.wake_conn = c;

    if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    pthread_mutex_init(&ngx_tributary_kafka.lock, NULL);
    pthread_cond_init(&ngx_tributary_kafka.cond, NULL);

    if (pthread_create(&ngx_tributary_kafka.meta_tid, NULL,
                       ngx_tributary_kafka_meta_thread, NULL) != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "tributary_stream: pthread_create() failed");
        return NGX_ERROR;
    }

    ngx_tributary_kafka.meta_running = 1;

    return NGX_OK;
}


void
ngx_tributary_kafka_drain_wakeups(void)
{
    char  buf[256];

    while (read(ngx_tributary_kafka.wake[0], buf, sizeof(buf)) > 0) {
        /* void */
    }
}


ngx_int_t
ngx_tributary_kafka_take_metadata(ngx_uint_t i, int32_t *partitions,
    int64_t **end)
{
    ngx_int_t  rc = NGX_DECLINED;

    pthread_mutex_lock(&ngx_tributary_kafka.lock);

    if (ngx_tributary_kafka.meta[i].found && !ngx_tributary_kafka.meta[i].taken) {
        ngx_tributary_kafka.meta[i].taken = 1;
        *partitions = ngx_tributary_kafka.meta[i].partitions;
        *end = ngx_tributary_kafka.meta[i].end;
        ngx_tributary_kafka.meta[i].end = NULL;
        rc = NGX_OK;
    }

    pthread_mutex_unlock(&ngx_tributary_kafka.lock);

    return rc;
}


ngx_int_t
ngx_tributary_kafka_live_assign(ngx_uint_t i, int32_t partitions,
    const int64_t *from)
{
    int32_t                           p;
    rd_kafka_error_t                 *error;
    rd_kafka_topic_partition_list_t  *add;
    const char                       *topic;

    topic = (char *) ngx_tributary_kafka.conf->topics[i].data;
    add = rd_kafka_topic_partition_list_new(partitions);

    for (p = 0; p < partitions; p++) {
        rd_kafka_topic_partition_list_add(add, topic, p)->offset = from[p];
    }

    /* incremental: other topics may be assigned already */
    error = rd_kafka_incremental_assign(ngx_tributary_kafka.live, add);
    rd_kafka_topic_partition_list_destroy(add);

    if (error) {
        ngx_log_error(NGX_LOG_ERR, ngx_tributary_kafka.log, 0,
                      "tributary_stream: assign \"%s\" failed: %s", topic,
                      rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return NGX_ERROR;
    }

    return NGX_OK;
}


ssize_t
ngx_tributary_kafka_live_poll(rd_kafka_message_t **msgs, size_t max)
{
    return rd_kafka_consume_batch_queue(ngx_tributary_kafka.live_queue, 0,
                                        msgs, max);
}


int64_t
ngx_tributary_kafka_live_lag(ngx_uint_t i, int32_t partitions,
    const int64_t *next)
{
    int32_t   p;
    int64_t   lo, hi, lag = 0;

    for (p = 0; p < partitions; p++) {
        if (rd_kafka_get_watermark_offsets(ngx_tributary_kafka.live,
                (char *) ngx_tributary_kafka.conf->topics[i].data, p, &lo, &hi)
            == RD_KAFKA_RESP_ERR_NO_ERROR
            && hi > next[p])
        {
            lag += hi - next[p];
        }
    }

    return lag;
}


ngx_tributary_replay_t *
ngx_tributary_kafka_replay_start(ngx_log_t *log, ngx_uint_t i,
    int32_t partitions, const int64_t *next)
{
    char                              group[64];
    int32_t                           p;
    rd_kafka_resp_err_t               err;
    ngx_tributary_replay_t           *rp;
    rd_kafka_topic_partition_list_t  *list;
    const char                       *topic;

    rp = ngx_calloc(sizeof(ngx_tributary_replay_t), log);
    if (rp == NULL) {
        return NULL;
    }

    rp->topic = i;
    ngx_snprintf((u_char *) group, sizeof(group), "tributary-replay-%P-%ui%Z",
                 ngx_pid, ngx_tributary_kafka.replay_seq++);

    rp->rk = ngx_tributary_kafka_new(log, group, 1);
    if (rp->rk == NULL) {
        ngx_free(rp);
        return NULL;
    }

    rp->queue = ngx_tributary_kafka_queue(rp->rk);
    if (rp->queue == NULL) {
        goto failed;
    }

    topic = (char *) ngx_tributary_kafka.conf->topics[i].data;
    list = rd_kafka_topic_partition_list_new(partitions);

    for (p = 0; p < partitions; p++) {
        rd_kafka_topic_partition_list_add(list, topic, p)->offset =
            next[p] >= 0 ? next[p] : RD_KAFKA_OFFSET_BEGINNING;
    }

    err = rd_kafka_assign(rp->rk, list);
    rd_kafka_topic_partition_list_destroy(list);

    if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "tributary_stream: replay assign failed: %s",
                      rd_kafka_err2str(err));
        goto failed;
    }

    return rp;

failed:

    ngx_tributary_kafka_replay_stop(rp);
    return NULL;
}


ssize_t
ngx_tributary_kafka_replay_poll(ngx_tributary_replay_t *rp,
    rd_kafka_message_t **msgs, size_t max)
{
    return rd_kafka_consume_batch_queue(rp->queue, 0, msgs, max);
}


void
ngx_tributary_kafka_replay_pause(ngx_tributary_replay_t *rp, int32_t partition)
{
    rd_kafka_topic_partition_list_t  *list;

    list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list,
        (char *) ngx_tributary_kafka.conf->topics[rp->topic].data, partition);
    (void) rd_kafka_pause_partitions(rp->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
}


static void *
ngx_tributary_kafka_reaper_thread(void *arg)
{
    rd_kafka_destroy_flags(arg, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    return NULL;
}


static void
ngx_tributary_kafka_reap(int wait)
{
    ngx_tributary_kafka_reaper_t  **pr, *r;

    for (pr = &ngx_tributary_kafka.reapers; *pr; /* void */) {
        r = *pr;

        if (wait ? pthread_join(r->tid, NULL) == 0
                 : pthread_tryjoin_np(r->tid, NULL) == 0)
        {
            *pr = r->next;
            ngx_free(r);
            continue;
        }

        pr = &r->next;
    }
}


void
ngx_tributary_kafka_replay_stop(ngx_tributary_replay_t *rp)
{
    ngx_tributary_kafka_reaper_t  *r;

    if (rp->queue) {
        rd_kafka_queue_io_event_enable(rp->queue, -1, NULL, 0);
        rd_kafka_queue_destroy(rp->queue);
    }

    ngx_tributary_kafka_reap(0);

    r = ngx_alloc(sizeof(ngx_tributary_kafka_reaper_t), ngx_tributary_kafka.log);

    if (r && pthread_create(&r->tid, NULL, ngx_tributary_kafka_reaper_thread,
                            rp->rk) == 0)
    {
        r->rk = rp->rk;
        r->next = ngx_tributary_kafka.reapers;
        ngx_tributary_kafka.reapers = r;

    } else {
        /* no thread to wait on: wait here rather than leak the handle */
        ngx_free(r);
        rd_kafka_destroy_flags(rp->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }

    ngx_free(rp);
}


void
ngx_tributary_kafka_exit(ngx_cycle_t *cycle)
{
    ngx_uint_t  i;

    if (ngx_tributary_kafka.meta_running) {
        pthread_mutex_lock(&ngx_tributary_kafka.lock);
        ngx_tributary_kafka.stop = 1;
        pthread_cond_signal(&ngx_tributary_kafka.cond);
        pthread_mutex_unlock(&ngx_tributary_kafka.lock);
        pthread_join(ngx_tributary_kafka.meta_tid, NULL);
        ngx_tributary_kafka.meta_running = 0;
    }

    ngx_tributary_kafka_reap(1);

    if (ngx_tributary_kafka.live_queue) {
        rd_kafka_queue_io_event_enable(ngx_tributary_kafka.live_queue, -1,
                                       NULL, 0);
        rd_kafka_queue_destroy(ngx_tributary_kafka.live_queue);
        ngx_tributary_kafka.live_queue = NULL;
    }

    if (ngx_tributary_kafka.live) {
        rd_kafka_destroy_flags(ngx_tributary_kafka.live,
                               RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
        ngx_tributary_kafka.live = NULL;
    }

    if (ngx_tributary_kafka.meta) {
        for (i = 0; i < ngx_tributary_kafka.conf->ntopics; i++) {
            free(ngx_tributary_kafka.meta[i].end);
        }
        ngx_free(ngx_tributary_kafka.meta);
        ngx_tributary_kafka.meta = NULL;
    }

    if (ngx_tributary_kafka.wake_conn) {
        ngx_close_connection(ngx_tributary_kafka.wake_conn);
        ngx_tributary_kafka.wake_conn = NULL;
        ngx_tributary_kafka.wake[0] = -1;

    } else if (ngx_tributary_kafka.wake[0] != -1) {
        close(ngx_tributary_kafka.wake[0]);
        ngx_tributary_kafka.wake[0] = -1;
    }

    if (ngx_tributary_kafka.wake[1] != -1) {
        close(ngx_tributary_kafka.wake[1]);
        ngx_tributary_kafka.wake[1] = -1;
    }
}
