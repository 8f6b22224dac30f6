#!/usr/bin/env bash
# A three-node Apache Kafka cluster (`make test-cluster`): every node broker
# and controller (a quorum of 3), topic events.order with replication factor
# 3 and min.insync.replicas=2; Mosquitto with the plugin (acks=all,
# enable.idempotence left at the plugin's default, on) and the journal on;
# clients publish 1,000 msg/s at QoS 1 (tests/node/pubload.mjs). While they
# do, the node leading most of the topic's partitions is killed (SIGKILL)
# and restarted CLUSTER_RESTART_AFTER seconds later (default 10; 0: never).
# Then:
#   - every acknowledged event is in Kafka exactly once, in per-key order
#     (tests/node/verify-kafka.mjs), and the load was not stopped;
#   - the failover time is printed, from Kafka's own clock: the topic's
#     records carry the time their leader appended them
#     (message.timestamp.type=LogAppendTime); for each partition, the time
#     from the kill to the first record appended after it (on a new leader
#     for the killed node's partitions). The producer's view: the longest
#     an event waited for Kafka's ack, from the plugin's
#     $SYS/tributary/journal/oldest_age_ms (sampled every second, so up to
#     a second short). The clients' view: the longest gap between two
#     PUBACKs (the journal acknowledges, so they should not notice);
#   - the restarted node rejoins: every partition's replicas in sync again.
# CLUSTER_MAX_FAILOVER_MS (default 30000) fails the test above it.
# Ports: node N on CLUSTER_PORT + 10*(N-1) (default TEST_PORT_BASE + 9101),
# its controller 2 above: odd, since Linux gives outgoing connections even
# ports first, and a TEST_PORT_BASE above 22000 puts these in its ephemeral
# range (32768-60999), where a client's socket may already hold one.
source "$(dirname "$0")/../lib/stack.sh"
stack_init
command -v java >/dev/null || skip "no Java here: Apache Kafka cannot run (tools/install-deps.sh installs it)"
SECONDS_LOAD=${CLUSTER_LOAD_SECONDS:-30} KILL_AT=${CLUSTER_KILL_AT:-8}
RESTART_AFTER=${CLUSTER_RESTART_AFTER:-10} MAX_FAILOVER_MS=${CLUSTER_MAX_FAILOVER_MS:-30000}
NODES=(1 2 3)
start=$SECONDS

CLUSTER_PORT=${CLUSTER_PORT:-$((TEST_PORT_BASE + 9101))}
node_port() { echo $((CLUSTER_PORT + 10 * ($1 - 1))); }
node_cport() { echo $((CLUSTER_PORT + 10 * ($1 - 1) + 2)); }
# A port is taken by any local socket on it, also a client's (ss, from
# iproute2, sees those; without it only a listener is noticed).
port_unused() {
	command -v ss >/dev/null || { port_free "$1"; return; }
	[[ -z "$(ss -Htan exclude time-wait "sport = :$1")" ]]
}
voters="" bootstrap=""
for n in "${NODES[@]}"; do
	port_unused "$(node_port "$n")" && port_unused "$(node_cport "$n")" ||
		fail "port $(node_port "$n") or $(node_cport "$n") is in use (set TEST_PORT_BASE or CLUSTER_PORT to run tests side by side)"
	voters+="${voters:+,}$n@127.0.0.1:$(node_cport "$n")"
	bootstrap+="${bootstrap:+,}127.0.0.1:$(node_port "$n")"
done
export KAFKA_BOOTSTRAP=$bootstrap
admin() { "$BUILD/bin/tributary-kafka-admin" --brokers "$KAFKA_BOOTSTRAP" "$@"; }

# A JVM left behind by a script that was killed itself.
STACK_AFTER_CLEANUP='for f in "$T"/kafka*/kafka.pid; do [[ -f $f ]] && kill -KILL "$(cat "$f")" 2>/dev/null; done'
declare -A node_pid
start_node() { # N: in the background; node_ready N COUNT tells when it is
	touch "$T/kafka$1.out"
	"$BUILD/bin/tributary-kafka" --dir "$T/kafka$1" --port "$(node_port "$1")" \
		--controller-port "$(node_cport "$1")" --node-id "$1" --voters "$voters" \
		--replication 3 --min-insync 2 --heap 384m --ready-timeout 180 >>"$T/kafka$1.out" 2>&1 &
	node_pid[$1]=$!
	STACK_PIDS+=($!)
}
node_ready() { # N COUNT: the script printed its COUNTth ready line (fails if it exited)
	log_count_at_least "$T/kafka$1.out" 'tributary-kafka: ready' "$2" && return 0
	kill -0 "${node_pid[$1]}" 2>/dev/null || { cat "$T/kafka$1.out" >&2; fail "Kafka node $1 exited"; }
	return 1
}
wait_node() { # N COUNT
	wait_until 180 node_ready "$1" "$2" ||
		{ cat "$T/kafka$1.out" >&2; tail -30 "$T/kafka$1/kafka.log" >&2; fail "Kafka node $1 did not start"; }
}
now_ms() { date +%s%3N; }

for n in "${NODES[@]}"; do start_node "$n"; done
for n in "${NODES[@]}"; do wait_node "$n" 1; done
echo "cluster: 3 nodes ready after $((SECONDS - start))s ($KAFKA_BOOTSTRAP)"
admin --timeout 60 --replication 3 --config min.insync.replicas=2 \
	--config message.timestamp.type=LogAppendTime create events.order:3 ||
	fail "could not create events.order with 3 replicas"
admin leaders events.order >"$T/leaders.before" || fail "no leaders for events.order"
cat "$T/leaders.before"
awk '$4 !~ /^[0-9]+,[0-9]+,[0-9]+$/ { bad = 1 } END { exit bad }' "$T/leaders.before" ||
	fail "events.order does not have 3 replicas per partition"

start_mosquitto "$ROOT/tests/cluster/kafka-cluster.json.in"
cd "$ROOT"
mosquitto_sub -p "$MQTT_PORT" -t '$SYS/tributary/journal/oldest_age_ms' >"$T/oldest_age_ms" 2>&1 &
STACK_PIDS+=($!)
node tests/node/pubload.mjs --rate 1000 --seconds "$SECONDS_LOAD" --out "$T/acked.jsonl" \
	2>"$T/pubload.log" &
load=$!
sleep "$KILL_AT"

# The victim: the node leading most partitions (the lowest id on a tie).
admin leaders events.order >"$T/leaders.kill" || fail "no leaders for events.order"
victim=$(awk '{ n[$3]++ } END { for (l in n) print n[l], l }' "$T/leaders.kill" | sort -k1,1nr -k2,2n | awk 'NR == 1 { print $2 }')
[[ "$victim" =~ ^[1-3]$ ]] || fail "no leader to kill: $(cat "$T/leaders.kill")"
victim_parts=$(awk -v v="$victim" '$3 == v { printf "%s%s", sep, $2; sep = "," }' "$T/leaders.kill")
# The time is taken once the signal is sent: the dead leader appends
# nothing after it (a record stamped later is a new leader's).
victim_jvm=$(cat "$T/kafka$victim/kafka.pid") || fail "no JVM for node $victim"
kill -KILL "$victim_jvm" || fail "could not kill node $victim"
kill_ms=$(now_ms)
echo "cluster: SIGKILL node $victim (leader of partition(s) $victim_parts) at $(date -d "@${kill_ms:0:10}" +%T).${kill_ms:10}"
wait_until 10 eval '! kill -0 "${node_pid[$victim]}" 2>/dev/null' || fail "node $victim's script did not exit"

# The killed node's partitions get new leaders among the two others.
moved() {
	admin --timeout 2 leaders events.order >"$T/leaders.after" 2>/dev/null &&
		awk -v v="$victim" '$3 < 0 || $3 == v { bad = 1 } END { exit bad }' "$T/leaders.after"
}
wait_until 30 moved || fail "partitions still led by node $victim: $(cat "$T/leaders.after")"
echo "cluster: new leaders $((($(now_ms) - kill_ms) / 1000))s after the kill (topic partition leader replicas in-sync):"
cat "$T/leaders.after"

if ((RESTART_AFTER > 0)); then
	rest=$((kill_ms + RESTART_AFTER * 1000 - $(now_ms)))
	((rest <= 0)) || sleep "$((rest / 1000)).$(printf %03d $((rest % 1000)))"
	echo "cluster: restarting node $victim"
	start_node "$victim"
fi
wait $load
cat "$T/pubload.log"
acked=$(wc -l <"$T/acked.jsonl")
((acked > SECONDS_LOAD * 800)) || fail "only $acked events acknowledged: the failover must not stop ingest"
node tests/node/verify-kafka.mjs --topic events.order --acked "$T/acked.jsonl" --wait 90 ||
	fail "Kafka does not hold every acknowledged event exactly once"

# Failover time, from the records' LogAppendTime (the appending leader's
# clock, this machine's): per partition, the last record appended before
# the kill and the first one after it.
timeout 60 kcat -q -b "$KAFKA_BOOTSTRAP" -C -t events.order -o beginning -e -f '%p %T\n' \
	>"$T/appended" 2>>"$T/kcat.log" || fail "could not read events.order back"
failover=$(awk -v k="$kill_ms" -v parts=",$victim_parts," '
	$2 <= k { before[$1] = $2 }
	$2 > k && !($1 in after) { after[$1] = $2 }
	END {
		worst = -1
		for (p in after) {
			ms = after[p] - k
			printf "failover: partition %s (%s): last append %d ms before the kill, first after it +%d ms\n",
				p, index(parts, "," p ",") ? "its leader killed" : "a follower killed",
				k - before[p], ms > "/dev/stderr"
			if (index(parts, "," p ",") && ms > worst) worst = ms
		}
		print worst
	}' "$T/appended")
((failover >= 0)) || fail "no record appended to the killed node's partitions after the kill"
gap=$(node -e '
	const fs = require("fs");
	const t = fs.readFileSync(process.argv[1], "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l).t).sort((a, b) => a - b);
	let g = 0;
	for (let i = 1; i < t.length; i++) g = Math.max(g, t[i] - t[i - 1]);
	console.log(g);' "$T/acked.jsonl")
waited=$(sort -n "$T/oldest_age_ms" | tail -1)
[[ "$waited" =~ ^[0-9]+$ ]] || fail "no \$SYS/tributary/journal/oldest_age_ms from the plugin"
echo "failover: ${failover} ms from the SIGKILL of node $victim until the first record appended by a new leader of its partitions (Kafka's LogAppendTime)"
echo "failover: ${waited} ms the longest an event waited for Kafka's ack (\$SYS/tributary/journal/oldest_age_ms, sampled every second)"
echo "failover: ${gap} ms the clients' longest gap between two PUBACKs (pubload's ack times; the journal acknowledges)"
((failover <= MAX_FAILOVER_MS)) || fail "failover took ${failover} ms (more than ${MAX_FAILOVER_MS})"

if ((RESTART_AFTER > 0)); then
	wait_node "$victim" 2
	rejoined() {
		admin --timeout 2 leaders events.order >"$T/leaders.end" 2>/dev/null &&
			awk '$5 !~ /^[0-9]+,[0-9]+,[0-9]+$/ { bad = 1 } END { exit bad }' "$T/leaders.end"
	}
	wait_until 120 rejoined || fail "node $victim did not rejoin every ISR: $(cat "$T/leaders.end")"
	echo "cluster: node $victim back in every partition's ISR $((($(now_ms) - kill_ms) / 1000))s after the kill:"
	cat "$T/leaders.end"
fi
pass "3-node Kafka: leader node $victim killed under load, nothing acknowledged lost or duplicated (failover ${failover} ms), test took $((SECONDS - start))s"
