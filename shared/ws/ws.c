/*
 * RFC 6455 frame codec; see tributary/ws.h. libc + stdint only.
 */

#include <string.h>

#include "tributary/ws.h"

enum { ws_state_header = 0, ws_state_data, ws_state_control, ws_state_failed };

static tb_ws_event tb_ws_fail(tb_ws_parser *p, unsigned code, const char *error);
static tb_ws_event tb_ws_header_done(tb_ws_parser *p);
static tb_ws_event tb_ws_control_done(tb_ws_parser *p);
static void tb_ws_take(tb_ws_parser *p, uint8_t *dst, const uint8_t **in, size_t n);
static int tb_ws_utf8_feed(tb_ws_parser *p, const uint8_t *data, size_t len);

void tb_ws_parser_init(tb_ws_parser *p, unsigned expect_masked)
{
	memset(p, 0, sizeof(*p));
	p->expect_masked = expect_masked;
	p->hdr_need = 2;
}

int tb_ws_in_message(const tb_ws_parser *p)
{
	return p->opcode != 0;
}

tb_ws_event tb_ws_parse(tb_ws_parser *p, const uint8_t **in, const uint8_t *in_end, uint8_t **out,
                        uint8_t *out_end)
{
	size_t n;
	uint8_t *o;
	tb_ws_event ev;

	for (;;) {

		switch (p->state) {

		case ws_state_failed:
			return TB_WS_ERROR;

		case ws_state_header:
			while (p->hdr_len < p->hdr_need) {
				if (*in == in_end) {
					return TB_WS_AGAIN;
				}

				p->hdr[p->hdr_len++] = *(*in)++;

				if (p->hdr_len == 2) {
					/* the second byte tells the rest of the header's size */
					n = p->hdr[1] & 0x7f;
					p->hdr_need = 2 +
					              (n == 126   ? 2
					               : n == 127 ? 8
					                          : 0) +
					              ((p->hdr[1] & 0x80) ? 4 : 0);
				}
			}

			ev = tb_ws_header_done(p);
			if (ev != TB_WS_AGAIN) {
				return ev;
			}

			break;

		case ws_state_data:
			if (p->remaining) {
				n = (size_t)(in_end - *in);
				if ((size_t)(out_end - *out) < n) {
					n = (size_t)(out_end - *out);
				}
				if (p->remaining < n) {
					n = (size_t)p->remaining;
				}
				if (n == 0) {
					return TB_WS_AGAIN;
				}

				o = *out;
				tb_ws_take(p, o, in, n);

				if (p->opcode == TB_WS_OP_TEXT && !tb_ws_utf8_feed(p, o, n)) {
					return tb_ws_fail(p, TB_WS_CLOSE_INVALID_DATA,
					                  "invalid UTF-8 in text message");
				}

				*out += n;

				if (p->remaining) {
					return TB_WS_AGAIN;
				}
			}

			p->state = ws_state_header;
			p->hdr_len = 0;
			p->hdr_need = 2;

			if (p->frame_fin) {
				if (p->opcode == TB_WS_OP_TEXT && p->utf8_need) {
					return tb_ws_fail(p, TB_WS_CLOSE_INVALID_DATA,
					                  "text message ends inside a UTF-8 "
					                  "character");
				}

				p->opcode = 0;
				p->message_size = 0;
				return TB_WS_MESSAGE;
			}

			break;

		case ws_state_control:
			n = (size_t)(in_end - *in);
			if (p->remaining < n) {
				n = (size_t)p->remaining;
			}

			tb_ws_take(p, p->control + p->control_len, in, n);
			p->control_len += n;

			if (p->remaining) {
				return TB_WS_AGAIN;
			}

			p->state = ws_state_header;
			p->hdr_len = 0;
			p->hdr_need = 2;

			return tb_ws_control_done(p);
		}
	}
}

static tb_ws_event tb_ws_header_done(tb_ws_parser *p)
{
	size_t i, n;
	unsigned op, fin, masked;
	uint64_t len;

	fin = p->hdr[0] >> 7;
	op = p->hdr[0] & 0x0f;
	masked = p->hdr[1] >> 7;
	len = p->hdr[1] & 0x7f;
	n = 2;

	if (p->hdr[0] & 0x70) {
		/* no extension is ever negotiated */
		return tb_ws_fail(p, TB_WS_CLOSE_PROTOCOL_ERROR, "reserved bits set");
	}

	if (masked != p->expect_masked) {
		return tb_ws_fail(p, TB_WS_CLOSE_PROTOCOL_ERROR,
		                  masked ? "masked server frame" : "unmasked client frame");
	}

	if (len == 126) {
		len = ((uint64_t)p->hdr[2] << 8) | p->hdr[3];
		n = 4;

	} else if (len == 127) {
		len = 0;
		for (i = 2; i < 10; i++) {
			len = (len << 8) | p->hdr[i];
		}
		n = 10;

		if (len >> 63) {
			return tb_ws_fail(p, TB_WS_CLOSE_PROTOCOL_ERROR,
			                  "frame length has its top bit set");
		}
	}

	if (masked) {
		memcpy(p->mask, &p->hdr[n], 4);
	}

	p->frame_opcode = op;
	p->frame_fin = fin;
	p->masked = masked;
	p->remaining = len;
	p->offset = 0;

	switch (op) {

	case TB_WS_OP_CLOSE:
	case TB_WS_OP_PING:
	case TB_WS_OP_PONG:
		if (!fin) {
			return tb_ws_fail(p, TB_WS_CLOSE_PROTOCOL_ERROR,
			                  "fragmented control frame");
		}

		if (len > TB_WS_MAX_CONTROL) {
			return tb_ws_fail(p, TB_WS_CLOSE_PROTOCOL_ERROR,
			                  "control frame longer than 125");
		}

		p->control_len = 0;
		p->state = ws_state_control;
		return TB_WS_AGAIN;

	case TB_WS_OP_TEXT:
	case TB_WS_OP_BINARY:
		if (p->opcode) {
			return tb_ws_fail(p, TB_WS_CLOSE_PROTOCOL_ERROR,
			                  "new message inside a fragmented "
			                  "message");
		}

		if (op == TB_WS_OP_TEXT && !p->accept_text) {
			return tb_ws_fail(p, TB_WS_CLOSE_UNSUPPORTED,
			                  "text messages are not accepted");
		}

		p->opcode = op;
		p->message_size = 0;
		p->utf8_need = 0;
		break;

	case TB_WS_OP_CONT:
		if (p->opcode == 0) {
			return tb_ws_fail(p, TB_WS_CLOSE_PROTOCOL_ERROR,
			                  "continuation frame outside a "
			                  "message");
		}
		break;

	default:
		return tb_ws_fail(p, TB_WS_CLOSE_PROTOCOL_ERROR, "reserved opcode");
	}

	if (p->max_frame_size && len > p->max_frame_size) {
		return tb_ws_fail(p, TB_WS_CLOSE_TOO_BIG, "frame too big");
	}

	if (p->max_message_size && len > p->max_message_size - p->message_size) {
		return tb_ws_fail(p, TB_WS_CLOSE_TOO_BIG, "message too big");
	}

	p->message_size += len;
	p->state = ws_state_data;

	return TB_WS_AGAIN;
}

static tb_ws_event tb_ws_control_done(tb_ws_parser *p)
{
	unsigned code;

	switch (p->frame_opcode) {

	case TB_WS_OP_PING:
		return TB_WS_PING;

	case TB_WS_OP_PONG:
		return TB_WS_PONG;

	default: /* close */
		if (p->control_len == 0) {
			p->close_code = TB_WS_CLOSE_NO_STATUS;
			return TB_WS_CLOSE;
		}

		if (p->control_len == 1) {
			return tb_ws_fail(p, TB_WS_CLOSE_PROTOCOL_ERROR,
			                  "close frame with a 1-byte payload");
		}

		code = ((unsigned)p->control[0] << 8) | p->control[1];

		if (!tb_ws_close_code_valid(code)) {
			return tb_ws_fail(p, TB_WS_CLOSE_PROTOCOL_ERROR, "invalid close code");
		}

		if (!tb_ws_utf8_valid(p->control + 2, p->control_len - 2)) {
			return tb_ws_fail(p, TB_WS_CLOSE_INVALID_DATA, "close reason is not UTF-8");
		}

		p->close_code = (uint16_t)code;
		return TB_WS_CLOSE;
	}
}

/* n payload bytes of the current frame from *in to dst, unmasked. */
static void tb_ws_take(tb_ws_parser *p, uint8_t *dst, const uint8_t **in, size_t n)
{
	if (p->masked) {
		tb_ws_mask_copy(dst, *in, n, p->mask, p->offset);
	} else {
		memcpy(dst, *in, n);
	}

	*in += n;
	p->offset += n;
	p->remaining -= n;
}

static tb_ws_event tb_ws_fail(tb_ws_parser *p, unsigned code, const char *error)
{
	p->state = ws_state_failed;
	p->close_code = (uint16_t)code;
	p->error = error;

	return TB_WS_ERROR;
}

/*
 * Incremental UTF-8 check (RFC 3629): the state is how many continuation
 * bytes are still due and the range the next one must fall in, which is how
 * overlong forms, surrogates and code points above U+10FFFF are refused.
 */
static int tb_ws_utf8_feed(tb_ws_parser *p, const uint8_t *data, size_t len)
{
	size_t i;
	uint8_t c;

	for (i = 0; i < len; i++) {
		c = data[i];

		if (p->utf8_need) {
			if (c < p->utf8_lo || c > p->utf8_hi) {
				return 0;
			}
			p->utf8_need--;
			p->utf8_lo = 0x80;
			p->utf8_hi = 0xbf;
			continue;
		}

		if (c < 0x80) {
			continue;
		}

		p->utf8_lo = 0x80;
		p->utf8_hi = 0xbf;

		if (c >= 0xc2 && c <= 0xdf) {
			p->utf8_need = 1;

		} else if (c >= 0xe0 && c <= 0xef) {
			p->utf8_need = 2;
			if (c == 0xe0) {
				p->utf8_lo = 0xa0;
			} else if (c == 0xed) {
				p->utf8_hi = 0x9f;
			}

		} else if (c >= 0xf0 && c <= 0xf4) {
			p->utf8_need = 3;
			if (c == 0xf0) {
				p->utf8_lo = 0x90;
			} else if (c == 0xf4) {
				p->utf8_hi = 0x8f;
			}

		} else {
			return 0;
		}
	}

	return 1;
}

int tb_ws_utf8_valid(const uint8_t *data, size_t len)
{
	tb_ws_parser p;

	memset(&p, 0, sizeof(p));

	return tb_ws_utf8_feed(&p, data, len) && p.utf8_need == 0;
}

int tb_ws_close_code_valid(unsigned code)
{
	/* 1004-1006 and 1015 are reserved or must never be sent; 1016-2999
	 * are unassigned; 3000-4999 belong to libraries and applications */
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
	       (code >= 3000 && code <= 4999);
}

size_t tb_ws_header_size(uint64_t len, unsigned masked)
{
	return (len < 126 ? 2 : len < 65536 ? 4 : 10) + (masked ? 4 : 0);
}

size_t tb_ws_frame_header(uint8_t *buf, unsigned opcode, unsigned fin, uint64_t len,
                          const uint8_t *mask)
{
	size_t n;
	int i;

	buf[0] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));

	if (len < 126) {
		buf[1] = (uint8_t)len;
		n = 2;

	} else if (len < 65536) {
		buf[1] = 126;
		buf[2] = (uint8_t)(len >> 8);
		buf[3] = (uint8_t)len;
		n = 4;

	} else {
		buf[1] = 127;
		for (i = 0; i < 8; i++) {
			buf[2 + i] = (uint8_t)(len >> (56 - 8 * i));
		}
		n = 10;
	}

	if (mask) {
		buf[1] |= 0x80;
		memcpy(&buf[n], mask, 4);
		n += 4;
	}

	return n;
}

/*
 * Eight bytes per step: every client byte of a relayed message passes through
 * here, and the byte loop was the module's own largest cost in the relay.
 * dst may equal src.
 */
void tb_ws_mask_copy(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t mask[4],
                     uint64_t offset)
{
	size_t i;
	uint8_t m8[8];
	uint64_t m, w;

	for (i = 0; i < 8; i++) {
		m8[i] = mask[(offset + i) & 3];
	}

	memcpy(&m, m8, 8);

	for (i = 0; i + 8 <= len; i += 8) {
		memcpy(&w, src + i, 8);
		w ^= m;
		memcpy(dst + i, &w, 8);
	}

	for (; i < len; i++) {
		dst[i] = src[i] ^ m8[i & 7];
	}
}

size_t tb_ws_control_frame(uint8_t *buf, unsigned opcode, const uint8_t *payload, size_t len)
{
	size_t n;

	if (len > TB_WS_MAX_CONTROL) {
		len = TB_WS_MAX_CONTROL;
	}

	n = tb_ws_frame_header(buf, opcode, 1, len, NULL);

	if (len) {
		memcpy(&buf[n], payload, len);
	}

	return n + len;
}

size_t tb_ws_close_frame(uint8_t *buf, unsigned code, const char *reason, size_t reason_len)
{
	size_t n;

	if (code == 0 || code == TB_WS_CLOSE_NO_STATUS) {
		return tb_ws_frame_header(buf, TB_WS_OP_CLOSE, 1, 0, NULL);
	}

	if (reason == NULL) {
		reason_len = 0;
	}

	if (reason_len > TB_WS_MAX_CONTROL - 2) {
		reason_len = TB_WS_MAX_CONTROL - 2;

		/* do not cut a multi-byte character in two */
		while (reason_len && ((uint8_t)reason[reason_len] & 0xc0) == 0x80) {
			reason_len--;
		}
	}

	n = tb_ws_frame_header(buf, TB_WS_OP_CLOSE, 1, 2 + reason_len, NULL);
	buf[n++] = (uint8_t)(code >> 8);
	buf[n++] = (uint8_t)code;

	if (reason_len) {
		memcpy(&buf[n], reason, reason_len);
		n += reason_len;
	}

	return n;
}
