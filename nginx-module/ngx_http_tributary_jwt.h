/*
 * What ngx_http_tributary_auth_module (tributary_jwt) offers other Tributary
 * modules: the verified token of the request, for the MQTT relay to present
 * to the broker on the client's behalf.
 */

#ifndef NGX_HTTP_TRIBUTARY_JWT_H_INCLUDED_
#define NGX_HTTP_TRIBUTARY_JWT_H_INCLUDED_

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/*
 * NGX_DECLINED where tributary_jwt is off; NGX_OK with the token as the
 * client presented it (without "Bearer ") and its identity claim, both in
 * request memory; NGX_ABORT when tributary_jwt is on but the request has no
 * valid token (the access phase let it through, e.g. "satisfy any");
 * NGX_ERROR on our failure.
 */
ngx_int_t ngx_http_tributary_jwt_credentials(ngx_http_request_t *r,
    ngx_str_t *token, ngx_str_t *identity);

#endif /* NGX_HTTP_TRIBUTARY_JWT_H_INCLUDED_ */
