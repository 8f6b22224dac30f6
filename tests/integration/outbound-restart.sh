#!/usr/bin/env bash
# At-least-once across a broker restart: records keep arriving in Kafka
# while Mosquitto (with the plugin) stops and starts again. A persistent
# QoS 1 session (fixed client id, clean start off) must end up with every
# record: the plugin resumes from its committed offsets, and Mosquitto
# queues what arrives while the subscriber reconnects.
source "$(dirname "$0")/../lib/stack.sh"
stack_init
N=${OUTBOUND_RESTART_RECORDS:-500}
start_kafka --topic notifications:3 --topic replies:3 --topic events.order:3
# The dev configuration, with a short session timeout: librdkafka's mock
# cluster keeps a member that left until its session expires, so a restarted
# broker would wait 45 s (the default) to get its partitions back; real
# Kafka takes the LeaveGroup at once.
sed 's/"consumer": { "fetch.wait.max.ms": 5 }/"consumer": { "fetch.wait.max.ms": 5, "session.timeout.ms": 6000 }/' \
	"$ROOT/conf/dev/tributary.json.in" >"$T/tributary.json.in"
grep -q '"session.timeout.ms": 6000' "$T/tributary.json.in" || fail "cannot derive the test configuration"
# Mosquitto drops to its own user: let it write the persistence file.
mkdir -p "$T/mosquitto-data" && chmod 777 "$T/mosquitto-data"
start_mosquitto "$T/tributary.json.in"
wait_assigned 1

cd "$ROOT"
OUTBOUND_RECORDS=$N READY_FILE="$T/sub.ready" node --test tests/node/outbound-restart.mjs >"$T/node.out" 2>&1 &
node_pid=$!
STACK_PIDS+=($node_pid)
wait_until 10 test -f "$T/sub.ready" || { cat "$T/node.out"; fail "subscriber not ready"; }

# One record every ~10 ms, through one kcat that stays up across the restart.
(for ((i = 0; i < N; i++)); do printf 'restart-user\x1f%d\x1e' "$i"; sleep 0.01; done) |
	kcat -q -b "$KAFKA_BOOTSTRAP" -P -t notifications -K '\x1f' -D '\x1e' -X linger.ms=1 2>"$T/kcat.log" &
producer=$!
STACK_PIDS+=($producer)

sleep 2
echo "stopping mosquitto"
stop_mosquitto
grep -q 'mosquitto version 2.0.11 terminating' "$T/mosquitto.log" || fail "mosquitto did not stop cleanly"
sleep 2
echo "starting mosquitto again"
start_mosquitto "$T/tributary.json.in"
wait_assigned 2
grep -q "outbound: [0-9]* partitions without a committed offset" <(sed -n '/terminating/,$p' "$T/mosquitto.log") &&
	fail "after the restart the group had no committed offsets"

wait "$producer" || fail "producer failed"
wait "$node_pid"
rc=$?
cat "$T/node.out"
((rc == 0)) || fail "not every record reached the persistent session"
pass "every record delivered across a broker restart"
