#!/usr/bin/env bash
# Deliveries that fail for good after PUBACK (Kafka answers Produce with a
# non-retriable error) are produced again from the journal while the broker
# runs, with backoff: without a restart Kafka ends up holding every
# acknowledged event, in per-key order, and $SYS/tributary/retried counts the
# retries.
#
# This test uses librdkafka's mock cluster (tributary-devkafka) deliberately:
# its fault injection answers Produce requests with a chosen error code
# (87 INVALID_RECORD, which librdkafka treats as permanent), which a real
# Apache Kafka cannot be made to do on demand.
source "$(dirname "$0")/../lib/stack.sh"
source "$(dirname "$0")/journal-retry-common.inc"
stack_init
start_mock_kafka --topic events.order:3
start_mosquitto "$ROOT/tests/integration/reliability-journal-retry.json.in"
cd "$ROOT"
# Responses 50 ms late, one request in flight, 6 keys: each failed request
# has later events of its keys queued behind it, which must not overtake it.
kafka_ctl "broker-rtt 1 50"
node tests/node/pubload.mjs --rate 300 --seconds 8 --keys 6 --out "$T/acked.jsonl" 2>"$T/pubload.log" &
load=$!
# A run of 29 consecutive failed Produce requests (each fails its batch for
# good, as do the retries that meet the rest of the run), then single
# failures, after which the events queued behind the failed request would
# go through first if nothing took them back.
sleep 1
kafka_ctl "request-errors 0 87 29"
for single in $(seq 1 8); do
	sleep 0.4
	kafka_ctl "request-errors 0 87 1"
done
wait $load
cat "$T/pubload.log"
grep -q 'refused=0 ' "$T/pubload.log" || fail "events were refused"
grep -q 'delivery to events.order failed' "$T/mosquitto.log" ||
	{ cat "$T/mosquitto.log" >&2; fail "the injected errors failed no delivery"; }
node tests/node/verify-kafka.mjs --topic events.order --acked "$T/acked.jsonl" --wait 30 ||
	fail "acknowledged events missing from Kafka while the broker runs"
retry_check_counters
pass "every acknowledged event reached Kafka without a restart ($retried produced again)"
