#!/usr/bin/env bash
# `make run`: the whole stack on loopback, in the foreground; Ctrl-C stops it.
#   Apache Kafka                127.0.0.1:9092 (controller :9093), data in var/kafka,
#                               kept across runs (`make clean-data` wipes it);
#                               the broker's journal in var/journal, kept too;
#                               KAFKA=mock: librdkafka's in-memory mock instead
#   Mosquitto + plugin          127.0.0.1:1883
#   nginx + module              http://127.0.0.1:8080/  (ws://127.0.0.1:8080/mqtt)
#   example responder           answers example.order.quote.requested
#   Schema Registry             http://127.0.0.1:8081 (tributary-registry-dev, Confluent's
#                               REST API; its state in Kafka's _schemas), the catalog
#                               pushed into it; not with KAFKA=mock
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${1:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
RUN=${RUN:-$BUILD/run} # wiped at each start
export ROOT BUILD
export KAFKA_PORT=${KAFKA_PORT:-9092} MQTT_PORT=${MQTT_PORT:-1883} HTTP_PORT=${HTTP_PORT:-8080}
export MQTT_WS_PORT=${MQTT_WS_PORT:-1884} REGISTRY_PORT=${REGISTRY_PORT:-8081}
export KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
KAFKA=${KAFKA:-real}
KAFKA_DATA=${KAFKA_DATA:-$ROOT/var/kafka}
ports=("$KAFKA_PORT" "$MQTT_PORT" "$HTTP_PORT")
case "$KAFKA" in
real)
	ports+=($((KAFKA_PORT + 1)) "$REGISTRY_PORT")
	command -v java >/dev/null || { echo "run-dev: java not found: run tools/install-deps.sh, or KAFKA=mock make run" >&2; exit 1; }
	;;
mock) ;;
*) echo "run-dev: KAFKA must be real (Apache Kafka, the default) or mock (librdkafka's in-memory mock)" >&2; exit 1 ;;
esac
export TRIBUTARY_CONFIG="$RUN/tributary.json" MOSQUITTO_DATA_DIR="$RUN/mosquitto-data"
# The journal holds acknowledged events that Kafka has not confirmed yet:
# it outlives a run (beside Kafka's data), so that a Ctrl-C during an outage
# loses nothing; the next run produces them.
export PLUGIN_PATH="$BUILD/mosquitto_tributary.so" JOURNAL_DIR=${JOURNAL_DIR:-$ROOT/var/journal}
export NGINX_PREFIX="$RUN/nginx" NGINX_MODULE_PATH="$BUILD/ngx_http_tributary_module.so"
export WEB_ROOT="$BUILD/web" NGINX_MODULES_DIR=/usr/lib/nginx/modules

for port in "${ports[@]}"; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "run-dev: 127.0.0.1:$port is already in use (another 'make run', or the distro's" \
			"mosquitto/nginx service: stop it with 'service mosquitto stop' / 'service nginx stop')" >&2
		exit 1
	fi
done

rm -rf "$RUN"
mkdir -p "$RUN" "$MOSQUITTO_DATA_DIR" "$JOURNAL_DIR" "$NGINX_PREFIX/logs" "$NGINX_PREFIX/tmp"
# Started as root, Mosquitto drops to its own user: let it write its state.
if [[ $(id -u) -eq 0 ]] && id mosquitto >/dev/null 2>&1; then
	chown mosquitto: "$MOSQUITTO_DATA_DIR" "$JOURNAL_DIR"
fi
"$ROOT/tools/render-conf.sh" "$ROOT/conf/dev/tributary.json.in" >"$TRIBUTARY_CONFIG"
"$ROOT/tools/render-conf.sh" "$ROOT/conf/dev/mosquitto.conf.in" >"$RUN/mosquitto.conf"
"$ROOT/tools/render-conf.sh" "$ROOT/conf/dev/nginx.conf.in" >"$RUN/nginx.conf"

pids=()
stop() {
	trap - INT TERM EXIT
	echo
	echo "run-dev: stopping"
	# Newest first, one at a time: the broker flushes to Kafka before
	# Kafka goes away.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill -TERM "${pids[i]}" 2>/dev/null || true
		wait "${pids[i]}" 2>/dev/null || true
	done
}
trap stop INT TERM EXIT

wait_port() {
	for _ in $(seq 1 200); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	echo "run-dev: $2 did not start on port $1" >&2
	exit 1
}

topics=(--topic events.order:3 --topic notifications:3 --topic replies:3 --topic audit.order:1)
if [[ "$KAFKA" == real ]]; then
	echo "run-dev: starting Apache Kafka (data in $KAFKA_DATA, log $KAFKA_DATA/kafka.log)"
	"$BUILD/bin/tributary-kafka" --dir "$KAFKA_DATA" --port "$KAFKA_PORT" "${topics[@]}" >"$RUN/kafka.out" 2>&1 &
	pids+=($!)
	# It says when it answers metadata and the topics exist.
	until grep -qs 'tributary-kafka: ready' "$RUN/kafka.out"; do
		kill -0 "${pids[0]}" 2>/dev/null || { cat "$RUN/kafka.out" >&2; echo "run-dev: Kafka did not start" >&2; exit 1; }
		sleep 0.2
	done
	kafka_desc="Apache Kafka, data in $KAFKA_DATA (kept; make clean-data wipes it)"
else
	"$BUILD/bin/tributary-devkafka" --port "$KAFKA_PORT" "${topics[@]}" &
	pids+=($!)
	wait_port "$KAFKA_PORT" "dev Kafka"
	kafka_desc="librdkafka's mock: in memory, gone at exit (KAFKA=mock)"
fi

registry_desc="not started (it keeps its state in Apache Kafka; KAFKA=mock)"
if [[ "$KAFKA" == real ]]; then
	"$BUILD/bin/tributary-registry-dev" --bootstrap "$KAFKA_BOOTSTRAP" \
		--listen "127.0.0.1:$REGISTRY_PORT" >"$RUN/registry.log" 2>&1 &
	pids+=($!)
	wait_port "$REGISTRY_PORT" "the dev Schema Registry"
	registry_desc="http://127.0.0.1:$REGISTRY_PORT — tributary-registry-dev, state in Kafka's _schemas"
	# The catalog's schemas, as CI would push them (docs/registry.md).
	if ! "$BUILD/bin/tributary-registry" push --registry "http://127.0.0.1:$REGISTRY_PORT" \
		"$ROOT/schemas/catalog.json" >>"$RUN/registry.log" 2>&1; then
		registry_desc+=" (push of schemas/catalog.json failed: see $RUN/registry.log)"
	fi
fi

mosquitto -c "$RUN/mosquitto.conf" &
pids+=($!)
wait_port "$MQTT_PORT" "Mosquitto"

if [[ -x "$BUILD/bin/tributary-responder" ]]; then
	"$BUILD/bin/tributary-responder" --brokers "$KAFKA_BOOTSTRAP" &
	pids+=($!)
fi

nginx -p "$NGINX_PREFIX" -c "$RUN/nginx.conf" -e stderr -g 'daemon off;' &
pids+=($!)
wait_port "$HTTP_PORT" "nginx"

cat <<MSG

  Tributary dev stack is up (Ctrl-C stops everything):
    web app          http://127.0.0.1:$HTTP_PORT/
    MQTT (TCP)       mqtt://127.0.0.1:$MQTT_PORT
    MQTT (WebSocket) ws://127.0.0.1:$HTTP_PORT/mqtt
    notifications    http://127.0.0.1:$HTTP_PORT/notifications?user=U   (SSE)
    Kafka            $KAFKA_BOOTSTRAP — $kafka_desc
    journal          $JOURNAL_DIR (kept; make clean-data wipes it)
    Schema Registry  $registry_desc

  Try:
    mosquitto_sub -p $MQTT_PORT -V 5 -t 'clients/me/errors' -i me &
    kcat -b $KAFKA_BOOTSTRAP -C -t events.order -f '%k %s\\n'

MSG
wait -n "${pids[@]}"
echo "run-dev: a process exited; stopping the rest" >&2
