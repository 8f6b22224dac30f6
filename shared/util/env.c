/* ${VAR} expansion in JSON configuration, for containers configured by
 * environment variables (see Dockerfile). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tributary/util.h"

static int env__expand_string(const char *in, char **out, const char *path, char *err,
                              size_t errlen)
{
	size_t cap = strlen(in) + 64, used = 0;
	char *buf = malloc(cap);
	if (!buf)
		goto oom;
	const char *s = in;
	while (*s) {
		const char *v = NULL;
		size_t vlen = 0;
		const char *next;
		if (s[0] == '$' && s[1] == '{') {
			const char *close = strchr(s + 2, '}');
			if (!close) {
				snprintf(err, errlen, "%s: unterminated ${ in \"%s\"", path, in);
				free(buf);
				return -1;
			}
			char name[128];
			const char *def = NULL;
			size_t deflen = 0;
			const char *sep = strstr(s + 2, ":-");
			size_t nlen = (size_t)(close - s - 2);
			if (sep && sep < close) {
				nlen = (size_t)(sep - s - 2);
				def = sep + 2;
				deflen = (size_t)(close - def);
			}
			if (nlen == 0 || nlen >= sizeof(name)) {
				snprintf(err, errlen, "%s: bad variable name in \"%s\"", path, in);
				free(buf);
				return -1;
			}
			memcpy(name, s + 2, nlen);
			name[nlen] = '\0';
			v = getenv(name);
			if (v && *v) {
				vlen = strlen(v);
			} else if (def) {
				v = def;
				vlen = deflen;
			} else {
				snprintf(
				    err, errlen,
				    "%s: environment variable %s is not set (use ${%s:-default})",
				    path, name, name);
				free(buf);
				return -1;
			}
			next = close + 1;
		} else {
			v = s;
			vlen = 1;
			next = s + 1;
		}
		if (used + vlen + 1 > cap) {
			cap = (used + vlen + 1) * 2;
			char *nb = realloc(buf, cap);
			if (!nb)
				goto oom;
			buf = nb;
		}
		memcpy(buf + used, v, vlen);
		used += vlen;
		s = next;
	}
	buf[used] = '\0';
	*out = buf;
	return 0;
oom:
	free(buf);
	snprintf(err, errlen, "%s: out of memory", path);
	return -1;
}

static int env__walk(json_t *json, const char *path, char *err, size_t errlen)
{
	char sub[512];
	if (json_is_object(json)) {
		const char *key;
		json_t *value;
		json_object_foreach(json, key, value)
		{
			snprintf(sub, sizeof(sub), "%s.%s", path, key);
			if (json_is_string(value)) {
				char *expanded;
				if (env__expand_string(json_string_value(value), &expanded, sub,
				                       err, errlen))
					return -1;
				json_object_set_new(json, key, json_string(expanded));
				free(expanded);
			} else if (env__walk(value, sub, err, errlen)) {
				return -1;
			}
		}
	} else if (json_is_array(json)) {
		size_t i;
		json_t *value;
		json_array_foreach(json, i, value)
		{
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			if (json_is_string(value)) {
				char *expanded;
				if (env__expand_string(json_string_value(value), &expanded, sub,
				                       err, errlen))
					return -1;
				json_array_set_new(json, i, json_string(expanded));
				free(expanded);
			} else if (env__walk(value, sub, err, errlen)) {
				return -1;
			}
		}
	}
	return 0;
}

int tb_json_expand_env(json_t *json, char *err, size_t errlen)
{
	return env__walk(json, "config", err, errlen);
}
