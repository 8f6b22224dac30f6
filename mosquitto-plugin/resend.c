/*
 * QoS 2 retransmissions keep the id the broker generated for them (opt-in:
 * ingest.qos2_resend_clients).
 *
 * Mosquitto 2.0.11 runs MOSQ_EVT_MESSAGE before its own duplicate
 * detection and tells a plugin neither the packet id nor the DUP flag. A
 * client that never saw the PUBREC resends the PUBLISH, byte for byte, on
 * its next connection; Mosquitto recognises it by its packet id and does
 * not deliver it again, but the plugin sees an ordinary message and
 * produces it again. When the event carries its own id that second record
 * is a duplicate consumers drop on (source, id); when the broker generated
 * the id, a new one would make it a second event.
 *
 * So for each client the plugin remembers the id (and time) it generated
 * for each of the client's last RESEND__SLOTS accepted QoS 2 events, with a
 * digest of topic, payload and MQTT v5 attributes. A QoS 2 PUBLISH on the
 * client's next connection identical to one sent on the previous
 * connection is given the same id and time. It is still produced: Kafka
 * keeps everything it was sent, and the copy is recognisably the same
 * event. Within a connection nothing matches: clients resend only after a
 * reconnect, so identical messages there are distinct events.
 *
 * The price, and why it is off by default: without the packet id, a new
 * event identical to one the client sent (and completed) on its previous
 * connection is taken for a retransmission too. Only for clients whose
 * id-less events are never byte-identical (a timestamp or nonce in data).
 *
 * Clients are forgotten least recently active first beyond
 * ingest.qos2_resend_clients. Main thread only, like every callback.
 */
#include <stdlib.h>
#include <string.h>

#include "tributary.h"
#include "tributary/util.h"

#define RESEND__SLOTS 32 /* beyond Mosquitto's default 20 in-flight QoS 2 messages */

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

struct tbp_resend {
	size_t max_clients, nclients;
	struct resend__client *newest, *oldest;
	size_t nbuckets; /* a power of two */
	struct resend__client *buckets[];
};

static uint64_t resend__id_hash(const char *client_id)
{
	return tb_fnv1a(TB_FNV1A_BASIS, client_id, strlen(client_id));
}

static struct resend__client *resend__find(struct tbp_resend *r, const char *client_id, uint64_t h)
{
	for (struct resend__client *c = r->buckets[h & (r->nbuckets - 1)]; c; c = c->hnext)
		if (c->hash == h && !strcmp(c->client_id, client_id))
			return c;
	return NULL;
}

static void resend__unlink(struct tbp_resend *r, struct resend__client *c)
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
static void resend__touch(struct tbp_resend *r, struct resend__client *c, bool linked)
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

static void resend__forget_oldest(struct tbp_resend *r)
{
	struct resend__client *c = r->oldest, **pp;
	resend__unlink(r, c);
	for (pp = &r->buckets[c->hash & (r->nbuckets - 1)]; *pp != c; pp = &(*pp)->hnext)
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
	struct tbp_resend *r = userdata;
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
	size_t nbuckets = 16;
	while (nbuckets < tb->resend_clients && nbuckets < ((size_t)1 << 22))
		nbuckets *= 2;
	struct tbp_resend *r = calloc(1, sizeof(*r) + nbuckets * sizeof(r->buckets[0]));
	if (!r)
		return MOSQ_ERR_NOMEM;
	r->max_clients = tb->resend_clients;
	r->nbuckets = nbuckets;
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
	struct tbp_resend *r = tb->resend;
	if (!r)
		return;
	mosquitto_callback_unregister(tb->pid, MOSQ_EVT_DISCONNECT, resend__on_disconnect, NULL);
	while (r->oldest)
		resend__forget_oldest(r);
	free(r);
	tb->resend = NULL;
}

/* Strings with their terminators, so that boundaries cannot shift; the
 * payload's length is kept beside the digest. 64 bits only need to tell one
 * client's few dozen messages apart. */
static uint64_t resend__digest_str(uint64_t h, const char *s)
{
	return tb_fnv1a(h, s ? s : "", s ? strlen(s) + 1 : 1);
}

void resend__check(struct tributary *tb, const struct mosquitto_evt_message *msg,
                   const tb_ce_attr *attrs, size_t nattrs, const char *content_type, tb_event *ev,
                   struct resend__check *chk)
{
	struct tbp_resend *r = tb->resend;
	const char *id = mosquitto_client_id(msg->client);
	bool clean = mosquitto_client_clean_session(msg->client);
	*chk = (struct resend__check){.matched = -1};
	/* An MQTT 3.1.1 clean session never resends; an MQTT 5 clean start
	 * may leave a session (its expiry) that a later connection resends. */
	if (!r || !id || tb_ce_attr_string(ev, "id") ||
	    (clean && mosquitto_client_protocol_version(msg->client) < 5))
		return;
	chk->active = true;
	chk->time_generated = !tb_ce_attr_string(ev, "time");
	uint64_t h = resend__digest_str(TB_FNV1A_BASIS, msg->topic);
	h = tb_fnv1a(h, msg->payload, msg->payloadlen);
	h = resend__digest_str(h, content_type);
	for (size_t i = 0; i < nattrs; i++)
		h = resend__digest_str(resend__digest_str(h, attrs[i].name), attrs[i].value);
	chk->digest = h ? h : 1; /* 0 marks an empty slot */
	chk->len = msg->payloadlen;

	struct resend__client *c = resend__find(r, id, resend__id_hash(id));
	if (!c)
		return;
	if (clean) {
		/* The session this connection started afresh took the old one's
		 * unacknowledged messages with it. */
		memset(c->slots, 0, sizeof(c->slots));
		return;
	}
	/* Newest first: of identical copies, the last one sent is resent. */
	for (unsigned n = 1; n <= RESEND__SLOTS; n++) {
		unsigned i = (c->next + RESEND__SLOTS - n) % RESEND__SLOTS;
		struct resend__slot *s = &c->slots[i];
		/* Only the previous connection's: its unacknowledged messages are
		 * the ones resent, and a resent one is recorded again once accepted. */
		if (s->digest != chk->digest || s->len != chk->len || s->conn + 1 != c->conn)
			continue;
		if (tb_ce_reuse_generated(ev, s->id, s->time[0] ? s->time : NULL) == 1)
			chk->matched = (int)i;
		return;
	}
}

void resend__accepted(struct tributary *tb, struct mosquitto *client,
                      const struct resend__check *chk, const tb_event *ev)
{
	struct tbp_resend *r = tb->resend; /* chk->active: on, and the client has an id */
	const char *id = mosquitto_client_id(client);
	size_t idlen = strlen(id);
	uint64_t h = resend__id_hash(id);
	struct resend__client *c = resend__find(r, id, h);
	bool linked = c != NULL;
	if (c && chk->matched >= 0) {
		c->slots[chk->matched].digest = 0; /* recorded afresh below */
		atomic_fetch_add(&tb->stats.resent, 1);
	}
	if (!c) {
		if (r->nclients == r->max_clients)
			resend__forget_oldest(r);
		if (!(c = calloc(1, sizeof(*c) + idlen + 1)))
			return; /* its retransmission, if any, gets a new id: as without this */
		memcpy(c->client_id, id, idlen + 1);
		c->hash = h;
		c->hnext = r->buckets[h & (r->nbuckets - 1)];
		r->buckets[h & (r->nbuckets - 1)] = c;
		r->nclients++;
	}
	resend__touch(r, c, linked);
	c->current = client;
	struct resend__slot *s = &c->slots[c->next];
	c->next = (c->next + 1) % RESEND__SLOTS;
	s->digest = chk->digest;
	s->len = chk->len;
	s->conn = c->conn;
	snprintf(s->id, sizeof(s->id), "%s", ev->gen_id);
	snprintf(s->time, sizeof(s->time), "%s", chk->time_generated ? ev->gen_time : "");
}
