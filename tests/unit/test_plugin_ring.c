/*
 * The ring from Mosquitto's main thread to a cluster's producer thread
 * (mosquitto-plugin/ring.c): a lock-free single-producer, single-consumer
 * ring whose consumer sleeps on a futex and is woken only when it sleeps.
 *
 * Checked: capacity and refusal when full, FIFO order across wrap-around,
 * slot buffers kept from event to event (no allocation per event) except
 * big ones, and, with two real threads (the producer kicking once per 16
 * events), that every event arrives once, in order, and that no wake-up is
 * lost: the consumer sleeps with a long timeout and a timeout counts as a
 * failure.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "../../mosquitto-plugin/tributary.h"

/* The plugin objects this test links call it. */
void mosquitto_log_printf(int level, const char *fmt, ...)
{
	(void)level;
	(void)fmt;
}

static void push(struct tbp_ring *r, uint64_t seq, size_t len)
{
	struct tbp_ring_slot *s;
	assert_int_equal(ring__reserve(r, len, &s), RING_OK);
	assert_true(s->cap >= len);
	assert_int_equal(s->len, len);
	memset(s->buf, (int)(seq & 0xff), len);
	s->seq = seq;
	ring__commit(r);
}

static void test_full_and_order(void **state)
{
	struct tbp_ring r;
	struct tbp_ring_slot *s;
	(void)state;
	assert_int_equal(ring__init(&r, 6), 0);
	assert_int_equal(ring__capacity(&r), 8); /* rounded up */
	uint64_t next = 1, expect = 1;
	/* Three laps around the ring, filled to the brim each time. */
	for (int lap = 0; lap < 3; lap++) {
		while (ring__available(&r) < 8)
			push(&r, next++, 100);
		assert_int_equal(ring__depth(&r), 8);
		assert_int_equal(ring__reserve(&r, 100, &s), RING_FULL);
		/* Consumed in two batches, oldest first. */
		for (size_t i = 0; i < 3; i++)
			assert_int_equal(ring__slot(&r, i)->seq, expect + i);
		ring__release(&r, 3);
		expect += 3;
		assert_int_equal(ring__available(&r), 5);
		for (size_t i = 0; i < 5; i++) {
			s = ring__slot(&r, i);
			assert_int_equal(s->seq, expect + i);
			assert_int_equal(s->buf[0], (uint8_t)((expect + i) & 0xff));
		}
		ring__release(&r, 5);
		expect += 5;
		assert_int_equal(ring__available(&r), 0);
	}
	ring__free(&r);
}

static void test_buffers_reused(void **state)
{
	struct tbp_ring r;
	struct tbp_ring_slot *s;
	(void)state;
	assert_int_equal(ring__init(&r, 2), 0);
	uint8_t *small[2];
	for (int i = 0; i < 2; i++) {
		push(&r, 1, 1000);
		small[i] = ring__slot(&r, (size_t)i)->buf;
	}
	ring__release(&r, 2);
	/* The same buffers serve the next lap: no allocation. */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(ring__reserve(&r, 1500, &s), RING_OK);
		assert_ptr_equal(s->buf, small[i]);
		ring__commit(&r);
	}
	ring__release(&r, 2);
	/* A big record's buffer is given back once consumed. */
	push(&r, 2, 1 << 20);
	ring__release(&r, 1);
	assert_int_equal(ring__reserve(&r, 10, &s), RING_OK);
	ring__commit(&r);
	assert_int_equal(ring__reserve(&r, 10, &s), RING_OK);
	assert_true(s->cap < (1 << 20));
	ring__free(&r);
}

#define EVENTS 2000000u

struct pair {
	struct tbp_ring r;
	atomic_bool stop;
	uint64_t received, timeouts, disorder, woken, kicks;
};

static void *consumer(void *arg)
{
	struct pair *p = arg;
	uint64_t expect = 1;
	while (expect <= EVENTS) {
		size_t n = ring__available(&p->r);
		if (!n) {
			/* 10 s: a lost wake-up shows as a timeout. */
			if (!ring__wait(&p->r, NULL, 10000))
				p->timeouts++;
			else
				p->woken++;
			continue;
		}
		for (size_t i = 0; i < n; i++) {
			const struct tbp_ring_slot *s = ring__slot(&p->r, i);
			uint64_t v;
			memcpy(&v, s->buf, sizeof(v));
			if (s->seq != expect || v != expect || s->len != 8 + expect % 64)
				p->disorder++;
			expect++;
			p->received++;
		}
		ring__release(&p->r, n);
	}
	return NULL;
}

static void test_two_threads(void **state)
{
	static struct pair p;
	pthread_t t;
	(void)state;
	memset(&p, 0, sizeof(p));
	assert_int_equal(ring__init(&p.r, 1024), 0);
	assert_int_equal(pthread_create(&t, NULL, consumer, &p), 0);
	for (uint64_t seq = 1; seq <= EVENTS;) {
		struct tbp_ring_slot *s;
		if (ring__reserve(&p.r, 8 + seq % 64, &s) != RING_OK) {
			ring__kick(&p.r);
			sched_yield(); /* full: the consumer catches up */
			continue;
		}
		memcpy(s->buf, &seq, sizeof(seq));
		s->seq = seq;
		ring__commit(&p.r);
		/* A kick per 16 events, as the plugin's per turn of the main loop. */
		if (seq % 16 == 0 || seq == EVENTS)
			p.kicks += ring__kick(&p.r);
		/* Now and then a pause, so that the consumer goes to sleep. */
		if (seq % 50000 == 0) {
			struct timespec ts = {0, 2000000};
			nanosleep(&ts, NULL);
		}
		seq++;
	}
	pthread_join(t, NULL);
	assert_int_equal(p.received, EVENTS);
	assert_int_equal(p.disorder, 0);
	assert_int_equal(p.timeouts, 0);
	/* The consumer slept at least at each pause, and was woken for it. */
	assert_true(p.kicks >= EVENTS / 50000 - 1);
	assert_true(p.kicks <= EVENTS / 16);
	ring__free(&p.r);
}

static struct pair waiter;

static void *sleeper(void *arg)
{
	(void)arg;
	waiter.woken = ring__wait(&waiter.r, &waiter.stop, 10000);
	return NULL;
}

/* A consumer asleep on an empty ring wakes up for a stop at once. */
static void test_wake_for_stop(void **state)
{
	pthread_t t;
	struct timespec t0, t1, pause = {0, 50000000};
	(void)state;
	memset(&waiter, 0, sizeof(waiter));
	assert_int_equal(ring__init(&waiter.r, 4), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(pthread_create(&t, NULL, sleeper, NULL), 0);
	nanosleep(&pause, NULL);
	atomic_store(&waiter.stop, true);
	ring__wake(&waiter.r);
	pthread_join(t, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	assert_true(waiter.woken);
	assert_true(s < 5.0);
	/* Stop already set: no sleep at all. */
	assert_true(ring__wait(&waiter.r, &waiter.stop, 10000));
	ring__free(&waiter.r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_full_and_order),
	    cmocka_unit_test(test_buffers_reused),
	    cmocka_unit_test(test_two_threads),
	    cmocka_unit_test(test_wake_for_stop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
