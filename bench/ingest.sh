#!/usr/bin/env bash
# Ingest benchmark: MQTT publish -> plugin (parse, validate, produce) -> Kafka,
# beside bare Mosquitto (no plugin) in the same run.
#   msg/s with N connections at QoS 0 and 1 (1 KB example.order.placed);
#   publish-to-Kafka latency p50/p99 at a fixed 10k msg/s (plugin) and
#   publish-to-subscriber latency at the same rate (bare Mosquitto);
#   then the journal: QoS 1 msg/s and p99 at 2k msg/s with sync always,
#   interval and never, beside no journal (BENCH_JOURNAL=0 skips it).
# Targets: plugin QoS 1 msg/s >= 80% of bare; p99 publish-to-Kafka <= 5 ms;
# journal `interval` within 10% of no journal.
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
log_dest none
CONF
mosquitto -c "$T/bare.conf" &
STACK_PIDS+=($!)
wait_port 127.0.0.1 "$bare_port" 10 || fail "bare mosquitto did not start"
LG="$BUILD/bench/ingest"

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "n/a"; else print a[int((NR+1)/2)]}'; }
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }
run() { # label port qos extra...
	local label=$1 port=$2 qos=$3; shift 3
	local rates=() p50s=() p99s=()
	for _ in $(seq 1 "$REPS"); do
		out=$("$LG" --port "$port" --conns "$CONNS" --qos "$qos" --seconds "$SECS" "$@")
		rates+=("$(echo "$out" | field msgs_per_s)")
		p50s+=("$(echo "$out" | field p50_ms)")
		p99s+=("$(echo "$out" | field p99_ms)")
	done
	printf '%-44s %10s msg/s   p50 %8s ms   p99 %8s ms\n' "$label" \
		"$(printf '%s\n' "${rates[@]}" | median)" "$(printf '%s\n' "${p50s[@]}" | median)" \
		"$(printf '%s\n' "${p99s[@]}" | median)"
}
echo "ingest: $CONNS connections, 1 KB events, ${SECS}s x $REPS reps (medians)"
for qos in 0 1; do
	run "bare mosquitto, QoS $qos (max rate)" "$bare_port" $qos
	run "mosquitto + tributary, QoS $qos (max rate)" "$MQTT_PORT" $qos --kafka "$KAFKA_BOOTSTRAP"
done
run "bare mosquitto, QoS 1 @10k msg/s (to subscriber)" "$bare_port" 1 --rate 10000 --sub
run "mosquitto + tributary, QoS 1 @10k msg/s (to Kafka)" "$MQTT_PORT" 1 --rate 10000 --kafka "$KAFKA_BOOTSTRAP"

[[ "${BENCH_JOURNAL:-1}" == 1 ]] || exit 0
echo
echo "journal: QoS 1, $CONNS connections (max rate), and p99 at a fixed 2k msg/s"
stop_mosquitto
for mode in none always interval never; do
	if [[ $mode == none ]]; then
		export JOURNAL_SECTION=''
	else
		export JOURNAL_SECTION="\"journal\": {\"dir\": \"$T/journal-$mode\", \"sync\": \"$mode\"},"
	fi
	export JOURNAL_DIR="$T/journal-$mode"
	start_mosquitto "$ROOT/bench/ingest-journal.json.in"
	run "journal $mode, QoS 1 (max rate)" "$MQTT_PORT" 1 --kafka "$KAFKA_BOOTSTRAP"
	run "journal $mode, QoS 1 @2k msg/s" "$MQTT_PORT" 1 --rate 2000 --kafka "$KAFKA_BOOTSTRAP"
	stop_mosquitto
done
