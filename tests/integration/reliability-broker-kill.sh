#!/usr/bin/env bash
# Mosquitto killed with SIGKILL during a Kafka outage, then restarted: every
# acknowledged event reaches Kafka from the journal (duplicates allowed,
# counted and reported).
# On librdkafka's mock: its broker-down/broker-up make the Kafka outage
# (Apache Kafka stopped and restarted, as in reliability-kafka-crash.sh,
# would do too: not moved yet).
source "$(dirname "$0")/../lib/stack.sh"
stack_init
start_mock_kafka --topic events.order:3
start_mosquitto
cd "$ROOT"
kafka_ctl "broker-down 1"
node tests/node/pubload.mjs --rate 500 --seconds 6 --out "$T/acked1.jsonl" 2>"$T/pubload1.log"
cat "$T/pubload1.log"
[[ $(wc -l <"$T/acked1.jsonl") -gt 1000 ]] || fail "events were not acknowledged during the outage"
stop_mosquitto KILL
echo "mosquitto killed with $(wc -l <"$T/acked1.jsonl") acknowledged events not yet in Kafka"
kafka_ctl "broker-up 1"
start_mosquitto
grep -q 'unconfirmed events to produce again' "$T/mosquitto.log" || fail "journal replay not logged"
node tests/node/pubload.mjs --rate 200 --seconds 2 --out "$T/acked2.jsonl" 2>"$T/pubload2.log"
node tests/node/verify-kafka.mjs --topic events.order --acked "$T/acked1.jsonl,$T/acked2.jsonl" --allow-duplicates --wait 60 \
	|| fail "acknowledged events are missing after the crash"
