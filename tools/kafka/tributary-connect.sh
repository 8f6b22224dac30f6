#!/usr/bin/env bash
# tributary-connect: a standalone Kafka Connect worker (connect-runtime,
# connect-file and connect-json of tools/kafka/pom.xml, the broker's Kafka
# version) for the tests and for trying connectors on `make run`'s Kafka
# (docs/kafka-connect.md).
#
#   tributary-connect --dir DIR --bootstrap HOST:PORT [--rest-port 8083]
#                     [--set NAME=VALUE]... [--heap 256m] [--ready-timeout 120]
#                     CONNECTOR.properties...
#
#   DIR/worker.properties  the worker's configuration (written at each start)
#   DIR/offsets            source connectors' offsets (sinks commit theirs to
#                          Kafka, group connect-NAME)
#   DIR/connect.log        the worker's log (appended to)
#   DIR/connect.pid        the JVM's pid while it runs
#
# The worker's converters: keys StringConverter (a Tributary record's key is
# text), values JsonConverter with schemas.enable=false (the data of a
# binary-mode record, or a whole structured-mode event, is plain JSON with no
# Connect schema envelope). A connector's own properties may override them
# (value.converter=...), --set any worker property (plugin.path=... for
# connectors that are not on the classpath: FileStream is). The REST API
# listens on 127.0.0.1 only.
#
# Runs in the foreground. Prints "tributary-connect: ready ..." once every
# connector and each of its tasks is RUNNING (asked on the REST API); exits
# 1 if one FAILED. SIGTERM or SIGINT stop the worker cleanly (the sinks'
# offsets committed). The exit status is the JVM's.
set -euo pipefail
ROOT=@ROOT@
LIB=${TRIBUTARY_KAFKA_LIB:-$ROOT/build/kafka/lib}
source "$ROOT/tools/kafka/jvm.sh"

dir="" bootstrap="" rest_port=8083 heap=256m ready_timeout=120 sets=() connectors=()
usage() {
	sed -n 's/^#   \{0,1\}//p' "$0" | sed -n '1,4p' >&2
	exit 2
}
while (($#)); do
	case $1 in
	--dir) dir=$2; shift 2 ;;
	--bootstrap) bootstrap=$2; shift 2 ;;
	--rest-port) rest_port=$2; shift 2 ;;
	--set) sets+=("$2"); shift 2 ;;
	--heap) heap=$2; shift 2 ;;
	--ready-timeout) ready_timeout=$2; shift 2 ;;
	-h | --help) usage ;;
	-*) echo "tributary-connect: unknown argument: $1" >&2; usage ;;
	*) connectors+=("$1"); shift ;;
	esac
done
[[ -n "$dir" && -n "$bootstrap" ]] || { echo "tributary-connect: --dir and --bootstrap are required" >&2; usage; }
((${#connectors[@]})) || { echo "tributary-connect: no connector properties file given" >&2; usage; }
[[ "$rest_port" =~ ^[0-9]+$ ]] || { echo "tributary-connect: not a number: $rest_port" >&2; exit 2; }
for s in "${sets[@]+"${sets[@]}"}"; do
	[[ "$s" == ?*=* ]] || { echo "tributary-connect: --set takes NAME=VALUE, not: $s" >&2; exit 2; }
done
names=()
for c in "${connectors[@]}"; do
	[[ -r "$c" ]] || { echo "tributary-connect: cannot read $c" >&2; exit 2; }
	name=$(sed -n 's/^[[:space:]]*name[[:space:]]*[=:][[:space:]]*//p' "$c" | tail -1)
	[[ -n "$name" ]] || { echo "tributary-connect: $c has no name=" >&2; exit 2; }
	names+=("$name")
done
command -v curl >/dev/null || { echo "tributary-connect: curl not found" >&2; exit 1; }
jvm_init tributary-connect "$LIB" 32m "$heap"

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
log="$dir/connect.log"
props="$dir/worker.properties"

# Plugins are found through their ServiceLoader manifests (Kafka's own
# connectors, converters and transforms have them): a full scan of the
# classpath's ~90 jars would add seconds to every start. A connector
# without manifests needs --set plugin.discovery=hybrid_warn.
# Offsets flushed every second: a test's sink file is complete sooner.
cat >"$props" <<PROPS
bootstrap.servers=$bootstrap
listeners=http://127.0.0.1:$rest_port
rest.advertised.host.name=127.0.0.1
rest.advertised.port=$rest_port
offset.storage.file.filename=$dir/offsets
offset.flush.interval.ms=1000
plugin.discovery=service_load
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
value.converter.schemas.enable=false
PROPS
for s in "${sets[@]+"${sets[@]}"}"; do printf '%s\n' "$s" >>"$props"; done

echo "tributary-connect: starting, REST on 127.0.0.1:$rest_port, log $log" >&2
jvm_start "$dir/connect.pid" "$log" org.apache.kafka.connect.cli.ConnectStandalone "$props" "${connectors[@]}"

# states NAME: the connector's state and its tasks', one a line (the REST
# status: {"name":…,"connector":{"state":…},"tasks":[{"id":0,"state":…}]}).
states() {
	curl -sf --max-time 2 "http://127.0.0.1:$rest_port/connectors/$1/status" |
		grep -o '"state":"[A-Z_]*"' | cut -d'"' -f4
}
start=$SECONDS
pending=("${names[@]}")
while ((${#pending[@]})); do
	if ! kill -0 "$JVM_PID" 2>/dev/null || ((SECONDS - start > ready_timeout)); then
		echo "tributary-connect: not running after $((SECONDS - start))s: ${pending[*]}; last lines of $log:" >&2
		tail -20 "$log" >&2
		jvm_stop
		jvm_finish 1
	fi
	left=()
	for name in "${pending[@]}"; do
		s=$(states "$name" || true)
		if grep -qx FAILED <<<"$s"; then
			echo "tributary-connect: connector $name FAILED; last lines of $log:" >&2
			tail -40 "$log" >&2
			jvm_stop
			jvm_finish 1
		fi
		# The connector and at least one task, all RUNNING.
		if [[ $(grep -cx RUNNING <<<"$s") -lt 2 || -n $(grep -vx RUNNING <<<"$s") ]]; then
			left+=("$name")
		fi
	done
	pending=("${left[@]+"${left[@]}"}")
	((${#pending[@]})) && sleep 0.2
done
JVM_READY=1
echo "tributary-connect: ready after $((SECONDS - start))s: ${names[*]} (pid $JVM_PID)"
jvm_finish
