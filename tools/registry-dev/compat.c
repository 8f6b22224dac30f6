/* JSON Schema backward compatibility, simplified (compat.h). */
#include <stdio.h>
#include <string.h>

#include "compat.h"

static void note(json_t *messages, const char *where, const char *path, const char *what,
                 const char *name)
{
	char m[512];
	snprintf(m, sizeof m, "%s, %s: %s%s%s", where, *path ? path : "/", what, name ? " " : "",
	         name ? name : "");
	json_array_append_new(messages, json_string(m));
}

/* Whether a type of the writer is allowed by the reader's `type`. */
static bool type_allows(json_t *rtype, const char *t)
{
	if (!rtype)
		return true;
	if (json_is_string(rtype)) {
		const char *r = json_string_value(rtype);
		return !strcmp(r, t) || (!strcmp(r, "number") && !strcmp(t, "integer"));
	}
	size_t i;
	json_t *x;
	json_array_foreach(rtype, i, x) if (type_allows(x, t)) return true;
	return false;
}

static bool types_ok(json_t *w, json_t *r)
{
	json_t *wt = json_object_get(w, "type"), *rt = json_object_get(r, "type");
	if (!rt)
		return true;
	if (!wt) /* the writer allowed any type */
		return false;
	if (json_is_string(wt))
		return type_allows(rt, json_string_value(wt));
	size_t i;
	json_t *x;
	json_array_foreach(wt, i, x) if (!json_is_string(x) ||
	                                 !type_allows(rt, json_string_value(x))) return false;
	return true;
}

static bool in_array(json_t *a, const char *s)
{
	size_t i;
	json_t *x;
	json_array_foreach(a, i, x) if (json_is_string(x) &&
	                                !strcmp(json_string_value(x), s)) return true;
	return false;
}

static bool check(json_t *w, json_t *r, const char *where, const char *path, json_t *messages)
{
	bool ok = true;
	char sub[1024];

	if (!json_is_object(w) || !json_is_object(r))
		return true; /* booleans and $ref-only subschemas are not compared */
	if (!types_ok(w, r)) {
		note(messages, where, path, "type narrowed", NULL);
		ok = false;
	}
	json_t *renum = json_object_get(r, "enum"), *wenum = json_object_get(w, "enum");
	if (json_is_array(renum)) {
		size_t i;
		json_t *x;
		if (!json_is_array(wenum)) {
			note(messages, where, path, "enum added", NULL);
			ok = false;
		} else {
			json_array_foreach(wenum, i, x)
			{
				bool found = false;
				size_t j;
				json_t *y;
				json_array_foreach(renum, j, y) found |= json_equal(x, y);
				if (!found) {
					note(messages, where, path, "enum value removed", NULL);
					ok = false;
					break;
				}
			}
		}
	}
	json_t *rreq = json_object_get(r, "required"), *wreq = json_object_get(w, "required");
	size_t i;
	json_t *x;
	json_array_foreach(rreq, i, x)
	{
		if (json_is_string(x) && !in_array(wreq, json_string_value(x))) {
			note(messages, where, path, "new required property", json_string_value(x));
			ok = false;
		}
	}
	json_t *rprops = json_object_get(r, "properties"),
	       *wprops = json_object_get(w, "properties");
	json_t *radd = json_object_get(r, "additionalProperties");
	json_t *wadd = json_object_get(w, "additionalProperties");
	if (json_is_false(radd) && !json_is_false(wadd)) {
		note(messages, where, path, "additionalProperties turned false", NULL);
		ok = false;
	}
	const char *name;
	json_t *wp;
	json_object_foreach(wprops, name, wp)
	{
		json_t *rp = json_object_get(rprops, name);
		if (!rp) {
			if (json_is_false(radd)) {
				note(messages, where, path,
				     "property removed under additionalProperties: false", name);
				ok = false;
			}
			continue;
		}
		snprintf(sub, sizeof sub, "%s/properties/%s", path, name);
		ok &= check(wp, rp, where, sub, messages);
	}
	json_t *ritems = json_object_get(r, "items"), *witems = json_object_get(w, "items");
	if (ritems && witems) {
		snprintf(sub, sizeof sub, "%s/items", path);
		ok &= check(witems, ritems, where, sub, messages);
	}
	return ok;
}

bool compat_json_backward(json_t *writer, json_t *reader, const char *where, json_t *messages)
{
	return check(writer, reader, where, "", messages);
}
