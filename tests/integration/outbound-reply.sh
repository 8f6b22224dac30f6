#!/usr/bin/env bash
# Request/response over MQTT v5 through Kafka, with the dev configuration
# and the example responder (tools/responder) running.
source "$(dirname "$0")/../lib/stack.sh"
stack_init
start_kafka --topic events.order:3 --topic audit.order:1 --topic notifications:3 --topic replies:3
start_mosquitto

"$BUILD/bin/tributary-responder" --help | grep -q -- '--brokers' || fail "responder --help"
env $(stack_san_env) "$BUILD/bin/tributary-responder" --brokers "$KAFKA_BOOTSTRAP" \
	-X fetch.wait.max.ms=5 --verbose 2>"$T/responder.log" &
RESPONDER_PID=$!
STACK_PIDS+=($RESPONDER_PID)

# Both consumer groups start at "latest": wait until they have partitions.
wait_assigned
wait_log "$T/responder.log" 'responder: assigned' 20 || { cat "$T/responder.log" >&2; fail "responder not assigned"; }

cd "$ROOT" && node --test --test-concurrency=1 tests/node/outbound-reply.mjs || { tail -20 "$T/responder.log"; fail "request/response tests failed"; }

grep -q 'not answered: no mqtt_response_topic header' "$T/responder.log" ||
	fail "the responder did not report the request without a response topic"

# Clean shutdown: SIGTERM flushes, commits and reports.
kill -TERM "$RESPONDER_PID"
for _ in $(seq 1 100); do kill -0 "$RESPONDER_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$RESPONDER_PID" 2>/dev/null && fail "responder did not stop on SIGTERM"
wait "$RESPONDER_PID" || fail "responder exited with an error"
grep -E 'responder: [0-9]+ requests, [0-9]+ answered' "$T/responder.log" || fail "no shutdown summary"
answered=$(sed -n 's/.*requests, \([0-9]*\) answered.*/\1/p' "$T/responder.log")
((answered >= 12)) || fail "responder answered $answered requests, expected at least 12"
pass "request/response"
