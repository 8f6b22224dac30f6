/*
 * streamprod: produces each line of stdin to a Kafka topic as soon as it is
 * read (kcat -P reads all of stdin before producing, which hides latency).
 * For bench/stream.sh.
 *
 *   streamprod BROKERS TOPIC < lines
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

static void streamprod_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	(void)rk;
	(void)opaque;
	if (m->err)
		fprintf(stderr, "streamprod: delivery failed: %s\n", rd_kafka_err2str(m->err));
}

int main(int argc, char **argv)
{
	char errstr[512], *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int rc = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: streamprod BROKERS TOPIC < lines\n");
		return 2;
	}

	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof(errstr)) ||
	    rd_kafka_conf_set(conf, "linger.ms", "0", errstr, sizeof(errstr))) {
		fprintf(stderr, "streamprod: %s\n", errstr);
		rd_kafka_conf_destroy(conf);
		return 1;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, streamprod_dr);

	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (!rk) {
		fprintf(stderr, "streamprod: %s\n", errstr);
		return 1;
	}

	setvbuf(stdin, NULL, _IONBF, 0);
	while ((len = getline(&line, &cap, stdin)) > 0) {
		if (line[len - 1] == '\n')
			len--;
		rd_kafka_resp_err_t err;
		while ((err = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(argv[2]),
		                                RD_KAFKA_V_VALUE(line, (size_t)len),
		                                RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		                                RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(rk, 10);
		if (err) {
			fprintf(stderr, "streamprod: produce: %s\n", rd_kafka_err2str(err));
			rc = 1;
			break;
		}
		rd_kafka_poll(rk, 0);
	}
	free(line);

	if (rd_kafka_flush(rk, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
		fprintf(stderr, "streamprod: flush timed out\n");
		rc = 1;
	}
	rd_kafka_destroy(rk);
	return rc;
}
