#!/usr/bin/env bash
# A bad configuration stops the broker at start with a log line naming the option.
source "$(dirname "$0")/../lib/stack.sh"
stack_init
export KAFKA_BOOTSTRAP=127.0.0.1:1 # never contacted: the broker must refuse to start first
export PLUGIN_PATH="$BUILD/mosquitto_tributary.so" MOSQUITTO_DATA_DIR="$T/data"
mkdir -p "$MOSQUITTO_DATA_DIR"

# expect_refused NAME EXPECTED_LOG_TEXT JSON
expect_refused() {
	local name=$1 expect=$2
	export TRIBUTARY_CONFIG="$T/$name.json"
	printf '%s\n' "$3" >"$TRIBUTARY_CONFIG"
	render "$ROOT/conf/dev/mosquitto.conf.in" "$T/$name.conf"
	env $(stack_san_env noleaks) timeout 20 mosquitto -c "$T/$name.conf" >"$T/$name.log" 2>&1
	local rc=$?
	[[ $rc -ne 0 && $rc -ne 124 ]] || fail "$name: broker did not refuse to start (exit $rc)"
	grep -q -- "$expect" "$T/$name.log" || { cat "$T/$name.log"; fail "$name: log does not say '$expect'"; }
	pass "$name: refused, log names '$expect'"
}

good_cluster='"clusters": {"main": {"bootstrap.servers": "127.0.0.1:1"}}'
catalog="\"catalog\": \"$ROOT/schemas/catalog.json\""
route='{"match": "events/{aggregate}/{id}", "topic": "events.{aggregate}", "key": "{id}"}'

expect_refused not-json "line" '{ "clusters": '
expect_refused unknown-top "config.colors: unknown option" "{$catalog, $good_cluster, \"ingest\": {\"routes\": []}, \"colors\": 1}"
expect_refused no-catalog "catalog:" "{$good_cluster, \"ingest\": {\"routes\": []}}"
echo '{"types": {"x.y": "no-such.json"}}' >"$T/cat.json"
expect_refused missing-schema-file "no-such.json" "{\"catalog\": \"$T/cat.json\", $good_cluster, \"ingest\": {\"routes\": []}}"
expect_refused no-bootstrap "clusters.main.bootstrap.servers" "{$catalog, \"clusters\": {\"main\": {}}, \"ingest\": {\"routes\": []}}"
expect_refused bad-kafka-prop "clusters.main.acks.please" "{$catalog, \"clusters\": {\"main\": {\"bootstrap.servers\": \"x:1\", \"acks.please\": \"1\"}}, \"ingest\": {\"routes\": []}}"
expect_refused bad-route-cluster "ingest.routes\[0\].cluster" "{$catalog, $good_cluster, \"ingest\": {\"routes\": [{\"match\": \"a/b\", \"topic\": \"t\", \"cluster\": \"nope\"}]}}"
expect_refused bad-placeholder "ingest.routes\[0\].topic: unknown placeholder {agg}" "{$catalog, $good_cluster, \"ingest\": {\"routes\": [{\"match\": \"events/{aggregate}/{id}\", \"topic\": \"events.{agg}\"}]}}"
expect_refused bad-pattern "ingest.routes\[0\].match" "{$catalog, $good_cluster, \"ingest\": {\"routes\": [{\"match\": \"a/#/b\", \"topic\": \"t\"}]}}"
expect_refused bad-mode "ingest.routes\[0\].kafka_mode" "{$catalog, $good_cluster, \"ingest\": {\"routes\": [{\"match\": \"a\", \"topic\": \"t\", \"kafka_mode\": \"fancy\"}]}}"
expect_refused bad-unmatched "ingest.unmatched" "{$catalog, $good_cluster, \"ingest\": {\"unmatched\": \"drop\", \"routes\": [$route]}}"
expect_refused bad-resend-clients "ingest.qos2_resend_clients" "{$catalog, $good_cluster, \"ingest\": {\"qos2_resend_clients\": -1, \"routes\": [$route]}}"
expect_refused bad-capture-pattern "ingest.routes\[0\].capture_pattern: '\[a-z' is not a PCRE2" "{$catalog, $good_cluster, \"ingest\": {\"routes\": [{\"match\": \"events/{aggregate}/{id}\", \"topic\": \"events.{aggregate}\", \"capture_pattern\": \"[a-z\"}]}}"
expect_refused bad-types "ingest.routes\[0\].types\[1\]: must be an event type" "{$catalog, $good_cluster, \"ingest\": {\"routes\": [{\"match\": \"events/{aggregate}/{id}\", \"topic\": \"events.{aggregate}\", \"types\": [\"example.order.*\", \"example.*.placed\"]}]}}"
expect_refused types-placeholder "ingest.routes\[0\].types\[0\]: unknown placeholder {client_id}" "{$catalog, $good_cluster, \"ingest\": {\"routes\": [{\"match\": \"events/{aggregate}/{id}\", \"topic\": \"events.{aggregate}\", \"types\": [\"example.{client_id}.*\"]}]}}"
expect_refused empty-types "ingest.routes\[0\].types: must be a non-empty array" "{$catalog, $good_cluster, \"ingest\": {\"routes\": [{\"match\": \"events/{aggregate}/{id}\", \"topic\": \"events.{aggregate}\", \"types\": []}]}}"
expect_refused response-topics-type "ingest.response_topics: must be an array" "{$catalog, $good_cluster, \"ingest\": {\"response_topics\": \"clients/{client_id}/replies\", \"routes\": [$route]}}"
expect_refused response-topics-placeholder "ingest.response_topics\[0\]: unknown placeholder {id}" "{$catalog, $good_cluster, \"ingest\": {\"response_topics\": [\"clients/{id}/replies\"], \"routes\": [$route]}}"
expect_refused response-topics-filter "ingest.response_topics\[1\]: 'r/#/x' is not a valid MQTT topic filter" "{$catalog, $good_cluster, \"ingest\": {\"response_topics\": [\"r/{sub}/#\", \"r/#/x\"], \"routes\": [$route]}}"
expect_refused journal-option "journal.colour: unknown option" "{$catalog, $good_cluster, \"ingest\": {\"routes\": []}, \"journal\": {\"dir\": \"$T/j\", \"colour\": 1}}"
expect_refused journal-sync "journal.sync" "{$catalog, $good_cluster, \"ingest\": {\"routes\": []}, \"journal\": {\"dir\": \"$T/j\", \"sync\": \"sometimes\"}}"
expect_refused journal-backoff "journal.retry_backoff_ms: must be an integer from 1 to 600000" "{$catalog, $good_cluster, \"ingest\": {\"routes\": []}, \"journal\": {\"dir\": \"$T/j\", \"retry_backoff_ms\": 0}}"
expect_refused journal-backoff-max "journal.retry_backoff_max_ms: must be at least retry_backoff_ms (500)" "{$catalog, $good_cluster, \"ingest\": {\"routes\": []}, \"journal\": {\"dir\": \"$T/j\", \"retry_backoff_ms\": 500, \"retry_backoff_max_ms\": 100}}"
expect_refused wake-value "outbound.wake: must be" "{$catalog, $good_cluster, \"ingest\": {\"routes\": []}, \"outbound\": {\"wake\": 5, \"routes\": [{\"kafka_topic\": \"n\", \"topic\": \"u/{key}\"}]}}"
regs='"registries": {"sr": {"url": "http://127.0.0.1:1"}, "other": {"url": "http://127.0.0.1:2"}}'
expect_refused outbound-registry-unknown 'outbound.routes\[0\].registry: must name an entry of "registries"' "{$catalog, $good_cluster, $regs, \"ingest\": {\"routes\": []}, \"outbound\": {\"routes\": [{\"kafka_topic\": \"n\", \"topic\": \"u/{key}\", \"registry\": \"nope\"}]}}"
expect_refused outbound-registry-mixed 'outbound.routes\[1\].registry: outbound.routes\[0\] reads Kafka topic n through another registry' "{$catalog, $good_cluster, $regs, \"ingest\": {\"routes\": []}, \"outbound\": {\"routes\": [{\"kafka_topic\": \"n\", \"type\": \"a\", \"topic\": \"u/{key}\", \"registry\": \"sr\"}, {\"kafka_topic\": \"n\", \"topic\": \"v/{key}\", \"registry\": \"other\"}]}}"
expect_refused topics-policy "topics.clusters.main.policy: must be" "{$catalog, $good_cluster, \"ingest\": {\"routes\": [$route]}, \"topics\": {\"clusters\": {\"main\": {\"policy\": \"strict\"}}}}"
expect_refused topics-finite "topics: ingest.routes\[0\].topic (\"events.{aggregate}\" on cluster main) wants finite retention" "{$catalog, $good_cluster, \"ingest\": {\"routes\": [$route]}, \"topics\": {\"clusters\": {\"main\": {\"policy\": \"verify\", \"configs\": {\"retention.ms\": 60000}}}}}"
expect_refused unset-env "TRIBUTARY_TEST_UNSET_VAR" "{$catalog, \"clusters\": {\"main\": {\"bootstrap.servers\": \"\${TRIBUTARY_TEST_UNSET_VAR}\"}}, \"ingest\": {\"routes\": []}}"
expect_refused registry-url "registries.sr.url: must start with http:// or https://" "{$catalog, $good_cluster, \"registries\": {\"sr\": {\"url\": \"ftp://x\"}}, \"ingest\": {\"routes\": []}}"
expect_refused registry-userinfo "registries.sr.basic.auth.user.info: must be USER:PASSWORD" "{$catalog, $good_cluster, \"registries\": {\"sr\": {\"url\": \"http://127.0.0.1:1\", \"basic.auth.user.info\": \"key\"}}, \"ingest\": {\"routes\": []}}"
expect_refused registry-max-age "registries.sr.max_age_s: must be 1 to 86400 seconds" "{$catalog, $good_cluster, \"registries\": {\"sr\": {\"url\": \"http://127.0.0.1:1\", \"max_age_s\": 0}}, \"ingest\": {\"routes\": []}}"
expect_refused registry-route "ingest.routes\[0\].registry: no registry named \"nope\"" "{$catalog, $good_cluster, \"ingest\": {\"routes\": [{\"match\": \"a\", \"topic\": \"t\", \"registry\": \"nope\"}]}}"
expect_refused confluent-catalog "ingest.routes\[0\].value_format: \"confluent\" needs a registry route" "{$catalog, $good_cluster, \"ingest\": {\"routes\": [{\"match\": \"a\", \"topic\": \"t\", \"value_format\": \"confluent\"}]}}"
# auth.internal_client_ids: required with internal_usernames, and never every id.
head -c 48 /dev/urandom | base64 | tr -d '\n' >"$T/jwt-secret"
auth="\"auth\": {\"keys\": \"$T/jwt-secret\", \"internal_usernames\": [\"relay\"]"
expect_refused internal-ids-missing "auth.internal_client_ids: required with internal_usernames" "{$catalog, $good_cluster, \"ingest\": {\"routes\": []}, $auth}}"
expect_refused internal-ids-all "auth.internal_client_ids: '\*\*' would reserve every client id" "{$catalog, $good_cluster, \"ingest\": {\"routes\": []}, $auth, \"internal_client_ids\": [\"relay-*\", \"**\"]}}"

# A schema that is not valid against its meta-schema is refused at load.
mkdir -p "$T/badcat"
echo '{"types": {"x.y": "x.json"}}' >"$T/badcat/catalog.json"
echo '{"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "objekt"}' >"$T/badcat/x.json"
expect_refused invalid-schema "schema for x.y" "{\"catalog\": \"$T/badcat/catalog.json\", $good_cluster, \"ingest\": {\"routes\": []}}"
