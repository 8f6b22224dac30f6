/* RFC 3986 URI references: parsing and resolution against a base. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static bool is_scheme_char(char c, bool first)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return true;
	return !first && ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.');
}

void tjs_uri_parse(const char *s, tjs_uri *u)
{
	memset(u, 0, sizeof(*u));
	const char *p = s;
	const char *q = s;
	while (*q && is_scheme_char(*q, q == s))
		q++;
	if (q > s && *q == ':') {
		u->has_scheme = true;
		u->scheme = s;
		u->scheme_len = (size_t)(q - s);
		p = q + 1;
	}
	if (p[0] == '/' && p[1] == '/') {
		u->has_authority = true;
		u->authority = p + 2;
		p += 2;
		while (*p && *p != '/' && *p != '?' && *p != '#')
			p++;
		u->authority_len = (size_t)(p - u->authority);
	}
	u->path = p;
	while (*p && *p != '?' && *p != '#')
		p++;
	u->path_len = (size_t)(p - u->path);
	if (*p == '?') {
		u->has_query = true;
		u->query = ++p;
		while (*p && *p != '#')
			p++;
		u->query_len = (size_t)(p - u->query);
	}
	if (*p == '#') {
		u->has_fragment = true;
		u->fragment = p + 1;
		u->fragment_len = strlen(p + 1);
	}
}

bool tjs_uri_is_absolute(const char *s)
{
	tjs_uri u;
	tjs_uri_parse(s, &u);
	return u.has_scheme;
}

/* RFC 3986 §5.2.4, on a private copy so that "replace the prefix with '/'"
 * is a write of one byte. */
static void remove_dot_segments(tjs_buf *out, const char *src, size_t n)
{
	char *in = malloc(n + 1);
	tjs_buf b = {0};
	if (!in) {
		out->oom = true;
		return;
	}
	memcpy(in, src, n);
	in[n] = '\0';
	size_t i = 0;
	while (i < n) {
		char *p = in + i;
		size_t rest = n - i;
		if (rest >= 3 && memcmp(p, "../", 3) == 0) {
			i += 3;
		} else if (rest >= 2 && memcmp(p, "./", 2) == 0) {
			i += 2;
		} else if (rest >= 3 && memcmp(p, "/./", 3) == 0) {
			i += 2;
		} else if (rest == 2 && memcmp(p, "/.", 2) == 0) {
			i += 1;
			in[i] = '/';
		} else if ((rest >= 4 && memcmp(p, "/../", 4) == 0) ||
		           (rest == 3 && memcmp(p, "/..", 3) == 0)) {
			if (rest >= 4) {
				i += 3;
			} else {
				i += 2;
				in[i] = '/';
			}
			while (b.len > 0 && b.s[b.len - 1] != '/')
				b.len--;
			if (b.len > 0)
				b.len--;
		} else if ((rest == 1 && p[0] == '.') || (rest == 2 && memcmp(p, "..", 2) == 0)) {
			i += rest;
		} else {
			size_t j = p[0] == '/' ? 1 : 0;
			while (j < rest && p[j] != '/')
				j++;
			tjs_buf_add(&b, p, j);
			i += j;
		}
	}
	if (b.oom)
		out->oom = true;
	else if (b.len)
		tjs_buf_add(out, b.s, b.len);
	tjs_buf_free(&b);
	free(in);
}

static void put_part(tjs_buf *b, const char *s, size_t n)
{
	tjs_buf_add(b, s, n);
}

char *tjs_uri_resolve(const char *base, const char *ref)
{
	tjs_uri r, bu;
	tjs_uri_parse(ref, &r);
	tjs_buf out = {0};
	tjs_buf path = {0};
	const tjs_uri *auth_src, *query_src;
	const tjs_uri *scheme_src;

	if (!base || !*base || r.has_scheme) {
		scheme_src = &r;
		auth_src = &r;
		remove_dot_segments(&path, r.path, r.path_len);
		query_src = &r;
	} else {
		tjs_uri_parse(base, &bu);
		scheme_src = &bu;
		if (r.has_authority) {
			auth_src = &r;
			remove_dot_segments(&path, r.path, r.path_len);
			query_src = &r;
		} else {
			auth_src = &bu;
			if (r.path_len == 0) {
				put_part(&path, bu.path, bu.path_len);
				query_src = r.has_query ? &r : &bu;
			} else {
				query_src = &r;
				if (r.path[0] == '/') {
					remove_dot_segments(&path, r.path, r.path_len);
				} else {
					tjs_buf merged = {0};
					if (bu.has_authority && bu.path_len == 0) {
						tjs_buf_putc(&merged, '/');
					} else {
						size_t k = bu.path_len;
						while (k > 0 && bu.path[k - 1] != '/')
							k--;
						tjs_buf_add(&merged, bu.path, k);
					}
					tjs_buf_add(&merged, r.path, r.path_len);
					if (merged.oom)
						path.oom = true;
					else
						remove_dot_segments(&path, merged.s, merged.len);
					tjs_buf_free(&merged);
				}
			}
		}
	}
	if (scheme_src->has_scheme) {
		/* schemes are case-insensitive: keep them lower case for lookups */
		for (size_t i = 0; i < scheme_src->scheme_len; i++) {
			char c = scheme_src->scheme[i];
			tjs_buf_putc(&out, (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c);
		}
		tjs_buf_putc(&out, ':');
	}
	if (auth_src->has_authority) {
		tjs_buf_puts(&out, "//");
		put_part(&out, auth_src->authority, auth_src->authority_len);
	}
	if (path.oom)
		out.oom = true;
	else if (path.len)
		tjs_buf_add(&out, path.s, path.len);
	tjs_buf_free(&path);
	if (query_src->has_query) {
		tjs_buf_putc(&out, '?');
		put_part(&out, query_src->query, query_src->query_len);
	}
	if (r.has_fragment) {
		tjs_buf_putc(&out, '#');
		put_part(&out, r.fragment, r.fragment_len);
	}
	return tjs_buf_take(&out);
}

char *tjs_uri_strip_fragment(const char *uri)
{
	const char *h = strchr(uri, '#');
	size_t n = h ? (size_t)(h - uri) : strlen(uri);
	char *s = malloc(n + 1);
	if (!s)
		return NULL;
	memcpy(s, uri, n);
	s[n] = '\0';
	return s;
}

const char *tjs_uri_fragment(const char *uri)
{
	const char *h = strchr(uri, '#');
	return h ? h + 1 : NULL;
}
