/*
 * Durable local journal: accepted events are appended here before the
 * client is acknowledged, released once Kafka confirms delivery, and
 * replayed after a restart if they were never confirmed.
 *
 * On disk a journal is a directory:
 *
 *   LOCK                  flock()ed by the one process that opens it read-write
 *   000000000001.seg      segment: 40-byte header, then entries back to back
 *   000000000001.ack      releases of entries of segment 1 (created lazily)
 *   000000000007.seg.corrupt  a segment whose header was unreadable, set aside
 *
 * Segment header (little-endian): "TRIBJSEG", u32 version (1), u32 salt
 * (random per segment), u64 segment id, u64 first sequence number, u32
 * reserved (0), u32 CRC32C of the preceding 36 bytes.
 *
 * Entry: 32-byte header then the payload. u32 magic 0xE1A7D0B5, u32 payload
 * length, u64 sequence number, u64 wall-clock time (ms since the epoch),
 * u32 CRC32C of the payload, u32 CRC32C of the preceding 28 header bytes.
 * Both CRCs are seeded with the segment's salt, so bytes that a client
 * publishes (which end up verbatim inside payloads) can never pass for an
 * entry header when the reader resynchronises after a corrupt region.
 *
 * Ack record: 16 bytes: u32 magic 0xA5C3E10F, u32 CRC32C (salt-seeded) of
 * the magic and the sequence number, u64 sequence number.
 *
 * Crash consistency
 * -----------------
 * - Entries and release records are written with write(2) before the call
 *   returns; there is no user-space buffer. A crash of the process alone
 *   (SIGKILL, abort) loses nothing under any sync policy.
 * - Power loss / kernel crash: TJOURNAL_SYNC_ALWAYS fdatasync()s the segment
 *   before tjournal_append() returns (and the directory when the append had
 *   to create a segment), so every acknowledged entry survives.
 *   TJOURNAL_SYNC_INTERVAL may lose entries appended during the last
 *   sync_interval_ms; TJOURNAL_SYNC_NEVER leaves it to the kernel.
 * - Releases are made durable by the background thread every
 *   sync_interval_ms (all policies but NEVER). Losing a release only means
 *   the entry is replayed again: at-least-once, never loss. Consumers
 *   deduplicate on the CloudEvents id.
 * - A segment is deleted (its .seg unlinked) once all its entries are
 *   released and it is no longer the one being appended to. Its .ack is
 *   unlinked only after the directory has been fsync()ed, so a crash can
 *   never leave a segment without the releases recorded for it.
 * - A torn or corrupt region (partial last entry, bad CRC, garbage) is
 *   reported through the log callback and counted, then skipped: the reader
 *   resynchronises on the next valid entry header. Entries before and after
 *   it are replayed. Segments written before an open are never appended to
 *   again, so a torn tail stays a tail.
 * - After a failed write (ENOSPC, EIO) or a failed fdatasync under ALWAYS the
 *   file is truncated back to where the entry started and the call fails:
 *   a rejected event is never replayed. If even the truncate fails, the
 *   segment is sealed and the partial entry is later skipped as corrupt.
 *
 * Threads: append/replay/stats may be called from one thread and release
 * from another (e.g. librdkafka's delivery-report thread); every function
 * but open/close is thread-safe. Appends are serialised. No call may be in
 * progress or follow once tjournal_close() has started (destroy the Kafka
 * producer, whose delivery reports release, before closing the journal).
 *
 * Sequence numbers increase by one per append and survive restarts as long
 * as the journal holds a segment; a journal that was emptied and reopened
 * starts again at 1.
 */
#ifndef TRIBUTARY_JOURNAL_H
#define TRIBUTARY_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Return codes (0 is success). */
enum {
	TJOURNAL_OK = 0,
	TJOURNAL_EINVAL = -1,  /* bad argument, entry too large, read-only journal */
	TJOURNAL_FULL = -2,    /* max_bytes reached: reject the event ("store is full") */
	TJOURNAL_NOSPACE = -3, /* the filesystem is full (ENOSPC/EDQUOT); nothing was kept */
	TJOURNAL_EIO = -4,     /* other I/O error; nothing was kept */
	TJOURNAL_ENOMEM = -5,
	TJOURNAL_CORRUPT = -6, /* unusable segment header / malformed record */
	TJOURNAL_LOCKED = -7,  /* another process has the journal open read-write */
};

const char *tjournal_strerror(int code);

typedef enum tjournal_sync {
	TJOURNAL_SYNC_ALWAYS = 0, /* fdatasync before append returns: the no-loss setting */
	TJOURNAL_SYNC_INTERVAL,   /* background fdatasync every sync_interval_ms */
	TJOURNAL_SYNC_NEVER,      /* the kernel decides; survives process crashes only */
} tjournal_sync;

/* "always" | "interval" | "never" -> 0, else TJOURNAL_EINVAL. */
int tjournal_sync_from_string(const char *s, tjournal_sync *out);

typedef enum tjournal_level {
	TJOURNAL_LOG_INFO,
	TJOURNAL_LOG_WARNING, /* corrupt regions, failed syncs, failed release writes */
	TJOURNAL_LOG_ERROR,
} tjournal_level;

/* Called from whichever thread is inside the journal (including its sync
 * thread), possibly with the journal's lock held: must not call back into
 * the journal. */
typedef void (*tjournal_log_fn)(void *opaque, tjournal_level level, const char *msg);

/* A zeroed struct (or NULL) means: sync ALWAYS, defaults below. */
typedef struct tjournal_options {
	tjournal_sync sync;
	unsigned sync_interval_ms; /* INTERVAL data syncs and release syncs; default 10 */
	uint64_t max_bytes;       /* segments + ack files; beyond it TJOURNAL_FULL; default 1 GiB */
	uint64_t segment_bytes;   /* roll to a new segment beyond this; default 64 MiB */
	uint32_t max_entry_bytes; /* largest payload; default 16 MiB, <= segment_bytes - 72 */
	bool read_only;           /* inspect only: no lock, no writes, no deletes */
	tjournal_log_fn log;
	void *log_opaque;
} tjournal_options;

#define TJOURNAL_DEFAULT_SYNC_INTERVAL_MS 10u
#define TJOURNAL_DEFAULT_MAX_BYTES (1ull << 30)
#define TJOURNAL_DEFAULT_SEGMENT_BYTES (64ull << 20)
#define TJOURNAL_DEFAULT_MAX_ENTRY_BYTES (16u << 20)
#define TJOURNAL_SEGMENT_HEADER_SIZE 40u
#define TJOURNAL_ENTRY_HEADER_SIZE 32u
#define TJOURNAL_ACK_RECORD_SIZE 16u
#define TJOURNAL_FORMAT_MAX_ENTRY (1u << 30) /* hard limit of the format */

typedef struct tjournal tjournal;

/* Opens (creating the directory, one level, if missing) and loads the
 * journal: scans every segment, applies its releases, deletes segments with
 * nothing left to replay. A new segment is created by the first append.
 * NULL on failure with `err` filled. */
tjournal *tjournal_open(const char *dir, const tjournal_options *opts, char *err, size_t errlen);

/* Flushes and syncs (except under NEVER), deletes fully released segments,
 * stops the sync thread. NULL is accepted. */
void tjournal_close(tjournal *j);

/* Appends a payload (0 < len <= max_entry_bytes). On success *seq_out (may be
 * NULL) gets its sequence number, > 0 and increasing. On failure nothing is
 * kept and no sequence number is consumed. */
int tjournal_append(tjournal *j, const void *data, size_t len, uint64_t *seq_out);

/* Marks an entry delivered. Idempotent; unknown sequence numbers are counted
 * and ignored. Any order. */
void tjournal_release(tjournal *j, uint64_t seq);
void tjournal_release_many(tjournal *j, const uint64_t *seqs, size_t n);

/* Calls `cb` for every unreleased entry, oldest first, including entries
 * appended by this process. A non-zero return from `cb` stops and is
 * returned. Appends wait while a replay runs, so `cb` must not append; it
 * may release (typically later, from the delivery-report thread). Entries
 * released while the replay runs are not passed to `cb` anymore. */
typedef int (*tjournal_replay_fn)(uint64_t seq, const void *data, size_t len, void *opaque);
int tjournal_replay(tjournal *j, tjournal_replay_fn cb, void *opaque);

/* The same for a journal in use: appends go on while it runs (`cb` may even
 * append). Passes the unreleased entries with from_seq <= seq < the next
 * sequence number when the call starts, oldest first (entries appended
 * meanwhile are not passed); segments wholly below from_seq are not read. */
int tjournal_replay_from(tjournal *j, uint64_t from_seq, tjournal_replay_fn cb, void *opaque);

/* fdatasync everything written so far (segments, ack files, directory) now,
 * whatever the policy. Waits for a pass the sync thread has under way, so
 * on return all of it is durable and deleted segments' .ack files are gone. */
int tjournal_sync_now(tjournal *j);

typedef struct tjournal_stats {
	uint64_t depth; /* unreleased entries */
	uint64_t bytes; /* segment + ack file bytes */
	uint64_t max_bytes;
	uint64_t oldest_age_ms; /* age of the oldest unreleased entry; 0 if none */
	uint64_t oldest_seq;    /* 0 if none */
	uint64_t next_seq;
	uint32_t segments;
	bool full;         /* the last append was refused for lack of room */
	uint64_t appended; /* since open */
	uint64_t released; /* since open */
	uint64_t unknown_releases;
	uint64_t corrupt_regions; /* found while loading */
	uint64_t corrupt_bytes;
	uint64_t io_errors; /* failed writes/syncs since open */
} tjournal_stats;

/* A consistent snapshot; cheap (O(segments)), callable from any thread.
 * (Named get_stats because tjournal_stats is the struct.) */
void tjournal_get_stats(tjournal *j, tjournal_stats *out);

/* ---- Reading segment files directly (operator tool, fuzzing, tests) ---- */

typedef struct tjournal_segment_info {
	uint32_t version;
	uint32_t salt;
	uint64_t id;
	uint64_t first_seq;
} tjournal_segment_info;

typedef struct tjournal_scan_visitor {
	/* Each callback is optional; a non-zero return from segment/entry stops
	 * the scan and is returned. `data` is valid during the call only. */
	int (*segment)(void *opaque, const tjournal_segment_info *info);
	int (*entry)(void *opaque, uint64_t offset, uint64_t seq, uint64_t ts_ms, const void *data,
	             size_t len);
	void (*corrupt)(void *opaque, uint64_t offset, uint64_t len, const char *reason);
	void *opaque;
} tjournal_scan_visitor;

/* Scans a whole segment, resynchronising after corrupt regions. Returns 0,
 * TJOURNAL_CORRUPT if the segment header is unusable (then nothing else is
 * reported), TJOURNAL_EIO/ENOMEM, or a callback's non-zero value. */
int tjournal_scan_mem(const void *buf, size_t len, const tjournal_scan_visitor *v);
int tjournal_scan_fd(int fd, const tjournal_scan_visitor *v);

/* Reads an ack file written for a segment with `salt`; calls `cb` per valid
 * record. Returns the number of bytes that held valid records (a torn or
 * corrupt tail is not counted), or a negative TJOURNAL_ code. *bad (may be
 * NULL) gets the number of invalid 16-byte slots. */
int64_t tjournal_scan_acks_fd(int fd, uint32_t salt, void (*cb)(void *opaque, uint64_t seq),
                              void *opaque, uint64_t *bad);

/* ---- Records: what the plugin journals for one Kafka message ---- */

typedef struct tjournal_header {
	const char *name; /* no NUL inside; NUL-terminated after decode */
	size_t name_len;
	const void *value; /* NULL = null header value */
	size_t value_len;
} tjournal_header;

typedef struct tjournal_record {
	const char *topic; /* non-empty, no NUL inside; NUL-terminated after decode */
	size_t topic_len;
	const void *key; /* NULL = null key */
	size_t key_len;
	const tjournal_header *headers;
	size_t header_count;
	const void *value; /* NULL = null value (tombstone) */
	size_t value_len;
} tjournal_record;

/* Encoding: u8 version (1); u16 topic length + topic; u32 key length
 * (0xFFFFFFFF = null) + key; u32 header count, each u16 name length + name
 * and u32 value length (0xFFFFFFFF = null) + value; u32 value length
 * (0xFFFFFFFF = null) + value. Little-endian, nothing after the value. */

/* Encoded size, or 0 if the record cannot be encoded (empty topic, NUL in a
 * topic or header name, a field too long). */
size_t tjournal_record_size(const tjournal_record *r);

/* Encodes into `buf`; returns the size written, 0 if it does not fit or the
 * record is invalid. */
size_t tjournal_record_encode(const tjournal_record *r, void *buf, size_t buflen);

/* Decodes a blob into one malloc()ed block (free with free()) holding the
 * record, its header array and NUL-terminated copies of every field.
 * Returns 0, TJOURNAL_CORRUPT for a malformed blob, TJOURNAL_ENOMEM. */
int tjournal_record_decode(const void *blob, size_t len, tjournal_record **out);

/* Decodes without copying: *r's fields point into the blob (nothing is
 * NUL-terminated) and its headers into `hdrs`, of which there are `max`.
 * Returns the record's header count (only the first `max` are filled when
 * it has more: call again with room for all), or TJOURNAL_CORRUPT. */
int tjournal_record_view(const void *blob, size_t len, tjournal_record *r, tjournal_header *hdrs,
                         size_t max);

#endif
