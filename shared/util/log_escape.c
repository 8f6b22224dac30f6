/* Client-controlled strings made safe and unambiguous inside one log line. */
#include <stdio.h>
#include <string.h>

#include "tributary/util.h"

/* Code points that are valid UTF-8 and yet must not reach a log line raw:
 * C1 controls (U+0085 is a line break to some readers), line and paragraph
 * separators, bidirectional controls (which reorder what a reader sees) and
 * other invisible format characters. */
static bool log__escaped_cp(uint32_t cp)
{
	return (cp >= 0x80 && cp <= 0x9f) || cp == 0xad || cp == 0x34f || cp == 0x61c ||
	       cp == 0x180e || (cp >= 0x200b && cp <= 0x200f) || (cp >= 0x2028 && cp <= 0x202e) ||
	       (cp >= 0x2060 && cp <= 0x206f) || cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb) ||
	       cp == 0xfffe || cp == 0xffff || (cp >= 0xe0000 && cp <= 0xe007f);
}

const char *tb_log_escape(char *buf, size_t len, const char *s)
{
	static const char marker[] = "\\...";
	size_t cap, o = 0, cut = 0, slen;

	if (len < sizeof(marker))
		return len ? (buf[0] = '\0', buf) : "";
	cap = len - 1;
	slen = s ? strlen(s) : 0;
	for (size_t i = 0; i < slen;) {
		char piece[16];
		size_t plen, step = 1;
		unsigned char c = (unsigned char)s[i];
		uint32_t cp;

		if (c == '\\' || c == '\'' || c == '"') {
			piece[0] = '\\';
			piece[1] = (char)c;
			plen = 2;
		} else if (c >= 0x20 && c < 0x7f) {
			piece[0] = (char)c;
			plen = 1;
		} else if (c < 0x80 || !(step = tb_utf8_decode(s + i, slen - i, &cp))) {
			/* C0, DEL, or a byte that does not start valid UTF-8 */
			plen = (size_t)snprintf(piece, sizeof(piece), "\\x%02x", c);
			step = 1;
		} else if (log__escaped_cp(cp)) {
			plen = (size_t)snprintf(piece, sizeof(piece), "\\u{%04x}", (unsigned)cp);
		} else {
			memcpy(piece, s + i, step);
			plen = step;
		}
		if (o + plen > cap) {
			/* back to the last piece after which the marker fits */
			memcpy(buf + cut, marker, sizeof(marker) - 1);
			o = cut + sizeof(marker) - 1;
			break;
		}
		memcpy(buf + o, piece, plen);
		o += plen;
		i += step;
		if (o + sizeof(marker) - 1 <= cap)
			cut = o;
	}
	buf[o] = '\0';
	return buf;
}
