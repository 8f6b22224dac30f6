#!/usr/bin/env bash
# SIGHUP recompiles the schema catalog: a new type becomes valid; a broken
# catalog is refused with a log line and the previous one keeps serving.
source "$(dirname "$0")/../lib/stack.sh"
stack_init
cp -r "$ROOT/schemas" "$T/schemas"
start_kafka --topic events.gadget:1
start_mosquitto "$ROOT/tests/integration/catalog-reload.json.in"

accepted=0
publish() { # expect-reason-or-ok
	local id out
	id=$(cat /proc/sys/kernel/random/uuid)
	out=$(mosquitto_rr -V 5 -p "$MQTT_PORT" -i reload-1 -e clients/reload-1/errors -t events/gadget/g1 -W 1 \
		-m '{"specversion":"1.0","id":"'$id'","source":"urn:t","type":"example.gadget.made","data":{"name":"g"}}' 2>&1)
	if [[ $1 == ok ]]; then
		[[ -z "$out" || "$out" == *"Timed out"* ]] || fail "expected acceptance, got: $out"
		# Exactly the accepted events so far: kcat returns as soon as they are there.
		accepted=$((accepted + 1))
		kafka_read events.gadget "$accepted" 10 '%h\n' | grep -q "ce_id=$id" || fail "accepted event $id not in Kafka"
	else
		grep -q "\"reason\":\"$1\"" <<<"$out" || fail "expected $1, got: $out"
	fi
}

publish unknown_type
pass "unknown type refused"

cat >"$T/schemas/events/example.gadget.made.json" <<'SCHEMA'
{ "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
  "required": ["name"], "properties": { "name": { "type": "string" } } }
SCHEMA
sed -i 's|"types": {|"types": {\n    "example.gadget.made": "events/example.gadget.made.json",|' "$T/schemas/catalog.json"
kill -HUP "$MOSQUITTO_PID"
wait_log "$T/mosquitto.log" 'reload: catalog .*6 event types' 5 || fail "reload not logged"
publish ok
pass "after SIGHUP the new type is accepted"

echo '{"type": "objekt"}' >"$T/schemas/events/example.gadget.made.json"
kill -HUP "$MOSQUITTO_PID"
wait_log "$T/mosquitto.log" 'keeping the previous catalog' 5 || fail "a broken catalog was not refused"
publish ok
pass "a broken catalog is refused and the previous one keeps serving"
