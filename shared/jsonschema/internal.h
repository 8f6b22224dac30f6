/*
 * Internal interfaces of the JSON Schema validator (shared/jsonschema/).
 *
 *   util.c      string buffer, arena, hash maps
 *   uri.c       RFC 3986 parsing and reference resolution
 *   pointer.c   JSON pointers (RFC 6901) and URI fragments
 *   regex.c     ECMA-262 patterns translated to PCRE2
 *   format.c    `format` checkers
 *   registry.c  documents by URI, shipped meta-schemas, cached meta-schema validators
 *   resolve.c   finds resources, anchors and subschemas in a document per draft
 *   compile.c   builds the node graph (keywords bound to operations, refs resolved)
 *   eval_impl.h keyword functions and the evaluation driver, written once over
 *               an instance interface and compiled twice:
 *   eval_json.c   for jansson values (tjs_validate)
 *   eval_doc.c    for tjs_doc values (tjs_validate_value, tjs_validate_bytes)
 *   doc.c       tjs_doc: JSON parsed into one arena, read API, compact text
 *   validate.c  entry points, dynamic scope, annotations, errors
 */
#ifndef TJS_INTERNAL_H
#define TJS_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>
#include <stdint.h>
#include <stdarg.h>
#include <string.h>
#include <sys/types.h>

#include "tributary/jsonschema.h"

#define TJS_API __attribute__((visibility("default")))
#define TJS_DEFAULT_MAX_DEPTH 200u
/* PCRE2 bounds so that no pattern/input pair can stall a broker thread. */
#define TJS_PCRE2_MATCH_LIMIT 100000u
#define TJS_PCRE2_DEPTH_LIMIT 1000u
#define TJS_MAX_SCHEMA_NESTING 512u

/* ---- util.c ---- */
typedef struct tjs_buf {
	char *s;
	size_t len, cap;
	bool oom;
} tjs_buf;
void tjs_buf_add(tjs_buf *b, const char *s, size_t n);
void tjs_buf_puts(tjs_buf *b, const char *s);
void tjs_buf_putc(tjs_buf *b, char c);
void tjs_buf_printf(tjs_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *tjs_buf_take(tjs_buf *b); /* NUL-terminated, caller frees; NULL on OOM */
void tjs_buf_free(tjs_buf *b);

typedef struct tjs_arena_chunk tjs_arena_chunk;
typedef struct tjs_arena {
	tjs_arena_chunk *head;
	size_t first_chunk; /* size of the first chunk, 0 = the default (16 KB) */
} tjs_arena;
typedef struct tjs_arena_mark {
	tjs_arena_chunk *chunk;
	size_t used;
} tjs_arena_mark;
void *tjs_arena_alloc(tjs_arena *a, size_t n); /* zeroed, 16-aligned */
void *tjs_arena_alloc_uninit(tjs_arena *a, size_t n);
char *tjs_arena_strdup(tjs_arena *a, const char *s);
tjs_arena_mark tjs_arena_save(const tjs_arena *a);
void tjs_arena_restore(tjs_arena *a, tjs_arena_mark m);
void tjs_arena_free(tjs_arena *a);

/* Open-addressing maps; string keys are copied. */
typedef struct tjs_map {
	struct tjs_map_ent *ents;
	size_t cap, len;
} tjs_map;
int tjs_map_put(tjs_map *m, const char *key, void *val);
void *tjs_map_get(const tjs_map *m, const char *key);
void tjs_map_free(tjs_map *m, void (*free_val)(void *));
#define tjs_map_foreach(m, i, k, v)                                                                \
	for (size_t i = 0; i < (m)->cap; i++)                                                      \
		if (((k) = tjs_map_key_at((m), i)) != NULL && (((v) = tjs_map_val_at((m), i)), 1))
const char *tjs_map_key_at(const tjs_map *m, size_t i);
void *tjs_map_val_at(const tjs_map *m, size_t i);

typedef struct tjs_pmap {
	struct tjs_pmap_ent *ents;
	size_t cap, len;
} tjs_pmap;
int tjs_pmap_put(tjs_pmap *m, const void *key, void *val);
void *tjs_pmap_get(const tjs_pmap *m, const void *key);
void tjs_pmap_free(tjs_pmap *m);

size_t tjs_utf8_length(const char *s, size_t n);
/* Decodes one code point; returns bytes used (>=1), *cp = 0xFFFD on bad input. */
/* The value of a hex digit, or -1. */
int tjs_hexval(int c);
size_t tjs_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
void tjs_utf8_encode(tjs_buf *b, uint32_t cp);
/* Deep equality with JSON Schema number semantics (1 == 1.0). */
bool tjs_json_equal(const json_t *a, const json_t *b);
/* Short rendering of a value for messages (truncated); caller frees. */
char *tjs_json_short(const json_t *v);

/* ---- doc.c: the arena document of tjs_doc_parse ---- */
typedef struct tjs_member tjs_member;
struct tjs_value {
	json_type type;
	/* string bytes, array items, object members; for a JSON_REAL, the
	 * length of its literal when the parser kept it (in `s`), else 0 */
	size_t n;
	union {
		const char *s;
		json_int_t i;
		double d;
		const tjs_value *items;
		const tjs_member *members;
	} u;
};
struct tjs_member {
	const char *key;
	size_t keylen;
	tjs_value val;
	/* The value's text in the parsed input: recorded for the members of
	 * the root object only (see tjs_value_member_raw). */
	const char *raw;
	size_t rawlen;
};
struct tjs_doc {
	tjs_arena arena;
	tjs_value root;
	char *strings; /* decoded strings, in one block */
};
/* The literal of a number kept as text (see tjs_value_number_text). */
static inline const char *tjs_value_big(const tjs_value *v)
{
	return v->type == JSON_REAL && v->n ? v->u.s : NULL;
}
/* A short rendering of `v` like tjs_json_short; caller frees. */
char *tjs_value_short(const tjs_value *v);
bool tjs_value_equal(const tjs_value *a, const tjs_value *b);
bool tjs_value_equal_json(const tjs_value *a, const json_t *b);

/* ---- uri.c ---- */
typedef struct tjs_uri {
	const char *scheme, *authority, *path, *query, *fragment;
	size_t scheme_len, authority_len, path_len, query_len, fragment_len;
	bool has_scheme, has_authority, has_query, has_fragment;
} tjs_uri;
void tjs_uri_parse(const char *s, tjs_uri *u);
/* RFC 3986 §5.2 resolution with dot-segment removal; malloc'd, NULL on OOM. */
char *tjs_uri_resolve(const char *base, const char *ref);
/* Copy without the fragment (and without an empty trailing '#'); malloc'd. */
char *tjs_uri_strip_fragment(const char *uri);
/* Pointer to the fragment text after '#', or NULL. */
const char *tjs_uri_fragment(const char *uri);
bool tjs_uri_is_absolute(const char *s);

/* ---- pointer.c ---- */
/* Percent-decodes `s` (n bytes); NULL on bad escapes or OOM. */
char *tjs_percent_decode(const char *s, size_t n);
/* Walks an unescaped-fragment JSON pointer ("" or "/a/b"); NULL if absent.
 * `visit` (may be NULL) sees each value passed through, root first. */
const json_t *tjs_pointer_get(const json_t *doc, const char *ptr,
                              void (*visit)(const json_t *v, void *arg), void *arg);
/* Appends "/" + escaped token (~0, ~1). */
void tjs_pointer_append(tjs_buf *b, const char *token);
void tjs_pointer_append_index(tjs_buf *b, size_t i);
bool tjs_pointer_is_valid(const char *s, size_t n);

/* ---- regex.c ---- */
/* ECMA-262 (unicode mode) to PCRE2 syntax; 0 or -1 with err. */
int tjs_regex_translate(const char *src, size_t n, tjs_buf *out, char *err, size_t errlen);
pcre2_code *tjs_regex_compile(const char *src, size_t n, char *err, size_t errlen);
pcre2_match_context *tjs_regex_match_context(void);
/* 1 match, 0 no match, -1 limit hit or error. */
int tjs_regex_search(const pcre2_code *re, const char *s, size_t n, pcre2_match_data *md,
                     pcre2_match_context *mc);
/* The same for a subject known to be valid UTF-8 (tjs_doc strings). */
int tjs_regex_search_utf8(const pcre2_code *re, const char *s, size_t n, pcre2_match_data *md,
                          pcre2_match_context *mc);

/* ---- format.c ---- */
typedef bool (*tjs_format_fn)(const char *s, size_t n);
tjs_format_fn tjs_format_lookup(const char *name);
bool tjs_format_date_time(const char *s, size_t n);
bool tjs_format_date(const char *s, size_t n);
bool tjs_format_time(const char *s, size_t n);
bool tjs_format_duration(const char *s, size_t n);
bool tjs_format_email(const char *s, size_t n);
bool tjs_format_idn_email(const char *s, size_t n);
bool tjs_format_hostname(const char *s, size_t n);
bool tjs_format_idn_hostname(const char *s, size_t n);
bool tjs_format_ipv4(const char *s, size_t n);
bool tjs_format_ipv6(const char *s, size_t n);
bool tjs_format_uri(const char *s, size_t n);
bool tjs_format_uri_reference(const char *s, size_t n);
bool tjs_format_iri(const char *s, size_t n);
bool tjs_format_iri_reference(const char *s, size_t n);
bool tjs_format_uuid(const char *s, size_t n);
bool tjs_format_uri_template(const char *s, size_t n);
bool tjs_format_json_pointer(const char *s, size_t n);
bool tjs_format_relative_json_pointer(const char *s, size_t n);
bool tjs_format_regex(const char *s, size_t n);

/* ---- drafts and vocabularies ---- */
enum {
	TJS_VOC_CORE = 1 << 0,
	TJS_VOC_APPLICATOR = 1 << 1,
	TJS_VOC_UNEVALUATED = 1 << 2,
	TJS_VOC_VALIDATION = 1 << 3,
	TJS_VOC_META = 1 << 4,
	TJS_VOC_FORMAT_ANNOTATION = 1 << 5,
	TJS_VOC_FORMAT_ASSERTION = 1 << 6,
	TJS_VOC_CONTENT = 1 << 7,
	TJS_VOC_ALL_STANDARD = 0xbf, /* all but format-assertion */
};
/* Draft of a standard meta-schema URI (trailing '#' ignored), else 0. */
tjs_draft tjs_draft_of_metaschema(const char *uri);
const char *tjs_draft_metaschema_uri(tjs_draft d);
const char *tjs_draft_name(tjs_draft d);

/* ---- registry.c ---- */
struct tjs_registry {
	int refcount;            /* atomic */
	struct tjs_regdoc *docs; /* owned documents */
	tjs_map uris;            /* absolute URI without fragment -> struct tjs_regdoc* */
	pthread_mutex_t lock;
	tjs_schema *meta[5]; /* compiled standard meta-schemas, lazily, by draft index */
};
/* The document holding `uri` (as retrieval URI or embedded $id), with the
 * URI it was registered under. */
json_t *tjs_registry_lookup(const tjs_registry *reg, const char *uri, const char **root_uri);
tjs_registry *tjs_registry_ref(tjs_registry *reg);
/* Compiled validator for a standard draft's meta-schema, NULL on failure. */
const tjs_schema *tjs_registry_metaschema(tjs_registry *reg, tjs_draft d, char *err, size_t errlen);
int tjs_draft_index(tjs_draft d);

/* ---- compiled form ---- */
typedef struct tjs_node tjs_node;
typedef struct tjs_kw tjs_kw;
typedef struct tjs_resource tjs_resource;
typedef struct tjs_vctx tjs_vctx;
typedef struct tjs_ann tjs_ann;

/* Keyword operations, dispatched by eval_impl.h. */
typedef enum tjs_op {
	TJS_OP_TYPE,
	TJS_OP_ENUM,
	TJS_OP_CONST,
	TJS_OP_MULTIPLE_OF,
	TJS_OP_MAXIMUM,
	TJS_OP_MINIMUM,
	TJS_OP_MAX_LENGTH,
	TJS_OP_MIN_LENGTH,
	TJS_OP_PATTERN,
	TJS_OP_FORMAT,
	TJS_OP_MAX_ITEMS,
	TJS_OP_MIN_ITEMS,
	TJS_OP_UNIQUE_ITEMS,
	TJS_OP_MAX_PROPERTIES,
	TJS_OP_MIN_PROPERTIES,
	TJS_OP_REQUIRED,
	TJS_OP_DEPENDENT_REQUIRED,
	TJS_OP_DEPENDENT_SCHEMAS,
	TJS_OP_REF,
	TJS_OP_DYNAMIC_REF,
	TJS_OP_RECURSIVE_REF,
	TJS_OP_ALL_OF,
	TJS_OP_ANY_OF,
	TJS_OP_ONE_OF,
	TJS_OP_NOT,
	TJS_OP_IF,
	TJS_OP_PREFIX_ITEMS,
	TJS_OP_ITEMS_REST,
	TJS_OP_CONTAINS,
	TJS_OP_OBJECT_PROPS,
	TJS_OP_PROPERTY_NAMES,
	TJS_OP_UNEVALUATED_ITEMS,
	TJS_OP_UNEVALUATED_PROPERTIES,
} tjs_op;

enum {
	TJS_T_NULL = 1 << 0,
	TJS_T_BOOLEAN = 1 << 1,
	TJS_T_OBJECT = 1 << 2,
	TJS_T_ARRAY = 1 << 3,
	TJS_T_NUMBER = 1 << 4,
	TJS_T_STRING = 1 << 5,
	TJS_T_INTEGER = 1 << 6,
};

typedef struct tjs_pattern {
	const char *source;
	pcre2_code *re;
	tjs_node *sub;
} tjs_pattern;

struct tjs_kw {
	tjs_op op;
	const char *name;  /* keyword for the keyword location */
	const char *name2; /* second keyword of a pair (e.g. "additionalProperties") */
	const json_t *value;
	tjs_node *sub, *sub2, *sub3;
	tjs_node **subs;
	size_t nsubs;
	/* sorted property names with their subschemas or required lists */
	const char **names;
	size_t *name_lens;
	uint32_t *ntab; /* open addressing over names: index + 1, 0 empty */
	size_t ntab_mask;
	uint64_t req_mask; /* required: bits of the distinct names in `names` (<= 64 of them) */
	/* properties: bits (by index in `names`) of the names that the node's
	 * `required` lists, when it lists only names of these properties: the
	 * pass over the members checks them, and `required` (fused) itself
	 * runs only when errors are collected, so that they are its own. */
	uint64_t req_fused;
	bool fused;
	tjs_pattern *patterns;
	size_t npatterns;
	double num;
	json_int_t inum;
	bool is_int, flag;
	unsigned types;
	size_t min, max;
	bool has_min, has_max;
	tjs_format_fn format;
	pcre2_code *re;
	const char *dyn_name; /* $dynamicRef: anchor name when the static target bookends it */
	unsigned draft;
};

struct tjs_resource {
	const char *uri;
	const json_t *json;
	tjs_draft draft;
	unsigned vocab;
	bool recursive_anchor;
	bool scanned_dyn;
	size_t ndyn;
	const char **dyn_names;
	const json_t **dyn_json;
	tjs_node **dyn_nodes;
	tjs_node *root_node; /* compiled when $recursiveAnchor needs it */
	tjs_resource *next_all;
};

struct tjs_node {
	const json_t *json;
	int boolean; /* -1 object schema, 0 false, 1 true */
	tjs_kw *kws;
	size_t nkw;
	tjs_resource *owner; /* resource the node belongs to */
	bool has_uneval;
	bool compiled;
	tjs_draft draft;
	const char *base;
};

struct tjs_schema {
	tjs_registry *reg;
	bool holds_reg; /* false for the registry's own meta-schema cache */
	json_t *doc;
	tjs_arena arena;
	tjs_node *root;
	tjs_options opts;
	pcre2_match_context *mctx;
	pcre2_code **regexes;
	size_t nregexes, capregexes;
	tjs_resource *resources;
};

/* ---- resolve.c + compile.c: compile-time context ---- */
typedef struct tjs_sinfo {
	tjs_resource *res;
	tjs_draft draft;
	unsigned vocab;
	tjs_node *node;
} tjs_sinfo;

typedef struct tjs_pending {
	tjs_kw *kw;
	const json_t *target;
	const char *fragment; /* $dynamicRef: plain-name fragment, else NULL */
	struct tjs_pending *next;
} tjs_pending;

typedef struct tjs_cctx {
	tjs_schema *s;
	tjs_registry *reg;
	tjs_map resources; /* uri -> tjs_resource* */
	tjs_map anchors;   /* "uri#name" -> const json_t* */
	tjs_pmap info;     /* const json_t* -> tjs_sinfo* */
	tjs_pmap docs_scanned;
	tjs_map regexes; /* pattern source -> pcre2_code* */
	tjs_pending *pending;
	char *err;
	size_t errlen;
	bool failed;
	unsigned depth;
} tjs_cctx;

void tjs_cfail(tjs_cctx *cc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Draft and vocabularies of a document from its $schema (or the fallback). */
int tjs_doc_dialect(tjs_cctx *cc, const json_t *doc, tjs_draft fallback, tjs_draft *draft,
                    unsigned *vocab, unsigned depth);
/* Registers the resources, anchors and subschemas of `doc` found from `uri`. */
tjs_resource *tjs_scan_document(tjs_cctx *cc, const json_t *doc, const char *uri, tjs_draft draft,
                                unsigned vocab);
/* Resolves `ref` against `base` to a scanned schema value, NULL (with error). */
const json_t *tjs_resolve_ref(tjs_cctx *cc, const char *base, const char *ref, tjs_draft draft,
                              char **fragment_out);
tjs_sinfo *tjs_info(tjs_cctx *cc, const json_t *j);

/* ---- compile.c ---- */
tjs_schema *tjs_compile_internal(tjs_registry *reg, json_t *schema, const char *base_uri,
                                 const tjs_options *opts, bool check_meta, bool hold_reg, char *err,
                                 size_t errlen);

/* ---- validate.c: evaluation services used by keywords ---- */
struct tjs_ann {
	uint64_t *bits; /* evaluated keys (objects, in iteration order) or items */
	size_t n;
	bool all;
};

typedef struct tjs_seg {
	const char *name; /* NULL: index */
	size_t index;
} tjs_seg;

struct tjs_vctx {
	const tjs_schema *schema;
	tjs_result *result;
	bool collect;
	bool fatal; /* depth bound or allocation failure: invalid, stop */
	unsigned max_depth;
	unsigned node_depth;
	tjs_seg *ipath, *kpath;
	size_t nipath, nkpath, capipath, capkpath;
	const tjs_resource **scope;
	size_t nscope, capscope;
	/* first entries of the stacks, so that most validations allocate nothing */
	tjs_seg ipath_inline[16];
	const tjs_resource *scope_inline[8];
	pcre2_match_data *md;
	tjs_arena arena;
	size_t nerrors_cap;
};

/* eval_impl.h, instantiated for each instance representation */
bool tjs_eval_json(tjs_vctx *c, const tjs_node *n, const json_t *inst);
bool tjs_eval_doc(tjs_vctx *c, const tjs_node *n, const tjs_value *inst);
bool tjs_scope_push(tjs_vctx *c, const tjs_resource *r);
bool tjs_ipush(tjs_vctx *c, const char *key, size_t index);
/* Keyword location stack, kept only while collecting errors. */
void tjs_kpush_collect(tjs_vctx *c, const char *name);
void tjs_kpush_index_collect(tjs_vctx *c, size_t index);
static inline void tjs_kpush(tjs_vctx *c, const char *name)
{
	if (c->collect)
		tjs_kpush_collect(c, name);
}
static inline void tjs_kpush_index(tjs_vctx *c, size_t index)
{
	if (c->collect)
		tjs_kpush_index_collect(c, index);
}
static inline void tjs_kpop(tjs_vctx *c)
{
	if (c->collect && c->nkpath)
		c->nkpath--;
}
/* Records an error at the current locations plus `kw` (printf message). */
void tjs_report(tjs_vctx *c, const char *kw, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
size_t tjs_error_mark(const tjs_vctx *c);
void tjs_error_rollback(tjs_vctx *c, size_t mark);
/* Moves the errors after `mark` behind a new one (the summary comes first). */
void tjs_error_summary(tjs_vctx *c, size_t mark, const char *kw, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
bool tjs_ann_init_n(tjs_vctx *c, tjs_ann *a, size_t n);
void tjs_ann_set(tjs_ann *a, size_t i);
bool tjs_ann_get(const tjs_ann *a, size_t i);
void tjs_ann_merge(tjs_ann *into, const tjs_ann *from);
pcre2_match_data *tjs_match_data(tjs_vctx *c);
bool tjs_is_integer(const json_t *v);
double tjs_number(const json_t *v);

/* ---- number.c: numbers tjs_doc_parse keeps as their literal ("big":
 * beyond 64-bit integers, beyond a double's range, or more than 17
 * significant digits), compared exactly as decimals ---- */
/* <0, 0, >0 as the literal compares to the keyword's number. */
int tjs_big_cmp(const char *big, const tjs_kw *kw);
bool tjs_big_multiple_of(const char *big, const tjs_kw *kw);
bool tjs_big_is_integer(const char *big, tjs_draft draft);
/* Two number literals are the same number. */
bool tjs_big_equal(const char *a, const char *b);
/* A number as a literal: an integer, or a double's shortest round-trip
 * form; in `buf`. */
const char *tjs_number_literal(bool is_int, json_int_t i, double d, char buf[48]);

/* A quick hash of a short key (property names): its length and its first
 * and last bytes, read a word at a time. Only a hint for a probe that
 * compares whole keys, so it needs speed more than spread. */
static inline uint64_t tjs_hash_bytes(const char *s, size_t n)
{
	uint64_t a = 0, b = 0;
	if (n >= 8) {
		memcpy(&a, s, 8);
		memcpy(&b, s + n - 8, 8);
	} else if (n >= 4) {
		uint32_t x, y;
		memcpy(&x, s, 4);
		memcpy(&y, s + n - 4, 4);
		a = x;
		b = y;
	} else if (n) {
		a = (unsigned char)s[0] | (uint64_t)(unsigned char)s[n / 2] << 8 |
		    (uint64_t)(unsigned char)s[n - 1] << 16;
	}
	uint64_t h = (a * 0x9E3779B97F4A7C15ull) ^ (b * 0xC2B2AE3D27D4EB4Full) ^ n;
	return h ^ (h >> 29);
}

static inline bool tjs_bytes_equal(const char *a, const char *b, size_t n)
{
	while (n >= 8) {
		uint64_t x, y;
		memcpy(&x, a, 8);
		memcpy(&y, b, 8);
		if (x != y)
			return false;
		a += 8;
		b += 8;
		n -= 8;
	}
	/* the rest as two overlapping reads */
	if (n >= 4) {
		uint32_t x1, y1, x2, y2;
		memcpy(&x1, a, 4);
		memcpy(&y1, b, 4);
		memcpy(&x2, a + n - 4, 4);
		memcpy(&y2, b + n - 4, 4);
		return x1 == y1 && x2 == y2;
	}
	if (n >= 2) {
		uint16_t x1, y1, x2, y2;
		memcpy(&x1, a, 2);
		memcpy(&y1, b, 2);
		memcpy(&x2, a + n - 2, 2);
		memcpy(&y2, b + n - 2, 2);
		return x1 == y1 && x2 == y2;
	}
	return n == 0 || *a == *b;
}

/* Index of a `properties` name, -1 if none (table built by compile.c). */
__attribute__((always_inline)) static inline ssize_t tjs_find_name(const tjs_kw *kw,
                                                                   const char *key, size_t keylen)
{
	if (!kw->ntab)
		return -1;
	for (size_t j = tjs_hash_bytes(key, keylen) & kw->ntab_mask; kw->ntab[j];
	     j = (j + 1) & kw->ntab_mask) {
		size_t i = kw->ntab[j] - 1;
		if (kw->name_lens[i] == keylen && tjs_bytes_equal(kw->names[i], key, keylen))
			return (ssize_t)i;
	}
	return -1;
}

#endif
