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
	case TB_CE_OK: return "ok";
	case TB_CE_INVALID_UTF8: return "invalid_utf8";
	case TB_CE_INVALID_JSON: return "invalid_json";
	case TB_CE_NOT_AN_EVENT: return "not_an_event";
	case TB_CE_MISSING_ATTRIBUTE: return "missing_attribute";
	case TB_CE_INVALID_ATTRIBUTE: return "invalid_attribute";
	case TB_CE_INVALID_DATA: return "invalid_data";
	case TB_CE_NO_MEMORY: return "out_of_memory";
	}
	return "unknown";
}

void tb_event_clear(tb_event *ev)
{
	json_decref(ev->attrs);
	tjs_doc_free(ev->doc);
	free(ev->owned);
	memset(ev, 0, sizeof(*ev));
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

/* The ingest path parses with the validator's own document parser: one
 * allocation, no recursion, and several times faster than building jansson
 * values, which matters on the broker's main thread. It accepts exactly what
 * json_loadb(JSON_DECODE_ANY | JSON_REJECT_DUPLICATES) accepts. */
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

static int ce__attr_from_value(json_t *attrs, const char *key, const tjs_value *v)
{
	size_t n;
	const char *str;
	switch (tjs_value_type(v)) {
	case JSON_STRING:
		str = tjs_value_string(v, &n);
		return json_object_set_new(attrs, key, json_stringn(str, n));
	case JSON_INTEGER:
		return json_object_set_new(attrs, key, json_integer(tjs_value_integer(v)));
	case JSON_TRUE:
		return json_object_set_new(attrs, key, json_true());
	case JSON_FALSE:
		return json_object_set_new(attrs, key, json_false());
	default:
		return 1;
	}
}

tb_ce_status tb_ce_parse_structured(const char *payload, size_t len, tb_event *ev, char *err,
				    size_t errlen)
{
	char perr[256];
	memset(ev, 0, sizeof(*ev));
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
	ev->doc = doc;
	tb_ce_status st = TB_CE_OK;
	const tjs_value *root = tjs_doc_root(doc);
	if (tjs_value_type(root) != JSON_OBJECT) {
		snprintf(err, errlen, "payload is JSON but not a CloudEvents object");
		st = TB_CE_NOT_AN_EVENT;
		goto done;
	}
	ev->attrs = json_object();
	if (!ev->attrs) {
		st = TB_CE_NO_MEMORY;
		goto done;
	}
	const tjs_value *data = NULL, *data_b64 = NULL;
	size_t count = tjs_value_size(root), data_index = 0;
	for (size_t i = 0; i < count; i++) {
		const char *key;
		size_t keylen;
		const tjs_value *value = tjs_value_member(root, i, &key, &keylen);
		if (!strcmp(key, "data")) {
			data = value;
			data_index = i;
			continue;
		}
		if (!strcmp(key, "data_base64")) {
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
		if (ce__attr_from_value(ev->attrs, key, value)) {
			snprintf(err, errlen, "attribute '%s' must be a string, integer or boolean",
				 key);
			st = TB_CE_INVALID_ATTRIBUTE;
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
			/* Text data of a non-JSON type is carried as the bytes of the string. */
			size_t n;
			const char *str = tjs_value_string(data, &n);
			ev->owned = malloc(n + 1);
			if (ev->owned) {
				memcpy(ev->owned, str, n + 1);
				ev->data_len = n;
			}
		}
		if (!ev->data_bytes && !ev->owned) {
			st = TB_CE_NO_MEMORY;
			goto done;
		}
		if (ev->owned)
			ev->data_bytes = ev->owned;
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
		int out = in ? EVP_DecodeBlock((unsigned char *)ev->owned, (const unsigned char *)b64,
					       (int)in)
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
			/* The event's own document is no longer needed: the data's replaces it. */
			tjs_doc_free(ev->doc);
			ev->doc = NULL;
			st = ce__parse_json_data(ev, ev->data_bytes, ev->data_len, err, errlen);
			if (st)
				goto done;
		}
	}
	if (!ev->data) {
		/* Nothing points into the event's document any more. */
		tjs_doc_free(ev->doc);
		ev->doc = NULL;
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
	memset(ev, 0, sizeof(*ev));
	ev->attrs = json_object();
	if (!ev->attrs)
		return TB_CE_NO_MEMORY;
	for (size_t i = 0; i < nattrs; i++) {
		const char *name = attrs[i].name;
		if (!ce__name_ok(name) || !strcmp(name, "data") || !strcmp(name, "datacontenttype")) {
			snprintf(err, errlen, "user property '%s' is not a valid attribute name",
				 name);
			tb_event_clear(ev);
			return TB_CE_INVALID_ATTRIBUTE;
		}
		if (json_object_get(ev->attrs, name)) {
			snprintf(err, errlen, "attribute '%s' is given twice", name);
			tb_event_clear(ev);
			return TB_CE_INVALID_ATTRIBUTE;
		}
		json_object_set_new(ev->attrs, name, json_string(attrs[i].value));
	}
	if (content_type)
		json_object_set_new(ev->attrs, "datacontenttype", json_string(content_type));
	ev->has_data = len > 0;
	ev->data_bytes = payload;
	ev->data_len = len;
	if (len > 0 && tb_ce_content_type_is_json(content_type)) {
		if (!tb_utf8_valid(payload, len)) {
			snprintf(err, errlen, "data is not valid UTF-8");
			tb_event_clear(ev);
			return TB_CE_INVALID_UTF8;
		}
		tb_ce_status st = ce__parse_json_data(ev, payload, len, err, errlen);
		if (st) {
			tb_event_clear(ev);
			return st;
		}
	}
	return TB_CE_OK;
}

const char *tb_ce_attr_string(const tb_event *ev, const char *name)
{
	return json_string_value(json_object_get(ev->attrs, name));
}

static tb_ce_status ce__require(tb_event *ev, const char *name, char *err, size_t errlen)
{
	json_t *v = json_object_get(ev->attrs, name);
	if (!v) {
		snprintf(err, errlen, "required attribute '%s' is missing", name);
		return TB_CE_MISSING_ATTRIBUTE;
	}
	if (!json_is_string(v) || json_string_length(v) == 0) {
		snprintf(err, errlen, "attribute '%s' must be a non-empty string", name);
		return TB_CE_INVALID_ATTRIBUTE;
	}
	return TB_CE_OK;
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
	if (!json_object_get(ev->attrs, "id")) {
		char id[TB_UUID_LEN + 1];
		tb_uuid7(id);
		json_object_set_new(ev->attrs, "id", json_string(id));
	}
	if (!json_object_get(ev->attrs, "time")) {
		char t[TB_TIME_LEN + 1];
		tb_time_rfc3339(t);
		json_object_set_new(ev->attrs, "time", json_string(t));
	}
	if ((st = ce__require(ev, "id", err, errlen)) || (st = ce__require(ev, "source", err, errlen)) ||
	    (st = ce__require(ev, "type", err, errlen)) || (st = ce__require(ev, "time", err, errlen)))
		return st;
	if (!tb_time_is_rfc3339(tb_ce_attr_string(ev, "time"))) {
		snprintf(err, errlen, "attribute 'time' is not an RFC 3339 timestamp");
		return TB_CE_INVALID_ATTRIBUTE;
	}
	static const char *const strings[] = {"subject", "dataschema", "datacontenttype"};
	for (size_t i = 0; i < sizeof(strings) / sizeof(strings[0]); i++) {
		json_t *v = json_object_get(ev->attrs, strings[i]);
		if (v && (!json_is_string(v) || json_string_length(v) == 0)) {
			snprintf(err, errlen, "attribute '%s' must be a non-empty string",
				 strings[i]);
			return TB_CE_INVALID_ATTRIBUTE;
		}
	}
	if (ev->has_data && !ev->data && !json_object_get(ev->attrs, "datacontenttype")) {
		/* data_base64 without a content type: opaque bytes. */
		json_object_set_new(ev->attrs, "datacontenttype",
				    json_string("application/octet-stream"));
	}
	return TB_CE_OK;
}

int tb_ce_set_authcontext(tb_event *ev, const char *authtype, const char *authid)
{
	json_object_del(ev->attrs, "authclaims");
	if (json_object_set_new(ev->attrs, "authtype", json_string(authtype)))
		return -1;
	if (authid)
		return json_object_set_new(ev->attrs, "authid", json_string(authid));
	json_object_del(ev->attrs, "authid");
	return 0;
}

int tb_ce_each_kafka_header(const tb_event *ev,
			    int (*add)(void *ctx, const char *name, const char *value, size_t len),
			    void *ctx)
{
	const char *key;
	json_t *v;
	char name[80], num[32];
	json_object_foreach(ev->attrs, key, v)
	{
		const char *s;
		size_t len;
		int rc;
		if (json_is_string(v)) {
			s = json_string_value(v);
			len = json_string_length(v);
		} else if (json_is_integer(v)) {
			len = (size_t)snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
					       json_integer_value(v));
			s = num;
		} else {
			s = json_is_true(v) ? "true" : "false";
			len = strlen(s);
		}
		if (!strcmp(key, "datacontenttype"))
			rc = add(ctx, "content-type", s, len);
		else {
			/* Attribute names are at most 64 characters (ce__name_ok). */
			size_t kl = strlen(key);
			if (kl + 4 > sizeof(name))
				return -1;
			memcpy(name, "ce_", 3);
			memcpy(name + 3, key, kl + 1);
			rc = add(ctx, name, s, len);
		}
		if (rc)
			return rc;
	}
	return 0;
}

char *tb_ce_to_json(const tb_event *ev, size_t *len)
{
	size_t alen;
	char *attrs = tb_json_encode(ev->attrs, &alen);
	char *out = NULL;
	if (!attrs)
		return NULL;
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
		return out;
	}
	if (!ev->has_data) {
		if (len)
			*len = alen;
		return attrs;
	}
	free(attrs);
	/* Non-JSON data travels as base64, per the JSON format. */
	json_t *obj = json_copy(ev->attrs);
	if (!obj)
		return NULL;
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
