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

/* Grows a stack; `inl` is its initial storage inside the context. */
static bool grow_from(void **arr, size_t *cap, size_t need, size_t elem, void *inl)
{
	if (need <= *cap)
		return true;
	size_t c = *cap ? *cap * 2 : 32;
	while (c < need)
		c *= 2;
	void *p;
	if (inl && *arr == inl) {
		p = malloc(c * elem);
		if (p)
			memcpy(p, inl, *cap * elem);
	} else {
		p = realloc(*arr, c * elem);
	}
	if (!p)
		return false;
	*arr = p;
	*cap = c;
	return true;
}

static bool grow(void **arr, size_t *cap, size_t need, size_t elem)
{
	return grow_from(arr, cap, need, elem, NULL);
}

static void oom(tjs_vctx *c)
{
	c->fatal = true;
}

void tjs_kpush_collect(tjs_vctx *c, const char *name)
{
	if (!grow((void **)&c->kpath, &c->capkpath, c->nkpath + 1, sizeof(*c->kpath))) {
		oom(c);
		return;
	}
	c->kpath[c->nkpath++] = (tjs_seg){name, 0};
}

void tjs_kpush_index_collect(tjs_vctx *c, size_t index)
{
	if (!grow((void **)&c->kpath, &c->capkpath, c->nkpath + 1, sizeof(*c->kpath))) {
		oom(c);
		return;
	}
	c->kpath[c->nkpath++] = (tjs_seg){NULL, index};
}

bool tjs_ipush(tjs_vctx *c, const char *key, size_t index)
{
	if (!grow_from((void **)&c->ipath, &c->capipath, c->nipath + 1, sizeof(*c->ipath),
	               c->ipath_inline)) {
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
	tjs_error e = {render_path(c->ipath, c->nipath, NULL), render_path(c->kpath, c->nkpath, kw),
	               msg};
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
		memmove(&c->result->errors[mark + 1], &c->result->errors[mark],
		        (before - mark) * sizeof(e));
		c->result->errors[mark] = e;
	}
}

bool tjs_scope_push(tjs_vctx *c, const tjs_resource *r)
{
	if (!grow_from((void **)&c->scope, &c->capscope, c->nscope + 1, sizeof(*c->scope),
	               c->scope_inline)) {
		oom(c);
		return false;
	}
	c->scope[c->nscope++] = r;
	return true;
}

bool tjs_ann_init_n(tjs_vctx *c, tjs_ann *a, size_t n)
{
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

/* One match data block per thread, kept between validations: matches
 * only need it for the duration of pcre2_match (the result is whether it
 * matched), and creating one per validation was a malloc per event. The key
 * frees it when a thread ends, and is deleted if the library is unloaded
 * (the broker plugin) so that no destructor outlives the code. */
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static pthread_key_t md_key;
static bool md_key_ok;
static __thread pcre2_match_data *md_tls;

static void md_destroy(void *p)
{
	pcre2_match_data_free(p);
}

static void md_key_init(void)
{
	md_key_ok = pthread_key_create(&md_key, md_destroy) == 0;
}

__attribute__((destructor)) static void md_key_fini(void)
{
	if (md_key_ok) {
		md_key_ok = false;
		pthread_key_delete(md_key);
	}
}

pcre2_match_data *tjs_match_data(tjs_vctx *c)
{
	if (c->md)
		return c->md;
	if (!md_tls) {
		pthread_once(&md_once, md_key_init);
		md_tls = pcre2_match_data_create(1, NULL);
		if (!md_tls) {
			oom(c);
			return NULL;
		}
		if (md_key_ok)
			pthread_setspecific(md_key, md_tls);
	}
	return c->md = md_tls;
}

/* Runs the validation; errors only on a second pass over an invalid
 * instance, so that the common case (valid) builds no locations at all. */
static bool validate_any(const tjs_schema *schema, const json_t *jinst, const tjs_value *vinst,
                         tjs_result *result, size_t max_errors)
{
	if (result) {
		result->count = 0;
		result->errors = NULL;
	}
	if (!schema || (!jinst && !vinst))
		return false;
	bool ok = false;
	for (int pass = result ? 0 : 1; pass < 2 && !ok; pass++) {
		tjs_vctx c = {0};
		c.schema = schema;
		c.collect = pass == 1 && result != NULL;
		c.result = c.collect ? result : NULL;
		c.max_depth = schema->opts.max_depth;
		c.ipath = c.ipath_inline;
		c.capipath = sizeof(c.ipath_inline) / sizeof(c.ipath_inline[0]);
		c.scope = c.scope_inline;
		c.capscope = sizeof(c.scope_inline) / sizeof(c.scope_inline[0]);
		/* a sentinel under the scope (no resource), so that eval need not
		 * test for an empty stack; scope readers start at 1 */
		c.scope[c.nscope++] = NULL;
		ok = jinst ? tjs_eval_json(&c, schema->root, jinst)
		           : tjs_eval_doc(&c, schema->root, vinst);
		if (c.fatal) {
			ok = false;
			if (c.collect && result->count == 0)
				tjs_report(&c, NULL, "validation aborted (out of memory)");
		}
		if (c.collect && max_errors && result->count > max_errors) {
			for (size_t i = max_errors; i < result->count; i++)
				error_free(&result->errors[i]);
			result->count = max_errors;
		}
		/* errors rolled back by passing branches may leave an empty
		 * array: a caller has no reason to clear a result of a valid
		 * document */
		if (c.collect && result->count == 0) {
			free(result->errors);
			result->errors = NULL;
		}
		if (c.ipath != c.ipath_inline)
			free(c.ipath);
		free(c.kpath);
		if (c.scope != c.scope_inline)
			free(c.scope);
		tjs_arena_free(&c.arena);
	}
	return ok;
}

TJS_API bool tjs_validate(const tjs_schema *schema, const json_t *instance, tjs_result *result,
                          size_t max_errors)
{
	return validate_any(schema, instance, NULL, result, max_errors);
}

TJS_API bool tjs_validate_value(const tjs_schema *schema, const tjs_value *instance,
                                tjs_result *result, size_t max_errors)
{
	return validate_any(schema, NULL, instance, result, max_errors);
}

TJS_API bool tjs_validate_bytes(const tjs_schema *schema, const char *bytes, size_t len,
                                unsigned flags, tjs_result *result, size_t max_errors)
{
	if (result) {
		result->count = 0;
		result->errors = NULL;
	}
	if (!schema)
		return false;
	char err[200];
	tjs_doc *doc = tjs_doc_parse(bytes, len, flags, err, sizeof(err));
	if (!doc) {
		tjs_error *e = result ? calloc(1, sizeof(*e)) : NULL;
		if (e) {
			char msg[256];
			snprintf(msg, sizeof(msg), "not valid JSON: %s", err);
			e->instance_location = strdup("");
			e->keyword_location = strdup("");
			e->message = strdup(msg);
			if (e->instance_location && e->keyword_location && e->message) {
				result->errors = e;
				result->count = 1;
			} else {
				error_free(e);
				free(e);
			}
		}
		return false;
	}
	bool ok = validate_any(schema, NULL, &doc->root, result, max_errors);
	tjs_doc_free(doc);
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
