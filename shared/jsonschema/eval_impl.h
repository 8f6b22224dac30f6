/*
 * The validator proper: keyword functions and the evaluation driver,
 * written once against a small instance interface (V_* macros) and
 * compiled for each instance representation:
 *   eval_json.c  jansson values (tjs_validate)
 *   eval_doc.c   tjs_doc values (tjs_validate_value, tjs_validate_bytes)
 * so both paths share every keyword's logic and its errors, and each is
 * specialised by the compiler (no per-value dispatch).
 *
 * The including file defines INST (instance pointer type), V_TYPE, V_STR,
 * V_STRLEN, V_INT, V_REAL, V_BIG (a number's literal when only that is
 * exact, else NULL), V_SIZE, V_AT, V_GET, V_GET_IS_FAST, V_STRINGS_UTF8,
 * V_OBJ_FOREACH(obj, key, keylen, val), V_EQ, V_EQ_JSON, V_SHORT, KEY_TMP,
 * KEY_INST, KEY_INST_FREE and EVAL_ENTRY (the exported driver's name).
 *
 * Keyword functions return whether the instance satisfies the keyword;
 * with error collection on they record why, else they return at the first
 * failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "internal.h"

#define V_IS_OBJECT(v) (V_TYPE(v) == JSON_OBJECT)
#define V_IS_ARRAY(v) (V_TYPE(v) == JSON_ARRAY)
#define V_IS_STRING(v) (V_TYPE(v) == JSON_STRING)
#define V_IS_INT(v) (V_TYPE(v) == JSON_INTEGER)
#define V_IS_NUMBER(v) (V_TYPE(v) == JSON_INTEGER || V_TYPE(v) == JSON_REAL)
#define V_NUMBER(v) (V_IS_INT(v) ? (double)V_INT(v) : V_REAL(v))

/* Short renderings of values for messages, only when errors are wanted. */
typedef INST inst_t;

#define SHOW(c, v) ((c)->collect ? tjs_json_short(v) : NULL)
#define SHOWI(c, v) ((c)->collect ? V_SHORT(v) : NULL)

static bool eval(tjs_vctx *c, const tjs_node *n, INST inst, tjs_ann *ann);
static bool eval_child_key(tjs_vctx *c, const tjs_node *n, INST child, const char *key);
static bool eval_child_index(tjs_vctx *c, const tjs_node *n, INST child, size_t index);

static inline bool real_is_integral(double d)
{
	return isfinite(d) && floor(d) == d;
}

static bool ann_init(tjs_vctx *c, tjs_ann *a, INST inst)
{
	return tjs_ann_init_n(c, a, V_IS_OBJECT(inst) || V_IS_ARRAY(inst) ? V_SIZE(inst) : 0);
}

static unsigned type_bits(INST v, tjs_draft d)
{
	switch (V_TYPE(v)) {
	case JSON_OBJECT:
		return TJS_T_OBJECT;
	case JSON_ARRAY:
		return TJS_T_ARRAY;
	case JSON_STRING:
		return TJS_T_STRING;
	case JSON_INTEGER:
		return TJS_T_NUMBER | TJS_T_INTEGER;
	case JSON_REAL:
		if (V_BIG(v))
			return TJS_T_NUMBER | (tjs_big_is_integer(V_BIG(v), d) ? TJS_T_INTEGER : 0);
		/* Draft 4: an integer has no fraction or exponent part, so 1.0 is
		 * not one; but an integral real beyond 64 bits can only be an
		 * integer literal too big for jansson (read as a double). */
		if (d == TJS_DRAFT_4)
			return TJS_T_NUMBER | (real_is_integral(V_REAL(v)) &&
			                               fabs(V_REAL(v)) >= 9223372036854775808.0
			                           ? TJS_T_INTEGER
			                           : 0);
		return TJS_T_NUMBER | (real_is_integral(V_REAL(v)) ? TJS_T_INTEGER : 0);
	case JSON_TRUE:
	case JSON_FALSE:
		return TJS_T_BOOLEAN;
	default:
		return TJS_T_NULL;
	}
}

static bool kw_type(tjs_vctx *c, const tjs_kw *kw, INST inst, tjs_ann *ann)
{
	(void)ann;
	unsigned t = type_bits(inst, kw->draft);
	if (t & kw->types)
		return true;
	char *v = SHOWI(c, inst), *ty = SHOW(c, kw->value);
	tjs_report(c, kw->name, "%s is not of type %s", v, ty);
	free(v);
	free(ty);
	return false;
}

__attribute__((noinline)) static bool kw_enum(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                              tjs_ann *ann)
{
	(void)ann;
	size_t n = json_array_size(kw->value);
	for (size_t i = 0; i < n; i++)
		if (V_EQ_JSON(inst, json_array_get(kw->value, i)))
			return true;
	char *v = SHOWI(c, inst), *e = SHOW(c, kw->value);
	tjs_report(c, kw->name, "%s is not one of %s", v, e);
	free(v);
	free(e);
	return false;
}

__attribute__((noinline)) static bool kw_const(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                               tjs_ann *ann)
{
	(void)ann;
	if (V_EQ_JSON(inst, kw->value))
		return true;
	char *v = SHOWI(c, inst), *e = SHOW(c, kw->value);
	tjs_report(c, kw->name, "%s is not the constant %s", v, e);
	free(v);
	free(e);
	return false;
}

__attribute__((noinline)) static bool kw_multiple_of(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                                     tjs_ann *ann)
{
	(void)ann;
	if (!V_IS_NUMBER(inst))
		return true;
	bool ok;
	if (V_BIG(inst)) {
		ok = tjs_big_multiple_of(V_BIG(inst), kw);
	} else if (V_IS_INT(inst) && kw->is_int) {
		ok = V_INT(inst) % kw->inum == 0;
	} else {
		double x = V_NUMBER(inst), q = x / kw->num;
		if (!isfinite(q))
			ok = isfinite(x) &&
			     fmod(x, kw->num) == 0; /* quotient overflow: exact remainder */
		else
			ok = fabs(q - nearbyint(q)) <= 1e-9 * (fabs(q) > 1.0 ? fabs(q) : 1.0);
	}
	if (ok)
		return true;
	char *v = SHOWI(c, inst), *m = SHOW(c, kw->value);
	tjs_report(c, kw->name, "%s is not a multiple of %s", v, m);
	free(v);
	free(m);
	return false;
}

/* <0, 0, >0 as inst compares to the keyword's number. */
static int num_cmp(INST inst, const tjs_kw *kw)
{
	if (V_BIG(inst))
		return tjs_big_cmp(V_BIG(inst), kw);
	if (V_IS_INT(inst) && kw->is_int) {
		json_int_t a = V_INT(inst);
		return a < kw->inum ? -1 : a > kw->inum;
	}
	double a = V_NUMBER(inst);
	return a < kw->num ? -1 : a > kw->num;
}

static bool kw_maximum(tjs_vctx *c, const tjs_kw *kw, INST inst, tjs_ann *ann)
{
	(void)ann;
	if (!V_IS_NUMBER(inst))
		return true;
	int r = num_cmp(inst, kw);
	if (r < 0 || (r == 0 && !kw->flag))
		return true;
	char *v = SHOWI(c, inst), *m = SHOW(c, kw->value);
	if (kw->flag)
		tjs_report(c, kw->name, "%s is not less than the exclusive maximum of %s", v, m);
	else
		tjs_report(c, kw->name, "%s is greater than the maximum of %s", v, m);
	free(v);
	free(m);
	return false;
}

static bool kw_minimum(tjs_vctx *c, const tjs_kw *kw, INST inst, tjs_ann *ann)
{
	(void)ann;
	if (!V_IS_NUMBER(inst))
		return true;
	int r = num_cmp(inst, kw);
	if (r > 0 || (r == 0 && !kw->flag))
		return true;
	char *v = SHOWI(c, inst), *m = SHOW(c, kw->value);
	if (kw->flag)
		tjs_report(c, kw->name, "%s is not greater than the exclusive minimum of %s", v, m);
	else
		tjs_report(c, kw->name, "%s is less than the minimum of %s", v, m);
	free(v);
	free(m);
	return false;
}

__attribute__((noinline)) static bool kw_max_length(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                                    tjs_ann *ann)
{
	(void)ann;
	if (!V_IS_STRING(inst) || V_STRLEN(inst) <= kw->max)
		return true; /* bytes >= code points: most strings need no count */
	size_t n = tjs_utf8_length(V_STR(inst), V_STRLEN(inst));
	if (n <= kw->max)
		return true;
	char *v = SHOWI(c, inst);
	tjs_report(c, kw->name, "%s is longer than %zu characters", v, kw->max);
	free(v);
	return false;
}

__attribute__((noinline)) static bool kw_min_length(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                                    tjs_ann *ann)
{
	(void)ann;
	/* a code point is at most 4 bytes: most strings need no count */
	if (!V_IS_STRING(inst) || (V_STRLEN(inst) + 3) / 4 >= kw->min)
		return true;
	size_t n = tjs_utf8_length(V_STR(inst), V_STRLEN(inst));
	if (n >= kw->min)
		return true;
	char *v = SHOWI(c, inst);
	tjs_report(c, kw->name, "%s is shorter than %zu characters", v, kw->min);
	free(v);
	return false;
}

/* 1 match, 0 no match, -1 error (reported). */
static int search(tjs_vctx *c, const pcre2_code *re, const char *kwname, const char *s, size_t n)
{
	pcre2_match_data *md = tjs_match_data(c);
	if (!md)
		return -1;
	int rc = V_STRINGS_UTF8 ? tjs_regex_search_utf8(re, s, n, md, c->schema->mctx)
	                        : tjs_regex_search(re, s, n, md, c->schema->mctx);
	if (rc < 0)
		tjs_report(c, kwname, "pattern matching gave up (match or depth limit reached)");
	return rc;
}

__attribute__((noinline)) static bool kw_pattern(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                                 tjs_ann *ann)
{
	(void)ann;
	if (!V_IS_STRING(inst))
		return true;
	int rc = search(c, kw->re, kw->name, V_STR(inst), V_STRLEN(inst));
	if (rc > 0)
		return true;
	if (rc == 0) {
		char *v = SHOWI(c, inst);
		tjs_report(c, kw->name, "%s does not match the pattern %s", v,
		           json_string_value(kw->value));
		free(v);
	}
	return false;
}

__attribute__((noinline)) static bool kw_format(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                                tjs_ann *ann)
{
	(void)ann;
	if (!V_IS_STRING(inst) || kw->format(V_STR(inst), V_STRLEN(inst)))
		return true;
	char *v = SHOWI(c, inst);
	tjs_report(c, kw->name, "%s is not a valid %s", v, json_string_value(kw->value));
	free(v);
	return false;
}

__attribute__((noinline)) static bool kw_max_items(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                                   tjs_ann *ann)
{
	(void)ann;
	if (!V_IS_ARRAY(inst) || V_SIZE(inst) <= kw->max)
		return true;
	tjs_report(c, kw->name, "array has %zu items, more than the maximum of %zu", V_SIZE(inst),
	           kw->max);
	return false;
}

__attribute__((noinline)) static bool kw_min_items(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                                   tjs_ann *ann)
{
	(void)ann;
	if (!V_IS_ARRAY(inst) || V_SIZE(inst) >= kw->min)
		return true;
	tjs_report(c, kw->name, "array has %zu items, fewer than the minimum of %zu", V_SIZE(inst),
	           kw->min);
	return false;
}

/* A hash consistent with tjs_json_equal (1 and 1.0 hash alike). */
static uint64_t inst_hash(INST v, unsigned depth)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)V_TYPE(v);
	if (depth > 64)
		return h;
	switch (V_TYPE(v)) {
	case JSON_INTEGER:
	case JSON_REAL: {
		double d = V_NUMBER(v);
		if (d == 0)
			d = 0; /* -0 */
		uint64_t bits;
		memcpy(&bits, &d, sizeof(bits));
		return bits * 0x9E3779B97F4A7C15ull;
	}
	case JSON_STRING: {
		const unsigned char *s = (const unsigned char *)V_STR(v);
		for (size_t i = 0; i < V_STRLEN(v); i++)
			h = (h ^ s[i]) * 1099511628211ull;
		return h;
	}
	case JSON_ARRAY: {
		for (size_t i = 0; i < V_SIZE(v); i++)
			h = (h ^ inst_hash(V_AT(v, i), depth + 1)) * 1099511628211ull;
		return h;
	}
	case JSON_OBJECT: {
		/* order-independent: members are summed */
		const char *k;
		size_t kl;
		INST e;
		uint64_t sum = 0;
		V_OBJ_FOREACH(v, k, kl, e)
		{
			uint64_t kh = tjs_hash_bytes(k, kl);
			sum += kh * 31 + inst_hash(e, depth + 1);
		}
		return h ^ sum;
	}
	case JSON_TRUE:
	case JSON_FALSE:
		return h ^ (uint64_t)V_TYPE(v);
	default:
		return h;
	}
}

struct hitem {
	uint64_t h;
	size_t i;
};

static int cmp_hitem(const void *a, const void *b)
{
	const struct hitem *x = a, *y = b;
	if (x->h != y->h)
		return x->h < y->h ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

__attribute__((noinline)) static bool kw_unique_items(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                                      tjs_ann *ann)
{
	(void)ann;
	size_t n = V_SIZE(inst);
	if (!V_IS_ARRAY(inst) || n < 2)
		return true;
	size_t dup_a = 0, dup_b = 0;
	bool dup = false;
	if (n <= 16) {
		for (size_t i = 0; i < n && !dup; i++)
			for (size_t j = i + 1; j < n && !dup; j++)
				if (V_EQ(V_AT(inst, i), V_AT(inst, j))) {
					dup = true;
					dup_a = i;
					dup_b = j;
				}
	} else {
		tjs_arena_mark m = tjs_arena_save(&c->arena);
		struct hitem *hs = tjs_arena_alloc(&c->arena, n * sizeof(*hs));
		if (!hs) {
			c->fatal = true;
			return false;
		}
		for (size_t i = 0; i < n; i++)
			hs[i] = (struct hitem){inst_hash(V_AT(inst, i), 0), i};
		qsort(hs, n, sizeof(*hs), cmp_hitem);
		for (size_t i = 0; i + 1 < n && !dup; i++)
			for (size_t j = i + 1; j < n && hs[j].h == hs[i].h && !dup; j++)
				if (V_EQ(V_AT(inst, hs[i].i), V_AT(inst, hs[j].i))) {
					dup = true;
					dup_a = hs[i].i;
					dup_b = hs[j].i;
				}
		tjs_arena_restore(&c->arena, m);
	}
	if (!dup)
		return true;
	tjs_report(c, kw->name, "array items %zu and %zu are equal", dup_a < dup_b ? dup_a : dup_b,
	           dup_a < dup_b ? dup_b : dup_a);
	return false;
}

__attribute__((noinline)) static bool kw_max_properties(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                                        tjs_ann *ann)
{
	(void)ann;
	if (!V_IS_OBJECT(inst) || V_SIZE(inst) <= kw->max)
		return true;
	tjs_report(c, kw->name, "object has %zu properties, more than the maximum of %zu",
	           V_SIZE(inst), kw->max);
	return false;
}

__attribute__((noinline)) static bool kw_min_properties(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                                        tjs_ann *ann)
{
	(void)ann;
	if (!V_IS_OBJECT(inst) || V_SIZE(inst) >= kw->min)
		return true;
	tjs_report(c, kw->name, "object has %zu properties, fewer than the minimum of %zu",
	           V_SIZE(inst), kw->min);
	return false;
}

static bool require_all(tjs_vctx *c, const char *kwname, INST inst, const json_t *list,
                        const char *because)
{
	bool ok = true;
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e)
	{
		if (!json_is_string(e) || V_GET(inst, json_string_value(e)))
			continue;
		ok = false;
		if (!c->collect)
			return false;
		if (because)
			tjs_report(c, kwname, "property \"%s\" is required when \"%s\" is present",
			           json_string_value(e), because);
		else
			tjs_report(c, kwname, "required property \"%s\" is missing",
			           json_string_value(e));
	}
	return ok;
}

__attribute__((noinline)) static bool kw_required(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                                  tjs_ann *ann)
{
	(void)ann;
	/* checked by the node's `properties` unless errors are wanted */
	if (!V_IS_OBJECT(inst) || (kw->fused && !c->collect))
		return true;
#if !V_GET_IS_FAST
	/* one pass over the members marks the required names present */
	if (kw->req_mask) {
		uint64_t seen = 0;
		const char *key;
		size_t keylen;
		INST v;
		V_OBJ_FOREACH(inst, key, keylen, v)
		{
			(void)v;
			ssize_t p = tjs_find_name(kw, key, keylen);
			if (p >= 0)
				seen |= (uint64_t)1 << p;
		}
		if ((seen & kw->req_mask) == kw->req_mask)
			return true;
	}
#endif
	return require_all(c, kw->name, inst, kw->value, NULL);
}

__attribute__((noinline)) static bool kw_dependent_required(tjs_vctx *c, const tjs_kw *kw,
                                                            INST inst, tjs_ann *ann)
{
	(void)ann;
	if (!V_IS_OBJECT(inst))
		return true;
	bool ok = true;
	for (size_t i = 0; i < kw->nsubs; i++) {
		if (!V_GET(inst, kw->names[i]))
			continue;
		tjs_kpush(c, kw->name);
		bool r = require_all(c, kw->names[i], inst,
		                     json_object_get(kw->value, kw->names[i]), kw->names[i]);
		tjs_kpop(c);
		if (!r) {
			ok = false;
			if (!c->collect)
				return false;
		}
	}
	return ok;
}

__attribute__((noinline)) static bool kw_dependent_schemas(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                                           tjs_ann *ann)
{
	if (!V_IS_OBJECT(inst))
		return true;
	bool ok = true;
	for (size_t i = 0; i < kw->nsubs; i++) {
		if (!V_GET(inst, kw->names[i]))
			continue;
		tjs_kpush(c, kw->name);
		tjs_kpush(c, kw->names[i]);
		bool r = eval(c, kw->subs[i], inst, ann);
		tjs_kpop(c);
		tjs_kpop(c);
		if (!r) {
			ok = false;
			if (!c->collect)
				return false;
		}
	}
	return ok;
}

static bool eval_in(tjs_vctx *c, const char *name, const tjs_node *n, INST inst, tjs_ann *ann)
{
	tjs_kpush(c, name);
	bool ok = eval(c, n, inst, ann);
	tjs_kpop(c);
	return ok;
}

__attribute__((noinline)) static bool kw_ref(tjs_vctx *c, const tjs_kw *kw, INST inst, tjs_ann *ann)
{
	return eval_in(c, kw->name, kw->sub, inst, ann);
}

__attribute__((noinline)) static bool kw_dynamic_ref(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                                     tjs_ann *ann)
{
	const tjs_node *target = kw->sub;
	if (kw->dyn_name) {
		/* the outermost resource in the dynamic scope declaring the anchor */
		bool found = false;
		for (size_t i = 1; i < c->nscope && !found; i++) {
			const tjs_resource *r = c->scope[i];
			for (size_t k = 0; k < r->ndyn; k++) {
				if (r->dyn_nodes[k] && strcmp(r->dyn_names[k], kw->dyn_name) == 0) {
					target = r->dyn_nodes[k];
					found = true;
					break;
				}
			}
		}
	}
	return eval_in(c, kw->name, target, inst, ann);
}

__attribute__((noinline)) static bool kw_recursive_ref(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                                       tjs_ann *ann)
{
	const tjs_node *target = kw->sub;
	if (target->owner && target->owner->recursive_anchor &&
	    target->json == target->owner->json) {
		for (size_t i = 1; i < c->nscope; i++) {
			if (c->scope[i]->recursive_anchor && c->scope[i]->root_node) {
				target = c->scope[i]->root_node;
				break;
			}
		}
	}
	return eval_in(c, kw->name, target, inst, ann);
}

__attribute__((noinline)) static bool kw_all_of(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                                tjs_ann *ann)
{
	bool ok = true;
	for (size_t i = 0; i < kw->nsubs; i++) {
		tjs_kpush(c, kw->name);
		tjs_kpush_index(c, i);
		bool r = eval(c, kw->subs[i], inst, ann);
		tjs_kpop(c);
		tjs_kpop(c);
		if (!r) {
			ok = false;
			if (!c->collect)
				return false;
		}
	}
	return ok;
}

/* Evaluates branch i with its own annotations, merged by the caller. */
static bool branch(tjs_vctx *c, const tjs_kw *kw, size_t i, INST inst, tjs_ann *ann, tjs_ann *tmp)
{
	if (ann && !ann_init(c, tmp, inst))
		return false;
	tjs_kpush(c, kw->name);
	tjs_kpush_index(c, i);
	bool r = eval(c, kw->subs[i], inst, ann ? tmp : NULL);
	tjs_kpop(c);
	tjs_kpop(c);
	return r;
}

__attribute__((noinline)) static bool kw_any_of(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                                tjs_ann *ann)
{
	size_t mark = tjs_error_mark(c);
	bool any = false;
	for (size_t i = 0; i < kw->nsubs; i++) {
		tjs_ann tmp;
		if (branch(c, kw, i, inst, ann, &tmp)) {
			any = true;
			if (!ann)
				break; /* no annotations to gather from the other branches */
			tjs_ann_merge(ann, &tmp);
		}
	}
	if (any) {
		tjs_error_rollback(c, mark);
		return true;
	}
	char *v = SHOWI(c, inst);
	tjs_error_summary(c, mark, kw->name, "%s does not match any of the schemas in anyOf", v);
	free(v);
	return false;
}

__attribute__((noinline)) static bool kw_one_of(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                                tjs_ann *ann)
{
	size_t mark = tjs_error_mark(c);
	size_t matches = 0, first = 0, second = 0;
	tjs_ann keep = {0};
	for (size_t i = 0; i < kw->nsubs && matches < 2; i++) {
		tjs_ann tmp;
		if (branch(c, kw, i, inst, ann, &tmp)) {
			if (matches++ == 0) {
				first = i;
				keep = tmp;
			} else {
				second = i;
			}
		}
	}
	if (matches == 1) {
		tjs_error_rollback(c, mark);
		if (ann)
			tjs_ann_merge(ann, &keep);
		return true;
	}
	char *v = SHOWI(c, inst);
	if (matches == 0) {
		tjs_error_summary(c, mark, kw->name,
		                  "%s does not match any of the schemas in oneOf", v);
	} else {
		tjs_error_rollback(c, mark);
		tjs_report(c, kw->name, "%s matches more than one schema in oneOf (%zu and %zu)", v,
		           first, second);
	}
	free(v);
	return false;
}

__attribute__((noinline)) static bool kw_not(tjs_vctx *c, const tjs_kw *kw, INST inst, tjs_ann *ann)
{
	(void)ann;
	size_t mark = tjs_error_mark(c);
	bool r = eval_in(c, kw->name, kw->sub, inst, NULL);
	tjs_error_rollback(c, mark);
	if (!r)
		return true;
	char *v = SHOWI(c, inst);
	tjs_report(c, kw->name, "%s must not be valid against the schema in not", v);
	free(v);
	return false;
}

__attribute__((noinline)) static bool kw_if(tjs_vctx *c, const tjs_kw *kw, INST inst, tjs_ann *ann)
{
	size_t mark = tjs_error_mark(c);
	tjs_ann tmp;
	if (ann && !ann_init(c, &tmp, inst))
		return false;
	bool cond = eval_in(c, "if", kw->sub, inst, ann ? &tmp : NULL);
	tjs_error_rollback(c, mark);
	if (cond && ann)
		tjs_ann_merge(ann, &tmp);
	const tjs_node *next = cond ? kw->sub2 : kw->sub3;
	if (!next)
		return true;
	return eval_in(c, cond ? "then" : "else", next, inst, ann);
}

__attribute__((noinline)) static bool kw_prefix_items(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                                      tjs_ann *ann)
{
	if (!V_IS_ARRAY(inst))
		return true;
	size_t n = V_SIZE(inst);
	bool ok = true;
	for (size_t i = 0; i < kw->nsubs && i < n; i++) {
		tjs_kpush(c, kw->name);
		tjs_kpush_index(c, i);
		bool r = eval_child_index(c, kw->subs[i], V_AT(inst, i), i);
		tjs_kpop(c);
		tjs_kpop(c);
		tjs_ann_set(ann, i);
		if (!r) {
			ok = false;
			if (!c->collect)
				return false;
		}
	}
	return ok;
}

__attribute__((noinline)) static bool kw_items_rest(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                                    tjs_ann *ann)
{
	if (!V_IS_ARRAY(inst))
		return true;
	size_t n = V_SIZE(inst);
	if (kw->min >= n)
		return true;
	if (ann)
		ann->all = true;
	if (kw->sub->boolean == 0) {
		tjs_report(c, kw->name, "array has %zu items, only %zu are allowed", n, kw->min);
		return false;
	}
	bool ok = true;
	tjs_kpush(c, kw->name);
	for (size_t i = kw->min; i < n; i++) {
		if (!eval_child_index(c, kw->sub, V_AT(inst, i), i)) {
			ok = false;
			if (!c->collect)
				break;
		}
	}
	tjs_kpop(c);
	return ok;
}

__attribute__((noinline)) static bool kw_contains(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                                  tjs_ann *ann)
{
	if (!V_IS_ARRAY(inst))
		return true;
	size_t n = V_SIZE(inst), count = 0;
	size_t mark = tjs_error_mark(c);
	/* 2019-09's unevaluatedItems does not see what contains matched */
	tjs_ann *a = kw->draft >= TJS_DRAFT_2020_12 ? ann : NULL;
	tjs_kpush(c, kw->name);
	for (size_t i = 0; i < n; i++) {
		if (eval_child_index(c, kw->sub, V_AT(inst, i), i)) {
			count++;
			tjs_ann_set(a, i);
			if (!a && !kw->has_max && count >= kw->min)
				break;
		}
	}
	tjs_kpop(c);
	tjs_error_rollback(c, mark);
	if (count < kw->min) {
		if (kw->min == 1)
			tjs_report(c, kw->name, "array does not contain an item matching contains");
		else
			tjs_report(c, "minContains",
			           "array contains %zu matching items, fewer than minContains %zu",
			           count, kw->min);
		return false;
	}
	if (kw->has_max && count > kw->max) {
		tjs_report(c, "maxContains",
		           "array contains %zu matching items, more than maxContains %zu", count,
		           kw->max);
		return false;
	}
	return true;
}

/* A fused `required` (tjs_kw.req_fused) is satisfied; when errors are
 * collected `required` checks and reports itself. */
static inline bool required_seen(const tjs_vctx *c, const tjs_kw *kw, uint64_t seen)
{
	return c->collect || (seen & kw->req_fused) == kw->req_fused;
}

__attribute__((noinline)) static bool kw_object_props(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                                      tjs_ann *ann)
{
	if (!V_IS_OBJECT(inst))
		return true;
	bool ok = true;
	uint64_t seen = 0; /* properties present, for a fused `required` */
	if (!ann && !kw->npatterns && !kw->sub) {
		/* properties alone: evaluated in name order (as errors are listed) */
#if V_GET_IS_FAST
		for (size_t i = 0; i < kw->nsubs && (ok || c->collect); i++) {
			INST v = V_GET(inst, kw->names[i]);
#else
		/* one pass over the members finds them all; then in name order */
		inst_t local[32], *found = local;
		tjs_arena_mark m = tjs_arena_save(&c->arena);
		if (kw->nsubs > 32 &&
		    !(found = tjs_arena_alloc(&c->arena, kw->nsubs * sizeof(*found)))) {
			c->fatal = true;
			return false;
		}
		for (size_t i = 0; i < kw->nsubs; i++)
			found[i] = NULL;
		{
			const char *key;
			size_t keylen;
			INST v;
			V_OBJ_FOREACH(inst, key, keylen, v)
			{
				ssize_t p = tjs_find_name(kw, key, keylen);
				if (p >= 0)
					found[p] = v;
			}
		}
		for (size_t i = 0; i < kw->nsubs && (ok || c->collect); i++) {
			INST v = found[i];
#endif
			if (!v)
				continue;
			seen |= (uint64_t)1 << (i & 63);
			tjs_kpush(c, "properties");
			tjs_kpush(c, kw->names[i]);
			bool r = eval_child_key(c, kw->subs[i], v, kw->names[i]);
			tjs_kpop(c);
			tjs_kpop(c);
			if (!r)
				ok = false;
		}
#if !V_GET_IS_FAST
		tjs_arena_restore(&c->arena, m);
#endif
		return ok && required_seen(c, kw, seen);
	}
	size_t idx = 0;
	const char *key;
	size_t keylen;
	INST v;
	V_OBJ_FOREACH(inst, key, keylen, v)
	{
		bool matched = false;
		ssize_t p = kw->nsubs ? tjs_find_name(kw, key, keylen) : -1;
		if (p >= 0) {
			matched = true;
			seen |= (uint64_t)1 << (p & 63);
			tjs_kpush(c, "properties");
			tjs_kpush(c, kw->names[p]);
			if (!eval_child_key(c, kw->subs[p], v, key))
				ok = false;
			tjs_kpop(c);
			tjs_kpop(c);
		}
		for (size_t k = 0; k < kw->npatterns && (ok || c->collect); k++) {
			int rc = search(c, kw->patterns[k].re, "patternProperties", key, keylen);
			if (rc < 0) {
				ok = false;
				continue;
			}
			if (rc == 0)
				continue;
			matched = true;
			tjs_kpush(c, "patternProperties");
			tjs_kpush(c, kw->patterns[k].source);
			if (!eval_child_key(c, kw->patterns[k].sub, v, key))
				ok = false;
			tjs_kpop(c);
			tjs_kpop(c);
		}
		if (!matched && kw->sub) {
			matched = true;
			if (kw->sub->boolean == 0) {
				tjs_report(c, kw->name2,
				           "additional property \"%s\" is not allowed", key);
				ok = false;
			} else {
				tjs_kpush(c, kw->name2);
				if (!eval_child_key(c, kw->sub, v, key))
					ok = false;
				tjs_kpop(c);
			}
		}
		if (matched)
			tjs_ann_set(ann, idx);
		if (!ok && !c->collect)
			return false;
		idx++;
	}
	return ok && required_seen(c, kw, seen);
}

__attribute__((noinline)) static bool kw_property_names(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                                        tjs_ann *ann)
{
	(void)ann;
	if (!V_IS_OBJECT(inst) || kw->sub->boolean == 1)
		return true;
	bool ok = true;
	const char *key;
	size_t keylen;
	INST v;
	V_OBJ_FOREACH(inst, key, keylen, v)
	{
		(void)v;
		KEY_TMP tmp;
		INST name = KEY_INST(&tmp, key, keylen);
		if (!name) {
			c->fatal = true;
			return false;
		}
		tjs_kpush(c, kw->name);
		bool r = eval(c, kw->sub, name, NULL);
		tjs_kpop(c);
		KEY_INST_FREE(name);
		if (!r) {
			ok = false;
			if (!c->collect)
				return false;
		}
	}
	return ok;
}

__attribute__((noinline)) static bool kw_unevaluated_items(tjs_vctx *c, const tjs_kw *kw, INST inst,
                                                           tjs_ann *ann)
{
	if (!V_IS_ARRAY(inst) || !ann || ann->all)
		return true;
	size_t n = V_SIZE(inst);
	bool ok = true;
	tjs_kpush(c, kw->name);
	for (size_t i = 0; i < n; i++) {
		if (tjs_ann_get(ann, i))
			continue;
		bool r;
		if (kw->sub->boolean == 0) {
			tjs_kpop(c);
			tjs_report(c, kw->name, "unevaluated item %zu is not allowed", i);
			tjs_kpush(c, kw->name);
			r = false;
		} else {
			r = eval_child_index(c, kw->sub, V_AT(inst, i), i);
		}
		if (!r) {
			ok = false;
			if (!c->collect)
				break;
		}
	}
	tjs_kpop(c);
	if (ok)
		ann->all = true;
	return ok;
}

__attribute__((noinline)) static bool kw_unevaluated_properties(tjs_vctx *c, const tjs_kw *kw,
                                                                INST inst, tjs_ann *ann)
{
	if (!V_IS_OBJECT(inst) || !ann || ann->all)
		return true;
	bool ok = true;
	size_t idx = 0;
	const char *key;
	size_t keylen;
	INST v;
	V_OBJ_FOREACH(inst, key, keylen, v)
	{
		(void)keylen;
		size_t i = idx++;
		if (tjs_ann_get(ann, i))
			continue;
		bool r;
		if (kw->sub->boolean == 0) {
			tjs_report(c, kw->name, "unevaluated property \"%s\" is not allowed", key);
			r = false;
		} else {
			tjs_kpush(c, kw->name);
			r = eval_child_key(c, kw->sub, v, key);
			tjs_kpop(c);
		}
		if (!r) {
			ok = false;
			if (!c->collect)
				break;
		}
	}
	if (ok)
		ann->all = true;
	return ok;
}

static bool run_keyword(tjs_vctx *c, const tjs_kw *kw, INST inst, tjs_ann *a)
{
	switch (kw->op) {
	case TJS_OP_TYPE:
		return kw_type(c, kw, inst, a);
	case TJS_OP_ENUM:
		return kw_enum(c, kw, inst, a);
	case TJS_OP_CONST:
		return kw_const(c, kw, inst, a);
	case TJS_OP_MULTIPLE_OF:
		return kw_multiple_of(c, kw, inst, a);
	case TJS_OP_MAXIMUM:
		return kw_maximum(c, kw, inst, a);
	case TJS_OP_MINIMUM:
		return kw_minimum(c, kw, inst, a);
	case TJS_OP_MAX_LENGTH:
		return kw_max_length(c, kw, inst, a);
	case TJS_OP_MIN_LENGTH:
		return kw_min_length(c, kw, inst, a);
	case TJS_OP_PATTERN:
		return kw_pattern(c, kw, inst, a);
	case TJS_OP_FORMAT:
		return kw_format(c, kw, inst, a);
	case TJS_OP_MAX_ITEMS:
		return kw_max_items(c, kw, inst, a);
	case TJS_OP_MIN_ITEMS:
		return kw_min_items(c, kw, inst, a);
	case TJS_OP_UNIQUE_ITEMS:
		return kw_unique_items(c, kw, inst, a);
	case TJS_OP_MAX_PROPERTIES:
		return kw_max_properties(c, kw, inst, a);
	case TJS_OP_MIN_PROPERTIES:
		return kw_min_properties(c, kw, inst, a);
	case TJS_OP_REQUIRED:
		return kw_required(c, kw, inst, a);
	case TJS_OP_DEPENDENT_REQUIRED:
		return kw_dependent_required(c, kw, inst, a);
	case TJS_OP_DEPENDENT_SCHEMAS:
		return kw_dependent_schemas(c, kw, inst, a);
	case TJS_OP_REF:
		return kw_ref(c, kw, inst, a);
	case TJS_OP_DYNAMIC_REF:
		return kw_dynamic_ref(c, kw, inst, a);
	case TJS_OP_RECURSIVE_REF:
		return kw_recursive_ref(c, kw, inst, a);
	case TJS_OP_ALL_OF:
		return kw_all_of(c, kw, inst, a);
	case TJS_OP_ANY_OF:
		return kw_any_of(c, kw, inst, a);
	case TJS_OP_ONE_OF:
		return kw_one_of(c, kw, inst, a);
	case TJS_OP_NOT:
		return kw_not(c, kw, inst, a);
	case TJS_OP_IF:
		return kw_if(c, kw, inst, a);
	case TJS_OP_PREFIX_ITEMS:
		return kw_prefix_items(c, kw, inst, a);
	case TJS_OP_ITEMS_REST:
		return kw_items_rest(c, kw, inst, a);
	case TJS_OP_CONTAINS:
		return kw_contains(c, kw, inst, a);
	case TJS_OP_OBJECT_PROPS:
		return kw_object_props(c, kw, inst, a);
	case TJS_OP_PROPERTY_NAMES:
		return kw_property_names(c, kw, inst, a);
	case TJS_OP_UNEVALUATED_ITEMS:
		return kw_unevaluated_items(c, kw, inst, a);
	case TJS_OP_UNEVALUATED_PROPERTIES:
		return kw_unevaluated_properties(c, kw, inst, a);
	}
	return true;
}

/* run_keyword with the two most frequent cases inline: a passing `type`
 * (nothing to record) and, without error collection, `$ref` (no keyword
 * location to keep). */
static inline bool step(tjs_vctx *c, const tjs_kw *kw, INST inst, tjs_ann *a)
{
	if (kw->op == TJS_OP_TYPE && (type_bits(inst, kw->draft) & kw->types))
		return true;
	if (kw->op == TJS_OP_REF && !c->collect)
		return eval(c, kw->sub, inst, a);
	return run_keyword(c, kw, inst, a);
}

static bool eval(tjs_vctx *c, const tjs_node *n, INST inst, tjs_ann *ann)
{
	if (c->fatal)
		return false;
	if (n->boolean >= 0) {
		if (n->boolean)
			return true;
		char *v = SHOWI(c, inst);
		tjs_report(c, NULL, "%s is not allowed here (false schema)", v ? v : "value");
		free(v);
		return false;
	}
	/* Instance nesting is bounded in eval_child; this bounds the C stack as
	 * a whole, including reference cycles that never reach a child. */
	if (c->node_depth >= c->max_depth * 8) {
		tjs_report(c, NULL, "schema evaluation deeper than %u levels (reference cycle?)",
		           c->max_depth * 8);
		c->fatal = true;
		return false;
	}
	c->node_depth++;
	bool pushed = false;
	if (c->scope[c->nscope - 1] != n->owner) {
		if (c->nscope < c->capscope)
			c->scope[c->nscope++] = n->owner;
		else if (!tjs_scope_push(c, n->owner)) {
			c->node_depth--;
			return false;
		}
		pushed = true;
	}
	bool ok = true;
	if (!n->has_uneval) {
		/* only annotation gathering (under unevaluated*) uses the arena */
		tjs_arena_mark mark;
		if (ann)
			mark = tjs_arena_save(&c->arena);
		for (size_t i = 0; i < n->nkw; i++) {
			if (!step(c, &n->kws[i], inst, ann)) {
				ok = false;
				if (!c->collect || c->fatal)
					break;
			}
		}
		if (ann)
			tjs_arena_restore(&c->arena, mark);
	} else {
		/* this node's own annotations, merged into the caller's if valid */
		tjs_arena_mark mark = tjs_arena_save(&c->arena);
		tjs_ann local;
		if (!ann_init(c, &local, inst))
			ok = false;
		for (size_t i = 0; ok || (c->collect && !c->fatal); i++) {
			if (i >= n->nkw)
				break;
			if (!step(c, &n->kws[i], inst, &local)) {
				ok = false;
				if (!c->collect || c->fatal)
					break;
			}
		}
		if (ok && ann)
			tjs_ann_merge(ann, &local);
		tjs_arena_restore(&c->arena, mark);
	}
	if (pushed)
		c->nscope--;
	c->node_depth--;
	return ok && !c->fatal;
}

static bool eval_child(tjs_vctx *c, const tjs_node *n, INST child, const char *key, size_t index)
{
	if (n->boolean == 1)
		return true;
	if (c->nipath >= c->max_depth) {
		tjs_report(c, NULL, "instance nested deeper than %u levels", c->max_depth);
		c->fatal = true;
		return false;
	}
	/* the path itself is only read by error reports */
	if (!c->collect)
		c->nipath++;
	else if (!tjs_ipush(c, key, index))
		return false;
	bool ok = eval(c, n, child, NULL);
	c->nipath--;
	return ok;
}

static bool eval_child_key(tjs_vctx *c, const tjs_node *n, INST child, const char *key)
{
	return eval_child(c, n, child, key, 0);
}

static bool eval_child_index(tjs_vctx *c, const tjs_node *n, INST child, size_t index)
{
	return eval_child(c, n, child, NULL, index);
}

bool EVAL_ENTRY(tjs_vctx *c, const tjs_node *n, INST inst)
{
	return eval(c, n, inst, NULL);
}
