/*
 * Schema resources and references: which dialect a document speaks, where
 * its resources ($id), anchors and subschemas are, and what a $ref points to.
 * Only documents in the registry or the schema being compiled are reachable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void tjs_cfail(tjs_cctx *cc, const char *fmt, ...)
{
	if (cc->failed)
		return;
	cc->failed = true;
	if (cc->err && cc->errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(cc->err, cc->errlen, fmt, ap);
		va_end(ap);
	}
}

tjs_sinfo *tjs_info(tjs_cctx *cc, const json_t *j)
{
	return tjs_pmap_get(&cc->info, j);
}

static const struct {
	const char *uri;
	unsigned bits;
} vocab_uris[] = {
    {"https://json-schema.org/draft/2020-12/vocab/core", TJS_VOC_CORE},
    {"https://json-schema.org/draft/2020-12/vocab/applicator", TJS_VOC_APPLICATOR},
    {"https://json-schema.org/draft/2020-12/vocab/unevaluated", TJS_VOC_UNEVALUATED},
    {"https://json-schema.org/draft/2020-12/vocab/validation", TJS_VOC_VALIDATION},
    {"https://json-schema.org/draft/2020-12/vocab/meta-data", TJS_VOC_META},
    {"https://json-schema.org/draft/2020-12/vocab/format-annotation", TJS_VOC_FORMAT_ANNOTATION},
    {"https://json-schema.org/draft/2020-12/vocab/format-assertion", TJS_VOC_FORMAT_ASSERTION},
    {"https://json-schema.org/draft/2020-12/vocab/content", TJS_VOC_CONTENT},
    {"https://json-schema.org/draft/2019-09/vocab/core", TJS_VOC_CORE},
    /* 2019-09 had the unevaluated keywords in the applicator vocabulary */
    {"https://json-schema.org/draft/2019-09/vocab/applicator",
     TJS_VOC_APPLICATOR | TJS_VOC_UNEVALUATED},
    {"https://json-schema.org/draft/2019-09/vocab/validation", TJS_VOC_VALIDATION},
    {"https://json-schema.org/draft/2019-09/vocab/meta-data", TJS_VOC_META},
    {"https://json-schema.org/draft/2019-09/vocab/format", TJS_VOC_FORMAT_ANNOTATION},
    {"https://json-schema.org/draft/2019-09/vocab/content", TJS_VOC_CONTENT},
};

static const json_t *lookup_document(tjs_cctx *cc, const char *uri, const char **root_uri)
{
	tjs_resource *r = tjs_map_get(&cc->resources, uri);
	if (r) {
		*root_uri = r->uri;
		return r->json;
	}
	return tjs_registry_lookup(cc->reg, uri, root_uri);
}

int tjs_doc_dialect(tjs_cctx *cc, const json_t *doc, tjs_draft fallback, tjs_draft *draft,
                    unsigned *vocab, unsigned depth)
{
	*draft = fallback;
	*vocab = TJS_VOC_ALL_STANDARD;
	const json_t *sch = json_is_object(doc) ? json_object_get(doc, "$schema") : NULL;
	if (!json_is_string(sch))
		return 0;
	const char *s = json_string_value(sch);
	tjs_draft d = tjs_draft_of_metaschema(s);
	if (d) {
		*draft = d;
		return 0;
	}
	if (depth > 8) {
		tjs_cfail(cc, "meta-schema chain too long at %s", s);
		return -1;
	}
	char *uri = tjs_uri_strip_fragment(s);
	if (!uri) {
		tjs_cfail(cc, "out of memory");
		return -1;
	}
	const char *root;
	const json_t *meta = lookup_document(cc, uri, &root);
	if (!meta || meta == doc) {
		tjs_cfail(cc, "unknown meta-schema %s", s);
		free(uri);
		return -1;
	}
	free(uri);
	tjs_draft md;
	unsigned mv;
	if (tjs_doc_dialect(cc, meta, fallback, &md, &mv, depth + 1) < 0)
		return -1;
	*draft = md;
	*vocab = mv;
	const json_t *voc = json_object_get(meta, "$vocabulary");
	if (json_is_object(voc) && md >= TJS_DRAFT_2019_09) {
		unsigned bits = TJS_VOC_CORE;
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)voc, k, v)
		{
			bool known = false;
			for (size_t i = 0; i < sizeof(vocab_uris) / sizeof(vocab_uris[0]); i++) {
				if (strcmp(vocab_uris[i].uri, k) == 0) {
					bits |= vocab_uris[i].bits;
					known = true;
				}
			}
			if (!known && json_is_true(v)) {
				tjs_cfail(cc, "meta-schema %s requires unsupported vocabulary %s",
				          s, k);
				return -1;
			}
		}
		*vocab = bits;
	}
	return 0;
}

static tjs_resource *resource_new(tjs_cctx *cc, const char *uri, const json_t *json,
                                  tjs_draft draft, unsigned vocab)
{
	tjs_resource *r = tjs_map_get(&cc->resources, uri);
	if (r && r->json == json)
		return r;
	r = tjs_arena_alloc(&cc->s->arena, sizeof(*r));
	if (!r || !(r->uri = tjs_arena_strdup(&cc->s->arena, uri))) {
		tjs_cfail(cc, "out of memory");
		return NULL;
	}
	r->json = json;
	r->draft = draft;
	r->vocab = vocab;
	r->next_all = cc->s->resources;
	cc->s->resources = r;
	if (!tjs_map_get(&cc->resources, uri) && tjs_map_put(&cc->resources, uri, r) < 0) {
		tjs_cfail(cc, "out of memory");
		return NULL;
	}
	return r;
}

static void add_anchor(tjs_cctx *cc, const char *uri, const char *name, const json_t *j)
{
	tjs_buf b = {0};
	tjs_buf_puts(&b, uri);
	tjs_buf_putc(&b, '#');
	tjs_buf_puts(&b, name);
	char *key = tjs_buf_take(&b);
	if (!key ||
	    (!tjs_map_get(&cc->anchors, key) && tjs_map_put(&cc->anchors, key, (void *)j) < 0))
		tjs_cfail(cc, "out of memory");
	free(key);
}

static int add_dynamic_anchor(tjs_cctx *cc, tjs_resource *r, const char *name, const json_t *j)
{
	for (size_t i = 0; i < r->ndyn; i++)
		if (strcmp(r->dyn_names[i], name) == 0)
			return 0;
	/* arena arrays: grow by copying, the old ones stay until the schema is freed */
	size_t n = r->ndyn + 1;
	const char **names = tjs_arena_alloc(&cc->s->arena, n * sizeof(*names));
	const json_t **js = tjs_arena_alloc(&cc->s->arena, n * sizeof(*js));
	tjs_node **nodes = tjs_arena_alloc(&cc->s->arena, n * sizeof(*nodes));
	char *nm = tjs_arena_strdup(&cc->s->arena, name);
	if (!names || !js || !nodes || !nm) {
		tjs_cfail(cc, "out of memory");
		return -1;
	}
	if (r->ndyn) {
		memcpy(names, r->dyn_names, r->ndyn * sizeof(*names));
		memcpy(js, r->dyn_json, r->ndyn * sizeof(*js));
	}
	names[r->ndyn] = nm;
	js[r->ndyn] = j;
	r->dyn_names = names;
	r->dyn_json = js;
	r->dyn_nodes = nodes;
	r->ndyn = n;
	return 0;
}

enum { SUB_NONE, SUB_ONE, SUB_ARRAY, SUB_MAP, SUB_ONE_OR_ARRAY, SUB_DEPENDENCIES };

static int subschema_kind(const char *k, tjs_draft d)
{
	bool d6 = d >= TJS_DRAFT_6, d7 = d >= TJS_DRAFT_7, d19 = d >= TJS_DRAFT_2019_09,
	     d20 = d >= TJS_DRAFT_2020_12;
	switch (k[0]) {
	case 'a':
		if (!strcmp(k, "additionalProperties"))
			return SUB_ONE;
		if (!strcmp(k, "additionalItems"))
			return d20 ? SUB_NONE : SUB_ONE;
		if (!strcmp(k, "allOf") || !strcmp(k, "anyOf"))
			return SUB_ARRAY;
		break;
	case 'o':
		if (!strcmp(k, "oneOf"))
			return SUB_ARRAY;
		break;
	case 'n':
		if (!strcmp(k, "not"))
			return SUB_ONE;
		break;
	case 'c':
		if (d6 && !strcmp(k, "contains"))
			return SUB_ONE;
		if (d19 && !strcmp(k, "contentSchema"))
			return SUB_ONE;
		break;
	case 'p':
		if (!strcmp(k, "properties") || !strcmp(k, "patternProperties"))
			return SUB_MAP;
		if (d6 && !strcmp(k, "propertyNames"))
			return SUB_ONE;
		if (d20 && !strcmp(k, "prefixItems"))
			return SUB_ARRAY;
		break;
	case 'i':
		if (d7 && !strcmp(k, "if"))
			return SUB_ONE;
		if (!strcmp(k, "items"))
			return d20 ? SUB_ONE : SUB_ONE_OR_ARRAY;
		break;
	case 't':
		if (d7 && !strcmp(k, "then"))
			return SUB_ONE;
		break;
	case 'e':
		if (d7 && !strcmp(k, "else"))
			return SUB_ONE;
		break;
	case 'u':
		if (d19 && (!strcmp(k, "unevaluatedItems") || !strcmp(k, "unevaluatedProperties")))
			return SUB_ONE;
		break;
	case 'd':
		if (!strcmp(k, "definitions"))
			return SUB_MAP;
		if (d19 && !strcmp(k, "dependentSchemas"))
			return SUB_MAP;
		if (!strcmp(k, "dependencies"))
			return SUB_DEPENDENCIES;
		break;
	case '$':
		if (d19 && !strcmp(k, "$defs"))
			return SUB_MAP;
		break;
	default:
		break;
	}
	return SUB_NONE;
}

static void scan(tjs_cctx *cc, const json_t *j, tjs_resource *res, tjs_draft draft, unsigned vocab,
                 unsigned depth);

static void scan_sub(tjs_cctx *cc, const json_t *j, tjs_resource *res, tjs_draft draft,
                     unsigned vocab, unsigned depth)
{
	if (json_is_object(j) || json_is_boolean(j))
		scan(cc, j, res, draft, vocab, depth + 1);
}

static void scan(tjs_cctx *cc, const json_t *j, tjs_resource *res, tjs_draft draft, unsigned vocab,
                 unsigned depth)
{
	if (cc->failed || tjs_pmap_get(&cc->info, j))
		return;
	if (depth > TJS_MAX_SCHEMA_NESTING) {
		tjs_cfail(cc, "schema nested deeper than %u levels", TJS_MAX_SCHEMA_NESTING);
		return;
	}
	tjs_sinfo *info = tjs_arena_alloc(&cc->s->arena, sizeof(*info));
	if (!info) {
		tjs_cfail(cc, "out of memory");
		return;
	}
	if (json_is_object(j)) {
		const json_t *id = json_object_get(j, draft == TJS_DRAFT_4 ? "id" : "$id");
		/* before 2019-09 every sibling of $ref is ignored, $id included */
		bool ref_only = draft <= TJS_DRAFT_7 && json_object_get(j, "$ref");
		if (json_is_string(id) && !ref_only) {
			const char *ids = json_string_value(id);
			if (draft <= TJS_DRAFT_7 && ids[0] == '#') {
				add_anchor(cc, res->uri, ids + 1, j);
			} else {
				char *abs = tjs_uri_resolve(res->uri, ids);
				char *uri = abs ? tjs_uri_strip_fragment(abs) : NULL;
				if (!uri) {
					free(abs);
					tjs_cfail(cc, "out of memory");
					return;
				}
				/* an embedded resource may declare its own dialect */
				const json_t *sch = json_object_get(j, "$schema");
				if (json_is_string(sch) && depth > 0) {
					tjs_draft nd;
					unsigned nv;
					if (tjs_doc_dialect(cc, j, draft, &nd, &nv, 0) == 0) {
						draft = nd;
						vocab = nv;
					}
				}
				tjs_resource *nr = resource_new(cc, uri, j, draft, vocab);
				const char *frag = tjs_uri_fragment(abs);
				if (nr && frag && *frag && draft <= TJS_DRAFT_7)
					add_anchor(cc, nr->uri, frag, j);
				free(abs);
				free(uri);
				if (!nr)
					return;
				res = nr;
			}
		}
		if (draft >= TJS_DRAFT_2019_09) {
			const json_t *a = json_object_get(j, "$anchor");
			if (json_is_string(a))
				add_anchor(cc, res->uri, json_string_value(a), j);
		}
		if (draft >= TJS_DRAFT_2020_12) {
			const json_t *a = json_object_get(j, "$dynamicAnchor");
			if (json_is_string(a)) {
				add_anchor(cc, res->uri, json_string_value(a), j);
				add_dynamic_anchor(cc, res, json_string_value(a), j);
			}
		}
		if (draft == TJS_DRAFT_2019_09 && res->json == j &&
		    json_is_true(json_object_get(j, "$recursiveAnchor")))
			res->recursive_anchor = true;
	}
	info->res = res;
	info->draft = draft;
	info->vocab = vocab;
	if (tjs_pmap_put(&cc->info, j, info) < 0) {
		tjs_cfail(cc, "out of memory");
		return;
	}
	if (!json_is_object(j))
		return;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)j, k, v)
	{
		size_t i;
		json_t *e;
		const char *kk;
		switch (subschema_kind(k, draft)) {
		case SUB_ONE:
			scan_sub(cc, v, res, draft, vocab, depth);
			break;
		case SUB_ONE_OR_ARRAY:
			if (!json_is_array(v)) {
				scan_sub(cc, v, res, draft, vocab, depth);
				break;
			}
			/* fall through */
		case SUB_ARRAY:
			json_array_foreach(v, i, e) scan_sub(cc, e, res, draft, vocab, depth);
			break;
		case SUB_MAP:
		case SUB_DEPENDENCIES:
			if (json_is_object(v))
				json_object_foreach(v, kk, e)
				    scan_sub(cc, e, res, draft, vocab, depth);
			break;
		default:
			break;
		}
	}
}

tjs_resource *tjs_scan_document(tjs_cctx *cc, const json_t *doc, const char *uri, tjs_draft draft,
                                unsigned vocab)
{
	tjs_resource *r = tjs_map_get(&cc->resources, uri);
	if (tjs_pmap_get(&cc->docs_scanned, doc))
		return r;
	if (tjs_pmap_put(&cc->docs_scanned, doc, (void *)doc) < 0) {
		tjs_cfail(cc, "out of memory");
		return NULL;
	}
	if (!r || r->json != doc)
		r = resource_new(cc, uri, doc, draft, vocab);
	if (!r)
		return NULL;
	scan(cc, doc, r, draft, vocab, 0);
	return cc->failed ? NULL : r;
}

struct walk {
	tjs_cctx *cc;
	tjs_sinfo *last;
};

static void walk_visit(const json_t *v, void *arg)
{
	struct walk *w = arg;
	tjs_sinfo *i = tjs_pmap_get(&w->cc->info, v);
	if (i)
		w->last = i;
}

const json_t *tjs_resolve_ref(tjs_cctx *cc, const char *base, const char *ref, tjs_draft draft,
                              char **fragment_out)
{
	const json_t *target = NULL;
	char *abs = tjs_uri_resolve(base, ref);
	char *uri = abs ? tjs_uri_strip_fragment(abs) : NULL;
	char *frag = NULL;
	if (!uri) {
		tjs_cfail(cc, "out of memory");
		goto cleanup;
	}
	const char *f = tjs_uri_fragment(abs);
	if (f && *f && !(frag = tjs_percent_decode(f, strlen(f)))) {
		tjs_cfail(cc, "bad fragment in reference %s", abs);
		goto cleanup;
	}
	tjs_resource *res = tjs_map_get(&cc->resources, uri);
	if (!res) {
		const char *root = uri;
		const json_t *doc = lookup_document(cc, uri, &root);
		if (!doc) {
			tjs_cfail(cc, "cannot resolve reference %s (no such document registered)",
			          abs);
			goto cleanup;
		}
		tjs_draft d;
		unsigned voc;
		if (tjs_doc_dialect(cc, doc, draft, &d, &voc, 0) < 0)
			goto cleanup;
		char *rootcopy = strdup(root);
		if (!rootcopy) {
			tjs_cfail(cc, "out of memory");
			goto cleanup;
		}
		tjs_scan_document(cc, doc, rootcopy, d, voc);
		free(rootcopy);
		if (cc->failed)
			goto cleanup;
		res = tjs_map_get(&cc->resources, uri);
		if (!res) {
			tjs_cfail(cc, "cannot resolve reference %s", abs);
			goto cleanup;
		}
	}
	if (!frag) {
		target = res->json;
	} else if (frag[0] == '/') {
		struct walk w = {cc, NULL};
		target = tjs_pointer_get(res->json, frag, walk_visit, &w);
		if (!target) {
			tjs_cfail(cc, "cannot resolve reference %s (no such location)", abs);
			goto cleanup;
		}
		if (!tjs_pmap_get(&cc->info, target)) {
			/* a location no keyword declares as a schema (e.g. under an
			 * unknown keyword): it gets the base of its nearest schema */
			if (!w.last) {
				tjs_cfail(cc, "cannot resolve reference %s", abs);
				target = NULL;
				goto cleanup;
			}
			if (!json_is_object(target) && !json_is_boolean(target)) {
				tjs_cfail(cc, "reference %s does not point to a schema", abs);
				target = NULL;
				goto cleanup;
			}
			scan(cc, target, w.last->res, w.last->draft, w.last->vocab, 0);
		}
	} else {
		char *key = malloc(strlen(uri) + strlen(frag) + 2);
		if (!key) {
			tjs_cfail(cc, "out of memory");
			goto cleanup;
		}
		sprintf(key, "%s#%s", uri, frag);
		target = tjs_map_get(&cc->anchors, key);
		free(key);
		if (!target)
			tjs_cfail(cc, "cannot resolve reference %s (no such anchor)", abs);
	}
	if (target && fragment_out && frag && frag[0] != '/') {
		*fragment_out = frag;
		frag = NULL;
	}
cleanup:
	free(abs);
	free(uri);
	free(frag);
	return cc->failed ? NULL : target;
}
