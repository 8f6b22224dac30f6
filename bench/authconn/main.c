/*
 * MQTT connection-rate load generator: each of N threads opens a connection,
 * waits for CONNACK and disconnects, over and over, for a fixed time. Prints
 * completed connections per second and the CONNECT-to-CONNACK latency.
 * With --token the JWT goes as the MQTT password (what the plugin's auth
 * verifies on every CONNECT); without it the connection is anonymous.
 *
 *   authconn --port 1883 --threads 4 --seconds 3 [--token JWT | --token-file F]
 *            [--username U]
 *
 * Output, one line:
 *   conns=N seconds=S conns_per_s=R refused=X errors=E p50_ms=A p99_ms=B
 * Exit status 1 if any connection was refused or failed.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#define CONNACK_TIMEOUT_MS 5000

static struct {
	const char *host, *username;
	char *token;
	int port, threads, seconds;
} opt = {"127.0.0.1", "", NULL, 1883, 4, 3};

static atomic_bool stop;

struct worker {
	pthread_t thread;
	int index;
	uint64_t conns, refused, errors;
	uint64_t *lat; /* ns, one per completed connection */
	size_t nlat, caplat;
	int connack; /* -1 waiting, else the CONNACK code */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_connect(struct mosquitto *m, void *obj, int rc)
{
	(void)m;
	((struct worker *)obj)->connack = rc;
}

static int record(struct worker *w, uint64_t ns)
{
	if (w->nlat == w->caplat) {
		size_t cap = w->caplat ? w->caplat * 2 : 65536;
		uint64_t *p = realloc(w->lat, cap * sizeof(*p));
		if (!p)
			return -1;
		w->lat = p;
		w->caplat = cap;
	}
	w->lat[w->nlat++] = ns;
	return 0;
}

/* One CONNECT .. CONNACK .. DISCONNECT. 0 done, 1 refused, -1 error. */
static int one_connection(struct worker *w, struct mosquitto *m)
{
	uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)CONNACK_TIMEOUT_MS * 1000000u;
	int rc;

	w->connack = -1;
	rc = mosquitto_connect(m, opt.host, opt.port, 60);
	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "authconn: connect: %s\n", mosquitto_strerror(rc));
		return -1;
	}
	while (w->connack < 0) {
		rc = mosquitto_loop(m, 100, 1);
		if (w->connack >= 0)
			break;
		if (rc != MOSQ_ERR_SUCCESS || now_ns() > deadline) {
			fprintf(stderr, "authconn: no CONNACK: %s\n",
			        rc ? mosquitto_strerror(rc) : "timeout");
			mosquitto_disconnect(m);
			return -1;
		}
	}
	if (w->connack != 0) {
		/* the broker closes the connection after a refusal */
		mosquitto_disconnect(m);
		return 1;
	}
	if (record(w, now_ns() - t0) < 0)
		return -1;
	/* not threaded: the DISCONNECT is written and the socket closed here */
	rc = mosquitto_disconnect(m);
	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "authconn: disconnect: %s\n", mosquitto_strerror(rc));
		return -1;
	}
	return 0;
}

static void *run(void *arg)
{
	struct worker *w = arg;
	char id[64];
	struct mosquitto *m;
	int rc;

	snprintf(id, sizeof(id), "authconn-%ld-%d", (long)getpid(), w->index);
	m = mosquitto_new(id, true, w);
	if (!m) {
		w->errors++;
		return NULL;
	}
	mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	mosquitto_connect_callback_set(m, on_connect);
	if (opt.token &&
	    (rc = mosquitto_username_pw_set(m, opt.username, opt.token)) != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, "authconn: credentials: %s\n", mosquitto_strerror(rc));
		w->errors++;
		mosquitto_destroy(m);
		return NULL;
	}
	while (!atomic_load(&stop)) {
		rc = one_connection(w, m);
		if (rc == 0)
			w->conns++;
		else if (rc > 0)
			w->refused++;
		else
			w->errors++;
		if (rc != 0 && w->refused + w->errors >= 10)
			break; /* a broken setup, not a measurement */
	}
	mosquitto_destroy(m);
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static char *read_token(const char *path)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (!f) {
		fprintf(stderr, "authconn: %s: %s\n", path, strerror(errno));
		return NULL;
	}
	n = getline(&line, &cap, f);
	fclose(f);
	if (n <= 0) {
		fprintf(stderr, "authconn: %s: empty\n", path);
		free(line);
		return NULL;
	}
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	return line;
}

static void usage(void)
{
	fprintf(stderr, "usage: authconn [--host H] [--port P] [--threads N] [--seconds S]\n"
	                "                [--token JWT | --token-file FILE] [--username U]\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"host", required_argument, NULL, 'h'},
	    {"port", required_argument, NULL, 'p'},
	    {"threads", required_argument, NULL, 't'},
	    {"seconds", required_argument, NULL, 's'},
	    {"token", required_argument, NULL, 'k'},
	    {"token-file", required_argument, NULL, 'f'},
	    {"username", required_argument, NULL, 'u'},
	    {NULL, 0, NULL, 0},
	};
	struct worker *workers;
	uint64_t conns = 0, refused = 0, errors = 0, t0, elapsed;
	uint64_t *all;
	size_t nall = 0;
	int c, i, status = 0;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			opt.host = optarg;
			break;
		case 'p':
			opt.port = atoi(optarg);
			break;
		case 't':
			opt.threads = atoi(optarg);
			break;
		case 's':
			opt.seconds = atoi(optarg);
			break;
		case 'k':
			free(opt.token);
			opt.token = strdup(optarg);
			break;
		case 'f':
			free(opt.token);
			if (!(opt.token = read_token(optarg)))
				return 2;
			break;
		case 'u':
			opt.username = optarg;
			break;
		default:
			usage();
			return 2;
		}
	}
	if (optind != argc || opt.port <= 0 || opt.threads <= 0 || opt.seconds <= 0) {
		usage();
		return 2;
	}

	mosquitto_lib_init();
	workers = calloc((size_t)opt.threads, sizeof(*workers));
	if (!workers) {
		fprintf(stderr, "authconn: out of memory\n");
		return 1;
	}
	t0 = now_ns();
	for (i = 0; i < opt.threads; i++) {
		workers[i].index = i;
		if (pthread_create(&workers[i].thread, NULL, run, &workers[i]) != 0) {
			fprintf(stderr, "authconn: pthread_create failed\n");
			atomic_store(&stop, true);
			opt.threads = i;
			status = 1;
			break;
		}
	}
	if (!status)
		sleep((unsigned)opt.seconds);
	atomic_store(&stop, true);
	for (i = 0; i < opt.threads; i++) {
		pthread_join(workers[i].thread, NULL);
		conns += workers[i].conns;
		refused += workers[i].refused;
		errors += workers[i].errors;
		nall += workers[i].nlat;
	}
	elapsed = now_ns() - t0;

	all = malloc((nall ? nall : 1) * sizeof(*all));
	if (!all) {
		fprintf(stderr, "authconn: out of memory\n");
		return 1;
	}
	nall = 0;
	for (i = 0; i < opt.threads; i++) {
		memcpy(all + nall, workers[i].lat, workers[i].nlat * sizeof(*all));
		nall += workers[i].nlat;
		free(workers[i].lat);
	}
	qsort(all, nall, sizeof(*all), cmp_u64);
	printf("conns=%llu seconds=%.2f conns_per_s=%.0f refused=%llu errors=%llu p50_ms=%.3f "
	       "p99_ms=%.3f\n",
	       (unsigned long long)conns, elapsed / 1e9, conns / (elapsed / 1e9),
	       (unsigned long long)refused, (unsigned long long)errors,
	       nall ? all[nall / 2] / 1e6 : 0.0,
	       nall ? all[(size_t)((double)(nall - 1) * 0.99)] / 1e6 : 0.0);

	free(all);
	free(workers);
	free(opt.token);
	mosquitto_lib_cleanup();
	return status || refused || errors ? 1 : 0;
}
