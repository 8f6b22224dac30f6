/*
 * Identities (JWT subjects, usernames, client ids) end up inside MQTT topic
 * names, so anything that would change the topic's structure or break
 * Mosquitto's rules is refused: wildcards, level separators, NUL, control
 * characters and invalid UTF-8 (MQTT 3.1.1 §1.5.3).
 */
#include <string.h>

#include "tributary/jwt.h"

const char *tjwt_identity_problem(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t len;

	if (!s || !*s)
		return "is empty";
	len = strlen(s);
	if (len > TJWT_IDENTITY_MAX)
		return "is too long";
	while (*p) {
		unsigned c = *p;
		size_t n;
		unsigned cp;

		if (c == '+')
			return "contains '+'";
		if (c == '#')
			return "contains '#'";
		if (c == '/')
			return "contains '/'";
		if (c < 0x20 || c == 0x7f)
			return "contains a control character";
		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return "is not valid UTF-8";
		}
		for (size_t i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return "is not valid UTF-8";
			cp = cp << 6 | (p[i] & 0x3f);
		}
		/* overlong forms, surrogates, beyond U+10FFFF */
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return "is not valid UTF-8";
		if (cp >= 0x80 && cp <= 0x9f)
			return "contains a control character";
		p += n + 1;
	}
	return NULL;
}

bool tjwt_identity_is_safe(const char *s)
{
	return tjwt_identity_problem(s) == NULL;
}
