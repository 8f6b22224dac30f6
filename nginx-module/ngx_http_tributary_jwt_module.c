/*
 * ngx_http_tributary_auth_module: JWT verification in the access phase.
 *
 *     location /notifications {
 *         tributary_jwt on;
 *         tributary_jwt_keys /etc/tributary/jwks.json;
 *         tributary_jwt_token $http_authorization $cookie_access_token
 *                             $arg_access_token;
 *         tributary_stream notifications;
 *         tributary_stream_key $tributary_jwt_sub;
 *     }
 *
 * The token is verified with the code the broker uses (shared/jwt,
 * "tributary/jwt.h"): same algorithms, key rules and claim checks, so a token
 * the broker accepts is accepted here and vice versa. Keys are loaded when
 * the configuration is read (a reload reads them again); verification is
 * CPU only, so it runs inline in the worker.
 *
 * The result is kept in the request's context and serves both the access
 * handler and the variables ($tributary_jwt_sub, $tributary_jwt_claim_NAME),
 * whichever asks first; it remembers the configuration it was made with, so
 * a request moved to another location (rewrite ... last keeps the context)
 * is verified again under that location's rules.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <math.h>

#include <jansson.h>

#include "tributary/jwt.h"
#include "ngx_http_tributary_jwt.h"


#define NGX_TRIBUTARY_JWT_LOG_VALUE_MAX  64


typedef struct {
    ngx_flag_t                  enable;
    ngx_array_t                *tokens;         /* ngx_http_complex_value_t */
    ngx_str_t                   token_names;    /* as written, for the log */
    tjwt_keyset                *keys;
    ngx_str_t                   keys_file;
    const char                **issuers;        /* NULL-terminated */
    const char                **audiences;      /* NULL-terminated */
    ngx_uint_t                  algs;
    time_t                      leeway;
    ngx_str_t                   identity_claim; /* NUL-terminated */
    tjwt_policy                 policy;
} ngx_http_tributary_jwt_loc_conf_t;


typedef enum {
    NGX_TRIBUTARY_JWT_VALID = 0,
    NGX_TRIBUTARY_JWT_MISSING,
    NGX_TRIBUTARY_JWT_INVALID,
    NGX_TRIBUTARY_JWT_FAILED                    /* our failure, not theirs */
} ngx_tributary_jwt_outcome_e;


typedef struct {
    ngx_http_tributary_jwt_loc_conf_t *conf;    /* what it was verified with */
    ngx_tributary_jwt_outcome_e        outcome;
    json_t                            *claims;  /* when valid */
    ngx_str_t                          identity;
    ngx_str_t                          token;   /* as presented, when valid */
    time_t                             expires; /* exp + leeway, or 0 */
    const char                        *description; /* for the client */
    u_char                            *reason;  /* for the error log */
} ngx_http_tributary_jwt_ctx_t;


static ngx_int_t ngx_http_tributary_jwt_handler(ngx_http_request_t *r);
static ngx_http_tributary_jwt_ctx_t *ngx_http_tributary_jwt_verify(
    ngx_http_request_t *r, ngx_http_tributary_jwt_loc_conf_t *conf);
static ngx_int_t ngx_http_tributary_jwt_find_token(ngx_http_request_t *r,
    ngx_http_tributary_jwt_loc_conf_t *conf, ngx_str_t *token);
static const char *ngx_http_tributary_jwt_description(tjwt_status st);
static u_char *ngx_http_tributary_jwt_sanitize(u_char *dst, const char *src,
    size_t max);
static ngx_int_t ngx_http_tributary_jwt_challenge(ngx_http_request_t *r,
    ngx_http_tributary_jwt_ctx_t *ctx);
static void ngx_http_tributary_jwt_cleanup(void *data);

static ngx_int_t ngx_http_tributary_jwt_sub_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_tributary_jwt_claim_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_tributary_jwt_expires_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_tributary_jwt_set_json(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, json_t *value);

static ngx_int_t ngx_http_tributary_jwt_add_variables(ngx_conf_t *cf);
static ngx_int_t ngx_http_tributary_jwt_init(ngx_conf_t *cf);
static void *ngx_http_tributary_jwt_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_tributary_jwt_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_tributary_jwt_keys(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tributary_jwt_token(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tributary_jwt_list(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_tributary_jwt_algorithms(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static void ngx_http_tributary_jwt_keys_cleanup(void *data);


static ngx_command_t  ngx_http_tributary_auth_commands[] = {

    { ngx_string("tributary_jwt"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tributary_jwt_loc_conf_t, enable),
      NULL },

    { ngx_string("tributary_jwt_keys"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_tributary_jwt_keys,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tributary_jwt_token"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_tributary_jwt_token,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("tributary_jwt_issuer"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_tributary_jwt_list,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tributary_jwt_loc_conf_t, issuers),
      NULL },

    { ngx_string("tributary_jwt_audience"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_tributary_jwt_list,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tributary_jwt_loc_conf_t, audiences),
      NULL },

    { ngx_string("tributary_jwt_leeway"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tributary_jwt_loc_conf_t, leeway),
      NULL },

    { ngx_string("tributary_jwt_algorithms"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_tributary_jwt_algorithms,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tributary_jwt_loc_conf_t, algs),
      NULL },

    { ngx_string("tributary_jwt_identity_claim"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_tributary_jwt_loc_conf_t, identity_claim),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_tributary_auth_module_ctx = {
    ngx_http_tributary_jwt_add_variables,  /* preconfiguration */
    ngx_http_tributary_jwt_init,           /* postconfiguration */

    NULL,                                  /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_tributary_jwt_create_loc_conf, /* create location configuration */
    ngx_http_tributary_jwt_merge_loc_conf  /* merge location configuration */
};


ngx_module_t  ngx_http_tributary_auth_module = {
    NGX_MODULE_V1,
    &ngx_http_tributary_auth_module_ctx,   /* module context */
    ngx_http_tributary_auth_commands,      /* module directives */
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


static ngx_http_variable_t  ngx_http_tributary_jwt_vars[] = {

    { ngx_string("tributary_jwt_sub"), NULL,
      ngx_http_tributary_jwt_sub_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tributary_jwt_expires"), NULL,
      ngx_http_tributary_jwt_expires_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("tributary_jwt_claim_"), NULL,
      ngx_http_tributary_jwt_claim_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_PREFIX, 0 },

      ngx_http_null_variable
};


static ngx_str_t  ngx_http_tributary_jwt_default_token =
    ngx_string("$http_authorization");


static ngx_int_t
ngx_http_tributary_jwt_handler(ngx_http_request_t *r)
{
    ngx_http_tributary_jwt_ctx_t       *ctx;
    ngx_http_tributary_jwt_loc_conf_t  *jlcf;

    jlcf = ngx_http_get_module_loc_conf(r, ngx_http_tributary_auth_module);

    if (!jlcf->enable) {
        return NGX_DECLINED;
    }

    ctx = ngx_http_tributary_jwt_verify(r, jlcf);
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    switch (ctx->outcome) {

    case NGX_TRIBUTARY_JWT_VALID:
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "tributary_jwt: authenticated as \"%V\"",
                       &ctx->identity);
        return NGX_OK;

    case NGX_TRIBUTARY_JWT_FAILED:
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "tributary_jwt: %s", ctx->reason);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;

    default:
        /* refusals are the client's doing: info, like auth_basic's */
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "tributary_jwt: %s", ctx->reason);
        return ngx_http_tributary_jwt_challenge(r, ctx);
    }
}


/*
 * A token whose identity claim is missing or not a safe identity: the
 * reason names the claim, its value (sanitised: the signature holds, but
 * the value is still the client's), the problem, the algorithm and the key.
 * NULL when memory runs out.
 */
static ngx_http_tributary_jwt_ctx_t *
ngx_http_tributary_jwt_bad_identity(ngx_http_request_t *r,
    ngx_http_tributary_jwt_ctx_t *ctx, const char *identity,
    const char *problem, tjwt_result *res)
{
    u_char                             *p;
    size_t                              len;
    ngx_http_tributary_jwt_loc_conf_t  *conf = ctx->conf;

    ctx->outcome = NGX_TRIBUTARY_JWT_INVALID;
    ctx->description = "invalid identity";

    len = sizeof("invalid token: identity claim \"\" ''  (, kid '')")
          + conf->identity_claim.len + NGX_TRIBUTARY_JWT_LOG_VALUE_MAX
          + ngx_strlen(problem) + 8 + sizeof(res->kid);
    ctx->reason = ngx_pnalloc(r->pool, len);
    if (ctx->reason == NULL) {
        return NULL;
    }

    p = ngx_sprintf(ctx->reason, "invalid token: identity claim \"%V\" ",
                    &conf->identity_claim);
    if (identity) {
        *p++ = '\'';
        p = ngx_http_tributary_jwt_sanitize(p, identity,
                                            NGX_TRIBUTARY_JWT_LOG_VALUE_MAX);
        *p++ = '\'';
        *p++ = ' ';
    }
    ngx_sprintf(p, "%s (%s, kid '%s')%Z", problem, tjwt_alg_name(res->alg),
                res->kid);

    return ctx;
}


static ngx_http_tributary_jwt_ctx_t *
ngx_http_tributary_jwt_verify(ngx_http_request_t *r,
    ngx_http_tributary_jwt_loc_conf_t *conf)
{
    size_t                         len;
    ngx_str_t                      token;
    tjwt_result                    res;
    double                         e;
    json_t                        *exp;
    const char                    *identity, *problem;
    ngx_pool_cleanup_t            *cln;
    ngx_http_tributary_jwt_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_tributary_auth_module);

    if (ctx && ctx->conf == conf) {
        return ctx;
    }

    if (ctx == NULL) {
        ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_tributary_jwt_ctx_t));
        if (ctx == NULL) {
            return NULL;
        }

        cln = ngx_pool_cleanup_add(r->pool, 0);
        if (cln == NULL) {
            return NULL;
        }

        cln->handler = ngx_http_tributary_jwt_cleanup;
        cln->data = ctx;

        ngx_http_set_ctx(r, ctx, ngx_http_tributary_auth_module);

    } else {
        json_decref(ctx->claims);
        ngx_memzero(ctx, sizeof(ngx_http_tributary_jwt_ctx_t));
    }

    ctx->conf = conf;

    switch (ngx_http_tributary_jwt_find_token(r, conf, &token)) {

    case NGX_OK:
        break;

    case NGX_DECLINED:
        ctx->outcome = NGX_TRIBUTARY_JWT_MISSING;
        ctx->description = "no token";

        len = sizeof("no token (looked in )") + conf->token_names.len;
        ctx->reason = ngx_pnalloc(r->pool, len);
        if (ctx->reason == NULL) {
            return NULL;
        }

        ngx_sprintf(ctx->reason, "no token (looked in %V)%Z",
                    &conf->token_names);
        return ctx;

    default:
        return NULL;
    }

    tjwt_verify(conf->keys, &conf->policy, (const char *) token.data,
                token.len, ngx_time(), &res);

    if (res.status != TJWT_OK) {
        ctx->outcome = (res.status == TJWT_ERR_INTERNAL)
                       ? NGX_TRIBUTARY_JWT_FAILED : NGX_TRIBUTARY_JWT_INVALID;
        ctx->description = ngx_http_tributary_jwt_description(res.status);

        len = sizeof("invalid token: : ") + TJWT_MESSAGE_MAX + 32;
        ctx->reason = ngx_pnalloc(r->pool, len);
        if (ctx->reason == NULL) {
            tjwt_result_clear(&res);
            return NULL;
        }

        /* res.message is already safe to log (tjwt sanitises it) */
        ngx_snprintf(ctx->reason, len - 1, "invalid token: %s: %s%Z",
                     tjwt_status_name(res.status), res.message);
        ctx->reason[len - 1] = '\0';

        tjwt_result_clear(&res);
        return ctx;
    }

    /* identity_claim is NUL-terminated: a configuration argument or "sub" */
    identity = tjwt_claim_string(res.claims,
                                 (char *) conf->identity_claim.data);
    problem = identity ? tjwt_identity_problem(identity) : "is missing";

    if (problem) {
        ctx = ngx_http_tributary_jwt_bad_identity(r, ctx, identity, problem,
                                                  &res);
        tjwt_result_clear(&res);
        return ctx;
    }

    ctx->identity.len = ngx_strlen(identity);
    ctx->identity.data = ngx_pnalloc(r->pool, ctx->identity.len);
    if (ctx->identity.data == NULL) {
        tjwt_result_clear(&res);
        return NULL;
    }

    ngx_memcpy(ctx->identity.data, identity, ctx->identity.len);

    /*
     * When the token stops being accepted: what tjwt_verify() refuses as
     * expired (now >= exp + leeway), the broker's rule for its clients too.
     * tjwt_verify() made sure exp is a number; it compares whole seconds
     * with it, so a fractional exp counts from the next second. Beyond
     * about 68,000 years it is "never" (and no time_t overflow).
     */
    exp = json_object_get(res.claims, "exp");
    if (json_is_number(exp)) {
        e = ceil(json_number_value(exp)) + (double) conf->leeway;
        if (e > 0 && e < (double) NGX_MAX_INT32_VALUE * 1000) {
            ctx->expires = (time_t) e;
        }
    }

    ctx->claims = tjwt_result_steal_claims(&res);
    ctx->token = token;
    ctx->outcome = NGX_TRIBUTARY_JWT_VALID;

    tjwt_result_clear(&res);

    return ctx;
}


/*
 * The first source with a value decides: a bad token in the header is not
 * rescued by a good one in the query string, so that what was checked is
 * always what the client meant to present.
 */
static ngx_int_t
ngx_http_tributary_jwt_find_token(ngx_http_request_t *r,
    ngx_http_tributary_jwt_loc_conf_t *conf, ngx_str_t *token)
{
    u_char                    *p, *last;
    ngx_str_t                  value;
    ngx_uint_t                 i;
    ngx_http_complex_value_t  *cv;

    cv = conf->tokens->elts;

    for (i = 0; i < conf->tokens->nelts; i++) {

        if (ngx_http_complex_value(r, &cv[i], &value) != NGX_OK) {
            return NGX_ERROR;
        }

        p = value.data;
        last = p + value.len;

        while (p < last && (*p == ' ' || *p == '\t')) {
            p++;
        }

        while (last > p && (last[-1] == ' ' || last[-1] == '\t')) {
            last--;
        }

        if (p == last) {
            continue;
        }

        /* RFC 6750 2.1; the scheme is case-insensitive (RFC 7235 2.1) */
        if (last - p > 7 && ngx_strncasecmp(p, (u_char *) "Bearer", 6) == 0
            && (p[6] == ' ' || p[6] == '\t'))
        {
            p += 7;

            while (p < last && (*p == ' ' || *p == '\t')) {
                p++;
            }

        } else if (ngx_strlchr(p, last, ' ') || ngx_strlchr(p, last, '\t')) {
            /* another scheme ("Basic ..."): not a token for us */
            ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                           "tributary_jwt: ignoring non-bearer value "
                           "of source %ui", i);
            continue;
        }

        token->data = p;
        token->len = last - p;

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "tributary_jwt: token from source %ui", i);

        return NGX_OK;
    }

    return NGX_DECLINED;
}


/*
 * What the client is told: the category only. The details (which issuers
 * or algorithms are accepted, key ids) go to the error log.
 */
static const char *
ngx_http_tributary_jwt_description(tjwt_status st)
{
    switch (st) {
    case TJWT_ERR_TOO_LARGE:
        return "token too large";
    case TJWT_ERR_MALFORMED:
        return "malformed token";
    case TJWT_ERR_ALG_NONE:
    case TJWT_ERR_ALG_UNSUPPORTED:
    case TJWT_ERR_ALG_NOT_ALLOWED:
    case TJWT_ERR_ALG_KEY_MISMATCH:
        return "algorithm not accepted";
    case TJWT_ERR_CRIT:
        return "unsupported critical header";
    case TJWT_ERR_NO_KEY:
        return "unknown signing key";
    case TJWT_ERR_SIGNATURE:
        return "invalid signature";
    case TJWT_ERR_EXPIRED:
        return "token expired";
    case TJWT_ERR_NOT_YET_VALID:
        return "token not yet valid";
    case TJWT_ERR_IAT:
        return "issue time not accepted";
    case TJWT_ERR_ISSUER:
        return "issuer not accepted";
    case TJWT_ERR_AUDIENCE:
        return "audience not accepted";
    case TJWT_ERR_CLAIM_MISSING:
    case TJWT_ERR_CLAIM_TYPE:
        return "invalid claims";
    default:
        return "invalid token";
    }
}


/* Printable ASCII but quotes and backslashes, at most max bytes of src. */
static u_char *
ngx_http_tributary_jwt_sanitize(u_char *dst, const char *src, size_t max)
{
    u_char  c;
    size_t  i;

    for (i = 0; src[i] && i < max; i++) {
        c = (u_char) src[i];
        *dst++ = (c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '\'')
                 ? '?' : c;
    }

    if (src[i]) {
        dst = ngx_cpymem(dst, "...", 3);
    }

    return dst;
}


/*
 * 401 with a Bearer challenge (RFC 6750 3). A request without any token
 * gets the bare challenge: "If the request lacks any authentication
 * information ... the resource server SHOULD NOT include an error code".
 */
static ngx_int_t
ngx_http_tributary_jwt_challenge(ngx_http_request_t *r,
    ngx_http_tributary_jwt_ctx_t *ctx)
{
    size_t            len;
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "WWW-Authenticate");

    if (ctx->outcome == NGX_TRIBUTARY_JWT_MISSING) {
        ngx_str_set(&h->value, "Bearer");

    } else {
        len = sizeof("Bearer error=\"invalid_token\", error_description=\"\"")
              - 1 + ngx_strlen(ctx->description);

        h->value.data = ngx_pnalloc(r->pool, len);
        if (h->value.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->value.len = ngx_sprintf(h->value.data,
                           "Bearer error=\"invalid_token\", "
                           "error_description=\"%s\"", ctx->description)
                       - h->value.data;
    }

    r->headers_out.www_authenticate = h;

    return NGX_HTTP_UNAUTHORIZED;
}


static void
ngx_http_tributary_jwt_cleanup(void *data)
{
    ngx_http_tributary_jwt_ctx_t  *ctx = data;

    json_decref(ctx->claims);
    ctx->claims = NULL;
}


/*
 * For the variables: verifies on demand, so that they work in any phase,
 * but only where tributary_jwt is on (elsewhere they stay empty).
 * NGX_OK with *ctx for a valid token, NGX_DECLINED without one.
 */
static ngx_int_t
ngx_http_tributary_jwt_valid(ngx_http_request_t *r,
    ngx_http_tributary_jwt_ctx_t **ctx)
{
    ngx_http_tributary_jwt_loc_conf_t  *jlcf;

    jlcf = ngx_http_get_module_loc_conf(r, ngx_http_tributary_auth_module);

    if (!jlcf->enable) {
        return NGX_DECLINED;
    }

    *ctx = ngx_http_tributary_jwt_verify(r, jlcf);

    if (*ctx == NULL) {
        return NGX_ERROR;
    }

    return (*ctx)->outcome == NGX_TRIBUTARY_JWT_VALID ? NGX_OK : NGX_DECLINED;
}


ngx_int_t
ngx_http_tributary_jwt_credentials(ngx_http_request_t *r, ngx_str_t *token,
    ngx_str_t *identity)
{
    ngx_int_t                           rc;
    ngx_http_tributary_jwt_ctx_t       *ctx;
    ngx_http_tributary_jwt_loc_conf_t  *jlcf;

    jlcf = ngx_http_get_module_loc_conf(r, ngx_http_tributary_auth_module);

    if (!jlcf->enable) {
        return NGX_DECLINED;
    }

    rc = ngx_http_tributary_jwt_valid(r, &ctx);

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc != NGX_OK) {
        return NGX_ABORT;
    }

    *token = ctx->token;
    *identity = ctx->identity;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tributary_jwt_sub_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_int_t                      rc;
    ngx_http_tributary_jwt_ctx_t  *ctx;

    rc = ngx_http_tributary_jwt_valid(r, &ctx);

    if (rc != NGX_OK) {
        v->not_found = 1;
        return rc == NGX_ERROR ? NGX_ERROR : NGX_OK;
    }

    v->len = ctx->identity.len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = ctx->identity.data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_tributary_jwt_claim_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t *name = (ngx_str_t *) data;

    u_char                        *cname;
    size_t                         len;
    json_t                        *value;
    ngx_int_t                      rc;
    ngx_http_tributary_jwt_ctx_t  *ctx;

    rc = ngx_http_tributary_jwt_valid(r, &ctx);

    if (rc != NGX_OK) {
        v->not_found = 1;
        return rc == NGX_ERROR ? NGX_ERROR : NGX_OK;
    }

    len = name->len - (sizeof("tributary_jwt_claim_") - 1);

    cname = ngx_pnalloc(r->pool, len + 1);
    if (cname == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(cname, name->data + sizeof("tributary_jwt_claim_") - 1, len);
    cname[len] = '\0';

    value = json_object_get(ctx->claims, (char *) cname);

    if (value == NULL || json_is_null(value)) {
        v->not_found = 1;
        return NGX_OK;
    }

    return ngx_http_tributary_jwt_set_json(r, v, value);
}


/* exp + leeway of a valid token, in Unix seconds: when it is refused */
static ngx_int_t
ngx_http_tributary_jwt_expires_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                        *p;
    ngx_int_t                      rc;
    ngx_http_tributary_jwt_ctx_t  *ctx;

    rc = ngx_http_tributary_jwt_valid(r, &ctx);

    if (rc != NGX_OK || ctx->expires == 0) {
        v->not_found = 1;
        return rc == NGX_ERROR ? NGX_ERROR : NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%T", ctx->expires) - p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}


/*
 * Strings as they are, arrays as their elements joined by commas (as
 * NGINX Plus's $jwt_claim_ does), anything else as compact JSON.
 */
static ngx_int_t
ngx_http_tributary_jwt_set_json(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, json_t *value)
{
    u_char   *p;
    char     *text;
    size_t    len, i, n;
    json_t   *e;

    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;

    /*
     * Copies, never pointers into the claims: those are released if the
     * request is verified again in another location.
     */
    if (json_is_string(value)) {
        v->len = json_string_length(value);
        v->data = ngx_pnalloc(r->pool, v->len);
        if (v->data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(v->data, json_string_value(value), v->len);
        return NGX_OK;
    }

    if (json_is_array(value)) {
        n = json_array_size(value);
        len = 0;

        json_array_foreach(value, i, e) {
            len += json_is_string(e)
                   ? json_string_length(e)
                   : json_dumpb(e, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
            len++;
        }

        p = ngx_pnalloc(r->pool, len + 1);
        if (p == NULL) {
            return NGX_ERROR;
        }

        v->data = p;

        json_array_foreach(value, i, e) {
            if (json_is_string(e)) {
                p = ngx_cpymem(p, json_string_value(e), json_string_length(e));
            } else {
                p += json_dumpb(e, (char *) p, v->data + len - p,
                                JSON_COMPACT | JSON_ENCODE_ANY);
            }

            if (i + 1 < n) {
                *p++ = ',';
            }
        }

        v->len = p - v->data;
        return NGX_OK;
    }

    text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL) {
        return NGX_ERROR;
    }

    len = ngx_strlen(text);
    v->data = ngx_pnalloc(r->pool, len);
    if (v->data == NULL) {
        free(text);
        return NGX_ERROR;
    }

    ngx_memcpy(v->data, text, len);
    v->len = len;
    free(text);

    return NGX_OK;
}


static ngx_int_t
ngx_http_tributary_jwt_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_tributary_jwt_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_tributary_jwt_init(ngx_conf_t *cf)
{
    ngx_http_handler_pt        *h;
    ngx_http_core_main_conf_t  *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_tributary_jwt_handler;

    return NGX_OK;
}


static void *
ngx_http_tributary_jwt_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_tributary_jwt_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_tributary_jwt_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->tokens = NULL;
     *     conf->token_names = { 0, NULL };
     *     conf->keys = NULL;
     *     conf->keys_file = { 0, NULL };
     *     conf->issuers = NULL;
     *     conf->audiences = NULL;
     *     conf->identity_claim = { 0, NULL };
     *     conf->policy = { 0 };
     */

    conf->enable = NGX_CONF_UNSET;
    conf->algs = NGX_CONF_UNSET_UINT;
    conf->leeway = NGX_CONF_UNSET;

    return conf;
}


static char *
ngx_http_tributary_jwt_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_tributary_jwt_loc_conf_t *prev = parent;
    ngx_http_tributary_jwt_loc_conf_t *conf = child;

    ngx_http_complex_value_t          *cv;
    ngx_http_compile_complex_value_t   ccv;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_uint_value(conf->algs, prev->algs, TJWT_ALGS_ALL);
    ngx_conf_merge_sec_value(conf->leeway, prev->leeway, 30);
    ngx_conf_merge_str_value(conf->identity_claim, prev->identity_claim,
                             "sub");

    if (conf->keys == NULL) {
        conf->keys = prev->keys;
        conf->keys_file = prev->keys_file;
    }

    if (conf->issuers == NULL) {
        conf->issuers = prev->issuers;
    }

    if (conf->audiences == NULL) {
        conf->audiences = prev->audiences;
    }

    if (conf->tokens == NULL) {
        conf->tokens = prev->tokens;
        conf->token_names = prev->token_names;
    }

    if (conf->tokens == NULL) {
        /* made once, at the outermost level, and inherited from there */
        conf->tokens = ngx_array_create(cf->pool, 1,
                                        sizeof(ngx_http_complex_value_t));
        if (conf->tokens == NULL) {
            return NGX_CONF_ERROR;
        }

        cv = ngx_array_push(conf->tokens);
        if (cv == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
        ccv.cf = cf;
        ccv.value = &ngx_http_tributary_jwt_default_token;
        ccv.complex_value = cv;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        conf->token_names = ngx_http_tributary_jwt_default_token;

        if (prev->tokens == NULL) {
            prev->tokens = conf->tokens;
            prev->token_names = conf->token_names;
        }
    }

    if (conf->enable && conf->keys == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"tributary_jwt\" is on but no "
                           "\"tributary_jwt_keys\" is set for it");
        return NGX_CONF_ERROR;
    }

    conf->policy.algs = conf->algs;
    conf->policy.issuers = conf->issuers;
    conf->policy.audiences = conf->audiences;
    conf->policy.leeway = (long) conf->leeway;

    return NGX_CONF_OK;
}


static char *
ngx_http_tributary_jwt_keys(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tributary_jwt_loc_conf_t *jlcf = conf;

    char                 err[512];
    ngx_str_t           *value;
    tjwt_keyset         *ks;
    ngx_pool_cleanup_t  *cln;

    if (jlcf->keys) {
        return "is duplicate";
    }

    value = cf->args->elts;
    jlcf->keys_file = value[1];

    if (ngx_conf_full_name(cf->cycle, &jlcf->keys_file, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    /* ngx_conf_full_name() leaves the name NUL-terminated */
    ks = tjwt_keyset_load((char *) jlcf->keys_file.data, err, sizeof(err));
    if (ks == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "tributary_jwt_keys: %s", err);
        return NGX_CONF_ERROR;
    }

    /* the keys live as long as this configuration: a reload frees them */
    cln->handler = ngx_http_tributary_jwt_keys_cleanup;
    cln->data = ks;

    jlcf->keys = ks;

    return NGX_CONF_OK;
}


static void
ngx_http_tributary_jwt_keys_cleanup(void *data)
{
    tjwt_keyset_unref(data);
}


static char *
ngx_http_tributary_jwt_token(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_tributary_jwt_loc_conf_t *jlcf = conf;

    u_char                            *p;
    size_t                             len;
    ngx_str_t                         *value;
    ngx_uint_t                         i;
    ngx_http_complex_value_t          *cv;
    ngx_http_compile_complex_value_t   ccv;

    if (jlcf->tokens) {
        return "is duplicate";
    }

    value = cf->args->elts;

    jlcf->tokens = ngx_array_create(cf->pool, cf->args->nelts - 1,
                                    sizeof(ngx_http_complex_value_t));
    if (jlcf->tokens == NULL) {
        return NGX_CONF_ERROR;
    }

    len = 0;

    for (i = 1; i < cf->args->nelts; i++) {
        cv = ngx_array_push(jlcf->tokens);
        if (cv == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));
        ccv.cf = cf;
        ccv.value = &value[i];
        ccv.complex_value = cv;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }

        len += value[i].len + 1;
    }

    p = ngx_pnalloc(cf->pool, len);
    if (p == NULL) {
        return NGX_CONF_ERROR;
    }

    jlcf->token_names.data = p;

    for (i = 1; i < cf->args->nelts; i++) {
        if (i > 1) {
            *p++ = ' ';
        }
        p = ngx_cpymem(p, value[i].data, value[i].len);
    }

    jlcf->token_names.len = p - jlcf->token_names.data;

    return NGX_CONF_OK;
}


/* A NULL-terminated list of the arguments, for tjwt_policy. */
static char *
ngx_http_tributary_jwt_list(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    const char  ***field, **list;
    ngx_str_t    *value;
    ngx_uint_t    i;

    field = (const char ***) (p + cmd->offset);

    if (*field) {
        return "is duplicate";
    }

    value = cf->args->elts;

    list = ngx_pcalloc(cf->pool, sizeof(char *) * cf->args->nelts);
    if (list == NULL) {
        return NGX_CONF_ERROR;
    }

    for (i = 1; i < cf->args->nelts; i++) {
        if (value[i].len == 0) {
            return "takes no empty value";
        }

        /* arguments are NUL-terminated in the configuration buffer */
        list[i - 1] = (const char *) value[i].data;
    }

    *field = list;

    return NGX_CONF_OK;
}


static char *
ngx_http_tributary_jwt_algorithms(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_tributary_jwt_loc_conf_t *jlcf = conf;

    tjwt_alg     alg;
    ngx_str_t   *value;
    ngx_uint_t   i, mask;

    if (jlcf->algs != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    mask = 0;

    for (i = 1; i < cf->args->nelts; i++) {
        alg = tjwt_alg_from_name((char *) value[i].data);

        if (alg == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown algorithm \"%V\" "
                               "(supported: RS256, ES256, HS256)", &value[i]);
            return NGX_CONF_ERROR;
        }

        mask |= alg;
    }

    jlcf->algs = mask;

    return NGX_CONF_OK;
}
