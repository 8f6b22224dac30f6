/*
 * The durable journal in front of Kafka (config section "journal").
 *
 * An accepted event is appended before the MESSAGE callback returns, so
 * before the client's PUBACK; librdkafka's delivery report releases it. What
 * Kafka never confirmed (an outage longer than the process, a crash) is
 * produced again at the next start, before any new traffic, keeping its
 * CloudEvents id so that consumers can de-duplicate.
 *
 * The journal's record carries the target cluster as an internal header,
 * which is removed before the record is produced.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tributary.h"
#include "tributary/journal.h"

#define JOURNAL_CLUSTER_HEADER "x-tributary-cluster"

/* Called from any thread (the journal's own, or a delivery-report one). */
static void journal__log(void *opaque, tjournal_level level, const char *msg)
{
	struct tributary *tb = opaque;
	cluster__note_failure(tb, "journal%s: %s",
			      level == TJOURNAL_LOG_ERROR     ? " error"
			      : level == TJOURNAL_LOG_WARNING ? " warning"
							      : "",
			      msg);
}

int journal__config(struct tributary *tb, const json_t *j, const char *base_dir)
{
	static const char *const allowed[] = {"dir", "sync", "sync_interval_ms", "max_bytes",
					      "segment_bytes", "max_entry_bytes", NULL};
	tjournal_options opts = {.sync = TJOURNAL_SYNC_ALWAYS};
	char err[512], path[4096];
	int rc;

	if (!j)
		return MOSQ_ERR_SUCCESS;
	if (!json_is_object(j))
		return config__fail("journal: must be an object");
	if ((rc = config__only(j, "journal", allowed)))
		return rc;
	const char *dir = json_string_value(json_object_get(j, "dir"));
	if (!dir || !*dir) {
		mosquitto_log_printf(MOSQ_LOG_ERR,
				     TB_LOG_PREFIX "config: journal.dir: required (a directory)");
		return MOSQ_ERR_INVAL;
	}
	snprintf(path, sizeof(path), "%s%s%s", dir[0] == '/' ? "" : base_dir,
		 dir[0] == '/' ? "" : "/", dir);
	json_t *sync = json_object_get(j, "sync");
	if (sync && (!json_is_string(sync) ||
		     tjournal_sync_from_string(json_string_value(sync), &opts.sync))) {
		mosquitto_log_printf(MOSQ_LOG_ERR, TB_LOG_PREFIX "config: journal.sync: must be "
								 "\"always\", \"interval\" or \"never\"");
		return MOSQ_ERR_INVAL;
	}
	static const struct {
		const char *name;
		long long min, max;
	} nums[] = {{"sync_interval_ms", 1, 60000},
		    {"max_bytes", 1 << 20, 1LL << 50},
		    {"segment_bytes", 1 << 16, 1LL << 40},
		    {"max_entry_bytes", 1024, 1 << 30}};
	long long val[4] = {0};
	for (int i = 0; i < 4; i++) {
		json_t *n = json_object_get(j, nums[i].name);
		if (!n)
			continue;
		if (!json_is_integer(n) || json_integer_value(n) < nums[i].min ||
		    json_integer_value(n) > nums[i].max) {
			mosquitto_log_printf(MOSQ_LOG_ERR,
					     TB_LOG_PREFIX "config: journal.%s: must be an integer "
							   "from %lld to %lld",
					     nums[i].name, nums[i].min, nums[i].max);
			return MOSQ_ERR_INVAL;
		}
		val[i] = json_integer_value(n);
	}
	opts.sync_interval_ms = (unsigned)val[0];
	opts.max_bytes = (uint64_t)val[1];
	opts.segment_bytes = (uint64_t)val[2];
	opts.max_entry_bytes = (uint32_t)val[3];
	opts.log = journal__log;
	opts.log_opaque = tb;

	tb->journal = tjournal_open(path, &opts, err, sizeof(err));
	if (!tb->journal) {
		mosquitto_log_printf(MOSQ_LOG_ERR, TB_LOG_PREFIX "config: journal.dir: %s: %s", path,
				     err);
		return MOSQ_ERR_INVAL;
	}
	tjournal_stats st;
	tjournal_get_stats(tb->journal, &st);
	mosquitto_log_printf(MOSQ_LOG_NOTICE,
			     TB_LOG_PREFIX "journal %s (sync %s): %llu unconfirmed events to "
					   "produce again",
			     path, sync ? json_string_value(sync) : "always",
			     (unsigned long long)st.depth);
	return MOSQ_ERR_SUCCESS;
}

int journal__append(struct tributary *tb, const struct tb_cluster *cluster, const char *topic,
		    const void *key, size_t keylen, rd_kafka_headers_t *kh, const void *value,
		    size_t valuelen, uint64_t *seq)
{
	size_t count = rd_kafka_header_cnt(kh);
	tjournal_header *hdrs = calloc(count + 1, sizeof(*hdrs));
	size_t n = 0;
	if (!hdrs)
		return TJOURNAL_ENOMEM;
	for (; n < count; n++) {
		const char *name;
		const void *v;
		size_t vlen;
		if (rd_kafka_header_get_all(kh, n, &name, &v, &vlen))
			break;
		hdrs[n].name = name;
		hdrs[n].name_len = strlen(name);
		hdrs[n].value = v;
		hdrs[n].value_len = vlen;
	}
	hdrs[n].name = JOURNAL_CLUSTER_HEADER;
	hdrs[n].name_len = strlen(JOURNAL_CLUSTER_HEADER);
	hdrs[n].value = cluster->name;
	hdrs[n].value_len = strlen(cluster->name);
	n++;
	tjournal_record r = {.topic = topic,
			     .topic_len = strlen(topic),
			     .key = key,
			     .key_len = keylen,
			     .headers = hdrs,
			     .header_count = n,
			     .value = value,
			     .value_len = valuelen};
	int rc = TJOURNAL_EINVAL;
	size_t size = tjournal_record_size(&r);
	void *blob = size ? malloc(size) : NULL;
	if (size && !blob)
		rc = TJOURNAL_ENOMEM;
	else if (blob && tjournal_record_encode(&r, blob, size) == size)
		rc = tjournal_append(tb->journal, blob, size, seq);
	free(blob);
	free(hdrs);
	return rc;
}

void journal__release(struct tributary *tb, uint64_t seq)
{
	if (tb->journal && seq)
		tjournal_release(tb->journal, seq);
}

static int journal__replay_one(uint64_t seq, const void *data, size_t len, void *opaque)
{
	struct tributary *tb = opaque;
	tjournal_record *r = NULL;
	struct tb_cluster *cluster = NULL;
	char err[512];

	if (tjournal_record_decode(data, len, &r) != TJOURNAL_OK) {
		/* Undecodable: keep it for the operator (tributary-journal-tool dump). */
		mosquitto_log_printf(MOSQ_LOG_ERR,
				     TB_LOG_PREFIX "journal: entry %llu cannot be decoded; left in "
						   "the journal",
				     (unsigned long long)seq);
		return 0;
	}
	rd_kafka_headers_t *kh = rd_kafka_headers_new(r->header_count);
	for (size_t i = 0; i < r->header_count; i++) {
		const tjournal_header *h = &r->headers[i];
		if (!strcmp(h->name, JOURNAL_CLUSTER_HEADER)) {
			char name[128];
			snprintf(name, sizeof(name), "%.*s", (int)h->value_len, (const char *)h->value);
			cluster = config__cluster(tb, name);
			continue;
		}
		rd_kafka_header_add(kh, h->name, (ssize_t)h->name_len, h->value,
				    h->value ? (ssize_t)h->value_len : 0);
	}
	if (!cluster) {
		rd_kafka_headers_destroy(kh);
		mosquitto_log_printf(MOSQ_LOG_ERR,
				     TB_LOG_PREFIX "journal: entry %llu names a cluster that is no "
						   "longer configured; left in the journal",
				     (unsigned long long)seq);
	} else if (produce__send(cluster, r->topic, r->key, r->key_len, r->value, r->value_len, kh,
				 seq, err, sizeof(err))) {
		mosquitto_log_printf(MOSQ_LOG_ERR, TB_LOG_PREFIX "journal: entry %llu: %s",
				     (unsigned long long)seq, err);
	} else {
		atomic_fetch_add(&tb->stats.replayed, 1);
	}
	free(r);
	return 0;
}

/* Before any new traffic: the callbacks are registered after this. */
int journal__replay(struct tributary *tb)
{
	if (!tb->journal)
		return MOSQ_ERR_SUCCESS;
	int rc = tjournal_replay(tb->journal, journal__replay_one, tb);
	if (rc != TJOURNAL_OK) {
		mosquitto_log_printf(MOSQ_LOG_ERR, TB_LOG_PREFIX "journal: replay failed: %s",
				     tjournal_strerror(rc));
		return MOSQ_ERR_UNKNOWN;
	}
	if (atomic_load(&tb->stats.replayed))
		mosquitto_log_printf(MOSQ_LOG_NOTICE,
				     TB_LOG_PREFIX "journal: producing %llu unconfirmed events again",
				     (unsigned long long)atomic_load(&tb->stats.replayed));
	return MOSQ_ERR_SUCCESS;
}

void journal__publish_stats(struct tributary *tb)
{
	tjournal_stats st;
	if (!tb->journal)
		return;
	tjournal_get_stats(tb->journal, &st);
	stats__put("$SYS/tributary/journal/depth", st.depth);
	stats__put("$SYS/tributary/journal/bytes", st.bytes);
	stats__put("$SYS/tributary/journal/oldest_age_ms", st.oldest_age_ms);
	stats__put("$SYS/tributary/journal/full", st.full);
}

void journal__close(struct tributary *tb)
{
	if (tb->journal)
		tjournal_close(tb->journal);
	tb->journal = NULL;
}

/* A full store refuses events until Kafka catches up: say so, but not for
 * every refused event. */
void journal__note_refusal(struct tributary *tb, int code)
{
	time_t now = time(NULL);
	if (now - tb->journal_warned_at < 10)
		return;
	tb->journal_warned_at = now;
	tjournal_stats st;
	tjournal_get_stats(tb->journal, &st);
	mosquitto_log_printf(MOSQ_LOG_WARNING,
			     TB_LOG_PREFIX "journal: refusing new events: %s (%llu events, %llu of "
					   "%llu bytes waiting for Kafka)",
			     tjournal_strerror(code), (unsigned long long)st.depth,
			     (unsigned long long)st.bytes, (unsigned long long)st.max_bytes);
}
