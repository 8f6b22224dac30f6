/*
 * wsload: MQTT load over plain TCP or over WebSocket, for bench/ws.sh.
 *
 * libmosquitto 2.0 has no client-side WebSocket transport, so this client
 * speaks the little of MQTT 3.1.1 it needs (CONNECT, SUBSCRIBE, PUBLISH QoS
 * 0/1, PUBACK) and, with --ws PATH, does the RFC 6455 handshake and masks
 * every frame itself, as a browser would. One thread, epoll, non-blocking.
 *
 * Each connection subscribes to its own topic and keeps --window messages
 * in flight to it; a message's round trip is from the PUBLISH write to its
 * delivery back on the same connection (payload carries the send time).
 *
 *   wsload --port P [--ws /mqtt] [--conns N] [--qos 0|1] [--size BYTES]
 *          [--seconds S] [--window W]
 * prints: msgs_per_sec=... p50_us=... p99_us=... received=...
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define WL_BUF (1 << 20)

struct wl_conn {
	int fd;
	int id;
	int state; /* 0 handshake, 1 wait CONNACK, 2 wait SUBACK, 3 running */
	unsigned char *in;
	size_t in_len;
	unsigned char *out;
	size_t out_len;
	unsigned char *mq; /* MQTT bytes unwrapped from WebSocket frames */
	size_t mq_len;
	int inflight;
	uint16_t next_pid;
	char topic[32];
};

static struct {
	const char *host, *ws_path;
	int port, conns, qos, size, seconds, window;
	uint64_t received, bytes;
	uint64_t *lat;
	size_t nlat, cap;
	int measuring;
	uint32_t rng;
} g = {"127.0.0.1", NULL, 1883, 1, 0, 1024, 3, 8, 0, 0, NULL, 0, 0, 0, 2463534242u};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static uint32_t rnd(void)
{
	g.rng ^= g.rng << 13;
	g.rng ^= g.rng >> 17;
	g.rng ^= g.rng << 5;
	return g.rng;
}

static void die(const char *what)
{
	fprintf(stderr, "wsload: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void out_append(struct wl_conn *c, const unsigned char *p, size_t n)
{
	if (c->out_len + n + 14 > WL_BUF) {
		fprintf(stderr, "wsload: output buffer full\n");
		exit(1);
	}
	if (g.ws_path) {
		unsigned char *h = c->out + c->out_len;
		size_t hl = 2;
		uint32_t key = rnd();
		h[0] = 0x82;
		if (n < 126) {
			h[1] = 0x80 | n;
		} else if (n < 65536) {
			h[1] = 0x80 | 126;
			h[2] = n >> 8;
			h[3] = n;
			hl = 4;
		} else {
			h[1] = 0x80 | 127;
			for (int i = 0; i < 8; i++)
				h[2 + i] = (uint64_t)n >> (56 - 8 * i);
			hl = 10;
		}
		memcpy(h + hl, &key, 4);
		unsigned char *m = h + hl;
		unsigned char *d = h + hl + 4;
		for (size_t i = 0; i < n; i++)
			d[i] = p[i] ^ m[i & 3];
		c->out_len += hl + 4 + n;
	} else {
		memcpy(c->out + c->out_len, p, n);
		c->out_len += n;
	}
}

static size_t put_len(unsigned char *p, size_t n)
{
	size_t i = 0;
	do {
		unsigned char b = n % 128;
		n /= 128;
		p[i++] = b | (n ? 0x80 : 0);
	} while (n);
	return i;
}

static void mqtt_connect(struct wl_conn *c)
{
	unsigned char p[64], *q = p;
	char cid[24];
	int cl = snprintf(cid, sizeof(cid), "wsload-%d-%d", (int)getpid() % 100000, c->id);
	*q++ = 0x10;
	q += put_len(q, 10 + 2 + cl);
	memcpy(q, "\0\4MQTT\4\2\0\74", 10); /* protocol 4, clean session, keepalive 60 */
	q += 10;
	*q++ = cl >> 8;
	*q++ = cl;
	memcpy(q, cid, cl);
	q += cl;
	out_append(c, p, q - p);
}

static void mqtt_subscribe(struct wl_conn *c)
{
	unsigned char p[64], *q = p;
	int tl = strlen(c->topic);
	*q++ = 0x82;
	q += put_len(q, 2 + 2 + tl + 1);
	*q++ = 0;
	*q++ = 1;
	*q++ = tl >> 8;
	*q++ = tl;
	memcpy(q, c->topic, tl);
	q += tl;
	*q++ = g.qos;
	out_append(c, p, q - p);
}

static void mqtt_publish(struct wl_conn *c)
{
	static unsigned char p[WL_BUF / 4];
	unsigned char *q = p;
	int tl = strlen(c->topic);
	size_t rem = 2 + tl + (g.qos ? 2 : 0) + g.size;
	uint64_t t = now_ns();
	*q++ = 0x30 | (g.qos << 1);
	q += put_len(q, rem);
	*q++ = tl >> 8;
	*q++ = tl;
	memcpy(q, c->topic, tl);
	q += tl;
	if (g.qos) {
		if (++c->next_pid == 0)
			c->next_pid = 1;
		*q++ = c->next_pid >> 8;
		*q++ = c->next_pid;
	}
	memset(q, 'x', g.size);
	memcpy(q, &t, sizeof(t));
	q += g.size;
	out_append(c, p, q - p);
	c->inflight++;
}

static void on_packet(struct wl_conn *c, const unsigned char *p, size_t n, size_t hdr)
{
	unsigned type = p[0] >> 4;
	const unsigned char *v = p + hdr;
	size_t vl = n - hdr;

	if (type == 2) { /* CONNACK */
		if (vl < 2 || v[1] != 0) {
			fprintf(stderr, "wsload: CONNACK refused\n");
			exit(1);
		}
		mqtt_subscribe(c);
		c->state = 2;
	} else if (type == 9) { /* SUBACK */
		c->state = 3;
		for (int i = 0; i < g.window; i++)
			mqtt_publish(c);
	} else if (type == 3) { /* PUBLISH delivered back to us */
		unsigned qos = (p[0] >> 1) & 3;
		size_t tl = ((size_t)v[0] << 8) | v[1];
		size_t off = 2 + tl;
		if (qos) {
			unsigned char ack[4] = {0x40, 2, v[off], v[off + 1]};
			out_append(c, ack, 4);
			off += 2;
		}
		uint64_t t;
		memcpy(&t, v + off, sizeof(t));
		if (g.measuring) {
			g.received++;
			if (g.nlat == g.cap) {
				g.cap = g.cap ? g.cap * 2 : 1 << 16;
				g.lat = realloc(g.lat, g.cap * sizeof(*g.lat));
			}
			g.lat[g.nlat++] = now_ns() - t;
		}
		c->inflight--;
		mqtt_publish(c);
	}
	/* PUBACK for our own publishes (type 4): nothing to do */
}

static void parse_mqtt(struct wl_conn *c, unsigned char *buf, size_t *len)
{
	size_t pos = 0;
	for (;;) {
		size_t avail = *len - pos, rem = 0, i = 1;
		unsigned mult = 1;
		if (avail < 2)
			break;
		for (;;) {
			if (i >= avail)
				goto out;
			rem += (buf[pos + i] & 127) * mult;
			mult *= 128;
			if (!(buf[pos + i++] & 128))
				break;
		}
		if (avail < i + rem)
			break;
		on_packet(c, buf + pos, i + rem, i);
		pos += i + rem;
	}
out:
	memmove(buf, buf + pos, *len - pos);
	*len -= pos;
}

/* Unwraps server frames (unmasked) from c->in into c->mq. */
static void parse_ws(struct wl_conn *c)
{
	size_t pos = 0;
	for (;;) {
		size_t avail = c->in_len - pos, hl = 2, n;
		unsigned char *b = c->in + pos;
		if (avail < 2)
			break;
		n = b[1] & 127;
		if (n == 126) {
			if (avail < 4)
				break;
			n = ((size_t)b[2] << 8) | b[3];
			hl = 4;
		} else if (n == 127) {
			if (avail < 10)
				break;
			n = 0;
			for (int i = 0; i < 8; i++)
				n = (n << 8) | b[2 + i];
			hl = 10;
		}
		if (avail < hl + n)
			break;
		unsigned op = b[0] & 15;
		if (op == 8) {
			fprintf(stderr, "wsload: server sent close %u\n",
			        n >= 2 ? (b[hl] << 8) | b[hl + 1] : 0);
			exit(1);
		}
		if (op == 2 || op == 0) {
			if (c->mq_len + n > WL_BUF) {
				fprintf(stderr, "wsload: MQTT buffer full\n");
				exit(1);
			}
			memcpy(c->mq + c->mq_len, b + hl, n);
			c->mq_len += n;
		}
		pos += hl + n;
	}
	memmove(c->in, c->in + pos, c->in_len - pos);
	c->in_len -= pos;
	parse_mqtt(c, c->mq, &c->mq_len);
}

static void on_readable(struct wl_conn *c)
{
	for (;;) {
		ssize_t n = read(c->fd, c->in + c->in_len, WL_BUF - c->in_len);
		if (n == 0) {
			fprintf(stderr, "wsload: connection %d closed by the server\n", c->id);
			exit(1);
		}
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			die("read");
		}
		c->in_len += n;
		if (c->state == 0) {
			unsigned char *e = memmem(c->in, c->in_len, "\r\n\r\n", 4);
			if (!e)
				continue;
			if (c->in_len < 12 || memcmp(c->in + 9, "101", 3) != 0) {
				fprintf(stderr, "wsload: handshake refused: %.40s\n", c->in);
				exit(1);
			}
			size_t hl = e + 4 - c->in;
			memmove(c->in, c->in + hl, c->in_len - hl);
			c->in_len -= hl;
			c->state = 1;
			mqtt_connect(c);
		}
		if (g.ws_path) {
			parse_ws(c);
		} else {
			parse_mqtt(c, c->in, &c->in_len);
		}
	}
}

static void flush_out(struct wl_conn *c)
{
	size_t off = 0;
	while (off < c->out_len) {
		ssize_t n = write(c->fd, c->out + off, c->out_len - off);
		if (n < 0) {
			if (errno == EAGAIN)
				break;
			die("write");
		}
		off += n;
	}
	memmove(c->out, c->out + off, c->out_len - off);
	c->out_len -= off;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"host", 1, 0, 'h'},    {"port", 1, 0, 'p'},   {"ws", 1, 0, 'w'},
	    {"conns", 1, 0, 'c'},   {"qos", 1, 0, 'q'},    {"size", 1, 0, 's'},
	    {"seconds", 1, 0, 't'}, {"window", 1, 0, 'n'}, {0, 0, 0, 0}};
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'h':
			g.host = optarg;
			break;
		case 'p':
			g.port = atoi(optarg);
			break;
		case 'w':
			g.ws_path = optarg;
			break;
		case 'c':
			g.conns = atoi(optarg);
			break;
		case 'q':
			g.qos = atoi(optarg);
			break;
		case 's':
			g.size = atoi(optarg);
			break;
		case 't':
			g.seconds = atoi(optarg);
			break;
		case 'n':
			g.window = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: see bench/wsload/wsload.c\n");
			return 2;
		}
	}
	if (g.size < 8 || g.qos < 0 || g.qos > 1 || g.conns < 1 || g.window < 1) {
		fprintf(stderr, "wsload: bad arguments\n");
		return 2;
	}
	g.rng ^= (uint32_t)now_ns();

	int ep = epoll_create1(0);
	struct wl_conn *cs = calloc(g.conns, sizeof(*cs));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(g.port)};
	inet_pton(AF_INET, g.host, &sa.sin_addr);

	for (int i = 0; i < g.conns; i++) {
		struct wl_conn *c = &cs[i];
		int one = 1;
		c->id = i;
		c->in = malloc(WL_BUF);
		c->out = malloc(WL_BUF);
		c->mq = malloc(WL_BUF);
		snprintf(c->topic, sizeof(c->topic), "wsload/%d/%d", (int)getpid() % 100000, i);
		c->fd = socket(AF_INET, SOCK_STREAM, 0);
		if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			die("connect");
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (g.ws_path) {
			char req[512];
			unsigned char key[16];
			static const char b64[] =
			    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
			char k64[25];
			for (int j = 0; j < 16; j++)
				key[j] = rnd();
			for (int j = 0, o2 = 0; j < 16; j += 3) {
				uint32_t v = key[j] << 16 | (j + 1 < 16 ? key[j + 1] << 8 : 0) |
				             (j + 2 < 16 ? key[j + 2] : 0);
				k64[o2++] = b64[(v >> 18) & 63];
				k64[o2++] = b64[(v >> 12) & 63];
				k64[o2++] = j + 1 < 16 ? b64[(v >> 6) & 63] : '=';
				k64[o2++] = j + 2 < 16 ? b64[v & 63] : '=';
			}
			k64[24] = 0;
			int n = snprintf(
			    req, sizeof(req),
			    "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
			    "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
			    "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
			    g.ws_path, g.host, g.port, k64);
			if (write(c->fd, req, n) != n)
				die("write handshake");
		} else {
			c->state = 1;
			mqtt_connect(c);
			flush_out(c);
		}
		if (fcntl(c->fd, F_SETFL, O_NONBLOCK) < 0)
			die("nonblock");
		struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
		if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
			die("epoll_ctl");
	}

	uint64_t start = now_ns(), warm = start + 500000000ull, end = 0;
	struct epoll_event evs[256];
	for (;;) {
		uint64_t t = now_ns();
		if (!g.measuring && t >= warm) {
			g.measuring = 1;
			start = t;
			end = t + (uint64_t)g.seconds * 1000000000ull;
		}
		if (g.measuring && t >= end)
			break;
		int n = epoll_wait(ep, evs, 256, 50);
		for (int i = 0; i < n; i++) {
			struct wl_conn *c = evs[i].data.ptr;
			if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
				on_readable(c);
			flush_out(c);
		}
	}
	double secs = (now_ns() - start) / 1e9;
	for (int i = 0; i < g.conns; i++)
		if (cs[i].state != 3) {
			fprintf(stderr, "wsload: connection %d never got running\n", i);
			return 1;
		}
	qsort(g.lat, g.nlat, sizeof(*g.lat), cmp_u64);
	double p50 = g.nlat ? g.lat[g.nlat / 2] / 1e3 : 0;
	double p99 = g.nlat ? g.lat[(size_t)(g.nlat * 0.99)] / 1e3 : 0;
	printf("msgs_per_sec=%.0f p50_us=%.0f p99_us=%.0f received=%llu\n", g.received / secs, p50,
	       p99, (unsigned long long)g.received);
	return g.received ? 0 : 1;
}
