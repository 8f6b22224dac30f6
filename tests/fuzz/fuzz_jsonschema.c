/*
 * libFuzzer target: a schema and an instance, separated by the first NUL
 * byte. Compiling must refuse or accept without crashing, leaking or
 * hanging; validation (with and without error collection) must agree.
 * The instance bytes also go through tjs_doc_parse, which must accept
 * exactly what jansson accepts (same document, same compact text), and
 * the bytes path must give the jansson path's verdict and errors; but for
 * documents with numbers it keeps as their literal (which jansson refuses
 * or rounds), where the bytes path must only agree with itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tributary/json_encode.h"
#include "tributary/jsonschema.h"

static tjs_registry *reg;

/* Depth is bounded by the parser. */
static bool has_literal(const tjs_value *v)
{
	if (tjs_value_number_text(v, NULL))
		return true;
	for (size_t i = 0; i < tjs_value_size(v); i++)
		if (has_literal(tjs_value_type(v) == JSON_ARRAY
		                    ? tjs_value_at(v, i)
		                    : tjs_value_member(v, i, NULL, NULL)))
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!reg && !(reg = tjs_registry_new()))
		abort();
	const uint8_t *nul = memchr(data, 0, size);
	if (!nul)
		return 0;
	size_t slen = (size_t)(nul - data);
	json_t *schema =
	    json_loadb((const char *)data, slen, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	json_t *inst = json_loadb((const char *)nul + 1, size - slen - 1,
	                          JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	if (schema && inst) {
		/* the schema's length picks the options, so both modes get inputs */
		tjs_options o = {.format_assert = slen & 1, .max_depth = (slen & 2) ? 20 : 0};
		char err[256];
		tjs_schema *s = tjs_compile(reg, schema, NULL, &o, err, sizeof(err));
		if (s) {
			tjs_result r = {0};
			bool with = tjs_validate(s, inst, &r, 0);
			bool without = tjs_validate(s, inst, NULL, 0);
			if (with != without || (with && r.count) || (!with && !r.count))
				abort();
			tjs_result_clear(&r);
			tjs_schema_free(s);
		}
	}
	/* duplicates refused on both sides: jansson would keep only the last */
	const char *ibytes = (const char *)nul + 1;
	size_t ilen = size - slen - 1;
	json_t *strict = json_loadb(
	    ibytes, ilen, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, NULL);
	tjs_doc *doc = tjs_doc_parse(ibytes, ilen, TJS_PARSE_ALLOW_NUL, NULL, 0);
	if (doc && has_literal(tjs_doc_root(doc))) {
		if (schema) {
			tjs_options o = {.format_assert = slen & 1};
			tjs_schema *s = tjs_compile(reg, schema, NULL, &o, NULL, 0);
			tjs_result r = {0};
			bool with = s && tjs_validate_value(s, tjs_doc_root(doc), &r, 0);
			if (s && (with != tjs_validate_value(s, tjs_doc_root(doc), NULL, 0) ||
			          with != !r.count))
				abort();
			tjs_result_clear(&r);
			tjs_schema_free(s);
		}
		free(tjs_value_dump(tjs_doc_root(doc), NULL));
		tjs_doc_free(doc);
		doc = NULL;
		json_decref(strict);
		strict = NULL;
	}
	/* a raw NUL byte is never JSON, but jansson takes one right after a
	 * number or literal for the end of input ("1\0"): not copied */
	else if (!strict != !doc && !(strict && memchr(ibytes, 0, ilen)))
		abort();
	if (!doc) {
		json_decref(strict);
		strict = NULL;
	}
	if (doc) {
		json_t *copy = tjs_value_to_json(tjs_doc_root(doc));
		size_t n1 = 0, n2 = 0;
		char *a = tb_json_encode(strict, &n1), *b = tjs_value_dump(tjs_doc_root(doc), &n2);
		if (!copy || !json_equal(copy, strict) || !a || !b || n1 != n2 || memcmp(a, b, n1))
			abort();
		free(a);
		free(b);
		json_decref(copy);
	}
	if (schema && doc) {
		tjs_options o = {.format_assert = slen & 1, .max_depth = (slen & 2) ? 20 : 0};
		tjs_schema *s = tjs_compile(reg, schema, NULL, &o, NULL, 0);
		if (s) {
			tjs_result r1 = {0}, r2 = {0};
			bool v1 = tjs_validate(s, strict, &r1, 0);
			bool v2 = tjs_validate_value(s, tjs_doc_root(doc), &r2, 0);
			if (v1 != v2 || v2 != tjs_validate_value(s, tjs_doc_root(doc), NULL, 0) ||
			    r1.count != r2.count)
				abort();
			for (size_t i = 0; i < r1.count; i++)
				if (strcmp(r1.errors[i].instance_location,
				           r2.errors[i].instance_location) ||
				    strcmp(r1.errors[i].keyword_location,
				           r2.errors[i].keyword_location) ||
				    strcmp(r1.errors[i].message, r2.errors[i].message))
					abort();
			tjs_result_clear(&r1);
			tjs_result_clear(&r2);
			tjs_schema_free(s);
		}
	}
	tjs_doc_free(doc);
	json_decref(strict);
	json_decref(schema);
	json_decref(inst);
	return 0;
}
