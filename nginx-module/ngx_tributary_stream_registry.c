/*
 * tributary_stream_registry: schemas by id for the records of a topic in a
 * Schema Registry's wire format; see ngx_tributary_stream_registry.h.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tributary/registry.h"

#include "ngx_tributary_kafka.h"
#include "ngx_tributary_stream_registry.h"


#define NGX_TRIBUTARY_REGISTRY_WANTED  64     /* ids queued for the thread */
#define NGX_TRIBUTARY_REGISTRY_RETRY   1      /* s, while it cannot answer */


struct ngx_tributary_registry_s {
    ngx_tributary_registry_conf_t  *conf;
    tb_wire_cache                  *cache;
    tb_registry                    *client;        /* the thread's */
    char                           *url, *user, *password, *bearer, *ca;

    /* under the lock */
    ngx_uint_t                      down;          /* the last fetch failed */
    int                             down_id;
    char                            reason[600];

    ngx_uint_t                      logged_down;   /* the worker's */
};


typedef struct {
    ngx_tributary_registry_t       *reg;
    int                             id;
} ngx_tributary_registry_want_t;


static struct {
    ngx_tributary_registry_t       *regs;
    ngx_uint_t                      n;
    pthread_t                       tid;
    unsigned                        running:1;
    pthread_mutex_t                 lock;
    pthread_cond_t                  cond;
    int                             stop;
    ngx_tributary_registry_want_t   wanted[NGX_TRIBUTARY_REGISTRY_WANTED];
    ngx_uint_t                      nwanted;
} ngx_tributary_registry;


/* configuration ------------------------------------------------------------ */

static ngx_int_t
ngx_tributary_registry_same(ngx_tributary_registry_conf_t *a,
    ngx_tributary_registry_conf_t *b)
{
#define ngx_tributary_registry_eq(f)                                          \
    (a->f.len == b->f.len && ngx_strncmp(a->f.data, b->f.data, a->f.len) == 0)

    return ngx_tributary_registry_eq(user)
           && ngx_tributary_registry_eq(password)
           && ngx_tributary_registry_eq(bearer)
           && ngx_tributary_registry_eq(ca)
           && a->timeout == b->timeout;

#undef ngx_tributary_registry_eq
}


char *
ngx_tributary_registry_parse(ngx_conf_t *cf, ngx_array_t *registries,
    ngx_int_t *index)
{
    u_char                         *colon;
    ngx_str_t                      *value, s;
    ngx_int_t                       t;
    ngx_uint_t                      i;
    ngx_tributary_registry_conf_t   rc, *r;

    if (*index != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        *index = NGX_TRIBUTARY_REGISTRY_OFF;
        return NGX_CONF_OK;
    }

    ngx_memzero(&rc, sizeof(rc));
    rc.timeout = 10000;

    rc.url = value[1];
    if (ngx_strncmp(rc.url.data, "http://", 7) != 0
        && ngx_strncmp(rc.url.data, "https://", 8) != 0)
    {
        return "needs the registry's URL (http:// or https://)";
    }

    while (rc.url.len > 8 && rc.url.data[rc.url.len - 1] == '/') {
        rc.url.len--;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "user=", 5) == 0) {
            s.data = value[i].data + 5;
            s.len = value[i].len - 5;
            colon = ngx_strlchr(s.data, s.data + s.len, ':');
            if (colon == NULL || colon == s.data) {
                return "needs user=USER:PASSWORD";
            }
            rc.user.data = s.data;
            rc.user.len = colon - s.data;
            rc.password.data = colon + 1;
            rc.password.len = s.data + s.len - colon - 1;
            continue;
        }

        if (ngx_strncmp(value[i].data, "bearer=", 7) == 0
            && value[i].len > 7)
        {
            rc.bearer.data = value[i].data + 7;
            rc.bearer.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "ca=", 3) == 0 && value[i].len > 3) {
            rc.ca.data = value[i].data + 3;
            rc.ca.len = value[i].len - 3;
            if (ngx_conf_full_name(cf->cycle, &rc.ca, 1) != NGX_OK) {
                return NGX_CONF_ERROR;
            }
            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;
            t = ngx_parse_time(&s, 0);
            if (t == NGX_ERROR || t < 100 || t > 600000) {
                return "needs timeout= from 100ms to 600s";
            }
            rc.timeout = (ngx_msec_t) t;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "tributary_stream_registry: unknown option \"%V\" "
                           "(user=, bearer=, ca=, timeout=)", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (rc.user.len && rc.bearer.len) {
        return "takes user= or bearer=, not both";
    }

    r = registries->elts;
    for (i = 0; i < registries->nelts; i++) {
        if (r[i].url.len == rc.url.len
            && ngx_strncmp(r[i].url.data, rc.url.data, rc.url.len) == 0)
        {
            if (!ngx_tributary_registry_same(&r[i], &rc)) {
                return "names a registry URL given elsewhere with other "
                       "options";
            }
            *index = i;
            return NGX_CONF_OK;
        }
    }

    r = ngx_array_push(registries);
    if (r == NULL) {
        return NGX_CONF_ERROR;
    }

    *r = rc;
    *index = registries->nelts - 1;

    return NGX_CONF_OK;
}


/* the thread --------------------------------------------------------------- */

static char *
ngx_tributary_registry_cstr(ngx_str_t *s)
{
    char  *p;

    if (s->len == 0) {
        return NULL;
    }

    p = ngx_alloc(s->len + 1, ngx_cycle->log);
    if (p) {
        ngx_memcpy(p, s->data, s->len);
        p[s->len] = '\0';
    }

    return p;
}


static void
ngx_tributary_registry_fetch(ngx_tributary_registry_t *reg, int id)
{
    int                 rc = -1;
    char                err[256];
    tb_registry_opts    o;
    tb_registry_error   e;

    ngx_memzero(&e, sizeof(e));

    if (reg->client == NULL) {
        ngx_memzero(&o, sizeof(o));
        o.url = reg->url;
        o.username = reg->user;
        o.password = reg->password;
        o.bearer = reg->bearer;
        o.ca_file = reg->ca;
        o.timeout_ms = (long) reg->conf->timeout;
        o.retries = -1;

        reg->client = tb_registry_new(&o, err, sizeof(err));
        if (reg->client == NULL) {
            snprintf(e.message, sizeof(e.message), "%s", err);
        }
    }

    if (reg->client) {
        rc = tb_wire_fetch(reg->cache, reg->client, id, &e);
    }

    pthread_mutex_lock(&ngx_tributary_registry.lock);

    if (rc == 0) {
        reg->down = 0;

        if (ngx_tributary_registry.nwanted
            && ngx_tributary_registry.wanted[0].reg == reg
            && ngx_tributary_registry.wanted[0].id == id)
        {
            ngx_tributary_registry.nwanted--;
            memmove(&ngx_tributary_registry.wanted[0],
                    &ngx_tributary_registry.wanted[1],
                    ngx_tributary_registry.nwanted
                    * sizeof(ngx_tributary_registry_want_t));
        }

    } else {
        reg->down = 1;
        reg->down_id = id;
        snprintf(reg->reason, sizeof(reg->reason), "HTTP %ld: %s",
                 e.http_status, e.message);

        /* to the back: another registry's ids are not held behind it */
        if (ngx_tributary_registry.nwanted > 1
            && ngx_tributary_registry.wanted[0].reg == reg
            && ngx_tributary_registry.wanted[0].id == id)
        {
            ngx_tributary_registry_want_t  w = ngx_tributary_registry.wanted[0];

            memmove(&ngx_tributary_registry.wanted[0],
                    &ngx_tributary_registry.wanted[1],
                    (ngx_tributary_registry.nwanted - 1)
                    * sizeof(ngx_tributary_registry_want_t));
            ngx_tributary_registry.wanted[ngx_tributary_registry.nwanted - 1]
                = w;
        }
    }

    pthread_mutex_unlock(&ngx_tributary_registry.lock);

    ngx_tributary_kafka_wake();
}


static void *
ngx_tributary_registry_thread(void *arg)
{
    int                             retry = 0;
    struct timespec                 until;
    ngx_tributary_registry_want_t   w;

    pthread_mutex_lock(&ngx_tributary_registry.lock);

    while (!ngx_tributary_registry.stop) {

        if (ngx_tributary_registry.nwanted == 0 || retry) {
            if (retry) {
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += NGX_TRIBUTARY_REGISTRY_RETRY;
                pthread_cond_timedwait(&ngx_tributary_registry.cond,
                                       &ngx_tributary_registry.lock, &until);
                retry = 0;

            } else {
                pthread_cond_wait(&ngx_tributary_registry.cond,
                                  &ngx_tributary_registry.lock);
            }

            continue;
        }

        w = ngx_tributary_registry.wanted[0];
        pthread_mutex_unlock(&ngx_tributary_registry.lock);

        ngx_tributary_registry_fetch(w.reg, w.id);

        pthread_mutex_lock(&ngx_tributary_registry.lock);
        retry = w.reg->down;
    }

    pthread_mutex_unlock(&ngx_tributary_registry.lock);

    return NULL;
}


/* the worker --------------------------------------------------------------- */

ngx_int_t
ngx_tributary_registry_init(ngx_cycle_t *cycle, ngx_array_t *registries)
{
    ngx_uint_t                      i;
    ngx_tributary_registry_t       *reg;
    ngx_tributary_registry_conf_t  *rc;

    if (registries->nelts == 0) {
        return NGX_OK;
    }

    ngx_tributary_registry.regs = ngx_pcalloc(cycle->pool,
        sizeof(ngx_tributary_registry_t) * registries->nelts);
    if (ngx_tributary_registry.regs == NULL) {
        return NGX_ERROR;
    }

    ngx_tributary_registry.n = registries->nelts;
    rc = registries->elts;

    for (i = 0; i < registries->nelts; i++) {
        reg = &ngx_tributary_registry.regs[i];
        reg->conf = &rc[i];
        reg->cache = tb_wire_cache_new();
        reg->url = ngx_tributary_registry_cstr(&rc[i].url);

        if (reg->cache == NULL || reg->url == NULL
            || (rc[i].user.len
                && (reg->user = ngx_tributary_registry_cstr(&rc[i].user))
                   == NULL)
            || (rc[i].password.len
                && (reg->password = ngx_tributary_registry_cstr(
                                        &rc[i].password))
                   == NULL)
            || (rc[i].bearer.len
                && (reg->bearer = ngx_tributary_registry_cstr(&rc[i].bearer))
                   == NULL)
            || (rc[i].ca.len
                && (reg->ca = ngx_tributary_registry_cstr(&rc[i].ca))
                   == NULL))
        {
            return NGX_ERROR;
        }
    }

    pthread_mutex_init(&ngx_tributary_registry.lock, NULL);
    pthread_cond_init(&ngx_tributary_registry.cond, NULL);

    if (pthread_create(&ngx_tributary_registry.tid, NULL,
                       ngx_tributary_registry_thread, NULL)
        != 0)
    {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, 0,
                      "tributary_stream_registry: pthread_create() failed");
        return NGX_ERROR;
    }

    ngx_tributary_registry.running = 1;

    return NGX_OK;
}


void
ngx_tributary_registry_exit(void)
{
    ngx_uint_t                 i;
    ngx_tributary_registry_t  *reg;

    if (ngx_tributary_registry.running) {
        pthread_mutex_lock(&ngx_tributary_registry.lock);
        ngx_tributary_registry.stop = 1;
        pthread_cond_signal(&ngx_tributary_registry.cond);
        pthread_mutex_unlock(&ngx_tributary_registry.lock);
        /* a request in flight ends within its timeout */
        pthread_join(ngx_tributary_registry.tid, NULL);
        ngx_tributary_registry.running = 0;
    }

    for (i = 0; i < ngx_tributary_registry.n; i++) {
        reg = &ngx_tributary_registry.regs[i];
        tb_registry_free(reg->client);
        tb_wire_cache_free(reg->cache);
        ngx_free(reg->url);
        ngx_free(reg->user);
        ngx_free(reg->password);
        ngx_free(reg->bearer);
        ngx_free(reg->ca);
    }

    ngx_tributary_registry.n = 0;
}


ngx_tributary_registry_t *
ngx_tributary_registry_get(ngx_uint_t index)
{
    return index < ngx_tributary_registry.n
           ? &ngx_tributary_registry.regs[index] : NULL;
}


tb_wire_cache *
ngx_tributary_registry_cache(ngx_tributary_registry_t *reg)
{
    return reg ? reg->cache : NULL;
}


ngx_uint_t
ngx_tributary_registry_ready(ngx_tributary_registry_t *reg,
    const rd_kafka_message_t *m)
{
    int         id;
    ngx_uint_t  i;

    if (reg == NULL
        || tb_wire_schema_id(m->payload, m->len, &id) != 0
        || tb_wire_cached(reg->cache, id))
    {
        return 1;
    }

    pthread_mutex_lock(&ngx_tributary_registry.lock);

    for (i = 0; i < ngx_tributary_registry.nwanted; i++) {
        if (ngx_tributary_registry.wanted[i].reg == reg
            && ngx_tributary_registry.wanted[i].id == id)
        {
            break;
        }
    }

    /* a full queue: asked again on a later wakeup */
    if (i == ngx_tributary_registry.nwanted
        && i < NGX_TRIBUTARY_REGISTRY_WANTED)
    {
        ngx_tributary_registry.wanted[i].reg = reg;
        ngx_tributary_registry.wanted[i].id = id;
        ngx_tributary_registry.nwanted++;
        pthread_cond_signal(&ngx_tributary_registry.cond);
    }

    pthread_mutex_unlock(&ngx_tributary_registry.lock);

    return 0;
}


void
ngx_tributary_registry_report(ngx_log_t *log)
{
    int                        id;
    char                       reason[600];
    ngx_uint_t                 i, down;
    ngx_tributary_registry_t  *reg;

    for (i = 0; i < ngx_tributary_registry.n; i++) {
        reg = &ngx_tributary_registry.regs[i];

        pthread_mutex_lock(&ngx_tributary_registry.lock);
        down = reg->down;
        id = reg->down_id;
        ngx_memcpy(reason, reg->reason, sizeof(reason));
        pthread_mutex_unlock(&ngx_tributary_registry.lock);

        if (down && !reg->logged_down) {
            ngx_log_error(NGX_LOG_WARN, log, 0,
                          "tributary_stream: registry %s: cannot fetch "
                          "schema id %d (%s); records wait, in order, until "
                          "it answers", reg->url, id, reason);

        } else if (!down && reg->logged_down) {
            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                          "tributary_stream: registry %s reachable again",
                          reg->url);
        }

        reg->logged_down = down;
    }
}
