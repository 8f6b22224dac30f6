/*
 * libFuzzer target: a schema and an instance, separated by the first NUL
 * byte. Compiling must refuse or accept without crashing, leaking or
 * hanging; validation (with and without error collection) must agree.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tributary/jsonschema.h"

static tjs_registry *reg;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!reg && !(reg = tjs_registry_new()))
		abort();
	const uint8_t *nul = memchr(data, 0, size);
	if (!nul)
		return 0;
	size_t slen = (size_t)(nul - data);
	json_t *schema = json_loadb((const char *)data, slen, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
	json_t *inst = json_loadb((const char *)nul + 1, size - slen - 1, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
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
	json_decref(schema);
	json_decref(inst);
	return 0;
}
