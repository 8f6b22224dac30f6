#!/usr/bin/env bash
# Deliveries that time out after PUBACK (a cluster with message.timeout.ms,
# Kafka down for longer than that) are produced again from the journal once
# Kafka is back, without a restart: every acknowledged event in Kafka, in
# per-key order, counted in $SYS/tributary/retried.
# Apache Kafka of its own, stopped cleanly and started again from its log
# dir. Duplicates are allowed around the moment Kafka goes down: a Produce
# request the broker wrote as it stopped, whose answer the producer never
# got, times out and is produced again from the journal as a new record
# (the idempotent sequence of the first one is not reused).
source "$(dirname "$0")/../lib/stack.sh"
source "$(dirname "$0")/journal-retry-common.inc"
stack_init
start_real_kafka --topic events.order:3
start_mosquitto "$ROOT/tests/integration/reliability-journal-retry-timeout.json.in"
cd "$ROOT"
node tests/node/pubload.mjs --rate 300 --seconds 9 --out "$T/acked.jsonl" 2>"$T/pubload.log" &
load=$!
sleep 2
down_from=$(date +%s%3N)
kafka_stop
down_to=$(date +%s%3N)
sleep 2
kafka_restart
wait $load
cat "$T/pubload.log"
grep -q 'refused=0 ' "$T/pubload.log" || fail "events were refused"
grep -q 'delivery to events.order failed: Local: Message timed out' "$T/mosquitto.log" ||
	{ cat "$T/mosquitto.log" >&2; fail "no delivery timed out"; }
node tests/node/verify-kafka.mjs --topic events.order --acked "$T/acked.jsonl" --wait 30 \
	--dup-window "$((down_from - 1000)),$down_to" ||
	fail "acknowledged events missing from Kafka while the broker runs"
retry_check_counters
pass "timed-out events reached Kafka without a restart ($retried produced again)"
