#!/usr/bin/env bash
# With ingest.qos2_resend_clients on, QoS 2 retransmissions after a
# reconnect keep the id and time the broker generated for the first copy
# (mosquitto-plugin/resend.c), from MQTT 5 and 3.1.1 clients, structured
# and binary, and after a session takeover; with room for two clients, the
# least recently active one is forgotten. $SYS/tributary/qos2_resent counts
# the retransmissions.
source "$(dirname "$0")/../lib/stack.sh"
stack_init
start_kafka --topic events.order:3
sed 's/"unmatched": "pass",/"unmatched": "pass", "qos2_resend_clients": 2,/' \
	"$ROOT/conf/dev/tributary.json.in" >"$T/tributary.json.in"
grep -q '"qos2_resend_clients": 2' "$T/tributary.json.in" || fail "could not set qos2_resend_clients"
start_mosquitto "$T/tributary.json.in"
cd "$ROOT" && RESEND_CLIENTS=2 node --test --test-concurrency=1 tests/node/ingest-resend.mjs ||
	fail "QoS 2 retransmission tests failed"
# Two in the protocol tests, two in the recently-active one, none
# forgotten, one in binary mode, one after a takeover.
resent() { mosquitto_sub -p "$MQTT_PORT" -C 1 -W 3 -t '$SYS/tributary/qos2_resent' 2>/dev/null; }
resent_is() { [[ "$(resent)" == "$1" ]]; }
wait_until 10 resent_is 6 || fail "\$SYS/tributary/qos2_resent is '$(resent)', expected 6"
pass "QoS 2 retransmissions keep their generated ids; qos2_resent = 6"
