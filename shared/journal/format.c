/* On-disk format of segments and ack files, and the reader that scans a
 * segment, resynchronising after corrupt regions. The reader works on a
 * memory buffer or through pread() on a window, not mmap(): an unreadable
 * disk block must become an error, not SIGBUS in the broker. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "journal_int.h"

#define WINDOW (1u << 20)
#define SCAN_CHUNK (64u << 10)

void tj_segment_header_encode(uint8_t out[TJOURNAL_SEGMENT_HEADER_SIZE],
                              const tjournal_segment_info *info)
{
	memcpy(out, TJ_SEG_MAGIC, 8);
	tj_put32(out + 8, info->version);
	tj_put32(out + 12, info->salt);
	tj_put64(out + 16, info->id);
	tj_put64(out + 24, info->first_seq);
	tj_put32(out + 32, 0);
	tj_put32(out + 36, tj_crc32c(0, out, 36));
}

int tj_segment_header_decode(const uint8_t *in, tjournal_segment_info *info)
{
	if (memcmp(in, TJ_SEG_MAGIC, 8) != 0 || tj_get32(in + 36) != tj_crc32c(0, in, 36))
		return TJOURNAL_CORRUPT;
	info->version = tj_get32(in + 8);
	info->salt = tj_get32(in + 12);
	info->id = tj_get64(in + 16);
	info->first_seq = tj_get64(in + 24);
	if (info->version != TJ_SEG_VERSION || tj_get32(in + 32) != 0 || info->first_seq == 0)
		return TJOURNAL_CORRUPT;
	return 0;
}

void tj_entry_header_encode(uint8_t out[TJOURNAL_ENTRY_HEADER_SIZE], uint32_t salt, uint64_t seq,
                            uint64_t ts_ms, const void *data, uint32_t len)
{
	tj_put32(out, TJ_ENTRY_MAGIC);
	tj_put32(out + 4, len);
	tj_put64(out + 8, seq);
	tj_put64(out + 16, ts_ms);
	tj_put32(out + 24, tj_crc32c(salt, data, len));
	tj_put32(out + 28, tj_crc32c(salt, out, 28));
}

void tj_ack_encode(uint8_t out[TJOURNAL_ACK_RECORD_SIZE], uint32_t salt, uint64_t seq)
{
	tj_put32(out, TJ_ACK_MAGIC);
	tj_put64(out + 8, seq);
	uint32_t crc = tj_crc32c(salt, out, 4);
	tj_put32(out + 4, tj_crc32c(crc, out + 8, 8));
}

/* ---- reader ---- */

typedef struct reader {
	const uint8_t *mem; /* whole segment, or NULL for fd mode */
	int fd;
	uint64_t size;
	uint8_t *buf;
	size_t cap;
	uint64_t win_off;
	size_t win_len;
	int err;
} reader;

/* n bytes at off; the caller guarantees off + n <= size. The pointer stays
 * valid until the next call. */
static const uint8_t *rd_get(reader *r, uint64_t off, size_t n)
{
	if (r->mem)
		return r->mem + off;
	if (off >= r->win_off && off + n <= r->win_off + r->win_len)
		return r->buf + (off - r->win_off);
	size_t want = n < WINDOW ? WINDOW : n;
	if (want > r->size - off)
		want = (size_t)(r->size - off);
	if (want > r->cap) {
		uint8_t *nb = realloc(r->buf, want);
		if (!nb) {
			r->err = TJOURNAL_ENOMEM;
			return NULL;
		}
		r->buf = nb;
		r->cap = want;
	}
	size_t got = 0;
	while (got < want) {
		ssize_t k = pread(r->fd, r->buf + got, want - got, (off_t)(off + got));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) { /* an error, or the file shrank under us */
			r->err = TJOURNAL_EIO;
			r->win_len = 0;
			return NULL;
		}
		got += (size_t)k;
	}
	r->win_off = off;
	r->win_len = want;
	return r->buf;
}

enum check {
	CHK_OK,
	CHK_SHORT,   /* fewer bytes left than an entry header */
	CHK_HEADER,  /* no magic, or header CRC mismatch */
	CHK_TORN,    /* valid header, payload runs past the end of the file */
	CHK_PAYLOAD, /* payload CRC mismatch */
	CHK_SEQ,     /* sequence number not increasing */
	CHK_IO,
};

static const char *check_reason[] = {
    [CHK_SHORT] = "truncated entry header at end of segment",
    [CHK_HEADER] = "bad entry header (magic or checksum)",
    [CHK_TORN] = "entry truncated at end of segment (torn write)",
    [CHK_PAYLOAD] = "payload checksum mismatch",
    [CHK_SEQ] = "sequence number out of order",
};

typedef struct entry_hdr {
	uint32_t len;
	uint64_t seq;
	uint64_t ts;
} entry_hdr;

static enum check check_entry(reader *r, uint64_t off, uint32_t salt, uint64_t prev_seq,
                              entry_hdr *h, const uint8_t **payload)
{
	if (r->size - off < TJOURNAL_ENTRY_HEADER_SIZE)
		return CHK_SHORT;
	const uint8_t *p = rd_get(r, off, TJOURNAL_ENTRY_HEADER_SIZE);
	if (!p)
		return CHK_IO;
	if (tj_get32(p) != TJ_ENTRY_MAGIC || tj_get32(p + 28) != tj_crc32c(salt, p, 28))
		return CHK_HEADER;
	h->len = tj_get32(p + 4);
	h->seq = tj_get64(p + 8);
	h->ts = tj_get64(p + 16);
	uint32_t pcrc = tj_get32(p + 24);
	if (h->len > TJOURNAL_FORMAT_MAX_ENTRY)
		return CHK_HEADER;
	if (r->size - off - TJOURNAL_ENTRY_HEADER_SIZE < h->len)
		return CHK_TORN;
	const uint8_t *d = (const uint8_t *)"";
	if (h->len) {
		d = rd_get(r, off + TJOURNAL_ENTRY_HEADER_SIZE, h->len);
		if (!d)
			return CHK_IO;
	}
	if (tj_crc32c(salt, d, h->len) != pcrc)
		return CHK_PAYLOAD;
	if (h->seq <= prev_seq)
		return CHK_SEQ;
	*payload = d;
	return CHK_OK;
}

/* The next offset >= from holding a valid entry, or r->size. */
static uint64_t resync(reader *r, uint64_t from, uint32_t salt, uint64_t prev_seq)
{
	uint64_t p = from;
	while (p + TJOURNAL_ENTRY_HEADER_SIZE <= r->size) {
		size_t n = r->size - p < SCAN_CHUNK ? (size_t)(r->size - p) : SCAN_CHUNK;
		const uint8_t *c = rd_get(r, p, n);
		if (!c)
			return r->size;
		size_t i = 0;
		for (; i + 4 <= n; i++)
			if (c[i] == (TJ_ENTRY_MAGIC & 0xff) && tj_get32(c + i) == TJ_ENTRY_MAGIC)
				break;
		if (i + 4 > n) {
			p += n - 3;
			continue;
		}
		entry_hdr h;
		const uint8_t *payload;
		enum check k = check_entry(r, p + i, salt, prev_seq, &h, &payload);
		if (k == CHK_OK)
			return p + i;
		if (k == CHK_IO)
			return r->size;
		p += i + 1;
	}
	return r->size;
}

static int scan(reader *r, const tjournal_scan_visitor *v)
{
	if (r->size < TJOURNAL_SEGMENT_HEADER_SIZE)
		return TJOURNAL_CORRUPT;
	const uint8_t *p = rd_get(r, 0, TJOURNAL_SEGMENT_HEADER_SIZE);
	if (!p)
		return r->err;
	tjournal_segment_info info;
	if (tj_segment_header_decode(p, &info) != 0)
		return TJOURNAL_CORRUPT;
	if (v->segment) {
		int rc = v->segment(v->opaque, &info);
		if (rc)
			return rc;
	}
	uint64_t off = TJOURNAL_SEGMENT_HEADER_SIZE;
	uint64_t prev_seq = info.first_seq - 1;
	while (off < r->size) {
		entry_hdr h;
		const uint8_t *payload = NULL;
		enum check k = check_entry(r, off, info.salt, prev_seq, &h, &payload);
		if (k == CHK_IO)
			return r->err;
		if (k == CHK_OK) {
			if (v->entry) {
				int rc = v->entry(v->opaque, off, h.seq, h.ts, payload, h.len);
				if (rc)
					return rc;
			}
			prev_seq = h.seq;
			off += TJOURNAL_ENTRY_HEADER_SIZE + (uint64_t)h.len;
			continue;
		}
		uint64_t next = resync(r, off + 1, info.salt, prev_seq);
		if (r->err)
			return r->err;
		if (v->corrupt)
			v->corrupt(v->opaque, off, next - off, check_reason[k]);
		off = next;
	}
	return 0;
}

int tjournal_scan_mem(const void *buf, size_t len, const tjournal_scan_visitor *v)
{
	reader r = {.mem = buf, .fd = -1, .size = len};
	if (!buf && len)
		return TJOURNAL_EINVAL;
	static const uint8_t empty[1];
	if (!buf)
		r.mem = empty;
	return scan(&r, v);
}

int tjournal_scan_fd(int fd, const tjournal_scan_visitor *v)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return TJOURNAL_EIO;
	reader r = {.fd = fd, .size = (uint64_t)st.st_size};
	int rc = scan(&r, v);
	free(r.buf);
	return rc;
}

int64_t tjournal_scan_acks_fd(int fd, uint32_t salt, void (*cb)(void *opaque, uint64_t seq),
                              void *opaque, uint64_t *bad)
{
	uint8_t buf[512 * TJOURNAL_ACK_RECORD_SIZE];
	uint64_t off = 0, valid_end = 0, nbad = 0;

	for (;;) {
		ssize_t k = pread(fd, buf, sizeof(buf), (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return TJOURNAL_EIO;
		if (k == 0)
			break;
		size_t n = (size_t)k / TJOURNAL_ACK_RECORD_SIZE;
		for (size_t i = 0; i < n; i++) {
			const uint8_t *a = buf + i * TJOURNAL_ACK_RECORD_SIZE;
			uint32_t crc = tj_crc32c(tj_crc32c(salt, a, 4), a + 8, 8);
			if (tj_get32(a) != TJ_ACK_MAGIC || tj_get32(a + 4) != crc) {
				nbad++;
				continue;
			}
			if (cb)
				cb(opaque, tj_get64(a + 8));
			valid_end = off + (i + 1) * TJOURNAL_ACK_RECORD_SIZE;
		}
		if (n == 0) /* a torn record at the very end */
			break;
		off += n * TJOURNAL_ACK_RECORD_SIZE;
	}
	/* Invalid slots after the last valid record are a torn tail, not a hole. */
	if (bad)
		*bad = nbad;
	return (int64_t)valid_end;
}
