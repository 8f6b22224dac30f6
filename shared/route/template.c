/* `{name}` templates for Kafka topics, record keys and MQTT topics. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tributary/route.h"

void tb_template_free(tb_template *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->nparts; i++)
		free(t->parts[i].str);
	free(t->parts);
	free(t->text);
	memset(t, 0, sizeof(*t));
}

static int template__add(tb_template *t, bool placeholder, const char *s, size_t len)
{
	struct tb_template_part *parts =
	    realloc(t->parts, sizeof(*parts) * (size_t)(t->nparts + 1));
	if (!parts)
		return -1;
	t->parts = parts;
	parts[t->nparts].placeholder = placeholder;
	parts[t->nparts].str = strndup(s, len);
	parts[t->nparts].len = len;
	if (!parts[t->nparts].str)
		return -1;
	t->nparts++;
	return 0;
}

int tb_template_compile(tb_template *t, const char *text, char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	t->text = strdup(text);
	if (!t->text)
		goto oom;
	const char *s = text;
	while (*s) {
		const char *open = strchr(s, '{');
		if (!open) {
			if (template__add(t, false, s, strlen(s)))
				goto oom;
			break;
		}
		const char *close = strchr(open, '}');
		if (!close || close == open + 1) {
			snprintf(err, errlen, "unterminated or empty placeholder in '%s'", text);
			goto error;
		}
		if (memchr(open + 1, '{', (size_t)(close - open - 1))) {
			snprintf(err, errlen, "nested '{' in '%s'", text);
			goto error;
		}
		if (open > s && template__add(t, false, s, (size_t)(open - s)))
			goto oom;
		if (template__add(t, true, open + 1, (size_t)(close - open - 1)))
			goto oom;
		s = close + 1;
	}
	if (strchr(text, '}') && t->nparts == 1 && !t->parts[0].placeholder) {
		snprintf(err, errlen, "stray '}' in '%s'", text);
		goto error;
	}
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
error:
	tb_template_free(t);
	return -1;
}

int tb_template_each_name(const tb_template *t, int (*check)(void *ctx, const char *name),
                          void *ctx)
{
	for (int i = 0; i < t->nparts; i++) {
		if (t->parts[i].placeholder) {
			int rc = check(ctx, t->parts[i].str);
			if (rc)
				return rc;
		}
	}
	return 0;
}

int tb_template_expand(const tb_template *t, tb_template_lookup lookup, void *ctx,
                       const char *forbidden, char *out, size_t outlen, const char **missing)
{
	size_t used = 0;
	for (int i = 0; i < t->nparts; i++) {
		const struct tb_template_part *part = &t->parts[i];
		const char *v = part->str;
		size_t len = part->len;
		if (part->placeholder) {
			if (lookup(ctx, part->str, part->len, &v, &len) != 0) {
				if (missing)
					*missing = part->str;
				return -1;
			}
			for (size_t j = 0; j < len; j++) {
				if (v[j] == '\0' || (forbidden && strchr(forbidden, v[j]))) {
					if (missing)
						*missing = part->str;
					return -1;
				}
			}
		}
		if (used + len >= outlen)
			return -2;
		memcpy(out + used, v, len);
		used += len;
	}
	out[used] = '\0';
	return (int)used;
}
