#!/usr/bin/env bash
# The offsets the plugin stores are exactly "after the last record the
# broker published", per partition: records spread over 3 partitions, all
# delivered, the broker idle long enough for the offsets to be stored (one
# tick after publishing) and committed (auto.commit.interval.ms, 1 s), then
# records produced while the broker is down, and a clean restart: the
# restarted consumer must read exactly those (its `received` counter under
# $SYS): an offset stored one short reads each partition's last record
# again, one too far skips a record. (Counted rather than subscribed to:
# the restarted broker may publish them before a new subscriber is in,
# and a persistent session would bring in Mosquitto 2.0.11's own leak of
# 38 bytes on a restored session under the sanitizers.)
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
  },
  "stats": { "sys_interval": 1 }
}
JSON
produce() { # first last: records with keys spread over the partitions
	for ((i = $1; i <= $2; i++)); do printf 'u%d\x1f%d\x1e' "$((i % 17))" "$i"; done |
		kcat -q -b "$KAFKA_BOOTSTRAP" -P -t notifications -K '\x1f' -D '\x1e' 2>>"$T/kcat.log" ||
		fail "kcat could not produce"
}
received() { [[ -f "$1" ]] && (($(wc -l <"$1") >= $2)); }

received_count() { # the restarted consumer's records, from $SYS (retained)
	mosquitto_sub -p "$MQTT_PORT" -t '$SYS/tributary/outbound/received' -C 1 -W 3 2>/dev/null
}
received_is() { [[ "$(received_count)" == "$1" ]]; }

start_mosquitto "$T/tributary.json.in"
mosquitto_sub -p "$MQTT_PORT" -q 1 -t 'users/+/notifications' >"$T/sub.txt" 2>>"$T/sub.err" &
STACK_PIDS+=($!)
wait_assigned 1
produce 1 "$N"
wait_until 20 received "$T/sub.txt" "$N" || fail "only $(wc -l <"$T/sub.txt") of $N records before the restart"
sleep 2.5 # stored at the next tick, committed within auto.commit.interval.ms
stop_mosquitto
grep -q 'terminating' "$T/mosquitto.log" || fail "mosquitto did not stop cleanly"

produce $((N + 1)) $((N + 30)) # while the broker is down
start_mosquitto "$T/tributary.json.in"
wait_assigned 2
wait_until 20 received_is 30 || fail "the restarted consumer read $(received_count) records, not the 30 produced meanwhile"
sleep 2 # anything read again would be counted by now
received_is 30 || fail "the restarted consumer read $(received_count) records, not the 30 produced meanwhile"
pass "$N records over 3 partitions, a restart: exactly the 30 produced meanwhile, none again, none skipped"
