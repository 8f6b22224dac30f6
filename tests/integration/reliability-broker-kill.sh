#!/usr/bin/env bash
# Mosquitto killed with SIGKILL during a Kafka outage, then restarted: every
# acknowledged event reaches Kafka from the journal (duplicates allowed,
# counted and reported).
# Apache Kafka of its own, stopped for the outage and restarted from its log
# dir.
source "$(dirname "$0")/../lib/stack.sh"
stack_init
start_real_kafka --topic events.order:3
start_mosquitto
cd "$ROOT"
kafka_stop
node tests/node/pubload.mjs --rate 500 --seconds 6 --out "$T/acked1.jsonl" 2>"$T/pubload1.log"
cat "$T/pubload1.log"
[[ $(wc -l <"$T/acked1.jsonl") -gt 1000 ]] || fail "events were not acknowledged during the outage"
stop_mosquitto KILL
echo "mosquitto killed with $(wc -l <"$T/acked1.jsonl") acknowledged events not yet in Kafka"
kafka_restart
start_mosquitto
grep -q 'unconfirmed events to produce again' "$T/mosquitto.log" || fail "journal replay not logged"
node tests/node/pubload.mjs --rate 200 --seconds 2 --out "$T/acked2.jsonl" 2>"$T/pubload2.log"
node tests/node/verify-kafka.mjs --topic events.order --acked "$T/acked1.jsonl,$T/acked2.jsonl" --allow-duplicates --wait 60 \
	|| fail "acknowledged events are missing after the crash"
