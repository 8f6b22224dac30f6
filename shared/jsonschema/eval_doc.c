/* The validator (eval_impl.h) over tjs_doc values: tjs_validate_value. */
#include "internal.h"

static inline const tjs_value *doc_get(const tjs_value *o, const char *key)
{
	size_t kn = strlen(key);
	for (size_t i = 0; i < o->n; i++)
		if (o->u.members[i].keylen == kn && memcmp(o->u.members[i].key, key, kn) == 0)
			return &o->u.members[i].val;
	return NULL;
}

static inline const tjs_value *key_value(tjs_value *tmp, const char *key, size_t keylen)
{
	tmp->type = JSON_STRING;
	tmp->n = keylen;
	tmp->u.s = key;
	return tmp;
}

#define INST const tjs_value *
#define V_TYPE(v) ((v)->type)
#define V_STR(v) ((v)->u.s)
#define V_STRLEN(v) ((v)->n)
#define V_INT(v) ((v)->u.i)
#define V_REAL(v) tjs_value_real(v)
#define V_BIG(v) tjs_value_big(v) /* a number kept as its literal */
#define V_SIZE(v) ((v)->n)
#define V_AT(v, i) (&(v)->u.items[i])
#define V_GET(v, k) doc_get((v), (k))
#define V_STRINGS_UTF8 1 /* the parser checked every string and key */
#define V_GET_IS_FAST 0  /* members are an array: scan once instead */
#define V_OBJ_FOREACH(o_, k_, kl_, v_)                                                             \
	for (size_t k_##_i = 0; k_##_i < (o_)->n && ((k_) = (o_)->u.members[k_##_i].key,           \
	                                            (kl_) = (o_)->u.members[k_##_i].keylen,        \
	                                            (v_) = &(o_)->u.members[k_##_i].val, 1);       \
	     k_##_i++)
#define V_EQ(a, b) tjs_value_equal((a), (b))
#define V_EQ_JSON(a, b) tjs_value_equal_json((a), (b))
#define V_SHORT(v) tjs_value_short(v)
#define KEY_TMP tjs_value
#define KEY_INST(tmp, key, keylen) key_value((tmp), (key), (keylen))
#define KEY_INST_FREE(v) ((void)(v))
#define EVAL_ENTRY tjs_eval_doc

#include "eval_impl.h"
