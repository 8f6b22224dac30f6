#!/usr/bin/env bash
# Back-pressure: a tiny hand-over queue (capacity 50) and a burst of 5,000
# records. The consumer must pause its partitions when the queue is full and
# resume when it drains, and the subscriber must get every record, in order.
source "$(dirname "$0")/../lib/stack.sh"
stack_init
N=${OUTBOUND_BURST:-5000}
start_kafka --topic notifications:3

cat >"$T/outbound.json.in" <<'JSON'
{
  "broker_id": "outbound-bp",
  "catalog": "@ROOT@/schemas/catalog.json",
  "clusters": { "main": { "bootstrap.servers": "@KAFKA_BOOTSTRAP@" } },
  "ingest": { "routes": [] },
  "outbound": {
    "wake": "127.0.0.1:@MQTT_PORT@",
    "consumer": { "fetch.wait.max.ms": 5 },
    "queue": { "capacity": 50, "resume_below": 10 },
    "max_per_tick": 20,
    "routes": [ { "kafka_topic": "notifications", "topic": "users/{key}/notifications", "qos": 1 } ]
  },
  "stats": { "sys_interval": 1 }
}
JSON
# Mosquitto's own per-client limit (max_queued_messages, 1000 by default)
# would drop QoS 1 messages for a subscriber that falls behind; that is the
# broker's policy, not the plugin's, and not what this test is about.
start_mosquitto "$T/outbound.json.in" "max_queued_messages 100000"
for _ in $(seq 1 150); do grep -q 'outbound: assigned' "$T/mosquitto.log" && break; sleep 0.1; done
grep -q 'outbound: assigned' "$T/mosquitto.log" || { cat "$T/mosquitto.log" >&2; fail "no partition assignment"; }

cd "$ROOT" && OUTBOUND_BURST=$N node --test tests/node/outbound-backpressure.mjs || fail "back-pressure test failed"
grep -q 'not published' "$T/mosquitto.log" && fail "records were dropped"
pass "burst of $N through a queue of 50"
