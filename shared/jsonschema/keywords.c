/*
 * Keyword functions, bound to nodes at compile time. Each returns whether
 * the instance satisfies the keyword; with error collection on it records
 * why, otherwise it returns at the first failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "internal.h"

/* Short rendering of a value for a message, only when errors are wanted. */
#define SHOW(c, v) ((c)->collect ? tjs_json_short(v) : NULL)

static unsigned type_bits(const json_t *v, tjs_draft d)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return TJS_T_OBJECT;
	case JSON_ARRAY:
		return TJS_T_ARRAY;
	case JSON_STRING:
		return TJS_T_STRING;
	case JSON_INTEGER:
		return TJS_T_NUMBER | TJS_T_INTEGER;
	case JSON_REAL:
		/* Draft 4: an integer has no fraction or exponent part, so 1.0 is
		 * not one; but an integral real beyond 64 bits can only be an
		 * integer literal too big for jansson (read as a double). */
		if (d == TJS_DRAFT_4)
			return TJS_T_NUMBER | (tjs_is_integer(v) && fabs(json_real_value(v)) >= 9223372036854775808.0
						       ? TJS_T_INTEGER
						       : 0);
		return TJS_T_NUMBER | (tjs_is_integer(v) ? TJS_T_INTEGER : 0);
	case JSON_TRUE:
	case JSON_FALSE:
		return TJS_T_BOOLEAN;
	default:
		return TJS_T_NULL;
	}
}

bool tjs_kw_type(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	(void)ann;
	unsigned t = type_bits(inst, kw->draft);
	if (t & kw->types)
		return true;
	char *v = SHOW(c, inst), *ty = SHOW(c, kw->value);
	tjs_report(c, kw->name, "%s is not of type %s", v, ty);
	free(v);
	free(ty);
	return false;
}

bool tjs_kw_enum(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	(void)ann;
	size_t n = json_array_size(kw->value);
	for (size_t i = 0; i < n; i++)
		if (tjs_json_equal(inst, json_array_get(kw->value, i)))
			return true;
	char *v = SHOW(c, inst), *e = SHOW(c, kw->value);
	tjs_report(c, kw->name, "%s is not one of %s", v, e);
	free(v);
	free(e);
	return false;
}

bool tjs_kw_const(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	(void)ann;
	if (tjs_json_equal(inst, kw->value))
		return true;
	char *v = SHOW(c, inst), *e = SHOW(c, kw->value);
	tjs_report(c, kw->name, "%s is not the constant %s", v, e);
	free(v);
	free(e);
	return false;
}

bool tjs_kw_multiple_of(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	(void)ann;
	if (!json_is_number(inst))
		return true;
	bool ok;
	if (json_is_integer(inst) && kw->is_int) {
		ok = json_integer_value(inst) % kw->inum == 0;
	} else {
		double x = tjs_number(inst), q = x / kw->num;
		if (!isfinite(q))
			ok = isfinite(x) && fmod(x, kw->num) == 0; /* quotient overflow: exact remainder */
		else
			ok = fabs(q - nearbyint(q)) <= 1e-9 * fmax(1.0, fabs(q));
	}
	if (ok)
		return true;
	char *v = SHOW(c, inst), *m = SHOW(c, kw->value);
	tjs_report(c, kw->name, "%s is not a multiple of %s", v, m);
	free(v);
	free(m);
	return false;
}

/* <0, 0, >0 as inst compares to the keyword's number. */
static int num_cmp(const json_t *inst, const tjs_kw *kw)
{
	if (json_is_integer(inst) && kw->is_int) {
		json_int_t a = json_integer_value(inst);
		return a < kw->inum ? -1 : a > kw->inum;
	}
	double a = tjs_number(inst);
	return a < kw->num ? -1 : a > kw->num;
}

bool tjs_kw_maximum(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	(void)ann;
	if (!json_is_number(inst))
		return true;
	int r = num_cmp(inst, kw);
	if (r < 0 || (r == 0 && !kw->flag))
		return true;
	char *v = SHOW(c, inst), *m = SHOW(c, kw->value);
	if (kw->flag)
		tjs_report(c, kw->name, "%s is not less than the exclusive maximum of %s", v, m);
	else
		tjs_report(c, kw->name, "%s is greater than the maximum of %s", v, m);
	free(v);
	free(m);
	return false;
}

bool tjs_kw_minimum(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	(void)ann;
	if (!json_is_number(inst))
		return true;
	int r = num_cmp(inst, kw);
	if (r > 0 || (r == 0 && !kw->flag))
		return true;
	char *v = SHOW(c, inst), *m = SHOW(c, kw->value);
	if (kw->flag)
		tjs_report(c, kw->name, "%s is not greater than the exclusive minimum of %s", v, m);
	else
		tjs_report(c, kw->name, "%s is less than the minimum of %s", v, m);
	free(v);
	free(m);
	return false;
}

bool tjs_kw_max_length(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	(void)ann;
	if (!json_is_string(inst) || json_string_length(inst) <= kw->max)
		return true; /* bytes >= code points: most strings need no count */
	size_t n = tjs_utf8_length(json_string_value(inst), json_string_length(inst));
	if (n <= kw->max)
		return true;
	char *v = SHOW(c, inst);
	tjs_report(c, kw->name, "%s is longer than %zu characters", v, kw->max);
	free(v);
	return false;
}

bool tjs_kw_min_length(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	(void)ann;
	if (!json_is_string(inst))
		return true;
	size_t n = tjs_utf8_length(json_string_value(inst), json_string_length(inst));
	if (n >= kw->min)
		return true;
	char *v = SHOW(c, inst);
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
	int rc = tjs_regex_search(re, s, n, md, c->schema->mctx);
	if (rc < 0)
		tjs_report(c, kwname, "pattern matching gave up (match or depth limit reached)");
	return rc;
}

bool tjs_kw_pattern(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	(void)ann;
	if (!json_is_string(inst))
		return true;
	int rc = search(c, kw->re, kw->name, json_string_value(inst), json_string_length(inst));
	if (rc > 0)
		return true;
	if (rc == 0) {
		char *v = SHOW(c, inst);
		tjs_report(c, kw->name, "%s does not match the pattern %s", v, json_string_value(kw->value));
		free(v);
	}
	return false;
}

bool tjs_kw_format(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	(void)ann;
	if (!json_is_string(inst) || kw->format(json_string_value(inst), json_string_length(inst)))
		return true;
	char *v = SHOW(c, inst);
	tjs_report(c, kw->name, "%s is not a valid %s", v, json_string_value(kw->value));
	free(v);
	return false;
}

bool tjs_kw_max_items(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	(void)ann;
	if (!json_is_array(inst) || json_array_size(inst) <= kw->max)
		return true;
	tjs_report(c, kw->name, "array has %zu items, more than the maximum of %zu", json_array_size(inst), kw->max);
	return false;
}

bool tjs_kw_min_items(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	(void)ann;
	if (!json_is_array(inst) || json_array_size(inst) >= kw->min)
		return true;
	tjs_report(c, kw->name, "array has %zu items, fewer than the minimum of %zu", json_array_size(inst), kw->min);
	return false;
}

/* A hash consistent with tjs_json_equal (1 and 1.0 hash alike). */
static uint64_t json_hash(const json_t *v, unsigned depth)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)json_typeof(v);
	if (depth > 64)
		return h;
	switch (json_typeof(v)) {
	case JSON_INTEGER:
	case JSON_REAL: {
		double d = tjs_number(v);
		if (d == 0)
			d = 0; /* -0 */
		uint64_t bits;
		memcpy(&bits, &d, sizeof(bits));
		return bits * 0x9E3779B97F4A7C15ull;
	}
	case JSON_STRING: {
		const unsigned char *s = (const unsigned char *)json_string_value(v);
		for (size_t i = 0; i < json_string_length(v); i++)
			h = (h ^ s[i]) * 1099511628211ull;
		return h;
	}
	case JSON_ARRAY: {
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e) h = (h ^ json_hash(e, depth + 1)) * 1099511628211ull;
		return h;
	}
	case JSON_OBJECT: {
		/* order-independent: members are summed */
		const char *k;
		json_t *e;
		uint64_t sum = 0;
		json_object_foreach((json_t *)v, k, e)
		{
			uint64_t kh = 1469598103934665603ull;
			for (const char *p = k; *p; p++)
				kh = (kh ^ (unsigned char)*p) * 1099511628211ull;
			sum += kh * 31 + json_hash(e, depth + 1);
		}
		return h ^ sum;
	}
	case JSON_TRUE:
	case JSON_FALSE:
		return h ^ (uint64_t)json_typeof(v);
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

bool tjs_kw_unique_items(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	(void)ann;
	size_t n = json_array_size(inst);
	if (!json_is_array(inst) || n < 2)
		return true;
	size_t dup_a = 0, dup_b = 0;
	bool dup = false;
	if (n <= 16) {
		for (size_t i = 0; i < n && !dup; i++)
			for (size_t j = i + 1; j < n && !dup; j++)
				if (tjs_json_equal(json_array_get(inst, i), json_array_get(inst, j))) {
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
			hs[i] = (struct hitem){json_hash(json_array_get(inst, i), 0), i};
		qsort(hs, n, sizeof(*hs), cmp_hitem);
		for (size_t i = 0; i + 1 < n && !dup; i++)
			for (size_t j = i + 1; j < n && hs[j].h == hs[i].h && !dup; j++)
				if (tjs_json_equal(json_array_get(inst, hs[i].i), json_array_get(inst, hs[j].i))) {
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

bool tjs_kw_max_properties(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	(void)ann;
	if (!json_is_object(inst) || json_object_size(inst) <= kw->max)
		return true;
	tjs_report(c, kw->name, "object has %zu properties, more than the maximum of %zu", json_object_size(inst),
		  kw->max);
	return false;
}

bool tjs_kw_min_properties(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	(void)ann;
	if (!json_is_object(inst) || json_object_size(inst) >= kw->min)
		return true;
	tjs_report(c, kw->name, "object has %zu properties, fewer than the minimum of %zu", json_object_size(inst),
		  kw->min);
	return false;
}

static bool require_all(tjs_vctx *c, const char *kwname, const json_t *inst, const json_t *list, const char *because)
{
	bool ok = true;
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e)
	{
		if (!json_is_string(e) || json_object_get(inst, json_string_value(e)))
			continue;
		ok = false;
		if (!c->collect)
			return false;
		if (because)
			tjs_report(c, kwname, "property \"%s\" is required when \"%s\" is present", json_string_value(e),
				  because);
		else
			tjs_report(c, kwname, "required property \"%s\" is missing", json_string_value(e));
	}
	return ok;
}

bool tjs_kw_required(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	(void)ann;
	if (!json_is_object(inst))
		return true;
	return require_all(c, kw->name, inst, kw->value, NULL);
}

bool tjs_kw_dependent_required(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	(void)ann;
	if (!json_is_object(inst))
		return true;
	bool ok = true;
	for (size_t i = 0; i < kw->nsubs; i++) {
		if (!json_object_get(inst, kw->names[i]))
			continue;
		tjs_kpush(c, kw->name);
		bool r = require_all(c, kw->names[i], inst, json_object_get(kw->value, kw->names[i]), kw->names[i]);
		tjs_kpop(c);
		if (!r) {
			ok = false;
			if (!c->collect)
				return false;
		}
	}
	return ok;
}

bool tjs_kw_dependent_schemas(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	if (!json_is_object(inst))
		return true;
	bool ok = true;
	for (size_t i = 0; i < kw->nsubs; i++) {
		if (!json_object_get(inst, kw->names[i]))
			continue;
		tjs_kpush(c, kw->name);
		tjs_kpush(c, kw->names[i]);
		bool r = tjs_eval(c, kw->subs[i], inst, ann);
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

static bool eval_in(tjs_vctx *c, const char *name, const tjs_node *n, const json_t *inst, tjs_ann *ann)
{
	tjs_kpush(c, name);
	bool ok = tjs_eval(c, n, inst, ann);
	tjs_kpop(c);
	return ok;
}

bool tjs_kw_ref(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	return eval_in(c, kw->name, kw->sub, inst, ann);
}

bool tjs_kw_dynamic_ref(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	const tjs_node *target = kw->sub;
	if (kw->dyn_name) {
		/* the outermost resource in the dynamic scope declaring the anchor */
		bool found = false;
		for (size_t i = 0; i < c->nscope && !found; i++) {
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

bool tjs_kw_recursive_ref(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	const tjs_node *target = kw->sub;
	if (target->owner && target->owner->recursive_anchor && target->json == target->owner->json) {
		for (size_t i = 0; i < c->nscope; i++) {
			if (c->scope[i]->recursive_anchor && c->scope[i]->root_node) {
				target = c->scope[i]->root_node;
				break;
			}
		}
	}
	return eval_in(c, kw->name, target, inst, ann);
}

bool tjs_kw_all_of(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	bool ok = true;
	for (size_t i = 0; i < kw->nsubs; i++) {
		tjs_kpush(c, kw->name);
		tjs_kpush_index(c, i);
		bool r = tjs_eval(c, kw->subs[i], inst, ann);
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
static bool branch(tjs_vctx *c, const tjs_kw *kw, size_t i, const json_t *inst, tjs_ann *ann, tjs_ann *tmp)
{
	if (ann && !tjs_ann_init(c, tmp, inst))
		return false;
	tjs_kpush(c, kw->name);
	tjs_kpush_index(c, i);
	bool r = tjs_eval(c, kw->subs[i], inst, ann ? tmp : NULL);
	tjs_kpop(c);
	tjs_kpop(c);
	return r;
}

bool tjs_kw_any_of(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
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
	char *v = SHOW(c, inst);
	tjs_error_summary(c, mark, kw->name, "%s does not match any of the schemas in anyOf", v);
	free(v);
	return false;
}

bool tjs_kw_one_of(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
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
	char *v = SHOW(c, inst);
	if (matches == 0) {
		tjs_error_summary(c, mark, kw->name, "%s does not match any of the schemas in oneOf", v);
	} else {
		tjs_error_rollback(c, mark);
		tjs_report(c, kw->name, "%s matches more than one schema in oneOf (%zu and %zu)", v, first, second);
	}
	free(v);
	return false;
}

bool tjs_kw_not(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	(void)ann;
	size_t mark = tjs_error_mark(c);
	bool r = eval_in(c, kw->name, kw->sub, inst, NULL);
	tjs_error_rollback(c, mark);
	if (!r)
		return true;
	char *v = SHOW(c, inst);
	tjs_report(c, kw->name, "%s must not be valid against the schema in not", v);
	free(v);
	return false;
}

bool tjs_kw_if(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	size_t mark = tjs_error_mark(c);
	tjs_ann tmp;
	if (ann && !tjs_ann_init(c, &tmp, inst))
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

bool tjs_kw_prefix_items(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	if (!json_is_array(inst))
		return true;
	size_t n = json_array_size(inst);
	bool ok = true;
	for (size_t i = 0; i < kw->nsubs && i < n; i++) {
		tjs_kpush(c, kw->name);
		tjs_kpush_index(c, i);
		bool r = tjs_eval_child_index(c, kw->subs[i], json_array_get(inst, i), i);
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

bool tjs_kw_items_rest(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	if (!json_is_array(inst))
		return true;
	size_t n = json_array_size(inst);
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
		if (!tjs_eval_child_index(c, kw->sub, json_array_get(inst, i), i)) {
			ok = false;
			if (!c->collect)
				break;
		}
	}
	tjs_kpop(c);
	return ok;
}

bool tjs_kw_contains(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	if (!json_is_array(inst))
		return true;
	size_t n = json_array_size(inst), count = 0;
	size_t mark = tjs_error_mark(c);
	/* 2019-09's unevaluatedItems does not see what contains matched */
	tjs_ann *a = kw->draft >= TJS_DRAFT_2020_12 ? ann : NULL;
	tjs_kpush(c, kw->name);
	for (size_t i = 0; i < n; i++) {
		if (tjs_eval_child_index(c, kw->sub, json_array_get(inst, i), i)) {
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
			tjs_report(c, "minContains", "array contains %zu matching items, fewer than minContains %zu", count,
				  kw->min);
		return false;
	}
	if (kw->has_max && count > kw->max) {
		tjs_report(c, "maxContains", "array contains %zu matching items, more than maxContains %zu", count,
			  kw->max);
		return false;
	}
	return true;
}

static ssize_t find_name(const tjs_kw *kw, const char *key)
{
	size_t lo = 0, hi = kw->nsubs;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int r = strcmp(kw->names[mid], key);
		if (r == 0)
			return (ssize_t)mid;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

bool tjs_kw_object_props(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	if (!json_is_object(inst))
		return true;
	bool ok = true;
	if (!ann && !kw->npatterns && !kw->sub) {
		/* properties alone: look each up rather than scan the instance */
		for (size_t i = 0; i < kw->nsubs; i++) {
			const json_t *v = json_object_get(inst, kw->names[i]);
			if (!v)
				continue;
			tjs_kpush(c, "properties");
			tjs_kpush(c, kw->names[i]);
			bool r = tjs_eval_child_key(c, kw->subs[i], v, kw->names[i]);
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
	size_t idx = 0;
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)inst, key, v)
	{
		bool matched = false;
		ssize_t p = kw->nsubs ? find_name(kw, key) : -1;
		if (p >= 0) {
			matched = true;
			tjs_kpush(c, "properties");
			tjs_kpush(c, kw->names[p]);
			if (!tjs_eval_child_key(c, kw->subs[p], v, key))
				ok = false;
			tjs_kpop(c);
			tjs_kpop(c);
		}
		for (size_t k = 0; k < kw->npatterns && (ok || c->collect); k++) {
			int rc = search(c, kw->patterns[k].re, "patternProperties", key, strlen(key));
			if (rc < 0) {
				ok = false;
				continue;
			}
			if (rc == 0)
				continue;
			matched = true;
			tjs_kpush(c, "patternProperties");
			tjs_kpush(c, kw->patterns[k].source);
			if (!tjs_eval_child_key(c, kw->patterns[k].sub, v, key))
				ok = false;
			tjs_kpop(c);
			tjs_kpop(c);
		}
		if (!matched && kw->sub) {
			matched = true;
			if (kw->sub->boolean == 0) {
				tjs_report(c, kw->name2, "additional property \"%s\" is not allowed", key);
				ok = false;
			} else {
				tjs_kpush(c, kw->name2);
				if (!tjs_eval_child_key(c, kw->sub, v, key))
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
	return ok;
}

bool tjs_kw_property_names(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	(void)ann;
	if (!json_is_object(inst) || kw->sub->boolean == 1)
		return true;
	bool ok = true;
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)inst, key, v)
	{
		json_t *name = json_string(key);
		if (!name) {
			c->fatal = true;
			return false;
		}
		tjs_kpush(c, kw->name);
		bool r = tjs_eval(c, kw->sub, name, NULL);
		tjs_kpop(c);
		json_decref(name);
		if (!r) {
			ok = false;
			if (!c->collect)
				return false;
		}
	}
	return ok;
}

bool tjs_kw_unevaluated_items(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	if (!json_is_array(inst) || !ann || ann->all)
		return true;
	size_t n = json_array_size(inst);
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
			r = tjs_eval_child_index(c, kw->sub, json_array_get(inst, i), i);
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

bool tjs_kw_unevaluated_properties(tjs_vctx *c, const tjs_kw *kw, const json_t *inst, tjs_ann *ann)
{
	if (!json_is_object(inst) || !ann || ann->all)
		return true;
	bool ok = true;
	size_t idx = 0;
	const char *key;
	json_t *v;
	json_object_foreach((json_t *)inst, key, v)
	{
		size_t i = idx++;
		if (tjs_ann_get(ann, i))
			continue;
		bool r;
		if (kw->sub->boolean == 0) {
			tjs_report(c, kw->name, "unevaluated property \"%s\" is not allowed", key);
			r = false;
		} else {
			tjs_kpush(c, kw->name);
			r = tjs_eval_child_key(c, kw->sub, v, key);
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
