#!/usr/bin/env bash
# `make run` (tools/run-dev.sh) keeps what a store of record keeps: an event
# accepted in one run is still in Kafka after the stack is stopped and
# started again, from the same data directory, and the start-up banner says
# where the data lives. Run on the test ports, with its data under $T.
source "$(dirname "$0")/../lib/stack.sh"
stack_init
# run-dev starts Debian's mosquitto without the sanitizer runtime preloaded,
# which a SAN plugin needs; the normal build's pass covers it.
stack_is_san && skip "make run is checked in the normal build"
command -v java >/dev/null || skip "no Java: make run needs Apache Kafka (KAFKA=mock has no data to keep)"

export KAFKA_DATA="$T/var/kafka" JOURNAL_DIR="$T/var/journal" RUN="$T/run"
run=0
# dev_up: tools/run-dev.sh in the background, until its banner is out.
dev_up() {
	run=$((run + 1))
	"$ROOT/tools/run-dev.sh" "$BUILD" >"$T/run$run.out" 2>&1 &
	DEV_PID=$!
	STACK_PIDS+=($DEV_PID)
	wait_until 120 eval "grep -q 'dev stack is up' '$T/run$run.out' || ! kill -0 $DEV_PID 2>/dev/null"
	grep -q 'dev stack is up' "$T/run$run.out" || { cat "$T/run$run.out" >&2; fail "make run did not come up (run $run)"; }
}
dev_down() {
	kill -TERM "$DEV_PID"
	wait_until 60 eval "! kill -0 $DEV_PID 2>/dev/null" || fail "make run did not stop on TERM"
}
# publish ID: one valid example.order.placed, QoS 1.
publish() {
	local ev
	ev=$(printf '{"specversion":"1.0","id":"%s","source":"urn:dev-run","type":"example.order.placed","datacontenttype":"application/json","data":{"orderId":"%s","customerId":"c-1","lines":[{"sku":"SKU-1","qty":2}],"total":19.99,"currency":"EUR"}}' "$1" "$1")
	mosquitto_pub -p "$MQTT_PORT" -V 5 -q 1 -i "dev-run-$1" -t "events/order/$1" -m "$ev" ||
		fail "publish $1 failed"
}
has_record() { # KEY: the record is in events.order
	kafka_read events.order 100 10 '%k\n' 2>/dev/null | grep -qx "$1"
}

dev_up
grep -q "data in $KAFKA_DATA" "$T/run1.out" || { cat "$T/run1.out" >&2; fail "the banner does not say where Kafka's data lives"; }
grep -q "journal *$JOURNAL_DIR" "$T/run1.out" || { cat "$T/run1.out" >&2; fail "the banner does not say where the journal lives"; }
grep -q "Schema Registry  http://127.0.0.1:$REGISTRY_PORT" "$T/run1.out" || { cat "$T/run1.out" >&2; fail "the banner does not name the Schema Registry"; }
curl -sf "$REGISTRY_URL/subjects/example.order.placed/versions/latest" | grep -q '"version":1' ||
	{ cat "$T/run/registry.log" >&2; fail "make run's Schema Registry does not have the catalog's schemas"; }
first=$(cat /proc/sys/kernel/random/uuid)
publish "$first"
wait_until 20 has_record "$first" || fail "the event of the first run is not in Kafka"
dev_down
pass "make run: an event accepted, in Kafka; the banner names $KAFKA_DATA; the registry has the catalog"

dev_up
second=$(cat /proc/sys/kernel/random/uuid)
publish "$second"
wait_until 20 has_record "$second" || fail "the event of the second run is not in Kafka"
has_record "$first" || fail "the first run's event is gone after a restart of make run"
curl -sf "$REGISTRY_URL/subjects/example.order.placed/versions" | grep -qx '\[1\]' ||
	fail "the Schema Registry's state changed across a restart of make run"
dev_down
pass "make run again: the first run's event is still in Kafka, the registry's schemas too"
