/* Schema catalog: event type -> compiled JSON Schema. */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tributary/catalog.h"

struct tb_catalog_entry {
	char *type;
	tjs_schema *schema;
};

struct tb_catalog {
	tjs_registry *registry;
	struct tb_catalog_entry *entries; /* sorted by type */
	size_t count;
};

static int catalog__cmp(const void *a, const void *b)
{
	return strcmp(((const struct tb_catalog_entry *)a)->type,
	              ((const struct tb_catalog_entry *)b)->type);
}

void tb_catalog_free(tb_catalog *cat)
{
	if (!cat)
		return;
	for (size_t i = 0; i < cat->count; i++) {
		free(cat->entries[i].type);
		tjs_schema_free(cat->entries[i].schema);
	}
	free(cat->entries);
	if (cat->registry)
		tjs_registry_free(cat->registry);
	free(cat);
}

/* Reads `rel` (relative to the catalog's folder) and registers it. */
static json_t *catalog__read(tb_catalog *cat, const char *dir, const char *rel, char *uri,
                             size_t urilen, char *err, size_t errlen)
{
	char path[PATH_MAX], abspath[PATH_MAX];
	json_error_t jerr;
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		snprintf(err, errlen, "schema %s: %s (line %d)", path, jerr.text, jerr.line);
		return NULL;
	}
	if (!realpath(path, abspath))
		snprintf(abspath, sizeof(abspath), "%s", path);
	snprintf(uri, urilen, "file://%s", abspath);
	char rerr[512];
	if (tjs_registry_add(cat->registry, uri, doc, rerr, sizeof(rerr))) {
		snprintf(err, errlen, "schema %s: %s", path, rerr);
		json_decref(doc);
		return NULL;
	}
	return doc;
}

static tjs_draft catalog__draft(const char *s)
{
	if (!s)
		return TJS_DRAFT_DEFAULT;
	if (!strcmp(s, "4") || !strcmp(s, "draft-04"))
		return TJS_DRAFT_4;
	if (!strcmp(s, "6") || !strcmp(s, "draft-06"))
		return TJS_DRAFT_6;
	if (!strcmp(s, "7") || !strcmp(s, "draft-07"))
		return TJS_DRAFT_7;
	if (!strcmp(s, "2019-09"))
		return TJS_DRAFT_2019_09;
	if (!strcmp(s, "2020-12"))
		return TJS_DRAFT_2020_12;
	return (tjs_draft)-1;
}

tb_catalog *tb_catalog_load(const char *path, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root = NULL, *docs = NULL;
	tb_catalog *cat = calloc(1, sizeof(*cat));
	char dirbuf[PATH_MAX];
	if (!cat) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	snprintf(dirbuf, sizeof(dirbuf), "%s", path);
	const char *dir = dirname(dirbuf);

	root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!root || !json_is_object(root)) {
		snprintf(err, errlen, "catalog %s: %s", path,
		         root ? "must be a JSON object" : jerr.text);
		goto error;
	}
	json_t *types = json_object_get(root, "types");
	json_t *resources = json_object_get(root, "resources");
	json_t *fa = json_object_get(root, "format_assert");
	json_t *dd = json_object_get(root, "default_draft");
	if (!json_is_object(types)) {
		snprintf(err, errlen, "catalog %s: \"types\" must be an object of type -> file",
		         path);
		goto error;
	}
	if ((resources && !json_is_array(resources)) || (fa && !json_is_boolean(fa)) ||
	    (dd && !json_is_string(dd))) {
		snprintf(err, errlen,
		         "catalog %s: \"resources\" must be an array of files, \"format_assert\" "
		         "a boolean, \"default_draft\" a string",
		         path);
		goto error;
	}
	tjs_options opts = {.default_draft = catalog__draft(json_string_value(dd)),
	                    .format_assert = fa ? json_is_true(fa) : true};
	if ((int)opts.default_draft < 0) {
		snprintf(err, errlen, "catalog %s: unknown default_draft \"%s\"", path,
		         json_string_value(dd));
		goto error;
	}

	cat->registry = tjs_registry_new();
	docs = json_object();
	if (!cat->registry || !docs) {
		snprintf(err, errlen, "out of memory");
		goto error;
	}
	/* Register everything first, so references between files resolve. */
	size_t i;
	json_t *v;
	json_array_foreach(resources, i, v)
	{
		char uri[PATH_MAX + 8];
		if (!json_is_string(v)) {
			snprintf(err, errlen, "catalog %s: resources[%zu] must be a file name",
			         path, i);
			goto error;
		}
		json_t *doc =
		    catalog__read(cat, dir, json_string_value(v), uri, sizeof(uri), err, errlen);
		if (!doc)
			goto error;
		json_decref(doc);
	}
	const char *type;
	json_object_foreach(types, type, v)
	{
		char uri[PATH_MAX + 8];
		if (!json_is_string(v)) {
			snprintf(err, errlen, "catalog %s: types[\"%s\"] must be a file name", path,
			         type);
			goto error;
		}
		json_t *doc =
		    catalog__read(cat, dir, json_string_value(v), uri, sizeof(uri), err, errlen);
		if (!doc)
			goto error;
		json_object_set_new(docs, type, json_pack("{s:o,s:s}", "doc", doc, "uri", uri));
	}

	cat->entries = calloc(json_object_size(docs) + 1, sizeof(*cat->entries));
	if (!cat->entries) {
		snprintf(err, errlen, "out of memory");
		goto error;
	}
	json_object_foreach(docs, type, v)
	{
		char cerr[1024];
		const char *uri = json_string_value(json_object_get(v, "uri"));
		tjs_schema *schema = tjs_compile(cat->registry, json_object_get(v, "doc"), uri,
		                                 &opts, cerr, sizeof(cerr));
		if (!schema) {
			snprintf(err, errlen, "schema for %s (%s): %s", type, uri, cerr);
			goto error;
		}
		cat->entries[cat->count].type = strdup(type);
		cat->entries[cat->count].schema = schema;
		cat->count++;
		if (!cat->entries[cat->count - 1].type) {
			snprintf(err, errlen, "out of memory");
			goto error;
		}
	}
	qsort(cat->entries, cat->count, sizeof(*cat->entries), catalog__cmp);
	json_decref(docs);
	json_decref(root);
	return cat;
error:
	json_decref(docs);
	json_decref(root);
	tb_catalog_free(cat);
	return NULL;
}

const tjs_schema *tb_catalog_find(const tb_catalog *cat, const char *type)
{
	struct tb_catalog_entry key = {.type = (char *)type};
	struct tb_catalog_entry *e =
	    bsearch(&key, cat->entries, cat->count, sizeof(*cat->entries), catalog__cmp);
	return e ? e->schema : NULL;
}

size_t tb_catalog_count(const tb_catalog *cat)
{
	return cat->count;
}
