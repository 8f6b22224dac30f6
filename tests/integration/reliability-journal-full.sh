#!/usr/bin/env bash
# Journal full (Kafka down, small journal): clean refusals (0x87 and an error
# event "store_full"), a warning in the log, nothing lost; when Kafka comes
# back the journal drains and events are accepted again.
# Apache Kafka of its own, stopped for the outage and restarted from its log
# dir.
source "$(dirname "$0")/../lib/stack.sh"
stack_init
start_real_kafka --topic events.order:3
export JOURNAL_MAX_BYTES=1048576
start_mosquitto "$ROOT/tests/integration/reliability-journal.json.in"
cd "$ROOT"
kafka_stop
node tests/node/pubload.mjs --rate 400 --seconds 5 --out "$T/acked1.jsonl" 2>"$T/pubload1.log"
cat "$T/pubload1.log"
grep -q 'refused=0 ' "$T/pubload1.log" && fail "a full journal must refuse events"
grep -q '"store_full":' "$T/pubload1.log" || fail "no store_full error events"
grep -q 'journal: refusing new events' "$T/mosquitto.log" || fail "no warning in the broker log"
kafka_restart
sleep 3
node tests/node/pubload.mjs --rate 200 --seconds 2 --out "$T/acked2.jsonl" 2>"$T/pubload2.log"
cat "$T/pubload2.log"
grep -q 'refused=0 ' "$T/pubload2.log" || fail "events are still refused after Kafka came back"
node tests/node/verify-kafka.mjs --topic events.order --acked "$T/acked1.jsonl,$T/acked2.jsonl" --wait 60 || fail "acknowledged events missing"
