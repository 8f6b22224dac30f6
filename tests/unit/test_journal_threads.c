/* Journal: releases from another thread while appending (the plugin's
 * delivery-report thread against its main thread): no lost or double state. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>

#include "test_journal_util.h"

enum { N = 20000, KEEP_EVERY = 97 };

/* Single-producer single-consumer queue of appended sequence numbers. */
typedef struct queue {
	uint64_t seq[N];
	atomic_size_t head;
	atomic_bool done;
} queue;

typedef struct ctx {
	tjournal *j;
	queue q;
	size_t released;
	uint64_t stats_checks;
} ctx;

/* Releases in shuffled batches, as delivery reports arrive out of order;
 * every KEEP_EVERY-th entry stays unreleased, each released one twice. */
static void *releaser(void *arg)
{
	ctx *c = arg;
	size_t tail = 0;
	uint64_t batch[64];
	unsigned rnd = 99;
	for (;;) {
		size_t head = atomic_load(&c->q.head);
		if (tail == head) {
			if (atomic_load(&c->q.done) && tail == atomic_load(&c->q.head))
				break;
			sched_yield();
			continue;
		}
		size_t n = 0;
		while (tail < head && n < 64) {
			uint64_t s = c->q.seq[tail++];
			if (s % KEEP_EVERY != 0)
				batch[n++] = s;
		}
		for (size_t i = n; i > 1; i--) {
			rnd = rnd * 1103515245u + 12345u;
			size_t k = (rnd >> 8) % i;
			uint64_t t = batch[i - 1];
			batch[i - 1] = batch[k];
			batch[k] = t;
		}
		tjournal_release_many(c->j, batch, n);
		for (size_t i = 0; i < n; i++)
			tjournal_release(c->j, batch[i]); /* a duplicate delivery report */
		c->released += n;
	}
	return NULL;
}

static void test_concurrent_release(void **state)
{
	(void)state;
	char *dir = jt_tmpdir();
	char err[256];
	jt_log log = {0};
	tjournal_options o = {.sync = TJOURNAL_SYNC_INTERVAL,
	                      .sync_interval_ms = 2,
	                      .segment_bytes = 16384,
	                      .log = jt_log_fn,
	                      .log_opaque = &log};
	ctx *c = calloc(1, sizeof(*c));
	c->j = tjournal_open(dir, &o, err, sizeof(err));
	assert_non_null(c->j);

	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, releaser, c), 0);
	uint8_t buf[200];
	for (uint64_t i = 1; i <= N; i++) {
		uint64_t seq;
		jt_fill(buf, 50 + i % 150, i);
		assert_int_equal(tjournal_append(c->j, buf, 50 + i % 150, &seq), 0);
		assert_int_equal(seq, i);
		c->q.seq[i - 1] = seq;
		atomic_store(&c->q.head, (size_t)i);
		if (i % 1000 == 0) {
			tjournal_stats st;
			tjournal_get_stats(c->j, &st);
			assert_true(st.depth <= i);
			assert_int_equal(st.appended, i);
		}
	}
	atomic_store(&c->q.done, true);
	assert_int_equal(pthread_join(t, NULL), 0);

	size_t kept = N / KEEP_EVERY;
	tjournal_stats st;
	tjournal_get_stats(c->j, &st);
	assert_int_equal(c->released, N - kept);
	assert_int_equal(st.released, N - kept);
	assert_int_equal(st.unknown_releases, N - kept); /* the duplicates */
	assert_int_equal(st.depth, kept);
	assert_int_equal(st.oldest_seq, KEEP_EVERY);
	assert_int_equal(st.io_errors, 0);

	/* Exactly the kept ones come back, in the same and in a new process
	 * view of the files. */
	for (int pass = 0; pass < 2; pass++) {
		jt_seen s = {0};
		assert_int_equal(tjournal_replay(c->j, jt_collect, &s), 0);
		assert_int_equal(s.n, kept);
		assert_int_equal(s.bad, 0);
		for (size_t i = 0; i < s.n; i++) {
			assert_int_equal(s.seq[i], (i + 1) * KEEP_EVERY);
			assert_int_equal(s.tag[i], s.seq[i]);
		}
		jt_seen_free(&s);
		tjournal_close(c->j);
		c->j = tjournal_open(dir, &o, err, sizeof(err));
		assert_non_null(c->j);
	}
	/* Segments holding no kept entry were deleted as they went. */
	tjournal_get_stats(c->j, &st);
	assert_true(st.segments <= kept);
	assert_int_equal(log.warnings + log.errors, 0);
	tjournal_close(c->j);
	free(c);
	jt_rmrf(dir);
	free(dir);
}

/* Replay while the delivery thread releases what replay hands out. */
typedef struct replay_ctx {
	tjournal *j;
	uint64_t seqs[4096];
	atomic_size_t n;
	atomic_bool done;
} replay_ctx;

static int on_replay(uint64_t seq, const void *data, size_t len, void *opaque)
{
	replay_ctx *c = opaque;
	assert_int_equal(jt_check(data, len), seq);
	size_t n = atomic_load(&c->n);
	c->seqs[n] = seq;
	atomic_store(&c->n, n + 1);
	return 0;
}

static void *replay_releaser(void *arg)
{
	replay_ctx *c = arg;
	size_t tail = 0;
	while (!atomic_load(&c->done) || tail < atomic_load(&c->n)) {
		if (tail < atomic_load(&c->n))
			tjournal_release(c->j, c->seqs[tail++]);
		else
			sched_yield();
	}
	return NULL;
}

static void test_release_during_replay(void **state)
{
	(void)state;
	char *dir = jt_tmpdir();
	char err[256];
	tjournal_options o = {.sync = TJOURNAL_SYNC_NEVER, .segment_bytes = 4096};
	tjournal *j = tjournal_open(dir, &o, err, sizeof(err));
	uint8_t buf[100];
	for (uint64_t i = 1; i <= 4000; i++) {
		jt_fill(buf, sizeof(buf), i);
		assert_int_equal(tjournal_append(j, buf, sizeof(buf), NULL), 0);
	}
	tjournal_close(j);
	j = tjournal_open(dir, &o, err, sizeof(err));
	replay_ctx *c = calloc(1, sizeof(*c));
	c->j = j;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, replay_releaser, c), 0);
	assert_int_equal(tjournal_replay(j, on_replay, c), 0);
	atomic_store(&c->done, true);
	pthread_join(t, NULL);
	assert_int_equal(atomic_load(&c->n), 4000);
	for (size_t i = 0; i < 4000; i++)
		assert_int_equal(c->seqs[i], i + 1);
	tjournal_stats st;
	tjournal_get_stats(j, &st);
	assert_int_equal(st.depth, 0);
	assert_int_equal(st.segments, 0);
	tjournal_close(j);
	assert_int_equal(jt_count(dir, ".seg"), 0);
	assert_int_equal(jt_count(dir, ".ack"), 0);
	free(c);
	jt_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_concurrent_release),
	    cmocka_unit_test(test_release_during_replay),
	};
	return cmocka_run_group_tests_name("journal_threads", tests, NULL, NULL);
}
