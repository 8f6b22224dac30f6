#!/usr/bin/env bash
# Kafka fan-out to SSE subscribers: tributary_stream beside nchan, in one
# run, the same nginx (2 workers) serving both. For 1,000 and 10,000
# subscribers (STREAM_BENCH_SUBS), STREAM_BENCH_EVENTS events (1,000) at
# STREAM_BENCH_RATE_<N>/s (about 100k deliveries/s offered at either size):
#   tributary  bench/streamprod -> Kafka (dev mock) -> tributary_stream -> EventSource
#   nchan      HTTP POST to nchan_publisher -> nchan eventsource subscribers
# Method: each event carries its send time; every subscriber's receipt of it
# is one latency sample (subscribers x events samples per run). The
# percentiles are over those samples, but the samples of one event are
# alike (they share its trip through Kafka or nchan), so what the p99 sees
# is the slowest ~1% of the events: with 100 events that was the single
# slowest one. 1,000 events make the p99 the 10th slowest event, the p50 the
# median event. The two systems run in turns, BENCH_REPS times (3); each
# figure is the median of the runs, and tributary's row is followed by its
# ratio to nchan's (events/s: higher is better; p50, p99: lower is better).
# At the defaults a run takes ~11 minutes (10,000 subscribers get 10
# events/s: 100 s per run).
# Prints delivered events/s and produce-to-receive latency p50/p99 (ms).
# Target: tributary delivers at least nchan's rate, latency no worse.
# Standalone (bench/run.sh calls it); needs build/ngx_http_tributary_module.so.
set -uo pipefail
source "$(dirname "$0")/../tests/lib/stack.sh"
ulimit -n 40000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
stack_init

events=${STREAM_BENCH_EVENTS:-1000} reps=${BENCH_REPS:-3}
[[ -f "$BUILD/ngx_http_tributary_module.so" ]] || fail "no $BUILD/ngx_http_tributary_module.so: run make"
[[ -f /usr/lib/nginx/modules/ngx_nchan_module.so ]] || skip "nchan not installed (libnginx-mod-nchan)"
prod="$BUILD/bench/streamprod"
if [[ ! -x "$prod" || "$ROOT/bench/streamprod/streamprod.c" -nt "$prod" ]]; then
	mkdir -p "$BUILD/bench"
	cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror "$ROOT/bench/streamprod/streamprod.c" -o "$prod" -lrdkafka ||
		fail "cannot build streamprod"
fi

start_kafka --topic bench:4
start_nginx "$ROOT/bench/stream-nginx.conf.in"
for _ in $(seq 1 100); do
	(($(grep -c 'topic "bench".*live from' "$NGINX_PREFIX/logs/error.log") >= 2)) && break
	sleep 0.1
done

client="$ROOT/bench/stream-client.mjs"
median() { sort -n | awk '{a[NR]=$1} END {print NR ? a[int((NR+1)/2)] : "n/a"}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'; }
col() { # file key: that key of each JSON line
	node -e 'for (const l of require("fs").readFileSync(process.argv[1], "utf8").split("\n"))
	  if (l) console.log(JSON.parse(l)[process.argv[2]]);' "$1" "$2"
}
echo "stream: $events events per run, $reps runs per row (medians); load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-10s %7s %7s %12s %9s %9s\n' system subs events 'events/s' 'p50 ms' 'p99 ms'
for subs in ${STREAM_BENCH_SUBS:-1000 10000}; do
	rate_var=STREAM_BENCH_RATE_$subs
	# about 100k deliveries/s offered at either size
	rate=${!rate_var:-$((100000 / subs))}
	for sys in tributary nchan; do : >"$T/$sys-$subs.jsonl"; done
	for _ in $(seq 1 "$reps"); do
		for sys in tributary nchan; do
			if [[ $sys == tributary ]]; then
				out=$(node "$client" kafka "http://127.0.0.1:$HTTP_PORT/stream" "$subs" "$events" "$rate" \
					"$prod $KAFKA_BOOTSTRAP bench" 2>>"$T/client.err")
			else
				out=$(node "$client" nchan "http://127.0.0.1:$HTTP_PORT/nchan/sub" "$subs" "$events" "$rate" \
					"http://127.0.0.1:$HTTP_PORT/nchan/pub" 2>>"$T/client.err")
			fi
			echo "$out" >>"$T/results.jsonl"
			[[ "$out" == *'"complete":true'* ]] || echo "warning: $sys, $subs subscribers: incomplete run: $out" >&2
			[[ -n "$out" ]] && echo "$out" >>"$T/$sys-$subs.jsonl"
			sleep 1
		done
	done
	declare -A med=()
	for sys in tributary nchan; do
		for k in events_per_s p50_ms p99_ms; do med[$sys.$k]=$(col "$T/$sys-$subs.jsonl" "$k" | median); done
		printf '%-10s %7s %7s %12s %9s %9s\n' "$sys" "$subs" "$events" "${med[$sys.events_per_s]}" \
			"${med[$sys.p50_ms]}" "${med[$sys.p99_ms]}"
	done
	printf '%-10s %7s %7s %12s %9s %9s\n' "  ratio" "" "" "$(ratio "${med[tributary.events_per_s]}" "${med[nchan.events_per_s]}")x" \
		"$(ratio "${med[tributary.p50_ms]}" "${med[nchan.p50_ms]}")x" "$(ratio "${med[tributary.p99_ms]}" "${med[nchan.p99_ms]}")x"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
nginx_log_clean || echo "warning: nginx logged alerts" >&2
