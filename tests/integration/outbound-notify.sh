#!/usr/bin/env bash
# Outbound routes: records produced to Kafka with kcat (plain, CloudEvents
# binary and structured mode) reach MQTT subscribers (mqtt.js v5 and 3.1.1,
# mosquitto_sub -V 5) with the right topic, payload and properties.
source "$(dirname "$0")/../lib/stack.sh"
stack_init
start_kafka --topic notifications:3 --topic notifications.structured:2 --topic orders.out:2 \
	--topic status:1 --topic typed:1 --topic replies:2

cat >"$T/outbound.json.in" <<'JSON'
{
  "broker_id": "outbound-notify",
  "catalog": "@ROOT@/schemas/catalog.json",
  "clusters": { "main": { "bootstrap.servers": "@KAFKA_BOOTSTRAP@", "linger.ms": 1 } },
  "ingest": { "unmatched": "pass", "routes": [] },
  "outbound": {
    "start": "latest",
    "wake": "127.0.0.1:@MQTT_PORT@",
    "consumer": { "fetch.wait.max.ms": 5 },
    "routes": [
      { "kafka_topic": "notifications", "topic": "users/{key}/notifications", "qos": 1 },
      { "kafka_topic": "notifications.structured", "topic": "sandbox/users/{key}/events",
        "format": "structured", "qos": 1 },
      { "kafka_topic": "orders.out", "header": { "name": "channel", "value": "alerts" },
        "topic": "sandbox/alerts/{header.region}", "qos": 0 },
      { "kafka_topic": "orders.out", "type": "example.order.*",
        "topic": "sandbox/orders/{ce.subject}/{ce.type}", "qos": 1, "message_expiry": 60 },
      { "kafka_topic": "orders.out", "topic": "sandbox/orders/other/{partition}", "qos": 1 },
      { "kafka_topic": "status", "topic": "sandbox/status/{key}", "retain": true, "qos": 0 },
      { "kafka_topic": "typed", "type": "example.notification", "topic": "users/{key}/notifications" },
      { "kafka_topic": "replies", "reply": true, "allow": ["clients/+/replies"] }
    ]
  },
  "stats": { "sys_interval": 1 }
}
JSON
start_mosquitto "$T/outbound.json.in"

# Records produced before the group has its partitions would be skipped
# (start: latest), as in production: wait for the assignment.
wait_assigned
grep -q 'New client connected .* as tributary-wake-outbound-notify' "$T/mosquitto.log" || fail "the wake connection did not connect"

# mosquitto_sub, MQTT v5: topic, payload, Content Type (%C) and user
# properties (%P) as printed by Mosquitto's own client.
timeout 20 mosquitto_sub -p "$MQTT_PORT" -V 5 -q 1 -t 'users/+/notifications' -C 1 \
	-F '%t|%p|%C|%P' >"$T/sub.out" 2>"$T/sub.err" &
sub=$!
sleep 0.5
printf 'u-sub\x1f{"message":"hello"}' | kcat -q -b "$KAFKA_BOOTSTRAP" -P -t notifications -K '\x1f' -D '\x1e' \
	-H ce_specversion=1.0 -H ce_type=example.notification -H ce_source=urn:test -H ce_id=n-1 \
	-H content-type=application/json || fail "kcat produce"
wait "$sub" || { cat "$T/sub.err" >&2; fail "mosquitto_sub got nothing"; }
out=$(cat "$T/sub.out")
echo "mosquitto_sub: $out"
[[ "$out" == 'users/u-sub/notifications|{"message":"hello"}|application/json|'* ]] ||
	fail "topic/payload/content type: $out"
for want in 'specversion:1.0' 'type:example.notification' \
	'source:urn:test' 'id:n-1'; do
	[[ "$out" == *"$want"* ]] || fail "mosquitto_sub: property $want missing in: $out"
done
[[ "$out" != *ce_* ]] || fail "ce_ prefix must be dropped: $out"
pass "mosquitto_sub -V 5 receives a binary-mode CloudEvent with its properties"

cd "$ROOT" && node --test --test-concurrency=1 tests/node/outbound-notify.mjs || fail "outbound notify tests failed"
grep -q 'not published (no_route)\|not published (topic_invalid)' "$T/mosquitto.log" || fail "dropped records are not logged"
grep -q 'outbound: record notifications \[[0-9]\] at offset [0-9]* is not a valid CloudEvent (.*control character.*), published as a plain record' \
	"$T/mosquitto.log" || fail "a binary record that is not a valid event is not logged"
