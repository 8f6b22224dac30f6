#!/usr/bin/env bash
# The offsets the plugin stores are exactly "after the last record the
# broker published", per partition: records spread over 3 partitions, all
# delivered, the broker idle long enough for the offsets to be stored (one
# tick after publishing) and committed (auto.commit.interval.ms, 1 s), then
# records produced while the broker is down, and a clean restart: the
# subscriber must get exactly those (an offset stored one short repeats
# each partition's last record, one too far skips a record).
source "$(dirname "$0")/../lib/stack.sh"
stack_init
N=${OUTBOUND_OFFSET_RECORDS:-300}
start_kafka --topic notifications:3
cat >"$T/tributary.json.in" <<JSON
{
  "broker_id": "offsets",
  "catalog": "@ROOT@/schemas/catalog.json",
  "clusters": { "main": { "bootstrap.servers": "@KAFKA_BOOTSTRAP@" } },
  "ingest": { "routes": [] },
  "outbound": {
    "wake": "127.0.0.1:@MQTT_PORT@",
    "consumer": { "fetch.wait.max.ms": 5, "session.timeout.ms": 6000 },
    "max_per_tick": 50,
    "routes": [ { "kafka_topic": "notifications", "topic": "users/{key}/notifications", "qos": 1 } ]
  }
}
JSON
produce() { # first last: records with keys spread over the partitions
	for ((i = $1; i <= $2; i++)); do printf 'u%d\x1f%d\x1e' "$((i % 17))" "$i"; done |
		kcat -q -b "$KAFKA_BOOTSTRAP" -P -t notifications -K '\x1f' -D '\x1e' 2>>"$T/kcat.log" ||
		fail "kcat could not produce"
}
received() { [[ -f "$1" ]] && (($(wc -l <"$1") >= $2)); }

# A persistent session (QoS 1, clean session off, kept across the restart
# by Mosquitto's persistence): what the restarted broker publishes before
# the subscriber is back is queued for it, not missed.
mkdir -p "$T/mosquitto-data" && chmod 777 "$T/mosquitto-data"
subscribe() { mosquitto_sub -p "$MQTT_PORT" -q 1 -c -i offsets-sub -t 'users/+/notifications' >"$1" 2>>"$T/sub.err" & }
start_mosquitto "$T/tributary.json.in"
subscribe "$T/first.txt"
sub=$!
STACK_PIDS+=($sub)
wait_assigned 1
produce 1 "$N"
wait_until 20 received "$T/first.txt" "$N" || fail "only $(wc -l <"$T/first.txt") of $N records before the restart"
sleep 2.5 # stored at the next tick, committed within auto.commit.interval.ms
kill "$sub"
stop_mosquitto
grep -q 'terminating' "$T/mosquitto.log" || fail "mosquitto did not stop cleanly"

produce $((N + 1)) $((N + 30)) # while the broker is down
start_mosquitto "$T/tributary.json.in"
subscribe "$T/second.txt"
sub=$!
STACK_PIDS+=($sub)
wait_assigned 2
wait_until 20 received "$T/second.txt" 30 || fail "only $(wc -l <"$T/second.txt") of the 30 new records after the restart (Kafka holds $(kafka_count notifications))"
sleep 1 # anything delivered again would come with them
sort -n "$T/second.txt" | diff - <(seq $((N + 1)) $((N + 30))) >/dev/null ||
	fail "after the restart: not exactly the 30 new records: $(sort -n "$T/second.txt" | tr '\n' ' ')"
pass "$N records over 3 partitions, a restart: exactly the 30 produced meanwhile, none again, none skipped"
