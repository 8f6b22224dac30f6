/*
 * Exact arithmetic on JSON number literals, for the numbers tjs_doc_parse
 * keeps as text (beyond 64-bit integers, or beyond what a double holds
 * exactly: RFC 8259 bounds neither). A literal is read as a decimal
 * D x 10^E, D its significant digits, so comparing two of them is comparing
 * magnitudes and then digits: no conversion, no rounding, and no cost that
 * grows with the exponent (1e400 and 1e-400 are as cheap as 1.5).
 *
 * The keyword side comes from jansson (a double or a 64-bit integer): a
 * double is read as its shortest round-trip decimal, the number the schema
 * most likely wrote.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define EXP_LIMIT 1000000000000000LL /* saturates absurd exponents */

typedef struct dec {
	bool neg, zero;
	const char *ip, *fp; /* integer and fraction digits of the literal */
	size_t il;
	size_t first, len; /* significant digits: positions in ip ++ fp */
	long long exp;     /* value = (those digits) x 10^exp */
} dec;

static char dec_digit(const dec *d, size_t k)
{
	return k < d->il ? d->ip[k] : d->fp[k - d->il];
}

/* `s` is a JSON number (the grammar is the parser's to check). */
static void dec_read(const char *s, dec *d)
{
	memset(d, 0, sizeof(*d));
	if (*s == '-') {
		d->neg = true;
		s++;
	}
	d->ip = s;
	while (*s >= '0' && *s <= '9')
		s++;
	d->il = (size_t)(s - d->ip);
	size_t fl = 0;
	if (*s == '.') {
		d->fp = ++s;
		while (*s >= '0' && *s <= '9')
			s++;
		fl = (size_t)(s - d->fp);
	}
	long long e = 0;
	bool eneg = false;
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			eneg = *s++ == '-';
		for (; *s >= '0' && *s <= '9'; s++)
			if (e < EXP_LIMIT)
				e = e * 10 + (*s - '0');
	}
	size_t total = d->il + fl, last = total;
	while (d->first < total && dec_digit(d, d->first) == '0')
		d->first++;
	if (d->first == total) {
		d->zero = true;
		return;
	}
	while (dec_digit(d, last - 1) == '0')
		last--;
	d->len = last - d->first;
	d->exp = (eneg ? -e : e) - (long long)fl + (long long)(total - last);
}

/* Magnitudes: |a| against |b|. */
static int dec_cmp_abs(const dec *a, const dec *b)
{
	long long ma = a->exp + (long long)a->len, mb = b->exp + (long long)b->len;
	if (ma != mb)
		return ma < mb ? -1 : 1;
	size_t n = a->len > b->len ? a->len : b->len;
	for (size_t i = 0; i < n; i++) {
		char x = i < a->len ? dec_digit(a, a->first + i) : '0';
		char y = i < b->len ? dec_digit(b, b->first + i) : '0';
		if (x != y)
			return x < y ? -1 : 1;
	}
	return 0;
}

static int dec_cmp(const dec *a, const dec *b)
{
	int sa = a->zero ? 0 : a->neg ? -1 : 1, sb = b->zero ? 0 : b->neg ? -1 : 1;
	if (sa != sb)
		return sa < sb ? -1 : 1;
	if (!sa)
		return 0;
	int r = dec_cmp_abs(a, b);
	return sa < 0 ? -r : r;
}

/* The text of a number jansson holds (an integer, or a double as its
 * shortest round-trip form). */
const char *tjs_number_literal(bool is_int, json_int_t i, double d, char buf[48])
{
	if (is_int) {
		snprintf(buf, 48, "%" JSON_INTEGER_FORMAT, i);
		return buf;
	}
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, 48, "%.*e", prec - 1, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	return buf;
}

static const char *kw_text(const tjs_kw *kw, char buf[48])
{
	return tjs_number_literal(kw->is_int, kw->inum, kw->num, buf);
}

int tjs_big_cmp(const char *big, const tjs_kw *kw)
{
	char buf[48];
	dec a, b;
	dec_read(big, &a);
	dec_read(kw_text(kw, buf), &b);
	return dec_cmp(&a, &b);
}

bool tjs_big_equal(const char *a, const char *b)
{
	dec x, y;
	dec_read(a, &x);
	dec_read(b, &y);
	return dec_cmp(&x, &y) == 0;
}

bool tjs_big_is_integer(const char *big, tjs_draft draft)
{
	/* Draft 4: an integer has no fraction or exponent part. */
	if (draft == TJS_DRAFT_4)
		return !strpbrk(big, ".eE");
	dec d;
	dec_read(big, &d);
	return d.zero || d.exp >= 0;
}

static uint64_t mulmod(uint64_t a, uint64_t b, uint64_t m)
{
	return (uint64_t)((unsigned __int128)a * b % m);
}

/* x / m is an integer: with x = Dx 10^Ex and m = Dm 10^Em (no trailing
 * zeros in either D), Dm must divide Dx 10^(Ex-Em), and Ex < Em never
 * gives one (10 would have to divide Dx). */
bool tjs_big_multiple_of(const char *big, const tjs_kw *kw)
{
	char buf[48];
	dec x, m;
	dec_read(big, &x);
	dec_read(kw_text(kw, buf), &m);
	if (x.zero)
		return true;
	if (m.zero || x.exp < m.exp)
		return false;
	/* a keyword's digits (at most 19, from jansson) fit 64 bits */
	uint64_t dm = 0, r = 0, p = 1, base = 10;
	for (size_t i = 0; i < m.len; i++)
		dm = dm * 10 + (uint64_t)(dec_digit(&m, m.first + i) - '0');
	for (size_t i = 0; i < x.len; i++)
		r = (mulmod(r, 10, dm) + (uint64_t)(dec_digit(&x, x.first + i) - '0')) % dm;
	for (unsigned long long k = (unsigned long long)(x.exp - m.exp); k; k >>= 1) {
		if (k & 1)
			p = mulmod(p, base, dm);
		base = mulmod(base, base, dm);
	}
	return mulmod(r, p % dm, dm) == 0;
}
