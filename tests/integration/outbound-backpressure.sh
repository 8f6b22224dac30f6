#!/usr/bin/env bash
# Back-pressure: a tiny hand-over queue and bursts of records. The
# subscriber must get every record, in order, none twice, and the counters
# must show the flow control at work:
#   1. "pause_after_ms": 0 — the partitions are paused as soon as the queue
#      is full and resumed once it drained to resume_below;
#   2. the default — the consumer first waits for the queue to drain (no
#      pause for short bursts).
source "$(dirname "$0")/../lib/stack.sh"
stack_init
N=${OUTBOUND_BURST:-5000}
# Each resume costs up to ~1 s with librdkafka 2.0.2 (docs/outbound.md): a
# smaller burst keeps the pausing phase short.
N_PAUSE=${OUTBOUND_BURST_PAUSE:-2000}
start_kafka --topic notifications:3

config() { # broker_id pause_after_ms
	cat <<JSON
{
  "broker_id": "$1",
  "catalog": "@ROOT@/schemas/catalog.json",
  "clusters": { "main": { "bootstrap.servers": "@KAFKA_BOOTSTRAP@" } },
  "ingest": { "routes": [] },
  "outbound": {
    "wake": "127.0.0.1:@MQTT_PORT@",
    "consumer": { "fetch.wait.max.ms": 5 },
    "queue": { "capacity": 100, "resume_below": 20 $2 },
    "max_per_tick": 20,
    "routes": [ { "kafka_topic": "notifications", "topic": "users/{key}/notifications", "qos": 1 } ]
  },
  "stats": { "sys_interval": 1 }
}
JSON
}

run() { # name pause_after expect records
	local N=$4
	config "bp-$1" "$2" >"$T/$1.json.in"
	: >"$T/mosquitto.log"
	# Mosquitto's own per-client limit (max_queued_messages, 1000 by default)
	# would drop QoS 1 messages for a subscriber that falls behind; that is
	# the broker's policy, not the plugin's, and not what this test is about.
	start_mosquitto "$T/$1.json.in" "max_queued_messages 100000"
	wait_assigned
	(cd "$ROOT" && OUTBOUND_BURST=$N OUTBOUND_KEY="bp-$1" OUTBOUND_EXPECT=$3 \
		node --test tests/node/outbound-backpressure.mjs) || fail "$1: back-pressure test failed"
	grep -q 'not published' "$T/mosquitto.log" && fail "$1: records were dropped"
	cp "$T/mosquitto.log" "$T/mosquitto-$1.log"
	stop_mosquitto
}

run pause ', "pause_after_ms": 0' pause "$N_PAUSE"
run wait '' full "$N"
pass "bursts of $N_PAUSE (pausing) and $N (waiting) through a queue of 100"
