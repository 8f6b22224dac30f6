/*
 * QoS 2 retransmissions keep the id the broker generated for them.
 *
 * Mosquitto 2.0.11 runs MOSQ_EVT_MESSAGE before its own duplicate
 * detection and tells a plugin neither the packet id nor the DUP flag. A
 * client that never saw the PUBREC resends the PUBLISH, byte for byte, on
 * its next connection; Mosquitto recognises it (same packet id, topic and
 * payload) and does not deliver it again, but the plugin sees an ordinary
 * message and produces it again. When the event carries its own id that
 * second record is a duplicate consumers drop on (source, id); when the
 * broker generated the id, a new one would make it a second event.
 *
 * So for each client the plugin remembers the id (and time) it generated
 * for each of the client's last RESEND__SLOTS accepted QoS 2 events, with a
 * digest of topic and payload (what Mosquitto compares). A QoS 2 PUBLISH on
 * the client's next connection identical to one sent on the previous
 * connection is given the same id and time. It is still produced: Kafka
 * keeps everything it was sent, and the copy is recognisably the same
 * event. Within a connection nothing matches: clients resend only after a
 * reconnect, so identical messages there are distinct events. A connection
 * with a clean start has no session to resend from.
 *
 * Clients are forgotten oldest first beyond ingest.qos2_resend_clients.
 * Main thread only, like every callback.
 */
#include <stdlib.h>
#include <string.h>

#include "tributary.h"

#define RESEND__SLOTS 32 /* beyond Mosquitto's default 20 in-flight QoS 2 messages */
#define RESEND__BUCKETS 4096

struct resend__slot {
	uint64_t digest; /* 0: empty */
	uint32_t len;
	uint32_t conn; /* the client's connection number when recorded */
	char id[sizeof(((tb_event *)0)->gen_id)];
	char time[sizeof(((tb_event *)0)->gen_time)]; /* "": the client's own */
};

struct resend__client {
	struct resend__client *hnext;         /* bucket chain */
	struct resend__client *newer, *older; /* use order */
	uint64_t hash;
	uint32_t conn; /* connections that sent QoS 2 events, less one */
	/* The connection that recorded the newest slot; NULL once it is gone. */
	const struct mosquitto *current;
	unsigned next; /* ring position */
	struct resend__slot slots[RESEND__SLOTS];
	char client_id[];
};

struct tb_resend {
	size_t max_clients, nclients;
	struct resend__client *newest, *oldest;
	struct resend__client *buckets[RESEND__BUCKETS];
};

#define RESEND__FNV_BASIS 0xcbf29ce484222325ULL

/* FNV-1a: a client's digests only need to tell its own few messages apart. */
static uint64_t resend__fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 0x100000001b3ULL;
	return h;
}

static uint64_t resend__id_hash(const char *client_id)
{
	return resend__fnv(RESEND__FNV_BASIS, client_id, strlen(client_id));
}

static struct resend__client *resend__find(struct tb_resend *r, const char *client_id, uint64_t h)
{
	for (struct resend__client *c = r->buckets[h % RESEND__BUCKETS]; c; c = c->hnext)
		if (c->hash == h && !strcmp(c->client_id, client_id))
			return c;
	return NULL;
}

static void resend__unlink(struct tb_resend *r, struct resend__client *c)
{
	if (c->newer)
		c->newer->older = c->older;
	else
		r->newest = c->older;
	if (c->older)
		c->older->newer = c->newer;
	else
		r->oldest = c->newer;
	c->newer = c->older = NULL;
}

/* Makes `c` the newest; `linked`: it is in the list already. */
static void resend__touch(struct tb_resend *r, struct resend__client *c, bool linked)
{
	if (r->newest == c)
		return;
	if (linked)
		resend__unlink(r, c);
	c->older = r->newest;
	if (r->newest)
		r->newest->newer = c;
	r->newest = c;
	if (!r->oldest)
		r->oldest = c;
}

static void resend__forget_oldest(struct tb_resend *r)
{
	struct resend__client *c = r->oldest, **pp;
	resend__unlink(r, c);
	for (pp = &r->buckets[c->hash % RESEND__BUCKETS]; *pp != c; pp = &(*pp)->hnext)
		;
	*pp = c->hnext;
	free(c);
	r->nclients--;
}

/* Numbers the connections that sent QoS 2 events. Mosquitto 2.0.11 may
 * report a disconnect twice (again when a new connection takes the session
 * over); only the recording connection's first one counts. A connection
 * that sent nothing in between does not count: its successor resends. */
static int resend__on_disconnect(int event, void *event_data, void *userdata)
{
	struct tb_resend *r = userdata;
	struct mosquitto_evt_disconnect *ed = event_data;
	const char *id = mosquitto_client_id(ed->client);
	(void)event;
	if (!id)
		return MOSQ_ERR_SUCCESS;
	struct resend__client *c = resend__find(r, id, resend__id_hash(id));
	if (c && c->current == ed->client) {
		c->conn++;
		c->current = NULL;
	}
	return MOSQ_ERR_SUCCESS;
}

int resend__init(struct tributary *tb)
{
	if (tb->resend_clients == 0)
		return MOSQ_ERR_SUCCESS;
	struct tb_resend *r = calloc(1, sizeof(*r));
	if (!r)
		return MOSQ_ERR_NOMEM;
	r->max_clients = tb->resend_clients;
	int rc = mosquitto_callback_register(tb->pid, MOSQ_EVT_DISCONNECT, resend__on_disconnect,
	                                     NULL, r);
	if (rc) {
		mosquitto_log_printf(
		    MOSQ_LOG_ERR, TB_LOG_PREFIX "cannot register the disconnect callback (%d)", rc);
		free(r);
		return rc;
	}
	tb->resend = r;
	return MOSQ_ERR_SUCCESS;
}

void resend__cleanup(struct tributary *tb)
{
	struct tb_resend *r = tb->resend;
	if (!r)
		return;
	mosquitto_callback_unregister(tb->pid, MOSQ_EVT_DISCONNECT, resend__on_disconnect, NULL);
	while (r->oldest)
		resend__forget_oldest(r);
	free(r);
	tb->resend = NULL;
}

uint64_t resend__digest(const char *topic, const void *payload, uint32_t len)
{
	uint64_t h = resend__fnv(RESEND__FNV_BASIS, topic, strlen(topic) + 1);
	h = resend__fnv(h, payload, len);
	return h ? h : 1; /* 0 marks an empty slot */
}

bool resend__reuse(struct tributary *tb, struct mosquitto *client, uint64_t digest, uint32_t len,
                   tb_event *ev)
{
	struct tb_resend *r = tb->resend;
	const char *id = mosquitto_client_id(client);
	if (!r || !id || mosquitto_client_clean_session(client))
		return false;
	struct resend__client *c = resend__find(r, id, resend__id_hash(id));
	if (!c)
		return false;
	for (unsigned i = 0; i < RESEND__SLOTS; i++) {
		struct resend__slot *s = &c->slots[i];
		/* Only the previous connection's: its unacknowledged messages are
		 * the ones resent, and a resent one is recorded again below. */
		if (s->digest != digest || s->len != len || s->conn + 1 != c->conn)
			continue;
		if (tb_ce_reuse_generated(ev, s->id, s->time[0] ? s->time : NULL))
			return false;
		s->digest = 0; /* it is recorded afresh once accepted */
		return true;
	}
	return false;
}

void resend__remember(struct tributary *tb, struct mosquitto *client, uint64_t digest, uint32_t len,
                      const tb_event *ev, bool time_generated)
{
	struct tb_resend *r = tb->resend;
	const char *id = mosquitto_client_id(client);
	if (!r || !id)
		return;
	size_t idlen = strlen(id);
	uint64_t h = resend__id_hash(id);
	struct resend__client *c = resend__find(r, id, h);
	bool linked = c != NULL;
	if (!c) {
		if (r->nclients == r->max_clients)
			resend__forget_oldest(r);
		if (!(c = calloc(1, sizeof(*c) + idlen + 1)))
			return; /* the retransmission, if any, gets a new id: as without this */
		memcpy(c->client_id, id, idlen + 1);
		c->hash = h;
		c->hnext = r->buckets[h % RESEND__BUCKETS];
		r->buckets[h % RESEND__BUCKETS] = c;
		r->nclients++;
	}
	resend__touch(r, c, linked);
	c->current = client;
	struct resend__slot *s = &c->slots[c->next];
	c->next = (c->next + 1) % RESEND__SLOTS;
	s->digest = digest;
	s->len = len;
	s->conn = c->conn;
	snprintf(s->id, sizeof(s->id), "%s", ev->gen_id);
	snprintf(s->time, sizeof(s->time), "%s", time_generated ? ev->gen_time : "");
}
