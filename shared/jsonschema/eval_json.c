/* The validator (eval_impl.h) over jansson values: tjs_validate. */
#include <jansson.h>

#define INST const json_t *
#define V_TYPE(v) json_typeof(v)
#define V_STR(v) json_string_value(v)
#define V_STRLEN(v) json_string_length(v)
#define V_INT(v) json_integer_value(v)
#define V_REAL(v) json_real_value(v)
#define V_BIG(v) ((void)(v), (const char *)NULL) /* jansson has none */
#define V_SIZE(v) (json_is_object(v) ? json_object_size(v) : json_array_size(v))
#define V_AT(v, i) json_array_get((v), (i))
#define V_GET(v, k) json_object_get((v), (k))
#define V_STRINGS_UTF8 0 /* json_t strings may be built unchecked */
#define V_GET_IS_FAST 1  /* a hash table per object */
#define V_OBJ_FOREACH(o_, k_, kl_, v_) json_object_keylen_foreach((json_t *)(o_), k_, kl_, v_)
#define V_EQ(a, b) tjs_json_equal((a), (b))
#define V_EQ_JSON(a, b) tjs_json_equal((a), (b))
#define V_SHORT(v) tjs_json_short(v)
/* propertyNames evaluates each name as a string instance */
#define KEY_TMP int
#define KEY_INST(tmp, key, keylen) ((void)(tmp), json_stringn_nocheck((key), (keylen)))
#define KEY_INST_FREE(v) json_decref((json_t *)(v))
#define EVAL_ENTRY tjs_eval_json

#include "eval_impl.h"
