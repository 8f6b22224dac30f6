/* WebSocket masking (shared/ws/ws.c) against the RFC 6455
 * 5.3 definition, byte by byte: every length around the 8-byte steps, every
 * key offset, in place and copying, and masked data and control frames the
 * parser unmasks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "tributary/ws.h"

static const uint8_t key[4] = {0xa1, 0x5c, 0x03, 0xf7};

static void reference(uint8_t *out, const uint8_t *in, size_t len, uint64_t offset)
{
	for (size_t i = 0; i < len; i++)
		out[i] = in[i] ^ key[(offset + i) % 4];
}

static void fill(uint8_t *b, size_t len)
{
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(i * 131 + 7);
}

/* A client frame: header with the key, then the masked body; its size. */
static size_t masked_frame(uint8_t *wire, unsigned opcode, const uint8_t *body, size_t len)
{
	size_t w = tb_ws_frame_header(wire, opcode, 1, len, key);
	reference(wire + w, body, len, 0);
	return w + len;
}

/* Parses wire[0..len) in two reads split at `split` (the first must leave
 * the frame unfinished); returns the event of the second. */
static tb_ws_event parse_split(tb_ws_parser *p, const uint8_t *wire, size_t split, size_t len,
                               uint8_t **o, uint8_t *out_end)
{
	const uint8_t *pos = wire;
	tb_ws_parser_init(p, 1);
	assert_int_equal(tb_ws_parse(p, &pos, wire + split, o, out_end), TB_WS_AGAIN);
	return tb_ws_parse(p, &pos, wire + len, o, out_end);
}

static void test_mask_copy_every_length_and_offset(void **state)
{
	(void)state;
	uint8_t in[80], want[80], out[80 + 1];
	fill(in, sizeof(in));
	for (size_t len = 0; len <= 70; len++) {
		for (uint64_t off = 0; off < 9; off++) {
			reference(want, in, len, off);
			out[len] = 0xee; /* must stay untouched */
			tb_ws_mask_copy(out, in, len, key, off);
			assert_memory_equal(out, want, len);
			assert_int_equal(out[len], 0xee);
		}
	}
}

static void test_mask_in_place_unaligned(void **state)
{
	(void)state;
	uint8_t buf[100], want[100];
	for (size_t start = 0; start < 8; start++) {
		fill(buf, sizeof(buf));
		reference(want, buf + start, 61, 3);
		tb_ws_mask_copy(buf + start, buf + start, 61, key, 3);
		assert_memory_equal(buf + start, want, 61);
	}
}

static void test_parser_unmasks_payload(void **state)
{
	(void)state;
	uint8_t payload[1024], wire[1100], out[1024];
	fill(payload, sizeof(payload));
	size_t w = masked_frame(wire, TB_WS_OP_BINARY, payload, sizeof(payload));

	tb_ws_parser p;
	uint8_t *o = out;
	/* the payload split at an odd offset */
	assert_int_equal(parse_split(&p, wire, 301, w, &o, out + sizeof(out)), TB_WS_MESSAGE);
	assert_int_equal(o - out, sizeof(payload));
	assert_memory_equal(out, payload, sizeof(payload));
}

static void test_parser_unmasks_ping(void **state)
{
	(void)state;
	uint8_t body[77], wire[100], out[1];
	fill(body, sizeof(body));
	size_t w = masked_frame(wire, TB_WS_OP_PING, body, sizeof(body));

	tb_ws_parser p;
	uint8_t *o = out;
	assert_int_equal(parse_split(&p, wire, 40, w, &o, out), TB_WS_PING);
	assert_int_equal(p.control_len, sizeof(body));
	assert_memory_equal(p.control, body, sizeof(body));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_mask_copy_every_length_and_offset),
	    cmocka_unit_test(test_mask_in_place_unaligned),
	    cmocka_unit_test(test_parser_unmasks_payload),
	    cmocka_unit_test(test_parser_unmasks_ping),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
