/* The journal object: segment list, per-entry release state, appends,
 * releases, replay and the background sync thread. The on-disk format and
 * the crash-consistency rules are described in tributary/journal.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "journal_int.h"

typedef struct seg {
	struct seg *next; /* list ordered by id, which is also sequence order */
	uint64_t id;
	uint32_t salt;
	int fd;     /* the active segment only; -1 once sealed */
	int ack_fd; /* opened by the first release */
	uint64_t size;
	uint64_t ack_size;
	uint64_t base;  /* sequence number of slot 0 */
	size_t nslots;  /* highest used slot + 1 */
	size_t cap;     /* slots allocated in bits/ts */
	uint64_t *bits; /* 1 = unreleased */
	uint64_t *ts;   /* append time (ms since the epoch) per slot */
	size_t live;
	size_t entries;
	size_t hint; /* no unreleased slot below this one */
	bool sealed;
	bool ack_dirty;
	bool ack_failing;
	bool ack_broken; /* a torn record could not be cut off: stop appending */
	bool broken;     /* the active segment cannot be trusted to grow: roll */
} seg;

struct tjournal {
	int dirfd;
	int lockfd;
	tjournal_options o;
	/* mu guards everything below; append_mu serialises appends, segment
	 * rolls and replays, so that the active file is only ever written and
	 * truncated by the holder of append_mu. Lock order: append_mu, mu. */
	pthread_mutex_t mu;
	pthread_mutex_t append_mu;
	/* Held for a whole sync pass, so that tjournal_sync_now() returns only
	 * after what the sync thread had already taken on is durable too.
	 * Never taken with mu or append_mu held. */
	pthread_mutex_t sync_mu;
	seg *head;
	seg *tail; /* the active segment unless tail->sealed */
	uint64_t next_seq;
	uint64_t next_id;
	uint64_t bytes;
	uint64_t depth;
	bool full;
	bool data_dirty;
	bool dir_dirty;
	uint64_t *pending; /* segment ids whose .ack waits for a directory sync */
	size_t npending, cappending;
	uint64_t appended, released, unknown_releases, corrupt_regions, corrupt_bytes, io_errors;
	uint64_t load_max_seq;
	pthread_t thread;
	pthread_cond_t cond;
	bool thread_running;
	bool stop;
};

static void jlog(tjournal *j, tjournal_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void jlog(tjournal *j, tjournal_level lvl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!j->o.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	j->o.log(j->o.log_opaque, lvl, msg);
}

const char *tjournal_strerror(int code)
{
	switch (code) {
	case TJOURNAL_OK:
		return "ok";
	case TJOURNAL_EINVAL:
		return "invalid argument";
	case TJOURNAL_FULL:
		return "journal is full";
	case TJOURNAL_NOSPACE:
		return "no space left on device";
	case TJOURNAL_EIO:
		return "I/O error";
	case TJOURNAL_ENOMEM:
		return "out of memory";
	case TJOURNAL_CORRUPT:
		return "corrupt data";
	case TJOURNAL_LOCKED:
		return "journal is in use by another process";
	default:
		return "unknown error";
	}
}

int tjournal_sync_from_string(const char *s, tjournal_sync *out)
{
	if (!s || !out)
		return TJOURNAL_EINVAL;
	if (strcmp(s, "always") == 0)
		*out = TJOURNAL_SYNC_ALWAYS;
	else if (strcmp(s, "interval") == 0)
		*out = TJOURNAL_SYNC_INTERVAL;
	else if (strcmp(s, "never") == 0)
		*out = TJOURNAL_SYNC_NEVER;
	else
		return TJOURNAL_EINVAL;
	return 0;
}

static int errno_code(int e)
{
	switch (e) {
	case ENOSPC:
	case EDQUOT:
	case EFBIG:
		return TJOURNAL_NOSPACE;
	case ENOMEM:
		return TJOURNAL_ENOMEM;
	default:
		return TJOURNAL_EIO;
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static uint32_t new_salt(void)
{
	static uint32_t counter;
	uint32_t s;
	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) == (ssize_t)sizeof(s))
		return s;
	/* Only weakens the protection against forged entries during resync. */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	s = (uint32_t)ts.tv_nsec ^ (uint32_t)getpid() << 16 ^
	    __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED);
	return s;
}

static void seg_name(char *buf, size_t n, uint64_t id, const char *ext)
{
	snprintf(buf, n, "%012" PRIu64 ".%s", id, ext);
}

/* ---- per-segment release state ---- */

static bool bit_get(const seg *s, size_t i)
{
	return (s->bits[i / 64] >> (i % 64)) & 1;
}

static int seg_reserve(seg *s, size_t slot)
{
	if (slot < s->cap)
		return 0;
	size_t ncap = s->cap ? s->cap : 1024;
	while (ncap <= slot)
		ncap *= 2;
	uint64_t *bits = realloc(s->bits, ncap / 64 * sizeof(uint64_t));
	if (!bits)
		return TJOURNAL_ENOMEM;
	memset(bits + s->cap / 64, 0, (ncap - s->cap) / 64 * sizeof(uint64_t));
	s->bits = bits;
	uint64_t *ts = realloc(s->ts, ncap * sizeof(uint64_t));
	if (!ts)
		return TJOURNAL_ENOMEM;
	s->ts = ts;
	s->cap = ncap;
	return 0;
}

/* Records an entry present in the segment as unreleased. */
static void seg_add(seg *s, size_t slot, uint64_t ts)
{
	s->bits[slot / 64] |= 1ull << (slot % 64);
	s->ts[slot] = ts;
	if (slot + 1 > s->nslots)
		s->nslots = slot + 1;
	s->entries++;
	s->live++;
}

/* Clears the entry's bit; false if it was not unreleased here. */
static bool seg_clear(seg *s, uint64_t seq)
{
	if (seq < s->base || seq - s->base >= s->nslots)
		return false;
	size_t i = (size_t)(seq - s->base);
	if (!bit_get(s, i))
		return false;
	s->bits[i / 64] &= ~(1ull << (i % 64));
	s->live--;
	return true;
}

/* The oldest unreleased slot; the segment must have live entries. */
static size_t seg_oldest(seg *s)
{
	size_t i = s->hint;
	while (i < s->nslots) {
		uint64_t w = s->bits[i / 64] >> (i % 64);
		if (w) {
			i += (size_t)__builtin_ctzll(w);
			break;
		}
		i = (i / 64 + 1) * 64;
	}
	s->hint = i;
	return i;
}

static void seg_free(seg *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	if (s->ack_fd >= 0)
		close(s->ack_fd);
	free(s->bits);
	free(s->ts);
	free(s);
}

static seg *seg_new(uint64_t id)
{
	seg *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->id = id;
	s->fd = -1;
	s->ack_fd = -1;
	return s;
}

static seg *find_seq(tjournal *j, uint64_t seq)
{
	/* Delivery reports mostly trail the appends by milliseconds. */
	seg *t = j->tail;
	if (t && seq >= t->base && seq - t->base < t->nslots)
		return t;
	for (seg *s = j->head; s; s = s->next)
		if (seq >= s->base && seq - s->base < s->nslots)
			return s;
	return NULL;
}

static seg *find_id(tjournal *j, uint64_t id)
{
	for (seg *s = j->head; s; s = s->next)
		if (s->id == id)
			return s;
	return NULL;
}

static void list_append(tjournal *j, seg *s)
{
	s->next = NULL;
	if (j->tail)
		j->tail->next = s;
	else
		j->head = s;
	j->tail = s;
}

static void list_remove(tjournal *j, seg *s)
{
	seg **pp = &j->head, *prev = NULL;
	while (*pp && *pp != s) {
		prev = *pp;
		pp = &(*pp)->next;
	}
	if (!*pp)
		return;
	*pp = s->next;
	if (j->tail == s)
		j->tail = prev;
}

static void unlink_ack(tjournal *j, uint64_t id)
{
	char name[40];
	seg_name(name, sizeof(name), id, "ack");
	if (unlinkat(j->dirfd, name, 0) != 0 && errno != ENOENT)
		jlog(j, TJOURNAL_LOG_WARNING, "journal: cannot remove %s: %s", name,
		     strerror(errno));
}

/* Deletes a segment none of whose entries is unreleased (mu held). Its .ack
 * goes only after a directory sync has made the .seg's removal durable. */
static void seg_delete_locked(tjournal *j, seg *s)
{
	char name[40];
	seg_name(name, sizeof(name), s->id, "seg");
	if (unlinkat(j->dirfd, name, 0) != 0 && errno != ENOENT) {
		/* Keep the acks: the file comes back fully released next open. */
		jlog(j, TJOURNAL_LOG_WARNING, "journal: cannot remove %s: %s", name,
		     strerror(errno));
		j->io_errors++;
	} else if (j->o.sync == TJOURNAL_SYNC_NEVER) {
		unlink_ack(j, s->id);
	} else if (s->ack_size > 0 || s->ack_fd >= 0) {
		if (j->npending == j->cappending) {
			size_t ncap = j->cappending ? j->cappending * 2 : 16;
			uint64_t *p = realloc(j->pending, ncap * sizeof(*p));
			if (p) {
				j->pending = p;
				j->cappending = ncap;
			}
		}
		if (j->npending < j->cappending)
			j->pending[j->npending++] = s->id;
		/* else: an orphan .ack, removed by the next open */
	}
	j->bytes -= s->size + s->ack_size;
	j->full = false;
	list_remove(j, s);
	seg_free(s);
}

/* ---- releases ---- */

static void ack_write_locked(tjournal *j, seg *s, uint64_t seq)
{
	char name[40];
	uint8_t rec[TJOURNAL_ACK_RECORD_SIZE];

	if (s->ack_broken) {
		errno = EIO;
		goto fail;
	}
	if (s->ack_fd < 0) {
		seg_name(name, sizeof(name), s->id, "ack");
		s->ack_fd = openat(j->dirfd, name, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
		if (s->ack_fd < 0)
			goto fail;
		j->dir_dirty = true;
	}
	tj_ack_encode(rec, s->salt, seq);
	ssize_t k;
	do
		k = write(s->ack_fd, rec, sizeof(rec));
	while (k < 0 && errno == EINTR);
	if (k != (ssize_t)sizeof(rec)) {
		int e = k < 0 ? errno : ENOSPC;
		if (k > 0 && ftruncate(s->ack_fd, (off_t)s->ack_size) != 0) {
			/* Records after a torn one would be misaligned. */
			s->ack_broken = true;
		}
		errno = e;
		goto fail;
	}
	s->ack_size += sizeof(rec);
	j->bytes += sizeof(rec);
	s->ack_dirty = true;
	if (s->ack_failing) {
		s->ack_failing = false;
		jlog(j, TJOURNAL_LOG_INFO,
		     "journal: release records for segment %" PRIu64 " are written again", s->id);
	}
	return;
fail:
	j->io_errors++;
	if (!s->ack_failing) {
		s->ack_failing = true;
		jlog(j, TJOURNAL_LOG_WARNING,
		     "journal: cannot record release of %" PRIu64 " (segment %" PRIu64
		     "): %s; it may be replayed again after a restart",
		     seq, s->id, strerror(errno));
	}
}

static void release_locked(tjournal *j, uint64_t seq)
{
	seg *s = find_seq(j, seq);
	if (!s || !seg_clear(s, seq)) {
		j->unknown_releases++;
		return;
	}
	j->depth--;
	j->released++;
	ack_write_locked(j, s, seq);
	if (s->sealed && s->live == 0)
		seg_delete_locked(j, s);
}

void tjournal_release(tjournal *j, uint64_t seq)
{
	tjournal_release_many(j, &seq, 1);
}

void tjournal_release_many(tjournal *j, const uint64_t *seqs, size_t n)
{
	if (!j || !seqs || j->o.read_only)
		return;
	pthread_mutex_lock(&j->mu);
	for (size_t i = 0; i < n; i++)
		release_locked(j, seqs[i]);
	pthread_mutex_unlock(&j->mu);
}

/* ---- syncing ---- */

typedef struct sync_item {
	int fd;
	uint64_t id;
	bool data;
} sync_item;

/* fdatasyncs what was written since the last pass, then the directory, then
 * removes the .ack files of segments whose removal the directory sync made
 * durable. Runs without mu during the syscalls: it works on dup()ed fds,
 * so segments may be sealed or deleted meanwhile. */
static int sync_pass(tjournal *j)
{
	sync_item *items = NULL;
	size_t n = 0, cap = 0;
	uint64_t *pending = NULL;
	size_t npending = 0;
	bool dir;
	int rc = 0;

	pthread_mutex_lock(&j->sync_mu);
	pthread_mutex_lock(&j->mu);
	for (seg *s = j->head; s; s = s->next) {
		bool data = (s == j->tail && !s->sealed && j->data_dirty && s->fd >= 0);
		bool ack = s->ack_dirty && s->ack_fd >= 0;
		for (int k = 0; k < 2; k++) {
			if (!(k == 0 ? data : ack))
				continue;
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 8;
				sync_item *ni = realloc(items, ncap * sizeof(*ni));
				if (!ni)
					continue; /* stays dirty for the next pass */
				items = ni;
				cap = ncap;
			}
			int fd = fcntl(k == 0 ? s->fd : s->ack_fd, F_DUPFD_CLOEXEC, 0);
			if (fd < 0)
				continue;
			items[n++] = (sync_item){fd, s->id, k == 0};
			if (k == 0)
				j->data_dirty = false;
			else
				s->ack_dirty = false;
		}
	}
	dir = j->dir_dirty || j->npending;
	j->dir_dirty = false;
	pending = j->pending;
	npending = j->npending;
	j->pending = NULL;
	j->npending = j->cappending = 0;
	pthread_mutex_unlock(&j->mu);

	for (size_t i = 0; i < n; i++) {
		if (fdatasync(items[i].fd) != 0) {
			int e = errno;
			rc = errno_code(e);
			pthread_mutex_lock(&j->mu);
			j->io_errors++;
			seg *s = find_id(j, items[i].id);
			if (items[i].data && s && !s->sealed) {
				/* After a failed fsync the page cache may hold data
				 * that never reaches the disk: stop writing here. */
				s->broken = true;
			}
			jlog(j, TJOURNAL_LOG_ERROR,
			     "journal: fdatasync of %s of segment %" PRIu64 " failed: %s",
			     items[i].data ? "data" : "releases", items[i].id, strerror(e));
			pthread_mutex_unlock(&j->mu);
		}
		close(items[i].fd);
	}
	free(items);

	if (dir && fsync(j->dirfd) != 0) {
		int e = errno;
		rc = errno_code(e);
		pthread_mutex_lock(&j->mu);
		j->io_errors++;
		j->dir_dirty = true;
		jlog(j, TJOURNAL_LOG_ERROR, "journal: fsync of the directory failed: %s",
		     strerror(e));
		/* Put the pending .ack removals back for the next pass. */
		for (size_t i = 0; i < npending; i++) {
			if (j->npending == j->cappending) {
				size_t ncap = j->cappending ? j->cappending * 2 : 16;
				uint64_t *p = realloc(j->pending, ncap * sizeof(*p));
				if (!p)
					break;
				j->pending = p;
				j->cappending = ncap;
			}
			j->pending[j->npending++] = pending[i];
		}
		pthread_mutex_unlock(&j->mu);
	} else {
		for (size_t i = 0; i < npending; i++)
			unlink_ack(j, pending[i]);
	}
	free(pending);
	pthread_mutex_unlock(&j->sync_mu);
	return rc;
}

int tjournal_sync_now(tjournal *j)
{
	if (!j)
		return TJOURNAL_EINVAL;
	if (j->o.read_only)
		return 0;
	return sync_pass(j);
}

static void *sync_thread(void *arg)
{
	tjournal *j = arg;
	struct timespec t;

	pthread_mutex_lock(&j->mu);
	while (!j->stop) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		uint64_t ns = (uint64_t)t.tv_nsec + (uint64_t)j->o.sync_interval_ms * 1000000u;
		t.tv_sec += (time_t)(ns / 1000000000u);
		t.tv_nsec = (long)(ns % 1000000000u);
		pthread_cond_timedwait(&j->cond, &j->mu, &t);
		if (j->stop)
			break;
		pthread_mutex_unlock(&j->mu);
		sync_pass(j);
		pthread_mutex_lock(&j->mu);
	}
	pthread_mutex_unlock(&j->mu);
	return NULL;
}

/* ---- appends ---- */

static int pwrite_all(int fd, const void *a, size_t alen, const void *b, size_t blen, uint64_t off)
{
	struct iovec iov[2] = {{(void *)a, alen}, {(void *)b, blen}};
	int iovcnt = blen ? 2 : 1;
	struct iovec *v = iov;
	while (iovcnt > 0) {
		ssize_t k = pwritev(fd, v, iovcnt, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		if (k == 0) {
			errno = ENOSPC;
			return -1;
		}
		off += (uint64_t)k;
		while (iovcnt > 0 && (size_t)k >= v->iov_len) {
			k -= (ssize_t)v->iov_len;
			v++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			v->iov_base = (char *)v->iov_base + k;
			v->iov_len -= (size_t)k;
		}
	}
	return 0;
}

/* Seals the active segment (deleting it if nothing in it is unreleased)
 * and creates the next one. append_mu held. */
static int roll(tjournal *j, seg **out)
{
	/* Under mu: a sealed tail may be deleted by a concurrent release. */
	pthread_mutex_lock(&j->mu);
	seg *old = (j->tail && !j->tail->sealed) ? j->tail : NULL;
	pthread_mutex_unlock(&j->mu);
	if (old) {
		if (j->o.sync != TJOURNAL_SYNC_NEVER && fdatasync(old->fd) != 0) {
			/* Entries in it were acknowledged (INTERVAL): all we can do
			 * is say so; the next open reports whatever is damaged. */
			jlog(j, TJOURNAL_LOG_ERROR,
			     "journal: fdatasync of segment %" PRIu64
			     " failed while sealing it: %s",
			     old->id, strerror(errno));
			pthread_mutex_lock(&j->mu);
			j->io_errors++;
			pthread_mutex_unlock(&j->mu);
		}
		pthread_mutex_lock(&j->mu);
		close(old->fd);
		old->fd = -1;
		old->sealed = true;
		j->data_dirty = false;
		if (old->live == 0)
			seg_delete_locked(j, old);
		pthread_mutex_unlock(&j->mu);
	}

	char name[40];
	uint8_t hdr[TJOURNAL_SEGMENT_HEADER_SIZE];
	seg *s = seg_new(0);
	if (!s)
		return TJOURNAL_ENOMEM;
	int fd = -1;
	for (int tries = 0; tries < 1000; tries++) {
		s->id = j->next_id++;
		seg_name(name, sizeof(name), s->id, "seg");
		fd = openat(j->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
		if (fd >= 0 || errno != EEXIST)
			break;
	}
	if (fd < 0) {
		int e = errno;
		jlog(j, TJOURNAL_LOG_ERROR, "journal: cannot create %s: %s", name, strerror(e));
		seg_free(s);
		return errno_code(e);
	}
	s->fd = fd;
	s->salt = new_salt();
	s->base = j->next_seq;
	tjournal_segment_info info = {TJ_SEG_VERSION, s->salt, s->id, s->base};
	tj_segment_header_encode(hdr, &info);
	if (pwrite_all(fd, hdr, sizeof(hdr), NULL, 0, 0) != 0 ||
	    (j->o.sync == TJOURNAL_SYNC_ALWAYS && (fdatasync(fd) != 0 || fsync(j->dirfd) != 0))) {
		int e = errno;
		jlog(j, e == ENOSPC ? TJOURNAL_LOG_WARNING : TJOURNAL_LOG_ERROR,
		     "journal: cannot write the header of %s: %s", name, strerror(e));
		unlinkat(j->dirfd, name, 0);
		seg_free(s);
		return errno_code(e);
	}
	s->size = sizeof(hdr);
	pthread_mutex_lock(&j->mu);
	if (j->o.sync != TJOURNAL_SYNC_ALWAYS)
		j->dir_dirty = true;
	list_append(j, s);
	j->bytes += s->size;
	pthread_mutex_unlock(&j->mu);
	*out = s;
	return 0;
}

/* Takes back a failed append; append_mu held. */
static void undo_append(tjournal *j, seg *a, int e)
{
	if (ftruncate(a->fd, (off_t)a->size) != 0) {
		jlog(j, TJOURNAL_LOG_ERROR,
		     "journal: cannot truncate segment %" PRIu64
		     " after a failed write: %s; sealing it",
		     a->id, strerror(errno));
		pthread_mutex_lock(&j->mu);
		a->broken = true;
		pthread_mutex_unlock(&j->mu);
	}
	if (e != ENOSPC && e != EDQUOT) {
		/* EIO and friends: the file's state is unknown; don't grow it. */
		pthread_mutex_lock(&j->mu);
		a->broken = true;
		pthread_mutex_unlock(&j->mu);
	}
}

int tjournal_append(tjournal *j, const void *data, size_t len, uint64_t *seq_out)
{
	if (!j || !data || len == 0 || len > j->o.max_entry_bytes || j->o.read_only)
		return TJOURNAL_EINVAL;
	uint64_t need = TJOURNAL_ENTRY_HEADER_SIZE + (uint64_t)len;
	int rc = 0;

	pthread_mutex_lock(&j->append_mu);
	pthread_mutex_lock(&j->mu);
	seg *a = (j->tail && !j->tail->sealed) ? j->tail : NULL;
	bool do_roll = !a || a->broken || (a->entries > 0 && a->size + need > j->o.segment_bytes);
	uint64_t want = need + (do_roll ? TJOURNAL_SEGMENT_HEADER_SIZE : 0);
	if (j->bytes + want > j->o.max_bytes) {
		uint64_t freed = 0;
		/* A fully released active segment gives its room back by rolling. */
		if (a && a->live == 0 && a->entries > 0) {
			if (!do_roll)
				want += TJOURNAL_SEGMENT_HEADER_SIZE;
			do_roll = true;
			freed = a->size + a->ack_size;
		}
		if (j->bytes - freed + want > j->o.max_bytes) {
			j->full = true;
			pthread_mutex_unlock(&j->mu);
			pthread_mutex_unlock(&j->append_mu);
			return TJOURNAL_FULL;
		}
	}
	pthread_mutex_unlock(&j->mu);

	if (do_roll) {
		rc = roll(j, &a);
		if (rc) {
			pthread_mutex_lock(&j->mu);
			j->io_errors++;
			pthread_mutex_unlock(&j->mu);
			goto out;
		}
	}

	uint64_t seq = j->next_seq;
	size_t slot = (size_t)(seq - a->base);
	pthread_mutex_lock(&j->mu);
	rc = seg_reserve(a, slot);
	pthread_mutex_unlock(&j->mu);
	if (rc)
		goto out;

	uint8_t hdr[TJOURNAL_ENTRY_HEADER_SIZE];
	uint64_t ts = now_ms();
	tj_entry_header_encode(hdr, a->salt, seq, ts, data, (uint32_t)len);
	if (pwrite_all(a->fd, hdr, sizeof(hdr), data, len, a->size) != 0 ||
	    (j->o.sync == TJOURNAL_SYNC_ALWAYS && fdatasync(a->fd) != 0)) {
		int e = errno;
		rc = errno_code(e);
		undo_append(j, a, e);
		pthread_mutex_lock(&j->mu);
		j->io_errors++;
		pthread_mutex_unlock(&j->mu);
		jlog(j, rc == TJOURNAL_NOSPACE ? TJOURNAL_LOG_WARNING : TJOURNAL_LOG_ERROR,
		     "journal: append to segment %" PRIu64 " failed: %s", a->id, strerror(e));
		goto out;
	}

	pthread_mutex_lock(&j->mu);
	seg_add(a, slot, ts);
	a->size += need;
	j->bytes += need;
	j->depth++;
	j->appended++;
	j->next_seq++;
	j->full = false;
	if (j->o.sync != TJOURNAL_SYNC_ALWAYS)
		j->data_dirty = true;
	pthread_mutex_unlock(&j->mu);
	if (seq_out)
		*seq_out = seq;
out:
	if (rc == TJOURNAL_NOSPACE) {
		pthread_mutex_lock(&j->mu);
		j->full = true;
		pthread_mutex_unlock(&j->mu);
	}
	pthread_mutex_unlock(&j->append_mu);
	return rc;
}

/* ---- replay ---- */

typedef struct replay_ctx {
	tjournal *j;
	uint64_t id;
	uint64_t from, below; /* the sequence numbers passed: [from, below) */
	tjournal_replay_fn cb;
	void *opaque;
} replay_ctx;

static int replay_entry(void *opaque, uint64_t off, uint64_t seq, uint64_t ts, const void *data,
                        size_t len)
{
	replay_ctx *c = opaque;
	(void)off;
	(void)ts;
	if (seq < c->from || seq >= c->below)
		return 0;
	pthread_mutex_lock(&c->j->mu);
	seg *s = find_id(c->j, c->id);
	bool live =
	    s && seq >= s->base && seq - s->base < s->nslots && bit_get(s, (size_t)(seq - s->base));
	pthread_mutex_unlock(&c->j->mu);
	/* The callback runs unlocked: it may release. */
	return live ? c->cb(seq, data, len, c->opaque) : 0;
}

/* Without hold_appends, appends go on meanwhile: only entries below the
 * next sequence number at the start are passed (complete: an append takes
 * its number after its write), and a partly written or truncated entry that
 * the scan meets is never valid (CRCs) or is beyond that bound. */
static int replay_range(tjournal *j, uint64_t from, bool hold_appends, tjournal_replay_fn cb,
                        void *opaque)
{
	if (!j || !cb)
		return TJOURNAL_EINVAL;
	int rc = 0;
	uint64_t after = 0, below = UINT64_MAX;

	if (hold_appends)
		pthread_mutex_lock(&j->append_mu);
	else {
		pthread_mutex_lock(&j->mu);
		below = j->next_seq;
		pthread_mutex_unlock(&j->mu);
	}
	for (;;) {
		uint64_t id = 0;
		bool found = false, live = false;
		pthread_mutex_lock(&j->mu);
		for (seg *s = j->head; s; s = s->next)
			if (s->id > after) {
				id = s->id;
				live = s->live > 0 && s->base + s->nslots > from && s->base < below;
				found = true;
				break;
			}
		pthread_mutex_unlock(&j->mu);
		if (!found)
			break;
		after = id;
		if (!live)
			continue;

		char name[40];
		seg_name(name, sizeof(name), id, "seg");
		int fd = openat(j->dirfd, name, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			if (errno == ENOENT) /* released and deleted meanwhile */
				continue;
			jlog(j, TJOURNAL_LOG_ERROR, "journal: replay cannot open %s: %s", name,
			     strerror(errno));
			rc = TJOURNAL_EIO;
			break;
		}
		replay_ctx c = {j, id, from, below, cb, opaque};
		tjournal_scan_visitor v = {.entry = replay_entry, .opaque = &c};
		rc = tjournal_scan_fd(fd, &v);
		close(fd);
		if (rc == TJOURNAL_CORRUPT) /* reported when it was loaded */
			rc = 0;
		if (rc)
			break;
	}
	if (hold_appends)
		pthread_mutex_unlock(&j->append_mu);
	return rc;
}

int tjournal_replay(tjournal *j, tjournal_replay_fn cb, void *opaque)
{
	return replay_range(j, 0, true, cb, opaque);
}

int tjournal_replay_from(tjournal *j, uint64_t from_seq, tjournal_replay_fn cb, void *opaque)
{
	return replay_range(j, from_seq, false, cb, opaque);
}

/* ---- stats ---- */

void tjournal_get_stats(tjournal *j, tjournal_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!j)
		return;
	uint64_t now = now_ms();
	pthread_mutex_lock(&j->mu);
	out->depth = j->depth;
	out->bytes = j->bytes;
	out->max_bytes = j->o.max_bytes;
	out->next_seq = j->next_seq;
	out->full = j->full;
	out->appended = j->appended;
	out->released = j->released;
	out->unknown_releases = j->unknown_releases;
	out->corrupt_regions = j->corrupt_regions;
	out->corrupt_bytes = j->corrupt_bytes;
	out->io_errors = j->io_errors;
	for (seg *s = j->head; s; s = s->next) {
		out->segments++;
		if (s->live && !out->oldest_seq) {
			size_t i = seg_oldest(s);
			out->oldest_seq = s->base + i;
			out->oldest_age_ms = now > s->ts[i] ? now - s->ts[i] : 0;
		}
	}
	pthread_mutex_unlock(&j->mu);
}

/* ---- open / close ---- */

typedef struct load_ctx {
	tjournal *j;
	seg *s;
	uint64_t file_size;
	const char *name;
	int rc;
	bool have_info;
} load_ctx;

static void load_corrupt(void *opaque, uint64_t off, uint64_t len, const char *reason)
{
	load_ctx *c = opaque;
	c->j->corrupt_regions++;
	c->j->corrupt_bytes += len;
	jlog(c->j, TJOURNAL_LOG_WARNING,
	     "journal: %s: %s at offset %" PRIu64 ", %" PRIu64 " bytes skipped", c->name, reason,
	     off, len);
}

static int load_segment_info(void *opaque, const tjournal_segment_info *info)
{
	load_ctx *c = opaque;
	if (info->id != c->s->id)
		jlog(c->j, TJOURNAL_LOG_WARNING, "journal: %s: header says segment %" PRIu64,
		     c->name, info->id);
	c->s->salt = info->salt;
	c->s->base = info->first_seq;
	c->have_info = true;
	return 0;
}

static int load_entry(void *opaque, uint64_t off, uint64_t seq, uint64_t ts, const void *data,
                      size_t len)
{
	load_ctx *c = opaque;
	seg *s = c->s;
	(void)data;
	/* Sequence numbers grow by one per entry within a segment; a bigger
	 * slot can only come from a forged or damaged file and would make us
	 * allocate for nothing. */
	uint64_t slot = seq - s->base;
	if (seq <= c->j->load_max_seq || slot > c->file_size / TJOURNAL_ENTRY_HEADER_SIZE) {
		load_corrupt(c, off, TJOURNAL_ENTRY_HEADER_SIZE + (uint64_t)len,
		             "entry with a sequence number out of order");
		return 0;
	}
	if (seg_reserve(s, (size_t)slot) != 0) {
		c->rc = TJOURNAL_ENOMEM;
		return TJOURNAL_ENOMEM;
	}
	seg_add(s, (size_t)slot, ts);
	c->j->load_max_seq = seq;
	return 0;
}

static void load_ack(void *opaque, uint64_t seq)
{
	seg *s = opaque;
	seg_clear(s, seq);
}

/* Loads one segment and its releases; NULL if there is nothing to keep
 * (after setting the file aside when it is unreadable). */
static seg *load_segment(tjournal *j, uint64_t id, int *rc_out)
{
	char name[40], ack[40];
	struct stat st;
	seg_name(name, sizeof(name), id, "seg");
	seg_name(ack, sizeof(ack), id, "ack");
	*rc_out = 0;

	int fd = openat(j->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0) {
		jlog(j, TJOURNAL_LOG_ERROR, "journal: cannot open %s: %s (left in place)", name,
		     strerror(errno));
		if (fd >= 0)
			close(fd);
		j->io_errors++;
		return NULL;
	}
	seg *s = seg_new(id);
	if (!s) {
		close(fd);
		*rc_out = TJOURNAL_ENOMEM;
		return NULL;
	}
	load_ctx c = {.j = j, .s = s, .file_size = (uint64_t)st.st_size, .name = name};
	tjournal_scan_visitor v = {load_segment_info, load_entry, load_corrupt, &c};
	int rc = tjournal_scan_fd(fd, &v);
	close(fd);
	if (rc == TJOURNAL_CORRUPT && st.st_size < TJOURNAL_SEGMENT_HEADER_SIZE) {
		/* Created, then the crash came before its header was complete:
		 * it never held an entry. */
		jlog(j, TJOURNAL_LOG_INFO,
		     "journal: %s: incomplete segment header (%lld bytes), removed", name,
		     (long long)st.st_size);
		if (!j->o.read_only)
			unlinkat(j->dirfd, name, 0);
		seg_free(s);
		return NULL;
	}
	if (rc == TJOURNAL_CORRUPT) {
		char dst[64];
		snprintf(dst, sizeof(dst), "%s.corrupt", name);
		j->corrupt_regions++;
		j->corrupt_bytes += (uint64_t)st.st_size;
		if (!j->o.read_only && renameat(j->dirfd, name, j->dirfd, dst) == 0)
			jlog(j, TJOURNAL_LOG_ERROR,
			     "journal: %s: unreadable segment header; "
			     "%lld bytes set aside as %s",
			     name, (long long)st.st_size, dst);
		else
			jlog(j, TJOURNAL_LOG_ERROR,
			     "journal: %s: unreadable segment header; "
			     "%lld bytes skipped",
			     name, (long long)st.st_size);
		seg_free(s);
		return NULL;
	}
	if (rc) {
		jlog(j, TJOURNAL_LOG_ERROR, "journal: cannot read %s: %s (left in place)", name,
		     tjournal_strerror(rc));
		j->io_errors++;
		seg_free(s);
		if (rc == TJOURNAL_ENOMEM)
			*rc_out = rc;
		return NULL;
	}
	s->size = (uint64_t)st.st_size;
	s->sealed = true;

	int afd = openat(j->dirfd, ack, (j->o.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (afd >= 0) {
		uint64_t bad = 0, asize = 0;
		if (fstat(afd, &st) == 0)
			asize = (uint64_t)st.st_size;
		int64_t valid = tjournal_scan_acks_fd(afd, s->salt, load_ack, s, &bad);
		if (valid < 0) {
			jlog(j, TJOURNAL_LOG_ERROR,
			     "journal: cannot read %s: %s; its releases are lost "
			     "and the entries will be replayed",
			     ack, tjournal_strerror((int)valid));
			j->io_errors++;
			s->ack_broken = true;
		} else if (asize > (uint64_t)valid || bad) {
			/* Appending after a torn record would misalign the rest. */
			if (asize > (uint64_t)valid && !j->o.read_only) {
				if (ftruncate(afd, (off_t)valid) == 0)
					asize = (uint64_t)valid;
				else
					s->ack_broken = true;
			}
			jlog(j, TJOURNAL_LOG_WARNING,
			     "journal: %s: %" PRIu64 " bad release record(s) "
			     "ignored",
			     ack, bad);
		}
		s->ack_size = asize;
		close(afd);
	}
	return s;
}

static bool parse_name(const char *n, uint64_t *id, const char **ext)
{
	const char *p = n;
	uint64_t v = 0;
	while (*p >= '0' && *p <= '9' && p - n < 20) {
		v = v * 10 + (uint64_t)(*p - '0');
		p++;
	}
	if (p == n || *p != '.' || v == 0)
		return false;
	*id = v;
	*ext = p + 1;
	return true;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int push_id(uint64_t **v, size_t *n, size_t *cap, uint64_t id)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		uint64_t *p = realloc(*v, ncap * sizeof(*p));
		if (!p)
			return TJOURNAL_ENOMEM;
		*v = p;
		*cap = ncap;
	}
	(*v)[(*n)++] = id;
	return 0;
}

static int load_all(tjournal *j, char *err, size_t errlen)
{
	uint64_t *segs = NULL, *acks = NULL;
	size_t nsegs = 0, capsegs = 0, nacks = 0, capacks = 0;
	uint64_t max_id = 0;
	int rc = 0;

	int dfd = fcntl(j->dirfd, F_DUPFD_CLOEXEC, 0);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		snprintf(err, errlen, "cannot list the journal directory: %s", strerror(errno));
		if (dfd >= 0)
			close(dfd);
		return TJOURNAL_EIO;
	}
	struct dirent *e;
	while (!rc && (e = readdir(d))) {
		uint64_t id;
		const char *ext;
		if (!parse_name(e->d_name, &id, &ext))
			continue;
		if (id > max_id)
			max_id = id;
		if (strcmp(ext, "seg") == 0)
			rc = push_id(&segs, &nsegs, &capsegs, id);
		else if (strcmp(ext, "ack") == 0)
			rc = push_id(&acks, &nacks, &capacks, id);
	}
	closedir(d);
	if (rc) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if (nsegs)
		qsort(segs, nsegs, sizeof(*segs), cmp_u64);

	for (size_t i = 0; i < nsegs; i++) {
		int lrc;
		seg *s = load_segment(j, segs[i], &lrc);
		if (lrc) {
			snprintf(err, errlen, "loading segment %" PRIu64 ": %s", segs[i],
			         tjournal_strerror(lrc));
			rc = lrc;
			goto out;
		}
		if (!s)
			continue;
		list_append(j, s);
		j->bytes += s->size + s->ack_size;
		j->depth += s->live;
		if (s->base + s->nslots > j->next_seq)
			j->next_seq = s->base + s->nslots;
		if (s->base > j->next_seq)
			j->next_seq = s->base;
	}
	if (j->load_max_seq + 1 > j->next_seq)
		j->next_seq = j->load_max_seq + 1;
	j->next_id = max_id + 1;

	if (!j->o.read_only) {
		for (size_t i = 0; i < nacks; i++)
			if (!nsegs || !bsearch(&acks[i], segs, nsegs, sizeof(*segs), cmp_u64))
				unlink_ack(j, acks[i]); /* its segment's removal was durable */
		for (seg *s = j->head, *next; s; s = next) {
			next = s->next;
			if (s->live == 0)
				seg_delete_locked(j, s);
		}
	}
out:
	free(segs);
	free(acks);
	return rc;
}

tjournal *tjournal_open(const char *dir, const tjournal_options *opts, char *err, size_t errlen)
{
	char dummy[1];
	if (!err) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	if (errlen)
		err[0] = '\0';
	if (!dir || !*dir) {
		snprintf(err, errlen, "no journal directory");
		return NULL;
	}

	tjournal_options o = opts ? *opts : (tjournal_options){0};
	if (!o.sync_interval_ms)
		o.sync_interval_ms = TJOURNAL_DEFAULT_SYNC_INTERVAL_MS;
	if (!o.max_bytes)
		o.max_bytes = TJOURNAL_DEFAULT_MAX_BYTES;
	if (!o.segment_bytes)
		o.segment_bytes = TJOURNAL_DEFAULT_SEGMENT_BYTES;
	uint64_t overhead = TJOURNAL_SEGMENT_HEADER_SIZE + TJOURNAL_ENTRY_HEADER_SIZE;
	if (o.segment_bytes <= overhead) {
		snprintf(err, errlen, "segment size %" PRIu64 " is too small", o.segment_bytes);
		return NULL;
	}
	if (!o.max_entry_bytes)
		o.max_entry_bytes = o.segment_bytes - overhead < TJOURNAL_DEFAULT_MAX_ENTRY_BYTES
		                        ? (uint32_t)(o.segment_bytes - overhead)
		                        : TJOURNAL_DEFAULT_MAX_ENTRY_BYTES;
	if ((uint64_t)o.max_entry_bytes + overhead > o.segment_bytes ||
	    o.max_entry_bytes > TJOURNAL_FORMAT_MAX_ENTRY) {
		snprintf(err, errlen,
		         "maximum entry size %u does not fit a %" PRIu64 "-byte segment",
		         o.max_entry_bytes, o.segment_bytes);
		return NULL;
	}
	if (o.sync != TJOURNAL_SYNC_ALWAYS && o.sync != TJOURNAL_SYNC_INTERVAL &&
	    o.sync != TJOURNAL_SYNC_NEVER) {
		snprintf(err, errlen, "unknown sync policy %d", (int)o.sync);
		return NULL;
	}

	tjournal *j = calloc(1, sizeof(*j));
	if (!j) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	j->o = o;
	j->dirfd = j->lockfd = -1;
	j->next_seq = 1;
	pthread_mutex_init(&j->mu, NULL);
	pthread_mutex_init(&j->append_mu, NULL);
	pthread_mutex_init(&j->sync_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&j->cond, &ca);
	pthread_condattr_destroy(&ca);

	if (!o.read_only && mkdir(dir, 0750) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", dir, strerror(errno));
		goto fail;
	}
	j->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (j->dirfd < 0) {
		snprintf(err, errlen, "cannot open %s: %s", dir, strerror(errno));
		goto fail;
	}
	if (!o.read_only) {
		j->lockfd = openat(j->dirfd, "LOCK", O_RDWR | O_CREAT | O_CLOEXEC, 0640);
		if (j->lockfd < 0) {
			snprintf(err, errlen, "cannot create %s/LOCK: %s", dir, strerror(errno));
			goto fail;
		}
		if (flock(j->lockfd, LOCK_EX | LOCK_NB) != 0) {
			snprintf(err, errlen, "%s: %s", dir,
			         errno == EWOULDBLOCK ? tjournal_strerror(TJOURNAL_LOCKED)
			                              : strerror(errno));
			goto fail;
		}
	}
	if (load_all(j, err, errlen) != 0)
		goto fail;
	if (!o.read_only) {
		/* Make the removals done while loading final before new work. */
		if (o.sync != TJOURNAL_SYNC_NEVER)
			sync_pass(j);
		if (o.sync != TJOURNAL_SYNC_NEVER) {
			if (pthread_create(&j->thread, NULL, sync_thread, j) != 0) {
				snprintf(err, errlen, "cannot start the journal sync thread");
				goto fail;
			}
			j->thread_running = true;
		}
	}
	return j;
fail:
	tjournal_close(j);
	return NULL;
}

void tjournal_close(tjournal *j)
{
	if (!j)
		return;
	if (j->thread_running) {
		pthread_mutex_lock(&j->mu);
		j->stop = true;
		pthread_cond_signal(&j->cond);
		pthread_mutex_unlock(&j->mu);
		pthread_join(j->thread, NULL);
	}
	if (!j->o.read_only && j->dirfd >= 0) {
		pthread_mutex_lock(&j->append_mu);
		pthread_mutex_lock(&j->mu);
		seg *a = (j->tail && !j->tail->sealed) ? j->tail : NULL;
		pthread_mutex_unlock(&j->mu);
		if (a) {
			if (j->o.sync != TJOURNAL_SYNC_NEVER && fdatasync(a->fd) != 0)
				jlog(j, TJOURNAL_LOG_ERROR,
				     "journal: fdatasync of segment %" PRIu64
				     " failed on close: %s",
				     a->id, strerror(errno));
			pthread_mutex_lock(&j->mu);
			close(a->fd);
			a->fd = -1;
			a->sealed = true;
			j->data_dirty = false;
			if (a->live == 0)
				seg_delete_locked(j, a);
			pthread_mutex_unlock(&j->mu);
		}
		pthread_mutex_unlock(&j->append_mu);
		if (j->o.sync != TJOURNAL_SYNC_NEVER)
			sync_pass(j);
		/* Whatever a failed directory sync left: orphans for the next open. */
	}
	for (seg *s = j->head, *next; s; s = next) {
		next = s->next;
		seg_free(s);
	}
	free(j->pending);
	if (j->lockfd >= 0)
		close(j->lockfd);
	if (j->dirfd >= 0)
		close(j->dirfd);
	pthread_cond_destroy(&j->cond);
	pthread_mutex_destroy(&j->mu);
	pthread_mutex_destroy(&j->append_mu);
	pthread_mutex_destroy(&j->sync_mu);
	free(j);
}
