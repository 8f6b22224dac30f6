/* MQTT topic patterns with named single-level captures. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tributary/route.h"

static bool pattern__valid_name(const char *s, size_t len)
{
	if (len == 0 || len > 64)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

void tb_pattern_free(tb_pattern *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->nlevels; i++) {
		if (p->literal)
			free(p->literal[i]);
		if (p->name)
			free(p->name[i]);
	}
	free(p->literal);
	free(p->name);
	free(p->filter);
	memset(p, 0, sizeof(*p));
}

int tb_pattern_compile(tb_pattern *p, const char *text, char *err, size_t errlen)
{
	memset(p, 0, sizeof(*p));
	size_t tlen = strlen(text);
	if (tlen == 0 || tlen > 1024) {
		snprintf(err, errlen, "topic pattern must have 1 to 1024 characters");
		return -1;
	}
	p->literal = calloc(TB_PATTERN_MAX_LEVELS, sizeof(char *));
	p->name = calloc(TB_PATTERN_MAX_LEVELS, sizeof(char *));
	p->filter = malloc(tlen + 1);
	if (!p->literal || !p->name || !p->filter) {
		snprintf(err, errlen, "out of memory");
		goto error;
	}
	p->filter[0] = '\0';
	int ncaps = 0;
	const char *s = text;
	for (;;) {
		const char *end = strchr(s, '/');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		if (len == 1 && s[0] == '#') {
			if (end) {
				snprintf(err, errlen, "'#' must be the last level of '%s'", text);
				goto error;
			}
			p->multi = true;
			strcat(p->filter, "#");
			break;
		}
		if (p->nlevels == TB_PATTERN_MAX_LEVELS) {
			snprintf(err, errlen, "'%s' has more than %d levels", text,
			         TB_PATTERN_MAX_LEVELS);
			goto error;
		}
		if (len >= 2 && s[0] == '{' && s[len - 1] == '}') {
			if (!pattern__valid_name(s + 1, len - 2)) {
				snprintf(err, errlen, "bad placeholder name in '%s'", text);
				goto error;
			}
			if (++ncaps > TB_PATTERN_MAX_CAPTURES) {
				snprintf(err, errlen, "'%s' has more than %d placeholders", text,
				         TB_PATTERN_MAX_CAPTURES);
				goto error;
			}
			p->name[p->nlevels] = strndup(s + 1, len - 2);
			if (!p->name[p->nlevels])
				goto oom;
			strcat(p->filter, "+");
		} else if (len == 1 && s[0] == '+') {
			strcat(p->filter, "+");
		} else {
			if (memchr(s, '+', len) || memchr(s, '#', len) || memchr(s, '{', len) ||
			    memchr(s, '}', len)) {
				snprintf(
				    err, errlen,
				    "wildcards and placeholders must fill a whole level in '%s'",
				    text);
				goto error;
			}
			p->literal[p->nlevels] = strndup(s, len);
			if (!p->literal[p->nlevels])
				goto oom;
			strncat(p->filter, s, len);
		}
		p->nlevels++;
		if (!end)
			break;
		strcat(p->filter, "/");
		s = end + 1;
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
error:
	tb_pattern_free(p);
	return -1;
}

bool tb_pattern_match(const tb_pattern *p, const char *topic, tb_captures *caps)
{
	const char *s = topic;
	if (caps)
		caps->count = 0;
	/* Per MQTT, wildcards at the first level do not match $-topics. */
	if (topic[0] == '$' && (!p->literal[0] || p->nlevels == 0))
		return false;
	for (int i = 0; i < p->nlevels; i++) {
		if (!s)
			return false;
		const char *end = strchr(s, '/');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		if (p->literal[i]) {
			if (strlen(p->literal[i]) != len || memcmp(p->literal[i], s, len) != 0)
				return false;
		} else if (p->name[i] && caps) {
			tb_capture *c = &caps->cap[caps->count++];
			c->name = p->name[i];
			c->value = s;
			c->len = len;
		}
		s = end ? end + 1 : NULL;
	}
	if (p->multi)
		return true; /* `a/#` also matches `a` itself, as in MQTT */
	return s == NULL;
}

const tb_capture *tb_captures_get(const tb_captures *caps, const char *name, size_t namelen)
{
	for (int i = 0; i < caps->count; i++) {
		if (strlen(caps->cap[i].name) == namelen &&
		    !memcmp(caps->cap[i].name, name, namelen))
			return &caps->cap[i];
	}
	return NULL;
}
