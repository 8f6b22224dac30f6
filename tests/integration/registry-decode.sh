#!/usr/bin/env bash
# Records in a Schema Registry's wire format back to JSON (docs/registry.md):
# written by Confluent's own serializers (@confluentinc/schemaregistry, JSON
# Schema and Avro) and by the plugin (value_format confluent), read by MQTT
# subscribers through outbound routes that name the registry and by SSE
# clients of nginx locations with tributary_stream_registry, compared with
# the original JSON (tests/node/registry-decode.mjs). Also: undecodable
# records dropped, counted and logged while the records around them
# arrive; records whose schema cannot be fetched (the registry down) held
# in order until it is back, by both.
source "$(dirname "$0")/../lib/stack.sh"
[[ -d "$ROOT/node_modules/@confluentinc/schemaregistry" ]] ||
	skip "@confluentinc/schemaregistry is not installed (npm ci)"
stack_init
start_kafka --topic rego.json:1 --topic rego.avro:2 --topic rego.plugin:1
start_registry
export OUT_DIR="$T"

cat >"$T/rego.json.in" <<'JSON'
{
  "broker_id": "registry-decode",
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
cat >"$T/nginx.conf.in" <<'NGINX'
load_module @NGINX_MODULE_PATH@;
worker_processes 1;
pid @NGINX_PREFIX@/nginx.pid;
error_log @NGINX_PREFIX@/logs/error.log info;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path @NGINX_PREFIX@/tmp/body;
    proxy_temp_path @NGINX_PREFIX@/tmp/proxy;
    fastcgi_temp_path @NGINX_PREFIX@/tmp/fastcgi;
    uwsgi_temp_path @NGINX_PREFIX@/tmp/uwsgi;
    scgi_temp_path @NGINX_PREFIX@/tmp/scgi;
    tributary_kafka_brokers @KAFKA_BOOTSTRAP@;
    tributary_kafka_property fetch.wait.max.ms 10;
    server {
        listen 127.0.0.1:@HTTP_PORT@;
        tributary_stream_registry @REGISTRY_URL@ timeout=1s;
        location /rego/json { tributary_stream rego.json; }
        location /rego/avro { tributary_stream rego.avro; }
        location /rego/plugin { tributary_stream rego.plugin; }
        location = /tributary/status { tributary_stream_status; }
    }
}
NGINX

# nginx refuses a topic read through a registry in one location and not
# in another, and options it does not know
nginx_refuses() { # NAME EXPECTED LOCATIONS...
	local name=$1 expect=$2
	shift 2
	sed "s|        location /rego/json { tributary_stream rego.json; }|$*|" "$T/nginx.conf.in" >"$T/$name.conf.in"
	NGINX_PREFIX="$T/nginx" NGINX_MODULE_PATH="$BUILD/ngx_http_tributary_module.so" render "$T/$name.conf.in" "$T/$name.conf"
	mkdir -p "$T/nginx/logs"
	! env $(stack_san_env nginx) nginx -t -p "$T/nginx" -c "$T/$name.conf" -e "$T/$name.err" >"$T/$name.out" 2>&1 ||
		fail "nginx accepted $name"
	grep -q -- "$expect" "$T/$name.out" || { cat "$T/$name.out" >&2; fail "$name: nginx does not say '$expect'"; }
}
nginx_refuses mixed 'one location of this topic has tributary_stream_registry and another not' \
	'location /a { tributary_stream rego.json; } location /b { tributary_stream rego.json; tributary_stream_registry off; }'
nginx_refuses other 'another location of this topic reads it through the registry http://127.0.0.1:1' \
	'location /a { tributary_stream rego.avro; tributary_stream_registry http://127.0.0.1:1; }'
nginx_refuses option 'unknown option "password=x"' \
	'location /a { tributary_stream rego.json; tributary_stream_registry http://127.0.0.1:1 password=x; }'
pass "nginx refuses bad tributary_stream_registry configurations"

# the plugin's route validates against rego.plugin-value: there at start
curl -sf -X POST -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
	--data '{"schemaType":"JSON","schema":"{\"type\":\"object\",\"required\":[\"sensor\",\"value\"]}"}' \
	"$REGISTRY_URL/subjects/rego.plugin-value/versions" >/dev/null || fail "cannot register rego.plugin-value"
start_mosquitto "$T/rego.json.in"
start_nginx "$T/nginx.conf.in"
wait_until 20 eval '(($(grep -c "tributary_stream: topic .*live from" "$NGINX_PREFIX/logs/error.log") >= 3))' ||
	{ cat "$NGINX_PREFIX/logs/error.log" >&2; fail "nginx's live consumer not ready"; }
wait_assigned

sse() { # NAME PATH COUNT: an SSE client in the background, its events in $T/sse-NAME.jsonl
	SSE_TYPES=example.rego.reading,example.rego.structured \
		node "$ROOT/tests/node/stream-client.mjs" sse "http://127.0.0.1:$HTTP_PORT$2" "$3" 20000 \
		>"$T/sse-$1.jsonl" 2>"$T/sse-$1.err" &
}
sse json /rego/json 2
sse_json=$!
sse avro /rego/avro 2
sse_avro=$!
sse plugin /rego/plugin 2
sse_plugin=$!
node "$ROOT/tests/node/stream-client.mjs" ws "ws://127.0.0.1:$HTTP_PORT/rego/avro" 2 20000 \
	>"$T/sse-ws-avro.jsonl" 2>"$T/sse-ws-avro.err" &
sse_ws_avro=$!
wait_until 10 eval '(($(curl -s "http://127.0.0.1:$HTTP_PORT/tributary/status" | awk '"'"'/^tributary_stream_subscribers/ { s += $2 } END { print s + 0 }'"'"') >= 4))' ||
	fail "the SSE clients did not connect"

node "$ROOT/tests/node/registry-decode.mjs" || { tail -30 "$T/mosquitto.log" >&2; fail "registry-decode.mjs"; }
for c in json avro plugin ws_avro; do
	v=sse_$c
	wait "${!v}" || { cat "$T/sse-${c/_/-}.err" "$NGINX_PREFIX/logs/error.log" >&2; fail "stream $c: events missing"; }
done
grep -q 'tributary_stream: record rego.json \[0\] at offset 1 not sent (undecodable): not in the Schema Registry wire format' "$NGINX_PREFIX/logs/error.log" ||
	{ cat "$NGINX_PREFIX/logs/error.log" >&2; fail "nginx did not log the undecodable record"; }
n=$(curl -s "http://127.0.0.1:$HTTP_PORT/tributary/status" | awk '/^tributary_stream_records_undecodable_total/ { s += $2 } END { print s + 0 }')
((n == 3)) || fail "tributary_stream_records_undecodable_total is $n, not 3"
pass "nginx: the same records as JSON over SSE and WebSocket, the undecodable ones counted and logged"
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
kill -TERM "$REGISTRY_PID"
wait "$REGISTRY_PID" 2>/dev/null
timeout 30 mosquitto_sub -p "$MQTT_PORT" -q 1 -t 'sandbox/rego/json/held' -C 2 -F '%p' >"$T/held.out" &
sub=$!
sse held /rego/json 2
sse_held=$!
sleep 0.5
kcat -q -b "$KAFKA_BOOTSTRAP" -P -t rego.json -k held "$T/held1.bin" "$T/held2.bin" || fail "kcat produce"
wait_log "$T/mosquitto.log" 'outbound: registry sr (.*): cannot fetch schema id [0-9]* for a record of rego.json' 10 ||
	{ cat "$T/mosquitto.log" >&2; fail "the registry outage not logged"; }
sleep 1
wait_log "$NGINX_PREFIX/logs/error.log" 'tributary_stream: registry http://127.0.0.1:[0-9]*: cannot fetch schema id [0-9]* (.*); records wait, in order' 10 ||
	{ cat "$NGINX_PREFIX/logs/error.log" >&2; fail "nginx did not log the registry outage"; }
[[ ! -s "$T/held.out" ]] || fail "delivered while its schema could not be fetched: $(cat "$T/held.out")"
[[ ! -s "$T/sse-held.jsonl" ]] || fail "sent over SSE while its schema could not be fetched: $(cat "$T/sse-held.jsonl")"
start_registry
wait "$sub" || fail "the held records did not arrive once the registry was back"
diff "$T/held.want" "$T/held.out" || fail "held records: not the JSON, or not in order"
wait "$sse_held" || fail "the held records did not reach the SSE client once the registry was back"
node -e 'for (const l of require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean)) console.log(JSON.stringify(JSON.parse(JSON.parse(l).data)))' \
	"$T/sse-held.jsonl" >"$T/sse-held.out"
diff "$T/held.want" "$T/sse-held.out" || fail "held records over SSE: not the JSON, or not in order"
grep -q 'tributary_stream: registry http://.* reachable again' "$NGINX_PREFIX/logs/error.log" ||
	fail "nginx did not log the registry's return"

# A replay through a new worker, whose cache is empty: from the topic's
# start, every schema fetched on the way, in order, the undecodable ones
# skipped.
kill -HUP "$NGINX_PID"
wait_until 20 eval '(($(grep -c "tributary_stream: topic \"rego.json\".*live from" "$NGINX_PREFIX/logs/error.log") >= 2))' ||
	fail "no new worker after the reload"
node "$ROOT/tests/node/stream-client.mjs" sse "http://127.0.0.1:$HTTP_PORT/rego/json" 4 20000 p0:o0 \
	>"$T/sse-replay.jsonl" 2>"$T/sse-replay.err" || { cat "$T/sse-replay.err" >&2; fail "replay: events missing"; }
node -e 'for (const l of require("fs").readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean)) console.log(JSON.stringify(JSON.parse(JSON.parse(l).data)))' \
	"$T/sse-replay.jsonl" >"$T/sse-replay.out"
node -e 'const e = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); for (const v of e.json) console.log(JSON.stringify(v))' \
	"$T/expect.json" >"$T/replay.want"
cat "$T/held.want" >>"$T/replay.want"
diff "$T/replay.want" "$T/sse-replay.out" || fail "replayed records: not the JSON, or not in order"
pass "a replay by a worker without cached schemas: in order, as JSON"
nginx_log_clean || fail "nginx error log has alerts"
grep -q 'outbound: registry sr (.*) reachable again' "$T/mosquitto.log" || fail "the registry's return not logged"
n=$(grep -c 'cannot fetch schema id' "$T/mosquitto.log")
((n == 1)) || fail "the outage logged $n times, not once"
pass "records wait, in order, while their schema cannot be fetched"
pass "registry decode"
