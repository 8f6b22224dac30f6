#!/usr/bin/env bash
# A route that mirrors to a second cluster; the key from the CloudEvents
# partitionkey extension; unmatched topics refused; the $SYS counters.
source "$(dirname "$0")/../lib/stack.sh"
stack_init
start_kafka --topic events.order:3 --topic audit-order:1
start_mosquitto "$ROOT/tests/integration/ingest-mirror.json.in"
grep -q 'clusters.audit: enable.idempotence is off' "$T/mosquitto.log" || fail "lowered idempotence not logged"

id=$(cat /proc/sys/kernel/random/uuid)
order=$(cat /proc/sys/kernel/random/uuid)
ev='{"specversion":"1.0","id":"'$id'","source":"urn:t","type":"example.order.placed","data":{"orderId":"'$order'","customerId":"c","lines":[{"sku":"a","qty":1}],"total":1,"currency":"EUR"}}'
mosquitto_pub -p "$MQTT_PORT" -q 1 -t "events/order/$order" -m "$ev" || fail "publish"
main=$(kafka_read events.order 1 20 '%k|%h\n' | grep "ce_id=$id") || fail "no record in events.order"
mirror=$(kafka_read audit-order 1 20 '%k|%h\n' | grep "ce_id=$id") || fail "no record in the mirror topic"
[[ "${main%%|*}" == "$order" && "${mirror%%|*}" == "$order" ]] || fail "keys: '$main' / '$mirror'"
pass "event in events.order and mirrored to audit-order, key $order"

# The broker's threads, the plugin's and librdkafka's all keep the default
# policy (SCHED_OTHER, 0): librdkafka's threads ran as SCHED_BATCH (3) when
# the main thread woke them per event, and the batch policy's wake-up
# latency then set the p99 publish-to-Kafka (README: Produce).
if ! stack_is_valgrind; then
	policy() { local s; s=$(cat "/proc/$MOSQUITTO_PID/task/$1/stat") || return 1; s=${s##*) }; set -- $s; echo "${39}"; }
	rdk=0 other=()
	for task in /proc/"$MOSQUITTO_PID"/task/*; do
		[[ $(cat "$task/comm" 2>/dev/null) == rdk:* ]] && rdk=$((rdk + 1))
		[[ $(policy "${task##*/}") == 0 ]] || other+=("$(cat "$task/comm")")
	done
	((rdk >= 4 && ${#other[@]} == 0)) || fail "threads not SCHED_OTHER: ${other[*]:-none} ($rdk librdkafka threads)"
	pass "every thread, $rdk of them librdkafka's, runs as SCHED_OTHER"
fi

# No key template: the partitionkey extension is the key.
pid=$(cat /proc/sys/kernel/random/uuid)
mosquitto_pub -p "$MQTT_PORT" -q 1 -t "sandbox/keyed/order" -m '{"specversion":"1.0","id":"'$pid'","source":"urn:t","type":"example.order.placed","partitionkey":"customer-7","data":{"orderId":"'$order'","customerId":"c","lines":[{"sku":"a","qty":1}],"total":1,"currency":"EUR"}}' || fail "publish"
rec=$(kafka_read events.order 2 20 '%k|%s\n' | grep "\"id\":\"$pid\"") || fail "no partitionkey record"
[[ "${rec%%|*}" == customer-7 ]] || fail "key is not the partitionkey: $rec"
pass "partitionkey extension used as the record key"

# That route's own capture_pattern (order|invoice) and exact types.
refused() { # CLIENT TOPIC REASON PAYLOAD
	local out
	out=$(mosquitto_rr -V 5 -p "$MQTT_PORT" -i "$1" -e "clients/$1/errors" -t "$2" -m "$4" -W 5 2>&1) ||
		fail "no error event for $2: $out"
	grep -q "\"reason\":\"$3\"" <<<"$out" || fail "$2: reason is not $3: $out"
}
placed='{"specversion":"1.0","id":"p-1","source":"urn:t","type":"example.order.placed","data":{"orderId":"'$order'","customerId":"c","lines":[{"sku":"a","qty":1}],"total":1,"currency":"EUR"}}'
refused capture-1 sandbox/keyed/payment invalid_topic "$placed"
refused capture-2 sandbox/keyed/orders invalid_topic "$placed"
refused types-1 sandbox/keyed/order type_not_allowed '{"specversion":"1.0","id":"c-1","source":"urn:t","type":"example.order.cancelled","data":{"orderId":"'$order'","reason":"r"}}'
pass "a route's capture_pattern and exact types refuse other levels and types"

# unmatched: reject
out=$(mosquitto_rr -V 5 -p "$MQTT_PORT" -i unmatched-1 -e clients/unmatched-1/errors -t sandbox/chat -m hello -W 5 2>&1) || fail "no error event for an unmatched topic: $out"
grep -q '"reason":"no_route"' <<<"$out" || fail "reason is not no_route: $out"
pass "unmatched topic refused with no_route"

sys=$(timeout 5 mosquitto_sub -p "$MQTT_PORT" -t '$SYS/tributary/#' -v -W 3 2>/dev/null | sort -u)
grep -q '^\$SYS/tributary/accepted [2-9]' <<<"$sys" || fail "accepted counter: $sys"
grep -q '^\$SYS/tributary/produced [2-9]' <<<"$sys" || fail "produced counter: $sys"
grep -q '^\$SYS/tributary/rejected/no_route 1' <<<"$sys" || fail "no_route counter: $sys"
grep -q '^\$SYS/tributary/rejected/invalid_topic 2' <<<"$sys" || fail "invalid_topic counter: $sys"
grep -q '^\$SYS/tributary/rejected/type_not_allowed 1' <<<"$sys" || fail "type_not_allowed counter: $sys"
grep -q '^\$SYS/tributary/queue_depth 0' <<<"$sys" || fail "queue depth: $sys"
pass "\$SYS/tributary counters"
