/*
 * base64url without padding (RFC 7515 §2). Decoding is strict so that a
 * token has exactly one encoding: other alphabets, padding, whitespace and
 * non-zero trailing bits are refused rather than silently normalised.
 */
#include <stdint.h>
#include <stdlib.h>

#include "tributary/jwt.h"

static int8_t b64url_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return (int8_t)(c - 'A');
	if (c >= 'a' && c <= 'z')
		return (int8_t)(c - 'a' + 26);
	if (c >= '0' && c <= '9')
		return (int8_t)(c - '0' + 52);
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

long tjwt_b64url_decode(const char *in, size_t len, unsigned char *out)
{
	size_t o = 0, i = 0;
	uint32_t acc;

	if (len % 4 == 1)
		return -1;
	for (; i + 4 <= len; i += 4) {
		acc = 0;
		for (size_t j = 0; j < 4; j++) {
			int8_t v = b64url_value((unsigned char)in[i + j]);
			if (v < 0)
				return -1;
			acc = acc << 6 | (uint32_t)v;
		}
		out[o++] = (unsigned char)(acc >> 16);
		out[o++] = (unsigned char)(acc >> 8);
		out[o++] = (unsigned char)acc;
	}
	if (i < len) {
		size_t rest = len - i; /* 2 or 3 */
		acc = 0;
		for (size_t j = 0; j < rest; j++) {
			int8_t v = b64url_value((unsigned char)in[i + j]);
			if (v < 0)
				return -1;
			acc = acc << 6 | (uint32_t)v;
		}
		if (rest == 2) {
			if (acc & 0xf)
				return -1;
			out[o++] = (unsigned char)(acc >> 4);
		} else {
			if (acc & 0x3)
				return -1;
			out[o++] = (unsigned char)(acc >> 10);
			out[o++] = (unsigned char)(acc >> 2);
		}
	}
	return (long)o;
}

char *tjwt_b64url_encode(const void *in, size_t len)
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const unsigned char *p = in;
	char *out = malloc(len / 3 * 4 + 4 + 1), *q = out;
	size_t i = 0;

	if (!out)
		return NULL;
	for (; i + 3 <= len; i += 3) {
		uint32_t acc = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		*q++ = alphabet[acc >> 18 & 63];
		*q++ = alphabet[acc >> 12 & 63];
		*q++ = alphabet[acc >> 6 & 63];
		*q++ = alphabet[acc & 63];
	}
	if (len - i == 1) {
		uint32_t acc = (uint32_t)p[i] << 16;
		*q++ = alphabet[acc >> 18 & 63];
		*q++ = alphabet[acc >> 12 & 63];
	} else if (len - i == 2) {
		uint32_t acc = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		*q++ = alphabet[acc >> 18 & 63];
		*q++ = alphabet[acc >> 12 & 63];
		*q++ = alphabet[acc >> 6 & 63];
	}
	*q = '\0';
	return out;
}
