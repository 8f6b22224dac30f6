/* tributary-journal-tool: inspect and exercise a Tributary journal.
 *
 *   dump DIR [--payload]        every segment, entry, release and corrupt region
 *   stats DIR                   depth, bytes, oldest entry (key=value lines)
 *   replay DIR [--verify] [-q]  unreleased entries, oldest first
 *   release DIR SEQ|A-B...      mark entries delivered (the broker must be stopped)
 *   append DIR N SIZE [opts]    append N test records with SIZE-byte values
 *       --sync=always|interval|never --interval-ms=N --max-bytes=N[kmg]
 *       --segment-bytes=N[kmg]
 *
 * dump, stats and replay open the journal read-only and may run beside the
 * broker. Exit status: 0 ok, 1 usage or error, 3 journal full, 4 no space
 * left on device, 5 I/O error, 6 replay --verify found bad entries.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tributary/journal.h"

static const char *usage_text =
    "usage: tributary-journal-tool COMMAND DIR ...\n"
    "  dump DIR [--payload]        segments, entries, releases, corrupt regions\n"
    "  stats DIR                   depth, bytes, age of the oldest entry\n"
    "  replay DIR [--verify] [-q]  unreleased entries, oldest first\n"
    "  release DIR SEQ|A-B ...     mark entries delivered (broker stopped)\n"
    "  append DIR N SIZE [--sync=always|interval|never] [--interval-ms=N]\n"
    "                    [--max-bytes=N[kmg]] [--segment-bytes=N[kmg]]\n";

static int usage(void)
{
	fputs(usage_text, stderr);
	return 1;
}

static void log_stderr(void *opaque, tjournal_level level, const char *msg)
{
	(void)opaque;
	static const char *names[] = {"info", "warning", "error"};
	fprintf(stderr, "%s: %s\n", names[level], msg);
}

static int exit_code(int rc)
{
	switch (rc) {
	case 0:
		return 0;
	case TJOURNAL_FULL:
		return 3;
	case TJOURNAL_NOSPACE:
		return 4;
	case TJOURNAL_EIO:
		return 5;
	default:
		return 1;
	}
}

static bool parse_u64(const char *s, uint64_t *out)
{
	char *end;
	if (!s || !isdigit((unsigned char)*s))
		return false;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return false;
	uint64_t mul = 1;
	switch (*end) {
	case 'k':
	case 'K':
		mul = 1ull << 10;
		end++;
		break;
	case 'm':
	case 'M':
		mul = 1ull << 20;
		end++;
		break;
	case 'g':
	case 'G':
		mul = 1ull << 30;
		end++;
		break;
	}
	if (*end || (v && mul > UINT64_MAX / v))
		return false;
	*out = (uint64_t)v * mul;
	return true;
}

static tjournal *open_journal(const char *dir, tjournal_options *o)
{
	char err[512];
	o->log = log_stderr;
	tjournal *j = tjournal_open(dir, o, err, sizeof(err));
	if (!j)
		fprintf(stderr, "tributary-journal-tool: %s\n", err);
	return j;
}

/* ---- test records: value bytes derive from the tag in the key ---- */

static uint8_t pattern(uint64_t tag, size_t i)
{
	return (uint8_t)(tag * 131u + i * 7u + (i >> 8));
}

static int verify_record(const tjournal_record *r)
{
	uint64_t tag;
	if (r->key_len < 6 || memcmp(r->key, "tool-", 5) != 0 ||
	    !parse_u64((const char *)r->key + 5, &tag) || !r->value)
		return -1;
	const uint8_t *v = r->value;
	for (size_t i = 0; i < r->value_len; i++)
		if (v[i] != pattern(tag, i))
			return -1;
	return 0;
}

static int cmd_append(int argc, char **argv)
{
	uint64_t n, size;
	tjournal_options o = {0};
	if (argc < 3 || !parse_u64(argv[1], &n) || !parse_u64(argv[2], &size))
		return usage();
	for (int i = 3; i < argc; i++) {
		const char *a = argv[i];
		uint64_t v;
		if (strcmp(a, "--sync=always") == 0)
			o.sync = TJOURNAL_SYNC_ALWAYS;
		else if (strcmp(a, "--sync=interval") == 0)
			o.sync = TJOURNAL_SYNC_INTERVAL;
		else if (strcmp(a, "--sync=never") == 0)
			o.sync = TJOURNAL_SYNC_NEVER;
		else if (strncmp(a, "--interval-ms=", 14) == 0 && parse_u64(a + 14, &v) &&
		         v < 1000000)
			o.sync_interval_ms = (unsigned)v;
		else if (strncmp(a, "--max-bytes=", 12) == 0 && parse_u64(a + 12, &v))
			o.max_bytes = v;
		else if (strncmp(a, "--segment-bytes=", 16) == 0 && parse_u64(a + 16, &v))
			o.segment_bytes = v;
		else
			return usage();
	}
	if (size > UINT32_MAX)
		return usage();
	tjournal *j = open_journal(argv[0], &o);
	if (!j)
		return 1;

	uint8_t *value = malloc(size ? size : 1);
	size_t cap = size + 256;
	uint8_t *blob = malloc(cap);
	if (!value || !blob) {
		fprintf(stderr, "tributary-journal-tool: out of memory\n");
		return 1;
	}
	int rc = 0;
	uint64_t done = 0, first = 0, last = 0;
	for (; done < n; done++) {
		tjournal_stats st;
		tjournal_get_stats(j, &st);
		char key[32];
		snprintf(key, sizeof(key), "tool-%" PRIu64, st.next_seq);
		for (size_t i = 0; i < size; i++)
			value[i] = pattern(st.next_seq, i);
		tjournal_header h = {"source", 6, "journal-tool", 12};
		tjournal_record r = {"journal-tool", 12, key, strlen(key), &h, 1, value, size};
		size_t len = tjournal_record_encode(&r, blob, cap);
		uint64_t seq;
		rc = len ? tjournal_append(j, blob, len, &seq) : TJOURNAL_EINVAL;
		if (rc)
			break;
		if (!first)
			first = seq;
		last = seq;
	}
	if (done)
		printf("appended %" PRIu64 " of %" PRIu64 " (seq %" PRIu64 "-%" PRIu64 ")\n", done,
		       n, first, last);
	else
		printf("appended 0 of %" PRIu64 "\n", n);
	if (rc)
		fprintf(stderr, "tributary-journal-tool: append failed after %" PRIu64 ": %s\n",
		        done, tjournal_strerror(rc));
	free(value);
	free(blob);
	tjournal_close(j);
	return exit_code(rc);
}

typedef struct replay_state {
	bool verify, quiet;
	uint64_t n, bad, bytes;
} replay_state;

static void print_escaped(const void *data, size_t len, size_t max)
{
	const unsigned char *p = data;
	for (size_t i = 0; i < len && i < max; i++)
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			putchar(p[i]);
		else
			printf("\\x%02x", p[i]);
	if (len > max)
		printf("...");
}

static void print_record(const void *data, size_t len, size_t max)
{
	tjournal_record *r;
	if (tjournal_record_decode(data, len, &r) != 0) {
		printf(" (not a record) ");
		print_escaped(data, len, max);
		return;
	}
	printf(" topic=%s key=", r->topic);
	if (r->key)
		print_escaped(r->key, r->key_len, 64);
	else
		printf("(null)");
	for (size_t i = 0; i < r->header_count; i++) {
		printf(" h:%s=", r->headers[i].name);
		if (r->headers[i].value)
			print_escaped(r->headers[i].value, r->headers[i].value_len, 64);
		else
			printf("(null)");
	}
	printf(" value[%zu]=", r->value_len);
	if (r->value)
		print_escaped(r->value, r->value_len, max);
	else
		printf("(null)");
	free(r);
}

static int on_replay(uint64_t seq, const void *data, size_t len, void *opaque)
{
	replay_state *s = opaque;
	bool ok = true;
	if (s->verify) {
		tjournal_record *r;
		ok = tjournal_record_decode(data, len, &r) == 0 && verify_record(r) == 0;
		if (ok)
			free(r);
	}
	s->n++;
	s->bytes += len;
	s->bad += !ok;
	if (!s->quiet || !ok) {
		printf("%" PRIu64 " len=%zu%s", seq, len, ok ? "" : " BAD");
		print_record(data, len, 80);
		putchar('\n');
	}
	return 0;
}

static int cmd_replay(int argc, char **argv)
{
	replay_state s = {0};
	if (argc < 1)
		return usage();
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--verify") == 0)
			s.verify = true;
		else if (strcmp(argv[i], "-q") == 0)
			s.quiet = true;
		else
			return usage();
	}
	tjournal_options o = {.read_only = true};
	tjournal *j = open_journal(argv[0], &o);
	if (!j)
		return 1;
	int rc = tjournal_replay(j, on_replay, &s);
	tjournal_stats st;
	tjournal_get_stats(j, &st);
	tjournal_close(j);
	printf("replayed %" PRIu64 " entries (%" PRIu64 " payload bytes), %" PRIu64 " bad, %" PRIu64
	       " corrupt regions\n",
	       s.n, s.bytes, s.bad, st.corrupt_regions);
	if (rc) {
		fprintf(stderr, "tributary-journal-tool: replay: %s\n", tjournal_strerror(rc));
		return exit_code(rc);
	}
	return s.bad ? 6 : 0;
}

static int cmd_release(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	size_t cap = 1024, n = 0;
	uint64_t *seqs = malloc(cap * sizeof(*seqs));
	for (int i = 1; i < argc; i++) {
		uint64_t a, b;
		char *dash = strchr(argv[i], '-');
		if (dash) {
			*dash = '\0';
			if (!parse_u64(argv[i], &a) || !parse_u64(dash + 1, &b) || b < a ||
			    b - a > 100000000) {
				free(seqs);
				return usage();
			}
		} else if (parse_u64(argv[i], &a)) {
			b = a;
		} else {
			free(seqs);
			return usage();
		}
		for (uint64_t s = a; s <= b; s++) {
			if (n == cap) {
				cap *= 2;
				uint64_t *p = realloc(seqs, cap * sizeof(*seqs));
				if (!p) {
					free(seqs);
					fprintf(stderr, "tributary-journal-tool: out of memory\n");
					return 1;
				}
				seqs = p;
			}
			seqs[n++] = s;
		}
	}
	tjournal_options o = {0};
	tjournal *j = open_journal(argv[0], &o);
	if (!j) {
		free(seqs);
		return 1;
	}
	tjournal_release_many(j, seqs, n);
	tjournal_stats st;
	tjournal_get_stats(j, &st);
	tjournal_close(j);
	printf("released %" PRIu64 ", unknown %" PRIu64 ", depth now %" PRIu64 "\n", st.released,
	       st.unknown_releases, st.depth);
	free(seqs);
	return st.io_errors ? 5 : 0;
}

static int cmd_stats(int argc, char **argv)
{
	if (argc != 1)
		return usage();
	tjournal_options o = {.read_only = true};
	tjournal *j = open_journal(argv[0], &o);
	if (!j)
		return 1;
	tjournal_stats st;
	tjournal_get_stats(j, &st);
	tjournal_close(j);
	printf("depth=%" PRIu64 "\nbytes=%" PRIu64 "\nsegments=%u\noldest_seq=%" PRIu64
	       "\noldest_age_ms=%" PRIu64 "\nnext_seq=%" PRIu64 "\ncorrupt_regions=%" PRIu64
	       "\ncorrupt_bytes=%" PRIu64 "\n",
	       st.depth, st.bytes, st.segments, st.oldest_seq, st.oldest_age_ms, st.next_seq,
	       st.corrupt_regions, st.corrupt_bytes);
	return 0;
}

/* ---- dump: the raw files, independent of the journal's own loading ---- */

typedef struct dump_state {
	bool payload;
	tjournal_segment_info info;
	bool have_info;
	uint64_t *acked;
	size_t nacked, capacked;
	uint64_t entries, live, corrupt;
} dump_state;

static int dump_info(void *opaque, const tjournal_segment_info *info)
{
	dump_state *d = opaque;
	d->info = *info;
	d->have_info = true;
	return 1; /* first pass: the header only */
}

static void dump_ack(void *opaque, uint64_t seq)
{
	dump_state *d = opaque;
	if (d->nacked == d->capacked) {
		d->capacked = d->capacked ? d->capacked * 2 : 256;
		uint64_t *p = realloc(d->acked, d->capacked * sizeof(*p));
		if (!p)
			abort();
		d->acked = p;
	}
	d->acked[d->nacked++] = seq;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int dump_entry(void *opaque, uint64_t off, uint64_t seq, uint64_t ts, const void *data,
                      size_t len)
{
	dump_state *d = opaque;
	bool released = d->nacked && bsearch(&seq, d->acked, d->nacked, sizeof(seq), cmp_u64);
	char when[32];
	time_t t = (time_t)(ts / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	printf("  @%-10" PRIu64 " seq=%-10" PRIu64 " len=%-8zu %s.%03uZ %s", off, seq, len, when,
	       (unsigned)(ts % 1000), released ? "released" : "UNRELEASED");
	if (d->payload)
		print_record(data, len, 200);
	putchar('\n');
	d->entries++;
	d->live += !released;
	return 0;
}

static void dump_corrupt(void *opaque, uint64_t off, uint64_t len, const char *reason)
{
	dump_state *d = opaque;
	printf("  @%-10" PRIu64 " CORRUPT %" PRIu64 " bytes: %s\n", off, len, reason);
	d->corrupt++;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmd_dump(int argc, char **argv)
{
	bool payload = false;
	if (argc < 1)
		return usage();
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--payload") == 0)
			payload = true;
		else
			return usage();
	}
	DIR *dir = opendir(argv[0]);
	if (!dir) {
		fprintf(stderr, "tributary-journal-tool: %s: %s\n", argv[0], strerror(errno));
		return 1;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof(*names));
			if (!names)
				abort();
		}
		names[n++] = strdup(e->d_name);
	}
	closedir(dir);
	if (n)
		qsort(names, n, sizeof(*names), name_cmp);

	int status = 0;
	uint64_t total_live = 0, total_entries = 0, total_corrupt = 0;
	for (size_t i = 0; i < n; i++) {
		const char *nm = names[i];
		size_t l = strlen(nm);
		char path[4096];
		snprintf(path, sizeof(path), "%s/%s", argv[0], nm);
		if (l < 5 || strcmp(nm + l - 4, ".seg") != 0) {
			if (strcmp(nm, "LOCK") != 0 && !(l > 4 && strcmp(nm + l - 4, ".ack") == 0))
				printf("%s: not a segment (ignored by the journal)\n", nm);
			continue;
		}
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			printf("%s: cannot open: %s\n", nm, strerror(errno));
			status = 5;
			continue;
		}
		off_t size = lseek(fd, 0, SEEK_END);
		dump_state d = {.payload = payload};
		tjournal_scan_visitor v1 = {.segment = dump_info, .opaque = &d};
		int rc = tjournal_scan_fd(fd, &v1);
		if (!d.have_info) {
			printf("%s: %lld bytes, UNREADABLE segment header (%s)\n", nm,
			       (long long)size,
			       rc == TJOURNAL_CORRUPT ? "corrupt or incomplete"
			                              : tjournal_strerror(rc));
			close(fd);
			total_corrupt++;
			continue;
		}
		char ack[4096];
		snprintf(ack, sizeof(ack), "%.*s.ack", (int)(strlen(path) - 4), path);
		int afd = open(ack, O_RDONLY | O_CLOEXEC);
		uint64_t bad = 0;
		int64_t ack_bytes = 0;
		if (afd >= 0) {
			ack_bytes = tjournal_scan_acks_fd(afd, d.info.salt, dump_ack, &d, &bad);
			close(afd);
			if (d.nacked)
				qsort(d.acked, d.nacked, sizeof(*d.acked), cmp_u64);
		}
		printf("%s: %lld bytes, version %u, id %" PRIu64 ", first seq %" PRIu64
		       ", salt %08x, %zu release records%s",
		       nm, (long long)size, d.info.version, d.info.id, d.info.first_seq,
		       d.info.salt, d.nacked, afd >= 0 ? "" : " (no .ack)");
		if (bad)
			printf(", %" PRIu64 " bad release records", bad);
		if (ack_bytes < 0)
			printf(", .ack unreadable");
		putchar('\n');
		tjournal_scan_visitor v2 = {NULL, dump_entry, dump_corrupt, &d};
		rc = tjournal_scan_fd(fd, &v2);
		close(fd);
		if (rc) {
			printf("  read error: %s\n", tjournal_strerror(rc));
			status = 5;
		}
		printf("  %" PRIu64 " entries, %" PRIu64 " unreleased, %" PRIu64
		       " corrupt regions\n",
		       d.entries, d.live, d.corrupt);
		total_entries += d.entries;
		total_live += d.live;
		total_corrupt += d.corrupt;
		free(d.acked);
	}
	printf("total: %" PRIu64 " entries, %" PRIu64 " unreleased, %" PRIu64 " corrupt regions\n",
	       total_entries, total_live, total_corrupt);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return status;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return usage();
	const char *cmd = argv[1];
	argc -= 2;
	argv += 2;
	if (strcmp(cmd, "append") == 0)
		return cmd_append(argc, argv);
	if (strcmp(cmd, "replay") == 0)
		return cmd_replay(argc, argv);
	if (strcmp(cmd, "release") == 0)
		return cmd_release(argc, argv);
	if (strcmp(cmd, "stats") == 0)
		return cmd_stats(argc, argv);
	if (strcmp(cmd, "dump") == 0)
		return cmd_dump(argc, argv);
	return usage();
}
