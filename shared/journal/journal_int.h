/* Internals shared by the journal's source files. */
#ifndef TRIBUTARY_JOURNAL_INT_H
#define TRIBUTARY_JOURNAL_INT_H

#include <stddef.h>
#include <stdint.h>

#include "tributary/journal.h"

#define TJ_SEG_MAGIC "TRIBJSEG"
#define TJ_SEG_VERSION 1u
#define TJ_ENTRY_MAGIC 0xE1A7D0B5u
#define TJ_ACK_MAGIC 0xA5C3E10Fu

/* CRC32C (Castagnoli), continuing from `crc` (0 to start). */
uint32_t tj_crc32c(uint32_t crc, const void *data, size_t len);

static inline void tj_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void tj_put64(uint8_t *p, uint64_t v)
{
	tj_put32(p, (uint32_t)v);
	tj_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint32_t tj_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t tj_get64(const uint8_t *p)
{
	return (uint64_t)tj_get32(p) | (uint64_t)tj_get32(p + 4) << 32;
}

void tj_segment_header_encode(uint8_t out[TJOURNAL_SEGMENT_HEADER_SIZE],
                              const tjournal_segment_info *info);
/* 0 if valid. */
int tj_segment_header_decode(const uint8_t *in, tjournal_segment_info *info);

/* Entry header for a payload (computes both CRCs). */
void tj_entry_header_encode(uint8_t out[TJOURNAL_ENTRY_HEADER_SIZE], uint32_t salt, uint64_t seq,
                            uint64_t ts_ms, const void *data, uint32_t len);

void tj_ack_encode(uint8_t out[TJOURNAL_ACK_RECORD_SIZE], uint32_t salt, uint64_t seq);

#endif
