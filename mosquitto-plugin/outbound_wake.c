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
 *   "wake": "auto"                (the default) or "127.0.0.1:1883"
 *   "wake": {"address": "auto" | "127.0.0.1:1883", "username": "...",
 *            "password": "...", "client_id": "...", "after_publish": false}
 *   "wake": false                 (records wait for the idle tick)
 *
 * "auto" finds the broker's listeners among the process's own listening
 * sockets (a plugin cannot read the listener configuration) at the first
 * tick, when they are open, and takes the first that answers an MQTT
 * CONNECT with a CONNACK that accepts it: a websockets or TLS listener, or
 * one that refuses anonymous clients, is passed over. An address of
 * 0.0.0.0 or :: is reached through the loopback address.
 *
 * The connection is opened and read (CONNACK, PINGRESPs) on the main thread
 * only; the consumer thread only writes PINGREQs, under `lock`.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "outbound.h"

#define WAKE_KEEPALIVE 60
#define WAKE_CONNACK_TIMEOUT 2 /* s: a listener that does not answer is not MQTT */

static int wake__fail(const char *msg)
{
	return config__fail("outbound.wake: %s", msg);
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
			    strcmp(key, "after_publish"))
				return config__fail("outbound.wake.%s: unknown option", key);
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
		return wake__fail("must be \"auto\", \"HOST:PORT\", an object {\"address\": ...}, "
		                  "or false");
	}
	if (!addr)
		return wake__fail("address is required");
	int rc = MOSQ_ERR_SUCCESS;
	if (!strcmp(addr, "auto"))
		w->autodetect = true;
	else if ((rc = wake__address(w, addr)))
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

static void wake__close(struct tbp_outbound *ob, time_t retry_in)
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

/* The process's listening stream sockets, lowest descriptor first
 * (Mosquitto opens its listeners in the order of its configuration). */
static void wake__scan(struct ob_wake *w)
{
	int fds[OB_WAKE_MAX_CANDIDATES];
	w->ncand = w->cur = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return;
	int own = dirfd(d);
	struct dirent *e;
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name), v = 0;
		socklen_t vl = sizeof(v);
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);
		if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd == own ||
		    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) || !v)
			continue;
		vl = sizeof(v);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vl) || v != SOCK_STREAM ||
		    getsockname(fd, (struct sockaddr *)&ss, &sl))
			continue;
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&ss;
			if (in->sin_addr.s_addr == htonl(INADDR_ANY))
				in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
			if (IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr))
				in6->sin6_addr = in6addr_loopback;
		} else if (ss.ss_family != AF_UNIX ||
		           sl <= offsetof(struct sockaddr_un, sun_path) + 1 ||
		           ((struct sockaddr_un *)&ss)->sun_path[0] == '\0') {
			continue; /* unnamed or abstract: nothing to connect to */
		}
		/* Insert in descriptor order; past the limit, the highest goes. */
		int k = w->ncand < OB_WAKE_MAX_CANDIDATES ? w->ncand++ : OB_WAKE_MAX_CANDIDATES;
		for (; k > 0 && fds[k - 1] > fd; k--) {
			if (k < OB_WAKE_MAX_CANDIDATES) {
				fds[k] = fds[k - 1];
				w->cand[k] = w->cand[k - 1];
				w->candlen[k] = w->candlen[k - 1];
			}
		}
		if (k < OB_WAKE_MAX_CANDIDATES) {
			fds[k] = fd;
			w->cand[k] = ss;
			w->candlen[k] = sl;
		}
	}
	closedir(d);
}

static void wake__name(const struct sockaddr *sa, char *out, size_t n)
{
	char host[INET6_ADDRSTRLEN] = "?";
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(out, n, "%s:%u", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(out, n, "[%s]:%u", host, ntohs(in6->sin6_port));
	} else {
		snprintf(out, n, "%s", ((const struct sockaddr_un *)sa)->sun_path);
	}
}

/* The connection failed before the broker accepted it (or dropped it). */
static void wake__failed(struct tbp_outbound *ob, const char *why)
{
	struct ob_wake *w = &ob->wake;
	bool was_up = w->connack_seen;
	wake__close(ob, 0);
	if (was_up) {
		mosquitto_log_printf(MOSQ_LOG_WARNING,
		                     TB_LOG_PREFIX "outbound.wake: %s: %s; reconnecting",
		                     w->curname, why);
		w->retry_at = time(NULL) + 1;
		return;
	}
	if (!w->autodetect) {
		if (!w->warned)
			mosquitto_log_printf(MOSQ_LOG_WARNING,
			                     TB_LOG_PREFIX
			                     "outbound.wake: %s: %s; records wait for "
			                     "the next idle tick (up to 100 ms) until it "
			                     "works",
			                     w->curname, why);
		w->warned = true;
		w->retry_at = time(NULL) + 5;
		return;
	}
	mosquitto_log_printf(MOSQ_LOG_INFO, TB_LOG_PREFIX "outbound.wake: passed over %s (%s)",
	                     w->curname, why);
	if (++w->cur < w->ncand)
		return; /* the next one at the next tick */
	if (!w->warned)
		mosquitto_log_printf(
		    MOSQ_LOG_WARNING,
		    TB_LOG_PREFIX "outbound.wake: none of this broker's %d listening sockets "
		                  "accepted a plain MQTT connection%s; records wait for the next "
		                  "idle tick (up to 100 ms): set outbound.wake to a listener's "
		                  "address, with a username and password if it needs them",
		    w->ncand, w->username ? " with the configured username" : "");
	w->warned = true;
	w->retry_at = time(NULL) + 30;
}

static void wake__open(struct tbp_outbound *ob)
{
	struct ob_wake *w = &ob->wake;
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *res = NULL;
	const struct sockaddr *sa;
	socklen_t salen;
	int fd = -1, on = 1;
	size_t plen = 0;
	unsigned char *pkt = NULL;
	const char *why = "cannot connect";
	if (w->autodetect) {
		if (w->cur >= w->ncand)
			wake__scan(w);
		if (!w->ncand) {
			if (!w->warned)
				mosquitto_log_printf(MOSQ_LOG_WARNING, TB_LOG_PREFIX
				                     "outbound.wake: no listening socket "
				                     "found in this process; records wait "
				                     "for the next idle tick (up to 100 ms)");
			w->warned = true;
			w->retry_at = time(NULL) + 30;
			return;
		}
		sa = (const struct sockaddr *)&w->cand[w->cur];
		salen = w->candlen[w->cur];
		wake__name(sa, w->curname, sizeof(w->curname));
	} else {
		snprintf(w->curname, sizeof(w->curname), "%s:%s", w->host, w->port);
		int gai = getaddrinfo(w->host, w->port, &hints, &res);
		if (gai) {
			mosquitto_log_printf(MOSQ_LOG_ERR, TB_LOG_PREFIX "outbound.wake: %s: %s",
			                     w->curname, gai_strerror(gai));
			w->retry_at = time(NULL) + 30;
			return;
		}
		sa = res->ai_addr;
		salen = res->ai_addrlen;
	}
	fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	if (sa->sa_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	if (connect(fd, sa, salen) < 0) {
		/* Loopback completes at once or nearly: a short wait, once. */
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if ((errno != EINPROGRESS && errno != EAGAIN) || poll(&p, 1, 100) != 1 ||
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
	if (res)
		freeaddrinfo(res);
	pthread_mutex_lock(&w->lock);
	w->fd = fd;
	pthread_mutex_unlock(&w->lock);
	w->last_ping = w->connect_at = time(NULL);
	w->rxlen = w->skip = 0;
	w->connack_seen = false;
	return;
fail:
	why = strerror(errno);
	free(pkt);
	if (fd >= 0)
		close(fd);
	if (res)
		freeaddrinfo(res);
	wake__failed(ob, why);
}

static void wake__ping(struct tbp_outbound *ob)
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
void outbound__wake(struct tbp_outbound *ob)
{
	if (atomic_exchange(&ob->wake.pending, true))
		return;
	wake__ping(ob);
}

/* CONNACK, then PINGRESPs: read and checked, so that the broker's writes
 * never back up. Returns why the connection must be closed, or NULL. */
static const char *wake__read(struct tbp_outbound *ob, const unsigned char *b, size_t n)
{
	static const char *const not_mqtt = "not an MQTT answer";
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
				return not_mqtt;
			if (w->rxlen < 4)
				continue;
			w->rxlen = 0;
			if (w->rx[3] != 0)
				return w->rx[3] == 4 || w->rx[3] == 5
				           ? "the broker refused the connection (CONNACK: not "
				             "authorized): set outbound.wake username/password, or "
				             "a listener that accepts it"
				           : "the broker refused the connection (CONNACK)";
			w->connack_seen = true;
			mosquitto_log_printf(w->warned ? MOSQ_LOG_NOTICE : MOSQ_LOG_INFO,
			                     TB_LOG_PREFIX "outbound.wake: connected to %s",
			                     w->curname);
			w->warned = false;
			continue;
		}
		/* Then only PINGRESPs (0xd0 0x00) are expected; skip any body. */
		if (w->rxlen == 1) {
			if ((w->rx[0] >> 4) != 13)
				return not_mqtt;
			continue;
		}
		if (w->rx[w->rxlen - 1] & 0x80) {
			if (w->rxlen == 5)
				return not_mqtt;
			continue;
		}
		size_t rem = 0, mult = 1;
		for (size_t k = 1; k < w->rxlen; k++, mult *= 128)
			rem += (size_t)(w->rx[k] & 0x7f) * mult;
		w->rxlen = 0;
		w->skip = rem;
	}
	return NULL;
}

/* Main thread, every tick. */
void outbound__wake_service(struct tbp_outbound *ob)
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
			const char *why = wake__read(ob, buf, (size_t)got);
			if (why) {
				wake__failed(ob, why);
				return;
			}
			continue;
		}
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (got < 0 && errno == EINTR)
			continue;
		wake__failed(ob, got == 0 ? "connection closed by the broker" : strerror(errno));
		return;
	}
	if (!w->connack_seen && now - w->connect_at >= WAKE_CONNACK_TIMEOUT) {
		wake__failed(ob, "no CONNACK");
		return;
	}
	if (now - w->last_ping >= WAKE_KEEPALIVE / 2) {
		w->last_ping = now;
		wake__ping(ob);
	}
}
