/*
 * The hand-over from the consumer thread to the main thread: a FIFO of
 * mapped records under one mutex. It never refuses an item: at the capacity
 * the consumer stops taking records (outbound_consumer.c), so the depth
 * stays at the capacity and nothing is dropped. Back the other way, the
 * main thread hands over what it has published (offsets stored) for the
 * consumer thread to free.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "outbound.h"

void outbound__queue_init(struct ob_queue *q, size_t low)
{
	pthread_condattr_t ca;
	pthread_mutex_init(&q->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&q->space, &ca);
	pthread_condattr_destroy(&ca);
	q->head = q->tail = NULL;
	q->depth = 0;
	q->low = low;
	q->waiting = false;
	q->done = q->done_tail = NULL;
	atomic_store(&q->has_done, false);
}

/* Consumer thread: waits until the depth is at most `low`, or the timeout.
 * Returns the depth. */
size_t outbound__queue_wait(struct ob_queue *q, int timeout_ms)
{
	struct timespec until;
	size_t depth;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&q->lock);
	q->waiting = true;
	while (q->depth > q->low)
		if (pthread_cond_timedwait(&q->space, &q->lock, &until) == ETIMEDOUT)
			break;
	q->waiting = false;
	depth = q->depth;
	pthread_mutex_unlock(&q->lock);
	return depth;
}

/* Returns the depth after the push. */
size_t outbound__queue_push(struct ob_queue *q, struct ob_item *it)
{
	size_t depth;
	it->next = NULL;
	pthread_mutex_lock(&q->lock);
	if (q->tail)
		q->tail->next = it;
	else
		q->head = it;
	q->tail = it;
	depth = ++q->depth;
	pthread_mutex_unlock(&q->lock);
	return depth;
}

/* Detaches up to `max` items, oldest first, as a list. */
struct ob_item *outbound__queue_take(struct ob_queue *q, size_t max, size_t *taken, size_t *left)
{
	struct ob_item *first, *last;
	size_t n = 0;
	pthread_mutex_lock(&q->lock);
	first = last = q->head;
	if (first) {
		n = 1;
		while (n < max && last->next) {
			last = last->next;
			n++;
		}
		q->head = last->next;
		if (!q->head)
			q->tail = NULL;
		last->next = NULL;
		q->depth -= n;
		if (q->waiting && q->depth <= q->low)
			pthread_cond_signal(&q->space);
	}
	*left = q->depth;
	pthread_mutex_unlock(&q->lock);
	*taken = n;
	return first;
}

/* Main thread: hands a list of finished items (first..last) back. */
void outbound__queue_recycle(struct ob_queue *q, struct ob_item *first, struct ob_item *last)
{
	if (!first)
		return;
	last->next = NULL;
	pthread_mutex_lock(&q->lock);
	if (q->done_tail)
		q->done_tail->next = first;
	else
		q->done = first;
	q->done_tail = last;
	atomic_store(&q->has_done, true);
	pthread_mutex_unlock(&q->lock);
}

static void queue__free_list(struct ob_item *it)
{
	while (it) {
		struct ob_item *next = it->next;
		outbound__item_free(it);
		it = next;
	}
}

/* Consumer thread: frees what the main thread handed back. */
void outbound__queue_free_done(struct ob_queue *q)
{
	struct ob_item *it;
	if (!atomic_load(&q->has_done))
		return;
	pthread_mutex_lock(&q->lock);
	it = q->done;
	q->done = q->done_tail = NULL;
	atomic_store(&q->has_done, false);
	pthread_mutex_unlock(&q->lock);
	queue__free_list(it);
}

size_t outbound__queue_depth(struct ob_queue *q)
{
	size_t d;
	pthread_mutex_lock(&q->lock);
	d = q->depth;
	pthread_mutex_unlock(&q->lock);
	return d;
}

/* At shutdown, after the consumer thread has stopped: the records still
 * queued were never published, so their offsets were never stored and they
 * come back after a restart; the finished ones that the thread had not
 * freed yet go too. */
void outbound__queue_destroy(struct ob_queue *q)
{
	queue__free_list(q->head);
	queue__free_list(q->done);
	q->head = q->tail = q->done = q->done_tail = NULL;
	q->depth = 0;
	pthread_cond_destroy(&q->space);
	pthread_mutex_destroy(&q->lock);
}
