/*
 * libFuzzer target: the configuration's parsers — route patterns and
 * templates (and matching topics against them, also as Kafka topic
 * templates; the captures against the default capture_pattern, the
 * expansion as a Kafka topic name) and ${VAR} expansion over a JSON
 * document, then its "topics" section. Input: pattern NUL template NUL
 * topic NUL json.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tributary/route.h"
#include "tributary/topics.h"
#include "tributary/util.h"

static int lookup(void *ctx, const char *name, size_t len, const char **v, size_t *vlen)
{
	const tb_capture *c = tb_captures_get(ctx, name, len);
	if (!c)
		return -1;
	*v = c->value;
	*vlen = c->len;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *parts[4] = {0};
	const uint8_t *p = data, *end = data + size;
	for (int i = 0; i < 4; i++) {
		const uint8_t *nul = memchr(p, 0, (size_t)(end - p));
		const uint8_t *stop = (nul && i < 3) ? nul : end;
		parts[i] = strndup((const char *)p, (size_t)(stop - p));
		p = stop < end ? stop + 1 : end;
	}
	char err[256], out[512];
	tb_pattern pat;
	tb_template tpl;
	static tb_capture_rule *rule; /* compiled once, like a route's */
	if (!rule && !(rule = tb_capture_rule_compile("[A-Za-z0-9_-]+", err, sizeof(err))))
		abort();
	if (tb_pattern_compile(&pat, parts[0], err, sizeof(err)) == 0) {
		tb_captures caps;
		if (tb_pattern_match(&pat, parts[2], &caps) &&
		    tb_template_compile(&tpl, parts[1], err, sizeof(err)) == 0) {
			for (int i = 0; i < caps.count; i++)
				tb_capture_rule_ok(rule, caps.cap[i].value, caps.cap[i].len);
			if (tb_template_expand(&tpl, lookup, &caps, "+#/", out, sizeof(out),
			                       NULL) >= 0)
				tb_kafka_topic_valid(out);
			tb_topics_template_match(&tpl, parts[2]);
			tb_template_free(&tpl);
		}
		tb_pattern_free(&pat);
	}
	setenv("FUZZ_VAR", "value", 1);
	json_error_t jerr;
	json_t *j = json_loads(parts[3], JSON_DECODE_ANY, &jerr);
	if (j) {
		tb_topics topics;
		if (tb_json_expand_env(j, err, sizeof(err)) == 0 &&
		    tb_topics_parse(&topics, j, err, sizeof(err)) == 0)
			tb_topics_free(&topics);
		json_decref(j);
	}
	for (int i = 0; i < 4; i++)
		free(parts[i]);
	return 0;
}
