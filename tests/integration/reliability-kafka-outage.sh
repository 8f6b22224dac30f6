#!/usr/bin/env bash
# Kafka down for 30 s while clients publish 1,000 msg/s at QoS 1: afterwards
# Kafka holds every acknowledged event exactly once, in per-key order (but
# for the mock's copies of a request in flight as it went down: see below).
# (12 partitions: the mock cluster keeps only the last few MB of each.)
# On librdkafka's mock, for its broker-down/broker-up: the same outage on
# Apache Kafka, with no duplicate allowed, is reliability-kafka-hung.sh and
# reliability-kafka-crash.sh.
source "$(dirname "$0")/../lib/stack.sh"
stack_init
start_mock_kafka --topic events.order:12
start_mosquitto
OUTAGE=${OUTAGE_SECONDS:-30}
cd "$ROOT"
node tests/node/pubload.mjs --rate 1000 --seconds $((OUTAGE + 10)) --out "$T/acked.jsonl" 2>"$T/pubload.log" &
load=$!
sleep 5
down_from=$(date +%s%3N)
kafka_ctl "broker-down 1"
down_to=$(date +%s%3N)
echo "Kafka down at $(date +%T)"
sleep "$OUTAGE"
kafka_ctl "broker-up 1"
echo "Kafka up at $(date +%T)"
wait $load
cat "$T/pubload.log"
acked=$(wc -l <"$T/acked.jsonl")
((acked > OUTAGE * 800)) || fail "only $acked events acknowledged: the outage must not stop ingest"
# The one exception: events whose produce request was in flight when the
# mock broker went down (see verify-kafka.mjs); a second of slack before.
node tests/node/verify-kafka.mjs --topic events.order --acked "$T/acked.jsonl" --wait 90 \
	--dup-window "$((down_from - 1000)),$down_to" || fail "Kafka does not hold every acknowledged event exactly once"
