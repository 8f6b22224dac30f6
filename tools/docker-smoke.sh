#!/usr/bin/env bash
# Builds the Docker image and smoke-tests it against the dev Kafka on this
# machine: the container runs with host networking (Linux), the dev Kafka on
# loopback, and real clients check what a user would:
#   - a valid CloudEvent published over MQTT reaches Kafka (topic events.order,
#     key = the order id), an invalid one is refused (PUBACK 0x87 and an error
#     event on clients/<id>/errors) and never reaches Kafka;
#   - nginx serves the web app, upgrades /mqtt to a WebSocket and relays MQTT
#     over it (with mqtt.js from node_modules, when present);
#   - both servers log to `docker logs`;
#   - `docker stop` right after a burst of events exits 0 within the stop
#     timeout, and every event of the burst is in Kafka (the plugin flushed).
#
#   tools/docker-smoke.sh
#
# Environment: IMAGE (tag to build and test, default tributary), NO_BUILD=1
# (test IMAGE as it is), TEST_PORT_BASE (default 20000: Kafka 29092, control
# 29099, MQTT 21883, HTTP 28080, as in the integration tests),
# NPM_EXTRA_CA_FILE (PEM certificate of a TLS-inspecting proxy, for npm in the
# build), DOCKER_BUILD_OPTS (more `docker build` options).
# Needs docker and a debian:12 image (pulled, or made locally: README
# "Docker"), kcat, mosquitto-clients and curl (`make deps`). Exits 77 when
# Docker is unusable here. Not part of `make test`.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
IMAGE=${IMAGE:-tributary}
base=${TEST_PORT_BASE:-20000}
KAFKA_PORT=$((base + 9092)) KAFKA_CONTROL_PORT=$((base + 9099))
MQTT_PORT=$((base + 1883)) HTTP_PORT=$((base + 8080))
KAFKA="127.0.0.1:$KAFKA_PORT"
ORDER_ID=3f0c1d2e-8f3b-4d4e-9a51-0c2b7c1e9f00

say() { echo "docker-smoke: $*"; }
# grep -q ends the pipe early; under pipefail a writer's SIGPIPE would then
# fail the test: read all
has() { grep -c "$@" >/dev/null; }
fail() {
	echo "docker-smoke: FAIL: $*" >&2
	if [[ -n "${started:-}" ]]; then
		echo "--- docker logs $NAME (last 40 lines)" >&2
		docker logs --tail 40 "$NAME" 2>&1 | sed 's/^/    /' >&2 || true
	fi
	exit 1
}

if ! command -v docker >/dev/null; then
	echo "docker-smoke: SKIP: docker is not installed (Debian: apt-get install docker.io)"
	exit 77
fi
if ! docker info >/dev/null 2>&1; then
	echo "docker-smoke: SKIP: the Docker daemon does not answer ('docker info' fails:" \
		"is dockerd running, and may $(id -un) use /var/run/docker.sock?)"
	exit 77
fi
for tool in kcat mosquitto_pub mosquitto_rr curl; do
	command -v "$tool" >/dev/null || fail "$tool missing: run 'make deps'"
done
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$KAFKA_PORT" "$KAFKA_CONTROL_PORT" "$MQTT_PORT" "$HTTP_PORT"; do
	port_free "$p" || fail "port $p is in use (set TEST_PORT_BASE)"
done

NAME="tributary-smoke-$$"
RUN_ID="smoke-$$-$(date +%s)"
T=$(mktemp -d "${TMPDIR:-/tmp}/docker-smoke.XXXXXX")
kafka_pid=
cleanup() {
	local rc=$?
	# The container first, so that the broker still has Kafka to flush to.
	[[ -n "${started:-}" ]] && docker rm -f "$NAME" >/dev/null 2>&1
	[[ -n "$kafka_pid" ]] && kill "$kafka_pid" 2>/dev/null && wait "$kafka_pid" 2>/dev/null
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- build
if [[ "${NO_BUILD:-0}" == 0 ]]; then
	build_args=()
	if [[ -n "${NPM_EXTRA_CA_FILE:-}" ]]; then
		# a build argument is an environment variable in the build: 128 KiB at most
		(($(wc -c <"$NPM_EXTRA_CA_FILE") < 100000)) ||
			fail "NPM_EXTRA_CA_FILE: give the proxy's CA only, not a whole bundle"
		build_args+=(--build-arg "NPM_EXTRA_CA=$(cat "$NPM_EXTRA_CA_FILE")")
	fi
	say "building $IMAGE (log: docker-build.log in $T, shown on failure)"
	start=$SECONDS
	# shellcheck disable=SC2086 # DOCKER_BUILD_OPTS: several options
	docker build ${DOCKER_BUILD_OPTS:-} "${build_args[@]}" -t "$IMAGE" "$ROOT" >"$T/docker-build.log" 2>&1 ||
		{ tail -40 "$T/docker-build.log" >&2; fail "docker build"; }
	say "built $IMAGE in $((SECONDS - start)) s"
fi
say "image $IMAGE: $(docker image inspect -f '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1 / 1e6}')"

# --- dev Kafka on the host, the container on the host's network
devkafka="$ROOT/build/bin/tributary-devkafka"
[[ -x "$devkafka" ]] || make -C "$ROOT" -s build/bin/tributary-devkafka >/dev/null ||
	fail "cannot build $devkafka"
"$devkafka" --port "$KAFKA_PORT" --control "$KAFKA_CONTROL_PORT" --topic events.order:3 \
	>"$T/devkafka.out" 2>"$T/devkafka.log" &
kafka_pid=$!
for _ in $(seq 1 100); do
	port_free "$KAFKA_CONTROL_PORT" || break
	sleep 0.1
done
port_free "$KAFKA_CONTROL_PORT" && fail "dev Kafka did not start: $(cat "$T/devkafka.log")"

docker run -d --name "$NAME" --network host -e KAFKA_BOOTSTRAP_SERVERS="$KAFKA" \
	-e MQTT_PORT="$MQTT_PORT" -e HTTP_PORT="$HTTP_PORT" "$IMAGE" >/dev/null
started=1
for _ in $(seq 1 150); do
	[[ "$(docker inspect -f '{{.State.Running}}' "$NAME")" == true ]] || fail "the container exited"
	if docker logs "$NAME" 2>&1 | has 'tributary: ready' && ! port_free "$MQTT_PORT" &&
		! port_free "$HTTP_PORT"; then
		break
	fi
	sleep 0.2
done
docker logs "$NAME" 2>&1 | has 'tributary: ready' || fail "the plugin did not log ready"
port_free "$HTTP_PORT" && fail "nginx does not listen on $HTTP_PORT"
say "container $NAME up: MQTT $MQTT_PORT, HTTP $HTTP_PORT, Kafka $KAFKA"

event() { # id order_id qty
	printf '{"specversion":"1.0","id":"%s","source":"urn:smoke","type":"example.order.placed",' "$1"
	printf '"datacontenttype":"application/json","data":{"orderId":"%s","customerId":"c-1",' "$2"
	printf '"lines":[{"sku":"SKU-1","qty":%s}],"total":19.99,"currency":"EUR"}}\n' "$3"
}
# kafka_ids: the ce_id header of every record in events.order, one a line
kafka_ids() {
	timeout 20 kcat -q -b "$KAFKA" -X fetch.wait.max.ms=10 -C -t events.order -o beginning -e -f '%h\n' 2>>"$T/kcat.log" |
		tr ',' '\n' | sed -n 's/^ce_id=//p'
}
# wait_ids N PREFIX: until N records with ids starting PREFIX are in Kafka
wait_ids() {
	local n=0
	for _ in $(seq 1 30); do
		n=$(kafka_ids | grep -c "^$2" || true)
		((n >= $1)) && return 0
		sleep 0.5
	done
	echo "$n"
	return 1
}

# --- (a) a valid event reaches Kafka, keyed by the order id
mosquitto_pub -V 5 -q 1 -p "$MQTT_PORT" -i "$RUN_ID-ok" -t "events/order/$ORDER_ID" \
	-m "$(event "$RUN_ID-ok" "$ORDER_ID" 2)" || fail "mosquitto_pub of a valid event"
wait_ids 1 "$RUN_ID-ok" >/dev/null || fail "the valid event did not reach Kafka"
timeout 20 kcat -q -b "$KAFKA" -X fetch.wait.max.ms=10 -C -t events.order -o beginning -e -f '%k %h\n' 2>>"$T/kcat.log" |
	has "^$ORDER_ID .*ce_id=$RUN_ID-ok" || fail "the record's key is not the order id"
say "ok: a valid event reached Kafka topic events.order, key $ORDER_ID"

# --- (b) an invalid event (qty 0) is refused, with a reason, and not produced
mosquitto_pub -V 5 -q 1 -p "$MQTT_PORT" -i "$RUN_ID-pub" -t events/order/$ORDER_ID \
	-m "$(event "$RUN_ID-bad" "$ORDER_ID" 0)" >"$T/pub-bad.log" 2>&1 || true
grep -qi 'not authori' "$T/pub-bad.log" || fail "no PUBACK 0x87 (Not authorized): $(cat "$T/pub-bad.log")"
reply=$(timeout 15 mosquitto_rr -V 5 -q 1 -p "$MQTT_PORT" -i "$RUN_ID-rr" -W 10 \
	-e "clients/$RUN_ID-rr/errors" -t "events/order/$ORDER_ID" \
	-m "$(event "$RUN_ID-bad" "$ORDER_ID" 0)") || fail "no error event on clients/<id>/errors"
grep -q '"reason":"schema_validation_failed"' <<<"$reply" || fail "unexpected error event: $reply"
mosquitto_pub -q 1 -p "$MQTT_PORT" -i "$RUN_ID-mark" -t "events/order/$ORDER_ID" \
	-m "$(event "$RUN_ID-mark" "$ORDER_ID" 1)" || fail "mosquitto_pub"
wait_ids 1 "$RUN_ID-mark" >/dev/null || fail "an event after the invalid ones did not reach Kafka"
kafka_ids | has "^$RUN_ID-bad" && fail "the invalid event reached Kafka"
say "ok: an invalid event was refused (0x87, schema_validation_failed) and kept out of Kafka"

# --- (c) nginx: the web app, the WebSocket upgrade at /mqtt, MQTT over it
code=$(curl -sS -o "$T/index.html" -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/") || fail "GET /"
if [[ "$code" != 200 ]] || ! grep -qi '<html' "$T/index.html"; then fail "GET / answered $code"; fi
code=$(curl -sS -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/mqtt.min.js") || fail "GET /mqtt.min.js"
[[ "$code" == 200 ]] || fail "GET /mqtt.min.js answered $code"
# the relay keeps the socket open: curl ends by its time limit
curl -sS -D "$T/ws.headers" -o /dev/null --max-time 2 -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
	-H 'Sec-WebSocket-Version: 13' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
	-H 'Sec-WebSocket-Protocol: mqtt' "http://127.0.0.1:$HTTP_PORT/mqtt" 2>/dev/null || true
head -1 "$T/ws.headers" | grep -q ' 101' || fail "/mqtt did not upgrade: $(head -1 "$T/ws.headers")"
say "ok: nginx serves the web app and upgrades /mqtt (101 Switching Protocols)"
if command -v node >/dev/null && [[ -d "$ROOT/node_modules/mqtt" ]]; then
	# shellcheck disable=SC2016 # JavaScript, not shell
	(cd "$ROOT" && timeout 20 node --input-type=module -e '
import mqtt from "mqtt";
const [url, id, ev] = process.argv.slice(1);
const c = mqtt.connect(url, { protocolVersion: 5, clientId: id, reconnectPeriod: 0, connectTimeout: 5000 });
c.on("error", (e) => { console.error(e.message); process.exit(1); });
c.on("connect", async () => {
  await c.publishAsync(`events/order/${JSON.parse(ev).data.orderId}`, ev, { qos: 1 });
  await c.endAsync();
});' "ws://127.0.0.1:$HTTP_PORT/mqtt" "$RUN_ID-ws" "$(event "$RUN_ID-ws" "$ORDER_ID" 3)") ||
		fail "mqtt.js over ws://127.0.0.1:$HTTP_PORT/mqtt"
	wait_ids 1 "$RUN_ID-ws" >/dev/null || fail "the event sent over WebSocket did not reach Kafka"
	say "ok: an event published by mqtt.js over the WebSocket reached Kafka"
else
	say "note: no node or node_modules/mqtt ('make deps'): MQTT over WebSocket not exercised"
fi

# --- both servers log to docker logs
docker logs "$NAME" >"$T/logs" 2>&1
grep -q 'mosquitto version .* running' "$T/logs" || fail "no Mosquitto log in docker logs"
grep -q "rejected event from $RUN_ID-rr" "$T/logs" || fail "no rejection logged by the plugin"
grep -q '"GET /mqtt HTTP/1.1" 101' "$T/logs" || fail "no nginx access log in docker logs"
grep -q 'nginx/1\.' "$T/logs" || fail "no nginx error log in docker logs"
say "ok: Mosquitto, the plugin and nginx log to docker logs"

# --- docker stop right after a burst: clean exit, the plugin flushed
burst=500
for i in $(seq 1 "$burst"); do event "$RUN_ID-burst-$i" "$ORDER_ID" 1; done >"$T/burst"
mosquitto_pub -q 1 -p "$MQTT_PORT" -i "$RUN_ID-burst" -t "events/order/$ORDER_ID" -l <"$T/burst" ||
	fail "mosquitto_pub of the burst"
start=$SECONDS
docker stop "$NAME" >/dev/null
took=$((SECONDS - start))
status=$(docker inspect -f '{{.State.ExitCode}}' "$NAME")
[[ "$status" == 0 ]] || fail "docker stop: exit status $status"
((took < 10)) || fail "docker stop took $took s (the stop timeout is 10 s)"
docker logs "$NAME" 2>&1 | has 'not confirmed by Kafka' && fail "the plugin did not flush"
n=$(wait_ids "$burst" "$RUN_ID-burst-") || fail "$n of $burst events of the burst in Kafka after docker stop"
say "ok: docker stop after $burst events: exit 0 in ${took} s, all $burst in Kafka"
say "PASS"
