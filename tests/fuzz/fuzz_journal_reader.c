/* libFuzzer target: arbitrary bytes as a journal segment (through the
 * memory reader and the pread() reader, which must agree), as an ack file,
 * and as a record blob (anything accepted must re-encode to the same
 * bytes). Build: clang -fsanitize=fuzzer,address,undefined -Ishared/include
 * tests/fuzz/fuzz_journal_reader.c shared/journal/(*.c) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tributary/journal.h"

#define CHECK(x)                                                                                   \
	do {                                                                                       \
		if (!(x))                                                                          \
			__builtin_trap();                                                          \
	} while (0)

typedef struct seen {
	size_t size;
	uint64_t end; /* end of the last entry or corrupt region */
	uint64_t last_seq;
	uint32_t entries, regions;
	uint64_t hash;
} seen;

static void check_record(const uint8_t *data, size_t len)
{
	tjournal_record *r = NULL;
	int rc = tjournal_record_decode(data, len, &r);
	if (rc != 0) {
		CHECK(r == NULL);
		CHECK(rc == TJOURNAL_CORRUPT || rc == TJOURNAL_ENOMEM);
		return;
	}
	CHECK(r->topic && r->topic_len > 0 && r->topic[r->topic_len] == '\0');
	CHECK(strlen(r->topic) == r->topic_len);
	for (size_t i = 0; i < r->header_count; i++)
		CHECK(strlen(r->headers[i].name) == r->headers[i].name_len);
	size_t n = tjournal_record_size(r);
	CHECK(n == len);
	uint8_t *buf = malloc(n);
	CHECK(buf);
	CHECK(tjournal_record_encode(r, buf, n) == n);
	CHECK(memcmp(buf, data, n) == 0);
	free(buf);
	free(r);
}

static int on_segment(void *opaque, const tjournal_segment_info *info)
{
	(void)opaque;
	CHECK(info->version == 1 && info->first_seq > 0);
	return 0;
}

static int on_entry(void *opaque, uint64_t off, uint64_t seq, uint64_t ts, const void *data,
                    size_t len)
{
	seen *s = opaque;
	(void)ts;
	CHECK(off >= TJOURNAL_SEGMENT_HEADER_SIZE && off >= s->end);
	CHECK(off + TJOURNAL_ENTRY_HEADER_SIZE + len <= s->size);
	CHECK(seq > s->last_seq);
	s->end = off + TJOURNAL_ENTRY_HEADER_SIZE + len;
	s->last_seq = seq;
	s->entries++;
	s->hash = s->hash * 31 + seq + off * 7 + len;
	check_record(data, len);
	return 0;
}

static void on_corrupt(void *opaque, uint64_t off, uint64_t len, const char *reason)
{
	seen *s = opaque;
	CHECK(reason && *reason);
	CHECK(len > 0 && off >= s->end && off + len <= s->size);
	s->end = off + len;
	s->regions++;
	s->hash = s->hash * 37 + off + len;
}

static void on_ack(void *opaque, uint64_t seq)
{
	*(uint64_t *)opaque ^= seq;
}

static int memfd = -1;

static int load_memfd(const uint8_t *data, size_t size)
{
	if (memfd < 0)
		memfd = memfd_create("fuzz-journal", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, 0) != 0)
		return -1;
	size_t off = 0;
	while (off < size) {
		ssize_t k = pwrite(memfd, data + off, size - off, (off_t)off);
		if (k <= 0)
			return -1;
		off += (size_t)k;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	seen a = {.size = size}, b = {.size = size};
	tjournal_scan_visitor va = {on_segment, on_entry, on_corrupt, &a};
	tjournal_scan_visitor vb = {on_segment, on_entry, on_corrupt, &b};

	int ra = tjournal_scan_mem(data, size, &va);
	CHECK(ra == 0 || ra == TJOURNAL_CORRUPT);
	if (ra == 0 && size > TJOURNAL_SEGMENT_HEADER_SIZE) /* everything is accounted for */
		CHECK(a.end == size);

	if (load_memfd(data, size) == 0) {
		int rb = tjournal_scan_fd(memfd, &vb);
		CHECK(rb == ra);
		CHECK(a.entries == b.entries && a.regions == b.regions && a.hash == b.hash);

		uint64_t x = 0, bad = 0;
		uint32_t salt = size >= 4 ? (uint32_t)data[0] | (uint32_t)data[1] << 8 : 0;
		int64_t valid = tjournal_scan_acks_fd(memfd, salt, on_ack, &x, &bad);
		CHECK(valid >= 0 && (uint64_t)valid <= size &&
		      valid % TJOURNAL_ACK_RECORD_SIZE == 0);
		CHECK(bad <= size / TJOURNAL_ACK_RECORD_SIZE);
	}

	check_record(data, size);
	return 0;
}
