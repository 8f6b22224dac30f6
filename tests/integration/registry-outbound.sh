#!/usr/bin/env bash
# Records in a Schema Registry's wire format back to JSON (docs/registry.md):
# written by Confluent's own serializers (@confluentinc/schemaregistry, JSON
# Schema and Avro) and by the plugin (value_format confluent), read by MQTT
# subscribers through outbound routes that name the registry, compared with
# the original JSON (tests/node/registry-outbound.mjs). Also: an undecodable
# record dropped, counted and logged while the records around it arrive;
# records whose schema cannot be fetched (the registry down) held in order
# until it is back.
source "$(dirname "$0")/../lib/stack.sh"
[[ -d "$ROOT/node_modules/@confluentinc/schemaregistry" ]] ||
	skip "@confluentinc/schemaregistry is not installed (npm ci)"
stack_init
start_kafka --topic rego.json:1 --topic rego.avro:2 --topic rego.plugin:1
start_registry
export OUT_DIR="$T"
phase() {
	node "$ROOT/tests/node/registry-outbound.mjs" "$1" ||
		{ tail -30 "$T/mosquitto.log" >&2; fail "phase $1"; }
}

cat >"$T/rego.json.in" <<'JSON'
{
  "broker_id": "registry-outbound",
  "catalog": "@ROOT@/schemas/catalog.json",
  "clusters": { "main": { "bootstrap.servers": "@KAFKA_BOOTSTRAP@", "linger.ms": 1 } },
  "registries": { "sr": { "url": "@REGISTRY_URL@", "timeout_ms": 1000, "start_timeout_ms": 3000 } },
  "ingest": { "unmatched": "pass", "routes": [
    { "match": "events/rego/{id}", "topic": "rego.plugin", "key": "{id}", "registry": "sr",
      "value_format": "confluent" } ] },
  "outbound": {
    "start": "latest",
    "wake": "127.0.0.1:@MQTT_PORT@",
    "consumer": { "fetch.wait.max.ms": 5 },
    "routes": [
      { "kafka_topic": "rego.json", "topic": "sandbox/rego/json/{key}", "registry": "sr" },
      { "kafka_topic": "rego.avro", "topic": "sandbox/rego/avro/{key}", "registry": "sr" },
      { "kafka_topic": "rego.plugin", "type": "example.rego.structured", "format": "structured",
        "topic": "sandbox/rego/structured/{key}", "registry": "sr" },
      { "kafka_topic": "rego.plugin", "topic": "sandbox/rego/plugin/{key}", "registry": "sr" }
    ]
  },
  "stats": { "sys_interval": 1 }
}
JSON
phase register
start_mosquitto "$T/rego.json.in"
wait_assigned

phase mqtt
grep -q 'outbound: record rego.json \[0\] at offset 1 not published (undecodable): registry sr: not in the Schema Registry wire format (the first byte is not the magic byte 0)' "$T/mosquitto.log" ||
	{ cat "$T/mosquitto.log" >&2; fail "the record without the magic byte not logged"; }
# (one log line per reason every 10 s: the other two are counted)
undecodable() {
	n=$(timeout 5 mosquitto_sub -p "$MQTT_PORT" -t '$SYS/tributary/outbound/dropped/undecodable' -C 1 -W 4)
	((n == 3))
}
wait_until 5 undecodable || fail "dropped/undecodable is '$n', not 3 (no magic byte, an unknown schema id, Avro cut short)"
pass "undecodable records dropped, counted and logged; the records around them delivered"

# The registry down: a record whose schema was never fetched waits, and so
# does the record after it (a cached schema), until the registry is back.
phase held
kill -TERM "$REGISTRY_PID"
wait "$REGISTRY_PID" 2>/dev/null
timeout 30 mosquitto_sub -p "$MQTT_PORT" -q 1 -t 'sandbox/rego/json/held' -C 2 -F '%p' >"$T/held.out" &
sub=$!
sleep 0.3
kcat -q -b "$KAFKA_BOOTSTRAP" -P -t rego.json -k held "$T/held1.bin" "$T/held2.bin" || fail "kcat produce"
wait_log "$T/mosquitto.log" 'outbound: registry sr (.*): cannot fetch schema id [0-9]* for a record of rego.json' 10 ||
	{ cat "$T/mosquitto.log" >&2; fail "the registry outage not logged"; }
sleep 1
[[ ! -s "$T/held.out" ]] || fail "delivered while its schema could not be fetched: $(cat "$T/held.out")"
start_registry
wait "$sub" || fail "the held records did not arrive once the registry was back"
diff "$T/held.want" "$T/held.out" || fail "held records: not the JSON, or not in order"
grep -q 'outbound: registry sr (.*) reachable again' "$T/mosquitto.log" || fail "the registry's return not logged"
n=$(grep -c 'cannot fetch schema id' "$T/mosquitto.log")
((n == 1)) || fail "the outage logged $n times, not once"
pass "records wait, in order, while their schema cannot be fetched"
pass "registry outbound"
