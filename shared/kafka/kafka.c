#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tributary/kafka.h"

void tb_thread_nice(int nice)
{
	if (nice <= 0)
		return;
	id_t tid = (id_t)gettid();
	errno = 0;
	int cur = getpriority(PRIO_PROCESS, tid);
	if (cur == -1 && errno)
		return;
	int want = cur + nice > 19 ? 19 : cur + nice;
	/* Raising the nice value needs no privilege; a failure leaves the
	 * thread as it was, which is only slower under load. */
	(void)setpriority(PRIO_PROCESS, tid, want);
}

static rd_kafka_resp_err_t kafka__on_thread_start(rd_kafka_t *rk, rd_kafka_thread_type_t type,
						  const char *name, void *opaque)
{
	(void)rk;
	(void)type;
	(void)name;
	tb_thread_nice((int)(intptr_t)opaque);
	return RD_KAFKA_RESP_ERR_NO_ERROR;
}

static rd_kafka_resp_err_t kafka__on_new(rd_kafka_t *rk, const rd_kafka_conf_t *conf,
					 void *opaque, char *errstr, size_t errstr_size)
{
	(void)conf;
	rd_kafka_resp_err_t err = rd_kafka_interceptor_add_on_thread_start(
	    rk, "tributary-thread-nice", kafka__on_thread_start, opaque);
	if (err)
		snprintf(errstr, errstr_size, "thread nice: %s", rd_kafka_err2str(err));
	return err;
}

int tb_kafka_conf_set_thread_nice(rd_kafka_conf_t *conf, int nice, char *err, size_t errlen)
{
	if (nice <= 0)
		return 0;
	rd_kafka_resp_err_t rerr = rd_kafka_conf_interceptor_add_on_new(
	    conf, "tributary-thread-nice", kafka__on_new, (void *)(intptr_t)nice);
	if (rerr) {
		snprintf(err, errlen, "thread nice: %s", rd_kafka_err2str(rerr));
		return -1;
	}
	return 0;
}

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
