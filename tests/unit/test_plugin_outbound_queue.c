/*
 * The outbound hand-over queue (mosquitto-plugin/outbound_queue.c): the
 * FIFO from the consumer thread to the main thread, and the list of
 * published records back to the consumer thread, which frees them.
 *
 * The queue's source is compiled into this test; outbound__item_free (in
 * outbound_map.c, which needs a whole route configuration) is replaced by a
 * double that records each item freed, so that the test sees every record
 * freed exactly once. The two-thread test runs the queue as the plugin
 * does: one thread pushes records in order and frees what comes back, the
 * other takes them in batches of max_per_tick and hands them back.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../mosquitto-plugin/outbound_queue.c"

void mosquitto_log_printf(int level, const char *fmt, ...)
{
	(void)level;
	(void)fmt;
}

#define MAX_ITEMS 200000
static atomic_uint freed_count[MAX_ITEMS];
static atomic_size_t freed_total;

/* The item's place in the sequence is kept in `len`. */
void outbound__item_free(struct ob_item *it)
{
	if (!it)
		return;
	atomic_fetch_add(&freed_count[it->len], 1);
	atomic_fetch_add(&freed_total, 1);
	free(it);
}

static struct ob_item *item(size_t seq)
{
	struct ob_item *it = calloc(1, sizeof(*it));
	assert_non_null(it);
	it->len = seq;
	return it;
}

static void reset(void)
{
	for (size_t i = 0; i < MAX_ITEMS; i++)
		atomic_store(&freed_count[i], 0);
	atomic_store(&freed_total, 0);
}

static void test_fifo_batches(void **state)
{
	(void)state;
	struct ob_queue q;
	size_t taken, left, seq = 0;
	reset();
	outbound__queue_init(&q, 2);
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(outbound__queue_push(&q, item(i)), i + 1);
	/* Batches of at most 3, oldest first, the depth left after each. */
	for (size_t want = 3, expect_left = 4; seq < 7; want = 7 - seq < 3 ? 7 - seq : 3) {
		struct ob_item *first = outbound__queue_take(&q, 3, &taken, &left), *last = NULL;
		assert_int_equal(taken, want);
		assert_int_equal(left, expect_left);
		for (struct ob_item *it = first; it; it = it->next) {
			assert_int_equal(it->len, seq++);
			last = it;
		}
		outbound__queue_recycle(&q, first, last);
		expect_left = expect_left > 3 ? expect_left - 3 : 0;
	}
	assert_null(outbound__queue_take(&q, 3, &taken, &left));
	assert_int_equal(taken, 0);
	/* Nothing freed until the consumer thread's turn, then each once. */
	assert_int_equal(atomic_load(&freed_total), 0);
	outbound__queue_free_done(&q);
	assert_int_equal(atomic_load(&freed_total), 7);
	for (size_t i = 0; i < 7; i++)
		assert_int_equal(atomic_load(&freed_count[i]), 1);
	outbound__queue_free_done(&q); /* empty: nothing more */
	assert_int_equal(atomic_load(&freed_total), 7);
	outbound__queue_destroy(&q);
	assert_int_equal(atomic_load(&freed_total), 7);
}

/* At shutdown both lists go: the records still queued and those handed
 * back but not freed yet. */
static void test_destroy_frees_both_lists(void **state)
{
	(void)state;
	struct ob_queue q;
	size_t taken, left;
	reset();
	outbound__queue_init(&q, 0);
	for (size_t i = 0; i < 5; i++)
		outbound__queue_push(&q, item(i));
	struct ob_item *first = outbound__queue_take(&q, 2, &taken, &left);
	assert_int_equal(taken, 2);
	outbound__queue_recycle(&q, first, first->next);
	outbound__queue_destroy(&q);
	assert_int_equal(atomic_load(&freed_total), 5);
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(atomic_load(&freed_count[i]), 1);
}

#define THREAD_ITEMS 100000
#define CAPACITY 1000

struct run {
	struct ob_queue q;
	atomic_bool done;
};

/* The consumer thread: pushes in order, waits at the capacity (as
 * outbound_consumer.c does), frees what comes back. */
static void *pusher(void *arg)
{
	struct run *r = arg;
	for (size_t i = 0; i < THREAD_ITEMS; i++) {
		outbound__queue_free_done(&r->q);
		if (outbound__queue_push(&r->q, item(i)) >= CAPACITY)
			while (outbound__queue_wait(&r->q, 100) > r->q.low)
				outbound__queue_free_done(&r->q);
	}
	while (!atomic_load(&r->done))
		outbound__queue_free_done(&r->q);
	outbound__queue_free_done(&r->q);
	return NULL;
}

static void test_two_threads_order_and_nothing_lost(void **state)
{
	(void)state;
	struct run r;
	pthread_t th;
	size_t taken, left, seq = 0;
	reset();
	outbound__queue_init(&r.q, CAPACITY / 2);
	atomic_store(&r.done, false);
	assert_int_equal(pthread_create(&th, NULL, pusher, &r), 0);
	/* The main thread: takes at most 64 a tick, hands them back a tick
	 * later (as the offsets are stored then). */
	struct ob_item *prev_first = NULL, *prev_last = NULL;
	while (seq < THREAD_ITEMS) {
		struct ob_item *first = outbound__queue_take(&r.q, 64, &taken, &left), *last = NULL;
		assert_true(taken <= 64);
		assert_true(taken + left <= CAPACITY + 1);
		for (struct ob_item *it = first; it; it = it->next) {
			assert_int_equal(it->len, seq++);
			last = it;
		}
		outbound__queue_recycle(&r.q, prev_first, prev_last);
		prev_first = first;
		prev_last = last;
	}
	outbound__queue_recycle(&r.q, prev_first, prev_last);
	atomic_store(&r.done, true);
	pthread_join(th, NULL);
	assert_int_equal(atomic_load(&freed_total), THREAD_ITEMS);
	for (size_t i = 0; i < THREAD_ITEMS; i++)
		assert_int_equal(atomic_load(&freed_count[i]), 1);
	outbound__queue_destroy(&r.q);
	assert_int_equal(atomic_load(&freed_total), THREAD_ITEMS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_fifo_batches),
	    cmocka_unit_test(test_destroy_frees_both_lists),
	    cmocka_unit_test(test_two_threads_order_and_nothing_lost),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
