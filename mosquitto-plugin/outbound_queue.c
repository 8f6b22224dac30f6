/*
 * The hand-over from the consumer thread to the main thread: a FIFO of
 * mapped records under one mutex. It never refuses an item: the consumer
 * pauses its partitions once the depth reaches the capacity, and librdkafka
 * then discards what it had prefetched for them and fetches it again on
 * resume, so the depth stays near the capacity and nothing is dropped.
 */
#include <stdlib.h>

#include "outbound.h"

void outbound__queue_init(struct ob_queue *q)
{
	pthread_mutex_init(&q->lock, NULL);
	q->head = q->tail = NULL;
	q->depth = 0;
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
	}
	*left = q->depth;
	pthread_mutex_unlock(&q->lock);
	*taken = n;
	return first;
}

size_t outbound__queue_depth(struct ob_queue *q)
{
	size_t d;
	pthread_mutex_lock(&q->lock);
	d = q->depth;
	pthread_mutex_unlock(&q->lock);
	return d;
}

/* At shutdown, after the consumer thread has stopped: the records were never
 * published, so their offsets were never stored and they come back after a
 * restart. */
void outbound__queue_destroy(struct ob_queue *q)
{
	struct ob_item *it = q->head;
	while (it) {
		struct ob_item *next = it->next;
		outbound__item_free(it);
		it = next;
	}
	q->head = q->tail = NULL;
	q->depth = 0;
	pthread_mutex_destroy(&q->lock);
}
