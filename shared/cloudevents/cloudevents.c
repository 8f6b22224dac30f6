/* CloudEvents 1.0 reading, completion and mapping to Kafka. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "tributary/cloudevents.h"
#include "tributary/json_encode.h"
#include "tributary/util.h"

const char *tb_ce_status_reason(tb_ce_status st)
{
	switch (st) {
	case TB_CE_OK:
		return "ok";
	case TB_CE_INVALID_UTF8:
		return "invalid_utf8";
	case TB_CE_INVALID_JSON:
		return "invalid_json";
	case TB_CE_NOT_AN_EVENT:
		return "not_an_event";
	case TB_CE_MISSING_ATTRIBUTE:
		return "missing_attribute";
	case TB_CE_INVALID_ATTRIBUTE:
		return "invalid_attribute";
	case TB_CE_INVALID_DATA:
		return "invalid_data";
	case TB_CE_NO_MEMORY:
		return "out_of_memory";
	}
	return "unknown";
}

void tb_event_clear(tb_event *ev)
{
	if (ev->attrs != ev->attrs_inline)
		free(ev->attrs);
	free(ev->auth);
	tjs_doc_free(ev->doc);
	tjs_doc_free(ev->event_doc);
	free(ev->owned);
	memset(ev, 0, sizeof(*ev));
}

static void ce__init(tb_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->attrs = ev->attrs_inline;
	ev->attrs_cap = TB_CE_INLINE_ATTRS;
}

static tb_ce_attrval *ce__find(const tb_event *ev, const char *name)
{
	/* the first letter tells most attributes apart without a call */
	for (size_t i = 0; i < ev->nattrs; i++)
		if (ev->attrs[i].name[0] == name[0] && !strcmp(ev->attrs[i].name, name))
			return &ev->attrs[i];
	return NULL;
}

/* Sets or replaces (in place, so the order stays that of first setting). */
static int ce__set(tb_event *ev, const char *name, const char *value, size_t len, tb_ce_kind kind)
{
	tb_ce_attrval *a = ce__find(ev, name);
	if (!a) {
		if (ev->nattrs == ev->attrs_cap) {
			size_t cap = ev->attrs_cap * 2;
			tb_ce_attrval *grown = malloc(cap * sizeof(*grown));
			if (!grown)
				return -1;
			memcpy(grown, ev->attrs, ev->nattrs * sizeof(*grown));
			if (ev->attrs != ev->attrs_inline)
				free(ev->attrs);
			ev->attrs = grown;
			ev->attrs_cap = cap;
		}
		a = &ev->attrs[ev->nattrs++];
		a->name = name;
	}
	a->value = value;
	a->len = len;
	a->kind = kind;
	return 0;
}

static void ce__del(tb_event *ev, const char *name)
{
	tb_ce_attrval *a = ce__find(ev, name);
	if (!a)
		return;
	size_t i = (size_t)(a - ev->attrs);
	memmove(a, a + 1, (ev->nattrs - i - 1) * sizeof(*a));
	ev->nattrs--;
}

bool tb_ce_content_type_is_json(const char *ct)
{
	if (!ct || !*ct)
		return true;
	size_t n = strcspn(ct, ";");
	while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	if ((n == 16 && !strncasecmp(ct, "application/json", n)) ||
	    (n == 9 && !strncasecmp(ct, "text/json", n)))
		return true;
	return n > 5 && !strncasecmp(ct + n - 5, "+json", 5);
}

/* Attribute names: lower-case ASCII letters and digits (spec 1.0 §3.1.1). */
static bool ce__name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9')))
			return false;
	return true;
}

/* String attribute values: the spec (1.0 §3.1.1, type String) excludes the
 * control characters U+0000-U+001F and U+007F-U+009F, which would otherwise
 * reach Kafka headers, logs and terminals as they are. `s` is valid UTF-8,
 * where U+0080-U+009F is 0xC2 followed by 0x80-0x9F. */
static bool ce__value_ok(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < 0x20 || p[i] == 0x7F)
			return false;
		if (p[i] == 0xC2 && i + 1 < len && p[i + 1] >= 0x80 && p[i + 1] <= 0x9F)
			return false;
	}
	return true;
}

static tb_ce_status ce__control_error(const char *name, char *err, size_t errlen)
{
	snprintf(err, errlen,
	         "attribute '%s' contains a control character (U+0000-U+001F, U+007F-U+009F)",
	         name);
	return TB_CE_INVALID_ATTRIBUTE;
}

/* The ingest path parses with the validator's own document parser: one
 * allocation, no recursion, and several times faster than building jansson
 * values, which matters on the broker's main thread. It accepts what
 * json_loadb(JSON_DECODE_ANY | JSON_REJECT_DUPLICATES) accepts, and the
 * numbers RFC 8259 allows beyond jansson's (1e400, 40-digit integers),
 * which it keeps as written. */
static tb_ce_status ce__parse_json_data(tb_event *ev, const char *bytes, size_t len, char *err,
                                        size_t errlen)
{
	char perr[256];
	ev->doc = tjs_doc_parse(bytes, len, 0, perr, sizeof(perr));
	if (!ev->doc) {
		snprintf(err, errlen, "data is not valid JSON: %s", perr);
		return TB_CE_INVALID_JSON;
	}
	ev->data = tjs_doc_root(ev->doc);
	return TB_CE_OK;
}

/* Member i of the event object as an attribute: strings from the document,
 * integers as their literal in the payload (JSON's grammar makes that the
 * decimal form, but for -0), booleans as constants. */
static int ce__attr_from_member(tb_event *ev, const tjs_value *root, size_t i, const char *key,
                                const tjs_value *v)
{
	size_t n;
	const char *str;
	switch (tjs_value_type(v)) {
	case JSON_STRING:
		str = tjs_value_string(v, &n);
		return ce__set(ev, key, str, n, TB_CE_STRING);
	case JSON_INTEGER:
		if (!tjs_value_integer(v))
			return ce__set(ev, key, "0", 1, TB_CE_INTEGER);
		if (!tjs_value_member_raw(root, i, &str, &n))
			return -1;
		return ce__set(ev, key, str, n, TB_CE_INTEGER);
	case JSON_TRUE:
		return ce__set(ev, key, "true", 4, TB_CE_BOOLEAN);
	case JSON_FALSE:
		return ce__set(ev, key, "false", 5, TB_CE_BOOLEAN);
	default:
		return 1;
	}
}

tb_ce_status tb_ce_parse_structured(const char *payload, size_t len, tb_event *ev, char *err,
                                    size_t errlen)
{
	char perr[256];
	ce__init(ev);
	/* The parser refuses invalid UTF-8 itself (in strings; any other
	 * non-ASCII byte is not JSON): the separate scan only names the reason,
	 * off the path of every valid event. */
	tjs_doc *doc = tjs_doc_parse(payload, len, 0, perr, sizeof(perr));
	if (!doc) {
		if (!tb_utf8_valid(payload, len)) {
			snprintf(err, errlen, "payload is not valid UTF-8");
			return TB_CE_INVALID_UTF8;
		}
		snprintf(err, errlen, "payload is not valid JSON: %s", perr);
		return TB_CE_INVALID_JSON;
	}
	ev->event_doc = doc;
	tb_ce_status st = TB_CE_OK;
	const tjs_value *root = tjs_doc_root(doc);
	if (tjs_value_type(root) != JSON_OBJECT) {
		snprintf(err, errlen, "payload is JSON but not a CloudEvents object");
		st = TB_CE_NOT_AN_EVENT;
		goto done;
	}
	const tjs_value *data = NULL, *data_b64 = NULL;
	size_t count = tjs_value_size(root), data_index = 0;
	for (size_t i = 0; i < count; i++) {
		const char *key;
		size_t keylen;
		const tjs_value *value = tjs_value_member(root, i, &key, &keylen);
		if (keylen == 4 && !memcmp(key, "data", 4)) {
			data = value;
			data_index = i;
			continue;
		}
		if (keylen == 11 && !memcmp(key, "data_base64", 11)) {
			data_b64 = value;
			continue;
		}
		if (strlen(key) != keylen || !ce__name_ok(key)) {
			snprintf(err, errlen,
			         "attribute name '%s' is not valid (lower-case letters and digits)",
			         key);
			st = TB_CE_INVALID_ATTRIBUTE;
			goto done;
		}
		int arc = ce__attr_from_member(ev, root, i, key, value);
		if (arc > 0) {
			snprintf(err, errlen, "attribute '%s' must be a string, integer or boolean",
			         key);
			st = TB_CE_INVALID_ATTRIBUTE;
			goto done;
		}
		if (arc < 0) {
			st = TB_CE_NO_MEMORY;
			goto done;
		}
		size_t vlen;
		const char *str = tjs_value_string(value, &vlen);
		if (str && !ce__value_ok(str, vlen)) {
			st = ce__control_error(key, err, errlen);
			goto done;
		}
	}
	if (data && data_b64) {
		snprintf(err, errlen, "an event has either 'data' or 'data_base64', not both");
		st = TB_CE_INVALID_DATA;
		goto done;
	}
	const char *ct = tb_ce_attr_string(ev, "datacontenttype");
	if (data) {
		ev->has_data = true;
		if (tb_ce_content_type_is_json(ct) || tjs_value_type(data) != JSON_STRING) {
			/* The data's JSON text as the client wrote it: no second
			 * serialization on the broker's main thread. */
			ev->data = data;
			tjs_value_member_raw(root, data_index, &ev->data_bytes, &ev->data_len);
		} else {
			/* Text data of a non-JSON type is carried as the bytes of
			 * the string (in the event's document, kept with it). */
			ev->data_bytes = tjs_value_string(data, &ev->data_len);
		}
	} else if (data_b64) {
		ev->has_data = true;
		if (tjs_value_type(data_b64) != JSON_STRING) {
			snprintf(err, errlen, "'data_base64' must be a string");
			st = TB_CE_INVALID_DATA;
			goto done;
		}
		size_t in;
		const char *b64 = tjs_value_string(data_b64, &in);
		ev->owned = malloc(in / 4 * 3 + 4);
		if (!ev->owned) {
			st = TB_CE_NO_MEMORY;
			goto done;
		}
		int out = in ? EVP_DecodeBlock((unsigned char *)ev->owned,
		                               (const unsigned char *)b64, (int)in)
		             : 0;
		if (out < 0 || in % 4) {
			snprintf(err, errlen, "'data_base64' is not valid base64");
			st = TB_CE_INVALID_DATA;
			goto done;
		}
		/* EVP_DecodeBlock counts padding as zero bytes. */
		if (in >= 1 && b64[in - 1] == '=')
			out--;
		if (in >= 2 && b64[in - 2] == '=')
			out--;
		ev->data_len = (size_t)out;
		ev->data_bytes = ev->owned;
		ev->data = NULL;
		if (tb_ce_content_type_is_json(ct) && ct) {
			st = ce__parse_json_data(ev, ev->data_bytes, ev->data_len, err, errlen);
			if (st)
				goto done;
		}
	}
done:
	if (st == TB_CE_NO_MEMORY)
		snprintf(err, errlen, "out of memory");
	if (st)
		tb_event_clear(ev);
	return st;
}

tb_ce_status tb_ce_parse_binary(const tb_ce_attr *attrs, size_t nattrs, const char *content_type,
                                const char *payload, size_t len, tb_event *ev, char *err,
                                size_t errlen)
{
	ce__init(ev);
	for (size_t i = 0; i < nattrs; i++) {
		const char *name = attrs[i].name;
		if (!ce__name_ok(name) || !strcmp(name, "data") ||
		    !strcmp(name, "datacontenttype")) {
			snprintf(err, errlen, "user property '%s' is not a valid attribute name",
			         name);
			tb_event_clear(ev);
			return TB_CE_INVALID_ATTRIBUTE;
		}
		if (ce__find(ev, name)) {
			snprintf(err, errlen, "attribute '%s' is given twice", name);
			tb_event_clear(ev);
			return TB_CE_INVALID_ATTRIBUTE;
		}
		size_t vlen = strlen(attrs[i].value);
		if (!tb_utf8_valid(attrs[i].value, vlen)) {
			snprintf(err, errlen, "attribute '%s' is not valid UTF-8", name);
			tb_event_clear(ev);
			return TB_CE_INVALID_ATTRIBUTE;
		}
		if (!ce__value_ok(attrs[i].value, vlen)) {
			tb_event_clear(ev);
			return ce__control_error(name, err, errlen);
		}
		if (ce__set(ev, name, attrs[i].value, vlen, TB_CE_STRING)) {
			tb_event_clear(ev);
			return TB_CE_NO_MEMORY;
		}
	}
	size_t ctlen = content_type ? strlen(content_type) : 0;
	if (content_type && !ce__value_ok(content_type, ctlen)) {
		tb_event_clear(ev);
		return ce__control_error("datacontenttype", err, errlen);
	}
	if (content_type && ce__set(ev, "datacontenttype", content_type, ctlen, TB_CE_STRING)) {
		tb_event_clear(ev);
		return TB_CE_NO_MEMORY;
	}
	ev->has_data = len > 0;
	ev->data_bytes = payload;
	ev->data_len = len;
	if (len > 0 && tb_ce_content_type_is_json(content_type)) {
		/* The parser refuses invalid UTF-8 itself: as for structured
		 * events, the scan only names the reason, off the valid path. */
		tb_ce_status st = ce__parse_json_data(ev, payload, len, err, errlen);
		if (st == TB_CE_INVALID_JSON && !tb_utf8_valid(payload, len)) {
			snprintf(err, errlen, "data is not valid UTF-8");
			st = TB_CE_INVALID_UTF8;
		}
		if (st) {
			tb_event_clear(ev);
			return st;
		}
	}
	return TB_CE_OK;
}

const char *tb_ce_attr_string(const tb_event *ev, const char *name)
{
	const tb_ce_attrval *a = ce__find(ev, name);
	return a && a->kind == TB_CE_STRING ? a->value : NULL;
}

static tb_ce_status ce__require(tb_event *ev, const char *name, char *err, size_t errlen)
{
	const tb_ce_attrval *v = ce__find(ev, name);
	if (!v) {
		snprintf(err, errlen, "required attribute '%s' is missing", name);
		return TB_CE_MISSING_ATTRIBUTE;
	}
	if (v->kind != TB_CE_STRING || v->len == 0) {
		snprintf(err, errlen, "attribute '%s' must be a non-empty string", name);
		return TB_CE_INVALID_ATTRIBUTE;
	}
	return TB_CE_OK;
}

int tb_ce_reuse_generated(tb_event *ev, const char *id, const char *time)
{
	if (ce__find(ev, "id"))
		return 0;
	snprintf(ev->gen_id, sizeof(ev->gen_id), "%s", id);
	if (ce__set(ev, "id", ev->gen_id, strlen(ev->gen_id), TB_CE_STRING))
		return -1;
	if (time && !ce__find(ev, "time")) {
		snprintf(ev->gen_time, sizeof(ev->gen_time), "%s", time);
		if (ce__set(ev, "time", ev->gen_time, strlen(ev->gen_time), TB_CE_STRING))
			return -1;
	}
	return 1;
}

tb_ce_status tb_ce_complete(tb_event *ev, char *err, size_t errlen)
{
	tb_ce_status st;
	if ((st = ce__require(ev, "specversion", err, errlen)))
		return st;
	if (strcmp(tb_ce_attr_string(ev, "specversion"), "1.0") != 0) {
		snprintf(err, errlen, "specversion '%s' is not supported (only 1.0)",
		         tb_ce_attr_string(ev, "specversion"));
		return TB_CE_INVALID_ATTRIBUTE;
	}
	_Static_assert(sizeof(ev->gen_id) > TB_UUID_LEN, "room for a UUID");
	_Static_assert(sizeof(ev->gen_time) > TB_TIME_LEN, "room for a timestamp");
	if (!ce__find(ev, "id")) {
		tb_uuid7(ev->gen_id);
		if (ce__set(ev, "id", ev->gen_id, TB_UUID_LEN, TB_CE_STRING))
			goto nomem;
	}
	if (!ce__find(ev, "time")) {
		tb_time_rfc3339(ev->gen_time);
		if (ce__set(ev, "time", ev->gen_time, strlen(ev->gen_time), TB_CE_STRING))
			goto nomem;
	}
	if ((st = ce__require(ev, "id", err, errlen)) ||
	    (st = ce__require(ev, "source", err, errlen)) ||
	    (st = ce__require(ev, "type", err, errlen)) ||
	    (st = ce__require(ev, "time", err, errlen)))
		return st;
	if (!tb_time_is_rfc3339(tb_ce_attr_string(ev, "time"))) {
		snprintf(err, errlen, "attribute 'time' is not an RFC 3339 timestamp");
		return TB_CE_INVALID_ATTRIBUTE;
	}
	static const char *const strings[] = {"subject", "dataschema", "datacontenttype"};
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		const tb_ce_attrval *v = ce__find(ev, strings[i]);
		if (v && (v->kind != TB_CE_STRING || v->len == 0)) {
			snprintf(err, errlen, "attribute '%s' must be a non-empty string",
			         strings[i]);
			return TB_CE_INVALID_ATTRIBUTE;
		}
	}
	if (ev->has_data && !ev->data && !ce__find(ev, "datacontenttype")) {
		/* data_base64 without a content type: opaque bytes. */
		static const char octets[] = "application/octet-stream";
		if (ce__set(ev, "datacontenttype", octets, sizeof(octets) - 1, TB_CE_STRING))
			goto nomem;
	}
	return TB_CE_OK;
nomem:
	snprintf(err, errlen, "out of memory");
	return TB_CE_NO_MEMORY;
}

int tb_ce_set_authcontext(tb_event *ev, const char *authtype, const char *authid)
{
	size_t tlen = strlen(authtype), ilen = authid ? strlen(authid) : 0;
	char *auth = malloc(tlen + 1 + ilen + 1);
	if (!auth)
		return -1;
	memcpy(auth, authtype, tlen + 1);
	if (authid)
		memcpy(auth + tlen + 1, authid, ilen + 1);
	ce__del(ev, "authclaims");
	if (ce__set(ev, "authtype", auth, tlen, TB_CE_STRING) ||
	    (authid && ce__set(ev, "authid", auth + tlen + 1, ilen, TB_CE_STRING))) {
		/* Nothing may point into the new copy. */
		ce__del(ev, "authtype");
		ce__del(ev, "authid");
		free(auth);
		return -1;
	}
	if (!authid)
		ce__del(ev, "authid");
	free(ev->auth);
	ev->auth = auth;
	return 0;
}

int tb_ce_each_kafka_header(const tb_event *ev,
                            int (*add)(void *ctx, const char *name, const char *value, size_t len),
                            void *ctx)
{
	char name[80];
	for (size_t i = 0; i < ev->nattrs; i++) {
		const tb_ce_attrval *a = &ev->attrs[i];
		int rc;
		if (!strcmp(a->name, "datacontenttype")) {
			rc = add(ctx, "content-type", a->value, a->len);
		} else {
			/* Attribute names are at most 64 characters (ce__name_ok). */
			size_t kl = strlen(a->name);
			if (kl + 4 > sizeof(name))
				return -1;
			memcpy(name, "ce_", 3);
			memcpy(name + 3, a->name, kl + 1);
			rc = add(ctx, name, a->value, a->len);
		}
		if (rc)
			return rc;
	}
	/* JSON data without a datacontenttype: the JSON event format implies
	 * application/json (spec 1.0, JSON format §3.1), and a Kafka record
	 * without the header would be opaque bytes to the SDKs' binding. */
	if (ev->data && !ce__find(ev, "datacontenttype"))
		return add(ctx, "content-type", "application/json", 16);
	return 0;
}

/* The attributes as a JSON object, for the structured format. */
static json_t *ce__attrs_json(const tb_event *ev)
{
	json_t *obj = json_object();
	for (size_t i = 0; obj && i < ev->nattrs; i++) {
		const tb_ce_attrval *a = &ev->attrs[i];
		json_t *v;
		if (a->kind == TB_CE_STRING) {
			v = json_stringn(a->value, a->len);
		} else if (a->kind == TB_CE_BOOLEAN) {
			v = json_boolean(a->value[0] == 't');
		} else {
			/* The literal of an integer that fitted json_int_t. */
			char num[32];
			size_t n = a->len < sizeof(num) ? a->len : sizeof(num) - 1;
			memcpy(num, a->value, n);
			num[n] = '\0';
			v = json_integer(strtoll(num, NULL, 10));
		}
		if (json_object_set_new(obj, a->name, v)) {
			json_decref(obj);
			obj = NULL;
		}
	}
	return obj;
}

char *tb_ce_to_json(const tb_event *ev, size_t *len)
{
	size_t alen;
	json_t *obj = ce__attrs_json(ev);
	if (!obj)
		return NULL;
	char *attrs = tb_json_encode(obj, &alen);
	char *out = NULL;
	if (!attrs) {
		json_decref(obj);
		return NULL;
	}
	if (ev->data) {
		/* The data's compact text is already in data_bytes: splice it in
		 * as the last member rather than encoding it again. */
		size_t total = alen + 8 + ev->data_len + 1;
		out = malloc(total + 1);
		if (out) {
			size_t n = alen - 1; /* without the closing brace */
			memcpy(out, attrs, n);
			n += (size_t)sprintf(out + n, "%s\"data\":", alen > 2 ? "," : "");
			memcpy(out + n, ev->data_bytes, ev->data_len);
			n += ev->data_len;
			out[n++] = '}';
			out[n] = '\0';
			if (len)
				*len = n;
		}
		free(attrs);
		json_decref(obj);
		return out;
	}
	if (!ev->has_data) {
		if (len)
			*len = alen;
		json_decref(obj);
		return attrs;
	}
	free(attrs);
	/* Non-JSON data travels as base64, per the JSON format. */
	size_t b64len = 4 * ((ev->data_len + 2) / 3) + 1;
	char *b64 = malloc(b64len);
	if (b64) {
		EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)ev->data_bytes,
		                (int)ev->data_len);
		json_object_set_new(obj, "data_base64", json_string(b64));
		free(b64);
		out = tb_json_encode(obj, len);
	}
	json_decref(obj);
	return out;
}

bool tb_ce_is_structured_type(const char *ct, size_t len)
{
	static const char s[] = "application/cloudevents+json";
	size_t b = 0, n = 0;
	while (n < len && ct[n] != ';')
		n++;
	while (b < n && (ct[b] == ' ' || ct[b] == '\t'))
		b++;
	while (n > b && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	return n - b == sizeof(s) - 1 && !strncasecmp(ct + b, s, n - b);
}

tb_ce_kafka_mode tb_ce_kafka_read(const rd_kafka_headers_t *hdrs, const char **ct, size_t *ct_len)
{
	const void *v = NULL;
	size_t n = 0;
	if (hdrs && rd_kafka_header_get_last(hdrs, "content-type", &v, &n))
		v = NULL;
	if (!v)
		n = 0;
	if (ct)
		*ct = v;
	if (ct_len)
		*ct_len = n;
	if (v && tb_ce_is_structured_type(v, n))
		return TB_CE_KAFKA_STRUCTURED;
	const void *sv;
	size_t sn;
	if (hdrs && !rd_kafka_header_get_last(hdrs, "ce_specversion", &sv, &sn))
		return TB_CE_KAFKA_BINARY;
	return TB_CE_KAFKA_PLAIN;
}

int tb_ce_kafka_each_attr(const rd_kafka_headers_t *hdrs,
                          int (*fn)(void *ctx, const char *name, const void *value, size_t len),
                          void *ctx)
{
	const char *name;
	const void *value;
	size_t size;
	for (size_t i = 0; hdrs && !rd_kafka_header_get_all(hdrs, i, &name, &value, &size); i++) {
		if (strncmp(name, "ce_", 3))
			continue;
		int rc = fn(ctx, name + 3, value, value ? size : 0);
		if (rc)
			return rc;
	}
	return 0;
}

/* The ce_ headers copied as NUL-terminated attributes, in one buffer:
 * counted in a first pass (buf NULL), copied in a second. */
struct ce_kafka_attrs {
	tb_ce_attr attrs[TB_CE_KAFKA_MAX_ATTRS];
	size_t n, size;
	char *buf;
	char *err;
	size_t errlen;
};

static int ce__kafka_attr(void *vctx, const char *name, const void *value, size_t len)
{
	struct ce_kafka_attrs *a = vctx;
	size_t nl = strlen(name);
	if (!a->buf) {
		if (a->n == TB_CE_KAFKA_MAX_ATTRS) {
			snprintf(a->err, a->errlen, "more than %d ce_ headers",
			         TB_CE_KAFKA_MAX_ATTRS);
			return -1;
		}
		if (!ce__name_ok(name) || !strcmp(name, "data") ||
		    !strcmp(name, "datacontenttype")) {
			snprintf(a->err, a->errlen,
			         "header 'ce_%s' is not a valid attribute name (lower-case letters "
			         "and digits; not data or datacontenttype)",
			         name);
			return -1;
		}
		if (len && memchr(value, '\0', len)) {
			ce__control_error(name, a->err, a->errlen);
			return -1;
		}
		a->n++;
		a->size += nl + 1 + len + 1;
		return 0;
	}
	char *s = a->buf + a->size;
	memcpy(s, name, nl + 1);
	a->attrs[a->n].name = s;
	s += nl + 1;
	if (len)
		memcpy(s, value, len);
	s[len] = '\0';
	a->attrs[a->n++].value = s;
	a->size += nl + 1 + len + 1;
	return 0;
}

tb_ce_status tb_ce_kafka_parse_binary(const rd_kafka_headers_t *hdrs, const void *value, size_t len,
                                      tb_event *ev, char *err, size_t errlen)
{
	struct ce_kafka_attrs a = {.err = err, .errlen = errlen};
	const char *ct;
	size_t ctlen;
	ce__init(ev);
	tb_ce_kafka_read(hdrs, &ct, &ctlen);
	if (ct && (memchr(ct, '\0', ctlen) || !tb_utf8_valid(ct, ctlen))) {
		snprintf(err, errlen, "content-type is not UTF-8 text");
		return TB_CE_INVALID_ATTRIBUTE;
	}
	if (tb_ce_kafka_each_attr(hdrs, ce__kafka_attr, &a))
		return TB_CE_INVALID_ATTRIBUTE;
	a.buf = malloc(a.size + (ct ? ctlen + 1 : 0) + 1);
	if (!a.buf) {
		snprintf(err, errlen, "out of memory");
		return TB_CE_NO_MEMORY;
	}
	a.n = a.size = 0;
	tb_ce_kafka_each_attr(hdrs, ce__kafka_attr, &a);
	char *ctcopy = NULL;
	if (ct) {
		ctcopy = a.buf + a.size;
		memcpy(ctcopy, ct, ctlen);
		ctcopy[ctlen] = '\0';
	}
	tb_ce_status st = tb_ce_parse_binary(a.attrs, a.n, ctcopy, value, len, ev, err, errlen);
	if ((st == TB_CE_INVALID_JSON || st == TB_CE_INVALID_UTF8) && !ct) {
		/* No content-type: data that is not JSON is bytes of no stated
		 * type (any producer's), not a broken event. The attributes
		 * passed, so only the data is left to set. */
		st = tb_ce_parse_binary(a.attrs, a.n, NULL, NULL, 0, ev, err, errlen);
		ev->data_bytes = value;
		ev->data_len = len;
		ev->has_data = true;
	}
	if (st) {
		free(a.buf);
		return st;
	}
	ev->owned = a.buf; /* behind the attributes, freed with the event */
	return TB_CE_OK;
}
