/*
 * Waking the broker's main loop when records are waiting.
 *
 * Mosquitto 2.0.11 runs one loop: queue_plugin_msgs() (what plugins
 * published), ..., mux__handle() (epoll_wait with a 100 ms timeout when
 * idle), ..., plugin__handle_tick(). A record handed over by the consumer
 * thread would wait for the next tick, up to 100 ms. The plugin cannot add
 * a descriptor to the broker's epoll set, but it can make one that the
 * broker already polls readable: it keeps a plain MQTT 3.1.1 connection to
 * one of the broker's own listeners and sends a 2-byte PINGREQ when a
 * record arrives. epoll_wait returns, the broker answers the ping, the tick
 * runs and publishes, and the next iteration starts with
 * queue_plugin_msgs(), which delivers them at once. See docs/outbound.md
 * for measurements.
 *
 *   "wake": "127.0.0.1:1883"
 *   "wake": {"address": "127.0.0.1:1883", "username": "...", "password": "...",
 *            "client_id": "...", "after_publish": false}
 *
 * The connection is opened and read (CONNACK, PINGRESPs) on the main thread
 * only; the consumer thread only writes PINGREQs, under `lock`.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "outbound.h"

#define WAKE_KEEPALIVE 60

static int wake__fail(const char *msg)
{
	mosquitto_log_printf(MOSQ_LOG_ERR, TB_LOG_PREFIX "config: outbound.wake: %s", msg);
	return MOSQ_ERR_INVAL;
}

void outbound__wake_init(struct ob_wake *w)
{
	memset(w, 0, sizeof(*w));
	pthread_mutex_init(&w->lock, NULL);
	w->fd = -1;
	atomic_store(&w->pending, false);
}

static int wake__address(struct ob_wake *w, const char *addr)
{
	const char *colon = strrchr(addr, ':');
	if (!colon || colon == addr || !colon[1] ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return wake__fail("address must be HOST:PORT of one of this broker's listeners, "
		                  "e.g. \"127.0.0.1:1883\"");
	const char *h = addr;
	size_t hl = (size_t)(colon - addr);
	if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	w->host = strndup(h, hl);
	w->port = strdup(colon + 1);
	return w->host && w->port ? MOSQ_ERR_SUCCESS : MOSQ_ERR_NOMEM;
}

int outbound__wake_config(struct ob_wake *w, const json_t *v, const char *broker_id)
{
	const char *addr = json_string_value(v);
	const char *cid = NULL, *user = NULL, *pass = NULL;
	if (json_is_object(v)) {
		const char *key;
		json_t *val;
		json_object_foreach((json_t *)v, key, val)
		{
			if (strcmp(key, "address") && strcmp(key, "username") &&
			    strcmp(key, "password") && strcmp(key, "client_id") &&
			    strcmp(key, "after_publish")) {
				mosquitto_log_printf(MOSQ_LOG_ERR,
				                     TB_LOG_PREFIX
				                     "config: outbound.wake.%s: unknown "
				                     "option",
				                     key);
				return MOSQ_ERR_INVAL;
			}
		}
		addr = json_string_value(json_object_get(v, "address"));
		cid = json_string_value(json_object_get(v, "client_id"));
		user = json_string_value(json_object_get(v, "username"));
		pass = json_string_value(json_object_get(v, "password"));
		json_t *ap = json_object_get(v, "after_publish");
		if (ap && !json_is_boolean(ap))
			return wake__fail("after_publish must be true or false");
		w->after_publish = ap && json_is_true(ap);
		if (pass && !user)
			return wake__fail("a password needs a username");
	} else if (!addr) {
		return wake__fail("must be \"HOST:PORT\", an object {\"address\": ...}, or false");
	}
	if (!addr)
		return wake__fail("address is required");
	int rc = wake__address(w, addr);
	if (rc)
		return rc;
	if (cid) {
		w->client_id = strdup(cid);
	} else {
		size_t n = strlen(broker_id) + 32;
		w->client_id = malloc(n);
		if (w->client_id)
			snprintf(w->client_id, n, "tributary-wake-%s", broker_id);
	}
	w->username = user ? strdup(user) : NULL;
	w->password = pass ? strdup(pass) : NULL;
	if (!w->client_id || (user && !w->username) || (pass && !w->password))
		return MOSQ_ERR_NOMEM;
	if (strlen(w->client_id) > 65535 || (user && strlen(user) > 65535) ||
	    (pass && strlen(pass) > 65535))
		return wake__fail("client_id, username and password are at most 65535 bytes");
	return MOSQ_ERR_SUCCESS;
}

void outbound__wake_free(struct ob_wake *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	free(w->host);
	free(w->port);
	free(w->username);
	free(w->password);
	free(w->client_id);
	w->host = w->port = w->username = w->password = w->client_id = NULL;
	pthread_mutex_destroy(&w->lock);
}

static size_t wake__put_string(unsigned char *p, const char *s)
{
	size_t n = strlen(s);
	p[0] = (unsigned char)(n >> 8);
	p[1] = (unsigned char)(n & 0xff);
	memcpy(p + 2, s, n);
	return n + 2;
}

/* MQTT 3.1.1 CONNECT, clean session, keepalive 60 s. */
static unsigned char *wake__connect_packet(const struct ob_wake *w, size_t *len)
{
	size_t rem = 10 + 2 + strlen(w->client_id);
	if (w->username)
		rem += 2 + strlen(w->username);
	if (w->password)
		rem += 2 + strlen(w->password);
	unsigned char *pkt = malloc(rem + 5);
	if (!pkt)
		return NULL;
	size_t i = 0, r = rem;
	pkt[i++] = 0x10;
	do {
		unsigned char b = r % 128;
		r /= 128;
		pkt[i++] = (unsigned char)(b | (r ? 0x80 : 0));
	} while (r);
	static const unsigned char vh[] = {0, 4, 'M', 'Q', 'T', 'T', 4};
	memcpy(pkt + i, vh, sizeof(vh));
	i += sizeof(vh);
	pkt[i++] = (unsigned char)(0x02 | (w->username ? 0x80 : 0) | (w->password ? 0x40 : 0));
	pkt[i++] = 0;
	pkt[i++] = WAKE_KEEPALIVE;
	i += wake__put_string(pkt + i, w->client_id);
	if (w->username)
		i += wake__put_string(pkt + i, w->username);
	if (w->password)
		i += wake__put_string(pkt + i, w->password);
	*len = i;
	return pkt;
}

static void wake__close(struct tb_outbound *ob, time_t retry_in)
{
	struct ob_wake *w = &ob->wake;
	pthread_mutex_lock(&w->lock);
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	pthread_mutex_unlock(&w->lock);
	w->retry_at = time(NULL) + retry_in;
	w->rxlen = w->skip = 0;
	w->connack_seen = false;
}

static void wake__open(struct tb_outbound *ob)
{
	struct ob_wake *w = &ob->wake;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	int fd = -1, on = 1;
	size_t plen = 0;
	unsigned char *pkt = NULL;
	int gai = getaddrinfo(w->host, w->port, &hints, &res);
	if (gai) {
		mosquitto_log_printf(MOSQ_LOG_ERR, TB_LOG_PREFIX "outbound.wake: %s:%s: %s",
		                     w->host, w->port, gai_strerror(gai));
		w->retry_at = time(NULL) + 30;
		return;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
		/* Loopback completes at once or nearly: a short wait, once. */
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (errno != EINPROGRESS || poll(&p, 1, 100) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
			if (soerr)
				errno = soerr;
			goto fail;
		}
	}
	pkt = wake__connect_packet(w, &plen);
	if (!pkt || send(fd, pkt, plen, MSG_NOSIGNAL) != (ssize_t)plen)
		goto fail;
	free(pkt);
	freeaddrinfo(res);
	pthread_mutex_lock(&w->lock);
	w->fd = fd;
	pthread_mutex_unlock(&w->lock);
	w->last_ping = time(NULL);
	w->rxlen = w->skip = 0;
	w->connack_seen = false;
	return;
fail:
	if (!w->warned)
		mosquitto_log_printf(MOSQ_LOG_WARNING,
		                     TB_LOG_PREFIX "outbound.wake: cannot connect to %s:%s (%s); "
		                                   "records wait for the next idle tick",
		                     w->host, w->port, strerror(errno));
	w->warned = true;
	free(pkt);
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	w->retry_at = time(NULL) + 5;
}

static void wake__ping(struct tb_outbound *ob)
{
	static const unsigned char pingreq[2] = {0xc0, 0x00};
	struct ob_wake *w = &ob->wake;
	pthread_mutex_lock(&w->lock);
	/* EAGAIN: the broker has not read the earlier pings yet, so its epoll
	 * already reports the socket readable; nothing more is needed. */
	if (w->fd >= 0 && send(w->fd, pingreq, 2, MSG_NOSIGNAL | MSG_DONTWAIT) == 2)
		atomic_fetch_add(&ob->stats.wakes, 1);
	pthread_mutex_unlock(&w->lock);
}

/* Any thread: wakes the loop unless a wake is already on its way. */
void outbound__wake(struct tb_outbound *ob)
{
	if (atomic_exchange(&ob->wake.pending, true))
		return;
	wake__ping(ob);
}

/* CONNACK, then PINGRESPs: read and checked, so that the broker's writes
 * never back up. Returns false when the connection must be closed. */
static bool wake__read(struct tb_outbound *ob, const unsigned char *b, size_t n)
{
	struct ob_wake *w = &ob->wake;
	for (size_t i = 0; i < n;) {
		if (w->skip) {
			size_t k = n - i < w->skip ? n - i : w->skip;
			i += k;
			w->skip -= k;
			continue;
		}
		w->rx[w->rxlen++] = b[i++];
		if (!w->connack_seen) {
			/* 0x20 0x02 flags rc */
			if ((w->rxlen == 1 && w->rx[0] != 0x20) || (w->rxlen == 2 && w->rx[1] != 2))
				return false;
			if (w->rxlen < 4)
				continue;
			w->rxlen = 0;
			if (w->rx[3] != 0) {
				mosquitto_log_printf(MOSQ_LOG_ERR,
				                     TB_LOG_PREFIX
				                     "outbound.wake: the broker refused "
				                     "the wake connection (CONNACK %u): "
				                     "set outbound.wake username/password, "
				                     "or a listener that accepts it",
				                     w->rx[3]);
				return false;
			}
			w->connack_seen = true;
			if (w->warned)
				mosquitto_log_printf(MOSQ_LOG_NOTICE,
				                     TB_LOG_PREFIX "outbound.wake: connected");
			w->warned = false;
			continue;
		}
		/* Then only PINGRESPs (0xd0 0x00) are expected; skip any body. */
		if (w->rxlen == 1) {
			if ((w->rx[0] >> 4) != 13)
				return false;
			continue;
		}
		if (w->rx[w->rxlen - 1] & 0x80) {
			if (w->rxlen == 5)
				return false;
			continue;
		}
		size_t rem = 0, mult = 1;
		for (size_t k = 1; k < w->rxlen; k++, mult *= 128)
			rem += (size_t)(w->rx[k] & 0x7f) * mult;
		w->rxlen = 0;
		w->skip = rem;
	}
	return true;
}

/* Main thread, every tick. */
void outbound__wake_service(struct tb_outbound *ob)
{
	struct ob_wake *w = &ob->wake;
	time_t now = time(NULL);
	if (w->fd < 0) {
		if (now >= w->retry_at)
			wake__open(ob);
		return;
	}
	for (;;) {
		unsigned char buf[512];
		ssize_t got = recv(w->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (got > 0) {
			if (!wake__read(ob, buf, (size_t)got)) {
				wake__close(ob, 30);
				return;
			}
			continue;
		}
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (got < 0 && errno == EINTR)
			continue;
		mosquitto_log_printf(MOSQ_LOG_WARNING,
		                     TB_LOG_PREFIX
		                     "outbound.wake: connection closed (%s); reconnecting",
		                     got == 0 ? "by the broker" : strerror(errno));
		wake__close(ob, 1);
		return;
	}
	if (now - w->last_ping >= WAKE_KEEPALIVE / 2) {
		w->last_ping = now;
		wake__ping(ob);
	}
}
