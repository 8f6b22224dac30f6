/*
 * Evaluation driver: walks compiled nodes over an instance with per-call
 * state only (so one compiled schema serves any number of threads), keeps
 * the instance and keyword locations for error messages, the dynamic scope
 * for $dynamicRef/$recursiveRef, and the evaluated-member annotations that
 * unevaluatedProperties/unevaluatedItems consume.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static bool grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return true;
	size_t c = *cap ? *cap * 2 : 32;
	while (c < need)
		c *= 2;
	void *p = realloc(*arr, c * elem);
	if (!p)
		return false;
	*arr = p;
	*cap = c;
	return true;
}

static void oom(tjs_vctx *c)
{
	c->fatal = true;
}

void tjs_kpush(tjs_vctx *c, const char *name)
{
	if (!c->collect)
		return;
	if (!grow((void **)&c->kpath, &c->capkpath, c->nkpath + 1, sizeof(*c->kpath))) {
		oom(c);
		return;
	}
	c->kpath[c->nkpath++] = (tjs_seg){name, 0};
}

void tjs_kpush_index(tjs_vctx *c, size_t index)
{
	if (!c->collect)
		return;
	if (!grow((void **)&c->kpath, &c->capkpath, c->nkpath + 1, sizeof(*c->kpath))) {
		oom(c);
		return;
	}
	c->kpath[c->nkpath++] = (tjs_seg){NULL, index};
}

void tjs_kpop(tjs_vctx *c)
{
	if (c->collect && c->nkpath)
		c->nkpath--;
}

static bool ipush(tjs_vctx *c, const char *key, size_t index)
{
	if (!grow((void **)&c->ipath, &c->capipath, c->nipath + 1, sizeof(*c->ipath))) {
		oom(c);
		return false;
	}
	c->ipath[c->nipath++] = (tjs_seg){key, index};
	return true;
}

static char *render_path(const tjs_seg *segs, size_t n, const char *last)
{
	tjs_buf b = {0};
	for (size_t i = 0; i < n; i++) {
		if (segs[i].name)
			tjs_pointer_append(&b, segs[i].name);
		else
			tjs_pointer_append_index(&b, segs[i].index);
	}
	if (last)
		tjs_pointer_append(&b, last);
	return tjs_buf_take(&b);
}

static void push_error(tjs_vctx *c, char *msg, const char *kw)
{
	tjs_result *r = c->result;
	tjs_error e = {render_path(c->ipath, c->nipath, NULL), render_path(c->kpath, c->nkpath, kw), msg};
	if (!e.instance_location || !e.keyword_location || !e.message ||
	    !grow((void **)&r->errors, &c->nerrors_cap, r->count + 1, sizeof(*r->errors))) {
		free(e.instance_location);
		free(e.keyword_location);
		free(e.message);
		oom(c);
		return;
	}
	r->errors[r->count++] = e;
}

void tjs_report(tjs_vctx *c, const char *kw, const char *fmt, ...)
{
	if (!c->collect)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *msg = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (msg) {
		va_start(ap, fmt);
		vsnprintf(msg, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	push_error(c, msg, kw);
}

size_t tjs_error_mark(const tjs_vctx *c)
{
	return c->collect ? c->result->count : 0;
}

static void error_free(tjs_error *e)
{
	free(e->instance_location);
	free(e->keyword_location);
	free(e->message);
}

void tjs_error_rollback(tjs_vctx *c, size_t mark)
{
	if (!c->collect)
		return;
	while (c->result->count > mark)
		error_free(&c->result->errors[--c->result->count]);
}

void tjs_error_summary(tjs_vctx *c, size_t mark, const char *kw, const char *fmt, ...)
{
	if (!c->collect)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *msg = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (msg) {
		va_start(ap, fmt);
		vsnprintf(msg, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	size_t before = c->result->count;
	push_error(c, msg, kw);
	if (c->result->count == before + 1 && before > mark) {
		tjs_error e = c->result->errors[before];
		memmove(&c->result->errors[mark + 1], &c->result->errors[mark], (before - mark) * sizeof(e));
		c->result->errors[mark] = e;
	}
}

bool tjs_ann_init(tjs_vctx *c, tjs_ann *a, const json_t *inst)
{
	size_t n = json_is_object(inst) ? json_object_size(inst) : json_is_array(inst) ? json_array_size(inst) : 0;
	a->n = n;
	a->all = false;
	a->bits = NULL;
	if (n) {
		a->bits = tjs_arena_alloc(&c->arena, ((n + 63) / 64) * sizeof(uint64_t));
		if (!a->bits) {
			oom(c);
			return false;
		}
	}
	return true;
}

void tjs_ann_set(tjs_ann *a, size_t i)
{
	if (a && i < a->n)
		a->bits[i / 64] |= (uint64_t)1 << (i % 64);
}

bool tjs_ann_get(const tjs_ann *a, size_t i)
{
	return a->all || (i < a->n && (a->bits[i / 64] >> (i % 64) & 1));
}

void tjs_ann_merge(tjs_ann *into, const tjs_ann *from)
{
	if (!into || !from)
		return;
	if (from->all)
		into->all = true;
	size_t m = into->n < from->n ? into->n : from->n;
	size_t words = (m + 63) / 64;
	for (size_t i = 0; i < words; i++)
		into->bits[i] |= from->bits[i];
}

pcre2_match_data *tjs_match_data(tjs_vctx *c)
{
	if (!c->md) {
		c->md = pcre2_match_data_create(1, NULL);
		if (!c->md)
			oom(c);
	}
	return c->md;
}

bool tjs_eval(tjs_vctx *c, const tjs_node *n, const json_t *inst, tjs_ann *ann)
{
	if (c->fatal)
		return false;
	if (n->boolean >= 0) {
		if (n->boolean)
			return true;
		char *v = c->collect ? tjs_json_short(inst) : NULL;
		tjs_report(c, NULL, "%s is not allowed here (false schema)", v ? v : "value");
		free(v);
		return false;
	}
	/* Instance nesting is bounded in eval_child; this bounds the C stack as
	 * a whole, including reference cycles that never reach a child. */
	if (c->node_depth >= c->max_depth * 8) {
		tjs_report(c, NULL, "schema evaluation deeper than %u levels (reference cycle?)", c->max_depth * 8);
		c->fatal = true;
		return false;
	}
	c->node_depth++;
	bool pushed = false;
	if (c->nscope == 0 || c->scope[c->nscope - 1] != n->owner) {
		if (!grow((void **)&c->scope, &c->capscope, c->nscope + 1, sizeof(*c->scope))) {
			oom(c);
			c->node_depth--;
			return false;
		}
		c->scope[c->nscope++] = n->owner;
		pushed = true;
	}
	tjs_arena_mark mark = tjs_arena_save(&c->arena);
	tjs_ann local, *a = ann;
	bool ok = true;
	if (n->has_uneval) {
		if (!tjs_ann_init(c, &local, inst))
			ok = false;
		a = &local;
	}
	for (size_t i = 0; ok || (c->collect && !c->fatal); i++) {
		if (i >= n->nkw)
			break;
		const tjs_kw *kw = &n->kws[i];
		if (!kw->fn(c, kw, inst, a)) {
			ok = false;
			if (!c->collect || c->fatal)
				break;
		}
	}
	if (n->has_uneval && ok && ann)
		tjs_ann_merge(ann, &local);
	tjs_arena_restore(&c->arena, mark);
	if (pushed)
		c->nscope--;
	c->node_depth--;
	return ok && !c->fatal;
}

static bool eval_child(tjs_vctx *c, const tjs_node *n, const json_t *child, const char *key, size_t index)
{
	if (n->boolean == 1)
		return true;
	if (c->nipath >= c->max_depth) {
		tjs_report(c, NULL, "instance nested deeper than %u levels", c->max_depth);
		c->fatal = true;
		return false;
	}
	if (!ipush(c, key, index))
		return false;
	bool ok = tjs_eval(c, n, child, NULL);
	c->nipath--;
	return ok;
}

bool tjs_eval_child_key(tjs_vctx *c, const tjs_node *n, const json_t *child, const char *key)
{
	return eval_child(c, n, child, key, 0);
}

bool tjs_eval_child_index(tjs_vctx *c, const tjs_node *n, const json_t *child, size_t index)
{
	return eval_child(c, n, child, NULL, index);
}

TJS_API bool tjs_validate(const tjs_schema *schema, const json_t *instance, tjs_result *result,
			  size_t max_errors)
{
	if (result) {
		result->count = 0;
		result->errors = NULL;
	}
	if (!schema || !instance)
		return false;
	tjs_vctx c = {0};
	c.schema = schema;
	c.result = result;
	c.collect = result != NULL;
	c.max_depth = schema->opts.max_depth;
	bool ok = tjs_eval(&c, schema->root, instance, NULL);
	if (c.fatal) {
		ok = false;
		if (result && result->count == 0)
			tjs_report(&c, NULL, "validation aborted (out of memory)");
	}
	if (result && max_errors && result->count > max_errors) {
		for (size_t i = max_errors; i < result->count; i++)
			error_free(&result->errors[i]);
		result->count = max_errors;
	}
	/* errors rolled back by passing branches may leave an empty array: a
	 * caller has no reason to clear a result of a valid document */
	if (result && result->count == 0) {
		free(result->errors);
		result->errors = NULL;
	}
	free(c.ipath);
	free(c.kpath);
	free(c.scope);
	if (c.md)
		pcre2_match_data_free(c.md);
	tjs_arena_free(&c.arena);
	return ok;
}

TJS_API void tjs_result_clear(tjs_result *result)
{
	if (!result)
		return;
	for (size_t i = 0; i < result->count; i++)
		error_free(&result->errors[i]);
	free(result->errors);
	result->errors = NULL;
	result->count = 0;
}
