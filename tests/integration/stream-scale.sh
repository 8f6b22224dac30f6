#!/usr/bin/env bash
# Fan-out at scale and under trouble:
#  - 5,000 concurrent SSE subscribers (2 workers) each get every record once;
#  - Kafka goes down while records are produced and comes back: the streams
#    go on with no gap and no duplicate;
#  - a subscriber that never reads is cut off (with a reason, logged) while
#    the others get everything, undelayed.
source "$(dirname "$0")/../lib/stack.sh"
source "$(dirname "$0")/stream-common.inc"
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
(($(ulimit -n) >= 12000)) || skip "needs ulimit -n >= 12000 (have $(ulimit -n))"
stack_init
# Apache Kafka of its own, stopped and restarted for the outage.
STREAM_KAFKA=own stream_start

SUBS=${STREAM_SUBS:-5000}
TOTAL=400
node "$NODE_DIR/stream-fanout.mjs" "http://127.0.0.1:$HTTP_PORT/all" "$SUBS" $TOTAL 120000 \
	>"$T/fanout.out" 2>"$T/fanout.err" &
fan=$!
stream_wait_subscribers "$SUBS" 60
pass "$SUBS subscribers connected"

# half the records, then the broker goes down while the rest are produced
seq 1 $((TOTAL / 2)) | sed 's/^/k:/' | produce -K:
sleep 1
kafka_stop
# -E: kcat would give up on "all brokers down"; librdkafka retries
( seq $((TOTAL / 2 + 1)) $TOTAL | sed 's/^/k:/' | produce -E -K: -X message.timeout.ms=60000 ) &
producer=$!
sleep 3
kafka_restart
wait $producer || fail "producer failed"

wait $fan || fail "fan-out: $(cat "$T/fanout.err")"
pass "$SUBS subscribers got all $TOTAL records exactly once across a Kafka outage ($(tail -1 "$T/fanout.out") ms)"
stream_wait_subscribers 0 5 || true

# --- a subscriber that never reads ------------------------------------------
# bash holds the socket and never reads it; the socket buffers fill (16k
# sndbuf on that listener), then nginx's 64k for it, and it must be cut off
exec 7<>"/dev/tcp/127.0.0.1/$STREAM_SLOW_PORT"
printf 'GET /all HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n' >&7
FAST=20 BIG=3000
node "$NODE_DIR/stream-fanout.mjs" "http://127.0.0.1:$STREAM_SLOW_PORT/all" $FAST $BIG 60000 \
	>"$T/fast.out" 2>"$T/fast.err" &
fast=$!
stream_wait_subscribers $((FAST + 1)) 20
# "Live from now" starts at the position a stream announces in its first
# line: wait until every fast subscriber has it.
wait_log "$T/fast.out" "^connected $FAST" 20 || fail "fast subscribers did not get their start position"
# 3000 records of 1 KB: 3 MB for each subscriber, in about 3 s, in bursts of
# 20 KB (a burst larger than the socket buffer plus the 64 KB output limit
# would rightly cut off any subscriber that is busy for a moment)
pad=$(head -c 1000 /dev/zero | tr '\0' x)
seq 1 $BIG | awk -v pad="$pad" '{ print "k:" $1 " " pad; if ($1 % 20 == 0) system("sleep 0.02") }' |
	produce -K:
started=$(date +%s%N)
wait $fast || fail "fast subscribers next to a stuck one: $(cat "$T/fast.err")"
elapsed=$((($(date +%s%N) - started) / 1000000))
wait_log "$NGINX_PREFIX/logs/error.log" 'tributary_stream: subscriber cut off: slow consumer' 5 ||
	fail "the stuck subscriber was not cut off"
cutoffs=$(stream_metric tributary_stream_slow_cutoffs_total)
dropped=$(stream_metric tributary_stream_events_dropped_total)
((cutoffs == 1 && dropped >= 1)) || fail "status: cutoffs=$cutoffs dropped=$dropped"
# nginx closed the stuck one's connection: reading it now reaches EOF
timeout 10 cat <&7 >"$T/stuck.out" || fail "the stuck subscriber's connection stays open"
exec 7<&-
pass "stuck subscriber cut off (cutoffs=$cutoffs, events dropped=$dropped); $FAST others got all $BIG records, the last ${elapsed} ms after production ended"

nginx_log_clean || fail "nginx error log has alerts"
