/*
 * tributary-kafka-admin: the few admin calls that the dev stack and the tests
 * make to a real Kafka, through librdkafka's admin API (a JVM command-line
 * tool costs seconds per call on a small machine).
 *
 *   tributary-kafka-admin [--brokers 127.0.0.1:9092] [--timeout SECONDS]
 *                         [--replication N] [--config KEY=VALUE]... COMMAND [ARGS...]
 *     ready                        until the cluster's metadata names a broker
 *     create TOPIC[:PARTITIONS]... creates the missing ones (default partitions: 3;
 *                                  replicas: --replication, else the broker's
 *                                  default.replication.factor; topic configs:
 *                                  --config) and waits until every partition
 *                                  has a leader and all its replicas in sync
 *     delete TOPIC...              deletes those that exist
 *     delete-all                   deletes every topic but the internal ones (__*)
 *     list                         one line per topic: NAME PARTITIONS
 *     leaders TOPIC...             one line per partition, as the cluster sees it now:
 *                                  TOPIC PARTITION LEADER REPLICAS ISR
 *                                  (node ids; lists comma-separated, LEADER -1: none)
 *
 * Exit status: 0 done, 1 failed or timed out (the reason on stderr), 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#define ADMIN_MAX_TOPICS 256
#define ADMIN_MAX_CONFIGS 32

static int admin_verbose;
static int admin_replication = -1; /* the broker's default */
static char *admin_configs[ADMIN_MAX_CONFIGS];
static int admin_config_cnt;

static long long admin_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* librdkafka logs every refused connection while a broker starts: only with -v. */
static void admin_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	if (admin_verbose)
		fprintf(stderr, "kafka-admin: %d %s: %s\n", level, fac, buf);
}

static rd_kafka_t *admin_connect(const char *brokers)
{
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_t *rk;

	if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, errstr, sizeof(errstr)) !=
	        RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "reconnect.backoff.ms", "50", errstr, sizeof(errstr)) !=
	        RD_KAFKA_CONF_OK ||
	    rd_kafka_conf_set(conf, "reconnect.backoff.max.ms", "200", errstr, sizeof(errstr)) !=
	        RD_KAFKA_CONF_OK) {
		fprintf(stderr, "kafka-admin: %s\n", errstr);
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_conf_set_log_cb(conf, admin_log);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!rk) {
		fprintf(stderr, "kafka-admin: rd_kafka_new: %s\n", errstr);
		rd_kafka_conf_destroy(conf);
	}
	return rk;
}

/* The cluster's metadata (all topics), retried until the deadline. */
static const rd_kafka_metadata_t *admin_metadata(rd_kafka_t *rk, long long deadline)
{
	const rd_kafka_metadata_t *md = NULL;
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;

	while (admin_now_ms() < deadline) {
		long long left = deadline - admin_now_ms();
		err = rd_kafka_metadata(rk, 1, NULL, &md, left > 2000 ? 2000 : (int)left + 1);
		if (!err && md->broker_cnt > 0)
			return md;
		if (!err) {
			rd_kafka_metadata_destroy(md);
			md = NULL;
		}
		rd_kafka_poll(rk, 100);
	}
	fprintf(stderr, "kafka-admin: no metadata from the cluster: %s\n", rd_kafka_err2str(err));
	return NULL;
}

static const rd_kafka_metadata_topic_t *admin_find(const rd_kafka_metadata_t *md, const char *name)
{
	for (int i = 0; i < md->topic_cnt; i++)
		if (!strcmp(md->topics[i].topic, name))
			return &md->topics[i];
	return NULL;
}

/* Every named topic is in the metadata (present = 1) or absent from it
 * (present = 0), with a leader for each partition and every replica in
 * sync when present. */
static int admin_settled(const rd_kafka_metadata_t *md, char **names, int n, int present)
{
	for (int i = 0; i < n; i++) {
		const rd_kafka_metadata_topic_t *t = admin_find(md, names[i]);
		if (!present) {
			if (t && t->err != RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
				return 0;
			continue;
		}
		if (!t || t->err || t->partition_cnt == 0)
			return 0;
		for (int p = 0; p < t->partition_cnt; p++)
			if (t->partitions[p].leader < 0 || t->partitions[p].err ||
			    t->partitions[p].isr_cnt < t->partitions[p].replica_cnt)
				return 0;
	}
	return 1;
}

static int admin_wait_settled(rd_kafka_t *rk, char **names, int n, int present, long long deadline)
{
	while (admin_now_ms() < deadline) {
		const rd_kafka_metadata_t *md = admin_metadata(rk, deadline);
		if (!md)
			return -1;
		int ok = admin_settled(md, names, n, present);
		rd_kafka_metadata_destroy(md);
		if (ok)
			return 0;
		rd_kafka_poll(rk, 50);
	}
	fprintf(stderr, "kafka-admin: topics not %s in time\n", present ? "ready" : "gone");
	return -1;
}

/* Waits for the result of one admin request; NULL on timeout. */
static rd_kafka_event_t *admin_result(rd_kafka_queue_t *q, long long deadline)
{
	while (admin_now_ms() < deadline) {
		rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 200);
		if (ev)
			return ev;
	}
	fprintf(stderr, "kafka-admin: no answer from the cluster in time\n");
	return NULL;
}

static int admin_check_results(const rd_kafka_topic_result_t **res, size_t n,
                               rd_kafka_resp_err_t ignore)
{
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		rd_kafka_resp_err_t err = rd_kafka_topic_result_error(res[i]);
		if (err && err != ignore) {
			const char *msg = rd_kafka_topic_result_error_string(res[i]);
			fprintf(stderr, "kafka-admin: %s: %s\n", rd_kafka_topic_result_name(res[i]),
			        msg ? msg : rd_kafka_err2str(err));
			rc = -1;
		}
	}
	return rc;
}

/* The result of a CreateTopics or DeleteTopics request on q: 0 when every
 * topic's error is none or the one to ignore. */
static int admin_topic_results(rd_kafka_queue_t *q, rd_kafka_resp_err_t ignore, long long deadline)
{
	rd_kafka_event_t *ev = admin_result(q, deadline);
	const rd_kafka_topic_result_t **tr;
	size_t cnt = 0;
	int rc = -1;

	if (!ev)
		return -1;
	if (rd_kafka_event_error(ev)) {
		fprintf(stderr, "kafka-admin: %s: %s\n", rd_kafka_event_name(ev),
		        rd_kafka_event_error_string(ev));
		goto out;
	}
	if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_CREATETOPICS_RESULT)
		tr = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev),
		                                         &cnt);
	else
		tr = rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev),
		                                         &cnt);
	rc = admin_check_results(tr, cnt, ignore);
out:
	rd_kafka_event_destroy(ev);
	return rc;
}

/* --config KEY=VALUE, each set on the new topic. */
static int admin_set_configs(rd_kafka_NewTopic_t *nt)
{
	for (int c = 0; c < admin_config_cnt; c++) {
		char *eq = strchr(admin_configs[c], '=');
		rd_kafka_resp_err_t err;
		*eq = '\0';
		err = rd_kafka_NewTopic_set_config(nt, admin_configs[c], eq + 1);
		*eq = '=';
		if (err) {
			fprintf(stderr, "kafka-admin: --config %s: %s\n", admin_configs[c],
			        rd_kafka_err2str(err));
			return -1;
		}
	}
	return 0;
}

static int admin_create(rd_kafka_t *rk, char **specs, int n, long long deadline)
{
	rd_kafka_NewTopic_t *nt[ADMIN_MAX_TOPICS];
	char *names[ADMIN_MAX_TOPICS];
	char errstr[512];
	rd_kafka_queue_t *q = NULL;
	int made = 0, rc = -1;

	for (int i = 0; i < n; i++) {
		char *colon = strrchr(specs[i], ':');
		long parts = 3;
		if (colon) {
			char *end;
			*colon = '\0';
			errno = 0;
			parts = strtol(colon + 1, &end, 10);
			if (errno || *end || parts < 1 || parts > 10000) {
				fprintf(stderr, "kafka-admin: bad partition count in %s:%s\n",
				        specs[i], colon + 1);
				goto error;
			}
		}
		names[i] = specs[i];
		nt[i] = rd_kafka_NewTopic_new(specs[i], (int)parts, admin_replication, errstr,
		                              sizeof(errstr));
		if (!nt[i]) {
			fprintf(stderr, "kafka-admin: %s: %s\n", specs[i], errstr);
			goto error;
		}
		made++;
		if (admin_set_configs(nt[i]) < 0)
			goto error;
	}
	q = rd_kafka_queue_new(rk);
	if (!q)
		goto error;
	rd_kafka_CreateTopics(rk, nt, (size_t)n, NULL, q);
	if (admin_topic_results(q, RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS, deadline) < 0)
		goto error;
	rc = admin_wait_settled(rk, names, n, 1, deadline);
error:
	if (q)
		rd_kafka_queue_destroy(q);
	rd_kafka_NewTopic_destroy_array(nt, (size_t)made);
	return rc;
}

static int admin_delete(rd_kafka_t *rk, char **names, int n, long long deadline)
{
	rd_kafka_DeleteTopic_t *dt[ADMIN_MAX_TOPICS];
	rd_kafka_queue_t *q = NULL;
	int made = 0, rc = -1;

	if (n == 0)
		return 0;
	for (; made < n; made++) {
		dt[made] = rd_kafka_DeleteTopic_new(names[made]);
		if (!dt[made])
			goto error;
	}
	q = rd_kafka_queue_new(rk);
	if (!q)
		goto error;
	rd_kafka_DeleteTopics(rk, dt, (size_t)n, NULL, q);
	if (admin_topic_results(q, RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, deadline) < 0)
		goto error;
	rc = admin_wait_settled(rk, names, n, 0, deadline);
error:
	if (q)
		rd_kafka_queue_destroy(q);
	rd_kafka_DeleteTopic_destroy_array(dt, (size_t)made);
	return rc;
}

/* list, or delete-all: every topic but Kafka's internal ones. */
static int admin_all_topics(rd_kafka_t *rk, int delete, long long deadline)
{
	const rd_kafka_metadata_t *md = admin_metadata(rk, deadline);
	char *names[ADMIN_MAX_TOPICS];
	int n = 0, rc;

	if (!md)
		return -1;
	for (int i = 0; i < md->topic_cnt; i++) {
		const rd_kafka_metadata_topic_t *t = &md->topics[i];
		if (!delete) {
			printf("%s %d\n", t->topic, t->partition_cnt);
			continue;
		}
		if (!strncmp(t->topic, "__", 2))
			continue;
		if (n == ADMIN_MAX_TOPICS) {
			fprintf(stderr, "kafka-admin: more than %d topics\n", ADMIN_MAX_TOPICS);
			rd_kafka_metadata_destroy(md);
			return -1;
		}
		names[n] = strdup(t->topic);
		if (!names[n]) {
			rd_kafka_metadata_destroy(md);
			for (int j = 0; j < n; j++)
				free(names[j]);
			return -1;
		}
		n++;
	}
	rd_kafka_metadata_destroy(md);
	rc = admin_delete(rk, names, n, deadline);
	for (int j = 0; j < n; j++)
		free(names[j]);
	return rc;
}

static void admin_print_ids(const int32_t *ids, int n)
{
	for (int i = 0; i < n; i++)
		printf("%s%d", i ? "," : "", (int)ids[i]);
}

/* leaders: each partition's leader, replicas and in-sync replicas. */
static int admin_leaders(rd_kafka_t *rk, char **names, int n, long long deadline)
{
	const rd_kafka_metadata_t *md = admin_metadata(rk, deadline);
	int rc = 0;

	if (!md)
		return -1;
	for (int i = 0; i < n; i++) {
		const rd_kafka_metadata_topic_t *t = admin_find(md, names[i]);
		if (!t || t->err) {
			fprintf(
			    stderr, "kafka-admin: %s: %s\n", names[i],
			    rd_kafka_err2str(t ? t->err : RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART));
			rc = -1;
			continue;
		}
		for (int p = 0; p < t->partition_cnt; p++) {
			const rd_kafka_metadata_partition_t *mp = &t->partitions[p];
			printf("%s %d %d ", t->topic, (int)mp->id, (int)mp->leader);
			admin_print_ids(mp->replicas, mp->replica_cnt);
			printf(" ");
			admin_print_ids(mp->isrs, mp->isr_cnt);
			printf("\n");
		}
	}
	rd_kafka_metadata_destroy(md);
	return rc;
}

static void usage(void)
{
	fprintf(stderr,
	        "usage: tributary-kafka-admin [--brokers HOST:PORT] [--timeout SECONDS]\n"
	        "         [--replication N] [--config KEY=VALUE]... [-v] COMMAND\n"
	        "  ready | create TOPIC[:PARTITIONS]... | delete TOPIC... | delete-all | list\n"
	        "  | leaders TOPIC...\n");
}

int main(int argc, char **argv)
{
	const char *brokers = "127.0.0.1:9092";
	double timeout_s = 30;
	static const struct option opts[] = {{"brokers", required_argument, 0, 'b'},
	                                     {"timeout", required_argument, 0, 't'},
	                                     {"replication", required_argument, 0, 'r'},
	                                     {"config", required_argument, 0, 'c'},
	                                     {"verbose", no_argument, 0, 'v'},
	                                     {"help", no_argument, 0, 'h'},
	                                     {0, 0, 0, 0}};
	int o, rc = -1;
	long l;
	char *end;

	while ((o = getopt_long(argc, argv, "+b:t:r:c:vh", opts, NULL)) != -1) {
		switch (o) {
		case 'b':
			brokers = optarg;
			break;
		case 't':
			timeout_s = strtod(optarg, &end);
			if (*end || timeout_s <= 0) {
				usage();
				return 2;
			}
			break;
		case 'r':
			errno = 0;
			l = strtol(optarg, &end, 10);
			if (errno || *end || l < 1 || l > 1000) {
				fprintf(stderr, "kafka-admin: bad --replication: %s\n", optarg);
				usage();
				return 2;
			}
			admin_replication = (int)l;
			break;
		case 'c':
			if (!strchr(optarg, '=') || *optarg == '=' ||
			    admin_config_cnt == ADMIN_MAX_CONFIGS) {
				fprintf(stderr,
				        "kafka-admin: bad --config (KEY=VALUE, at most %d): %s\n",
				        ADMIN_MAX_CONFIGS, optarg);
				usage();
				return 2;
			}
			admin_configs[admin_config_cnt++] = optarg;
			break;
		case 'v':
			admin_verbose = 1;
			break;
		default:
			usage();
			return o == 'h' ? 0 : 2;
		}
	}
	if (optind >= argc) {
		usage();
		return 2;
	}
	const char *cmd = argv[optind];
	char **args = argv + optind + 1;
	int nargs = argc - optind - 1;
	int known = !strcmp(cmd, "ready") || !strcmp(cmd, "list") || !strcmp(cmd, "delete-all") ||
	            !strcmp(cmd, "create") || !strcmp(cmd, "delete") || !strcmp(cmd, "leaders");
	int takes_topics =
	    !strcmp(cmd, "create") || !strcmp(cmd, "delete") || !strcmp(cmd, "leaders");
	if (!known || nargs > ADMIN_MAX_TOPICS || (takes_topics ? nargs == 0 : nargs != 0)) {
		usage();
		return 2;
	}

	rd_kafka_t *rk = admin_connect(brokers);
	if (!rk)
		return 1;
	long long deadline = admin_now_ms() + (long long)(timeout_s * 1000);
	if (!strcmp(cmd, "ready")) {
		const rd_kafka_metadata_t *md = admin_metadata(rk, deadline);
		if (md) {
			rd_kafka_metadata_destroy(md);
			rc = 0;
		}
	} else if (!strcmp(cmd, "create")) {
		rc = admin_create(rk, args, nargs, deadline);
	} else if (!strcmp(cmd, "delete")) {
		rc = admin_delete(rk, args, nargs, deadline);
	} else if (!strcmp(cmd, "leaders")) {
		rc = admin_leaders(rk, args, nargs, deadline);
	} else {
		rc = admin_all_topics(rk, !strcmp(cmd, "delete-all"), deadline);
	}
	rd_kafka_destroy(rk);
	return rc == 0 ? 0 : 1;
}
