#!/usr/bin/env bash
# Infinite retention, managed and verified (docs/topics.md), on Apache Kafka:
# tributary-topics plan/apply/verify and the plugin's policies create,
# verify and enforce. Every setting is read back with Kafka's own
# ConfigCommand (the Java classes of the broker's jars) or kcat, never from
# our own output alone.
source "$(dirname "$0")/../lib/stack.sh"
# Its own Apache Kafka (the mock has no admin API for topic configs), with
# Kafka's default retention and stopped at the end.
[[ "${KAFKA:-}" == mock ]] && skip "KAFKA=mock: the topics policies need Apache Kafka"
command -v java >/dev/null || skip "no Java: the topics policies need Apache Kafka"
stack_init
# Apache Kafka's default retention (7 days), not the dev stack's -1: a
# topic created without our configs would have finite retention.
start_real_kafka --retention-ms 604800000
ADMIN=("$BUILD/bin/tributary-kafka-admin" --brokers "$KAFKA_BOOTSTRAP")
TOPICS="$BUILD/bin/tributary-topics"
KAFKA_LIB="$ROOT/build/kafka/lib"

# configs_of TOPIC: the topic's own configs (not the broker's defaults), one
# NAME=VALUE a line, as Kafka's kafka-configs.sh prints them.
configs_of() {
	java -cp "$KAFKA_LIB/*" kafka.admin.ConfigCommand --bootstrap-server "$KAFKA_BOOTSTRAP" \
		--describe --entity-type topics --entity-name "$1" 2>>"$T/configcommand.log" |
		sed -n 's/^  \([a-z.]*=[^ ]*\) .*/\1/p'
}
# A topic created beforehand, the way an operator would, with one hour of retention.
"${ADMIN[@]}" create events.legacy:1 >/dev/null || fail "create events.legacy"
java -cp "$KAFKA_LIB/*" kafka.admin.ConfigCommand --bootstrap-server "$KAFKA_BOOTSTRAP" --alter \
	--entity-type topics --entity-name events.legacy --add-config retention.ms=3600000 \
	>>"$T/configcommand.log" 2>&1 || fail "alter events.legacy"
configs_of events.legacy | grep -qx 'retention.ms=3600000' || fail "events.legacy: retention not set"
# The audit mirror's topic (finite by design, like Azure Event Hubs).
"${ADMIN[@]}" create audit-order:1 >/dev/null || fail "create audit-order"
java -cp "$KAFKA_LIB/*" kafka.admin.ConfigCommand --bootstrap-server "$KAFKA_BOOTSTRAP" --alter \
	--entity-type topics --entity-name audit-order --add-config retention.ms=3600000 \
	>>"$T/configcommand.log" 2>&1 || fail "alter audit-order"

# tool COMMAND NAME: tributary-topics COMMAND on $T/t.json, output in
# $T/NAME.out; its exit status (a sanitizer report fails the test).
tool() {
	"$TOPICS" "$1" --config "$T/t.json" >"$T/$2.out" 2>&1
	local rc=$?
	grep -q 'Sanitizer' "$T/$2.out" && { cat "$T/$2.out"; fail "tributary-topics $1: sanitizer report"; }
	return $rc
}

export TOPICS_STARTUP_MS=20000 TOPICS_POLICY=verify TOPICS_NAMES='"events.order"'
render "$ROOT/tests/integration/topics.json.in" "$T/t.json"

# plan: events.order would be created; events.legacy (listed by the
# cluster, made by the template) has finite retention: exit 1.
tool plan plan && fail "plan: exit 0 with work to do"
grep -Eq '^main +events.order +no .* create$' "$T/plan.out" || { cat "$T/plan.out"; fail "plan does not create events.order"; }
grep -Eq '^main +events.legacy +yes .*retention.ms=3600000 +finite-retention$' "$T/plan.out" ||
	{ cat "$T/plan.out"; fail "plan does not report events.legacy"; }
"${ADMIN[@]}" list | grep -q '^events.order ' && fail "plan created a topic"
pass "plan: would create events.order, reports events.legacy, exit 1"

# verify names topic, setting, wanted and actual.
tool verify verify && fail "verify: exit 0"
grep -q '^    retention.ms: wanted -1, actual 3600000$' "$T/verify.out" ||
	{ cat "$T/verify.out"; fail "verify does not name the setting"; }
grep -Eq '^main +events.order +no .* missing$' "$T/verify.out" || { cat "$T/verify.out"; fail "verify: events.order"; }
pass "verify: events.legacy retention.ms wanted -1, actual 3600000; events.order missing; exit 1"

# apply creates events.order; read back with Kafka's tools.
tool apply apply && fail "apply: exit 0 with events.legacy finite"
grep -Eq '^main +events.order +yes +2 +1 +infinite +created$' "$T/apply.out" || { cat "$T/apply.out"; fail "apply"; }
cfg=$(configs_of events.order)
grep -qx 'retention.ms=-1' <<<"$cfg" && grep -qx 'retention.bytes=-1' <<<"$cfg" ||
	{ echo "$cfg"; fail "events.order: retention not -1 in Kafka"; }
kcat -b "$KAFKA_BOOTSTRAP" -L -t events.order | grep -q 'topic "events.order" with 2 partitions' ||
	fail "events.order: not 2 partitions"
pass "apply: events.order created, Kafka says retention.ms=-1, retention.bytes=-1, 2 partitions"

# The plugin, policy create: a declared topic that is missing is created at start.
export TOPICS_POLICY=create TOPICS_NAMES='"events.order", "events.user"'
start_mosquitto "$ROOT/tests/integration/topics.json.in"
wait_log "$T/mosquitto.log" 'topic events.user (cluster main): ok, created' 20 || { cat "$T/mosquitto.log"; fail "plugin did not create events.user"; }
cfg=$(configs_of events.user)
grep -qx 'retention.ms=-1' <<<"$cfg" && grep -qx 'retention.bytes=-1' <<<"$cfg" ||
	{ echo "$cfg"; fail "events.user: retention not -1 in Kafka"; }
pass "plugin (create): events.user created, Kafka says retention.ms=-1, retention.bytes=-1"
# verify's report: in the log and under $SYS/tributary/topics/.
grep 'topic events.legacy (cluster main): finite-retention (retention.ms=3600000)' "$T/mosquitto.log" |
	grep -q 'partitions: wanted 2, actual 1; retention.ms: wanted -1, actual 3600000 (policy create)' ||
	{ cat "$T/mosquitto.log"; fail "plugin did not report events.legacy"; }
sys=$(timeout 5 mosquitto_sub -p "$MQTT_PORT" -t '$SYS/tributary/topics/#' -v -W 3 2>/dev/null | sort -u)
grep -qx '\$SYS/tributary/topics/finite_retention 1' <<<"$sys" && grep -qx '\$SYS/tributary/topics/ok 2' <<<"$sys" &&
	grep -qx '\$SYS/tributary/topics/created 1' <<<"$sys" && grep -qx '\$SYS/tributary/topics/warnings 1' <<<"$sys" || { echo "$sys"; fail "\$SYS/tributary/topics counters"; }
grep -q 'tributary: topics: topic audit-order (cluster audit): warning (retention.ms=3600000, finite-ok); retention.ms: wanted -1, actual 3600000 (policy verify)' "$T/mosquitto.log" ||
	{ cat "$T/mosquitto.log"; fail "plugin did not warn about audit-order"; }
pass "plugin (create): events.legacy reported, audit-order a warning, \$SYS/tributary/topics/ counts them"
stop_mosquitto

# enforce: the broker does not start while a route's topic has finite retention.
export TOPICS_POLICY=enforce
render "$ROOT/tests/integration/topics.json.in" "$T/tributary.json"
render "$ROOT/conf/dev/mosquitto.conf.in" "$T/enforce.conf"
env $(stack_san_env noleaks) timeout 60 mosquitto -c "$T/enforce.conf" >"$T/enforce.log" 2>&1
rc=$?
[[ $rc -ne 0 && $rc -ne 124 ]] || { cat "$T/enforce.log"; fail "enforce: broker started (exit $rc)"; }
grep -q 'topic events.legacy (cluster main): finite-retention (retention.ms=3600000)' "$T/enforce.log" &&
	grep -q 'refusing to start: 1 topics of cluster main have finite retention' "$T/enforce.log" ||
	{ cat "$T/enforce.log"; fail "enforce: the log does not say why"; }
pass "enforce: broker refuses to start, log names events.legacy"

# enforce, a topic that appears later: its events are refused with a reason.
"${ADMIN[@]}" delete events.legacy >/dev/null || fail "delete events.legacy"
render "$ROOT/tests/integration/topics.json.in" "$T/t.json"
tool verify verify-ok || { cat "$T/verify-ok.out"; fail "verify: exit 1 with every topic as wanted"; }
grep -Eq '^main +events.user +yes +2 +1 +infinite +ok$' "$T/verify-ok.out" || { cat "$T/verify-ok.out"; fail "verify: events.user"; }
grep -Eq '^audit +audit-order +yes +1 +1 +retention.ms=3600000 +warning$' "$T/verify-ok.out" &&
	grep -q '^    retention.ms: wanted -1, actual 3600000 (warning: finite-ok)$' "$T/verify-ok.out" ||
	{ cat "$T/verify-ok.out"; fail "verify: the finite-ok mirror is not a warning"; }
pass "verify: exit 0 once every topic is as wanted; the finite-ok mirror audit-order is a warning"
start_mosquitto "$ROOT/tests/integration/topics.json.in"
"${ADMIN[@]}" create events.late:1 >/dev/null || fail "create events.late"
java -cp "$KAFKA_LIB/*" kafka.admin.ConfigCommand --bootstrap-server "$KAFKA_BOOTSTRAP" --alter \
	--entity-type topics --entity-name events.late --add-config retention.ms=3600000 \
	>>"$T/configcommand.log" 2>&1 || fail "alter events.late"
wait_log "$T/mosquitto.log" 'topic events.late (cluster main): finite-retention (retention.ms=3600000)' 20 || { cat "$T/mosquitto.log"; fail "events.late not seen"; }
ev() { echo '{"specversion":"1.0","id":"'$1'","source":"urn:t","type":"example.order.placed","data":{"orderId":"'$(cat /proc/sys/kernel/random/uuid)'","customerId":"c","lines":[{"sku":"a","qty":1}],"total":1,"currency":"EUR"}}'; }
out=$(mosquitto_rr -V 5 -p "$MQTT_PORT" -i late-1 -e clients/late-1/errors -t events/late/1 -m "$(ev late-1)" -W 5 2>&1) ||
	fail "no error event for events.late: $out"
grep -q '"reason":"topic_not_compliant"' <<<"$out" && grep -q 'Kafka topic events.late has finite retention (retention.ms=3600000)' <<<"$out" ||
	fail "reason: $out"
mosquitto_pub -p "$MQTT_PORT" -q 1 -t events/order/2 -m "$(ev order-2)" || fail "publish order-2"
kafka_read events.order 1 20 '%k\n' | grep -qx 2 || fail "events.order: the compliant topic's event is not in Kafka"
[[ $(kafka_count events.late) == 0 ]] || fail "events.late received the refused event"
pass "enforce: events to events.late refused (topic_not_compliant), events.order still accepted"

# Kafka does not answer: the start waits topics.startup_timeout_ms, no longer.
stop_mosquitto
kafka_kill
export TOPICS_STARTUP_MS=1500
: >"$T/mosquitto.log"
start=$(date +%s%N)
start_mosquitto "$ROOT/tests/integration/topics.json.in"
ms=$((($(date +%s%N) - start) / 1000000))
grep -q 'topics: cluster main not checked within topics.startup_timeout_ms (1500 ms): starting; the check goes on' "$T/mosquitto.log" ||
	{ cat "$T/mosquitto.log"; fail "no startup timeout line"; }
((ms >= 1500 && ms < 1500 + 5000 * STACK_SLOW)) || fail "start took $ms ms"
pass "Kafka down: the broker starts after topics.startup_timeout_ms ($ms ms)"
