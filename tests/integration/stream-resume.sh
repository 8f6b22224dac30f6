#!/usr/bin/env bash
# Exact resume: clients disconnect and come back (Last-Event-ID, ?from=,
# and the EventSource's own reconnect across an nginx reload) while records
# are being produced on all partitions, and must see every record they are
# entitled to exactly once; from=beginning replays the whole history.
source "$(dirname "$0")/../lib/stack.sh"
source "$(dirname "$0")/stream-common.inc"
stack_init
stream_start

TOTAL=900
node "$NODE_DIR/stream-resume.mjs" "http://127.0.0.1:$HTTP_PORT/all" $TOTAL 1 0 60000 \
	>"$T/all.out" 2>"$T/all.err" &
c_all=$!
# a filtered one: key k3 is one partition, the id still covers all four
node "$NODE_DIR/stream-resume.mjs" "http://127.0.0.1:$HTTP_PORT/notifications?user=k3" $TOTAL 8 3 60000 \
	>"$T/k3.out" 2>"$T/k3.err" &
c_k3=$!
stream_wait_subscribers 2

# the producer: keys k0..k7 spread over the 4 partitions, in batches of 30
# (kcat -P produces only once its stdin ends: one kcat a batch)
produce_batches() { # FIRST LAST
	local b n
	for ((b = $1; b <= $2; b += 30)); do
		for ((n = b; n < b + 30 && n <= $2; n++)); do echo "k$((n % 8)):$n"; done | produce -K:
		sleep 0.1
	done
}
produce_batches 1 $((TOTAL * 3 / 4)) &
producer=$!

# the clients close and resume at 1/3 and 2/3 while this goes on; once
# both are in phase 3, nginx reloads: the old workers close their streams
# and the EventSources reconnect by themselves, with Last-Event-ID, to the
# new workers, and get the rest
for _ in $(seq 1 300); do
	grep -q phase3 "$T/all.out" && grep -q phase3 "$T/k3.out" && break
	sleep 0.05
done
grep -q phase3 "$T/all.out" || fail "client did not reach phase 3: $(cat "$T/all.err")"
wait $producer || fail "producer failed"
kill -HUP "$NGINX_PID"
sleep 1
produce_batches $((TOTAL * 3 / 4 + 1)) $TOTAL

wait $c_all || fail "unfiltered client: $(cat "$T/all.err")"
wait $c_k3 || fail "filtered client: $(cat "$T/k3.err")"
for f in all k3; do
	conns=$(sed -n 's/^ok .* \([0-9]*\) connections.*/\1/p' "$T/$f.out")
	((conns >= 4)) || fail "$f: the EventSource did not reconnect after the reload ($conns connections)"
done
pass "resume across disconnects and a reload: $(tail -1 "$T/all.out"); k3: $(tail -1 "$T/k3.out")"
grep -q 'tributary_stream: topic "notifications".*live from' "$NGINX_PREFIX/logs/error.log" || fail "no live consumer"

# history from the beginning, across all partitions, exactly once
node "$NODE_DIR/stream-client.mjs" sse "http://127.0.0.1:$HTTP_PORT/all?from=beginning" $TOTAL 30000 \
	>"$T/history.jsonl" 2>"$T/history.err" || fail "from=beginning: $(cat "$T/history.err")"
node_check "$T/history.jsonl" "
const ns = lines.map((l) => Number(l.data));
assert(new Set(ns).size === $TOTAL, 'distinct: ' + new Set(ns).size);
assert(ns.every((n) => n >= 1 && n <= $TOTAL), 'range');
// per key (= per partition) the order is the production order
const last = {};
for (const n of ns) { const k = n % 8; assert(!(last[k] > n), 'order of key ' + k); last[k] = n; }
"
# ... and nothing after it: a resumed id at the end gets no old record
last_id=$(node -e "const l=require('fs').readFileSync('$T/history.jsonl','utf8').trim().split('\n').pop(); console.log(JSON.parse(l).id)")
node "$NODE_DIR/stream-client.mjs" sse "http://127.0.0.1:$HTTP_PORT/all" 0 2000 "$last_id" \
	>"$T/after.jsonl" 2>"$T/after.err" || fail "resume at the end: $(cat "$T/after.err")"
[[ ! -s "$T/after.jsonl" ]] || fail "resuming at the end replayed: $(head -3 "$T/after.jsonl")"
pass "from=beginning: all $TOTAL records once, in per-key order; resuming at its end repeats none"

# a position past the end of partition 3 (a stale Last-Event-ID, a topic
# recreated since): Kafka's offset out of range. The stream says where it
# restarts (the end) and delivers what comes next, instead of staying silent.
end3=${last_id##*p3:o}
stale="${last_id%p3:o*}p3:o$((end3 + 1000))"
SSE_TYPES=reset stream_client stale-sse sse "http://127.0.0.1:$HTTP_PORT/all" 2 20000 "$stale" &
c_sse=$!
stream_client stale-ws ws "ws://127.0.0.1:$HTTP_PORT/all?from=$stale" 2 20000 &
c_ws=$!
# tributary_stream_reset beginning: the partition's first record next
stream_client stale-start ws "ws://127.0.0.1:$HTTP_PORT/all-from-start?from=$stale" 2 20000 &
c_start=$!
# The record below must come after the two stale clients' resets (a reset
# fixes where their stream goes on). Wait for exactly that, not for 3 open
# subscribers: stale-start gets its 2 events (reset, p3's first record) at
# once and may be gone already.
for f in stale-sse stale-ws; do
	for _ in $(seq 1 200); do
		[[ -s "$T/$f.jsonl" ]] && break
		sleep 0.1
	done
	[[ -s "$T/$f.jsonl" ]] || fail "$f: no reset in 20 s: $(cat "$T/$f.err")"
done
echo "x:after-reset" | produce -K: -p 3
wait $c_sse || fail "stale Last-Event-ID: $(cat "$T/stale-sse.err")"
wait $c_ws || fail "stale ?from=: $(cat "$T/stale-ws.err")"
wait $c_start || fail "stale ?from=, reset to the beginning: $(cat "$T/stale-start.err")"
node_check "$T/stale-sse.jsonl" "
assert(lines[0].type === 'reset' && lines[0].data === 'p3:o$end3', 'reset event: ' + JSON.stringify(lines[0]));
assert(lines[0].id === '${last_id}', 'reset id: ' + lines[0].id);
assert(lines[1].data === 'after-reset' && lines[1].id.endsWith('p3:o$((end3 + 1))'), 'then the record: ' + JSON.stringify(lines[1]));
"
node_check "$T/stale-ws.jsonl" "
assert(lines[0].reset === 'p3:o$end3' && lines[0].streamposition === '${last_id}', 'reset message: ' + JSON.stringify(lines[0]));
assert(lines[1].data === 'after-reset', 'then the record: ' + JSON.stringify(lines[1]));
"
first3=$(kcat -q -b "$KAFKA_BOOTSTRAP" "${KCAT_CONSUME[@]}" -C -t notifications -p 3 -o beginning -c 1 -f '%s' 2>>"$T/kcat.log")
node_check "$T/stale-start.jsonl" "
assert(lines[0].reset === 'p3:o0' && lines[0].streamposition === '${last_id%p3:o*}p3:o0', 'reset message: ' + JSON.stringify(lines[0]));
assert(String(lines[1].data) === '$first3' && lines[1].streamposition.endsWith('p3:o1'), 'then the first record of p3 ($first3): ' + JSON.stringify(lines[1]));
"
grep -q "position p3:o$((end3 + 1000)) is past the end of partition 3 of \"notifications\", which goes on at o$end3" \
	"$NGINX_PREFIX/logs/error.log" || fail "no log line for the reset"
pass "a position past a partition's end: 'reset' event (SSE) / message (WebSocket) with p3:o$end3, then new records; with tributary_stream_reset beginning p3:o0, then p3's first record"

nginx_log_clean || fail "nginx error log has alerts"
