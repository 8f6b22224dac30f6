/*
 * Stream positions of tributary_stream: where in a Kafka topic a client is.
 *
 * A position names, for every partition of the topic, the NEXT offset to
 * read there:
 *
 *     p0:o43,p1:o17,p2:o0,p3:o980
 *
 * It is what an SSE event's "id:" carries (the position just after that
 * event) and what Last-Event-ID / ?from= hand back, so resuming reads every
 * record not yet delivered and nothing delivered already, on every
 * partition. Entries are "p" PARTITION ":o" OFFSET, decimal, without signs
 * or leading zeros, comma-separated, each partition at most once, in any
 * order (we write them sorted). A partition missing from a position is read
 * from its beginning: it did not exist, or was empty of interest, when the
 * position was made. Two words are also accepted: "beginning" (all history)
 * and "now" (live, the default).
 *
 * libc only, no nginx headers: the stream module uses it and
 * tests/fuzz/fuzz_stream_position.c links it from libtributary.
 */

#ifndef TRIBUTARY_POSITION_H
#define TRIBUTARY_POSITION_H

#include <stddef.h>
#include <stdint.h>

/* Bounds that keep a position's size and its parse time small. */
#define TB_POS_MAX_PARTITIONS 1024
#define TB_POS_MAX_LEN (TB_POS_MAX_PARTITIONS * 32)

/* Longest text of one entry: "p" 10 digits ":o" 19 digits ",". */
#define TB_POS_ENTRY_LEN (1 + 10 + 2 + 19 + 1)

typedef enum { TB_POS_ERROR = -1, TB_POS_NOW = 0, TB_POS_BEGINNING, TB_POS_OFFSETS } tb_pos_kind;

typedef struct {
	int32_t partition;
	int64_t offset;
} tb_pos_entry;

/*
 * Parses len bytes of s. On TB_POS_OFFSETS, out[0 .. *n) holds
 * the entries sorted by partition (out has room for max entries). On
 * TB_POS_ERROR, *err is a static message for the client.
 */
tb_pos_kind tb_pos_parse(const char *s, size_t len, tb_pos_entry *out, size_t max, size_t *n,
                         const char **err);

/*
 * Writes the position "p0:o<next[0]>,p1:o<next[1]>,..." for partitions
 * 0 .. count-1 into buf (size bytes; count * TB_POS_ENTRY_LEN is
 * always enough) without a terminating NUL; returns its length, or 0 if it
 * does not fit. A negative next[i] is written as 0 (read from the start).
 */
size_t tb_pos_format(char *buf, size_t size, const int64_t *next, size_t count);

#endif /* TRIBUTARY_POSITION_H */
