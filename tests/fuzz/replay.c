/*
 * Runs a libFuzzer target's LLVMFuzzerTestOneInput over files, without
 * libFuzzer: `make unit` replays every seed and every crash ever found
 * (tests/fuzz/corpus/NAME/) through the gcc build and its sanitizer build,
 * so a fixed fuzz finding stays fixed.
 *
 *   replay_NAME FILE|DIR...
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int replay__file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	size_t cap = 4096, len = 0;
	uint8_t *buf = malloc(cap);
	size_t n;
	while (buf && (n = fread(buf + len, 1, cap - len, f)) > 0) {
		len += n;
		if (len == cap) {
			uint8_t *nb = realloc(buf, cap *= 2);
			if (!nb)
				free(buf);
			buf = nb;
		}
	}
	int bad = ferror(f) || !buf;
	fclose(f);
	if (bad) {
		fprintf(stderr, "%s: cannot read\n", path);
		free(buf);
		return -1;
	}
	/* An exact-size copy, so that the sanitizers see reads past the end. */
	uint8_t *exact = malloc(len ? len : 1);
	if (!exact) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	return 0;
}

static int replay__name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int replay__path(const char *path, int *count)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		(*count)++;
		return replay__file(path);
	}
	struct dirent **list;
	int n = scandir(path, &list, NULL, NULL);
	if (n < 0) {
		perror(path);
		return -1;
	}
	char **names = calloc((size_t)n + 1, sizeof(*names));
	int k = 0, rc = names ? 0 : -1;
	for (int i = 0; i < n; i++) {
		if (names && list[i]->d_name[0] != '.')
			names[k++] = strdup(list[i]->d_name);
		free(list[i]);
	}
	free(list);
	if (names)
		qsort(names, (size_t)k, sizeof(*names), replay__name_cmp);
	for (int i = 0; i < k; i++) {
		char sub[4096];
		if (!names[i] ||
		    snprintf(sub, sizeof(sub), "%s/%s", path, names[i]) >= (int)sizeof(sub))
			rc = -1;
		else if (replay__path(sub, count))
			rc = -1;
		free(names[i]);
	}
	free(names);
	return rc;
}

int main(int argc, char **argv)
{
	int count = 0, rc = 0;
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++)
		if (replay__path(argv[i], &count))
			rc = 1;
	printf("%s: %d inputs replayed%s\n", argv[0], count, rc ? ", some unreadable" : "");
	return rc;
}
