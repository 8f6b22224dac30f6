/* JSON serialisation with shortest round-trip numbers: jansson prints reals
 * with 17 digits (19.99 -> 19.989999999999998), which would alter event data
 * on its way to Kafka. */
#ifndef TRIBUTARY_JSON_ENCODE_H
#define TRIBUTARY_JSON_ENCODE_H

#include <stddef.h>
#include <jansson.h>

/* A double as JSON: its shortest round-trip form, always a real ("2.0"),
 * "null" when not finite. Returns buf, or a constant. */
#define TB_JSON_REAL_LEN 40
const char *tb_json_real(char buf[TB_JSON_REAL_LEN], double d);

/* Compact JSON text of `json` (any type), malloc'ed; *len (optional) set. */
char *tb_json_encode(const json_t *json, size_t *len);

#endif
