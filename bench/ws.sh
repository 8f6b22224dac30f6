#!/usr/bin/env bash
# MQTT over WebSocket through nginx's tributary_mqtt_pass, beside its
# baselines, in one run.
#
# Load: bench/wsload, the same for every path: each connection publishes
# WS_BENCH_SIZE-byte messages (default 1 KB) to its own subscription, 8 in
# flight; msg/s and the round trip (PUBLISH written -> delivered back) p50
# and p99. Cells: 1 and 100 connections x QoS 0 and 1. Paths:
#   module      ws://…:$HTTP_PORT/mqtt       the relay, to Mosquitto's
#                                            websockets listener (default)
#   module-tcp  ws://…:$HTTP_PORT/mqtt-tcp   the relay, tributary_mqtt_protocol
#                                            mqtt (Mosquitto's TCP listener)
#   stock       ws://…:$HTTP_PORT/mqtt-stock nginx's own WebSocket proxy
#                                            (proxy_pass, Upgrade/Connection,
#                                            proxy_buffering off) to the
#                                            websockets listener: the baseline
#   mosq-ws     ws://…:$MQTT_WS_PORT          the websockets listener, direct
#   tcp         mqtt://…:$MQTT_PORT           the TCP listener, direct
# module-tcp, mosq-ws and tcp are for reference only.
#
# Method: one nginx (2 workers) and one plain Mosquitto for the whole run.
# For each cell, WS_BENCH_REPS rounds (default 3); each round runs every
# path once, in turn, for WS_BENCH_SECONDS (default 2), so that a drift in
# the machine's load hits every path alike. A path's figure is the median
# of its rounds; ratios are taken between medians of the same run.
# Targets (issue 20): module >= 1.0x stock in msg/s and module p99 <= stock
# p99, in every cell. Also printed: nginx's CPU time per message (user +
# system of its workers over the round, /proc/PID/stat; "-" for the paths
# without nginx), which depends far less on what else the machine runs than
# msg/s and p99 do. On a shared machine the msg/s and p99 ratios move a lot
# between runs (on 2 cores shared with other jobs, 0.5x to 1.9x for the
# same build): run it more than once before concluding.
# Standalone (bench/run.sh calls it); needs build/ngx_http_tributary_module.so.
set -uo pipefail
source "$(dirname "$0")/../tests/lib/stack.sh"
stack_init
source "$ROOT/tests/lib/ws.sh"

secs=${WS_BENCH_SECONDS:-2}
reps=${WS_BENCH_REPS:-3}
size=${WS_BENCH_SIZE:-1024}
paths=(${WS_BENCH_PATHS:-module stock module-tcp mosq-ws tcp})
load="$BUILD/bench/wsload"
if [[ ! -x "$load" || "$ROOT/bench/wsload/wsload.c" -nt "$load" ]]; then
	mkdir -p "$BUILD/bench"
	cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror "$ROOT/bench/wsload/wsload.c" -o "$load" ||
		fail "cannot build wsload"
fi
[[ -f "$BUILD/ngx_http_tributary_module.so" ]] || fail "no $BUILD/ngx_http_tributary_module.so: run make"

ws_start_plain_mosquitto
ws_nginx_template "$T/nginx.conf.in" '
        location = /mqtt-tcp {
            tributary_mqtt_pass 127.0.0.1:@MQTT_PORT@;
            tributary_mqtt_protocol mqtt;
        }
        location = /mqtt-stock {
            proxy_pass http://127.0.0.1:@MQTT_WS_PORT@;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_buffering off;
            proxy_read_timeout 1h;
        }'
WEB_ROOT="$T" start_nginx "$T/nginx.conf.in"

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)]; else print 0 }'; }

# nginx_cpu: clock ticks used so far by nginx's workers
nginx_cpu() {
	local p f t=0
	for p in $(pgrep -P "$NGINX_PID"); do
		read -r -a f <"/proc/$p/stat" && t=$((t + f[13] + f[14]))
	done
	echo "$t"
}
tck=$(getconf CLK_TCK)

# run PATH CONNS QOS -> "msgs p50 p99 nginx_us_per_msg" of one round
run() {
	local args=() out c0 c1
	case $1 in
	tcp) args=(--port "$MQTT_PORT") ;;
	module) args=(--port "$HTTP_PORT" --ws /mqtt) ;;
	module-tcp) args=(--port "$HTTP_PORT" --ws /mqtt-tcp) ;;
	stock) args=(--port "$HTTP_PORT" --ws /mqtt-stock) ;;
	mosq-ws) args=(--port "$MQTT_WS_PORT" --ws /mqtt) ;;
	esac
	c0=$(nginx_cpu)
	out=$("$load" "${args[@]}" --conns "$2" --qos "$3" --size "$size" --seconds "$secs" --window 8 2>>"$T/wsload.err") ||
		{ echo "0 0 0 0"; return; }
	c1=$(nginx_cpu)
	read -r m a b <<<"$(sed -E 's/.*msgs_per_sec=([0-9]+).*p50_us=([0-9]+).*p99_us=([0-9]+).*/\1 \2 \3/' <<<"$out")"
	echo "$m $a $b $(awk -v t=$((c1 - c0)) -v k="$tck" -v n="$m" -v s="$secs" 'BEGIN { printf "%.2f", n ? t * 1e6 / k / (n * s) : 0 }')"
}

echo "MQTT over WebSocket: ${size}-byte messages, 8 in flight, ${reps} rounds of ${secs}s per cell, medians"
printf '%-10s %5s %3s | %10s %9s %9s %12s\n' path conns qos 'msg/s' 'p50 us' 'p99 us' 'nginx us/msg'
misses=0
for conns in 1 100; do
	for qos in 0 1; do
		declare -A m=() p50=() p99=() cpu=()
		for ((r = 0; r < reps; r++)); do
			for p in "${paths[@]}"; do
				read -r a b c d <<<"$(run "$p" "$conns" "$qos")"
				m[$p]+="$a "
				p50[$p]+="$b "
				p99[$p]+="$c "
				cpu[$p]+="$d "
			done
		done
		declare -A med=() med99=() medcpu=()
		for p in "${paths[@]}"; do
			med[$p]=$(tr ' ' '\n' <<<"${m[$p]}" | grep . | median)
			med99[$p]=$(tr ' ' '\n' <<<"${p99[$p]}" | grep . | median)
			medcpu[$p]=$(tr ' ' '\n' <<<"${cpu[$p]}" | grep . | median)
			case $p in mosq-ws | tcp) medcpu[$p]=- ;; esac
			printf '%-10s %5d %3d | %10d %9d %9d %12s\n' "$p" "$conns" "$qos" "${med[$p]}" \
				"$(tr ' ' '\n' <<<"${p50[$p]}" | grep . | median)" "${med99[$p]}" "${medcpu[$p]}"
		done
		if [[ -n "${med[module]:-}" && -n "${med[stock]:-}" ]]; then
			ratio=$(awk -v a="${med[module]}" -v b="${med[stock]}" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
			p99r=$(awk -v a="${med99[module]}" -v b="${med99[stock]}" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
			cpur=$(awk -v a="${medcpu[module]}" -v b="${medcpu[stock]}" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
			verdict=ok
			awk -v x="$ratio" -v y="$p99r" 'BEGIN { exit !(x >= 1.0 && y <= 1.0) }' || { verdict=MISS; misses=$((misses + 1)); }
			printf '  -> module / stock: msg/s %sx, p99 %sx [%s]; nginx CPU per message %sx\n' "$ratio" "$p99r" "$verdict" "$cpur"
		fi
		unset m p50 p99 cpu med med99 medcpu
	done
done
[[ -s "$T/wsload.err" ]] && { echo "wsload errors:"; cat "$T/wsload.err"; }
nginx_log_clean || fail "nginx error log has alerts or crashes"
echo "targets missed: $misses"
