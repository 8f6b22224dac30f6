/*
 * RFC 6455 WebSocket frame codec: an incremental frame parser, a frame
 * header / close frame encoder, masking and close-code validation.
 *
 * It depends on libc and <stdint.h> only (no nginx headers): the nginx
 * modules (MQTT relay, stream) use it, and the unit test and libFuzzer
 * target (tests/unit/test_ws_mask.c, tests/fuzz/fuzz_ws_frame.c) link it
 * from libtributary. The HTTP opening handshake, which needs nginx, is in
 * nginx-module/ngx_tributary_ws_handshake.h.
 *
 * Parsing, as a server:
 *
 *     tb_ws_parser  p;
 *
 *     tb_ws_parser_init(&p, 1);      1: frames must be masked
 *     p.max_frame_size = ...; p.max_message_size = ...; p.accept_text = 0;
 *
 *     for ( ;; ) {
 *         ev = tb_ws_parse(&p, &in, in_end, &out, out_end);
 *         switch (ev) {
 *         case TB_WS_AGAIN:  input used up (in == in_end)
 *                                      or output full (out == out_end)
 *         case TB_WS_MESSAGE: the bytes of a data message so far
 *                                      written to out complete it
 *         case TB_WS_PING / _PONG: p.control, p.control_len
 *         case TB_WS_CLOSE:  p.close_code (1005 when the frame
 *                                      carried none), reason in p.control + 2
 *         case TB_WS_ERROR:  fail the connection with p.close_code;
 *                                      p.error says why; do not call again
 *         }
 *     }
 *
 * Payload bytes of data frames are unmasked into the caller's output buffer
 * as they arrive, so a message of any size streams through fixed buffers;
 * fragments (continuation frames, with control frames between them) come
 * out as one contiguous byte sequence.
 */

#ifndef TRIBUTARY_WS_H
#define TRIBUTARY_WS_H

#include <stddef.h>
#include <stdint.h>

#define TB_WS_OP_CONT 0x0
#define TB_WS_OP_TEXT 0x1
#define TB_WS_OP_BINARY 0x2
#define TB_WS_OP_CLOSE 0x8
#define TB_WS_OP_PING 0x9
#define TB_WS_OP_PONG 0xa

#define TB_WS_CLOSE_NORMAL 1000
#define TB_WS_CLOSE_GOING_AWAY 1001
#define TB_WS_CLOSE_PROTOCOL_ERROR 1002
#define TB_WS_CLOSE_UNSUPPORTED 1003
#define TB_WS_CLOSE_NO_STATUS 1005 /* never on the wire */
#define TB_WS_CLOSE_ABNORMAL 1006  /* never on the wire */
#define TB_WS_CLOSE_INVALID_DATA 1007
#define TB_WS_CLOSE_POLICY 1008
#define TB_WS_CLOSE_TOO_BIG 1009
#define TB_WS_CLOSE_INTERNAL_ERROR 1011
#define TB_WS_CLOSE_TRY_AGAIN_LATER 1013

/* Longest frame header: 2 + 8 (64-bit length) + 4 (mask). */
#define TB_WS_MAX_HEADER 14
/* Longest server header (unmasked). */
#define TB_WS_MAX_SERVER_HEADER 10
#define TB_WS_MAX_CONTROL 125
/* A whole unmasked control frame: header 2 + payload 125 (a close frame's
 * is code 2 + reason 123). */
#define TB_WS_MAX_CONTROL_FRAME (2 + TB_WS_MAX_CONTROL)

typedef enum {
	TB_WS_AGAIN = 0,
	TB_WS_MESSAGE,
	TB_WS_PING,
	TB_WS_PONG,
	TB_WS_CLOSE,
	TB_WS_ERROR
} tb_ws_event;

typedef struct {
	/* settings: set after tb_ws_parser_init(), 0 = unlimited */
	uint64_t max_frame_size;
	uint64_t max_message_size;
	unsigned accept_text;   /* else text messages fail with 1003 */
	unsigned expect_masked; /* 1 on servers, 0 on clients */

	/* results */
	unsigned opcode;     /* TEXT or BINARY: the current message */
	uint16_t close_code; /* CLOSE: peer's code; ERROR: ours */
	const char *error;   /* ERROR: static text */
	size_t control_len;  /* PING, PONG, CLOSE payload */
	uint8_t control[TB_WS_MAX_CONTROL];

	/* private */
	unsigned state;
	unsigned frame_opcode;
	unsigned frame_fin;
	unsigned masked;
	size_t hdr_len;
	size_t hdr_need;
	uint64_t remaining;
	uint64_t offset; /* within the frame, for the mask */
	uint64_t message_size;
	unsigned utf8_need;
	uint8_t utf8_lo;
	uint8_t utf8_hi;
	uint8_t mask[4];
	uint8_t hdr[TB_WS_MAX_HEADER];
} tb_ws_parser;

void tb_ws_parser_init(tb_ws_parser *p, unsigned expect_masked);

/*
 * Consumes bytes from *in up to in_end and writes unmasked data-frame
 * payload to *out up to out_end; advances both pointers. Returns at every
 * event; AGAIN means it cannot go on without more input or more output room.
 */
tb_ws_event tb_ws_parse(tb_ws_parser *p, const uint8_t **in, const uint8_t *in_end, uint8_t **out,
                        uint8_t *out_end);

/* 1 while a fragmented data message has begun and not ended. */
int tb_ws_in_message(const tb_ws_parser *p);

/*
 * Writes a frame header for a payload of len bytes into buf (room for
 * TB_WS_MAX_HEADER bytes) and returns its size. mask is NULL for
 * server frames, else the 4-byte key a client puts in the header (the
 * payload must then be masked with tb_ws_mask_copy()).
 */
size_t tb_ws_frame_header(uint8_t *buf, unsigned opcode, unsigned fin, uint64_t len,
                          const uint8_t *mask);

/* Size of the header tb_ws_frame_header() would write. */
size_t tb_ws_header_size(uint64_t len, unsigned masked);

/*
 * Writes src XORed with the key to dst (which may be src); offset is the
 * position of src[0] within the frame payload, so a payload can be (un)masked
 * in pieces.
 */
void tb_ws_mask_copy(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t mask[4],
                     uint64_t offset);

/*
 * Writes a whole unmasked close frame (code and reason; the reason is cut to
 * fit, on a UTF-8 character boundary) into buf (room for
 * TB_WS_MAX_CONTROL_FRAME bytes) and returns its size. code 0 (or
 * 1005) sends a close frame without status.
 */
size_t tb_ws_close_frame(uint8_t *buf, unsigned code, const char *reason, size_t reason_len);

/*
 * Writes a whole unmasked PING or PONG frame carrying len bytes (at most
 * TB_WS_MAX_CONTROL) into buf (room for TB_WS_MAX_CONTROL_FRAME bytes) and
 * returns its size: the answer to a ping is
 * tb_ws_control_frame(buf, TB_WS_OP_PONG, p.control, p.control_len).
 */
size_t tb_ws_control_frame(uint8_t *buf, unsigned opcode, const uint8_t *payload, size_t len);

/* 1 if a peer may send this code in a close frame (RFC 6455 7.4 + IANA). */
int tb_ws_close_code_valid(unsigned code);

/* 1 if data is complete, well-formed UTF-8. */
int tb_ws_utf8_valid(const uint8_t *data, size_t len);

#endif /* TRIBUTARY_WS_H */
