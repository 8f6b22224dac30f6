/*
 * libFuzzer target for the WebSocket frame parser (every byte a browser
 * sends through tributary_mqtt_pass goes through it first). Two phases:
 *
 *   1. the input as a client byte stream, fed in pieces of fuzzer-chosen
 *      sizes into output buffers of fuzzer-chosen sizes, with fuzzer-chosen
 *      limits: no crash, pointers stay in bounds, no more payload out than
 *      bytes in, control payloads <= 125, close codes that may be sent, and
 *      feeding in pieces gives the same result as feeding it whole;
 *   2. the input as payloads: encoded with the frame encoder (masked,
 *      fragmented) and parsed back, they come out unchanged.
 *
 * The codec (shared/ws/ws.c) needs only libc:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Ishared/include \
 *       tests/fuzz/fuzz_ws_frame.c shared/ws/ws.c -o fuzz_ws_frame
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tributary/ws.h"

#define FUZZ_MAX_OUT (1u << 20)

typedef struct {
	tb_ws_event last;
	unsigned code;
	size_t out_len;
	size_t events;
	uint64_t digest;
} fuzz_result_t;

static void fuzz_check_event(const tb_ws_parser *p, tb_ws_event ev)
{
	if (p->control_len > TB_WS_MAX_CONTROL) {
		abort();
	}

	if (ev == TB_WS_ERROR) {
		if (p->error == NULL) {
			abort();
		}
		switch (p->close_code) {
		case TB_WS_CLOSE_PROTOCOL_ERROR:
		case TB_WS_CLOSE_UNSUPPORTED:
		case TB_WS_CLOSE_INVALID_DATA:
		case TB_WS_CLOSE_TOO_BIG:
			break;
		default:
			abort();
		}
	}

	if (ev == TB_WS_CLOSE && p->close_code != TB_WS_CLOSE_NO_STATUS &&
	    !tb_ws_close_code_valid(p->close_code)) {
		abort();
	}
}

/* Parses in with pieces of `chunk` bytes into outputs of `room` bytes. */
static void fuzz_parse(const uint8_t *in, size_t len, size_t chunk, size_t room, unsigned cfg,
                       fuzz_result_t *res, uint8_t *outbuf)
{
	size_t off, n;
	uint8_t *out, *out_end, *o;
	const uint8_t *pos, *end, *before;
	tb_ws_event ev;
	tb_ws_parser p;

	tb_ws_parser_init(&p, cfg & 1);
	p.accept_text = (cfg >> 1) & 1;
	p.max_frame_size = (cfg & 4) ? ((cfg >> 3) & 7) * 100 : 0;
	p.max_message_size = (cfg & 64) ? ((cfg >> 7) & 1 ? 300 : 1000) : 0;

	memset(res, 0, sizeof(*res));
	res->last = TB_WS_AGAIN;
	res->digest = 1469598103934665603ULL;

	for (off = 0; off < len; off += n) {
		n = len - off < chunk ? len - off : chunk;
		pos = in + off;
		end = pos + n;

		for (;;) {
			out = outbuf;
			out_end = outbuf + room;
			before = pos;

			ev = tb_ws_parse(&p, &pos, end, &out, out_end);

			if (pos < before || pos > end || out < outbuf || out > out_end) {
				abort();
			}

			for (o = outbuf; o < out; o++) {
				res->digest = (res->digest ^ *o) * 1099511628211ULL;
			}
			res->out_len += out - outbuf;

			fuzz_check_event(&p, ev);

			if (ev == TB_WS_ERROR) {
				res->last = ev;
				res->code = p.close_code;
				/* a failed parser stays failed */
				if (tb_ws_parse(&p, &pos, end, &out, out_end) != TB_WS_ERROR) {
					abort();
				}
				return;
			}

			if (ev != TB_WS_AGAIN) {
				res->events = res->events * 31 + ev;
				res->digest =
				    (res->digest ^ (ev * 977 + p.control_len)) * 1099511628211ULL;
				if (ev == TB_WS_CLOSE) {
					res->last = ev;
					res->code = p.close_code;
					return;
				}
				continue;
			}

			if (pos == end) {
				break;
			}

			if (out != out_end) {
				abort(); /* AGAIN with input and output room left */
			}
		}
	}

	if (res->out_len > len) {
		abort();
	}
}

static void fuzz_roundtrip(const uint8_t *data, size_t size, uint8_t *wire, uint8_t *out)
{
	size_t w, i, piece, frag, messages;
	uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
	uint8_t *o;
	const uint8_t *pos;
	tb_ws_event ev;
	tb_ws_parser p;

	/* one binary message in fragments of 1 + data[0] bytes, a ping between */
	frag = 1 + (size ? data[0] : 0);
	w = 0;

	for (i = 0; i == 0 || i < size; i += piece) {
		piece = size - i < frag ? size - i : frag;

		w += tb_ws_frame_header(wire + w, i ? TB_WS_OP_CONT : TB_WS_OP_BINARY,
		                        i + piece >= size, piece, mask);
		memcpy(wire + w, data + i, piece);
		tb_ws_mask_copy(wire + w, wire + w, piece, mask, 0);
		w += piece;

		if (i == 0) {
			w += tb_ws_frame_header(wire + w, TB_WS_OP_PING, 1, 0, mask);
		}

		if (size == 0) {
			break;
		}
	}

	tb_ws_parser_init(&p, 1);
	pos = wire;
	o = out;
	messages = 0;

	for (;;) {
		ev = tb_ws_parse(&p, &pos, wire + w, &o, out + size);

		if (ev == TB_WS_MESSAGE) {
			messages++;
			continue;
		}

		if (ev == TB_WS_PING) {
			continue;
		}

		if (ev != TB_WS_AGAIN || pos != wire + w) {
			abort();
		}

		break;
	}

	if (messages != 1 || (size_t)(o - out) != size || memcmp(out, data, size) != 0) {
		abort();
	}

	/* a close frame made by the encoder parses back to the same code */
	w = tb_ws_close_frame(wire, 4000 + (size % 1000), (const char *)data,
	                      tb_ws_utf8_valid(data, size) ? size : 0);
	tb_ws_parser_init(&p, 0);
	pos = wire;
	o = out;
	ev = tb_ws_parse(&p, &pos, wire + w, &o, out + size);
	if (ev != TB_WS_CLOSE || p.close_code != 4000 + (size % 1000)) {
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t outbuf[FUZZ_MAX_OUT];
	static uint8_t wire[FUZZ_MAX_OUT * 4];
	size_t chunk, room;
	unsigned cfg;
	fuzz_result_t whole, pieces;

	if (size < 3 || size > FUZZ_MAX_OUT / 2) {
		return 0;
	}

	cfg = data[0];
	chunk = 1 + data[1] % 64;
	room = 1 + data[2] % 32;
	data += 3;
	size -= 3;

	fuzz_parse(data, size, size ? size : 1, FUZZ_MAX_OUT, cfg, &whole, outbuf);
	fuzz_parse(data, size, chunk, room, cfg, &pieces, outbuf);

	if (whole.last != pieces.last || whole.code != pieces.code ||
	    whole.events != pieces.events) {
		abort();
	}

	/* (a failing text message may have let out a valid prefix piecewise) */
	if (whole.last != TB_WS_ERROR &&
	    (whole.out_len != pieces.out_len || whole.digest != pieces.digest)) {
		abort();
	}

	fuzz_roundtrip(data, size, wire, outbuf);

	return 0;
}
