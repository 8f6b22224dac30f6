#!/usr/bin/env bash
# Kafka fan-out to SSE subscribers: tributary_stream beside nchan, in one
# run, the same nginx (2 workers) serving both. For 1,000 and 10,000
# subscribers, STREAM_BENCH_EVENTS events at STREAM_BENCH_RATE_<N>/s:
#   tributary  bench/streamprod -> Kafka (dev mock) -> tributary_stream -> EventSource
#   nchan      HTTP POST to nchan_publisher -> nchan eventsource subscribers
# Prints delivered events/s and produce-to-receive latency p50/p99 (ms).
# Target: tributary delivers at least nchan's rate, latency no worse.
# Standalone (bench/run.sh calls it); needs build/ngx_http_tributary_module.so.
set -uo pipefail
source "$(dirname "$0")/../tests/lib/stack.sh"
ulimit -n 40000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
stack_init

events=${STREAM_BENCH_EVENTS:-100}
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
printf '%-10s %7s %7s %12s %9s %9s\n' system subs events 'events/s' 'p50 ms' 'p99 ms'
for subs in 1000 10000; do
	rate_var=STREAM_BENCH_RATE_$subs
	# about 100k deliveries/s offered at either size
	rate=${!rate_var:-$((100000 / subs))}
	for sys in tributary nchan; do
		if [[ $sys == tributary ]]; then
			out=$(node "$client" kafka "http://127.0.0.1:$HTTP_PORT/stream" "$subs" "$events" "$rate" \
				"$prod $KAFKA_BOOTSTRAP bench" 2>>"$T/client.err")
		else
			out=$(node "$client" nchan "http://127.0.0.1:$HTTP_PORT/nchan/sub" "$subs" "$events" "$rate" \
				"http://127.0.0.1:$HTTP_PORT/nchan/pub" 2>>"$T/client.err")
		fi
		echo "$out" >>"$T/results.jsonl"
		node -e '
const r = JSON.parse(process.argv[1] || "{}");
const f = (s, w) => String(s).padStart(w);
console.log(process.argv[2].padEnd(10) + f(r.subs, 8) + f(r.events, 8) + f(r.events_per_s, 13) + f(r.p50_ms, 10) + f(r.p99_ms, 10) + (r.complete ? "" : "  INCOMPLETE " + r.delivered));
' "$out" "$sys"
		sleep 1
	done
done
nginx_log_clean || echo "warning: nginx logged alerts" >&2
