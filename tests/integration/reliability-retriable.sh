#!/usr/bin/env bash
# Kafka answering Produce with retriable errors and changing partition
# leaders: retried, nothing lost, no duplicates (idempotent producer).
# On librdkafka's mock: only its fault injection answers Produce with a
# chosen error code and moves a partition's leader between two brokers.
source "$(dirname "$0")/../lib/stack.sh"
stack_init
start_mock_kafka --brokers 2 --topic events.order:3
start_mosquitto "$ROOT/tests/integration/reliability-retriable.json.in"
cd "$ROOT"
node tests/node/pubload.mjs --rate 500 --seconds 8 --out "$T/acked.jsonl" 2>"$T/pubload.log" &
load=$!
# Retriable errors on Produce (ApiKey 0): 19 NOT_ENOUGH_REPLICAS,
# 20 NOT_ENOUGH_REPLICAS_AFTER_APPEND, 7 REQUEST_TIMED_OUT, 5
# LEADER_NOT_AVAILABLE, 6 NOT_LEADER_FOR_PARTITION; and real leader changes
# between the two brokers.
# See the config's comment for why it has one request in flight.
leader=1
errors=("19 20" "20 10" "7 5" "5 5" "6 10")
for round in 1 2 3; do
	sleep 1.2
	for e in "${errors[@]}"; do
		kafka_ctl "request-errors 0 $e"
		sleep 0.2
	done
	leader=$((3 - leader))
	for p in 0 1 2; do kafka_ctl "partition-leader events.order $p $leader"; done
done
wait $load
cat "$T/pubload.log"
node tests/node/verify-kafka.mjs --topic events.order --acked "$T/acked.jsonl" --wait 60 || fail "events lost or duplicated"
