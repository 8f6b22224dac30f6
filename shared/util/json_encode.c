#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tributary/json_encode.h"

typedef struct enc_buf {
	char *p;
	size_t len, cap;
	int failed;
} enc_buf;

static void enc__put(enc_buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->failed = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void enc__string(enc_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t start = 0;
	enc__put(b, "\"", 1);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		const char *esc = NULL;
		char u[7];
		if (c == '"')
			esc = "\\\"";
		else if (c == '\\')
			esc = "\\\\";
		else if (c == '\n')
			esc = "\\n";
		else if (c == '\r')
			esc = "\\r";
		else if (c == '\t')
			esc = "\\t";
		else if (c == '\b')
			esc = "\\b";
		else if (c == '\f')
			esc = "\\f";
		else if (c < 0x20) {
			u[0] = '\\';
			u[1] = 'u';
			u[2] = '0';
			u[3] = '0';
			u[4] = hex[c >> 4];
			u[5] = hex[c & 15];
			u[6] = '\0';
			esc = u;
		}
		if (esc) {
			enc__put(b, s + start, i - start);
			enc__put(b, esc, strlen(esc));
			start = i + 1;
		}
	}
	enc__put(b, s + start, n - start);
	enc__put(b, "\"", 1);
}

const char *tb_json_real(char buf[TB_JSON_REAL_LEN], double d)
{
	if (!isfinite(d))
		return "null";
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, TB_JSON_REAL_LEN, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	/* Keep it a JSON real so that consumers see the same type. */
	if (!strpbrk(buf, ".eEn"))
		strcat(buf, ".0");
	return buf;
}

static void enc__real(enc_buf *b, double d)
{
	char tmp[TB_JSON_REAL_LEN];
	const char *text = tb_json_real(tmp, d);
	enc__put(b, text, strlen(text));
}

static void enc__value(enc_buf *b, const json_t *j)
{
	char tmp[32];
	switch (json_typeof(j)) {
	case JSON_OBJECT: {
		const char *key;
		size_t klen;
		json_t *v;
		int first = 1;
		enc__put(b, "{", 1);
		json_object_keylen_foreach((json_t *)j, key, klen, v)
		{
			if (!first)
				enc__put(b, ",", 1);
			first = 0;
			enc__string(b, key, klen);
			enc__put(b, ":", 1);
			enc__value(b, v);
		}
		enc__put(b, "}", 1);
		break;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *v;
		enc__put(b, "[", 1);
		json_array_foreach(j, i, v)
		{
			if (i)
				enc__put(b, ",", 1);
			enc__value(b, v);
		}
		enc__put(b, "]", 1);
		break;
	}
	case JSON_STRING:
		enc__string(b, json_string_value(j), json_string_length(j));
		break;
	case JSON_INTEGER:
		snprintf(tmp, sizeof(tmp), "%" JSON_INTEGER_FORMAT, json_integer_value(j));
		enc__put(b, tmp, strlen(tmp));
		break;
	case JSON_REAL:
		enc__real(b, json_real_value(j));
		break;
	case JSON_TRUE:
		enc__put(b, "true", 4);
		break;
	case JSON_FALSE:
		enc__put(b, "false", 5);
		break;
	case JSON_NULL:
		enc__put(b, "null", 4);
		break;
	}
}

char *tb_json_encode(const json_t *json, size_t *len)
{
	enc_buf b = {0};
	enc__value(&b, json);
	if (b.failed || !b.p) {
		free(b.p);
		return NULL;
	}
	if (len)
		*len = b.len;
	return b.p;
}
