#!/usr/bin/env bash
# Deliveries that time out after PUBACK (a cluster with message.timeout.ms,
# Kafka down for longer than that) are produced again from the journal once
# Kafka is back, without a restart: every acknowledged event in Kafka, in
# per-key order, counted in $SYS/tributary/retried.
# (Duplicates are allowed around the moment Kafka goes down: the mock cluster
# drops the responses it has queued, see reliability-kafka-outage.sh.)
source "$(dirname "$0")/../lib/stack.sh"
source "$(dirname "$0")/journal-retry-common.inc"
stack_init
start_mock_kafka --topic events.order:3
start_mosquitto "$ROOT/tests/integration/reliability-journal-retry-timeout.json.in"
cd "$ROOT"
node tests/node/pubload.mjs --rate 300 --seconds 9 --out "$T/acked.jsonl" 2>"$T/pubload.log" &
load=$!
sleep 2
down_from=$(date +%s%3N)
kafka_ctl "broker-down 1"
down_to=$(date +%s%3N)
sleep 4
kafka_ctl "broker-up 1"
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
