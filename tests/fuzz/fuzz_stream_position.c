/*
 * libFuzzer target for the tributary_stream position parser (Last-Event-ID
 * and ?from= come straight from clients). Besides memory safety it checks
 * that whatever parses formats back to a position that parses to the same
 * entries. The parser (shared/stream/position.c) needs only libc:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Ishared/include \
 *       tests/fuzz/fuzz_stream_position.c shared/stream/position.c \
 *       -o fuzz_stream_position
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tributary/position.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static tb_pos_entry e[TB_POS_MAX_PARTITIONS];
	static tb_pos_entry e2[TB_POS_MAX_PARTITIONS];
	static int64_t next[TB_POS_MAX_PARTITIONS];
	static char text[TB_POS_MAX_PARTITIONS * TB_POS_ENTRY_LEN];
	static char text2[sizeof(text)];
	const char *err = NULL;
	size_t n, n2, i, len;
	tb_pos_kind kind;

	kind = tb_pos_parse((const char *)data, size, e, TB_POS_MAX_PARTITIONS, &n, &err);

	if (kind == TB_POS_ERROR) {
		if (err == NULL || *err == '\0') {
			abort();
		}
		return 0;
	}

	if (kind != TB_POS_OFFSETS) {
		return 0;
	}

	if (n == 0 || n > TB_POS_MAX_PARTITIONS) {
		abort();
	}

	for (i = 0; i < n; i++) {
		if (e[i].partition < 0 || e[i].offset < 0 ||
		    (i && e[i].partition <= e[i - 1].partition)) {
			abort();
		}
	}

	/*
	 * Round trip through the writer, which lists partitions 0 .. count-1;
	 * only dense positions of that shape can come back identical.
	 */
	if ((size_t)e[n - 1].partition != n - 1) {
		return 0;
	}

	for (i = 0; i < n; i++) {
		next[i] = e[i].offset;
	}

	len = tb_pos_format(text, sizeof(text), next, n);
	if (len == 0) {
		abort();
	}

	if (tb_pos_parse(text, len, e2, TB_POS_MAX_PARTITIONS, &n2, &err) != TB_POS_OFFSETS ||
	    n2 != n || memcmp(e, e2, n * sizeof(e[0])) != 0) {
		abort();
	}

	/* The written form is canonical: writing it again gives the same. */
	for (i = 0; i < n2; i++) {
		next[i] = e2[i].offset;
	}

	if (tb_pos_format(text2, sizeof(text2), next, n2) != len || memcmp(text, text2, len) != 0) {
		abort();
	}

	return 0;
}
