/*
 * The hand-off from Mosquitto's main thread to a cluster's producer thread:
 * a lock-free single-producer, single-consumer ring of slots (tributary.h,
 * struct tbp_ring).
 *
 * The main thread (the only producer) writes an accepted event into the
 * slot at `tail` and publishes it by advancing `tail`; the cluster's
 * producer thread (the only consumer) reads the slots from `head` to `tail`
 * and frees them by advancing `head`. The producer caches the consumer's
 * index and reads it again only when its cached view says full; the
 * consumer reads the producer's once per batch.
 *
 * A slot keeps its buffer for the next event (no malloc per event), unless
 * it grew beyond RING_KEEP_BYTES: then the consumer frees it.
 *
 * Wake-ups: the consumer announces that it is going to sleep (`waiting`),
 * checks once more, and sleeps on a futex; the producer, after publishing
 * one or more slots (ring__kick), wakes it only when it announced so. Both
 * sides order their store and the other's load with a full fence (Dekker):
 * one of them always sees the other, so no slot waits for the timeout, and
 * a consumer that is busy draining costs the producer no system call. The
 * producer chooses how many slots one kick covers: the plugin kicks once
 * per turn of Mosquitto's main loop (produce.c), so that one wake-up hands
 * over every event that turn accepted.
 */
#include <errno.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "tributary.h"

/* A slot's buffer above this size is freed once consumed. */
#define RING_KEEP_BYTES (64 * 1024)

int ring__init(struct tbp_ring *r, size_t capacity)
{
	size_t cap = 1;
	while (cap < capacity)
		cap <<= 1;
	r->slots = calloc(cap, sizeof(*r->slots));
	if (!r->slots)
		return -1;
	r->mask = cap - 1;
	atomic_store(&r->head, 0);
	atomic_store(&r->tail, 0);
	atomic_store(&r->waiting, 0);
	r->head_cache = 0;
	r->tail_cache = 0;
	return 0;
}

void ring__free(struct tbp_ring *r)
{
	if (!r->slots)
		return;
	for (size_t i = 0; i <= r->mask; i++)
		free(r->slots[i].buf);
	free(r->slots);
	r->slots = NULL;
}

size_t ring__capacity(const struct tbp_ring *r)
{
	return r->mask + 1;
}

/* ---- producer side (one thread) ---- */

int ring__reserve(struct tbp_ring *r, size_t len, struct tbp_ring_slot **out)
{
	size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	if (tail - r->head_cache > r->mask) {
		r->head_cache = atomic_load_explicit(&r->head, memory_order_acquire);
		if (tail - r->head_cache > r->mask)
			return RING_FULL;
	}
	struct tbp_ring_slot *s = &r->slots[tail & r->mask];
	if (s->cap < len) {
		size_t cap = s->cap ? s->cap : 2048;
		while (cap < len)
			cap *= 2;
		void *buf = realloc(s->buf, cap);
		if (!buf)
			return RING_NOMEM;
		s->buf = buf;
		s->cap = cap;
	}
	s->len = len;
	s->seq = 0;
	s->flags = 0;
	*out = s;
	return RING_OK;
}

void ring__commit(struct tbp_ring *r)
{
	size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
}

bool ring__kick(struct tbp_ring *r)
{
	/* Pairs with the fence in ring__wait: either the consumer sees the new
	 * tail, or this sees it waiting. */
	atomic_thread_fence(memory_order_seq_cst);
	if (!atomic_load_explicit(&r->waiting, memory_order_relaxed) ||
	    !atomic_exchange(&r->waiting, 0))
		return false;
	ring__wake(r);
	return true;
}

size_t ring__depth(struct tbp_ring *r)
{
	size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	return tail - atomic_load_explicit(&r->head, memory_order_acquire);
}

void ring__wake(struct tbp_ring *r)
{
	atomic_store(&r->waiting, 0);
	syscall(SYS_futex, (int *)&r->waiting, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* ---- consumer side (one thread) ---- */

/* One load of the producer's index per batch, not per slot. */
size_t ring__available(struct tbp_ring *r)
{
	size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
	return r->tail_cache - head;
}

struct tbp_ring_slot *ring__slot(struct tbp_ring *r, size_t i)
{
	size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	return &r->slots[(head + i) & r->mask];
}

void ring__release(struct tbp_ring *r, size_t n)
{
	size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	for (size_t i = 0; i < n; i++) {
		struct tbp_ring_slot *s = &r->slots[(head + i) & r->mask];
		if (s->cap > RING_KEEP_BYTES) {
			free(s->buf);
			s->buf = NULL;
			s->cap = 0;
		}
	}
	atomic_store_explicit(&r->head, head + n, memory_order_release);
}

bool ring__wait(struct tbp_ring *r, atomic_bool *stop, int timeout_ms)
{
	atomic_store(&r->waiting, 1);
	atomic_thread_fence(memory_order_seq_cst);
	r->tail_cache = atomic_load_explicit(&r->tail, memory_order_acquire);
	if (r->tail_cache != atomic_load_explicit(&r->head, memory_order_relaxed) ||
	    (stop && atomic_load(stop))) {
		atomic_store(&r->waiting, 0);
		return true;
	}
	struct timespec ts = {.tv_sec = timeout_ms / 1000,
	                      .tv_nsec = (timeout_ms % 1000) * 1000000L};
	long rc = syscall(SYS_futex, (int *)&r->waiting, FUTEX_WAIT_PRIVATE, 1, &ts, NULL, 0);
	atomic_store(&r->waiting, 0);
	return rc == 0 || errno != ETIMEDOUT;
}
