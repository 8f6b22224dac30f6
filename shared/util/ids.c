/* Event ids and timestamps. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tributary/util.h"

uint64_t tb_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t tb_monotonic_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void tb_uuid7(char out[TB_UUID_LEN + 1])
{
	uint8_t b[16];
	uint64_t ms = tb_now_ms();

	/* arc4random is per-thread and never blocks: fine on a broker thread. */
	arc4random_buf(b + 6, 10);
	for (int i = 0; i < 6; i++)
		b[i] = (uint8_t)(ms >> (40 - 8 * i));
	b[6] = (uint8_t)(0x70 | (b[6] & 0x0f));
	b[8] = (uint8_t)(0x80 | (b[8] & 0x3f));
	/* By hand rather than snprintf: this runs once per event on the
	 * broker's main thread. */
	static const char hex[] = "0123456789abcdef";
	char *p = out;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			*p++ = '-';
		*p++ = hex[b[i] >> 4];
		*p++ = hex[b[i] & 0x0f];
	}
	*p = '\0';
}

void tb_time_rfc3339(char out[TB_TIME_LEN + 1])
{
	/* The date and time of day change once a second: formatted then, per
	 * thread, and only the milliseconds every call. */
	static _Thread_local time_t cached_sec = -1;
	static _Thread_local char base[20];
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != cached_sec) {
		struct tm tm;
		char tmp[32];
		gmtime_r(&ts.tv_sec, &tm);
		strftime(tmp, sizeof(tmp), "%Y-%m-%dT%H:%M:%S", &tm);
		memcpy(base, tmp, 19);
		cached_sec = ts.tv_sec;
	}
	int ms = (int)(ts.tv_nsec / 1000000);
	memcpy(out, base, 19);
	out[19] = '.';
	out[20] = (char)('0' + ms / 100);
	out[21] = (char)('0' + ms / 10 % 10);
	out[22] = (char)('0' + ms % 10);
	out[23] = 'Z';
	out[24] = '\0';
}

static bool ids__digits(const char *s, int n)
{
	for (int i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* Two digits already checked by ids__digits (atoi costs a locale-aware
 * strtol call per field). */
static int ids__num2(const char *s)
{
	return (s[0] - '0') * 10 + (s[1] - '0');
}

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM). */
bool tb_time_is_rfc3339(const char *s)
{
	if (strlen(s) < 20 || !ids__digits(s, 4) || s[4] != '-' || !ids__digits(s + 5, 2) ||
	    s[7] != '-' || !ids__digits(s + 8, 2) || (s[10] != 'T' && s[10] != 't') ||
	    !ids__digits(s + 11, 2) || s[13] != ':' || !ids__digits(s + 14, 2) || s[16] != ':' ||
	    !ids__digits(s + 17, 2))
		return false;
	int mon = ids__num2(s + 5), day = ids__num2(s + 8), hh = ids__num2(s + 11),
	    mm = ids__num2(s + 14), ss = ids__num2(s + 17);
	if (mon < 1 || mon > 12 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60)
		return false;
	const char *p = s + 19;
	if (*p == '.') {
		p++;
		if (!ids__digits(p, 1))
			return false;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
		return true;
	if ((*p == '+' || *p == '-') && ids__digits(p + 1, 2) && p[3] == ':' &&
	    ids__digits(p + 4, 2) && p[6] == '\0')
		return ids__num2(p + 1) <= 23 && ids__num2(p + 4) <= 59;
	return false;
}

size_t tb_utf8_decode(const char *str, size_t len, uint32_t *cp)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned c = len ? s[0] : 0x80;
	size_t n;
	uint32_t v;

	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if ((c & 0xe0) == 0xc0) {
		n = 1;
		v = c & 0x1f;
	} else if ((c & 0xf0) == 0xe0) {
		n = 2;
		v = c & 0x0f;
	} else if ((c & 0xf8) == 0xf0) {
		n = 3;
		v = c & 0x07;
	} else {
		return 0;
	}
	if (n >= len)
		return 0;
	for (size_t k = 1; k <= n; k++) {
		if ((s[k] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[k] & 0x3f);
	}
	if ((n == 1 && v < 0x80) || (n == 2 && v < 0x800) || (n == 3 && v < 0x10000) ||
	    v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n + 1;
}

bool tb_utf8_valid(const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0;
	while (i < len) {
		/* Events are mostly ASCII: eight bytes at a time while they are. */
		while (len - i >= 8) {
			uint64_t w;
			memcpy(&w, s + i, 8);
			if (w & 0x8080808080808080ull)
				break;
			i += 8;
		}
		if (i >= len)
			break;
		uint32_t cp;
		size_t n = tb_utf8_decode(str + i, len - i, &cp);
		if (!n)
			return false;
		i += n;
	}
	return true;
}
