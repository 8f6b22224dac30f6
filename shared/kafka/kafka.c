#include <stdio.h>
#include <string.h>

#include "tributary/kafka.h"

int tb_kafka_conf_apply(rd_kafka_conf_t *conf, const json_t *props, const char *what, char *err,
                        size_t errlen)
{
	const char *key;
	json_t *v;
	char num[64], rerr[512];
	if (!json_is_object(props)) {
		snprintf(err, errlen, "%s must be an object of librdkafka properties", what);
		return -1;
	}
	json_object_foreach((json_t *)props, key, v)
	{
		const char *s;
		if (json_is_string(v))
			s = json_string_value(v);
		else if (json_is_integer(v)) {
			snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
			s = num;
		} else if (json_is_real(v)) {
			snprintf(num, sizeof(num), "%g", json_real_value(v));
			s = num;
		} else if (json_is_boolean(v))
			s = json_is_true(v) ? "true" : "false";
		else {
			snprintf(err, errlen, "%s.%s: must be a string, number or boolean", what,
			         key);
			return -1;
		}
		if (rd_kafka_conf_set(conf, key, s, rerr, sizeof(rerr)) != RD_KAFKA_CONF_OK) {
			snprintf(err, errlen, "%s.%s: %s", what, key, rerr);
			return -1;
		}
	}
	return 0;
}

const char *tb_kafka_header(rd_kafka_headers_t *hdrs, const char *name, size_t *len)
{
	const void *v = NULL;
	size_t n = 0;
	if (!hdrs || rd_kafka_header_get_last(hdrs, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return NULL;
	if (len)
		*len = n;
	return v;
}
