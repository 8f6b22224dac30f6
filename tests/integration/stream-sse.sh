#!/usr/bin/env bash
# tributary_stream over SSE and WebSocket: binary-mode, structured and plain
# records produced with kcat reach curl, EventSource (npm eventsource) and
# WebSocket clients as CloudEvents; key and type filters hold (alice never
# sees bob's events); bad positions and missing keys are refused.
source "$(dirname "$0")/../lib/stack.sh"
source "$(dirname "$0")/stream-common.inc"
stack_init
stream_start

URL="http://127.0.0.1:$HTTP_PORT/notifications"
export SSE_TYPES=com.example.note,com.example.s,com.example.bin,com.example.big

# --- refusals ------------------------------------------------------------
code=$(curl -s -o "$T/bad.txt" -w '%{http_code}' "$URL?user=alice&from=p0:x")
[[ $code == 400 ]] || fail "malformed ?from= gave $code"
grep -q 'invalid stream position' "$T/bad.txt" || fail "400 without a message: $(cat "$T/bad.txt")"
code=$(curl -s -o "$T/bad2.txt" -w '%{http_code}' -H 'Last-Event-ID: p0:o1,p0:o2' "$URL?user=alice")
[[ $code == 400 ]] || fail "repeated partition in Last-Event-ID gave $code"
grep -q 'repeated' "$T/bad2.txt" || fail "no reason for the 400: $(cat "$T/bad2.txt")"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL")
[[ $code == 403 ]] || fail "no key (no ?user=) gave $code, not 403"
pass "bad positions -> 400 with a reason, no key -> 403"

# a WebSocket version other than 13: 426 with the reason phrase and the
# version we speak (RFC 6455 4.4), as on /mqtt
curl -s -o /dev/null -D "$T/ws8.headers" -H 'Connection: Upgrade' -H 'Upgrade: websocket' \
	-H 'Sec-WebSocket-Version: 8' -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' \
	"$URL?user=alice"
grep -q $'^HTTP/1.1 426 Upgrade Required\r$' "$T/ws8.headers" || fail "version 8: $(head -1 "$T/ws8.headers")"
grep -qi $'^sec-websocket-version: 13\r$' "$T/ws8.headers" || fail "version 8: no Sec-WebSocket-Version: 13: $(cat "$T/ws8.headers")"
pass "WebSocket version 8 -> 426 Upgrade Required with Sec-WebSocket-Version: 13"

# --- subscribers -----------------------------------------------------------
node "$NODE_DIR/stream-client.mjs" sse "$URL?user=alice" 3 20000 >"$T/alice.jsonl" 2>"$T/alice.err" &
alice=$!
node "$NODE_DIR/stream-client.mjs" sse "$URL?user=bob" 2 20000 >"$T/bob.jsonl" 2>"$T/bob.err" &
bob=$!
node "$NODE_DIR/stream-client.mjs" sse "$URL?user=alice&type=com.example.note" 1 20000 \
	>"$T/alice-note.jsonl" 2>"$T/alice-note.err" &
note=$!
node "$NODE_DIR/stream-client.mjs" ws "ws://127.0.0.1:$HTTP_PORT/notifications?user=alice" 3 20000 \
	>"$T/alice-ws.jsonl" 2>"$T/alice-ws.err" &
ws=$!
curl -sN -m 8 -D "$T/curl.headers" "$URL?user=alice" >"$T/curl.out" &
curlpid=$!
stream_wait_subscribers 5

# binary mode: ce_ headers + JSON value
echo '{"n":1}' | produce -k alice -H ce_specversion=1.0 -H ce_type=com.example.note \
	-H ce_id=a1 -H ce_source=/tests -H content-type=application/json
# plain records: no CloudEvents headers at all
printf 'bob:plain for bob\nalice:plain for alice\n' | produce -K:
# structured mode
echo '{"specversion":"1.0","type":"com.example.s","id":"s1","source":"/tests","data":{"n":3}}' |
	produce -k alice -H content-type=application/cloudevents+json
echo '{"specversion":"1.0","type":"com.example.s","id":"s2","source":"/tests","data":{"secret":"bob"}}' |
	produce -k bob -H content-type=application/cloudevents+json

for p in $alice $bob $note $ws; do
	wait $p || fail "a client did not get its events (see $T/*.err)"
done
wait $curlpid

node_check "$T/alice.jsonl" "
assert(lines.length === 3, 'alice got ' + lines.length);
const byId = Object.fromEntries(lines.map((l) => [l.type, l]));
const b = JSON.parse(byId['com.example.note'].data);
assert(b.specversion === '1.0' && b.id === 'a1' && b.source === '/tests' && b.data.n === 1, 'binary mode: ' + byId['com.example.note'].data);
assert(b.datacontenttype === 'application/json' && b.partitionkey === 'alice', 'binary attrs');
assert(byId['message'].data === 'plain for alice', 'plain record: ' + byId['message'].data);
const s = JSON.parse(byId['com.example.s'].data);
assert(s.id === 's1' && s.data.n === 3, 'structured: ' + byId['com.example.s'].data);
assert(!lines.some((l) => /bob/.test(l.data)), 'alice saw bob');
for (const l of lines) assert(/^p0:o[0-9]+,p1:o[0-9]+,p2:o[0-9]+,p3:o[0-9]+$/.test(l.id), 'id ' + l.id);
"
node_check "$T/bob.jsonl" "
assert(lines.length === 2, 'bob got ' + lines.length);
assert(lines.some((l) => l.data === 'plain for bob'), 'bob plain');
assert(lines.some((l) => l.type === 'com.example.s' && JSON.parse(l.data).id === 's2'), 'bob structured');
assert(!lines.some((l) => /alice/.test(l.data)), 'bob saw alice');
"
node_check "$T/alice-note.jsonl" "
assert(lines.length === 1 && lines[0].type === 'com.example.note', 'type filter: ' + JSON.stringify(lines));
"
node_check "$T/alice-ws.jsonl" "
assert(lines.length === 3, 'ws got ' + lines.length);
assert(lines.every((l) => /^p0:o[0-9]+,p1:o[0-9]+,p2:o[0-9]+,p3:o[0-9]+$/.test(l.streamposition)), 'ws position');
assert(lines.some((l) => l.type === 'com.example.note' && l.data.n === 1), 'ws binary');
assert(lines.some((l) => l.data === 'plain for alice' && l.type === undefined), 'ws plain');
assert(lines.some((l) => l.type === 'com.example.s' && l.id === 's1'), 'ws structured');
"
pass "EventSource and WebSocket clients get binary, structured and plain records; filters hold"

# One rule for every reader of records (CloudEvents Kafka binding, shared
# with the plugin): binary mode needs ce_specversion; structured mode is the
# media type application/cloudevents+json, parameters allowed, checked before
# any ce_ header; a binary record whose ce_ headers are not a valid event is
# sent as a plain record, logged and counted.
not_events=$(stream_metric tributary_stream_records_not_events_total)
stream_client carol sse "$URL?user=carol" 5 20000 &
carol=$!
stream_client carol-ws ws "ws://127.0.0.1:$HTTP_PORT/notifications?user=carol" 5 20000 &
carol_ws=$!
stream_wait_subscribers 2
echo 'no specversion' | produce -k carol -H ce_type=com.example.note -H ce_id=c1
echo '{"specversion":"1.0","type":"com.example.s","id":"c2","source":"/tests","data":{"n":2}}' |
	produce -k carol -H 'content-type=application/cloudevents+json; charset=utf-8' \
		-H ce_specversion=1.0 -H ce_type=com.example.note -H ce_id=stale
echo '{"n":3}' | produce -k carol -H ce_specversion=1.0 -H ce_type=com.example.note -H ce_id=c3 \
	-H ce_source=/tests -H $'ce_subject=\xff' -H content-type=application/json
# bytes that are not UTF-8: the event carries them as data_base64
printf '\xff\xfe\x01\n' | produce -k carol -H ce_specversion=1.0 -H ce_type=com.example.bin -H ce_id=c4 \
	-H ce_source=/tests -H content-type=application/octet-stream
# an integer beyond 64 bits: JSON all the same (the data parsed once, by
# shared/cloudevents; jansson alone refuses such integers)
echo '{"big":123456789012345678901234567890}' | produce -k carol -H ce_specversion=1.0 \
	-H ce_type=com.example.big -H ce_id=c5 -H ce_source=/tests -H content-type=application/json
wait $carol || fail "carol's SSE client: $(cat "$T/carol.err")"
wait $carol_ws || fail "carol's WebSocket client: $(cat "$T/carol-ws.err")"
node_check "$T/carol.jsonl" "
assert(lines[0].type === 'message' && lines[0].data === 'no specversion', 'ce_type without ce_specversion: ' + JSON.stringify(lines[0]));
const s = JSON.parse(lines[1].data);
assert(lines[1].type === 'com.example.s' && s.id === 'c2' && s.data.n === 2, 'structured with a parameter: ' + lines[1].data);
assert(lines[2].type === 'message' && lines[2].data === '{\"n\":3}', 'bad ce_ header: ' + JSON.stringify(lines[2]));
const bin = JSON.parse(lines[3].data);
assert(lines[3].type === 'com.example.bin' && bin.data_base64 === '//4B' && bin.data === undefined, 'binary data: ' + lines[3].data);
const big = JSON.parse(lines[4].data);
assert(lines[4].type === 'com.example.big' && typeof big.data === 'object' && big.data.big > 1.2e29, 'big integer: ' + lines[4].data);
"
node_check "$T/carol-ws.jsonl" "
assert(lines[0].data === 'no specversion' && lines[0].type === undefined && lines[0].id === undefined, 'ws plain: ' + JSON.stringify(lines[0]));
assert(lines[1].type === 'com.example.s' && lines[1].id === 'c2', 'ws structured: ' + JSON.stringify(lines[1]));
assert(lines[2].data.n === 3 && lines[2].type === undefined && lines[2].subject === undefined, 'ws bad ce_ header: ' + JSON.stringify(lines[2]));
assert(lines[3].type === 'com.example.bin' && lines[3].data_base64 === '//4B', 'ws binary data: ' + JSON.stringify(lines[3]));
assert(lines[4].type === 'com.example.big' && lines[4].data.big > 1.2e29, 'ws big integer: ' + JSON.stringify(lines[4]));
"
n=$(stream_metric tributary_stream_records_not_events_total)
# counted by each worker that had a subscriber for it: 1 or 2
((n > not_events && n <= not_events + 2)) || fail "records_not_events_total went from $not_events to $n"
grep -q 'tributary_stream: record notifications \[[0-9]\] at offset [0-9]* is not a valid CloudEvent (attribute .*subject.* is not valid UTF-8), sent as a plain record' \
	"$NGINX_PREFIX/logs/error.log" || fail "no log line for the record that is not an event"
pass "ce_type without ce_specversion: plain; structured content-type with a parameter: structured; bad ce_ header: plain, logged and counted"

# curl sees the SSE wire format and headers
grep -qi '^content-type: text/event-stream' "$T/curl.headers" || fail "content type: $(cat "$T/curl.headers")"
grep -qi '^cache-control: no-cache' "$T/curl.headers" || fail "no Cache-Control"
grep -qi '^x-accel-buffering: no' "$T/curl.headers" || fail "no X-Accel-Buffering"
grep -q '^retry: 500$' "$T/curl.out" || fail "no retry: line"
grep -q '^event: com.example.note$' "$T/curl.out" || fail "no event: line"
grep -q '^data: plain for alice$' "$T/curl.out" || fail "no plain data line"
grep -q '^: hb$' "$T/curl.out" || fail "no heartbeat comment in 8 s (interval 2 s)"
! grep -q bob "$T/curl.out" || fail "curl (alice) saw bob's events"
pass "curl: SSE headers, retry, event/data lines, heartbeats"

# the status location counts what happened
delivered=$(stream_metric tributary_stream_events_delivered_total)
((delivered >= 12)) || fail "events delivered: $delivered"
curl -s "http://127.0.0.1:$HTTP_PORT/tributary/status" | grep -q '^tributary_stream_consumer_lag{worker="0",pid="[0-9]*"} 0$' ||
	fail "status: no lag metric"
pass "status: $delivered events delivered"

nginx_log_clean || fail "nginx error log has alerts"
