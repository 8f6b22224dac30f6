#!/usr/bin/env bash
# Ingest path: MQTT 3.1.1/5 clients -> Mosquitto + plugin -> dev Kafka.
source "$(dirname "$0")/../lib/stack.sh"
stack_init
start_kafka --topic events.order:3 --topic audit.order:1
start_mosquitto
cd "$ROOT" && node --test --test-concurrency=1 tests/node/ingest.mjs || fail "ingest tests failed"
grep -q 'tributary: ready' "$T/mosquitto.log" || fail "plugin did not log ready"
