/* JSON pointers (RFC 6901), as URI fragments (percent-encoded) too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

char *tjs_percent_decode(const char *s, size_t n)
{
	char *out = malloc(n + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi = i + 2 < n ? tjs_hexval(s[i + 1]) : -1;
			int lo = i + 2 < n ? tjs_hexval(s[i + 2]) : -1;
			/* a decoded NUL would silently truncate the pointer */
			if (hi < 0 || lo < 0 || ((hi << 4) | lo) == 0) {
				free(out);
				return NULL;
			}
			out[o++] = (char)((hi << 4) | lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

/* Array index token: "0" or digits without a leading zero. */
static bool parse_index(const char *t, size_t n, size_t *out)
{
	if (n == 0 || n > 18 || (n > 1 && t[0] == '0'))
		return false;
	size_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (t[i] < '0' || t[i] > '9')
			return false;
		v = v * 10 + (size_t)(t[i] - '0');
	}
	*out = v;
	return true;
}

const json_t *tjs_pointer_get(const json_t *doc, const char *ptr,
                              void (*visit)(const json_t *v, void *arg), void *arg)
{
	const json_t *cur = doc;
	if (visit)
		visit(cur, arg);
	if (*ptr == '\0')
		return cur;
	if (*ptr != '/')
		return NULL;
	size_t cap = strlen(ptr) + 1;
	char *tok = malloc(cap);
	if (!tok)
		return NULL;
	const char *p = ptr;
	while (*p == '/' && cur) {
		p++;
		size_t n = 0;
		while (*p && *p != '/') {
			if (*p == '~') {
				if (p[1] == '0')
					tok[n++] = '~';
				else if (p[1] == '1')
					tok[n++] = '/';
				else {
					cur = NULL;
					break;
				}
				p += 2;
			} else {
				tok[n++] = *p++;
			}
		}
		if (!cur)
			break;
		tok[n] = '\0';
		if (json_is_object(cur)) {
			cur = json_object_get(cur, tok);
		} else if (json_is_array(cur)) {
			size_t idx;
			cur = parse_index(tok, n, &idx) ? json_array_get(cur, idx) : NULL;
		} else {
			cur = NULL;
		}
		if (cur && visit)
			visit(cur, arg);
	}
	free(tok);
	return cur;
}

void tjs_pointer_append(tjs_buf *b, const char *token)
{
	tjs_buf_putc(b, '/');
	for (const char *p = token; *p; p++) {
		if (*p == '~')
			tjs_buf_add(b, "~0", 2);
		else if (*p == '/')
			tjs_buf_add(b, "~1", 2);
		else
			tjs_buf_putc(b, *p);
	}
}

void tjs_pointer_append_index(tjs_buf *b, size_t i)
{
	tjs_buf_printf(b, "/%zu", i);
}

bool tjs_pointer_is_valid(const char *s, size_t n)
{
	if (n == 0)
		return true;
	if (s[0] != '/')
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '~' && (i + 1 >= n || (s[i + 1] != '0' && s[i + 1] != '1')))
			return false;
	return true;
}
