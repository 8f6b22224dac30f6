#!/usr/bin/env bash
# librdkafka's queue full (Kafka down, no journal, a 200-event queue): the
# events beyond it are refused (0x87 and an error event kafka_unavailable),
# never accepted and lost. The main thread hands events to the cluster's
# producer thread (produce.c), which meets the full queue after the
# PUBACK: the refusal must come before. When Kafka comes back, every
# acknowledged event reaches it, and new events are accepted again.
# Apache Kafka of its own, stopped for the outage and restarted from its log
# dir.
source "$(dirname "$0")/../lib/stack.sh"
stack_init
start_real_kafka --topic events.order:3
start_mosquitto "$ROOT/tests/integration/reliability-queue-full.json.in"
cd "$ROOT"
kafka_stop
node tests/node/pubload.mjs --rate 400 --seconds 3 --out "$T/acked1.jsonl" 2>"$T/pubload1.log"
cat "$T/pubload1.log"
grep -q 'refused=0 ' "$T/pubload1.log" && fail "a full librdkafka queue must refuse events"
grep -q '"kafka_unavailable":' "$T/pubload1.log" || fail "no kafka_unavailable error events"
acked=$(wc -l <"$T/acked1.jsonl")
# The queue, and the few events that reached the ring before the producer
# thread met the full queue (2.5 ms apart at this rate).
((acked >= 200 && acked <= 300)) || fail "$acked events acknowledged with room for 200 in librdkafka's queue"
kafka_restart
sleep 3
node tests/node/pubload.mjs --rate 200 --seconds 2 --out "$T/acked2.jsonl" 2>"$T/pubload2.log"
cat "$T/pubload2.log"
grep -q 'refused=0 ' "$T/pubload2.log" || fail "events are still refused after Kafka came back"
node tests/node/verify-kafka.mjs --topic events.order --acked "$T/acked1.jsonl,$T/acked2.jsonl" --wait 60 ||
	fail "acknowledged events missing"
pass "a full queue refuses, and every acknowledged event reaches Kafka"
