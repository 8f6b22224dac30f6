/*
 * tributary-devkafka: librdkafka's in-memory mock cluster on fixed loopback
 * ports, for `make run` and the tests. Development only: nothing is stored
 * on disk and everything is gone when it stops.
 *
 *   tributary-devkafka [--port 9092] [--brokers 1] [--partitions 4]
 *                      [--topic NAME[:PARTITIONS]]... [--control PORT]
 *
 * The control port (loopback) takes one command per line, answering "ok" or
 * "error: ..." — fault injection for tests:
 *   broker-down ID | broker-up ID | broker-rtt ID MS
 *   request-errors APIKEY ERRCODE [COUNT]   (e.g. 0 19 5: Produce, NOT_ENOUGH_REPLICAS x5)
 *   topic-error TOPIC ERRCODE | create-topic TOPIC PARTITIONS
 *   partition-leader TOPIC PARTITION BROKER_ID   (a leader change)
 *   ping
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

/*
 * The mock cluster binds each broker to 127.0.0.1 on a kernel-chosen port and
 * has no option for a fixed one. Interposing bind() while the cluster starts
 * gives broker N the port base+N-1, so bootstrap and advertised addresses are
 * both the fixed, documented ones.
 */
static atomic_int devkafka_next_port;

__attribute__((visibility("default"))) int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	static int (*real_bind)(int, const struct sockaddr *, socklen_t);
	if (!real_bind)
		real_bind =
		    (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
	int port = atomic_load(&devkafka_next_port);
	if (port && addr && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		struct sockaddr_in sin;
		memcpy(&sin, addr, sizeof(sin));
		if (sin.sin_port == 0 && sin.sin_addr.s_addr == htonl(INADDR_LOOPBACK)) {
			sin.sin_port = htons((uint16_t)port);
			atomic_store(&devkafka_next_port, port + 1);
			return real_bind(fd, (struct sockaddr *)&sin, sizeof(sin));
		}
	}
	return real_bind(fd, addr, len);
}

static volatile sig_atomic_t devkafka_stop;

static void devkafka_on_signal(int sig)
{
	(void)sig;
	devkafka_stop = 1;
}

static int devkafka_listen(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int on = 1;
	struct sockaddr_in sin = {.sin_family = AF_INET,
	                          .sin_port = htons((uint16_t)port),
	                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 8) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void devkafka_command(rd_kafka_mock_cluster_t *mc, char *line, char *reply, size_t replylen)
{
	char cmd[64] = "", a[256] = "", b[64] = "", c[64] = "";
	int n = sscanf(line, "%63s %255s %63s %63s", cmd, a, b, c);
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;

	if (n >= 1 && !strcmp(cmd, "ping")) {
		snprintf(reply, replylen, "ok\n");
		return;
	} else if (n == 2 && !strcmp(cmd, "broker-down")) {
		err = rd_kafka_mock_broker_set_down(mc, atoi(a));
	} else if (n == 2 && !strcmp(cmd, "broker-up")) {
		err = rd_kafka_mock_broker_set_up(mc, atoi(a));
	} else if (n == 3 && !strcmp(cmd, "broker-rtt")) {
		err = rd_kafka_mock_broker_set_rtt(mc, atoi(a), atoi(b));
	} else if (n >= 3 && !strcmp(cmd, "request-errors")) {
		size_t cnt = n == 4 ? (size_t)atoi(c) : 1;
		rd_kafka_resp_err_t *errs = calloc(cnt ? cnt : 1, sizeof(*errs));
		if (!errs) {
			snprintf(reply, replylen, "error: out of memory\n");
			return;
		}
		for (size_t i = 0; i < cnt; i++)
			errs[i] = (rd_kafka_resp_err_t)atoi(b);
		rd_kafka_mock_push_request_errors_array(mc, (int16_t)atoi(a), cnt, errs);
		free(errs);
	} else if (n == 3 && !strcmp(cmd, "topic-error")) {
		rd_kafka_mock_topic_set_error(mc, a, (rd_kafka_resp_err_t)atoi(b));
	} else if (n == 4 && !strcmp(cmd, "partition-leader")) {
		err = rd_kafka_mock_partition_set_leader(mc, a, atoi(b), atoi(c));
	} else if (n == 3 && !strcmp(cmd, "create-topic")) {
		err = rd_kafka_mock_topic_create(mc, a, atoi(b), 1);
	} else {
		snprintf(reply, replylen, "error: unknown command or arguments: %s\n", line);
		return;
	}
	if (err)
		snprintf(reply, replylen, "error: %s\n", rd_kafka_err2str(err));
	else
		snprintf(reply, replylen, "ok\n");
}

/* One control client at a time is all tests need; lines are short. */
static void devkafka_serve_control(rd_kafka_mock_cluster_t *mc, int lfd)
{
	int cfd = -1;
	char buf[1024];
	size_t used = 0;

	while (!devkafka_stop) {
		struct pollfd pfd = {.fd = cfd >= 0 ? cfd : lfd, .events = POLLIN};
		int r = poll(&pfd, 1, 200);
		if (r <= 0)
			continue;
		if (cfd < 0) {
			cfd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
			used = 0;
			continue;
		}
		ssize_t got = read(cfd, buf + used, sizeof(buf) - 1 - used);
		if (got <= 0) {
			close(cfd);
			cfd = -1;
			continue;
		}
		used += (size_t)got;
		buf[used] = '\0';
		char *nl;
		while ((nl = strchr(buf, '\n'))) {
			char reply[1280];
			*nl = '\0';
			if (nl > buf && nl[-1] == '\r')
				nl[-1] = '\0';
			devkafka_command(mc, buf, reply, sizeof(reply));
			fprintf(stderr, "devkafka: control: %s -> %s", buf, reply);
			if (write(cfd, reply, strlen(reply)) < 0) {
				close(cfd);
				cfd = -1;
				break;
			}
			used -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, used + 1);
		}
		if (cfd >= 0 && used == sizeof(buf) - 1) {
			close(cfd); /* a line longer than any command */
			cfd = -1;
		}
	}
	if (cfd >= 0)
		close(cfd);
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: tributary-devkafka [--port 9092] [--brokers N] [--partitions N]\n"
	        "                          [--topic NAME[:PARTITIONS]]... [--control PORT]\n");
}

int main(int argc, char **argv)
{
	int port = 9092, brokers = 1, partitions = 4, control_port = 0;
	char errstr[512];
	char *topics[64];
	int ntopics = 0;
	static const struct option opts[] = {{"port", required_argument, 0, 'p'},
	                                     {"brokers", required_argument, 0, 'b'},
	                                     {"partitions", required_argument, 0, 'n'},
	                                     {"topic", required_argument, 0, 't'},
	                                     {"control", required_argument, 0, 'c'},
	                                     {"help", no_argument, 0, 'h'},
	                                     {0, 0, 0, 0}};
	int o;
	while ((o = getopt_long(argc, argv, "p:b:n:t:c:h", opts, NULL)) != -1) {
		switch (o) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'b':
			brokers = atoi(optarg);
			break;
		case 'n':
			partitions = atoi(optarg);
			break;
		case 'c':
			control_port = atoi(optarg);
			break;
		case 't':
			if (ntopics == 64) {
				fprintf(stderr, "devkafka: too many --topic\n");
				return 2;
			}
			topics[ntopics++] = optarg;
			break;
		default:
			usage();
			return o == 'h' ? 0 : 2;
		}
	}
	if (port <= 0 || port > 65535 - brokers || brokers < 1 || brokers > 16 || partitions < 1) {
		usage();
		return 2;
	}

	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	/* The handle only hosts the cluster; it never talks to it. */
	if (rd_kafka_conf_set(conf, "log_level", "4", errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "devkafka: %s\n", errstr);
		return 1;
	}
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!rk) {
		fprintf(stderr, "devkafka: rd_kafka_new: %s\n", errstr);
		return 1;
	}

	atomic_store(&devkafka_next_port, port);
	rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
	int bound_to = atomic_exchange(&devkafka_next_port, 0);
	if (!mc || bound_to != port + brokers) {
		fprintf(stderr,
		        "devkafka: could not start the mock cluster on 127.0.0.1:%d "
		        "(port in use?)\n",
		        port);
		/* A cluster that failed half-way cannot be destroyed cleanly. */
		_exit(1);
	}

	for (int i = 0; i < ntopics; i++) {
		char *colon = strrchr(topics[i], ':');
		int parts = partitions;
		if (colon) {
			*colon = '\0';
			parts = atoi(colon + 1);
		}
		rd_kafka_resp_err_t err = rd_kafka_mock_topic_create(mc, topics[i], parts, 1);
		if (err) {
			fprintf(stderr, "devkafka: create topic %s: %s\n", topics[i],
			        rd_kafka_err2str(err));
			return 1;
		}
	}

	int lfd = -1;
	if (control_port) {
		lfd = devkafka_listen(control_port);
		if (lfd < 0) {
			fprintf(stderr, "devkafka: control port 127.0.0.1:%d: %s\n", control_port,
			        strerror(errno));
			return 1;
		}
	}

	fprintf(stderr,
	        "\n"
	        "  ************************************************************\n"
	        "  *  tributary-devkafka: IN-MEMORY MOCK KAFKA, DEVELOPMENT ONLY *\n"
	        "  *  librdkafka mock cluster, nothing is persisted; all events *\n"
	        "  *  are lost when it stops. Never point production at it.    *\n"
	        "  ************************************************************\n"
	        "  bootstrap.servers=%s  brokers=%d  default partitions=%d\n\n",
	        rd_kafka_mock_cluster_bootstraps(mc), brokers, partitions);
	printf("ready %s\n", rd_kafka_mock_cluster_bootstraps(mc));
	fflush(stdout);

	struct sigaction sa = {.sa_handler = devkafka_on_signal};
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if (lfd >= 0) {
		devkafka_serve_control(mc, lfd);
		close(lfd);
	} else {
		while (!devkafka_stop)
			pause();
	}

	fprintf(stderr, "devkafka: stopping\n");
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}
