/* Journal: append/replay/release, rollover, persistence of releases,
 * corruption handling, full and out-of-space behaviour. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/resource.h>
#include <time.h>

#include "test_journal_util.h"

typedef struct fx {
	char *dir;
	jt_log log;
	tjournal_options o;
} fx;

static int setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	f->dir = jt_tmpdir();
	assert_non_null(f->dir);
	f->o.log = jt_log_fn;
	f->o.log_opaque = &f->log;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;
	jt_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static tjournal *jopen(fx *f)
{
	char err[256];
	tjournal *j = tjournal_open(f->dir, &f->o, err, sizeof(err));
	if (!j)
		fail_msg("tjournal_open: %s", err);
	return j;
}

/* Appends entry `tag` of `len` bytes; returns its seq. */
static uint64_t put(tjournal *j, uint64_t tag, size_t len)
{
	uint8_t *buf = malloc(len);
	uint64_t seq = 0;
	jt_fill(buf, len, tag);
	int rc = tjournal_append(j, buf, len, &seq);
	free(buf);
	if (rc != 0)
		fail_msg("append of %zu bytes: %s", len, tjournal_strerror(rc));
	return seq;
}

static jt_seen replay(tjournal *j)
{
	jt_seen s = {0};
	assert_int_equal(tjournal_replay(j, jt_collect, &s), 0);
	assert_int_equal(s.bad, 0);
	return s;
}

static void test_round_trip(void **state)
{
	fx *f = *state;
	tjournal *j = jopen(f);
	for (uint64_t i = 1; i <= 100; i++)
		assert_int_equal(put(j, i, 8 + (i * 37) % 3000), i);

	jt_seen s = replay(j);
	assert_int_equal(s.n, 100);
	for (size_t i = 0; i < s.n; i++) {
		assert_int_equal(s.seq[i], i + 1);
		assert_int_equal(s.tag[i], i + 1);
	}
	jt_seen_free(&s);

	for (uint64_t i = 2; i <= 100; i += 2)
		tjournal_release(j, i);
	tjournal_stats st;
	tjournal_get_stats(j, &st);
	assert_int_equal(st.depth, 50);
	assert_int_equal(st.appended, 100);
	assert_int_equal(st.released, 50);
	assert_int_equal(st.oldest_seq, 1);
	tjournal_close(j);

	j = jopen(f);
	s = replay(j);
	assert_int_equal(s.n, 50);
	for (size_t i = 0; i < s.n; i++) {
		assert_int_equal(s.seq[i], 2 * i + 1);
		assert_int_equal(s.tag[i], 2 * i + 1);
	}
	jt_seen_free(&s);
	tjournal_get_stats(j, &st);
	assert_int_equal(st.depth, 50);
	assert_int_equal(st.next_seq, 101);
	assert_int_equal(st.corrupt_regions, 0);
	assert_int_equal(put(j, 101, 100), 101);
	tjournal_close(j);
	assert_int_equal(f->log.warnings + f->log.errors, 0);
}

static void test_release_idempotent_and_unknown(void **state)
{
	fx *f = *state;
	tjournal *j = jopen(f);
	for (uint64_t i = 1; i <= 5; i++)
		put(j, i, 64);
	tjournal_release(j, 3);
	tjournal_release(j, 3);
	tjournal_release(j, 0);
	tjournal_release(j, 6);
	tjournal_release(j, 1000000);
	tjournal_stats st;
	tjournal_get_stats(j, &st);
	assert_int_equal(st.depth, 4);
	assert_int_equal(st.released, 1);
	assert_int_equal(st.unknown_releases, 4);
	tjournal_close(j);

	/* Reopen: a release of an entry released before the restart is unknown. */
	j = jopen(f);
	tjournal_release(j, 3);
	tjournal_get_stats(j, &st);
	assert_int_equal(st.depth, 4);
	assert_int_equal(st.unknown_releases, 1);
	tjournal_close(j);
}

static void test_rollover_and_delete(void **state)
{
	fx *f = *state;
	f->o.segment_bytes = 4096;
	tjournal *j = jopen(f);
	/* 40-byte segment header + 7 entries of 32 + 500 = 3764; an 8th rolls. */
	for (uint64_t i = 1; i <= 50; i++)
		put(j, i, 500);
	assert_int_equal(jt_count(f->dir, ".seg"), 8); /* 7 full + the active one */
	assert_int_equal(jt_size(f->dir, "000000000001.seg"), 40 + 7 * 532);

	tjournal_stats st;
	tjournal_get_stats(j, &st);
	assert_int_equal(st.segments, 8);
	assert_int_equal(st.bytes, 8 * 40 + 50 * 532);
	uint64_t before = st.bytes;

	/* Segment 1 holds 1..7: it goes with the last of them, not before. */
	for (uint64_t i = 7; i >= 2; i--)
		tjournal_release(j, i);
	assert_true(jt_size(f->dir, "000000000001.seg") > 0);
	tjournal_release(j, 1);
	assert_int_equal(jt_size(f->dir, "000000000001.seg"), -1);
	assert_true(jt_size(f->dir, "000000000002.seg") > 0);
	tjournal_get_stats(j, &st);
	assert_int_equal(st.segments, 7);
	assert_int_equal(st.depth, 43);
	/* The 40 + 7*532 segment went; its 7 release records too. */
	assert_int_equal(st.bytes, before - (40 + 7 * 532));
	assert_int_equal(st.oldest_seq, 8);

	/* The .ack of a deleted segment goes after a directory sync. */
	assert_int_equal(tjournal_sync_now(j), 0);
	assert_int_equal(jt_size(f->dir, "000000000001.ack"), -1);

	for (uint64_t i = 8; i <= 50; i++)
		tjournal_release(j, i);
	tjournal_get_stats(j, &st);
	assert_int_equal(st.depth, 0);
	assert_int_equal(st.oldest_seq, 0);
	assert_int_equal(st.segments, 1); /* the active one stays until close */
	tjournal_close(j);
	assert_int_equal(jt_count(f->dir, ".seg"), 0);
	assert_int_equal(jt_count(f->dir, ".ack"), 0);

	j = jopen(f);
	jt_seen s = replay(j);
	assert_int_equal(s.n, 0);
	tjournal_close(j);
}

/* tjournal_sync_now() waits for a pass the sync thread is in the middle of:
 * on return, the .ack of every segment deleted before the call is gone
 * (CI once saw it still there, the thread having taken the pending list). */
static void test_sync_now_waits_for_running_pass(void **state)
{
	fx *f = *state;
	f->o.segment_bytes = 4096;
	f->o.sync = TJOURNAL_SYNC_INTERVAL; /* fast appends: a short round */
	f->o.sync_interval_ms = 1;          /* a busy sync thread */
	tjournal *j = jopen(f);
	uint64_t seq = 0;
	for (uint64_t id = 1; id <= 400; id++) {
		/* 7 entries fill segment `id`; the 8th starts the next one. */
		uint64_t first = seq + 1;
		for (int k = 0; k < 7; k++)
			seq = put(j, seq + 1, 500);
		for (uint64_t s = first; s <= seq; s++)
			tjournal_release(j, s);
		if (id == 1)
			continue; /* segment 1 is still the active one */
		char name[40];
		snprintf(name, sizeof(name), "%012" PRIu64 ".ack", id - 1);
		assert_int_equal(tjournal_sync_now(j), 0);
		if (jt_size(f->dir, name) != -1)
			fail_msg("round %" PRIu64 ": %s outlived tjournal_sync_now()", id, name);
	}
	tjournal_close(j);
}

/* Releases in shuffled order, across sealed and active segments, persist. */
static void test_releases_persist_out_of_order(void **state)
{
	fx *f = *state;
	f->o.segment_bytes = 8192;
	tjournal *j = jopen(f);
	enum { N = 300 };
	for (uint64_t i = 1; i <= N; i++)
		put(j, i, 100 + i % 50);
	uint64_t order[N];
	for (int i = 0; i < N; i++)
		order[i] = (uint64_t)i + 1;
	srand(7);
	for (int i = N - 1; i > 0; i--) {
		int k = rand() % (i + 1);
		uint64_t t = order[i];
		order[i] = order[k];
		order[k] = t;
	}
	bool released[N + 1] = {0};
	for (int i = 0; i < N / 2; i++) {
		tjournal_release(j, order[i]);
		released[order[i]] = true;
	}
	tjournal_close(j);

	for (int round = 0; round < 2; round++) {
		j = jopen(f);
		jt_seen s = replay(j);
		size_t expect = 0;
		for (int i = 1; i <= N; i++)
			expect += !released[i];
		assert_int_equal(s.n, expect);
		uint64_t prev = 0;
		for (size_t i = 0; i < s.n; i++) {
			assert_false(released[s.seq[i]]);
			assert_int_equal(s.tag[i], s.seq[i]);
			assert_true(s.seq[i] > prev);
			prev = s.seq[i];
		}
		jt_seen_free(&s);
		/* A second batch, through release_many, after the restart. */
		uint64_t batch[N / 4];
		for (int i = 0; i < N / 4; i++) {
			batch[i] = order[N / 2 + round * (N / 4) + i];
			released[batch[i]] = true;
		}
		tjournal_release_many(j, batch, N / 4);
		tjournal_close(j);
	}
	j = jopen(f);
	jt_seen s = replay(j);
	assert_int_equal(s.n, 0);
	tjournal_close(j);
	assert_int_equal(f->log.warnings + f->log.errors, 0);
}

/* Appends `n` entries of `len` bytes into one segment and closes. */
static void make_segment(fx *f, int n, size_t len)
{
	tjournal *j = jopen(f);
	for (int i = 1; i <= n; i++)
		put(j, (uint64_t)i, len);
	tjournal_close(j);
	assert_int_equal(jt_count(f->dir, ".seg"), 1);
}

static void expect_replay(fx *f, const uint64_t *seqs, size_t n, uint64_t regions)
{
	tjournal *j = jopen(f);
	jt_seen s = replay(j);
	assert_int_equal(s.n, n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(s.seq[i], seqs[i]);
		assert_int_equal(s.tag[i], seqs[i]);
	}
	jt_seen_free(&s);
	tjournal_stats st;
	tjournal_get_stats(j, &st);
	assert_int_equal(st.corrupt_regions, regions);
	assert_int_equal(st.depth, n);
	tjournal_close(j);
}

#define ENTRY(len) (32 + (len))
#define OFF(k, len) (40 + ((k)-1) * ENTRY(len)) /* offset of entry k (1-based) */

static void test_torn_tail(void **state)
{
	fx *f = *state;
	make_segment(f, 10, 200);
	const char *seg = "000000000001.seg";
	assert_int_equal(jt_size(f->dir, seg), OFF(11, 200));
	/* Crash in the middle of entry 10's payload. */
	assert_int_equal(jt_truncate(f->dir, seg, OFF(10, 200) + 32 + 77), 0);
	uint64_t want[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
	expect_replay(f, want, 9, 1);
	assert_non_null(strstr(f->log.all, "torn"));
	assert_int_equal(f->log.warnings, 1);

	/* New entries go to a new segment and replay after the old ones. */
	tjournal *j = jopen(f);
	assert_int_equal(put(j, 10, 50), 10);
	jt_seen s = replay(j);
	assert_int_equal(s.n, 10);
	assert_int_equal(s.seq[9], 10);
	assert_int_equal(s.tag[9], 10);
	jt_seen_free(&s);
	tjournal_close(j);
}

static void test_torn_header(void **state)
{
	fx *f = *state;
	make_segment(f, 4, 100);
	/* Only 11 bytes of entry 4's header made it. */
	assert_int_equal(jt_truncate(f->dir, "000000000001.seg", OFF(4, 100) + 11), 0);
	uint64_t want[] = {1, 2, 3};
	expect_replay(f, want, 3, 1);
	assert_non_null(strstr(f->log.all, "truncated entry header"));
}

static void test_corrupt_payload_resync(void **state)
{
	fx *f = *state;
	make_segment(f, 10, 200);
	assert_int_equal(jt_flip(f->dir, "000000000001.seg", OFF(5, 200) + 32 + 100, 0x40), 0);
	uint64_t want[] = {1, 2, 3, 4, 6, 7, 8, 9, 10};
	expect_replay(f, want, 9, 1);
	assert_non_null(strstr(f->log.all, "payload checksum mismatch"));
	/* Exactly entry 5 was skipped. */
	char where[128];
	snprintf(where, sizeof(where), "at offset %d, %d bytes skipped", OFF(5, 200), ENTRY(200));
	assert_non_null(strstr(f->log.all, where));
}

static void test_corrupt_header_resync(void **state)
{
	fx *f = *state;
	make_segment(f, 6, 300);
	/* Damage the magic of entry 2 and the length field of entry 5. */
	assert_int_equal(jt_flip(f->dir, "000000000001.seg", OFF(2, 300), 0xff), 0);
	assert_int_equal(jt_flip(f->dir, "000000000001.seg", OFF(5, 300) + 5, 0x01), 0);
	uint64_t want[] = {1, 3, 4, 6};
	expect_replay(f, want, 4, 2);
	assert_non_null(strstr(f->log.all, "bad entry header"));
}

static void test_garbage_region(void **state)
{
	fx *f = *state;
	make_segment(f, 8, 256);
	/* Overwrite from the middle of entry 3 to the middle of entry 5,
	 * including a fake magic, with garbage. */
	char p[1024];
	snprintf(p, sizeof(p), "%s/000000000001.seg", f->dir);
	int fd = open(p, O_RDWR);
	assert_true(fd >= 0);
	uint8_t junk[2 * ENTRY(256)];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 97 + 13);
	memcpy(junk + 100, "\xb5\xd0\xa7\xe1", 4);
	assert_int_equal(pwrite(fd, junk, sizeof(junk), OFF(3, 256) + 40), (ssize_t)sizeof(junk));
	close(fd);
	uint64_t want[] = {1, 2, 6, 7, 8};
	expect_replay(f, want, 5, 1);
}

/* Whole file of garbage after a valid header, and garbage appended. */
static void test_trailing_garbage(void **state)
{
	fx *f = *state;
	make_segment(f, 3, 64);
	char p[1024];
	snprintf(p, sizeof(p), "%s/000000000001.seg", f->dir);
	FILE *fp = fopen(p, "ab");
	assert_non_null(fp);
	for (int i = 0; i < 5000; i++)
		fputc((i * 31) & 0xff, fp);
	fclose(fp);
	uint64_t want[] = {1, 2, 3};
	expect_replay(f, want, 3, 1);
}

static void test_segment_header_corrupt(void **state)
{
	fx *f = *state;
	f->o.segment_bytes = 1024;
	tjournal *j = jopen(f);
	for (int i = 1; i <= 6; i++) /* 3 per segment */
		put(j, (uint64_t)i, 250);
	tjournal_close(j);
	assert_int_equal(jt_count(f->dir, ".seg"), 2);
	assert_int_equal(jt_flip(f->dir, "000000000001.seg", 20, 0x10), 0);
	uint64_t want[] = {4, 5, 6};
	expect_replay(f, want, 3, 1);
	assert_int_equal(f->log.errors, 1);
	assert_non_null(strstr(f->log.all, "set aside"));
	assert_true(jt_size(f->dir, "000000000001.seg.corrupt") > 0);
}

/* A crash right after creating a segment file leaves it short. */
static void test_incomplete_segment_file(void **state)
{
	fx *f = *state;
	make_segment(f, 2, 64);
	char p[1024];
	snprintf(p, sizeof(p), "%s/000000000002.seg", f->dir);
	FILE *fp = fopen(p, "wb");
	fwrite("TRIBJ", 1, 5, fp);
	fclose(fp);
	uint64_t want[] = {1, 2};
	expect_replay(f, want, 2, 0);
	assert_int_equal(jt_size(f->dir, "000000000002.seg"), -1);
}

static void test_torn_ack_file(void **state)
{
	fx *f = *state;
	tjournal *j = jopen(f);
	for (int i = 1; i <= 6; i++)
		put(j, (uint64_t)i, 64);
	tjournal_release(j, 2);
	tjournal_release(j, 4);
	tjournal_release(j, 5);
	tjournal_close(j);
	assert_int_equal(jt_size(f->dir, "000000000001.ack"), 48);
	/* The last release record was torn. */
	assert_int_equal(jt_truncate(f->dir, "000000000001.ack", 40), 0);
	uint64_t want[] = {1, 3, 5, 6};
	expect_replay(f, want, 4, 0);
	assert_int_equal(jt_size(f->dir, "000000000001.ack"), 32);

	/* Releases after the repair line up again. */
	j = jopen(f);
	tjournal_release(j, 5);
	tjournal_release(j, 1);
	tjournal_close(j);
	uint64_t want2[] = {3, 6};
	expect_replay(f, want2, 2, 0);

	/* A damaged record in the middle is ignored, the others still apply. */
	assert_int_equal(jt_flip(f->dir, "000000000001.ack", 16 + 9, 0x01), 0);
	uint64_t want3[] = {3, 4, 6};
	expect_replay(f, want3, 3, 0);
}

static void test_full(void **state)
{
	fx *f = *state;
	f->o.segment_bytes = 4096;
	f->o.max_bytes = 3 * 4096;
	tjournal *j = jopen(f);
	uint8_t buf[500];
	uint64_t seq = 0, n = 0;
	int rc;
	for (;;) {
		jt_fill(buf, sizeof(buf), n + 1);
		rc = tjournal_append(j, buf, sizeof(buf), &seq);
		if (rc)
			break;
		n++;
		assert_int_equal(seq, n);
	}
	assert_int_equal(rc, TJOURNAL_FULL);
	/* Segments of 40 + 7 * 532 bytes: three and one entry of a fourth fit. */
	assert_int_equal(n, 22);
	tjournal_stats st;
	tjournal_get_stats(j, &st);
	assert_true(st.full);
	assert_int_equal(st.depth, 22);
	assert_int_equal(st.bytes, 3 * (40 + 7 * 532) + 40 + 532);
	assert_true(st.bytes <= st.max_bytes);

	/* Releasing part of the oldest segment frees nothing. */
	for (uint64_t i = 1; i <= 6; i++)
		tjournal_release(j, i);
	assert_int_equal(tjournal_append(j, buf, sizeof(buf), NULL), TJOURNAL_FULL);
	/* Its last entry frees the whole segment. */
	tjournal_release(j, 7);
	tjournal_get_stats(j, &st);
	assert_false(st.full);
	jt_fill(buf, sizeof(buf), 23);
	assert_int_equal(tjournal_append(j, buf, sizeof(buf), &seq), 0);
	assert_int_equal(seq, 23); /* the refused appends consumed no number */

	/* Everything released: the active segment is recycled when needed. */
	for (uint64_t i = 8; i <= 23; i++)
		tjournal_release(j, i);
	for (uint64_t i = 24; i <= 60; i++) {
		jt_fill(buf, sizeof(buf), i);
		assert_int_equal(tjournal_append(j, buf, sizeof(buf), &seq), 0);
		assert_int_equal(seq, i);
		tjournal_release(j, seq);
	}
	jt_fill(buf, sizeof(buf), 61);
	assert_int_equal(tjournal_append(j, buf, sizeof(buf), &seq), 0);
	tjournal_close(j);
	uint64_t want[] = {61};
	expect_replay(f, want, 1, 0);
}

/* The filesystem refuses to grow the file (RLIMIT_FSIZE -> EFBIG, the same
 * path as ENOSPC): clean error, nothing partial left, works again later. */
static void test_no_space_truncates(void **state)
{
	fx *f = *state;
	f->o.segment_bytes = 1 << 20;
	tjournal *j = jopen(f);
	struct rlimit old, lim;
	getrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = 40 + 10 * ENTRY(300) + 123; /* room for 10 and a bit */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);

	uint8_t buf[300];
	uint64_t n = 0, seq;
	int rc;
	for (;;) {
		jt_fill(buf, sizeof(buf), n + 1);
		rc = tjournal_append(j, buf, sizeof(buf), &seq);
		if (rc)
			break;
		n++;
	}
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(rc, TJOURNAL_NOSPACE);
	assert_int_equal(n, 10);
	/* The 123 bytes of the 11th entry were cut off again. */
	assert_int_equal(jt_size(f->dir, "000000000001.seg"), 40 + 10 * ENTRY(300));
	tjournal_stats st;
	tjournal_get_stats(j, &st);
	assert_true(st.full);
	assert_true(st.io_errors >= 1);

	jt_fill(buf, sizeof(buf), 11);
	assert_int_equal(tjournal_append(j, buf, sizeof(buf), &seq), 0);
	assert_int_equal(seq, 11);
	tjournal_get_stats(j, &st);
	assert_false(st.full);
	tjournal_close(j);
	signal(SIGXFSZ, SIG_DFL);

	uint64_t want[11];
	for (int i = 0; i < 11; i++)
		want[i] = (uint64_t)i + 1;
	f->log = (jt_log){0};
	expect_replay(f, want, 11, 0);
	assert_int_equal(f->log.warnings + f->log.errors, 0);
}

static void test_lock_and_read_only(void **state)
{
	fx *f = *state;
	tjournal *j = jopen(f);
	put(j, 1, 64);
	put(j, 2, 64);
	tjournal_release(j, 1);
	char err[256];
	assert_null(tjournal_open(f->dir, &f->o, err, sizeof(err)));
	assert_non_null(strstr(err, "in use"));

	tjournal_options ro = f->o;
	ro.read_only = true;
	tjournal *r = tjournal_open(f->dir, &ro, err, sizeof(err));
	assert_non_null(r);
	jt_seen s = {0};
	assert_int_equal(tjournal_replay(r, jt_collect, &s), 0);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.seq[0], 2);
	jt_seen_free(&s);
	uint8_t b[8] = {0};
	assert_int_equal(tjournal_append(r, b, sizeof(b), NULL), TJOURNAL_EINVAL);
	tjournal_release(r, 2); /* ignored */
	tjournal_close(r);
	tjournal_close(j);
	assert_int_equal(jt_count(f->dir, ".seg"), 1);
}

static void test_bad_arguments(void **state)
{
	fx *f = *state;
	char err[256];
	f->o.segment_bytes = 4096;
	f->o.max_entry_bytes = 5000;
	assert_null(tjournal_open(f->dir, &f->o, err, sizeof(err)));
	assert_non_null(strstr(err, "does not fit"));
	f->o.max_entry_bytes = 0;
	tjournal *j = jopen(f);
	uint8_t buf[4096] = {0};
	assert_int_equal(tjournal_append(j, buf, 0, NULL), TJOURNAL_EINVAL);
	assert_int_equal(tjournal_append(j, NULL, 1, NULL), TJOURNAL_EINVAL);
	assert_int_equal(tjournal_append(j, buf, 4096 - 72 + 1, NULL), TJOURNAL_EINVAL);
	assert_int_equal(tjournal_append(j, buf, 4096 - 72, NULL), 0);
	tjournal_close(j);
	assert_null(tjournal_open("", NULL, err, sizeof(err)));

	tjournal_sync pol = TJOURNAL_SYNC_NEVER;
	assert_int_equal(tjournal_sync_from_string("always", &pol), 0);
	assert_int_equal(pol, TJOURNAL_SYNC_ALWAYS);
	assert_int_equal(tjournal_sync_from_string("interval", &pol), 0);
	assert_int_equal(pol, TJOURNAL_SYNC_INTERVAL);
	assert_int_equal(tjournal_sync_from_string("never", &pol), 0);
	assert_int_equal(pol, TJOURNAL_SYNC_NEVER);
	assert_int_equal(tjournal_sync_from_string("sometimes", &pol), TJOURNAL_EINVAL);
	assert_int_equal(pol, TJOURNAL_SYNC_NEVER);
}

static int stop_at_3(uint64_t seq, const void *data, size_t len, void *opaque)
{
	(void)data;
	(void)len;
	(*(int *)opaque)++;
	return seq == 3 ? 42 : 0;
}

typedef struct releaser {
	tjournal *j;
	size_t n;
} releaser;

/* Releases from inside the callback, as an immediate delivery would. */
static int release_each(uint64_t seq, const void *data, size_t len, void *opaque)
{
	releaser *r = opaque;
	(void)data;
	(void)len;
	tjournal_release(r->j, seq);
	r->n++;
	return 0;
}

static void test_replay_stop_and_release_inside(void **state)
{
	fx *f = *state;
	f->o.segment_bytes = 2048;
	tjournal *j = jopen(f);
	for (int i = 1; i <= 40; i++)
		put(j, (uint64_t)i, 200);
	int calls = 0;
	assert_int_equal(tjournal_replay(j, stop_at_3, &calls), 42);
	assert_int_equal(calls, 3);
	tjournal_close(j);

	j = jopen(f);
	releaser r = {j, 0};
	assert_int_equal(tjournal_replay(j, release_each, &r), 0);
	assert_int_equal(r.n, 40);
	tjournal_stats st;
	tjournal_get_stats(j, &st);
	assert_int_equal(st.depth, 0);
	assert_int_equal(st.segments, 0); /* sealed segments went during the replay */
	tjournal_close(j);
	assert_int_equal(jt_count(f->dir, ".seg"), 0);
}

typedef struct appender {
	tjournal *j;
	jt_seen seen;
} appender;

/* Appends one entry per entry passed, as the broker's main thread goes on
 * appending while the plugin's retry thread reads. */
static int collect_and_append(uint64_t seq, const void *data, size_t len, void *opaque)
{
	appender *a = opaque;
	jt_collect(seq, data, len, &a->seen);
	put(a->j, 1000 + seq, 100);
	return 0;
}

/* tjournal_replay_from: from a sequence number on, unreleased entries only,
 * oldest first, while appends go on (here from the callback itself, which
 * tjournal_replay would deadlock on); entries appended meanwhile are not
 * passed. */
static void test_replay_from_while_appending(void **state)
{
	fx *f = *state;
	f->o.segment_bytes = 2048;
	tjournal *j = jopen(f);
	for (int i = 1; i <= 40; i++)
		put(j, (uint64_t)i, 200);
	for (uint64_t seq = 26; seq <= 40; seq += 3)
		tjournal_release(j, seq);

	appender a = {j, {0}};
	assert_int_equal(tjournal_replay_from(j, 25, collect_and_append, &a), 0);
	assert_int_equal(a.seen.bad, 0);
	uint64_t want[] = {25, 27, 28, 30, 31, 33, 34, 36, 37, 39, 40};
	assert_int_equal(a.seen.n, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < a.seen.n; i++) {
		assert_int_equal(a.seen.seq[i], want[i]);
		assert_int_equal(a.seen.tag[i], want[i]);
	}
	jt_seen_free(&a.seen);

	/* The entries appended during the call, and nothing before 41. */
	jt_seen s = {0};
	assert_int_equal(tjournal_replay_from(j, 41, jt_collect, &s), 0);
	assert_int_equal(s.n, 11);
	assert_int_equal(s.seq[0], 41);
	assert_int_equal(s.tag[0], 1025);
	jt_seen_free(&s);
	assert_int_equal(tjournal_replay_from(j, 1000, jt_collect, &s), 0);
	assert_int_equal(s.n, 0);
	assert_int_equal(tjournal_replay_from(NULL, 1, jt_collect, &s), TJOURNAL_EINVAL);
	tjournal_close(j);
}

static void test_policies_and_age(void **state)
{
	fx *f = *state;
	tjournal_sync pol[] = {TJOURNAL_SYNC_INTERVAL, TJOURNAL_SYNC_NEVER, TJOURNAL_SYNC_ALWAYS};
	uint64_t tag = 0;
	for (size_t p = 0; p < 3; p++) {
		f->o.sync = pol[p];
		f->o.sync_interval_ms = 5;
		tjournal *j = jopen(f);
		for (int i = 0; i < 20; i++)
			put(j, ++tag, 128);
		struct timespec ts = {0, 30 * 1000000};
		nanosleep(&ts, NULL);
		tjournal_stats st;
		tjournal_get_stats(j, &st);
		assert_true(st.oldest_age_ms >= 30);
		assert_true(st.oldest_age_ms < 60000);
		assert_int_equal(tjournal_sync_now(j), 0);
		tjournal_release(j, tag - 19);
		tjournal_close(j);
	}
	tjournal *j = jopen(f);
	jt_seen s = replay(j);
	assert_int_equal(s.n, 57);
	tjournal_close(j);
	jt_seen_free(&s);
}

/* The memory and fd readers agree, entry for entry. */
typedef struct scan_rec {
	uint64_t seq[64], off[64];
	int n, corrupt;
} scan_rec;

static int rec_entry(void *o, uint64_t off, uint64_t seq, uint64_t ts, const void *d, size_t len)
{
	scan_rec *r = o;
	(void)ts;
	(void)d;
	(void)len;
	if (r->n < 64) {
		r->seq[r->n] = seq;
		r->off[r->n] = off;
	}
	r->n++;
	return 0;
}

static void rec_corrupt(void *o, uint64_t off, uint64_t len, const char *why)
{
	(void)off;
	(void)len;
	(void)why;
	((scan_rec *)o)->corrupt++;
}

static void test_scan_mem_matches_fd(void **state)
{
	fx *f = *state;
	make_segment(f, 12, 90);
	assert_int_equal(jt_flip(f->dir, "000000000001.seg", OFF(6, 90) + 40, 0x02), 0);
	char p[1024];
	snprintf(p, sizeof(p), "%s/000000000001.seg", f->dir);
	int fd = open(p, O_RDONLY);
	assert_true(fd >= 0);
	off_t size = lseek(fd, 0, SEEK_END);
	uint8_t *buf = malloc((size_t)size);
	assert_int_equal(pread(fd, buf, (size_t)size, 0), size);

	scan_rec a = {0}, b = {0};
	tjournal_scan_visitor va = {NULL, rec_entry, rec_corrupt, &a};
	tjournal_scan_visitor vb = {NULL, rec_entry, rec_corrupt, &b};
	assert_int_equal(tjournal_scan_fd(fd, &va), 0);
	assert_int_equal(tjournal_scan_mem(buf, (size_t)size, &vb), 0);
	assert_int_equal(a.n, 11);
	assert_int_equal(a.corrupt, 1);
	assert_int_equal(b.n, a.n);
	assert_int_equal(b.corrupt, a.corrupt);
	assert_memory_equal(a.seq, b.seq, sizeof(uint64_t) * 11);
	assert_memory_equal(a.off, b.off, sizeof(uint64_t) * 11);
	assert_int_equal(a.off[5], OFF(7, 90));
	/* Too short to hold a segment header. */
	assert_int_equal(tjournal_scan_mem(buf, 39, &vb), TJOURNAL_CORRUPT);
	free(buf);
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_release_idempotent_and_unknown, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rollover_and_delete, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_sync_now_waits_for_running_pass, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_releases_persist_out_of_order, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_torn_header, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt_payload_resync, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt_header_resync, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_garbage_region, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_trailing_garbage, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_segment_header_corrupt, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_incomplete_segment_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_torn_ack_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_full, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_no_space_truncates, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_lock_and_read_only, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_replay_stop_and_release_inside, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_replay_from_while_appending, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_policies_and_age, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_scan_mem_matches_fd, setup, teardown),
	};
	return cmocka_run_group_tests_name("journal", tests, NULL, NULL);
}
