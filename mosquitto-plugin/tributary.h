/*
 * Tributary Mosquitto plugin — internal header.
 *
 * Areas, one file each:
 *   plugin.c   entry points, callback registration, reload
 *   config.c   the JSON configuration (plugin_opt_config): read once, the
 *              error style, the "ingest" section
 *   config_load.c  each area handed its section, checked at start
 *   cluster.c  Kafka producers: one per named cluster, delivery reports
 *   ingest.c   MOSQ_EVT_MESSAGE: route, parse, target, validate, produce, mirror
 *   ingest_route.c  which route, and where in Kafka (no broker calls)
 *   produce.c  CloudEvents -> Kafka record (binary or structured mode), and
 *              each cluster's producer thread that hands them to librdkafka
 *   ring.c     the lock-free ring from the main thread to a producer thread
 *   reject.c   error events on clients/{client_id}/errors
 *   stats.c    counters, published under $SYS/tributary/
 *   journal_glue.c  the durable journal in front of Kafka (shared/journal)
 *   resend.c   QoS 2 retransmissions keep their generated id
 *   outbound*.c  Kafka -> MQTT: notifications and replies (outbound.h)
 *   topics.c   the "topics" section: topics checked, created, enforced
 *
 * Names: functions area__verb (Mosquitto's plugin style); types private to
 * the plugin tbp_ (outbound's ob_), while tb_ and tjs_ belong to shared/.
 *
 * Threads: every Mosquitto callback and broker function runs on the main
 * thread. The main thread journals an accepted event and pushes it into its
 * cluster's ring; each cluster's producer thread drains the ring into
 * librdkafka (rd_kafka_producev), and its poll thread serves librdkafka's
 * delivery reports. Neither calls Mosquitto: they touch the ring, atomics,
 * the journal (thread-safe) and the mutex-protected failure log.
 */
#ifndef TRIBUTARY_PLUGIN_H
#define TRIBUTARY_PLUGIN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
#include <mqtt_protocol.h>

#include "tributary/avro.h"
#include "tributary/catalog.h"
#include "tributary/cloudevents.h"
#include "tributary/route.h"

#define TB_LOG_PREFIX "tributary: "

/* Why an event was refused; the names appear in error events and $SYS. */
enum tbp_reject_reason {
	TBP_REJECT_NO_ROUTE,
	TBP_REJECT_TOO_LARGE,
	TBP_REJECT_INVALID_UTF8,
	TBP_REJECT_INVALID_JSON,
	TBP_REJECT_NOT_AN_EVENT,
	TBP_REJECT_MISSING_ATTRIBUTE,
	TBP_REJECT_INVALID_ATTRIBUTE,
	TBP_REJECT_INVALID_DATA,
	TBP_REJECT_UNKNOWN_TYPE,
	TBP_REJECT_SCHEMA,
	TBP_REJECT_ROUTING,
	TBP_REJECT_INVALID_TOPIC,
	TBP_REJECT_TYPE_NOT_ALLOWED,
	TBP_REJECT_INVALID_RESPONSE_TOPIC,
	TBP_REJECT_KAFKA,
	TBP_REJECT_STORE_FULL,
	TBP_REJECT_TOPIC_NOT_COMPLIANT,
	TBP_REJECT_SCHEMA_UNAVAILABLE,
	TBP_REJECT_INTERNAL,
	TBP_REJECT__COUNT
};
const char *stats__reason_name(enum tbp_reject_reason r);

struct tbp_stats {
	atomic_uint_fast64_t accepted;
	atomic_uint_fast64_t passed; /* matched no route, left to the broker */
	atomic_uint_fast64_t rejected[TBP_REJECT__COUNT];
	atomic_uint_fast64_t produced; /* delivery confirmed by Kafka */
	atomic_uint_fast64_t delivery_failed;
	atomic_uint_fast64_t mirror_failed;
	atomic_uint_fast64_t replayed; /* produced again from the journal at start */
	atomic_uint_fast64_t retried;  /* produced again from the journal while running */
	atomic_uint_fast64_t resent;   /* QoS 2 retransmissions given their first id */
};

struct tributary;

/* ring.c: a lock-free single-producer (the main thread), single-consumer
 * (the cluster's producer thread) ring of encoded records. */
struct tbp_ring_slot {
	uint64_t seq;   /* the journal entry, or 0 */
	unsigned flags; /* TBP_SLOT_* */
	size_t len, cap;
	uint8_t *buf; /* a journal record (tjournal_record_encode) of len bytes */
};
#define TBP_SLOT_MIRROR 1u /* a mirror copy: its failures count as mirror_failed */
struct tbp_ring {
	_Alignas(64) atomic_size_t head; /* consumer's: next slot to read */
	size_t tail_cache;               /* consumer's view of tail */
	_Alignas(64) atomic_size_t tail; /* producer's: next slot to write */
	size_t head_cache;               /* producer's view of head */
	_Alignas(64) atomic_int waiting; /* futex: the consumer sleeps */
	size_t mask;
	struct tbp_ring_slot *slots;
};
enum { RING_OK = 0, RING_FULL = -1, RING_NOMEM = -2 };
int ring__init(struct tbp_ring *r, size_t capacity); /* rounded up to a power of 2 */
void ring__free(struct tbp_ring *r);
size_t ring__capacity(const struct tbp_ring *r);
/* Producer: the next free slot, its buffer at least len bytes (kept from
 * its last use when big enough); ring__commit publishes it; ring__kick
 * wakes the consumer if it sleeps (true when it did), after one or more
 * commits. ring__wake wakes it in any case. ring__depth: the slots not yet
 * consumed (any thread). */
int ring__reserve(struct tbp_ring *r, size_t len, struct tbp_ring_slot **out);
void ring__commit(struct tbp_ring *r);
bool ring__kick(struct tbp_ring *r);
void ring__wake(struct tbp_ring *r);
size_t ring__depth(struct tbp_ring *r);
/* Consumer: how many slots are published; slot i of them (0: the oldest);
 * ring__release frees the n oldest. ring__wait sleeps until a slot is
 * published, ring__wake, or timeout_ms, unless *stop (may be NULL) is set
 * (set it before ring__wake): false on timeout. */
size_t ring__available(struct tbp_ring *r);
struct tbp_ring_slot *ring__slot(struct tbp_ring *r, size_t i);
void ring__release(struct tbp_ring *r, size_t n);
bool ring__wait(struct tbp_ring *r, atomic_bool *stop, int timeout_ms);

/* Why a cluster's producer thread makes the main thread refuse new events. */
enum tbp_refusing { TBP_REFUSING_NONE, TBP_REFUSING_QUEUE_FULL, TBP_REFUSING_FATAL };

struct tbp_cluster {
	char *name;
	rd_kafka_conf_t *conf; /* configured, until cluster__start makes rk */
	rd_kafka_t *rk;
	struct tributary *tb;
	pthread_t poller;
	bool poller_started;
	atomic_bool stop;
	/* produce.c: the ring from the main thread, its producer thread */
	struct tbp_ring ring;
	pthread_t producer;
	bool producer_started;
	atomic_bool producer_stop;         /* drain the ring, then end */
	atomic_llong producer_deadline_ms; /* CLOCK_MONOTONIC: stop waiting for room */
	atomic_int refusing;               /* enum tbp_refusing */
	unsigned unkicked;                 /* main thread: events committed since the last kick */
	size_t max_message_bytes;          /* message.max.bytes */
	/* journal_glue.c: failed deliveries produced again while running. While
	 * `retrying`, new events stay in the journal and the retry thread
	 * produces them in order. Set by any thread that sees a failure; read
	 * by the producer thread and cleared by the retry thread under
	 * retry_lock, which the producer thread holds around each batch. */
	pthread_mutex_t retry_lock;
	bool retry_lock_init;
	atomic_bool retrying;
	atomic_bool purge_armed;      /* the next failure takes back what is queued */
	atomic_bool retry_again;      /* a delivery failed since the retry round began */
	atomic_uint retry_round;      /* rounds since the last confirmed delivery: backoff */
	atomic_bool retry_fatal_told; /* the producer's fatal error was logged */
	uint64_t retry_covered;       /* under retry_lock: entries below it were retried */
};

/* A route's value_format: CloudEvents binary or structured mode, or
 * Confluent's wire format (magic byte 0, the schema id, the JSON data) with
 * the binary mode's ce_* headers. */
enum tbp_kafka_mode { TBP_MODE_BINARY, TBP_MODE_STRUCTURED, TBP_MODE_CONFLUENT };

/* Which registry subject holds an event's schema (Confluent's strategies). */
enum tbp_subject_strategy {
	TBP_SUBJECT_TOPIC,       /* <kafka topic>-value */
	TBP_SUBJECT_RECORD,      /* the CloudEvents type */
	TBP_SUBJECT_TOPIC_RECORD /* <kafka topic>-<type> */
};

/* A named entry of "registries" (registry.c): a Confluent-compatible
 * Schema Registry whose JSON Schemas a route validates against. */
struct tbp_regcache;
struct tbp_registry {
	char *name;
	char *url, *user, *password, *bearer, *ca;
	long timeout_ms;
	long start_timeout_ms;
	int max_age_s;
	int pinned_versions;        /* older versions kept for dataschema, at most */
	struct tbp_regcache *cache; /* registry.c: the thread and the compiled schemas */
};

/* An entry of a route's "types": a type, or a prefix (written with a final
 * `*`); may use the match pattern's captures. */
struct tbp_type_rule {
	tb_template type; /* without the `*` */
	bool prefix;
};

struct tbp_ingest_route {
	tb_pattern match;
	tb_template topic;
	tb_capture_rule *capture_rule; /* "capture_pattern" */
	uint32_t topic_captures;       /* bit i: capture i is in topic or mirror.topic */
	struct tbp_type_rule *types;   /* "types"; NULL: any type */
	size_t ntypes;
	tb_template key; /* text NULL: the partitionkey extension, else no key */
	struct tbp_cluster *cluster;
	bool schema_required;
	uint32_t max_payload;
	enum tbp_kafka_mode mode;
	struct tbp_registry *registry; /* NULL: the file catalog */
	enum tbp_subject_strategy strategy;
	struct tbp_cluster *mirror_cluster; /* NULL: no mirror */
	tb_template mirror_topic;
};

/* A delivery failure crossing from a poll thread to the main thread's log. */
#define TB_FAILURE_LOG 32
struct tbp_failure_log {
	pthread_mutex_t lock;
	unsigned count, dropped;
	char lines[TB_FAILURE_LOG][256];
};

struct tributary {
	mosquitto_plugin_id_t *pid;
	char *config_path;
	char *config_dir; /* relative paths in the file are relative to it */
	char *broker_id;
	char *catalog_path;
	tb_catalog *catalog;

	struct tbp_cluster *clusters;
	size_t nclusters;
	struct tbp_registry *registries; /* "registries" (registry.c) */
	size_t nregistries;
	tb_avro_buf avro_buf; /* ingest's Avro encodings: the main thread's */
	struct tbp_ingest_route *routes;
	size_t nroutes;
	bool reject_unmatched;
	tb_template error_topic;
	/* ingest.response_topics: where a v5 request may ask for its reply */
	struct tbp_response_topic {
		tb_template topic;
		bool wildcard; /* an MQTT filter: `+` or `#` levels */
	} * response_topics;
	size_t nresponse_topics;
	size_t resend_clients;     /* ingest.qos2_resend_clients */
	struct tbp_resend *resend; /* resend.c: NULL when off */

	int sys_interval_s;
	time_t next_sys;
	bool ticking; /* MOSQ_EVT_TICK fires: produce.c wakes producers on it */
	int flush_timeout_ms;

	struct tbp_stats stats;
	struct tbp_failure_log failures;

	struct tjournal *journal; /* NULL: no "journal" section */
	time_t journal_warned_at;
	/* journal_glue.c: the retry thread, NULL without a journal */
	struct tbp_journal_retry *retry;

	struct tbp_outbound *outbound; /* NULL: no "outbound" section */

	struct tbp_auth *auth; /* auth.c: NULL when JWT authentication is off */

	/* topics.c: NULL without a "topics" section; read by the poll threads */
	_Atomic(struct tbp_topics_state *) topics;
};

/* config.c */
/* Logs "config: ..." and returns MOSQ_ERR_INVAL. */
int config__fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* MOSQ_ERR_INVAL, logged, when `obj` has a key that `allowed` lacks. */
int config__only(const json_t *obj, const char *where, const char *const *allowed);
json_t *config__read(const char *path, char *err, size_t errlen);
int config__int(const json_t *obj, const char *name, long long min, long long max, long long dflt,
                long long *out, const char *msg);
int config__ingest(struct tributary *tb, const json_t *ingest);
void config__ingest_free(struct tributary *tb);
/* config_load.c: each area's section checked, nothing started */
int config__load(struct tributary *tb, const char *path);
void config__free(struct tributary *tb);
struct tbp_cluster *config__cluster(struct tributary *tb, const char *name);
struct tbp_registry *config__registry(struct tributary *tb, const char *name);

/* registry.c: the "registries" section; per registry one thread fetches,
 * compiles and refreshes its JSON Schemas, which the publish path only reads
 * (docs/registry.md). */
int registry__config(struct tributary *tb, const json_t *registries, const char *base_dir);
/* Starts the threads and waits for their first load, at most each
 * registry's start_timeout_ms. */
int registry__start(struct tributary *tb);
void registry__cleanup(struct tributary *tb);
void registry__publish_stats(struct tributary *tb);
/* SIGHUP: the section read again. A changed registry (url, credentials,
 * max_age_s, ...) takes effect at once; a bad section, or one without a
 * registry that a route uses, is logged and the previous settings stay
 * (MOSQ_ERR_INVAL). Main thread. */
int registry__reload(struct tributary *tb, const json_t *registries);
/* The compiled schema of a subject, as the main thread sees it. */
struct tbp_schema_ref {
	const char *subject;
	int id, version;
	const tjs_schema *schema;   /* a JSON Schema subject's, */
	const tb_avro_schema *avro; /* or an Avro subject's; neither: */
	const char *error;          /* why it cannot be used (e.g. Protobuf) */
};
/* Main thread only. The subject's cached schema: true with *out valid
 * until registry__release(r); false when it is not cached (a background
 * fetch is queued; never waited for). Call registry__release after either. */
bool registry__find(struct tbp_registry *r, const char *subject, struct tbp_schema_ref *out);
void registry__release(struct tbp_registry *r);
/* Main thread, after registry__find gave `*s` (the subject's latest): the
 * version a client's CloudEvents dataschema names (docs/registry.md).
 * LATEST: `ds` names *s; PINNED: *s is now the older version it names
 * (valid until registry__release); PENDING: that version is not cached yet,
 * fetched in the background, never waited for (schema_unavailable);
 * INVALID: not a version of this subject in this registry
 * (invalid_attribute). err says why for the last two. */
enum registry_pin {
	REGISTRY_PIN_LATEST,
	REGISTRY_PIN_PINNED,
	REGISTRY_PIN_PENDING,
	REGISTRY_PIN_INVALID
};
enum registry_pin registry__dataschema(struct tbp_registry *r, const char *subject, const char *ds,
                                       struct tbp_schema_ref *s, char *err, size_t errlen);

/* cluster.c */
int cluster__config(struct tbp_cluster *c, const json_t *props, bool journaled);
int cluster__start(struct tbp_cluster *c);
void cluster__stop(struct tbp_cluster *c, int flush_timeout_ms);
void cluster__note_failure(struct tributary *tb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void cluster__log_failures(struct tributary *tb);

/* ingest.c */
int ingest__on_message(int event, void *event_data, void *userdata);

/* ingest_route.c: which route a message takes and where its event goes, for
 * ingest.c's route and target steps; no broker calls. */
struct ingest__target {
	const char *client_id, *username; /* the sender: {client_id}, {username} */
	const struct tbp_ingest_route *route;
	tb_captures caps; /* of the route's match pattern */
	char kafka_topic[256];
	char key[1024];
	const char *keyp; /* the record key (key, or the partitionkey), or NULL */
	size_t keylen;
};
/* The first route whose pattern matches `topic`; false when none does. */
bool ingest__match(const struct tributary *tb, const char *topic, struct ingest__target *t);
/* The matched route's capture_pattern and max_payload: false with *why and
 * err when the message breaks them. */
bool ingest__route_accepts(const struct ingest__target *t, uint32_t payloadlen,
                           enum tbp_reject_reason *why, char *err, size_t errlen);
/* The Kafka topic and record key of `ev`, and whether the route allows its
 * type: false with *why and err when not. */
bool ingest__locate(struct ingest__target *t, const tb_event *ev, enum tbp_reject_reason *why,
                    char *err, size_t errlen);
/* The route's mirror.topic for `ev`; false when it makes no legal name. */
bool ingest__mirror_topic(const struct ingest__target *t, const tb_event *ev, char *out,
                          size_t outlen);

/* produce.c */
struct tbp_origin {
	const char *topic;
	const char *client_id;
	uint8_t qos;
	const char *response_topic;
	const void *correlation_data;
	uint16_t correlation_len;
};
/* A confluent record's value after its magic byte and schema id: the
 * event's JSON data (payload NULL), or the data encoded (Avro binary). */
struct tbp_confluent_value {
	int schema_id;
	const void *payload;
	size_t len;
};
/* Main thread: journals (when `journal` and a journal is configured) and
 * hands the record to the cluster's producer thread; on refusal *why says
 * which it is. `journal` false: a mirror copy. `cv`: TBP_MODE_CONFLUENT's. */
int produce__event(struct tributary *tb, struct tbp_cluster *cluster, const char *kafka_topic,
                   const char *key, size_t keylen, enum tbp_kafka_mode mode,
                   const struct tbp_confluent_value *cv, const tb_event *ev,
                   const struct tbp_origin *origin, bool journal, enum tbp_reject_reason *why,
                   char *err, size_t errlen);
/* cluster.c: the cluster's ring and producer thread; produce__stop hands
 * what the ring holds to librdkafka first, waiting at most timeout_ms for
 * room in its queue. */
int produce__start(struct tbp_cluster *c);
void produce__stop(struct tbp_cluster *c, int timeout_ms);
/* Main thread, on every tick (each turn of Mosquitto's main loop): wakes
 * the producer threads for the events the turn accepted. */
void produce__tick(struct tributary *tb);
/* Set on the thread inside produce__send: librdkafka reports a refused
 * produce() to the on_acknowledgement interceptor too (cluster.c). */
extern _Thread_local bool produce__sending;
/* Any thread: produces a ready record; consumes `hdrs`; `seq` is its journal
 * entry or 0. librdkafka's refusal (err says it), or 0. */
rd_kafka_resp_err_t produce__send(struct tbp_cluster *cluster, const char *topic, const void *key,
                                  size_t keylen, const void *value, size_t valuelen,
                                  rd_kafka_headers_t *hdrs, uint64_t seq, char *err, size_t errlen);
/* Any thread: produce__send of a journal record (its cluster header left out). */
struct tjournal_record;
rd_kafka_resp_err_t produce__record(struct tbp_cluster *cluster, const struct tjournal_record *r,
                                    uint64_t seq, char *err, size_t errlen);

/* journal_glue.c */
int journal__config(struct tributary *tb, const json_t *j, const char *base_dir);
int journal__open(struct tributary *tb); /* NULL journal without a "journal" section */
/* The header of a journal record that names its cluster; never produced. */
#define TBP_JOURNAL_CLUSTER_HEADER "x-tributary-cluster"
void journal__release(struct tributary *tb, uint64_t seq); /* any thread */
/* Before any traffic: produces what a previous run left unconfirmed, then
 * starts the thread that produces failed deliveries again. */
int journal__replay(struct tributary *tb);
/* Any thread: a journaled event of cluster `c` was not delivered: the
 * cluster retries (see journal_glue.c) and, once per round, what librdkafka still
 * queues is taken back (`purge`: not for an event that a purge took back).
 * journal__delivery_failed, from the delivery report, also wakes the retry
 * thread. */
void journal__failing(struct tbp_cluster *c, bool purge);
void journal__delivery_failed(struct tbp_cluster *c, bool purge);
/* The producer thread, around each batch of a journaled cluster:
 * journal__produce_begin locks the cluster's retry_lock, journal__produce_end
 * unlocks. In between, journal__held says whether the journaled event `seq`
 * (its record `blob`) must not be produced by the caller: the cluster is
 * retrying (the retry thread produces it, from the journal or from a copy
 * of `blob`), or a retry round produced it already. */
void journal__produce_begin(struct tbp_cluster *c);
bool journal__held(struct tbp_cluster *c, uint64_t seq, const void *blob, size_t len);
void journal__produce_end(struct tbp_cluster *c);
void journal__stop_retry(struct tributary *tb); /* before the producers stop */
void journal__note_refusal(struct tributary *tb, int code);
void journal__publish_stats(struct tributary *tb);
void journal__close(struct tributary *tb);

/* resend.c: QoS 2 retransmissions keep their generated id (opt-in) */
struct tbp_resend;
struct resend__check {
	bool active;         /* a QoS 2 event whose id the broker generates */
	bool time_generated; /* and its time */
	uint64_t digest;
	uint32_t len;
	int matched; /* the slot of the copy it resends, or -1 */
};
int resend__init(struct tributary *tb);
void resend__cleanup(struct tributary *tb);
/* Before tb_ce_complete: when `ev` is the client's retransmission of an
 * event accepted on its previous connection, it now carries that event's
 * generated id and time. `attrs`: the MQTT v5 user properties. */
void resend__check(struct tributary *tb, const struct mosquitto_evt_message *msg,
                   const tb_ce_attr *attrs, size_t nattrs, const char *content_type, tb_event *ev,
                   struct resend__check *chk);
/* After `ev` was accepted, when chk->active: remembers the id it was given. */
void resend__accepted(struct tributary *tb, struct mosquitto *client,
                      const struct resend__check *chk, const tb_event *ev);

/* reject.c */
struct tbp_reject {
	enum tbp_reject_reason reason;
	const char *message;
	const tb_event *event;    /* may be NULL or partial */
	const tjs_result *errors; /* validator errors, may be NULL */
};
void reject__publish(struct tributary *tb, struct mosquitto *client, const char *mqtt_topic,
                     int qos, const struct tbp_reject *rej);

/* stats.c */
int stats__on_tick(int event, void *event_data, void *userdata);
void stats__publish(struct tributary *tb);
void stats__put(const char *topic, unsigned long long value);

/* outbound*.c: Kafka -> MQTT (outbound.h has the rest) */
struct tbp_outbound;
int outbound__config(struct tributary *tb, const json_t *outbound, const json_t *clusters);
int outbound__start(struct tributary *tb);
void outbound__stop(struct tributary *tb);
void outbound__publish_stats(struct tributary *tb);

/* topics.c: the "topics" section (docs/topics.md) */
struct tbp_topics_state;
int topics__config(struct tributary *tb, const json_t *root);
int topics__start(struct tributary *tb);
void topics__poll(struct tbp_cluster *c); /* the cluster's poll thread */
bool topics__refuse(struct tributary *tb, struct tbp_cluster *c, const char *topic, char *err,
                    size_t errlen);
void topics__cleanup(struct tributary *tb);

/* auth.c (MOSQ_EVT_BASIC_AUTH: the MQTT password is a JWT) and acl.c
 * (MOSQ_EVT_ACL_CHECK: topics by identity), configured by the "auth" section.
 * auth__config checks that section (tb->auth stays NULL when JWT
 * authentication is off); auth__start registers the callbacks (basic auth,
 * ACL, disconnect, tick); auth__reload, from plugin.c's SIGHUP, takes the
 * section of the file read again. */
struct tbp_auth;
int auth__config(struct tributary *tb, const json_t *auth);
int auth__start(struct tributary *tb);
void auth__reload(struct tributary *tb, const json_t *auth);
void auth__cleanup(struct tributary *tb);
/* The JWT identity (the identity claim, "sub" by default) of a connected
 * client, or NULL when the plugin did not authenticate it (auth off, or an
 * internal_usernames client). Valid until the client disconnects. */
const char *auth__subject(struct tributary *tb, const struct mosquitto *client);
/* All verified claims of that client's token, or NULL. */
const json_t *auth__claims(struct tributary *tb, const struct mosquitto *client);

#endif
