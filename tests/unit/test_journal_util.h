/* Helpers shared by the test_journal*.c unit tests (header-only: each test
 * file is its own binary). */
#ifndef TEST_JOURNAL_UTIL_H
#define TEST_JOURNAL_UTIL_H

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tributary/journal.h"

/* Payload of entry number `tag`: the tag, then bytes derived from it, so
 * that replay can check both identity and content. */
static inline void jt_fill(uint8_t *buf, size_t len, uint64_t tag)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(tag * 131u + i * 7u + (i >> 8));
	if (len >= 8)
		memcpy(buf, &tag, 8);
}

/* The tag of a payload, or UINT64_MAX if its content is not what jt_fill
 * wrote. */
static inline uint64_t jt_check(const void *data, size_t len)
{
	uint64_t tag;
	if (len < 8)
		return UINT64_MAX;
	memcpy(&tag, data, 8);
	const uint8_t *p = data;
	for (size_t i = 8; i < len; i++)
		if (p[i] != (uint8_t)(tag * 131u + i * 7u + (i >> 8)))
			return UINT64_MAX;
	return tag;
}

typedef struct jt_log {
	int infos, warnings, errors;
	char last[512];
	char all[8192];
} jt_log;

static inline void jt_log_fn(void *opaque, tjournal_level level, const char *msg)
{
	jt_log *l = opaque;
	if (level == TJOURNAL_LOG_INFO)
		l->infos++;
	else if (level == TJOURNAL_LOG_WARNING)
		l->warnings++;
	else
		l->errors++;
	snprintf(l->last, sizeof(l->last), "%s", msg);
	size_t n = strlen(l->all);
	if (n + strlen(msg) + 2 < sizeof(l->all)) {
		strcat(l->all, msg);
		strcat(l->all, "\n");
	}
	if (getenv("JT_VERBOSE"))
		fprintf(stderr, "  [journal] %s\n", msg);
}

static inline int jt_rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static inline void jt_rmrf(const char *dir)
{
	nftw(dir, jt_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static inline char *jt_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char tmpl[512];
	snprintf(tmpl, sizeof(tmpl), "%s/tjournal-test-XXXXXX", base && *base ? base : "/tmp");
	char *d = mkdtemp(tmpl);
	return d ? strdup(d) : NULL;
}

/* Number of files in dir ending with `suffix`. */
static inline int jt_count(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	int n = 0;
	struct dirent *e;
	size_t sl = strlen(suffix);
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		size_t l = strlen(e->d_name);
		if (l >= sl && strcmp(e->d_name + l - sl, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

static inline off_t jt_size(const char *dir, const char *name)
{
	char p[1024];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return stat(p, &st) == 0 ? st.st_size : -1;
}

static inline int jt_truncate(const char *dir, const char *name, off_t size)
{
	char p[1024];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return truncate(p, size);
}

/* XORs `mask` into the byte at `off`. */
static inline int jt_flip(const char *dir, const char *name, off_t off, uint8_t mask)
{
	char p[1024];
	uint8_t b;
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	int fd = open(p, O_RDWR);
	if (fd < 0)
		return -1;
	int rc = -1;
	if (pread(fd, &b, 1, off) == 1) {
		b ^= mask;
		rc = pwrite(fd, &b, 1, off) == 1 ? 0 : -1;
	}
	close(fd);
	return rc;
}

/* Replay collector: seqs and tags, in replay order. */
typedef struct jt_seen {
	size_t n, cap;
	uint64_t *seq;
	uint64_t *tag;
	size_t bad; /* payloads whose content was wrong */
} jt_seen;

static inline int jt_collect(uint64_t seq, const void *data, size_t len, void *opaque)
{
	jt_seen *s = opaque;
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 64;
		s->seq = realloc(s->seq, s->cap * sizeof(uint64_t));
		s->tag = realloc(s->tag, s->cap * sizeof(uint64_t));
		if (!s->seq || !s->tag)
			abort();
	}
	uint64_t tag = jt_check(data, len);
	if (tag == UINT64_MAX)
		s->bad++;
	s->seq[s->n] = seq;
	s->tag[s->n] = tag;
	s->n++;
	return 0;
}

static inline void jt_seen_free(jt_seen *s)
{
	free(s->seq);
	free(s->tag);
	memset(s, 0, sizeof(*s));
}

#endif
