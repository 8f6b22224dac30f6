/* What a route may put into a Kafka topic name: captures checked against a
 * PCRE2 regular expression, and the legality of the name itself. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "tributary/route.h"

/* A capture is at most one MQTT topic level: the limits keep an
 * administrator's pattern with heavy backtracking from stalling the caller
 * (Mosquitto's main thread). */
#define NAMES_MATCH_LIMIT 100000
#define NAMES_DEPTH_LIMIT 1000

struct tb_capture_rule {
	char *text;
	pcre2_code *re;
	pcre2_match_data *md;
	pcre2_match_context *mc;
};

bool tb_kafka_topic_valid(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 249 || !strcmp(name, ".") || !strcmp(name, ".."))
		return false;
	return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") ==
	       n;
}

void tb_capture_rule_free(tb_capture_rule *r)
{
	if (!r)
		return;
	pcre2_match_context_free(r->mc);
	pcre2_match_data_free(r->md);
	pcre2_code_free(r->re);
	free(r->text);
	free(r);
}

tb_capture_rule *tb_capture_rule_compile(const char *regex, char *err, size_t errlen)
{
	int code;
	PCRE2_SIZE off;
	tb_capture_rule *r = calloc(1, sizeof(*r));
	if (!r || !(r->text = strdup(regex)))
		goto oom;
	/* The whole capture must match: anchored at both ends. */
	r->re = pcre2_compile((PCRE2_SPTR)regex, PCRE2_ZERO_TERMINATED,
	                      PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED, &code, &off, NULL);
	if (!r->re) {
		PCRE2_UCHAR msg[160];
		pcre2_get_error_message(code, msg, sizeof(msg));
		snprintf(err, errlen, "'%s' is not a PCRE2 regular expression: %s at offset %zu",
		         regex, (const char *)msg, (size_t)off);
		tb_capture_rule_free(r);
		return NULL;
	}
	r->md = pcre2_match_data_create_from_pattern(r->re, NULL);
	r->mc = pcre2_match_context_create(NULL);
	if (!r->md || !r->mc)
		goto oom;
	pcre2_set_match_limit(r->mc, NAMES_MATCH_LIMIT);
	pcre2_set_depth_limit(r->mc, NAMES_DEPTH_LIMIT);
	return r;
oom:
	snprintf(err, errlen, "out of memory");
	tb_capture_rule_free(r);
	return NULL;
}

const char *tb_capture_rule_text(const tb_capture_rule *r)
{
	return r->text;
}

bool tb_capture_rule_ok(tb_capture_rule *r, const char *value, size_t len)
{
	if (len == 0)
		return false;
	/* PCRE2_NO_UTF_CHECK is not passed: a value that is not UTF-8 fails. */
	return pcre2_match(r->re, (PCRE2_SPTR)value, len, 0, 0, r->md, r->mc) >= 0;
}
