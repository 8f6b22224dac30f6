/*
 * Compilation: every schema object becomes a node holding the keywords that
 * apply in its draft and vocabularies, each bound to its validation function
 * with its arguments pre-computed (subschema nodes, sorted property tables,
 * compiled regexes, numbers). References are resolved once, here.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define DEFAULT_BASE "tributary:/schema"

static tjs_node *node_for(tjs_cctx *cc, const json_t *j);

static void *calloc_arena(tjs_cctx *cc, size_t n)
{
	void *p = tjs_arena_alloc(&cc->s->arena, n ? n : 1);
	if (!p)
		tjs_cfail(cc, "out of memory");
	return p;
}

static tjs_node *sub_node(tjs_cctx *cc, const json_t *j, const char *kw)
{
	if (!json_is_object(j) && !json_is_boolean(j)) {
		tjs_cfail(cc, "the value of %s must be a schema", kw);
		return NULL;
	}
	return node_for(cc, j);
}

static tjs_kw *kw_new(tjs_cctx *cc, tjs_node *n, size_t cap, tjs_op fn, const char *name,
                      const json_t *value)
{
	if (n->nkw >= cap) {
		tjs_cfail(cc, "internal error: keyword table full");
		return NULL;
	}
	tjs_kw *kw = &n->kws[n->nkw++];
	kw->op = fn;
	kw->name = name;
	kw->value = value;
	kw->draft = n->draft;
	return kw;
}

static bool subs_array(tjs_cctx *cc, tjs_kw *kw, const json_t *arr)
{
	if (!json_is_array(arr) || (json_array_size(arr) == 0 && strcmp(kw->name, "prefixItems") &&
	                            strcmp(kw->name, "items"))) {
		tjs_cfail(cc, "%s must be a non-empty array of schemas", kw->name);
		return false;
	}
	kw->nsubs = json_array_size(arr);
	kw->subs = calloc_arena(cc, kw->nsubs * sizeof(*kw->subs));
	if (!kw->subs)
		return false;
	for (size_t i = 0; i < kw->nsubs; i++)
		if (!(kw->subs[i] = sub_node(cc, json_array_get(arr, i), kw->name)))
			return false;
	return true;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted names of an object keyword; lookups bisect this at validation. */
static const char **sorted_names(tjs_cctx *cc, const json_t *obj, size_t *n)
{
	*n = json_object_size(obj);
	const char **names = calloc_arena(cc, *n * sizeof(*names));
	if (!names)
		return NULL;
	size_t i = 0;
	const char *k;
	json_t *v;
	json_object_foreach((json_t *)obj, k, v) names[i++] = k;
	qsort(names, *n, sizeof(*names), cmp_str);
	return names;
}

/* Hash table over the names, so that validation finds an instance
 * member's property with one hash of its key. */
static bool name_table(tjs_cctx *cc, tjs_kw *kw)
{
	if (!kw->nsubs)
		return true;
	size_t cap = 8;
	while (cap < kw->nsubs * 2)
		cap *= 2;
	kw->name_lens = calloc_arena(cc, kw->nsubs * sizeof(*kw->name_lens));
	kw->ntab = calloc_arena(cc, cap * sizeof(*kw->ntab));
	if (!kw->name_lens || !kw->ntab)
		return false;
	kw->ntab_mask = cap - 1;
	for (size_t i = 0; i < kw->nsubs; i++) {
		kw->name_lens[i] = strlen(kw->names[i]);
		size_t j = tjs_hash_bytes(kw->names[i], kw->name_lens[i]) & kw->ntab_mask;
		while (kw->ntab[j])
			j = (j + 1) & kw->ntab_mask;
		kw->ntab[j] = (uint32_t)(i + 1);
	}
	return true;
}

/* `required` as a name table plus a mask of its distinct names, so that
 * one pass over an instance's members can check them all. */
static void required_table(tjs_cctx *cc, tjs_kw *kw, const json_t *arr)
{
	size_t n = json_array_size(arr);
	if (n == 0 || n > 64)
		return;
	kw->names = calloc_arena(cc, n * sizeof(*kw->names));
	if (!kw->names)
		return;
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_array_get(arr, i);
		if (!json_is_string(e))
			return; /* (refused by the meta-schema) */
		kw->names[i] = json_string_value(e);
	}
	kw->nsubs = n;
	if (!name_table(cc, kw))
		return;
	uint64_t mask = 0;
	for (size_t i = 0; i < n; i++)
		mask |= (uint64_t)1 << tjs_find_name(kw, kw->names[i], kw->name_lens[i]);
	kw->req_mask = mask;
}

static bool subs_map(tjs_cctx *cc, tjs_kw *kw, const json_t *obj)
{
	if (!json_is_object(obj)) {
		tjs_cfail(cc, "%s must be an object of schemas", kw->name);
		return false;
	}
	if (!(kw->names = sorted_names(cc, obj, &kw->nsubs)) || !name_table(cc, kw))
		return false;
	kw->subs = calloc_arena(cc, kw->nsubs * sizeof(*kw->subs));
	if (!kw->subs)
		return false;
	for (size_t i = 0; i < kw->nsubs; i++)
		if (!(kw->subs[i] = sub_node(cc, json_object_get(obj, kw->names[i]), kw->name)))
			return false;
	return true;
}

static pcre2_code *regex_for(tjs_cctx *cc, const json_t *pat)
{
	const char *src = json_string_value(pat);
	pcre2_code *re = tjs_map_get(&cc->regexes, src);
	if (re)
		return re;
	char err[200];
	re = tjs_regex_compile(src, json_string_length(pat), err, sizeof(err));
	if (!re) {
		tjs_cfail(cc, "invalid regular expression \"%s\": %s", src, err);
		return NULL;
	}
	tjs_schema *s = cc->s;
	if (s->nregexes == s->capregexes) {
		size_t cap = s->capregexes ? s->capregexes * 2 : 8;
		pcre2_code **r = realloc(s->regexes, cap * sizeof(*r));
		if (!r) {
			pcre2_code_free(re);
			tjs_cfail(cc, "out of memory");
			return NULL;
		}
		s->regexes = r;
		s->capregexes = cap;
	}
	s->regexes[s->nregexes++] = re;
	if (tjs_map_put(&cc->regexes, src, re) < 0) {
		tjs_cfail(cc, "out of memory");
		return NULL;
	}
	return re;
}

static bool get_count(tjs_cctx *cc, const json_t *v, const char *name, size_t *out)
{
	if (!json_is_number(v) || !tjs_is_integer(v) || tjs_number(v) < 0) {
		tjs_cfail(cc, "%s must be a non-negative integer", name);
		return false;
	}
	double d = tjs_number(v);
	*out = d > (double)SIZE_MAX / 2 ? SIZE_MAX / 2 : (size_t)d;
	return true;
}

static void set_number(tjs_kw *kw, const json_t *v)
{
	kw->num = tjs_number(v);
	kw->is_int = json_is_integer(v);
	kw->inum = kw->is_int ? json_integer_value(v) : 0;
}

static void add_ref(tjs_cctx *cc, tjs_kw *kw, const tjs_node *n, const json_t *refv, bool dynamic)
{
	if (!json_is_string(refv)) {
		tjs_cfail(cc, "%s must be a string", kw->name);
		return;
	}
	char *frag = NULL;
	const json_t *target = tjs_resolve_ref(cc, n->owner->uri, json_string_value(refv), n->draft,
	                                       dynamic ? &frag : NULL);
	if (!target)
		return;
	tjs_pending *p = calloc_arena(cc, sizeof(*p));
	if (!p) {
		free(frag);
		return;
	}
	p->kw = kw;
	p->target = target;
	if (frag) {
		p->fragment = tjs_arena_strdup(&cc->s->arena, frag);
		free(frag);
	}
	p->next = cc->pending;
	cc->pending = p;
}

static unsigned parse_types(tjs_cctx *cc, const json_t *t)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {{"null", TJS_T_NULL},      {"boolean", TJS_T_BOOLEAN},
	             {"object", TJS_T_OBJECT},  {"array", TJS_T_ARRAY},
	             {"number", TJS_T_NUMBER},  {"string", TJS_T_STRING},
	             {"integer", TJS_T_INTEGER}};
	unsigned bits = 0;
	size_t n = json_is_array(t) ? json_array_size(t) : 1;
	for (size_t i = 0; i < n; i++) {
		const json_t *e = json_is_array(t) ? json_array_get(t, i) : t;
		bool ok = false;
		for (size_t k = 0; json_is_string(e) && k < sizeof(names) / sizeof(names[0]); k++) {
			if (strcmp(json_string_value(e), names[k].name) == 0) {
				bits |= names[k].bit;
				ok = true;
			}
		}
		if (!ok) {
			tjs_cfail(cc, "type must name JSON types");
			return 0;
		}
	}
	return bits;
}

/* `required` beside `properties` that names each required property: one
 * pass over an instance's members serves both (see tjs_kw.req_fused). */
static void fuse_required(tjs_node *n)
{
	tjs_kw *req = NULL, *props = NULL;
	for (size_t i = 0; i < n->nkw; i++) {
		if (n->kws[i].op == TJS_OP_REQUIRED)
			req = &n->kws[i];
		else if (n->kws[i].op == TJS_OP_OBJECT_PROPS)
			props = &n->kws[i];
	}
	if (!req || !props || !req->req_mask || !props->ntab || props->nsubs > 64)
		return;
	uint64_t mask = 0;
	for (size_t i = 0; i < req->nsubs; i++) {
		ssize_t p = tjs_find_name(props, req->names[i], req->name_lens[i]);
		if (p < 0)
			return;
		mask |= (uint64_t)1 << p;
	}
	props->req_fused = mask;
	req->fused = true;
}

/*
 * One pass over every keyword the drafts define, in the order they are
 * evaluated (the order matters: $ref first, which before 2019-09 replaces
 * the schema). It is long because the vocabulary is: each keyword is a few
 * lines, and spreading them over helpers would hide that order.
 */
static void compile_keywords(tjs_cctx *cc, tjs_node *n, const tjs_sinfo *info)
{
	const json_t *j = n->json;
	tjs_draft d = info->draft;
	unsigned voc = info->vocab;
	size_t cap = json_object_size(j) + 1;
	n->kws = calloc_arena(cc, cap * sizeof(*n->kws));
	if (!n->kws)
		return;
	const json_t *v;
	tjs_kw *kw;
#define GET(name) (v = json_object_get(j, name))

	if (GET("$ref")) {
		if ((kw = kw_new(cc, n, cap, TJS_OP_REF, "$ref", v)))
			add_ref(cc, kw, n, v, false);
		/* before 2019-09, $ref replaces the whole schema */
		if (d <= TJS_DRAFT_7)
			return;
	}
	if (d >= TJS_DRAFT_2020_12 && GET("$dynamicRef") &&
	    (kw = kw_new(cc, n, cap, TJS_OP_DYNAMIC_REF, "$dynamicRef", v)))
		add_ref(cc, kw, n, v, true);
	if (d == TJS_DRAFT_2019_09 && GET("$recursiveRef") &&
	    (kw = kw_new(cc, n, cap, TJS_OP_RECURSIVE_REF, "$recursiveRef", v)))
		add_ref(cc, kw, n, v, false);

	bool applicator = d <= TJS_DRAFT_7 || (voc & TJS_VOC_APPLICATOR);
	bool validation = d <= TJS_DRAFT_7 || (voc & TJS_VOC_VALIDATION);
	bool unevaluated = d >= TJS_DRAFT_2019_09 && (voc & TJS_VOC_UNEVALUATED);

	if (validation) {
		if (GET("type") && (kw = kw_new(cc, n, cap, TJS_OP_TYPE, "type", v)))
			kw->types = parse_types(cc, v);
		if (GET("enum") && (kw = kw_new(cc, n, cap, TJS_OP_ENUM, "enum", v)) &&
		    !json_is_array(v))
			tjs_cfail(cc, "enum must be an array");
		if (d >= TJS_DRAFT_6 && GET("const"))
			kw_new(cc, n, cap, TJS_OP_CONST, "const", v);
		if (GET("multipleOf") &&
		    (kw = kw_new(cc, n, cap, TJS_OP_MULTIPLE_OF, "multipleOf", v))) {
			if (!json_is_number(v) || tjs_number(v) <= 0)
				tjs_cfail(cc, "multipleOf must be a number greater than 0");
			else
				set_number(kw, v);
		}
		const char *bounds[2][2] = {{"maximum", "exclusiveMaximum"},
		                            {"minimum", "exclusiveMinimum"}};
		for (int b = 0; b < 2; b++) {
			tjs_op fn = b == 0 ? TJS_OP_MAXIMUM : TJS_OP_MINIMUM;
			const json_t *lim = json_object_get(j, bounds[b][0]);
			const json_t *ex = json_object_get(j, bounds[b][1]);
			if (lim && !json_is_number(lim)) {
				tjs_cfail(cc, "%s must be a number", bounds[b][0]);
				return;
			}
			if (d == TJS_DRAFT_4) {
				/* draft 4: exclusiveMaximum is a boolean modifier of maximum */
				if (lim && (kw = kw_new(cc, n, cap, fn, bounds[b][0], lim))) {
					set_number(kw, lim);
					kw->flag = json_is_true(ex);
				}
			} else {
				if (lim && (kw = kw_new(cc, n, cap, fn, bounds[b][0], lim)))
					set_number(kw, lim);
				if (ex && !json_is_number(ex)) {
					tjs_cfail(cc, "%s must be a number", bounds[b][1]);
					return;
				}
				if (ex && (kw = kw_new(cc, n, cap, fn, bounds[b][1], ex))) {
					set_number(kw, ex);
					kw->flag = true;
				}
			}
		}
		if (GET("maxLength") &&
		    (kw = kw_new(cc, n, cap, TJS_OP_MAX_LENGTH, "maxLength", v)))
			get_count(cc, v, "maxLength", &kw->max);
		if (GET("minLength") &&
		    (kw = kw_new(cc, n, cap, TJS_OP_MIN_LENGTH, "minLength", v)))
			get_count(cc, v, "minLength", &kw->min);
		if (GET("pattern") && (kw = kw_new(cc, n, cap, TJS_OP_PATTERN, "pattern", v))) {
			if (!json_is_string(v))
				tjs_cfail(cc, "pattern must be a string");
			else
				kw->re = regex_for(cc, v);
		}
		if (GET("maxItems") && (kw = kw_new(cc, n, cap, TJS_OP_MAX_ITEMS, "maxItems", v)))
			get_count(cc, v, "maxItems", &kw->max);
		if (GET("minItems") && (kw = kw_new(cc, n, cap, TJS_OP_MIN_ITEMS, "minItems", v)))
			get_count(cc, v, "minItems", &kw->min);
		if (GET("uniqueItems") && json_is_true(v))
			kw_new(cc, n, cap, TJS_OP_UNIQUE_ITEMS, "uniqueItems", v);
		if (GET("maxProperties") &&
		    (kw = kw_new(cc, n, cap, TJS_OP_MAX_PROPERTIES, "maxProperties", v)))
			get_count(cc, v, "maxProperties", &kw->max);
		if (GET("minProperties") &&
		    (kw = kw_new(cc, n, cap, TJS_OP_MIN_PROPERTIES, "minProperties", v)))
			get_count(cc, v, "minProperties", &kw->min);
		if (GET("required") && (kw = kw_new(cc, n, cap, TJS_OP_REQUIRED, "required", v))) {
			if (!json_is_array(v))
				tjs_cfail(cc, "required must be an array of strings");
			else
				required_table(cc, kw, v);
		}
		if (d >= TJS_DRAFT_2019_09 && GET("dependentRequired") &&
		    (kw = kw_new(cc, n, cap, TJS_OP_DEPENDENT_REQUIRED, "dependentRequired", v))) {
			if (!json_is_object(v) || !(kw->names = sorted_names(cc, v, &kw->nsubs)))
				tjs_cfail(cc, "dependentRequired must be an object");
		}
	}
	if (GET("format") && json_is_string(v) &&
	    (cc->s->opts.format_assert ||
	     (d >= TJS_DRAFT_2020_12 && (voc & TJS_VOC_FORMAT_ASSERTION)))) {
		tjs_format_fn f = tjs_format_lookup(json_string_value(v));
		/* unknown formats stay annotations */
		if (f && (kw = kw_new(cc, n, cap, TJS_OP_FORMAT, "format", v)))
			kw->format = f;
	}
	if (applicator) {
		static const char *const combos[] = {"allOf", "anyOf", "oneOf"};
		tjs_op combo_fns[] = {TJS_OP_ALL_OF, TJS_OP_ANY_OF, TJS_OP_ONE_OF};
		for (int i = 0; i < 3; i++)
			if (GET(combos[i]) && (kw = kw_new(cc, n, cap, combo_fns[i], combos[i], v)))
				subs_array(cc, kw, v);
		if (GET("not") && (kw = kw_new(cc, n, cap, TJS_OP_NOT, "not", v)))
			kw->sub = sub_node(cc, v, "not");
		if (d >= TJS_DRAFT_7 && GET("if") &&
		    (kw = kw_new(cc, n, cap, TJS_OP_IF, "if", v))) {
			kw->sub = sub_node(cc, v, "if");
			const json_t *t = json_object_get(j, "then"),
			             *e = json_object_get(j, "else");
			if (t)
				kw->sub2 = sub_node(cc, t, "then");
			if (e)
				kw->sub3 = sub_node(cc, e, "else");
		}
		/* arrays */
		size_t nprefix = 0;
		if (d >= TJS_DRAFT_2020_12) {
			if (GET("prefixItems") &&
			    (kw = kw_new(cc, n, cap, TJS_OP_PREFIX_ITEMS, "prefixItems", v)) &&
			    subs_array(cc, kw, v))
				nprefix = kw->nsubs;
			if (GET("items") &&
			    (kw = kw_new(cc, n, cap, TJS_OP_ITEMS_REST, "items", v))) {
				kw->sub = sub_node(cc, v, "items");
				kw->min = nprefix;
			}
		} else if (GET("items")) {
			if (json_is_array(v)) {
				if ((kw = kw_new(cc, n, cap, TJS_OP_PREFIX_ITEMS, "items", v)) &&
				    subs_array(cc, kw, v))
					nprefix = kw->nsubs;
				const json_t *add = json_object_get(j, "additionalItems");
				if (add && (kw = kw_new(cc, n, cap, TJS_OP_ITEMS_REST,
				                        "additionalItems", add))) {
					kw->sub = sub_node(cc, add, "additionalItems");
					kw->min = nprefix;
				}
			} else if ((kw = kw_new(cc, n, cap, TJS_OP_ITEMS_REST, "items", v))) {
				kw->sub = sub_node(cc, v, "items");
			}
		}
		if (d >= TJS_DRAFT_6 && GET("contains") &&
		    (kw = kw_new(cc, n, cap, TJS_OP_CONTAINS, "contains", v))) {
			kw->sub = sub_node(cc, v, "contains");
			kw->has_min = true;
			kw->min = 1;
			if (d >= TJS_DRAFT_2019_09 && validation) {
				const json_t *mn = json_object_get(j, "minContains"),
				             *mx = json_object_get(j, "maxContains");
				if (mn)
					get_count(cc, mn, "minContains", &kw->min);
				if (mx) {
					kw->has_max = true;
					get_count(cc, mx, "maxContains", &kw->max);
				}
			}
		}
		/* objects: properties, patternProperties and additionalProperties
		 * are one pass over the instance's members */
		const json_t *props = json_object_get(j, "properties"),
		             *pats = json_object_get(j, "patternProperties"),
		             *addl = json_object_get(j, "additionalProperties");
		if ((props || pats || addl) &&
		    (kw = kw_new(cc, n, cap, TJS_OP_OBJECT_PROPS, "properties",
		                 props  ? props
		                 : pats ? pats
		                        : addl))) {
			kw->name2 = "additionalProperties";
			if (props)
				subs_map(cc, kw, props);
			if (pats) {
				if (!json_is_object(pats)) {
					tjs_cfail(cc, "patternProperties must be an object");
					return;
				}
				kw->npatterns = json_object_size(pats);
				kw->patterns =
				    calloc_arena(cc, kw->npatterns * sizeof(*kw->patterns));
				size_t i = 0;
				const char *pk;
				json_t *pv;
				json_object_foreach((json_t *)pats, pk, pv)
				{
					if (!kw->patterns)
						break;
					kw->patterns[i].source = pk;
					json_t *ps = json_string(pk);
					kw->patterns[i].re = ps ? regex_for(cc, ps) : NULL;
					json_decref(ps);
					kw->patterns[i].sub = sub_node(cc, pv, "patternProperties");
					i++;
				}
			}
			if (addl)
				kw->sub = sub_node(cc, addl, "additionalProperties");
		}
		if (d >= TJS_DRAFT_6 && GET("propertyNames") &&
		    (kw = kw_new(cc, n, cap, TJS_OP_PROPERTY_NAMES, "propertyNames", v)))
			kw->sub = sub_node(cc, v, "propertyNames");
		if (d >= TJS_DRAFT_2019_09 && GET("dependentSchemas") &&
		    (kw = kw_new(cc, n, cap, TJS_OP_DEPENDENT_SCHEMAS, "dependentSchemas", v)))
			subs_map(cc, kw, v);
		if (GET("dependencies")) {
			if (!json_is_object(v)) {
				tjs_cfail(cc, "dependencies must be an object");
				return;
			}
			/* split by kind: arrays are dependentRequired, the rest schemas */
			json_t *req = json_object(), *sch = json_object();
			const char *dk;
			json_t *dv;
			json_object_foreach((json_t *)v, dk, dv)
			{
				if (req && sch)
					json_object_set(json_is_array(dv) ? req : sch, dk, dv);
			}
			if (!req || !sch) {
				tjs_cfail(cc, "out of memory");
			} else {
				/* the split objects only sort names; values stay owned by the
				 * schema */
				if (json_object_size(req) &&
				    (kw = kw_new(cc, n, cap, TJS_OP_DEPENDENT_REQUIRED,
				                 "dependencies", v))) {
					kw->names = sorted_names(cc, req, &kw->nsubs);
					for (size_t i = 0; kw->names && i < kw->nsubs; i++)
						kw->names[i] = json_object_iter_key(
						    json_object_iter_at((json_t *)v, kw->names[i]));
				}
				if (json_object_size(sch) &&
				    (kw = kw_new(cc, n, cap, TJS_OP_DEPENDENT_SCHEMAS,
				                 "dependencies", v))) {
					subs_map(cc, kw, sch);
					for (size_t i = 0; kw->names && i < kw->nsubs; i++)
						kw->names[i] = json_object_iter_key(
						    json_object_iter_at((json_t *)v, kw->names[i]));
				}
			}
			json_decref(req);
			json_decref(sch);
		}
	}
	if (unevaluated) {
		/* last: they see the annotations of every other keyword */
		if (GET("unevaluatedItems") &&
		    (kw = kw_new(cc, n, cap, TJS_OP_UNEVALUATED_ITEMS, "unevaluatedItems", v))) {
			kw->sub = sub_node(cc, v, "unevaluatedItems");
			n->has_uneval = true;
		}
		if (GET("unevaluatedProperties") &&
		    (kw = kw_new(cc, n, cap, TJS_OP_UNEVALUATED_PROPERTIES, "unevaluatedProperties",
		                 v))) {
			kw->sub = sub_node(cc, v, "unevaluatedProperties");
			n->has_uneval = true;
		}
	}
	fuse_required(n);
#undef GET
}

static tjs_node *node_for(tjs_cctx *cc, const json_t *j)
{
	if (cc->failed)
		return NULL;
	tjs_sinfo *info = tjs_info(cc, j);
	if (!info) {
		tjs_cfail(cc, "internal error: schema location was not scanned");
		return NULL;
	}
	if (info->node)
		return info->node;
	tjs_node *n = calloc_arena(cc, sizeof(*n));
	if (!n)
		return NULL;
	info->node = n;
	n->json = j;
	n->owner = info->res;
	n->draft = info->draft;
	n->boolean = json_is_true(j) ? 1 : json_is_false(j) ? 0 : -1;
	if (n->boolean < 0) {
		if (++cc->depth > TJS_MAX_SCHEMA_NESTING)
			tjs_cfail(cc, "schema nested deeper than %u levels",
			          TJS_MAX_SCHEMA_NESTING);
		else
			compile_keywords(cc, n, info);
		cc->depth--;
	}
	n->compiled = true;
	return n;
}

/* References and dynamic anchors are bound after the tree is built, in a
 * work list, so that chains of references do not deepen the C stack. */
static void finish(tjs_cctx *cc)
{
	bool progress = true;
	while (progress && !cc->failed) {
		progress = false;
		while (cc->pending && !cc->failed) {
			tjs_pending *p = cc->pending;
			cc->pending = p->next;
			p->kw->sub = node_for(cc, p->target);
			if (p->fragment && json_is_object(p->target)) {
				const json_t *a = json_object_get(p->target, "$dynamicAnchor");
				if (json_is_string(a) &&
				    strcmp(json_string_value(a), p->fragment) == 0)
					p->kw->dyn_name = p->fragment;
			}
			progress = true;
		}
		for (tjs_resource *r = cc->s->resources; r && !cc->failed; r = r->next_all) {
			for (size_t i = 0; i < r->ndyn; i++) {
				if (!r->dyn_nodes[i]) {
					r->dyn_nodes[i] = node_for(cc, r->dyn_json[i]);
					progress = true;
				}
			}
			if (r->recursive_anchor && !r->root_node) {
				r->root_node = node_for(cc, r->json);
				progress = true;
			}
		}
	}
}

static void first_error(const tjs_result *res, char *buf, size_t len)
{
	if (res->count == 0) {
		snprintf(buf, len, "invalid");
		return;
	}
	const tjs_error *e = &res->errors[0];
	snprintf(buf, len, "at %s (%s): %s", e->instance_location[0] ? e->instance_location : "/",
	         e->keyword_location, e->message);
}

static int check_meta(tjs_cctx *cc, const json_t *schema, tjs_draft draft, const tjs_options *o)
{
	const json_t *sch = json_is_object(schema) ? json_object_get(schema, "$schema") : NULL;
	const tjs_schema *meta = NULL;
	tjs_schema *custom = NULL;
	char err[512] = "";
	if (json_is_string(sch) && !tjs_draft_of_metaschema(json_string_value(sch))) {
		char *uri = tjs_uri_strip_fragment(json_string_value(sch));
		const char *root = NULL;
		json_t *doc = uri ? tjs_registry_lookup(cc->reg, uri, &root) : NULL;
		if (doc) {
			tjs_options mo = {.default_draft = draft, .max_depth = o->max_depth};
			custom = tjs_compile_internal(cc->reg, doc, root, &mo, false, true, err,
			                              sizeof(err));
		} else {
			snprintf(err, sizeof(err), "unknown meta-schema");
		}
		free(uri);
		if (!custom) {
			tjs_cfail(cc, "cannot use meta-schema %s: %s", json_string_value(sch), err);
			return -1;
		}
		meta = custom;
	} else {
		meta = tjs_registry_metaschema(cc->reg, draft, err, sizeof(err));
		if (!meta) {
			tjs_cfail(cc, "cannot load the %s meta-schema: %s", tjs_draft_name(draft),
			          err);
			return -1;
		}
	}
	tjs_result res = {0};
	bool ok = tjs_validate(meta, schema, &res, 1);
	if (!ok) {
		first_error(&res, err, sizeof(err));
		tjs_cfail(cc, "schema is invalid against its meta-schema (%s): %s",
		          json_is_string(sch) ? json_string_value(sch) : tjs_draft_name(draft),
		          err);
	}
	tjs_result_clear(&res);
	tjs_schema_free(custom);
	return ok ? 0 : -1;
}

static void cctx_free(tjs_cctx *cc)
{
	tjs_map_free(&cc->resources, NULL);
	tjs_map_free(&cc->anchors, NULL);
	tjs_map_free(&cc->regexes, NULL);
	tjs_pmap_free(&cc->info);
	tjs_pmap_free(&cc->docs_scanned);
}

tjs_schema *tjs_compile_internal(tjs_registry *reg, json_t *schema, const char *base_uri,
                                 const tjs_options *opts, bool meta_check, bool hold_reg, char *err,
                                 size_t errlen)
{
	if (err && errlen)
		err[0] = '\0';
	if (!reg || !schema) {
		if (err && errlen)
			snprintf(err, errlen, "no registry or schema");
		return NULL;
	}
	tjs_schema *s = calloc(1, sizeof(*s));
	if (!s) {
		if (err && errlen)
			snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->reg = hold_reg ? tjs_registry_ref(reg) : reg;
	s->holds_reg = hold_reg;
	s->doc = json_incref(schema);
	if (opts)
		s->opts = *opts;
	if (!s->opts.max_depth)
		s->opts.max_depth = TJS_DEFAULT_MAX_DEPTH;
	if (s->opts.default_draft == TJS_DRAFT_DEFAULT ||
	    tjs_draft_index(s->opts.default_draft) < 0)
		s->opts.default_draft = TJS_DRAFT_2020_12;
	tjs_cctx cc = {.s = s, .reg = reg, .err = err, .errlen = errlen};
	char *base = NULL;
	s->mctx = tjs_regex_match_context();
	if (!s->mctx) {
		tjs_cfail(&cc, "out of memory");
		goto fail;
	}
	base = tjs_uri_resolve(DEFAULT_BASE, base_uri ? base_uri : "");
	char *bare = base ? tjs_uri_strip_fragment(base) : NULL;
	free(base);
	base = bare;
	if (!base) {
		tjs_cfail(&cc, "out of memory");
		goto fail;
	}
	if (!json_is_object(schema) && !json_is_boolean(schema)) {
		tjs_cfail(&cc, "a schema must be an object or a boolean");
		goto fail;
	}
	tjs_draft draft;
	unsigned vocab;
	if (tjs_doc_dialect(&cc, schema, s->opts.default_draft, &draft, &vocab, 0) < 0)
		goto fail;
	if (meta_check && check_meta(&cc, schema, draft, &s->opts) < 0)
		goto fail;
	if (!tjs_scan_document(&cc, schema, base, draft, vocab))
		goto fail;
	s->root = node_for(&cc, schema);
	finish(&cc);
	if (cc.failed || !s->root)
		goto fail;
	free(base);
	cctx_free(&cc);
	return s;
fail:
	if (!cc.failed && err && errlen)
		snprintf(err, errlen, "compilation failed");
	free(base);
	cctx_free(&cc);
	tjs_schema_free(s);
	return NULL;
}

TJS_API tjs_schema *tjs_compile(tjs_registry *reg, json_t *schema, const char *base_uri,
                                const tjs_options *opts, char *err, size_t errlen)
{
	return tjs_compile_internal(reg, schema, base_uri, opts, true, true, err, errlen);
}

TJS_API void tjs_schema_free(tjs_schema *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nregexes; i++)
		pcre2_code_free(s->regexes[i]);
	free(s->regexes);
	pcre2_match_context_free(s->mctx);
	tjs_arena_free(&s->arena);
	json_decref(s->doc);
	if (s->holds_reg)
		tjs_registry_free(s->reg);
	free(s);
}
