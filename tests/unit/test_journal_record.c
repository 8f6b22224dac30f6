/* Journal records: encode/decode round trip and rejection of malformed
 * blobs (they come back from disk and are treated as hostile). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "tributary/journal.h"

static const tjournal_header sample_headers[] = {
    {"ce_type", 7, "com.example.order.placed", 24},
    {"ce_null", 7, NULL, 0},
    {"empty", 5, "", 0},
    {"bin", 3, "\0\x01\xff", 3},
};

static const tjournal_record sample = {
    .topic = "orders.v1",
    .topic_len = 9,
    .key = "customer-42",
    .key_len = 11,
    .headers = sample_headers,
    .header_count = 4,
    .value = "{\"specversion\":\"1.0\",\"id\":\"x\"}",
    .value_len = 31,
};

static uint8_t *encode(const tjournal_record *r, size_t *len)
{
	size_t n = tjournal_record_size(r);
	assert_true(n > 0);
	uint8_t *buf = malloc(n);
	assert_int_equal(tjournal_record_encode(r, buf, n), n);
	*len = n;
	return buf;
}

static void assert_bytes(const void *a, size_t alen, const void *b, size_t blen)
{
	assert_int_equal(alen, blen);
	if (alen)
		assert_memory_equal(a, b, alen);
}

static void test_round_trip(void **state)
{
	(void)state;
	size_t len;
	uint8_t *blob = encode(&sample, &len);
	/* 1 + 2+9 + 4+11 + 4 + (2+7+4+24) + (2+7+4) + (2+5+4) + (2+3+4+3) + 4+31 */
	assert_int_equal(len, 1 + 11 + 15 + 4 + 37 + 13 + 11 + 12 + 35);

	tjournal_record *r;
	assert_int_equal(tjournal_record_decode(blob, len, &r), 0);
	assert_string_equal(r->topic, "orders.v1");
	assert_int_equal(r->topic_len, 9);
	assert_bytes(r->key, r->key_len, sample.key, sample.key_len);
	assert_int_equal(r->header_count, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_string_equal(r->headers[i].name, sample_headers[i].name);
		assert_int_equal(r->headers[i].name_len, sample_headers[i].name_len);
		if (sample_headers[i].value)
			assert_bytes(r->headers[i].value, r->headers[i].value_len,
			             sample_headers[i].value, sample_headers[i].value_len);
		else
			assert_null(r->headers[i].value);
	}
	assert_non_null(r->headers[2].value); /* empty, not null */
	assert_bytes(r->value, r->value_len, sample.value, sample.value_len);

	/* Re-encoding the decoded record gives the same bytes. */
	size_t len2;
	uint8_t *blob2 = encode(r, &len2);
	assert_bytes(blob2, len2, blob, len);
	free(blob2);
	free(r);
	free(blob);
}

static void test_nulls_and_minimal(void **state)
{
	(void)state;
	tjournal_record m = {.topic = "t", .topic_len = 1};
	size_t len;
	uint8_t *blob = encode(&m, &len);
	assert_int_equal(len, 1 + 3 + 4 + 4 + 4);
	tjournal_record *r;
	assert_int_equal(tjournal_record_decode(blob, len, &r), 0);
	assert_null(r->key);
	assert_null(r->value);
	assert_null(r->headers);
	assert_int_equal(r->header_count, 0);
	free(r);
	free(blob);

	/* Empty key and value are not null. */
	m.key = "";
	m.value = "";
	blob = encode(&m, &len);
	assert_int_equal(tjournal_record_decode(blob, len, &r), 0);
	assert_non_null(r->key);
	assert_int_equal(r->key_len, 0);
	assert_non_null(r->value);
	assert_int_equal(r->value_len, 0);
	free(r);
	free(blob);
}

static void test_encode_rejects(void **state)
{
	(void)state;
	uint8_t buf[256];
	tjournal_record r = sample;
	r.topic_len = 0;
	assert_int_equal(tjournal_record_size(&r), 0);
	r = sample;
	r.topic = "a\0b";
	r.topic_len = 3;
	assert_int_equal(tjournal_record_size(&r), 0);
	r = sample;
	tjournal_header h = {"n\0x", 3, "v", 1};
	r.headers = &h;
	r.header_count = 1;
	assert_int_equal(tjournal_record_size(&r), 0);
	r = sample;
	r.topic = NULL;
	assert_int_equal(tjournal_record_size(&r), 0);
	r = sample;
	r.headers = NULL;
	assert_int_equal(tjournal_record_size(&r), 0);
	/* Does not fit. */
	size_t n = tjournal_record_size(&sample);
	assert_int_equal(tjournal_record_encode(&sample, buf, n - 1), 0);
	assert_int_equal(tjournal_record_encode(&sample, buf, n), n);
}

static void test_decode_rejects_every_truncation(void **state)
{
	(void)state;
	size_t len;
	uint8_t *blob = encode(&sample, &len);
	tjournal_record *r = (tjournal_record *)1;
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);
		memcpy(copy, blob, cut);
		assert_int_equal(tjournal_record_decode(copy, cut, &r), TJOURNAL_CORRUPT);
		assert_null(r);
		free(copy);
	}
	/* Trailing bytes. */
	uint8_t *longer = malloc(len + 1);
	memcpy(longer, blob, len);
	longer[len] = 0;
	assert_int_equal(tjournal_record_decode(longer, len + 1, &r), TJOURNAL_CORRUPT);
	free(longer);
	free(blob);
}

static void test_decode_rejects_malformed(void **state)
{
	(void)state;
	size_t len;
	uint8_t *blob = encode(&sample, &len);
	tjournal_record *r;

	uint8_t *b = malloc(len);
	/* Unknown version. */
	memcpy(b, blob, len);
	b[0] = 2;
	assert_int_equal(tjournal_record_decode(b, len, &r), TJOURNAL_CORRUPT);
	/* Empty topic. */
	memcpy(b, blob, len);
	b[1] = b[2] = 0;
	assert_int_equal(tjournal_record_decode(b, len, &r), TJOURNAL_CORRUPT);
	/* NUL inside the topic. */
	memcpy(b, blob, len);
	b[5] = 0;
	assert_int_equal(tjournal_record_decode(b, len, &r), TJOURNAL_CORRUPT);
	/* Key length past the end. */
	memcpy(b, blob, len);
	b[12] = 0xfe;
	b[13] = 0xff;
	b[14] = 0xff;
	b[15] = 0xff;
	assert_int_equal(tjournal_record_decode(b, len, &r), TJOURNAL_CORRUPT);
	/* A huge header count must fail before allocating. */
	memcpy(b, blob, len);
	size_t count_off = 1 + 2 + 9 + 4 + 11;
	b[count_off] = b[count_off + 1] = b[count_off + 2] = b[count_off + 3] = 0xff;
	assert_int_equal(tjournal_record_decode(b, len, &r), TJOURNAL_CORRUPT);
	/* One header more than there are. */
	memcpy(b, blob, len);
	b[count_off] = 5;
	assert_int_equal(tjournal_record_decode(b, len, &r), TJOURNAL_CORRUPT);
	/* One header fewer: the rest does not parse as a value + end. */
	memcpy(b, blob, len);
	b[count_off] = 3;
	assert_int_equal(tjournal_record_decode(b, len, &r), TJOURNAL_CORRUPT);
	/* NUL in a header name. */
	memcpy(b, blob, len);
	b[count_off + 4 + 2 + 1] = 0;
	assert_int_equal(tjournal_record_decode(b, len, &r), TJOURNAL_CORRUPT);
	/* The unmodified copy still decodes. */
	memcpy(b, blob, len);
	assert_int_equal(tjournal_record_decode(b, len, &r), 0);
	free(r);
	assert_int_equal(tjournal_record_decode(NULL, 0, &r), TJOURNAL_CORRUPT);
	assert_int_equal(tjournal_record_decode(b, len, NULL), TJOURNAL_EINVAL);
	free(b);
	free(blob);
}

/* Random mutations never crash and anything accepted re-encodes to itself. */
static void test_decode_mutations(void **state)
{
	(void)state;
	size_t len;
	uint8_t *blob = encode(&sample, &len);
	uint8_t *b = malloc(len);
	srand(1234);
	int accepted = 0;
	for (int round = 0; round < 20000; round++) {
		memcpy(b, blob, len);
		int flips = 1 + rand() % 3;
		for (int k = 0; k < flips; k++)
			b[rand() % len] = (uint8_t)rand();
		size_t n = len - (size_t)(rand() % 4 == 0 ? rand() % 8 : 0);
		tjournal_record *r;
		if (tjournal_record_decode(b, n, &r) != 0)
			continue;
		accepted++;
		size_t n2 = tjournal_record_size(r);
		assert_int_equal(n2, n);
		uint8_t *re = malloc(n2);
		assert_int_equal(tjournal_record_encode(r, re, n2), n2);
		assert_memory_equal(re, b, n);
		free(re);
		free(r);
	}
	assert_true(accepted > 0);
	free(b);
	free(blob);
}

/* The copy-free view: the same fields as decode, pointing into the blob;
 * room for fewer headers than the record has gives the count to call
 * again with; every truncation is refused like decode's. */
static void test_view(void **state)
{
	(void)state;
	size_t len;
	uint8_t *blob = encode(&sample, &len);
	tjournal_record r;
	tjournal_header h[4];
	assert_int_equal(tjournal_record_view(blob, len, &r, h, 2), 4);
	assert_bytes(h[1].name, h[1].name_len, "ce_null", 7);
	assert_int_equal(tjournal_record_view(blob, len, &r, h, 4), 4);
	assert_true((const uint8_t *)r.topic > blob && (const uint8_t *)r.topic < blob + len);
	assert_bytes(r.topic, r.topic_len, "orders.v1", 9);
	assert_bytes(r.key, r.key_len, "customer-42", 11);
	assert_bytes(r.value, r.value_len, sample.value, sample.value_len);
	assert_int_equal(r.header_count, 4);
	for (size_t i = 0; i < 4; i++) {
		assert_bytes(h[i].name, h[i].name_len, sample_headers[i].name,
		             sample_headers[i].name_len);
		assert_int_equal(h[i].value == NULL, sample_headers[i].value == NULL);
		if (h[i].value)
			assert_bytes(h[i].value, h[i].value_len, sample_headers[i].value,
			             sample_headers[i].value_len);
	}
	for (size_t cut = 0; cut < len; cut++)
		assert_int_equal(tjournal_record_view(blob, cut, &r, h, 4), TJOURNAL_CORRUPT);
	free(blob);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_nulls_and_minimal),
	    cmocka_unit_test(test_encode_rejects),
	    cmocka_unit_test(test_decode_rejects_every_truncation),
	    cmocka_unit_test(test_decode_rejects_malformed),
	    cmocka_unit_test(test_decode_mutations),
	    cmocka_unit_test(test_view),
	};
	return cmocka_run_group_tests_name("journal_record", tests, NULL, NULL);
}
