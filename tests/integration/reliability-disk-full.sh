#!/usr/bin/env bash
# The journal's disk fills up (a 1 MB tmpfs) during a Kafka outage: clean
# refusals, nothing corrupted, recovery when Kafka drains the journal.
# Apache Kafka of its own, stopped for the outage and restarted from its log
# dir.
source "$(dirname "$0")/../lib/stack.sh"
stack_init
export JOURNAL_DIR="$T/journal"
mkdir -p "$JOURNAL_DIR"
mount -t tmpfs -o size=1m tmpfs "$JOURNAL_DIR" 2>/dev/null || skip "cannot mount a tmpfs here (needs root)"
STACK_AFTER_CLEANUP='umount "$JOURNAL_DIR" 2>/dev/null'
# mosquitto drops to its user; the tmpfs root must be its own
start_real_kafka --topic events.order:3
export JOURNAL_MAX_BYTES=268435456
start_mosquitto "$ROOT/tests/integration/reliability-journal.json.in"
cd "$ROOT"
kafka_stop
node tests/node/pubload.mjs --rate 400 --seconds 6 --out "$T/acked1.jsonl" 2>"$T/pubload1.log"
cat "$T/pubload1.log"
grep -q 'refused=0 ' "$T/pubload1.log" && fail "a full disk must refuse events"
grep -q '"store_full":' "$T/pubload1.log" || fail "no store_full error events"
"$BUILD/bin/tributary-journal-tool" stats "$JOURNAL_DIR" || true
kafka_restart
# Recovery is the journal draining into Kafka: when librdkafka reconnects
# depends on its reconnect backoff (doubling during the outage, up to the
# plugin's reconnect.backoff.max.ms of 1 s), so wait for the drain itself
# rather than a fixed time.
journal_empty() { "$BUILD/bin/tributary-journal-tool" stats "$JOURNAL_DIR" 2>/dev/null | grep -qx 'depth=0'; }
t0=$(date +%s%N)
wait_until 30 journal_empty || fail "the journal did not drain after Kafka came back"
echo "journal drained $(( ($(date +%s%N) - t0) / 1000000 )) ms after Kafka came back"
node tests/node/pubload.mjs --rate 200 --seconds 2 --out "$T/acked2.jsonl" 2>"$T/pubload2.log"
cat "$T/pubload2.log"
grep -q 'refused=0 ' "$T/pubload2.log" || fail "events are still refused after space returned"
node tests/node/verify-kafka.mjs --topic events.order --acked "$T/acked1.jsonl,$T/acked2.jsonl" --wait 60 || fail "acknowledged events missing"
