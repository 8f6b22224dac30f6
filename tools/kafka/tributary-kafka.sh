#!/usr/bin/env bash
# tributary-kafka: a real Apache Kafka (tools/kafka/pom.xml) for `make run`
# and the tests: one KRaft node, broker and controller, on loopback.
#
#   tributary-kafka --dir DIR [--port 9092] [--controller-port PORT+1]
#                   [--partitions 3] [--topic NAME[:PARTITIONS]]... [--heap 512m]
#                   [--retention-ms -1] [--ready-timeout 120]
#                   [--node-id 1 --voters ID@HOST:CPORT,...]
#                   [--replication 1] [--min-insync 1]
#
# A cluster (tests/cluster/): one tributary-kafka per node, each with its own
# --dir, --port, --controller-port and --node-id, the same --voters (every
# node is broker and controller: the controller quorum) and the same
# --replication (the default replication factor, also of Kafka's internal
# topics) and --min-insync (min.insync.replicas, also of the transaction
# log). Every node is formatted with the same cluster id. A node is ready
# once the quorum has a leader, so the nodes must be started together.
#
#   DIR/data         the broker's log dirs (formatted on first start, kept after)
#   DIR/kafka.log    the broker's log (appended to)
#   DIR/kafka.pid    the JVM's pid while it runs
#
# Runs in the foreground. Prints "tributary-kafka: ready ..." once the
# broker answers metadata requests and the --topic topics exist with a
# leader; SIGTERM or SIGINT stop the broker cleanly (its logs closed, no
# recovery at the next start). The exit status is the JVM's.
set -euo pipefail
ROOT=@ROOT@
LIB=${TRIBUTARY_KAFKA_LIB:-$ROOT/build/kafka/lib}
BIN=$(cd "$(dirname "$0")" && pwd)
source "$ROOT/tools/kafka/jvm.sh"

dir="" port=9092 cport="" partitions=3 heap=512m retention=-1 ready_timeout=120 topics=()
node=1 voters="" replication=1 min_insync=1
usage() {
	sed -n 's/^#   \{0,1\}//p' "$0" | sed -n '1,5p' >&2
	exit 2
}
while (($#)); do
	case $1 in
	--dir) dir=$2; shift 2 ;;
	--port) port=$2; shift 2 ;;
	--controller-port) cport=$2; shift 2 ;;
	--partitions) partitions=$2; shift 2 ;;
	--topic) topics+=("$2"); shift 2 ;;
	--heap) heap=$2; shift 2 ;;
	--retention-ms) retention=$2; shift 2 ;;
	--ready-timeout) ready_timeout=$2; shift 2 ;;
	--node-id) node=$2; shift 2 ;;
	--voters) voters=$2; shift 2 ;;
	--replication) replication=$2; shift 2 ;;
	--min-insync) min_insync=$2; shift 2 ;;
	-h | --help) usage ;;
	*) echo "tributary-kafka: unknown argument: $1" >&2; usage ;;
	esac
done
[[ -n "$dir" ]] || { echo "tributary-kafka: --dir is required" >&2; usage; }
cport=${cport:-$((port + 1))}
for n in "$port" "$cport" "$partitions" "$node" "$replication" "$min_insync"; do
	[[ "$n" =~ ^[0-9]+$ ]] || { echo "tributary-kafka: not a number: $n" >&2; exit 2; }
done
voters=${voters:-$node@127.0.0.1:$cport}
[[ "$voters" =~ ^[0-9]+@[^,@]+:[0-9]+(,[0-9]+@[^,@]+:[0-9]+)*$ ]] ||
	{ echo "tributary-kafka: --voters takes ID@HOST:PORT,...: $voters" >&2; exit 2; }
[[ ",$voters," == *",$node@127.0.0.1:$cport,"* ]] ||
	{ echo "tributary-kafka: --voters must name this node as $node@127.0.0.1:$cport: $voters" >&2; exit 2; }
((min_insync >= 1 && min_insync <= replication)) ||
	{ echo "tributary-kafka: --min-insync must be between 1 and --replication ($replication)" >&2; exit 2; }
jvm_init tributary-kafka "$LIB" 128m "$heap"

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
log="$dir/kafka.log"
props="$dir/server.properties"

# Single node: every internal topic has one replica and few partitions
# (in a cluster, --replication and --min-insync); no delay before the
# first consumer group rebalance. Flushing is left to
# the OS (Kafka's default): durability comes from the broker's ack after
# the write, as with any single-node Kafka. Records are kept forever by
# default (--retention-ms -1): this is a store of record. A short broker
# session: after a crash the controller (the same JVM) still holds the dead
# broker's registration and refuses the new one until that session expires
# (9 s by default). In a cluster the same short session moves the
# leadership of a crashed node's partitions to the others within seconds.
cat >"$props" <<PROPS
process.roles=broker,controller
node.id=$node
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
num.partitions=$partitions
default.replication.factor=$replication
min.insync.replicas=$min_insync
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=$replication
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=$replication
transaction.state.log.min.isr=$min_insync
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=$replication
share.coordinator.state.topic.min.isr=$min_insync
group.initial.rebalance.delay.ms=0
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
log.retention.ms=$retention
log.retention.check.interval.ms=300000
log.cleaner.dedupe.buffer.size=8388608
log.cleaner.threads=1
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=2
background.threads=2
PROPS

# First start: format the storage. A formatted empty store is kept beside
# the jars and copied, so that only the first broker ever pays for the
# format tool's JVM (a few seconds here), one per node id (the store
# names its node). Its cluster id is fixed: single brokers are never joined
# to each other, and the nodes of a cluster need the same one. The voters
# are not in the store (a static quorum: controller.quorum.voters).
if [[ ! -f "$dir/data/meta.properties" ]]; then
	template="$LIB/../empty-store"
	((node == 1)) || template+="-node$node"
	if [[ ! -f "$template/meta.properties" ]]; then
		tmp="$template.tmp.$$"
		rm -rf "$tmp"
		mkdir -p "$tmp"
		sed "s|^log.dirs=.*|log.dirs=$tmp|" "$props" >"$tmp.props"
		"${JVM[@]}" kafka.tools.StorageTool format -t VHJpYnV0YXJ5RGV2S2Fmaw -c "$tmp.props" \
			>>"$log" 2>&1 ||
			{ tail -20 "$log" >&2; echo "tributary-kafka: formatting the storage failed" >&2; exit 1; }
		rm -f "$tmp.props"
		# Another broker may have made it meanwhile: then keep that one.
		mv -T "$tmp" "$template" 2>/dev/null || rm -rf "$tmp"
	fi
	mkdir -p "$dir/data"
	cp -a "$template/." "$dir/data/"
fi

echo "tributary-kafka: starting on 127.0.0.1:$port, data in $dir/data, log $log" >&2
jvm_start "$dir/kafka.pid" "$log" kafka.Kafka "$props"

# Ready: the broker answers metadata requests (asked every 2 s while the
# JVM lives), then the --topic topics exist, each partition with a leader.
start=$SECONDS
admin=("$BIN/tributary-kafka-admin" --brokers "127.0.0.1:$port")
until "${admin[@]}" --timeout 2 ready 2>/dev/null; do
	if ! kill -0 "$JVM_PID" 2>/dev/null || ((SECONDS - start > ready_timeout)); then
		echo "tributary-kafka: no answer on 127.0.0.1:$port; last lines of $log:" >&2
		tail -20 "$log" >&2
		jvm_stop
		jvm_finish 1
	fi
done
if ((${#topics[@]})) && ! "${admin[@]}" --timeout "$ready_timeout" create "${topics[@]}"; then
	echo "tributary-kafka: could not create the topics" >&2
	jvm_stop
	jvm_finish 1
fi
JVM_READY=1
echo "tributary-kafka: ready on 127.0.0.1:$port after $((SECONDS - start))s (pid $JVM_PID)"
jvm_finish
