#!/usr/bin/env bash
# The broker validating against a Schema Registry (docs/registry.md): the
# dev registry (tributary-registry-dev) and the run's Kafka; the schemas
# registered, and the confluent-format records decoded, by Confluent's own
# client (tests/node/registry-ingest.mjs has the checks). Also: the
# registry stopped while the broker runs (cached schemas keep working, the
# outage logged and counted once) and the broker started while it is down
# or hung. Avro: valid and invalid data, evolution, every record decoded by
# Confluent's AvroDeserializer; a Protobuf subject refused.
source "$(dirname "$0")/../lib/stack.sh"
[[ -d "$ROOT/node_modules/@confluentinc/schemaregistry" ]] ||
	skip "@confluentinc/schemaregistry is not installed (npm ci)"
stack_init
start_kafka --topic reg.orders:1 --topic reg.things:1 --topic reg.tr:1 --topic reg.avro:1
export REG_TEST_SECRET=dev-secret # ${REG_TEST_SECRET} in the config: expanded by the plugin
start_registry --user "tributary:$REG_TEST_SECRET"
phase() {
	AVRO_SENT=$T/avro-sent.json REGISTRY_USER_INFO="tributary:$REG_TEST_SECRET" node "$ROOT/tests/node/registry-ingest.mjs" "$1" ||
		{ tail -30 "$T/mosquitto.log" >&2; fail "phase $1"; }
}
stop_registry() {
	kill -TERM "$REGISTRY_PID"
	wait "$REGISTRY_PID" 2>/dev/null
}

phase register
start_mosquitto "$ROOT/tests/integration/registry-ingest.json.in"
grep -q 'registry sr (.*): 5 subjects loaded' "$T/mosquitto.log" ||
	{ cat "$T/mosquitto.log" >&2; fail "the registry's subjects not loaded at start"; }
phase ingest
grep -q "registry wrongkey (http://127.0.0.1:$REGISTRY_PORT): the registry refused the credentials (HTTP 401" "$T/mosquitto.log" ||
	{ cat "$T/mosquitto.log" >&2; fail "no clear log line for the wrong credential"; }
pass "a wrong credential: logged as such"

# SIGHUP reads "registries" again: the credential fixed takes effect
# without a restart; a registry removed while a route uses it is refused
# and the previous settings keep serving.
edit_config() { # JS: a function body given `c`, the configuration (the rendered file)
	node -e 'const fs = require("fs"); const p = process.argv[1]; const c = JSON.parse(fs.readFileSync(p));
		new Function("c", process.argv[2])(c); fs.writeFileSync(p, JSON.stringify(c, null, 1));' "$TRIBUTARY_CONFIG" "$1" ||
		fail "edit $TRIBUTARY_CONFIG"
}
edit_config 'c.registries.wrongkey["basic.auth.user.info"] = "tributary:${REG_TEST_SECRET}"; c.registries.wrongkey.max_age_s = 2;'
kill -HUP "$MOSQUITTO_PID"
wait_log "$T/mosquitto.log" "reload: registry wrongkey (http://127.0.0.1:$REGISTRY_PORT): credentials, max_age_s changed, in effect now" 10 ||
	{ cat "$T/mosquitto.log" >&2; fail "the registry's new settings not logged"; }
phase reloaded
edit_config 'delete c.registries.sr;'
kill -HUP "$MOSQUITTO_PID"
wait_log "$T/mosquitto.log" 'reload: registries.sr: removed, but ingest.routes\[0\] uses it; keeping the previous registries' 10 ||
	{ cat "$T/mosquitto.log" >&2; fail "a registry removed while a route uses it: not refused"; }
edit_config 'c.registries.wrongkey.max_age_s = 0;'
kill -HUP "$MOSQUITTO_PID"
wait_log "$T/mosquitto.log" 'registries.wrongkey.max_age_s: must be 1 to 86400 seconds' 10 ||
	{ cat "$T/mosquitto.log" >&2; fail "a bad value on reload: not logged"; }
(($(grep -c 'reload: keeping the previous registries' "$T/mosquitto.log") == 2)) ||
	{ cat "$T/mosquitto.log" >&2; fail "the previous registries not kept twice"; }
phase reloadkept
pass "SIGHUP: a registry's credential fixed without a restart; a removal a route needs, a bad value: refused, logged, the previous settings kept"

stop_registry
phase outage
n=$(grep -c 'registry sr (.*): the registry is unavailable' "$T/mosquitto.log")
((n == 1)) || { cat "$T/mosquitto.log" >&2; fail "the outage logged $n times, not once"; }
# A Protobuf subject, written into the registry's _schemas as Confluent's
# registry stores it (the dev registry refuses to register Protobuf).
printf '%s\t%s\n' '{"keytype":"SCHEMA","subject":"reg.proto-value","version":1,"magic":1}' \
	'{"subject":"reg.proto-value","version":1,"id":900,"schemaType":"PROTOBUF","schema":"syntax = \"proto3\"; message M { string s = 1; }","references":[]}' |
	kcat -q -b "$KAFKA_BOOTSTRAP" -P -t _schemas -p 0 -K $'\t' || fail "kcat: _schemas"
start_registry --user "tributary:$REG_TEST_SECRET"
wait_until 15 grep -q 'registry sr (.*): reachable again' "$T/mosquitto.log" ||
	fail "the registry's return not logged"
pass "registry down while running: logged once, and its return"
phase protobuf
n=$(grep -c 'registry sr: subject reg.proto-value version 1 (id 900): it is a Protobuf schema: not supported' "$T/mosquitto.log")
((n == 1)) || { cat "$T/mosquitto.log" >&2; fail "the Protobuf subject logged $n times, not once"; }
pass "a Protobuf subject: refused, logged once"

stop_registry
stop_mosquitto
start=$(date +%s%N)
start_mosquitto "$ROOT/tests/integration/registry-ingest.json.in"
ms=$((($(date +%s%N) - start) / 1000000))
((ms < 4000)) || fail "the broker took $ms ms to start with the registry down"
phase downstart
start_registry --user "tributary:$REG_TEST_SECRET"
phase recover
pass "broker started in $ms ms with the registry down; its schemas arrived once it was back"

# A hung registry (connections accepted, never answered): the start waits
# start_timeout_ms (3000) at most, not the requests' timeouts.
stop_mosquitto
kill -STOP "$REGISTRY_PID"
start=$(date +%s%N)
start_mosquitto "$ROOT/tests/integration/registry-ingest.json.in"
ms=$((($(date +%s%N) - start) / 1000000))
kill -CONT "$REGISTRY_PID"
((ms < 6000)) || fail "the broker took $ms ms to start with the registry hung"
grep -q 'registry sr (.*): not loaded within start_timeout_ms 3000; starting without it' "$T/mosquitto.log" ||
	{ cat "$T/mosquitto.log" >&2; fail "the start timeout not logged"; }
phase recover
pass "broker started in $ms ms with the registry hung (start_timeout_ms 3000)"

phase decode
pass "registry ingest"
