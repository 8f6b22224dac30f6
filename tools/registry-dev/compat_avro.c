/*
 * The dev registry's Avro compatibility check (compat.h): libavro's schema
 * resolution, avro_resolved_writer_new(writer, reader), which fails when
 * data written with one schema cannot be read with the other. Two gaps of
 * libavro 1.11 are filled in first, on the schemas' JSON:
 *   - a field the reader added with a default is legal (the specification
 *     says the reader uses the default), but libavro refuses any reader
 *     field missing from the writer: such fields are dropped from the
 *     reader before resolving;
 *   - an enum symbol of the writer that the reader dropped (without an
 *     enum default) is legal to libavro (a runtime error), illegal to the
 *     specification and to Confluent: it is reported here.
 * Records and enums are matched by name (a named type's `name`, its
 * namespace aside).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <avro.h>

#include "compat.h"

static const char *short_name(json_t *named)
{
	const char *n = json_string_value(json_object_get(named, "name"));
	const char *dot = n ? strrchr(n, '.') : NULL;
	return dot ? dot + 1 : n;
}

static bool is_kind(json_t *s, const char *kind)
{
	const char *t = json_string_value(json_object_get(s, "type"));
	return t && !strcmp(t, kind);
}

/* Every record and enum defined in s, by name, into `named`. */
static void collect(json_t *s, json_t *named)
{
	size_t i;
	json_t *x;
	if (json_is_array(s)) {
		json_array_foreach(s, i, x) collect(x, named);
		return;
	}
	if (!json_is_object(s))
		return;
	if ((is_kind(s, "record") || is_kind(s, "error") || is_kind(s, "enum")) && short_name(s))
		json_object_set(named, short_name(s), s);
	json_array_foreach(json_object_get(s, "fields"), i, x)
	    collect(json_object_get(x, "type"), named);
	collect(json_object_get(s, "items"), named);
	collect(json_object_get(s, "values"), named);
	json_t *t = json_object_get(s, "type");
	if (json_is_object(t) || json_is_array(t))
		collect(t, named);
}

static bool has_field(json_t *record, const char *name)
{
	size_t i;
	json_t *f;
	json_array_foreach(json_object_get(record, "fields"), i, f)
	{
		const char *n = json_string_value(json_object_get(f, "name"));
		if (n && !strcmp(n, name))
			return true;
	}
	return false;
}

static bool has_symbol(json_t *en, const char *sym)
{
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(en, "symbols"), i,
	                   s) if (!strcmp(json_string_value(s), sym)) return true;
	return false;
}

/* Walks the reader (a copy, changed in place) against the writer's named
 * types; false when an enum lost a symbol. */
static bool adjust(json_t *r, json_t *wnamed, const char *where, json_t *messages)
{
	size_t i;
	json_t *x;
	bool ok = true;
	if (json_is_array(r)) {
		json_array_foreach(r, i, x) ok &= adjust(x, wnamed, where, messages);
		return ok;
	}
	if (!json_is_object(r))
		return true;
	json_t *w = short_name(r) ? json_object_get(wnamed, short_name(r)) : NULL;
	if (w && is_kind(r, "enum") && is_kind(w, "enum") && !json_object_get(r, "default")) {
		json_array_foreach(json_object_get(w, "symbols"), i, x)
		{
			if (has_symbol(r, json_string_value(x)))
				continue;
			char m[512];
			snprintf(m, sizeof m,
			         "%s: enum %s: the reader lacks the writer's symbol %s", where,
			         short_name(r), json_string_value(x));
			json_array_append_new(messages, json_string(m));
			ok = false;
		}
	}
	json_t *fields = json_object_get(r, "fields");
	for (i = 0;
	     w && (is_kind(r, "record") || is_kind(r, "error")) && i < json_array_size(fields);) {
		json_t *f = json_array_get(fields, i);
		const char *n = json_string_value(json_object_get(f, "name"));
		if (n && json_object_get(f, "default") && !has_field(w, n))
			json_array_remove(fields, i);
		else
			i++;
	}
	json_array_foreach(fields, i, x) ok &=
	    adjust(json_object_get(x, "type"), wnamed, where, messages);
	ok &= adjust(json_object_get(r, "items"), wnamed, where, messages);
	ok &= adjust(json_object_get(r, "values"), wnamed, where, messages);
	json_t *t = json_object_get(r, "type");
	if (json_is_object(t) || json_is_array(t))
		ok &= adjust(t, wnamed, where, messages);
	return ok;
}

bool compat_avro_backward(const char *writer, const char *reader, const char *where,
                          json_t *messages)
{
	json_t *w = json_loads(writer, JSON_DECODE_ANY, NULL);
	json_t *r = json_loads(reader, JSON_DECODE_ANY, NULL);
	json_t *wnamed = json_object();
	collect(w, wnamed);
	bool ok = adjust(r, wnamed, where, messages);
	char *rtext = json_dumps(r, JSON_COMPACT | JSON_ENCODE_ANY);
	avro_schema_t ws = NULL, rs = NULL;
	char m[512];
	if (!rtext || avro_schema_from_json_length(writer, strlen(writer), &ws) ||
	    avro_schema_from_json_length(rtext, strlen(rtext), &rs)) {
		snprintf(m, sizeof m, "%s: not an Avro schema: %s", where, avro_strerror());
		json_array_append_new(messages, json_string(m));
		ok = false;
	} else {
		avro_value_iface_t *res = avro_resolved_writer_new(ws, rs);
		if (!res) {
			snprintf(m, sizeof m, "%s: %s", where, avro_strerror());
			json_array_append_new(messages, json_string(m));
			ok = false;
		} else {
			avro_value_iface_decref(res);
		}
	}
	if (ws)
		avro_schema_decref(ws);
	if (rs)
		avro_schema_decref(rs);
	free(rtext);
	json_decref(wnamed);
	json_decref(w);
	json_decref(r);
	return ok;
}
