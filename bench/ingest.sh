#!/usr/bin/env bash
# Ingest benchmark: MQTT publish -> plugin (parse, validate, produce) -> Kafka,
# beside bare Mosquitto (no plugin) in the same run.
#   msg/s with N connections at QoS 0 and 1 (1 KB example.order.placed);
#   publish-to-Kafka latency p50/p99 at a fixed 10k msg/s (plugin) and
#   publish-to-subscriber latency at the same rate (bare Mosquitto);
#   the same 10k msg/s from a freshly started broker (its first seconds);
#   the plugin's QoS 1 max rate and 10k msg/s p99 again on Apache Kafka
#   (one KRaft node, tools/kafka; BENCH_REAL_KAFKA=0 or no Java skips it),
#   beside bare Mosquitto again; then the journal: QoS 1 msg/s and p99 at 2k msg/s with sync always,
#   interval and never, beside no journal (BENCH_JOURNAL=0 skips it);
#   on Apache Kafka also the Schema Registry routes (docs/registry.md):
#   value_format confluent with a JSON Schema and with an Avro schema from
#   the dev registry, beside the catalog path on the same broker, QoS 1
#   max rate and p99 at 10k msg/s, the three taking turns
#   (BENCH_REGISTRY=0 skips them).
# Targets: plugin QoS 1 msg/s >= 80% of bare; p99 publish-to-Kafka <= 5 ms
# (on the dev Kafka and on Apache Kafka); journal `interval` within 10% of
# no journal; the registry routes within 10% of the catalog's msg/s and
# p99. Each plugin row of a pair is followed by its ratio to the
# bare row measured beside it.
# Each row also prints the broker's CPU per acknowledged message (all of
# Mosquitto's threads, librdkafka's included, and its main thread alone):
# the load generator, the broker and the dev Kafka share this machine's
# cores, so msg/s measures the whole; the CPU figures are the broker's own
# cost, what sizes a deployment whose clients and Kafka are elsewhere.
# Method: CPU from /proc/PID/task/*/schedstat (run time in ns) before and
# after each load-generator run, divided by the messages it saw
# acknowledged; medians of BENCH_REPS runs; bare and plugin in turns. The
# machine's load average is printed at the start and the end: on a shared
# machine compare only ratios from the same run. Before/after a change:
# run this twice in a row, once with BUILD pointing at a copy of build/
# whose mosquitto_tributary.so is the old one, and compare the ratios.
# p99 publish-to-Kafka on Apache Kafka also measures the dev Kafka's JVM
# (SerialGC, -Xms128m): at 10k msg/s it collects its young generation
# about twice a second, and on 2 busy cores (load average 13-16 from
# other work) its pauses reached 33-64 ms per 4-s run, which a p99 of
# 40,000 messages cannot hide. Measure them with
# JAVA_TOOL_OPTIONS=-Xlog:gc:file=F:uptimemillis set for start_real_kafka.
# On a quiet machine (load 2-4) the broker's young collections came every
# 0.3 s (a 34 MB young generation), 2-12 ms each and up to 44 ms, and the
# p99 was 15-19 ms against 3.8-4.0 ms on the mock in the same runs; with
# JAVA_TOOL_OPTIONS=-Xmn256m (about 100 MB young here: a third as many
# collections, each a little longer) it was 9.6 ms in one run. The p99 on
# Apache Kafka is the dev JVM's stop-the-world pauses on the same 2 cores,
# not the plugin's: a Kafka on cores of its own does not pay them.
set -euo pipefail
source "$(dirname "$0")/../tests/lib/stack.sh"
REPS=${BENCH_REPS:-3} SECS=${BENCH_SECONDS:-4} CONNS=${BENCH_CONNS:-10}
stack_init
start_kafka --topic events.order:3
# The ingest figures are without a journal (that is the journal section's).
export JOURNAL_SECTION=''
start_mosquitto "$ROOT/bench/ingest-journal.json.in"
bare_port=$((MQTT_PORT + 10))
cat >"$T/bare.conf" <<CONF
listener $bare_port 127.0.0.1
allow_anonymous true
persistence false
set_tcp_nodelay true
log_dest none
CONF
mosquitto -c "$T/bare.conf" &
bare_pid=$!
STACK_PIDS+=($bare_pid)
wait_port 127.0.0.1 "$bare_port" 10 || fail "bare mosquitto did not start"
LG="$BUILD/bench/ingest"
declare -A broker_pid=([$bare_port]=$bare_pid [$MQTT_PORT]=$MOSQUITTO_PID)

# CPU time (ns) a process has run, all its threads; or one thread (TID).
cpu_ns() { # PID [TID]
	local t sum=0 ns
	for t in /proc/$1/task/${2:-*}/schedstat; do
		read -r ns _ <"$t" 2>/dev/null && sum=$((sum + ns))
	done
	echo $sum
}
# run_lg PORT QOS ARGS...: the load generator's output, then
# cpu_us=<broker CPU per acked message> main_us=<its main thread's>.
run_lg() {
	local port=$1 pid=${broker_pid[$1]} out all0 main0 all1 main1 acked
	all0=$(cpu_ns "$pid") main0=$(cpu_ns "$pid" "$pid")
	out=$("$LG" --port "$port" --conns "$CONNS" --qos "$2" --seconds "$SECS" "${@:3}")
	all1=$(cpu_ns "$pid") main1=$(cpu_ns "$pid" "$pid")
	acked=$(echo "$out" | field acked)
	echo "$out" | awk -v a=$((all1 - all0)) -v m=$((main1 - main0)) -v n="${acked:-0}" \
		'{ printf "%s cpu_us=%.2f main_us=%.2f\n", $0, n ? a / n / 1000 : -1, n ? m / n / 1000 : -1 }'
}

# -1: no latency measured (max-rate runs measure throughput only, as the
# bare broker's do: no Kafka consumer or subscriber shares the cores then).
median() { sort -n | awk '{a[NR]=$1} END {m=a[int((NR+1)/2)]; print (NR==0 || m<0) ? "-" : m}'; }
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }
# A row's runs: one load-generator output line each, in a file per row.
rows="$T/rows"
rm -rf "$rows" && mkdir -p "$rows"
row_file() { echo "$rows/${1//[^a-zA-Z0-9]/_}"; } # label
column() { field "$1" <"$2" | median; }          # name file
print_row() { # label (its runs in row_file label)
	local f
	f=$(row_file "$1")
	printf '%-52s %10s msg/s   p50 %8s ms   p99 %8s ms' "$1" \
		"$(column msgs_per_s "$f")" "$(column p50_ms "$f")" "$(column p99_ms "$f")"
	if grep -q 'cpu_us=' "$f"; then
		printf '   broker CPU %6s us/msg (main thread %6s)' "$(column cpu_us "$f")" "$(column main_us "$f")"
	fi
	printf '\n'
}
# pair "LABEL_A" "PORT_A QOS ARGS..." "LABEL_B" "PORT_B QOS ARGS...": the two
# take turns, REPS runs each, so that drift on a shared machine hits both.
pair() {
	for _ in $(seq 1 "$REPS"); do
		run_lg $2 >>"$(row_file "$1")"
		run_lg $4 >>"$(row_file "$3")"
	done
	print_row "$1"
	print_row "$3"
	ratio "$3" "$1"
}
ratio() { # label baseline_label: msg/s of the one as a percentage of the other
	local a b
	a=$(column msgs_per_s "$(row_file "$1")") b=$(column msgs_per_s "$(row_file "$2")")
	[[ "$a" =~ ^[0-9.]+$ && "$b" =~ ^[0-9.]+$ ]] || return 0
	awk -v a="$a" -v b="$b" 'BEGIN { if (b > 0) printf "%52s %9.0f%% of bare msg/s\n", "", 100 * a / b }'
}
echo "ingest: $CONNS connections, 1 KB events, ${SECS}s x $REPS reps (medians; bare and plugin take turns)"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
trap 'rc=$?; echo "load average at the end: $(cut -d" " -f1-3 /proc/loadavg)"; (exit $rc); stack_exit' EXIT
for qos in 0 1; do
	pair "bare mosquitto, QoS $qos (max rate)" "$bare_port $qos" \
		"mosquitto + tributary, QoS $qos (max rate)" "$MQTT_PORT $qos"
done
pair "bare mosquitto, QoS 1 @10k msg/s (to subscriber)" "$bare_port 1 --rate 10000 --sub" \
	"mosquitto + tributary, QoS 1 @10k msg/s (to Kafka)" "$MQTT_PORT 1 --rate 10000 --kafka $KAFKA_BOOTSTRAP"

# The first seconds of a freshly started broker: its producer has not yet
# sent to the topic (librdkafka alone would learn its partitions at its next
# one-second topic scan; the plugin fetches the cluster's metadata at start).
label="mosquitto + tributary, QoS 1 @10k msg/s, just started"
for _ in $(seq 1 "$REPS"); do
	stop_mosquitto
	start_mosquitto "$ROOT/bench/ingest-journal.json.in"
	broker_pid[$MQTT_PORT]=$MOSQUITTO_PID
	run_lg "$MQTT_PORT" 1 --rate 10000 --kafka "$KAFKA_BOOTSTRAP" >>"$(row_file "$label")"
done
print_row "$label"

# The registry routes beside the catalog's, on one broker (Apache Kafka:
# the dev registry keeps its state there): the same 1 KB order events,
# validated against the catalog's example.order.placed, against the same
# JSON Schema from the registry (its order line inlined), and against an
# Avro schema of the same record (encoded to Avro binary); the three take
# turns, REPS runs each.
registry_rows() {
	echo
	echo "Schema Registry routes (value_format confluent) beside the catalog, on Apache Kafka"
	# (called in a list, as start_real_kafka: its own checks, not errexit)
	TEST_KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP start_registry || fail "the dev registry did not start"
	node -e 'const fs = require("fs");
const s = JSON.parse(fs.readFileSync(process.argv[1])), line = JSON.parse(fs.readFileSync(process.argv[2]));
delete s.$id; delete line.$id; delete line.$schema; s.properties.lines.items = line;
fs.writeFileSync(process.argv[3], JSON.stringify({ schemaType: "JSON", schema: JSON.stringify(s) }));
const avro = { type: "record", name: "OrderPlaced", namespace: "example.order", fields: [
  { name: "orderId", type: { type: "string", logicalType: "uuid" } }, { name: "customerId", type: "string" },
  { name: "total", type: "double" }, { name: "currency", type: "string" },
  { name: "lines", type: { type: "array", items: { type: "record", name: "Line",
    fields: [{ name: "sku", type: "string" }, { name: "qty", type: "int" }] } } }] };
fs.writeFileSync(process.argv[4], JSON.stringify({ schemaType: "AVRO", schema: JSON.stringify(avro) }));' \
		"$ROOT/schemas/events/example.order.placed.json" "$ROOT/schemas/common/order-line.json" \
		"$T/bench-json.req" "$T/bench-avro.req"
	local s
	for s in json avro; do
		curl -sf -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
			--data-binary "@$T/bench-$s.req" "$REGISTRY_URL/subjects/bench.$s-value/versions" >/dev/null ||
			fail "registering bench.$s-value"
	done
	stop_mosquitto
	local log0
	log0=$(wc -l <"$T/mosquitto.log")
	start_mosquitto "$ROOT/bench/ingest-registry.json.in"
	broker_pid[$MQTT_PORT]=$MOSQUITTO_PID
	local labels=("catalog, QoS 1" "registry JSON Schema, confluent, QoS 1" "registry Avro, confluent, QoS 1")
	local prefixes=(events/order events/benchjson events/benchavro) topics=(events.order bench.json bench.avro)
	local load i lbl
	for load in max 10k; do
		for _ in $(seq 1 "$REPS"); do
			for i in 0 1 2; do
				if [[ $load == max ]]; then
					run_lg "$MQTT_PORT" 1 --mqtt-prefix "${prefixes[i]}" >>"$(row_file "${labels[i]} (max rate)")"
				else
					run_lg "$MQTT_PORT" 1 --mqtt-prefix "${prefixes[i]}" --rate 10000 \
						--kafka "$KAFKA_BOOTSTRAP" --topic "${topics[i]}" --fetch-wait-ms 100 \
						>>"$(row_file "${labels[i]} @10k msg/s")"
				fi
			done
		done
		for i in 0 1 2; do
			lbl="${labels[i]} $([[ $load == max ]] && echo "(max rate)" || echo "@10k msg/s")"
			print_row "$lbl"
			((i)) && catalog_ratio "$lbl" "${labels[0]} $([[ $load == max ]] && echo "(max rate)" || echo "@10k msg/s")"
		done
	done
	# The events reached their topics, and none was refused.
	local t refused
	for t in "${topics[@]}"; do
		[[ -n "$(kcat -q -b "$KAFKA_BOOTSTRAP" -C -t "$t" -o -1 -e -f 'x\n')" ]] || fail "nothing reached $t"
	done
	refused=$(tail -n +$((log0 + 1)) "$T/mosquitto.log" | grep -c 'rejected event' || true)
	((refused == 0)) || { tail -n +$((log0 + 1)) "$T/mosquitto.log" | grep -m3 'rejected event' >&2; fail "$refused events refused"; }
}
catalog_ratio() { # label catalog_label: msg/s and p99 as percentages of the catalog's
	local f b
	f=$(row_file "$1") b=$(row_file "$2")
	awk -v a="$(column msgs_per_s "$f")" -v b="$(column msgs_per_s "$b")" \
		-v pa="$(column p99_ms "$f")" -v pb="$(column p99_ms "$b")" 'BEGIN {
		line = sprintf("%52s %9.0f%% of the catalog msg/s", "", b > 0 ? 100 * a / b : 0)
		if (pa ~ /^[0-9.]+$/ && pb + 0 > 0) line = line sprintf("   p99 %5.0f%% of the catalog p99", 100 * pa / pb)
		print line }'
}

# The same plugin on Apache Kafka (one KRaft node on this machine, beside
# the dev Kafka): a real broker's acks=all produce path, its log on disk.
# It has ports of its own: odd ones, as Linux gives outgoing connections
# even ports first (a TEST_PORT_BASE above 22000 puts these in its
# ephemeral range). The dev Kafka's rows come first, as before.
if [[ "${BENCH_REAL_KAFKA:-1}" == 1 ]] && command -v java >/dev/null; then
	echo
	echo "Apache Kafka (one KRaft node): the plugin beside bare mosquitto again"
	mock=("$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_BOOTSTRAP")
	export KAFKA_PORT=$((TEST_PORT_BASE + 9111)) KAFKA_CONTROLLER_PORT=$((TEST_PORT_BASE + 9113))
	export KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
	# (called in a list: its own checks, not errexit, stop it)
	start_real_kafka --topic events.order:3 --topic bench.json:3 --topic bench.avro:3 >/dev/null ||
		fail "Apache Kafka did not start"
	stop_mosquitto
	start_mosquitto "$ROOT/bench/ingest-journal.json.in"
	broker_pid[$MQTT_PORT]=$MOSQUITTO_PID
	pair "bare mosquitto, QoS 1 (max rate), again" "$bare_port 1" \
		"tributary on Apache Kafka, QoS 1 (max rate)" "$MQTT_PORT 1"
	pair "bare, QoS 1 @10k msg/s (to subscriber), again" "$bare_port 1 --rate 10000 --sub" \
		"tributary, QoS 1 @10k msg/s (to Apache Kafka)" "$MQTT_PORT 1 --rate 10000 --kafka $KAFKA_BOOTSTRAP --fetch-wait-ms 100"
	[[ "${BENCH_REGISTRY:-1}" == 1 ]] && registry_rows
	kafka_stop
	export KAFKA_PORT=${mock[0]} KAFKA_CONTROLLER_PORT=${mock[1]} KAFKA_BOOTSTRAP=${mock[2]}
fi

[[ "${BENCH_JOURNAL:-1}" == 1 ]] || exit 0
# The modes take turns within each repetition (a fresh broker and journal
# every time), so that drift on a shared machine does not favour one mode.
echo
echo "journal: QoS 1, $CONNS connections (max rate), and p99 at a fixed 2k msg/s; modes interleaved"
stop_mosquitto
modes=(none interval never always)
journal_label() { echo "journal $1, QoS 1 ($([[ $2 == max ]] && echo "max rate" || echo "@2k msg/s"))"; }
for _ in $(seq 1 "$REPS"); do
	for mode in "${modes[@]}"; do
		if [[ $mode == none ]]; then
			export JOURNAL_SECTION=''
		else
			export JOURNAL_SECTION="\"journal\": {\"dir\": \"$T/journal-$mode\", \"sync\": \"$mode\"},"
		fi
		rm -rf "$T/journal-$mode"
		export JOURNAL_DIR="$T/journal-$mode"
		start_mosquitto "$ROOT/bench/ingest-journal.json.in"
		for load in max 2k; do
			extra=()
			[[ $load == 2k ]] && extra=(--rate 2000 --kafka "$KAFKA_BOOTSTRAP")
			"$LG" --port "$MQTT_PORT" --conns "$CONNS" --qos 1 --seconds "$SECS" "${extra[@]}" \
				>>"$(row_file "$(journal_label "$mode" "$load")")"
		done
		stop_mosquitto
	done
done
for mode in "${modes[@]}"; do
	for load in max 2k; do
		print_row "$(journal_label "$mode" "$load")"
	done
done
