#!/usr/bin/env bash
# MQTT over WebSocket through nginx's tributary_mqtt_pass, beside its
# baselines, in one run: the same MQTT load (bench/wsload: each connection
# publishes 1 KB messages to its own subscription, 8 in flight) over
#   module  ws://127.0.0.1:$HTTP_PORT/mqtt  nginx relay -> Mosquitto TCP
#   mosq-ws ws://127.0.0.1:$MQTT_WS_PORT    Mosquitto's own websockets listener
#   tcp     mqtt://127.0.0.1:$MQTT_PORT     direct TCP (the ceiling)
# for 1 and 100 connections at QoS 0 and 1. Each cell is the median of
# WS_BENCH_REPS runs of WS_BENCH_SECONDS seconds: msg/s and round-trip
# latency p50/p99. Targets: module >= 3x mosq-ws and >= 80% of tcp (msg/s).
# Standalone (bench/run.sh calls it); needs build/ngx_http_tributary_module.so.
set -uo pipefail
source "$(dirname "$0")/../tests/lib/stack.sh"
stack_init
source "$ROOT/tests/lib/ws.sh"

secs=${WS_BENCH_SECONDS:-2}
reps=${WS_BENCH_REPS:-3}
size=${WS_BENCH_SIZE:-1024}
load="$BUILD/bench/wsload"
if [[ ! -x "$load" || "$ROOT/bench/wsload/wsload.c" -nt "$load" ]]; then
	mkdir -p "$BUILD/bench"
	cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror "$ROOT/bench/wsload/wsload.c" -o "$load" ||
		fail "cannot build wsload"
fi
[[ -f "$BUILD/ngx_http_tributary_module.so" ]] || fail "no $BUILD/ngx_http_tributary_module.so: run make"

ws_start_plain_mosquitto websockets
wait_port 127.0.0.1 "$MQTT_WS_PORT" 10 || fail "Mosquitto websockets listener did not start"
WEB_ROOT="$T" start_nginx

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print 0 }'; }

# cell TRANSPORT CONNS QOS -> "msgs p50 p99" (medians)
cell() {
	local args=() r out m=() p50=() p99=()
	case $1 in
	tcp) args=(--port "$MQTT_PORT") ;;
	module) args=(--port "$HTTP_PORT" --ws /mqtt) ;;
	mosq-ws) args=(--port "$MQTT_WS_PORT" --ws /mqtt) ;;
	esac
	for ((r = 0; r < reps; r++)); do
		out=$("$load" "${args[@]}" --conns "$2" --qos "$3" --size "$size" --seconds "$secs" --window 8 2>>"$T/wsload.err") ||
			{ echo "0 0 0"; return; }
		m+=("$(sed -E 's/.*msgs_per_sec=([0-9]+).*/\1/' <<<"$out")")
		p50+=("$(sed -E 's/.*p50_us=([0-9]+).*/\1/' <<<"$out")")
		p99+=("$(sed -E 's/.*p99_us=([0-9]+).*/\1/' <<<"$out")")
	done
	echo "$(printf '%s\n' "${m[@]}" | median) $(printf '%s\n' "${p50[@]}" | median) $(printf '%s\n' "${p99[@]}" | median)"
}

echo "MQTT over WebSocket: ${size}-byte messages, ${reps}x${secs}s per cell, medians"
printf '%-7s %5s %3s | %10s %9s %9s\n' transport conns qos 'msg/s' 'p50 us' 'p99 us'
misses=0
for conns in 1 100; do
	for qos in 0 1; do
		declare -A res=()
		for tr in module mosq-ws tcp; do
			res[$tr]=$(cell "$tr" "$conns" "$qos")
			read -r m p50 p99 <<<"${res[$tr]}"
			printf '%-7s %5d %3d | %10d %9d %9d\n' "$tr" "$conns" "$qos" "$m" "$p50" "$p99"
		done
		read -r mm _ <<<"${res[module]}"
		read -r mw _ <<<"${res[mosq-ws]}"
		read -r mt _ <<<"${res[tcp]}"
		vs_ws=$(awk -v a="$mm" -v b="$mw" 'BEGIN { printf "%.1f", b ? a / b : 0 }')
		vs_tcp=$(awk -v a="$mm" -v b="$mt" 'BEGIN { printf "%.0f", b ? 100 * a / b : 0 }')
		verdict=ok
		awk -v x="$vs_ws" -v y="$vs_tcp" 'BEGIN { exit !(x >= 3 && y >= 80) }' || { verdict=MISS; misses=$((misses + 1)); }
		printf '  -> module = %sx mosquitto websockets, %s%% of direct TCP [%s]\n' "$vs_ws" "$vs_tcp" "$verdict"
	done
done
[[ -s "$T/wsload.err" ]] && { echo "wsload errors:"; cat "$T/wsload.err"; }
nginx_log_clean || fail "nginx error log has alerts or crashes"
echo "targets missed: $misses"
