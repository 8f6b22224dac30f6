/*
 * Confluent's wire format back to JSON, with a cache of schemas by id; see
 * tributary/wire.h.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tributary/avro.h"
#include "tributary/wire.h"

enum wire_kind { WIRE_JSON, WIRE_AVRO, WIRE_BAD };

struct wire_entry {
	int id;
	enum wire_kind kind;
	tb_avro_schema *avro;    /* WIRE_AVRO */
	char *error;             /* WIRE_BAD: why its records cannot be decoded */
	time_t retry_at;         /* WIRE_BAD: asked again from then on; 0: never */
	struct wire_entry *next; /* retired */
};

struct tb_wire_cache {
	pthread_mutex_t lock;
	struct wire_entry **e; /* sorted by id; entries never change once in */
	size_t n, cap;
	/* failures replaced once asked again: a reader may still be reading
	 * one (entries are read without the lock), so they go when the cache
	 * does */
	struct wire_entry *retired;
};

int tb_wire_schema_id(const void *value, size_t len, int *id)
{
	const unsigned char *p = value;
	if (!p || len < TB_WIRE_HEADER_LEN || p[0] != 0)
		return -1;
	uint32_t v = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
	*id = (int)v;
	return 0;
}

tb_wire_cache *tb_wire_cache_new(void)
{
	tb_wire_cache *c = calloc(1, sizeof(*c));
	if (c && pthread_mutex_init(&c->lock, NULL)) {
		free(c);
		return NULL;
	}
	return c;
}

static void wire__entry_free(struct wire_entry *e)
{
	if (!e)
		return;
	tb_avro_schema_free(e->avro);
	free(e->error);
	free(e);
}

void tb_wire_cache_free(tb_wire_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n; i++)
		wire__entry_free(c->e[i]);
	while (c->retired) {
		struct wire_entry *e = c->retired;
		c->retired = e->next;
		wire__entry_free(e);
	}
	free(c->e);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* The index of id, or where it would go; c->lock held. */
static size_t wire__find(const tb_wire_cache *c, int id, bool *found)
{
	size_t lo = 0, hi = c->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->e[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < c->n && c->e[lo]->id == id;
	return lo;
}

/* The entry for id, NULL when missing (or a failure whose time to ask
 * again has come). */
static const struct wire_entry *wire__get(tb_wire_cache *c, int id)
{
	bool found;
	const struct wire_entry *e = NULL;
	pthread_mutex_lock(&c->lock);
	size_t i = wire__find(c, id, &found);
	if (found)
		e = c->e[i];
	pthread_mutex_unlock(&c->lock);
	if (e && e->kind == WIRE_BAD && e->retry_at && time(NULL) >= e->retry_at)
		return NULL;
	return e;
}

int tb_wire_cached(tb_wire_cache *c, int id)
{
	return wire__get(c, id) != NULL;
}

tb_wire_status tb_wire_decode(tb_wire_cache *c, const void *value, size_t len, int *id,
                              const char **json, size_t *jsonlen, char **owned, char *err,
                              size_t errlen)
{
	int sid;
	*owned = NULL;
	if (tb_wire_schema_id(value, len, &sid)) {
		snprintf(err, errlen, "not in the Schema Registry wire format (%s)",
		         len < TB_WIRE_HEADER_LEN ? "shorter than its 5-byte header"
		                                  : "the first byte is not the magic byte 0");
		return TB_WIRE_BAD;
	}
	if (id)
		*id = sid;
	const struct wire_entry *e = wire__get(c, sid);
	if (!e)
		return TB_WIRE_MISSING;
	const char *payload = (const char *)value + TB_WIRE_HEADER_LEN;
	size_t plen = len - TB_WIRE_HEADER_LEN;
	switch (e->kind) {
	case WIRE_JSON:
		*json = payload;
		*jsonlen = plen;
		return TB_WIRE_OK;
	case WIRE_AVRO:
		*owned = tb_avro_decode_json(e->avro, payload, plen, jsonlen, err, errlen);
		if (!*owned)
			return TB_WIRE_BAD;
		*json = *owned;
		return TB_WIRE_OK;
	case WIRE_BAD:
		break;
	}
	snprintf(err, errlen, "schema id %d: %s", sid, e->error);
	return TB_WIRE_BAD;
}

int tb_wire_add(tb_wire_cache *c, int id, const char *schema_type, const char *schema,
                const char *error)
{
	char why[512];
	struct wire_entry *e = calloc(1, sizeof(*e));
	if (!e)
		return -1;
	e->id = id;
	if (error) {
		e->kind = WIRE_BAD;
		e->retry_at = time(NULL) + TB_WIRE_UNKNOWN_RETRY_S;
		snprintf(why, sizeof(why), "%s", error);
	} else if (!schema_type || !strcmp(schema_type, "AVRO")) {
		e->avro = tb_avro_schema_parse(schema, strlen(schema), why, sizeof(why));
		e->kind = e->avro ? WIRE_AVRO : WIRE_BAD;
	} else if (!strcmp(schema_type, "JSON")) {
		e->kind = WIRE_JSON;
	} else {
		e->kind = WIRE_BAD;
		snprintf(why, sizeof(why), "%s records are not decoded (only JSON Schema and Avro)",
		         schema_type);
	}
	if (e->kind == WIRE_BAD && !(e->error = strdup(why))) {
		wire__entry_free(e);
		return -1;
	}
	pthread_mutex_lock(&c->lock);
	bool found;
	size_t i = wire__find(c, id, &found);
	if (found) {
		/* a failure asked again */
		c->e[i]->next = c->retired;
		c->retired = c->e[i];
		c->e[i] = e;
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? 2 * c->cap : 16;
		struct wire_entry **ne = realloc(c->e, cap * sizeof(*ne));
		if (!ne) {
			pthread_mutex_unlock(&c->lock);
			wire__entry_free(e);
			return -1;
		}
		c->e = ne;
		c->cap = cap;
	}
	memmove(c->e + i + 1, c->e + i, (c->n - i) * sizeof(*c->e));
	c->e[i] = e;
	c->n++;
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int tb_wire_fetch(tb_wire_cache *c, tb_registry *r, int id, tb_registry_error *e)
{
	tb_registry_schema s;
	char why[700];
	memset(&s, 0, sizeof(s));
	if (tb_registry_get_by_id(r, id, &s, e)) {
		if (e->error_code != TB_REGISTRY_SCHEMA_NOT_FOUND)
			return -1;
		snprintf(why, sizeof(why), "not in the registry (%d %s)", e->error_code,
		         e->message);
		return tb_wire_add(c, id, NULL, NULL, why) ? -1 : 0;
	}
	int rc = tb_wire_add(c, id, s.schema_type, s.schema ? s.schema : "", NULL);
	tb_registry_schema_clear(&s);
	if (rc) {
		e->http_status = 0;
		e->error_code = 0;
		snprintf(e->message, sizeof(e->message), "out of memory");
	}
	return rc;
}
