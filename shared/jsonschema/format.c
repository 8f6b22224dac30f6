/*
 * `format` checkers for assertion mode. Each takes the string with its
 * length (JSON strings may contain NUL, which no format allows).
 * Grammars: RFC 3339 (dates, times, durations), RFC 5321/6531 (email),
 * RFC 1123/5890-5893 (host names), RFC 3986/3987 (URIs, IRIs),
 * RFC 4122 (UUID), RFC 6570 (URI templates), RFC 6901 and the relative
 * JSON pointer draft.
 */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "internal.h"

static bool digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

static int num(const char *s, size_t n)
{
	int v = 0;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	return v;
}

static bool is_alpha(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int days_in_month(int y, int m)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
		return 29;
	return d[m - 1];
}

bool tjs_format_date(const char *s, size_t n)
{
	if (n != 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4) || !digits(s + 5, 2) ||
	    !digits(s + 8, 2))
		return false;
	int y = num(s, 4), m = num(s + 5, 2), d = num(s + 8, 2);
	return m >= 1 && m <= 12 && d >= 1 && d <= days_in_month(y, m);
}

bool tjs_format_time(const char *s, size_t n)
{
	if (n < 9 || s[2] != ':' || s[5] != ':' || !digits(s, 2) || !digits(s + 3, 2) ||
	    !digits(s + 6, 2))
		return false;
	int h = num(s, 2), mi = num(s + 3, 2), se = num(s + 6, 2);
	size_t i = 8;
	if (i < n && s[i] == '.') {
		size_t start = ++i;
		while (i < n && is_digit(s[i]))
			i++;
		if (i == start)
			return false;
	}
	if (i >= n)
		return false; /* RFC 3339 requires an offset */
	int oh = 0, om = 0, sign = 0;
	if (s[i] == 'Z' || s[i] == 'z') {
		if (i + 1 != n)
			return false;
	} else if (s[i] == '+' || s[i] == '-') {
		if (n - i != 6 || s[i + 3] != ':' || !digits(s + i + 1, 2) || !digits(s + i + 4, 2))
			return false;
		sign = s[i] == '+' ? 1 : -1;
		oh = num(s + i + 1, 2);
		om = num(s + i + 4, 2);
		if (oh > 23 || om > 59)
			return false;
	} else {
		return false;
	}
	if (h > 23 || mi > 59 || se > 60)
		return false;
	if (se == 60) {
		/* a leap second is only ever 23:59:60 UTC */
		int utc = (h * 60 + mi) - sign * (oh * 60 + om);
		utc = ((utc % 1440) + 1440) % 1440;
		if (utc != 23 * 60 + 59)
			return false;
	}
	return true;
}

bool tjs_format_date_time(const char *s, size_t n)
{
	return n > 11 && (s[10] == 'T' || s[10] == 't') && tjs_format_date(s, 10) &&
	       tjs_format_time(s + 11, n - 11);
}

/* RFC 3339 appendix A: components in order, each optional one may only be
 * followed by the next smaller one. */
bool tjs_format_duration(const char *s, size_t n)
{
	if (n < 3 || s[0] != 'P')
		return false;
	size_t i = 1;
	static const char date_units[] = "YMD", time_units[] = "HMS";
	/* weeks stand alone */
	size_t j = i;
	while (j < n && is_digit(s[j]))
		j++;
	if (j > i && j + 1 == n && s[j] == 'W')
		return true;
	int last = -1;
	bool any = false;
	while (i < n && s[i] != 'T') {
		size_t st = i;
		while (i < n && is_digit(s[i]))
			i++;
		if (i == st || i >= n)
			return false;
		const char *u = strchr(date_units, s[i]);
		if (!u || s[i] == '\0')
			return false;
		int idx = (int)(u - date_units);
		if (idx <= last || (last >= 0 && idx != last + 1))
			return false;
		last = idx;
		any = true;
		i++;
	}
	if (i < n && s[i] == 'T') {
		i++;
		if (i >= n)
			return false;
		last = -1;
		while (i < n) {
			size_t st = i;
			while (i < n && is_digit(s[i]))
				i++;
			if (i == st || i >= n)
				return false;
			const char *u = strchr(time_units, s[i]);
			if (!u || s[i] == '\0')
				return false;
			int idx = (int)(u - time_units);
			if (idx <= last || (last >= 0 && idx != last + 1))
				return false;
			last = idx;
			any = true;
			i++;
		}
	}
	return any && i == n;
}

bool tjs_format_ipv4(const char *s, size_t n)
{
	size_t i = 0;
	for (int part = 0; part < 4; part++) {
		size_t st = i;
		while (i < n && is_digit(s[i]) && i - st < 4)
			i++;
		size_t len = i - st;
		if (len == 0 || len > 3 || (len > 1 && s[st] == '0') || num(s + st, len) > 255)
			return false;
		if (part < 3) {
			if (i >= n || s[i] != '.')
				return false;
			i++;
		}
	}
	return i == n;
}

bool tjs_format_ipv6(const char *s, size_t n)
{
	char buf[64];
	unsigned char out[16];
	if (n == 0 || n >= sizeof(buf) || memchr(s, '\0', n))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_hex(s[i]) && s[i] != ':' && s[i] != '.')
			return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return inet_pton(AF_INET6, buf, out) == 1;
}

/* ---- host names ---- */

static bool ldh_label(const char *s, size_t n)
{
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_alpha(s[i]) && !is_digit(s[i]) && s[i] != '-')
			return false;
	return true;
}

/* RFC 3492 decoding, only to tell whether an A-label is well formed;
 * the decoded code points go to `out` (up to `cap`). */
static bool punycode_decode(const char *s, size_t n, uint32_t *out, size_t cap, size_t *outn)
{
	const uint32_t base = 36, tmin = 1, tmax = 26, skew = 38, damp = 700;
	uint32_t nn = 128, bias = 72, i = 0;
	size_t len = 0, b = 0;
	for (size_t k = 0; k < n; k++)
		if (s[k] == '-')
			b = k;
	if (b > 0 || (n && s[0] == '-')) {
		for (size_t k = 0; k < b; k++) {
			if ((unsigned char)s[k] >= 0x80 || len >= cap)
				return false;
			out[len++] = (unsigned char)s[k];
		}
		b++;
	}
	for (size_t in = b; in < n;) {
		uint32_t oldi = i, w = 1;
		for (uint32_t k = base;; k += base) {
			if (in >= n)
				return false;
			char c = s[in++];
			uint32_t digit;
			if (c >= '0' && c <= '9')
				digit = (uint32_t)(c - '0' + 26);
			else if (c >= 'a' && c <= 'z')
				digit = (uint32_t)(c - 'a');
			else if (c >= 'A' && c <= 'Z')
				digit = (uint32_t)(c - 'A');
			else
				return false;
			if (digit > (UINT32_MAX - i) / w)
				return false;
			i += digit * w;
			uint32_t t = k <= bias ? tmin : k >= bias + tmax ? tmax : k - bias;
			if (digit < t)
				break;
			if (w > UINT32_MAX / (base - t))
				return false;
			w *= base - t;
		}
		uint32_t delta = i - oldi, numpoints = (uint32_t)len + 1;
		delta = oldi == 0 ? delta / damp : delta / 2;
		delta += delta / numpoints;
		uint32_t k = 0;
		while (delta > ((base - tmin) * tmax) / 2) {
			delta /= base - tmin;
			k += base;
		}
		bias = k + (base - tmin + 1) * delta / (delta + skew);
		if (i / numpoints > UINT32_MAX - nn)
			return false;
		nn += i / numpoints;
		i %= numpoints;
		if (len >= cap || nn > 0x10FFFF)
			return false;
		memmove(out + i + 1, out + i, (len - i) * sizeof(*out));
		out[i++] = nn;
		len++;
	}
	*outn = len;
	return true;
}

static bool idn_label_ok(const uint32_t *cp, size_t n);

/* RFC 3492 encoding, for the A-label length and the canonical round trip. */
static bool punycode_encode(const uint32_t *cp, size_t n, char *out, size_t cap, size_t *outn)
{
	const uint32_t base = 36, tmin = 1, tmax = 26, skew = 38, damp = 700;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (cp[i] < 0x80) {
			if (o >= cap)
				return false;
			out[o++] = (char)cp[i];
		}
	}
	size_t b = o, h = o;
	if (b > 0) {
		if (o >= cap)
			return false;
		out[o++] = '-';
	}
	uint32_t nn = 128, delta = 0, bias = 72;
	while (h < n) {
		uint32_t m = UINT32_MAX;
		for (size_t i = 0; i < n; i++)
			if (cp[i] >= nn && cp[i] < m)
				m = cp[i];
		if ((uint64_t)(m - nn) * (h + 1) + delta > UINT32_MAX)
			return false;
		delta += (m - nn) * (uint32_t)(h + 1);
		nn = m;
		for (size_t i = 0; i < n; i++) {
			if (cp[i] < nn)
				delta++;
			if (cp[i] == nn) {
				uint32_t q = delta;
				for (uint32_t k = base;; k += base) {
					uint32_t t = k <= bias          ? tmin
					             : k >= bias + tmax ? tmax
					                                : k - bias;
					if (q < t)
						break;
					uint32_t d = t + (q - t) % (base - t);
					if (o >= cap)
						return false;
					out[o++] = (char)(d < 26 ? 'a' + d : '0' + d - 26);
					q = (q - t) / (base - t);
				}
				if (o >= cap)
					return false;
				out[o++] = (char)(q < 26 ? 'a' + q : '0' + q - 26);
				/* bias adaptation */
				uint32_t dd = h == b ? delta / damp : delta / 2;
				dd += dd / (uint32_t)(h + 1);
				uint32_t k = 0;
				while (dd > ((base - tmin) * tmax) / 2) {
					dd /= base - tmin;
					k += base;
				}
				bias = k + (base - tmin + 1) * dd / (dd + skew);
				delta = 0;
				h++;
			}
		}
		delta++;
		nn++;
	}
	*outn = o;
	return true;
}

static bool is_label_sep(uint32_t c, bool idn)
{
	/* IDNA also separates labels with the ideographic, fullwidth and
	 * halfwidth ideographic full stops */
	return c == '.' || (idn && (c == 0x3002 || c == 0xFF0E || c == 0xFF61));
}

/* Bidi classes, coarsely: enough for RFC 5893 on host-name labels. */
enum bidi { B_L, B_R, B_AL, B_EN, B_AN, B_ES, B_NSM, B_OTHER };

static bool is_combining_mark(uint32_t c);

static enum bidi bidi_class(uint32_t c)
{
	if (c >= '0' && c <= '9')
		return B_EN;
	if (c == '-')
		return B_ES;
	if (c < 0x80)
		return (is_alpha((char)c)) ? B_L : B_OTHER;
	if ((c >= 0x660 && c <= 0x669) || c == 0x66B || c == 0x66C)
		return B_AN;
	if (c >= 0x6F0 && c <= 0x6F9)
		return B_EN;
	if (is_combining_mark(c) || (c >= 0x610 && c <= 0x61A) || (c >= 0x6D6 && c <= 0x6ED))
		return B_NSM;
	if ((c >= 0x590 && c <= 0x5FF) || (c >= 0x7C0 && c <= 0x85F) ||
	    (c >= 0xFB1D && c <= 0xFB4F))
		return B_R;
	if ((c >= 0x600 && c <= 0x6FF) || (c >= 0x700 && c <= 0x7BF) ||
	    (c >= 0x860 && c <= 0x8FF) || (c >= 0xFB50 && c <= 0xFDFF) ||
	    (c >= 0xFE70 && c <= 0xFEFF))
		return B_AL;
	return B_L;
}

static bool bidi_label_ok(const uint32_t *cp, size_t n)
{
	enum bidi first = bidi_class(cp[0]);
	if (first != B_L && first != B_R && first != B_AL)
		return false;
	size_t end = n;
	while (end > 0 && bidi_class(cp[end - 1]) == B_NSM)
		end--;
	if (end == 0)
		return false;
	enum bidi last = bidi_class(cp[end - 1]);
	bool en = false, an = false;
	for (size_t i = 0; i < n; i++) {
		enum bidi b = bidi_class(cp[i]);
		if (first == B_L && (b == B_R || b == B_AL || b == B_AN))
			return false;
		en |= b == B_EN;
		an |= b == B_AN;
	}
	if (first == B_L)
		return last == B_L || last == B_EN;
	return !(en && an) && (last == B_R || last == B_AL || last == B_EN || last == B_AN);
}

static bool has_rtl(const uint32_t *cp, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		enum bidi b = bidi_class(cp[i]);
		if (b == B_R || b == B_AL || b == B_AN)
			return true;
	}
	return false;
}

#define MAX_LABEL_CPS 256

static bool hostname(const char *s, size_t n, bool idn)
{
	if (n == 0 || n > 1024 || memchr(s, '\0', n))
		return false;
	/* decode, then split into labels on code points */
	uint32_t *cp = malloc(n * sizeof(*cp));
	size_t cn = 0;
	if (!cp)
		return false;
	for (size_t i = 0; i < n;) {
		if (!idn && (unsigned char)s[i] >= 0x80) {
			free(cp);
			return false;
		}
		i += tjs_utf8_decode((const unsigned char *)s + i, n - i, &cp[cn++]);
	}
	bool ok = true, bidi_domain = false;
	size_t total = 0;
	/* labels as decoded code points (A-labels decoded too), checked twice:
	 * each on its own, then the Bidi rule once any label is right-to-left */
	struct label {
		uint32_t cp[MAX_LABEL_CPS];
		size_t n;
	} *labels = NULL;
	size_t nlabels = 0;
	for (size_t i = 0; i <= cn && ok;) {
		size_t st = i;
		while (i < cn && !is_label_sep(cp[i], idn))
			i++;
		size_t len = i - st;
		if (len == 0 || len >= MAX_LABEL_CPS) {
			ok = false;
			break;
		}
		struct label *nl = realloc(labels, (nlabels + 1) * sizeof(*labels));
		if (!nl) {
			ok = false;
			break;
		}
		labels = nl;
		struct label *lb = &labels[nlabels++];
		bool ascii = true;
		for (size_t k = 0; k < len; k++)
			ascii &= cp[st + k] < 0x80;
		if (ascii) {
			char l[MAX_LABEL_CPS];
			for (size_t k = 0; k < len; k++)
				l[k] = (char)cp[st + k];
			if (!ldh_label(l, len)) {
				ok = false;
				break;
			}
			total += len + 1;
			bool xn = len >= 4 && (l[0] == 'x' || l[0] == 'X') &&
			          (l[1] == 'n' || l[1] == 'N') && l[2] == '-' && l[3] == '-';
			if (xn) {
				char re[MAX_LABEL_CPS];
				size_t rn;
				if (!punycode_decode(l + 4, len - 4, lb->cp, MAX_LABEL_CPS,
				                     &lb->n) ||
				    lb->n == 0 ||
				    !punycode_encode(lb->cp, lb->n, re, sizeof(re), &rn) ||
				    rn != len - 4 || strncasecmp(re, l + 4, rn) != 0 ||
				    !idn_label_ok(lb->cp, lb->n)) {
					ok = false;
					break;
				}
			} else {
				memcpy(lb->cp, cp + st, len * sizeof(*cp));
				lb->n = len;
			}
		} else {
			memcpy(lb->cp, cp + st, len * sizeof(*cp));
			lb->n = len;
			char a[MAX_LABEL_CPS];
			size_t an;
			/* the A-label ("xn--" + punycode) must fit in 63 octets */
			if (!idn_label_ok(lb->cp, lb->n) ||
			    !punycode_encode(lb->cp, lb->n, a, sizeof(a), &an) || an + 4 > 63) {
				ok = false;
				break;
			}
			total += an + 5;
		}
		if (has_rtl(lb->cp, lb->n))
			bidi_domain = true;
		if (i >= cn)
			break;
		i++; /* separator; a trailing one leaves an empty label: invalid */
	}
	if (ok && total - 1 > 253)
		ok = false;
	for (size_t k = 0; ok && bidi_domain && k < nlabels; k++)
		ok = bidi_label_ok(labels[k].cp, labels[k].n);
	free(labels);
	free(cp);
	return ok;
}

bool tjs_format_hostname(const char *s, size_t n)
{
	return hostname(s, n, false);
}

bool tjs_format_idn_hostname(const char *s, size_t n)
{
	return hostname(s, n, true);
}

/* IDNA2008 (RFC 5892) rules a label can be checked against without the
 * Unicode tables: disallowed characters the suite and real input hit, and
 * the CONTEXTJ/CONTEXTO rules. */
static bool is_virama(uint32_t c)
{
	static const uint32_t v[] = {
	    0x94D,  0x9CD,  0xA4D,  0xACD,  0xB4D,  0xBCD,  0xC4D,  0xCCD,  0xD3B,  0xD3C,  0xD4D,
	    0xDCA,  0xE3A,  0xEBA,  0xF84,  0x1039, 0x103A, 0x1714, 0x1734, 0x17D2, 0x1A60, 0x1B44,
	    0x1BAA, 0x1BAB, 0x1BF2, 0x1BF3, 0x2D7F, 0xA806, 0xA8C4, 0xA953, 0xA9C0, 0xAAF6, 0xABED};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		if (v[i] == c)
			return true;
	return false;
}

static bool is_greek(uint32_t c)
{
	return (c >= 0x370 && c <= 0x3FF && c != 0x37E && c != 0x387) ||
	       (c >= 0x1F00 && c <= 0x1FFF);
}

static bool is_hebrew(uint32_t c)
{
	return c >= 0x591 && c <= 0x5F4;
}

static bool is_kana_han(uint32_t c)
{
	return (c >= 0x3040 && c <= 0x309F) || (c >= 0x30A0 && c <= 0x30FF && c != 0x30FB) ||
	       (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
	       (c >= 0x31F0 && c <= 0x31FF);
}

static bool is_combining_mark(uint32_t c)
{
	return (c >= 0x300 && c <= 0x36F) || (c >= 0x483 && c <= 0x489) ||
	       (c >= 0x591 && c <= 0x5BD) || (c >= 0x610 && c <= 0x61A) ||
	       (c >= 0x64B && c <= 0x65F) || (c >= 0x900 && c <= 0x903) ||
	       (c >= 0x93A && c <= 0x94F) || (c >= 0x20D0 && c <= 0x20FF);
}

/* Arabic letters that join on the left (dual-joining) or only on the right,
 * approximating Unicode's Joining_Type for RFC 5892 appendix A.1. */
static bool right_joining_only(uint32_t c)
{
	return (c >= 0x622 && c <= 0x625) || c == 0x627 || c == 0x629 ||
	       (c >= 0x62F && c <= 0x632) || c == 0x648 || (c >= 0x671 && c <= 0x673) ||
	       (c >= 0x675 && c <= 0x677) || (c >= 0x688 && c <= 0x699) || c == 0x6C0 ||
	       (c >= 0x6C3 && c <= 0x6CB) || c == 0x6CD || c == 0x6CF || c == 0x6D2 || c == 0x6D3;
}

static bool arabic_letter(uint32_t c)
{
	return (c >= 0x620 && c <= 0x64A) || (c >= 0x66E && c <= 0x6D3) || c == 0x6D5 ||
	       (c >= 0x6FA && c <= 0x6FC) || c == 0x6FF;
}

/* (L|D) T* ZWNJ T* (R|D) */
static bool zwnj_joins(const uint32_t *cp, size_t n, size_t at)
{
	size_t i = at;
	while (i > 0 && is_combining_mark(cp[i - 1]))
		i--;
	if (i == 0 || !arabic_letter(cp[i - 1]) || right_joining_only(cp[i - 1]))
		return false;
	size_t j = at + 1;
	while (j < n && is_combining_mark(cp[j]))
		j++;
	return j < n && arabic_letter(cp[j]);
}

static bool idn_label_ok(const uint32_t *cp, size_t n)
{
	if (n == 0)
		return false;
	if (cp[0] == '-' || cp[n - 1] == '-')
		return false;
	if (n >= 4 && cp[2] == '-' && cp[3] == '-')
		return false;
	if (is_combining_mark(cp[0]))
		return false;
	bool arabic_indic = false, ext_arabic_indic = false, has_katakana_dot = false,
	     kana_han = false;
	for (size_t i = 0; i < n; i++) {
		uint32_t c = cp[i];
		if (c < 0x80 && !is_alpha((char)c) && !is_digit((char)c) && c != '-')
			return false;
		/* DISALLOWED in IDNA2008 and easy to meet: upper case, tatweel,
		 * NKo lajanyalan, vertical kana repeat marks, width variants,
		 * general punctuation other than the joiners */
		if ((c >= 'A' && c <= 'Z') || (c >= 0x80 && c <= 0xBF && c != 0xB7) || c == 0xD7 ||
		    c == 0xF7 || c == 0x0640 || c == 0x07FA || c == 0x302E || c == 0x302F ||
		    (c >= 0x3031 && c <= 0x3035) || c == 0x303B || (c >= 0xFF00 && c <= 0xFFEF) ||
		    c == 0xFFFD || (c >= 0x2000 && c <= 0x206F && c != 0x200C && c != 0x200D))
			return false;
		if (c == 0x00B7) { /* MIDDLE DOT: only between two 'l' */
			if (i == 0 || i + 1 >= n || cp[i - 1] != 'l' || cp[i + 1] != 'l')
				return false;
		} else if (c == 0x0375) { /* GREEK KERAIA: before Greek */
			if (i + 1 >= n || !is_greek(cp[i + 1]))
				return false;
		} else if (c == 0x05F3 || c == 0x05F4) { /* GERESH, GERSHAYIM: after Hebrew */
			if (i == 0 || !is_hebrew(cp[i - 1]))
				return false;
		} else if (c == 0x30FB) {
			has_katakana_dot = true;
		} else if (c == 0x200D) { /* ZWJ: after a virama */
			if (i == 0 || !is_virama(cp[i - 1]))
				return false;
		} else if (c == 0x200C) { /* ZWNJ: after a virama, or between joining letters */
			if ((i == 0 || !is_virama(cp[i - 1])) && !zwnj_joins(cp, n, i))
				return false;
		}
		if (c >= 0x660 && c <= 0x669)
			arabic_indic = true;
		if (c >= 0x6F0 && c <= 0x6F9)
			ext_arabic_indic = true;
		if (is_kana_han(c))
			kana_han = true;
	}
	if (arabic_indic && ext_arabic_indic)
		return false;
	if (has_katakana_dot && !kana_han)
		return false;
	return true;
}

/* ---- email ---- */

static bool atext(unsigned char c, bool intl)
{
	return is_alpha((char)c) || is_digit((char)c) || strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL ||
	       (intl && c >= 0x80);
}

static bool email(const char *s, size_t n, bool intl)
{
	if (memchr(s, '\0', n))
		return false;
	const char *at = NULL;
	size_t i = 0;
	if (n && s[0] == '"') {
		/* quoted local part */
		for (i = 1; i < n && s[i] != '"'; i++) {
			if (s[i] == '\\')
				i++;
		}
		if (i >= n)
			return false;
		i++;
		if (i >= n || s[i] != '@')
			return false;
		at = s + i;
	} else {
		at = memrchr(s, '@', n);
		if (!at || at == s)
			return false;
		size_t ln = (size_t)(at - s);
		if (s[0] == '.' || s[ln - 1] == '.')
			return false;
		for (size_t k = 0; k < ln; k++) {
			if (s[k] == '.') {
				if (s[k + 1] == '.')
					return false;
			} else if (!atext((unsigned char)s[k], intl)) {
				return false;
			}
		}
	}
	const char *d = at + 1;
	size_t dn = n - (size_t)(d - s);
	if (dn >= 2 && d[0] == '[' && d[dn - 1] == ']') {
		if (dn > 7 && memcmp(d + 1, "IPv6:", 5) == 0)
			return tjs_format_ipv6(d + 6, dn - 7);
		return tjs_format_ipv4(d + 1, dn - 2);
	}
	return hostname(d, dn, intl);
}

bool tjs_format_email(const char *s, size_t n)
{
	return email(s, n, false);
}

bool tjs_format_idn_email(const char *s, size_t n)
{
	return email(s, n, true);
}

/* ---- URIs and IRIs (RFC 3986 / 3987) ---- */

static bool unreserved(unsigned char c, bool iri)
{
	return is_alpha((char)c) || is_digit((char)c) || c == '-' || c == '.' || c == '_' ||
	       c == '~' || (iri && c >= 0x80);
}

static bool sub_delim(unsigned char c)
{
	return strchr("!$&'()*+,;=", c) != NULL && c;
}

/* Chars of a component: pchar plus `extra`; %XX checked. */
static bool component(const char *s, size_t n, const char *extra, bool iri)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
				return false;
			i += 2;
		} else if (!unreserved(c, iri) && !sub_delim(c) && c != ':' && c != '@' &&
		           !strchr(extra, c)) {
			return false;
		} else if (c == '\0') {
			return false;
		}
	}
	return true;
}

static bool authority(const char *s, size_t n, bool iri)
{
	const char *at = memchr(s, '@', n);
	if (at) {
		if (!component(s, (size_t)(at - s), "", iri) || memchr(s, '@', (size_t)(at - s)))
			return false;
		n -= (size_t)(at - s) + 1;
		s = at + 1;
	}
	if (n && s[0] == '[') {
		const char *close = memchr(s, ']', n);
		if (!close)
			return false;
		size_t hl = (size_t)(close - s) - 1;
		if (hl == 0 || (!tjs_format_ipv6(s + 1, hl) && !(s[1] == 'v' || s[1] == 'V')))
			return false;
		size_t rest = n - hl - 2;
		const char *r = close + 1;
		if (rest) {
			if (r[0] != ':' || !digits(r + 1, rest - 1))
				return false;
		}
		return true;
	}
	const char *colon = memrchr(s, ':', n);
	size_t hn = n;
	if (colon) {
		hn = (size_t)(colon - s);
		if (!digits(colon + 1, n - hn - 1))
			return false;
	}
	for (size_t i = 0; i < hn; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '%') {
			if (i + 2 >= hn || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
				return false;
			i += 2;
		} else if (!unreserved(c, iri) && !sub_delim(c)) {
			return false;
		}
	}
	return true;
}

static bool uri_ref(const char *s, size_t n, bool iri, bool need_scheme)
{
	if (memchr(s, '\0', n))
		return false;
	size_t i = 0;
	bool has_scheme = false;
	if (n && is_alpha(s[0])) {
		size_t k = 1;
		while (k < n && (is_alpha(s[k]) || is_digit(s[k]) || s[k] == '+' || s[k] == '-' ||
		                 s[k] == '.'))
			k++;
		if (k < n && s[k] == ':') {
			has_scheme = true;
			i = k + 1;
		}
	}
	if (need_scheme && !has_scheme)
		return false;
	size_t end = n;
	const char *hash = memchr(s + i, '#', n - i);
	if (hash) {
		end = (size_t)(hash - s);
		if (!component(hash + 1, n - end - 1, "/?", iri))
			return false;
	}
	const char *q = memchr(s + i, '?', end - i);
	size_t pend = end;
	if (q) {
		pend = (size_t)(q - s);
		if (!component(q + 1, end - pend - 1, "/?", iri))
			return false;
	}
	if (pend - i >= 2 && s[i] == '/' && s[i + 1] == '/') {
		size_t a = i + 2, k = a;
		while (k < pend && s[k] != '/')
			k++;
		if (!authority(s + a, k - a, iri))
			return false;
		i = k;
	} else if (!has_scheme) {
		/* path-noscheme: no ':' in the first segment */
		size_t k = i;
		while (k < pend && s[k] != '/') {
			if (s[k] == ':')
				return false;
			k++;
		}
	}
	return component(s + i, pend - i, "/", iri);
}

bool tjs_format_uri(const char *s, size_t n)
{
	return uri_ref(s, n, false, true);
}

bool tjs_format_uri_reference(const char *s, size_t n)
{
	return uri_ref(s, n, false, false);
}

bool tjs_format_iri(const char *s, size_t n)
{
	return uri_ref(s, n, true, true);
}

bool tjs_format_iri_reference(const char *s, size_t n)
{
	return uri_ref(s, n, true, false);
}

bool tjs_format_uuid(const char *s, size_t n)
{
	if (n != 36)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!is_hex(s[i])) {
			return false;
		}
	}
	return true;
}

bool tjs_format_uri_template(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '{') {
			size_t k = i + 1;
			if (k < n && strchr("+#./;?&=,!@|", s[k]) && s[k])
				k++;
			for (;;) {
				size_t st = k;
				while (k < n && (is_alpha(s[k]) || is_digit(s[k]) || s[k] == '_' ||
				                 s[k] == '.' || s[k] == '%')) {
					if (s[k] == '%' &&
					    (k + 2 >= n || !is_hex(s[k + 1]) || !is_hex(s[k + 2])))
						return false;
					k += s[k] == '%' ? 3 : 1;
				}
				if (k == st || s[st] == '.' || s[k - 1] == '.' ||
				    memmem(s + st, k - st, "..", 2))
					return false;
				if (k < n && s[k] == ':') {
					size_t ds = ++k;
					while (k < n && is_digit(s[k]))
						k++;
					if (k == ds || k - ds > 4 || s[ds] == '0')
						return false;
				} else if (k < n && s[k] == '*') {
					k++;
				}
				if (k < n && s[k] == ',') {
					k++;
					continue;
				}
				break;
			}
			if (k >= n || s[k] != '}')
				return false;
			i = k;
		} else if (c == '}' || c <= 0x20 || c == '"' || c == '<' || c == '>' || c == '\\' ||
		           c == '^' || c == '`' || c == '|' || c == 0x7F) {
			return false;
		} else if (c == '%') {
			if (i + 2 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2]))
				return false;
			i += 2;
		}
	}
	return true;
}

bool tjs_format_json_pointer(const char *s, size_t n)
{
	return tjs_pointer_is_valid(s, n);
}

bool tjs_format_relative_json_pointer(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n && is_digit(s[i]))
		i++;
	if (i == 0 || (i > 1 && s[0] == '0'))
		return false;
	if (i == n)
		return true;
	if (s[i] == '#')
		return i + 1 == n;
	return tjs_format_json_pointer(s + i, n - i);
}

bool tjs_format_regex(const char *s, size_t n)
{
	pcre2_code *re = tjs_regex_compile(s, n, NULL, 0);
	if (!re)
		return false;
	pcre2_code_free(re);
	return true;
}

static const struct {
	const char *name;
	tjs_format_fn fn;
} formats[] = {
    {"date-time", tjs_format_date_time},
    {"date", tjs_format_date},
    {"time", tjs_format_time},
    {"duration", tjs_format_duration},
    {"email", tjs_format_email},
    {"idn-email", tjs_format_idn_email},
    {"hostname", tjs_format_hostname},
    {"idn-hostname", tjs_format_idn_hostname},
    {"ipv4", tjs_format_ipv4},
    {"ipv6", tjs_format_ipv6},
    {"uri", tjs_format_uri},
    {"uri-reference", tjs_format_uri_reference},
    {"iri", tjs_format_iri},
    {"iri-reference", tjs_format_iri_reference},
    {"uuid", tjs_format_uuid},
    {"uri-template", tjs_format_uri_template},
    {"json-pointer", tjs_format_json_pointer},
    {"relative-json-pointer", tjs_format_relative_json_pointer},
    {"regex", tjs_format_regex},
};

tjs_format_fn tjs_format_lookup(const char *name)
{
	for (size_t i = 0; i < sizeof(formats) / sizeof(formats[0]); i++)
		if (strcmp(formats[i].name, name) == 0)
			return formats[i].fn;
	return NULL;
}
