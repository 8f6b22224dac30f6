/*
 * The registry: documents by absolute URI, starting with the shipped
 * meta-schemas so that $schema and $ref to them work offline, plus the
 * compiled meta-schema validators used to check schemas at compile time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tributary/embedded.h"
#include "internal.h"

struct tjs_regdoc {
	struct tjs_regdoc *next;
	json_t *doc;
	char *uri;
};

static const struct {
	tjs_draft draft;
	const char *uri;
	const char *name;
} drafts[] = {
    {TJS_DRAFT_4, "http://json-schema.org/draft-04/schema", "draft-04"},
    {TJS_DRAFT_6, "http://json-schema.org/draft-06/schema", "draft-06"},
    {TJS_DRAFT_7, "http://json-schema.org/draft-07/schema", "draft-07"},
    {TJS_DRAFT_2019_09, "https://json-schema.org/draft/2019-09/schema", "2019-09"},
    {TJS_DRAFT_2020_12, "https://json-schema.org/draft/2020-12/schema", "2020-12"},
};

int tjs_draft_index(tjs_draft d)
{
	for (int i = 0; i < 5; i++)
		if (drafts[i].draft == d)
			return i;
	return -1;
}

tjs_draft tjs_draft_of_metaschema(const char *uri)
{
	size_t n = strlen(uri);
	if (n && uri[n - 1] == '#')
		n--;
	for (int i = 0; i < 5; i++)
		if (strlen(drafts[i].uri) == n && memcmp(drafts[i].uri, uri, n) == 0)
			return drafts[i].draft;
	return TJS_DRAFT_DEFAULT;
}

const char *tjs_draft_metaschema_uri(tjs_draft d)
{
	int i = tjs_draft_index(d);
	return i < 0 ? NULL : drafts[i].uri;
}

const char *tjs_draft_name(tjs_draft d)
{
	int i = tjs_draft_index(d);
	return i < 0 ? "unknown draft" : drafts[i].name;
}

/* Normalised key: resolved against nothing (lower-case scheme, no dot
 * segments), without the fragment. */
static char *uri_key(const char *uri)
{
	char *r = tjs_uri_resolve(NULL, uri);
	if (!r)
		return NULL;
	char *k = tjs_uri_strip_fragment(r);
	free(r);
	return k;
}

static int map_uri(tjs_registry *reg, const char *uri, struct tjs_regdoc *d)
{
	char *k = uri_key(uri);
	if (!k)
		return -1;
	int rc = tjs_map_put(&reg->uris, k, d);
	free(k);
	return rc;
}

/* Embedded resources ($id below the root) are reachable by their own URI. */
static int map_embedded(tjs_registry *reg, const json_t *j, const char *base, struct tjs_regdoc *d,
                        unsigned depth)
{
	if (depth > TJS_MAX_SCHEMA_NESTING)
		return 0;
	char *own = NULL;
	if (json_is_object(j)) {
		const json_t *id = json_object_get(j, "$id");
		if (!json_is_string(id))
			id = json_object_get(j, "id");
		if (json_is_string(id) && json_string_value(id)[0] != '#') {
			own = tjs_uri_resolve(base, json_string_value(id));
			if (!own || map_uri(reg, own, d) < 0) {
				free(own);
				return -1;
			}
			base = own;
		}
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)j, k, v)
		{
			/* values of enum/const/examples are data, not schemas */
			if (!strcmp(k, "enum") || !strcmp(k, "const") || !strcmp(k, "examples") ||
			    !strcmp(k, "default"))
				continue;
			if (map_embedded(reg, v, base, d, depth + 1) < 0) {
				free(own);
				return -1;
			}
		}
	} else if (json_is_array(j)) {
		size_t i;
		json_t *v;
		json_array_foreach(j, i, v) if (map_embedded(reg, v, base, d, depth + 1) < 0)
		{
			free(own);
			return -1;
		}
	}
	free(own);
	return 0;
}

TJS_API int tjs_registry_add(tjs_registry *reg, const char *uri, json_t *doc, char *err,
                             size_t errlen)
{
	if (!reg || !doc) {
		snprintf(err, errlen, "no registry or document");
		return -1;
	}
	const json_t *id = json_is_object(doc) ? json_object_get(doc, "$id") : NULL;
	if (!json_is_string(id) && json_is_object(doc))
		id = json_object_get(doc, "id");
	char *key = NULL;
	if (uri)
		key = uri_key(uri);
	else if (json_is_string(id))
		key = uri_key(json_string_value(id));
	else {
		snprintf(err, errlen, "document has no URI and no $id");
		return -1;
	}
	if (!key || !tjs_uri_is_absolute(key)) {
		snprintf(err, errlen, "document URI %s is not absolute",
		         key ? key : "(out of memory)");
		free(key);
		return -1;
	}
	struct tjs_regdoc *d = calloc(1, sizeof(*d));
	if (!d) {
		free(key);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	d->uri = key;
	d->doc = json_incref(doc);
	d->next = reg->docs;
	reg->docs = d;
	if (map_embedded(reg, doc, key, d, 0) < 0 || tjs_map_put(&reg->uris, key, d) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

json_t *tjs_registry_lookup(const tjs_registry *reg, const char *uri, const char **root_uri)
{
	struct tjs_regdoc *d = tjs_map_get(&reg->uris, uri);
	if (!d)
		return NULL;
	if (root_uri)
		*root_uri = d->uri;
	return d->doc;
}

TJS_API tjs_registry *tjs_registry_new(void)
{
	tjs_registry *reg = calloc(1, sizeof(*reg));
	if (!reg)
		return NULL;
	reg->refcount = 1;
	if (pthread_mutex_init(&reg->lock, NULL) != 0) {
		free(reg);
		return NULL;
	}
	for (const struct tjs_embedded *e = tjs_embedded_metaschemas; e->path; e++) {
		json_error_t jerr;
		json_t *doc = json_loadb(e->text, e->len, JSON_REJECT_DUPLICATES, &jerr);
		char err[256];
		if (!doc || tjs_registry_add(reg, NULL, doc, err, sizeof(err)) < 0) {
			json_decref(doc);
			tjs_registry_free(reg);
			return NULL;
		}
		json_decref(doc);
	}
	return reg;
}

tjs_registry *tjs_registry_ref(tjs_registry *reg)
{
	__atomic_add_fetch(&reg->refcount, 1, __ATOMIC_RELAXED);
	return reg;
}

TJS_API void tjs_registry_free(tjs_registry *reg)
{
	if (!reg || __atomic_sub_fetch(&reg->refcount, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	for (int i = 0; i < 5; i++)
		tjs_schema_free(reg->meta[i]);
	struct tjs_regdoc *d = reg->docs;
	while (d) {
		struct tjs_regdoc *next = d->next;
		json_decref(d->doc);
		free(d->uri);
		free(d);
		d = next;
	}
	tjs_map_free(&reg->uris, NULL);
	pthread_mutex_destroy(&reg->lock);
	free(reg);
}

const tjs_schema *tjs_registry_metaschema(tjs_registry *reg, tjs_draft d, char *err, size_t errlen)
{
	int i = tjs_draft_index(d);
	if (i < 0) {
		snprintf(err, errlen, "unknown draft");
		return NULL;
	}
	pthread_mutex_lock(&reg->lock);
	if (!reg->meta[i]) {
		json_t *doc = tjs_registry_lookup(reg, drafts[i].uri, NULL);
		if (doc) {
			tjs_options o = {.default_draft = d};
			/* the meta-schema's own validator does not hold the registry:
			 * the registry holds it */
			reg->meta[i] = tjs_compile_internal(reg, doc, drafts[i].uri, &o, false,
			                                    false, err, errlen);
		} else {
			snprintf(err, errlen, "meta-schema %s is not registered", drafts[i].uri);
		}
	}
	const tjs_schema *s = reg->meta[i];
	pthread_mutex_unlock(&reg->lock);
	return s;
}
