/*
 * Avro schemas parsed with libavro, with the generic value class that
 * encoding and decoding both need made once per schema.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>

#include "avro_int.h"

tb_avro_schema *tb_avro_schema_parse(const char *text, size_t len, char *err, size_t errlen)
{
	tb_avro_schema *s = calloc(1, sizeof *s);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (avro_schema_from_json_length(text, len, &s->schema)) {
		snprintf(err, errlen, "not an Avro schema: %s", avro_strerror());
		goto fail;
	}
	s->iface = avro_generic_class_from_schema(s->schema);
	if (!s->iface) {
		snprintf(err, errlen, "Avro schema not usable: %s", avro_strerror());
		goto fail;
	}
	char *dtext = NULL;
	if (!(s->defaults = tb_avro__defaults(text, len)) ||
	    !(dtext = json_dumps(s->defaults, JSON_COMPACT | JSON_REAL_PRECISION(17))) ||
	    !(s->defaults_doc =
	          tjs_doc_parse(dtext, strlen(dtext), TJS_PARSE_ALLOW_NUL, NULL, 0))) {
		free(dtext);
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	free(dtext);
	return s;
fail:
	tb_avro_schema_free(s);
	return NULL;
}

void tb_avro_schema_free(tb_avro_schema *s)
{
	if (!s)
		return;
	if (s->iface)
		avro_value_iface_decref(s->iface);
	if (s->schema)
		avro_schema_decref(s->schema);
	json_decref(s->defaults);
	tjs_doc_free(s->defaults_doc);
	free(s);
}

const char *tb_avro_schema_name(const tb_avro_schema *s)
{
	return avro_schema_type_name(s->schema);
}
