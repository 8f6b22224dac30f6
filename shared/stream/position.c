/*
 * Stream position parser and writer; see tributary/position.h.
 * Strict on purpose: a position comes from a client, and anything that is
 * not exactly what we write is refused rather than guessed at.
 */

#include <stdlib.h>
#include <string.h>

#include "tributary/position.h"

/*
 * Reads an unsigned decimal without leading zeros (a lone "0" is fine) from
 * s[*i ..), not above max. Returns 0 and sets *v on success.
 */
static int pos_number(const char *s, size_t len, size_t *i, uint64_t max, uint64_t *v)
{
	size_t start = *i;
	uint64_t n = 0;

	while (*i < len && s[*i] >= '0' && s[*i] <= '9') {
		unsigned d = (unsigned)(s[*i] - '0');

		if (n > (max - d) / 10) {
			return -1;
		}

		n = n * 10 + d;
		(*i)++;
	}

	if (*i == start || (s[start] == '0' && *i - start > 1)) {
		return -1;
	}

	*v = n;
	return 0;
}

static int pos_cmp(const void *a, const void *b)
{
	const tb_pos_entry *x = a, *y = b;

	return (x->partition > y->partition) - (x->partition < y->partition);
}

tb_pos_kind tb_pos_parse(const char *s, size_t len, tb_pos_entry *out, size_t max, size_t *n,
                         const char **err)
{
	size_t i, k;
	uint64_t partition, offset;

	*n = 0;

	if (len == 9 && memcmp(s, "beginning", 9) == 0) {
		return TB_POS_BEGINNING;
	}

	if (len == 3 && memcmp(s, "now", 3) == 0) {
		return TB_POS_NOW;
	}

	if (len == 0) {
		*err = "empty position";
		return TB_POS_ERROR;
	}

	if (len > TB_POS_MAX_LEN) {
		*err = "position too long";
		return TB_POS_ERROR;
	}

	i = 0;

	for (;;) {
		if (i >= len || s[i] != 'p') {
			*err = "position entry must start with \"p\" "
			       "(expected \"p<partition>:o<offset>,...\", "
			       "\"beginning\" or \"now\")";
			return TB_POS_ERROR;
		}

		i++;

		if (pos_number(s, len, &i, INT32_MAX, &partition) != 0) {
			*err = "bad partition number in position";
			return TB_POS_ERROR;
		}

		if (len - i < 2 || s[i] != ':' || s[i + 1] != 'o') {
			*err = "expected \":o<offset>\" after the partition in position";
			return TB_POS_ERROR;
		}

		i += 2;

		if (pos_number(s, len, &i, INT64_MAX, &offset) != 0) {
			*err = "bad offset in position";
			return TB_POS_ERROR;
		}

		if (*n == max || *n == TB_POS_MAX_PARTITIONS) {
			*err = "too many partitions in position";
			return TB_POS_ERROR;
		}

		out[*n].partition = (int32_t)partition;
		out[*n].offset = (int64_t)offset;
		(*n)++;

		if (i == len) {
			break;
		}

		if (s[i] != ',' || i + 1 == len) {
			*err = "expected \",\" between position entries";
			return TB_POS_ERROR;
		}

		i++;
	}

	qsort(out, *n, sizeof(*out), pos_cmp);

	for (k = 1; k < *n; k++) {
		if (out[k].partition == out[k - 1].partition) {
			*err = "partition repeated in position";
			return TB_POS_ERROR;
		}
	}

	return TB_POS_OFFSETS;
}

static size_t pos_utoa(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);

	for (i = 0; i < n; i++) {
		p[i] = tmp[n - 1 - i];
	}

	return n;
}

size_t tb_pos_format(char *buf, size_t size, const int64_t *next, size_t count)
{
	char entry[TB_POS_ENTRY_LEN];
	size_t i, len = 0, e;

	for (i = 0; i < count; i++) {
		e = 0;

		if (i) {
			entry[e++] = ',';
		}

		entry[e++] = 'p';
		e += pos_utoa(entry + e, i);
		entry[e++] = ':';
		entry[e++] = 'o';
		e += pos_utoa(entry + e, next[i] < 0 ? 0 : (uint64_t)next[i]);

		if (size - len < e) {
			return 0;
		}

		memcpy(buf + len, entry, e);
		len += e;
	}

	return len;
}
