/* Unit tests' helper: tb_avro_encode_value on jansson's JSON, the tests'
 * way of writing data (the broker encodes the document it parsed): its text
 * parsed again (reals written with all their digits, NULs in strings kept),
 * into a malloc'd *out of *outlen bytes. */
#ifndef TEST_AVRO_JSON_H
#define TEST_AVRO_JSON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tributary/avro.h"

static inline int tb_avro_encode_json(const tb_avro_schema *s, const json_t *data,
                                      unsigned char **out, size_t *outlen, char *err, size_t errlen)
{
	tb_avro_buf b = {0};
	tjs_doc *doc = NULL;
	char *text = json_dumps(data ? data : json_null(),
	                        JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(17));
	int rc = -1;
	*out = NULL;
	*outlen = 0;
	if (!text || !(doc = tjs_doc_parse(text, strlen(text), TJS_PARSE_ALLOW_NUL, NULL, 0)))
		snprintf(err, errlen, "out of memory");
	else
		rc = tb_avro_encode_value(s, tjs_doc_root(doc), &b, err, errlen);
	if (rc)
		tb_avro_buf_free(&b);
	*out = b.data;
	*outlen = b.len;
	free(text);
	tjs_doc_free(doc);
	return rc;
}

#endif
