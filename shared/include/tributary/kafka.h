/* librdkafka helpers shared by the plugin, the nginx module and the tools. */
#ifndef TRIBUTARY_KAFKA_H
#define TRIBUTARY_KAFKA_H

#include <stddef.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

/* Applies a JSON object of librdkafka properties verbatim (values may be
 * strings, numbers or booleans) to `conf`. -1 with `err` naming the
 * property on failure. */
int tb_kafka_conf_apply(rd_kafka_conf_t *conf, const json_t *props, const char *what, char *err,
                        size_t errlen);

/* The value of header `name` (last occurrence), or NULL. */
const char *tb_kafka_header(rd_kafka_headers_t *hdrs, const char *name, size_t *len);

#endif
