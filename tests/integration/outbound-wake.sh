#!/usr/bin/env bash
# outbound.wake "auto" (the default): with no address configured, the plugin
# finds the broker's own listeners, passes over one that does not speak
# plain MQTT (a TLS listener, opened first here) and wakes the loop
# through the MQTT one; a record then reaches a subscriber through wakes,
# not the idle tick. And "wake": false turns it off.
source "$(dirname "$0")/../lib/stack.sh"
stack_init
start_kafka --topic notifications:1
TLS_PORT=$((MQTT_PORT + 7))

config() { # wake-line broker_id
	cat <<JSON
{
  "broker_id": "$2",
  "catalog": "@ROOT@/schemas/catalog.json",
  "clusters": { "main": { "bootstrap.servers": "@KAFKA_BOOTSTRAP@" } },
  "ingest": { "unmatched": "pass", "routes": [] },
  "outbound": {
    "start": "latest", $1
    "consumer": { "fetch.wait.max.ms": 5 },
    "routes": [ { "kafka_topic": "notifications", "topic": "users/{key}/notifications", "qos": 1 } ]
  },
  "stats": { "sys_interval": 1 }
}
JSON
}
# The TLS listener comes first in the file, so first among the broker's
# sockets: auto-detection must try it (a plain CONNECT fails the handshake)
# and move on. (Not a websockets listener: Mosquitto 2.0.11 leaks 16 bytes
# in mosq_websockets_init, which the sanitizer and Valgrind runs report.)
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
	-keyout "$T/key.pem" -out "$T/cert.pem" >/dev/null 2>&1 || fail "openssl: no test certificate"
chmod 644 "$T/key.pem"
sed "s|^listener @MQTT_PORT@ 127.0.0.1|listener $TLS_PORT 127.0.0.1\ncertfile $T/cert.pem\nkeyfile $T/key.pem\n&|" \
	"$ROOT/conf/dev/mosquitto.conf.in" >"$T/mosquitto.conf.in"
grep -q "^listener $TLS_PORT" "$T/mosquitto.conf.in" || fail "test setup: no TLS listener line"
export MOSQUITTO_CONF_TEMPLATE="$T/mosquitto.conf.in"

config "" outbound-wake-auto >"$T/auto.json.in"
start_mosquitto "$T/auto.json.in"
wait_assigned
grep -q 'outbound: .* wake auto' "$T/mosquitto.log" || fail "wake is not auto by default"
wait_log "$T/mosquitto.log" "outbound.wake: connected to 127.0.0.1:$MQTT_PORT" ||
	{ cat "$T/mosquitto.log" >&2; fail "auto wake did not connect to the MQTT listener"; }
grep -q "outbound.wake: passed over .*:$TLS_PORT (" "$T/mosquitto.log" ||
	{ cat "$T/mosquitto.log" >&2; fail "the TLS listener was not tried and passed over"; }
pass "auto wake: passed over the TLS listener, connected to 127.0.0.1:$MQTT_PORT"

wakes() {
	mosquitto_sub -p "$MQTT_PORT" -t '$SYS/tributary/outbound/wakes' -C 1 -W 5 2>/dev/null
}
before=$(wakes)
timeout 20 mosquitto_sub -p "$MQTT_PORT" -V 5 -q 1 -t 'users/+/notifications' -C 3 \
	-F '%t|%p' >"$T/sub.out" 2>"$T/sub.err" &
sub=$!
sleep 0.5
for i in 1 2 3; do
	printf 'u-%s\x1f{"n":%s}' "$i" "$i" | kcat -q -b "$KAFKA_BOOTSTRAP" -P -t notifications -K '\x1f' ||
		fail "kcat produce"
	sleep 0.3
done
wait "$sub" || { cat "$T/sub.err" >&2; fail "mosquitto_sub did not get the 3 records"; }
[[ "$(cat "$T/sub.out")" == $'users/u-1/notifications|{"n":1}\nusers/u-2/notifications|{"n":2}\nusers/u-3/notifications|{"n":3}' ]] ||
	fail "records: $(cat "$T/sub.out")"
sleep 1.2 # the next $SYS round
after=$(wakes)
[[ "$before" =~ ^[0-9]+$ && "$after" =~ ^[0-9]+$ ]] || fail "no wakes counter ($before, $after)"
((after >= before + 3)) || fail "records were not delivered through wakes ($before -> $after)"
pass "3 records delivered, $((after - before)) wakes"
stop_mosquitto

: >"$T/mosquitto.log"
# (another group: the mock keeps the first one's member until its session
# times out)
config '"wake": false,' outbound-wake-off >"$T/off.json.in"
start_mosquitto "$T/off.json.in"
wait_assigned
grep -q 'outbound: .* wake off' "$T/mosquitto.log" || fail "wake false is not off"
! grep -q 'outbound.wake:' "$T/mosquitto.log" || fail "wake false still opened a wake connection"
pass "wake false: off"
