#!/usr/bin/env bash
# Kafka down for 30 s while clients publish 1,000 msg/s at QoS 1: afterwards
# Kafka holds every acknowledged event exactly once, in per-key order.
# (12 partitions: the mock cluster keeps only the last few MB of each.)
source "$(dirname "$0")/../lib/stack.sh"
stack_init
start_kafka --topic events.order:12
start_mosquitto
OUTAGE=${OUTAGE_SECONDS:-30}
cd "$ROOT"
node tests/node/pubload.mjs --rate 1000 --seconds $((OUTAGE + 10)) --out "$T/acked.jsonl" 2>"$T/pubload.log" &
load=$!
sleep 5
kafka_ctl "broker-down 1"
echo "Kafka down at $(date +%T)"
sleep "$OUTAGE"
kafka_ctl "broker-up 1"
echo "Kafka up at $(date +%T)"
wait $load
cat "$T/pubload.log"
acked=$(wc -l <"$T/acked.jsonl")
((acked > OUTAGE * 800)) || fail "only $acked events acknowledged: the outage must not stop ingest"
node tests/node/verify-kafka.mjs --topic events.order --acked "$T/acked.jsonl" --wait 90 || fail "Kafka does not hold every acknowledged event exactly once"
