/*
 * Outbound: Kafka records -> MQTT (notifications, replies to v5 requests).
 *
 *   outbound_config.c   the "outbound" section: routes, queue, wake, consumer
 *   outbound_consumer.c the consumer thread: poll, rebalance, pause/resume
 *   outbound_map.c      record -> MQTT message (route, topic, payload,
 *                       properties), done on the consumer thread
 *   outbound_queue.c    the bounded hand-over between the two threads
 *   outbound_wake.c     loopback MQTT connection that wakes the broker loop
 *   outbound.c          start/stop, the tick (publish on the main thread),
 *                       counters
 *
 * Threads: the consumer thread polls Kafka and maps each record to a ready
 * message in plain malloc'ed memory; the main thread (MOSQ_EVT_TICK) copies
 * it into broker memory (mosquitto_malloc, mosquitto_property_add_*), calls
 * mosquitto_broker_publish and, one tick later, stores the offsets and hands
 * the records back to the consumer thread, which frees them. Nothing of
 * Mosquitto's is called off the main thread.
 */
#ifndef TRIBUTARY_OUTBOUND_H
#define TRIBUTARY_OUTBOUND_H

#include <sys/socket.h>

#include "tributary.h"
#include "tributary/registry.h"
#include "tributary/wire.h"

/* Why a record was not published; the names appear in $SYS and the log. */
enum ob_drop {
	OB_DROP_NONE = -1,
	OB_DROP_NO_ROUTE = 0,
	OB_DROP_TOPIC_INVALID,
	OB_DROP_NO_RESPONSE_TOPIC,
	OB_DROP_REPLY_TOPIC_REFUSED,
	OB_DROP_NOT_CLOUDEVENTS,
	OB_DROP_INVALID_EVENT,
	OB_DROP_TOO_LARGE,
	OB_DROP_BROKER_REFUSED,
	OB_DROP_UNDECODABLE,
	OB_DROP__COUNT
};
const char *outbound__drop_name(enum ob_drop d);

enum ob_format { OB_FORMAT_BINARY, OB_FORMAT_STRUCTURED };

/* A registry whose wire format (magic byte, schema id, payload) the
 * records of some routes' topics are in: decoded back to JSON on the
 * consumer thread, which alone uses `client` and fetches schemas by id
 * (outbound_map.c). */
struct ob_wire {
	char *name;
	tb_registry_opts opts; /* copied from "registries" at start: a reload
	                          of that section never pulls them away */
	tb_registry *client;   /* made on the consumer thread when first needed */
	tb_wire_cache *cache;
	bool down; /* the last fetch failed: logged once */
};

struct ob_route {
	char *kafka_topic;
	char *type;        /* CloudEvents type filter, NULL: any */
	bool type_prefix;  /* "example.order.*": prefix match on type minus '*' */
	char *header_name; /* header filter, NULL: none */
	char *header_value;
	bool reply;        /* MQTT topic from mqtt_response_topic */
	tb_template topic; /* non-reply routes */
	tb_pattern *allow; /* reply routes: the topics a reply may go to */
	size_t nallow;
	int qos;
	bool retain;
	enum ob_format format;
	uint32_t message_expiry; /* seconds, 0: none */
	struct ob_wire *wire;    /* "registry": records of kafka_topic are in its
	                            wire format; NULL: as they are */
};

struct ob_prop { /* a v5 user property */
	const char *name;
	const char *value;
};

/* A record mapped to an MQTT message, ready for mosquitto_broker_publish.
 * One malloc: the struct, then props[], then the NUL-terminated strings. */
struct ob_item {
	struct ob_item *next;
	rd_kafka_message_t *msg; /* kept until its offset is stored */
	enum ob_drop drop;
	char detail[160]; /* why it was dropped, for the log */
	const struct ob_route *route;
	const char *topic;
	const void *payload; /* into msg, or `owned` */
	size_t len;
	char *owned; /* structured JSON made from a binary record */
	const char *content_type;
	const void *correlation;
	uint16_t correlation_len;
	size_t nprops;
	struct ob_prop *props;
};

struct ob_queue {
	pthread_mutex_t lock;
	pthread_cond_t space; /* depth fell to `low` while the consumer waited */
	struct ob_item *head, *tail;
	size_t depth;
	size_t low;
	bool waiting;
	/* Published, offsets stored: freed by the consumer thread, so that
	 * the main thread spends no time in free() and
	 * rd_kafka_message_destroy(). */
	struct ob_item *done, *done_tail;
	atomic_bool has_done; /* done is not empty: checked without the lock */
};

struct ob_stats {
	atomic_uint_fast64_t received;
	atomic_uint_fast64_t published;
	atomic_uint_fast64_t dropped[OB_DROP__COUNT];
	atomic_uint_fast64_t not_events; /* ce_specversion records sent as plain */
	atomic_uint_fast64_t full;       /* times the queue reached its capacity */
	atomic_uint_fast64_t pauses;     /* times the partitions were paused */
	atomic_uint_fast64_t wakes;
	atomic_uint_fast64_t kafka_errors;
	atomic_uint_fast64_t offset_store_failed;
	atomic_uint_fast64_t assigned; /* partitions */
	atomic_bool paused;
};

/* Lines for the broker log from other threads, logged by the tick. */
#define OB_LOG_LINES 64
struct ob_log {
	pthread_mutex_t lock;
	unsigned count, dropped;
	int level[OB_LOG_LINES];
	char line[OB_LOG_LINES][240];
};

#define OB_WAKE_MAX_CANDIDATES 16

struct ob_wake {
	pthread_mutex_t lock; /* fd, for the consumer thread's writes */
	int fd;
	char *host, *port; /* NULL with `autodetect` */
	bool autodetect;   /* find one of the broker's own listeners */
	struct sockaddr_storage cand[OB_WAKE_MAX_CANDIDATES];
	socklen_t candlen[OB_WAKE_MAX_CANDIDATES];
	int ncand, cur;    /* listeners found, the one in use or tried next */
	char curname[128]; /* the address in use, for the log */
	time_t connect_at; /* when the CONNECT went out: no CONNACK, next one */
	char *username, *password, *client_id;
	bool connack_seen;
	bool warned;
	time_t retry_at;
	time_t last_ping;
	unsigned char rx[8]; /* a partial packet header between reads */
	size_t rxlen;
	size_t skip;         /* bytes of a packet body still to discard */
	atomic_bool pending; /* a wake is on its way and no tick has run since */
	bool after_publish;
};

struct tbp_outbound {
	struct tributary *tb;
	/* configuration */
	json_t *kafka_props; /* consumer properties, merged (cluster + own) */
	char *cluster_name;
	char *group_id;
	char *start; /* "latest" or "earliest": a group's first position */
	struct ob_route *routes;
	size_t nroutes;
	struct ob_wire *wires; /* one per registry the routes name */
	size_t nwires;
	char **topics; /* distinct Kafka topics of the routes */
	size_t ntopics;
	size_t capacity, resume_below;
	int pause_after_ms; /* full for this long: pause the partitions */
	size_t max_per_tick;
	size_t max_payload;
	bool wake_enabled;

	/* runtime */
	rd_kafka_t *rk;
	pthread_t thread;
	bool thread_started;
	atomic_bool stop;
	bool started;
	bool closed; /* the consumer left its group cleanly */
	bool callbacks_registered;
	struct ob_queue queue;
	struct ob_item *unstored, *unstored_tail; /* published last tick */
	struct ob_wake wake;
	struct ob_stats stats;
	struct ob_log log;
	time_t drop_logged_at[OB_DROP__COUNT];
	uint64_t drop_unlogged[OB_DROP__COUNT];
	time_t not_event_logged_at; /* consumer thread */
	uint64_t not_event_unlogged;
};

/* outbound_config.c */
int outbound__config(struct tributary *tb, const json_t *outbound, const json_t *clusters);
void outbound__config_free(struct tbp_outbound *ob);

/* outbound_consumer.c */
int outbound__consumer_start(struct tbp_outbound *ob);
void outbound__consumer_stop(struct tbp_outbound *ob);
void outbound__consumer_close(struct tbp_outbound *ob, int timeout_ms);
void outbound__consumer_destroy(struct tbp_outbound *ob);

/* outbound_map.c */
struct ob_item *outbound__map(struct tbp_outbound *ob, rd_kafka_message_t *msg);
void outbound__item_free(struct ob_item *it);

/* outbound_queue.c */
void outbound__queue_init(struct ob_queue *q, size_t low);
size_t outbound__queue_wait(struct ob_queue *q, int timeout_ms);
size_t outbound__queue_push(struct ob_queue *q, struct ob_item *it);
struct ob_item *outbound__queue_take(struct ob_queue *q, size_t max, size_t *taken, size_t *left);
size_t outbound__queue_depth(struct ob_queue *q);
void outbound__queue_recycle(struct ob_queue *q, struct ob_item *first, struct ob_item *last);
void outbound__queue_free_done(struct ob_queue *q);
void outbound__queue_destroy(struct ob_queue *q);

/* outbound_wake.c */
int outbound__wake_config(struct ob_wake *w, const json_t *v, const char *broker_id);
void outbound__wake_init(struct ob_wake *w);
void outbound__wake(struct tbp_outbound *ob);         /* any thread */
void outbound__wake_service(struct tbp_outbound *ob); /* main thread, each tick */
void outbound__wake_free(struct ob_wake *w);

/* outbound.c */
void outbound__note(struct tbp_outbound *ob, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
