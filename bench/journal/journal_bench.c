/* Journal append throughput and latency for 1 KB entries under each sync
 * policy, each beside an in-memory baseline (the event copied into a
 * preallocated buffer: what the plugin's accept path costs without a
 * journal) measured in the same run, interleaved rep by rep so that both
 * see the same machine load. Prints medians over the repetitions.
 *
 *   build/bench/journal [DIR] [--reps R] [--n N] [--always-n N] [--entry BYTES]
 *
 * DIR (default $JOURNAL_BENCH_DIR or build/bench-tmp/journal) should be on
 * the disk the broker will use: on tmpfs fdatasync costs nothing. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>
#include <ftw.h>

#include "tributary/journal.h"

typedef struct result {
	double rate;     /* entries per second */
	double p50, p99; /* microseconds */
} result;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static result summarize(uint64_t *lat, size_t n, uint64_t total_ns)
{
	result r;
	qsort(lat, n, sizeof(*lat), cmp_u64);
	r.rate = (double)n / ((double)total_ns / 1e9);
	r.p50 = (double)lat[n / 2] / 1000.0;
	r.p99 = (double)lat[(n * 99) / 100] / 1000.0;
	return r;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int run_journal(const char *dir, tjournal_sync sync, size_t n, const uint8_t *entry,
                       size_t len, uint64_t *lat, result *out)
{
	char err[256];
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	tjournal_options o = {.sync = sync, .sync_interval_ms = 10, .max_bytes = 8ull << 30};
	tjournal *j = tjournal_open(dir, &o, err, sizeof(err));
	if (!j) {
		fprintf(stderr, "journal bench: %s\n", err);
		return -1;
	}
	uint64_t start = now_ns();
	for (size_t i = 0; i < n; i++) {
		uint64_t t0 = now_ns();
		int rc = tjournal_append(j, entry, len, NULL);
		lat[i] = now_ns() - t0;
		if (rc) {
			fprintf(stderr, "journal bench: append: %s\n", tjournal_strerror(rc));
			tjournal_close(j);
			return -1;
		}
	}
	uint64_t total = now_ns() - start;
	tjournal_close(j);
	*out = summarize(lat, n, total);
	return 0;
}

static void run_baseline(size_t n, const uint8_t *entry, size_t len, uint64_t *lat, result *out)
{
	size_t ring_entries = 65536;
	uint8_t *ring = malloc(ring_entries * len);
	if (!ring)
		abort();
	memset(ring, 0, ring_entries * len); /* fault the pages in first */
	uint64_t start = now_ns();
	for (size_t i = 0; i < n; i++) {
		uint64_t t0 = now_ns();
		memcpy(ring + (i % ring_entries) * len, entry, len);
		__asm__ volatile("" : : "r"(ring) : "memory");
		lat[i] = now_ns() - t0;
	}
	uint64_t total = now_ns() - start;
	free(ring);
	*out = summarize(lat, n, total);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	const char *dir = getenv("JOURNAL_BENCH_DIR");
	int reps = 5;
	size_t n = 50000, always_n = 2000, len = 1024;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc)
			reps = atoi(argv[++i]);
		else if (strcmp(argv[i], "--n") == 0 && i + 1 < argc)
			n = (size_t)strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--always-n") == 0 && i + 1 < argc)
			always_n = (size_t)strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--entry") == 0 && i + 1 < argc)
			len = (size_t)strtoull(argv[++i], NULL, 10);
		else if (argv[i][0] != '-')
			dir = argv[i];
		else {
			fprintf(
			    stderr,
			    "usage: %s [DIR] [--reps R] [--n N] [--always-n N] [--entry BYTES]\n",
			    argv[0]);
			return 2;
		}
	}
	if (!dir)
		dir = "build/bench-tmp/journal";
	if (reps < 1 || n < 100 || always_n < 100 || len < 1 || len > (1u << 20)) {
		fprintf(stderr, "journal bench: bad parameters\n");
		return 2;
	}
	char parent[4096];
	snprintf(parent, sizeof(parent), "%s", dir);
	char *slash = strrchr(parent, '/');
	if (slash) {
		*slash = '\0';
		char cmd[4200];
		snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", parent);
		if (system(cmd) != 0)
			return 1;
	}
	struct statfs sfs;
	const char *fs = "";
	if (statfs(slash ? parent : ".", &sfs) == 0 && sfs.f_type == 0x01021994)
		fs = " (tmpfs: fdatasync is free here, numbers are not representative)";

	uint8_t *entry = malloc(len);
	for (size_t i = 0; i < len; i++)
		entry[i] = (uint8_t)(i * 13 + 7);
	size_t maxn = n > always_n ? n : always_n;
	uint64_t *lat = malloc(maxn * sizeof(*lat));
	if (!entry || !lat)
		return 1;

	printf("journal append: %zu-byte entries, %d runs each, medians; dir %s%s\n", len, reps,
	       dir, fs);
	printf("%-10s %8s %12s %9s %9s %9s | %-8s %12s %9s %9s\n", "policy", "entries", "entries/s",
	       "MB/s", "p50 us", "p99 us", "baseline", "entries/s", "p50 us", "p99 us");

	struct {
		const char *name;
		tjournal_sync sync;
		size_t n;
	} pol[] = {
	    {"always", TJOURNAL_SYNC_ALWAYS, always_n},
	    {"interval", TJOURNAL_SYNC_INTERVAL, n},
	    {"never", TJOURNAL_SYNC_NEVER, n},
	};
	int status = 0;
	for (size_t p = 0; p < 3; p++) {
		double jr[64], j50[64], j99[64], br[64], b50[64], b99[64];
		int k = reps > 64 ? 64 : reps;
		for (int r = 0; r < k; r++) {
			result jres, bres;
			run_baseline(pol[p].n, entry, len, lat, &bres);
			if (run_journal(dir, pol[p].sync, pol[p].n, entry, len, lat, &jres) != 0) {
				status = 1;
				goto out;
			}
			jr[r] = jres.rate;
			j50[r] = jres.p50;
			j99[r] = jres.p99;
			br[r] = bres.rate;
			b50[r] = bres.p50;
			b99[r] = bres.p99;
		}
		double rate = median(jr, k);
		printf("%-10s %8zu %12.0f %9.1f %9.2f %9.2f | %-8s %12.0f %9.3f %9.3f\n",
		       pol[p].name, pol[p].n, rate, rate * (double)len / 1e6, median(j50, k),
		       median(j99, k), "memcpy", median(br, k), median(b50, k), median(b99, k));
		fflush(stdout);
	}
out:
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(entry);
	free(lat);
	return status;
}
