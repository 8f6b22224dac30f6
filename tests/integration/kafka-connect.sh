#!/usr/bin/env bash
# Kafka Connect reads our topics (docs/kafka-connect.md): events published
# with mqtt.js through Mosquitto and the plugin, then a standalone Kafka
# Connect worker (build/bin/tributary-connect, Kafka 4.1.1) with
# FileStreamSink connectors: events.order (binary mode) through JsonConverter
# (schemas.enable=false) and through StringConverter, audit.order (structured
# mode) through JsonConverter. The files must hold exactly the accepted
# events (tests/node/kafka-connect.mjs check): none missing, none extra,
# none of the refused ones, each key's events in publish order.
source "$(dirname "$0")/../lib/stack.sh"
command -v java >/dev/null || skip "no Java: Kafka Connect cannot run (tools/install-deps.sh installs it)"
stack_init
CONNECT_PORT=${CONNECT_PORT:-$((TEST_PORT_BASE + 8083))}
port_free "$CONNECT_PORT" || fail "port $CONNECT_PORT is in use (set TEST_PORT_BASE to run tests side by side)"
topics=(--topic events.order:3 --topic audit.order:1)
# Connect needs Apache Kafka: the run's, or (KAFKA=mock) one of its own.
if [[ -n "${TEST_KAFKA_BOOTSTRAP:-}" ]]; then start_kafka "${topics[@]}"; else start_real_kafka "${topics[@]}"; fi
start_mosquitto

cd "$ROOT" && node tests/node/kafka-connect.mjs publish "$T/expected.json" || fail "publishing the events failed"
n_order=$(node -p "JSON.parse(require('fs').readFileSync('$T/expected.json')).binary.length")
n_audit=$(node -p "JSON.parse(require('fs').readFileSync('$T/expected.json')).structured.length")
# The PUBACK comes once the event is in the journal: wait for Kafka's ack.
count_is() { (($(kafka_count "$1") == $2)); }
wait_until 20 count_is events.order "$n_order" || fail "events.order holds $(kafka_count events.order) records, not $n_order"
wait_until 20 count_is audit.order "$n_audit" || fail "audit.order holds $(kafka_count audit.order) records, not $n_audit"

# sink NAME TOPIC [PROPERTY...]: a FileStreamSink connector writing $T/NAME.txt.
sink() {
	local name=$1 topic=$2
	shift 2
	printf '%s\n' "name=$name" connector.class=org.apache.kafka.connect.file.FileStreamSinkConnector \
		tasks.max=1 "topics=$topic" "file=$T/$name.txt" "$@" >"$T/$name.properties"
}
sink order-json events.order # the worker's converters: JsonConverter, schemas.enable=false
sink order-raw events.order value.converter=org.apache.kafka.connect.storage.StringConverter
sink audit-json audit.order
start=$SECONDS
"$BUILD/bin/tributary-connect" --dir "$T/connect" --bootstrap "$KAFKA_BOOTSTRAP" --rest-port "$CONNECT_PORT" \
	"$T/order-json.properties" "$T/order-raw.properties" "$T/audit-json.properties" >"$T/connect.out" 2>&1 &
CONNECT_PID=$!
STACK_PIDS+=($CONNECT_PID)
connect_up() { grep -q 'tributary-connect: ready' "$T/connect.out" || ! kill -0 "$CONNECT_PID" 2>/dev/null; }
wait_until 120 connect_up && grep -q 'tributary-connect: ready' "$T/connect.out" ||
	{ cat "$T/connect.out" >&2; fail "the Kafka Connect worker did not start"; }
grep 'tributary-connect: ready' "$T/connect.out"
# The REST API (which can add connectors) answers on loopback only.
for ip in $(hostname -I 2>/dev/null); do
	! (exec 3<>"/dev/tcp/$ip/$CONNECT_PORT") 2>/dev/null || fail "Connect's REST API answers on $ip"
done

# A sink's file is complete once its committed offsets reach the end of
# its topic (FileStreamSink flushes the file before each commit): then
# nothing is left for it to write, and a missing or extra line is final.
committed() { # connector: the sum of its committed offsets (REST API)
	curl -sf --max-time 2 "http://127.0.0.1:$CONNECT_PORT/connectors/$1/offsets" |
		grep -o '"kafka_offset":[0-9]*' | awk -F: '{ s += $2 } END { print s + 0 }'
}
# A task that fails on a record (a converter's DataException) stops there:
# report it at once, with its trace, rather than wait for offsets.
task_failed() {
	curl -sf --max-time 2 "http://127.0.0.1:$CONNECT_PORT/connectors/$1/status" | grep -q '"state":"FAILED"'
}
committed_or_failed() { (($(committed "$1") == $2)) || task_failed "$1"; }
# Every record in the topics, not only those the test expects: an extra
# one must reach the files and fail the check.
n_order=$(kafka_count events.order) n_audit=$(kafka_count audit.order)
for c in order-json:$n_order order-raw:$n_order audit-json:$n_audit; do
	name=${c%%:*} n=${c#*:}
	wait_until 60 committed_or_failed "$name" "$n" && ! task_failed "$name" || {
		curl -s "http://127.0.0.1:$CONNECT_PORT/connectors/$name/status" >&2
		tail -30 "$T/connect/connect.log" >&2
		fail "connector $name committed $(committed "$name") of $n records"
	}
done
echo "the sinks have read every record $((SECONDS - start))s after the worker's start"

node tests/node/kafka-connect.mjs check "$T/expected.json" "$T" || fail "the sink files differ from the accepted events"
! grep -E ' (ERROR|FATAL) ' "$T/connect/connect.log" || fail "the worker logged errors"
pass "Kafka Connect's FileStreamSink wrote exactly the accepted events"
