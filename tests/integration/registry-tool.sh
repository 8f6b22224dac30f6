#!/usr/bin/env bash
# tributary-registry push|check|diff (docs/registry.md) against the dev
# Schema Registry (tributary-registry-dev, its state in Kafka's _schemas),
# with Confluent's own client (@confluentinc/schemaregistry, in
# tests/node/registry-referee.mjs) as the referee of what got registered:
# subjects, versions, references, schema text, and that its JSON Schema
# serializer resolves the references. Also: an incompatible change refused
# by check and push (exit 1), a compatible one pushed as version 2, the
# registry's state surviving its restart, a wrong password, the
# topic-record strategy. Avro in the dev registry (registry-avro-dev.mjs).
source "$(dirname "$0")/../lib/stack.sh"
[[ -d "$ROOT/node_modules/@confluentinc/schemaregistry" ]] ||
	skip "@confluentinc/schemaregistry is not installed (npm ci)"
stack_init
start_kafka
USER_PASS=tributary:dev-secret
start_registry --user "$USER_PASS"
REG=("$BUILD/bin/tributary-registry")
AUTH=(--registry "$REGISTRY_URL" --user tributary --password dev-secret)
CATALOG="$ROOT/schemas/catalog.json"
NFILES=$(node -e 'const c = JSON.parse(require("fs").readFileSync(process.argv[1]));
console.log(Object.keys(c.types).length + (c.resources || []).length)' "$CATALOG")
# json_edit IN OUT EXPR: OUT is IN's JSON document d after the JavaScript EXPR.
json_edit() {
	node -e 'const fs = require("fs"); const d = JSON.parse(fs.readFileSync(process.argv[1]));
(new Function("d", process.argv[3]))(d); fs.writeFileSync(process.argv[2], JSON.stringify(d, null, 2) + "\n")' "$@"
}

# reg NAME ARGS...: the tool's output in $T/NAME.out (stdout and stderr); its status.
reg() {
	local name=$1
	shift
	"${REG[@]}" "$@" >"$T/$name.out" 2>&1
}
referee() {
	REGISTRY_USER_INFO=$USER_PASS node "$ROOT/tests/node/registry-referee.mjs" "$@" >>"$T/referee.out" 2>&1 ||
		{ cat "$T/referee.out" >&2; fail "the Confluent client disagrees: $*"; }
}

# Before anything: every subject is new.
reg diff0 diff "${AUTH[@]}" "$CATALOG" || { cat "$T/diff0.out" >&2; fail "diff on an empty registry"; }
(($(grep -c '^new subject' "$T/diff0.out") == NFILES)) || { cat "$T/diff0.out" >&2; fail "diff0: not all new"; }

reg push1 push "${AUTH[@]}" "$CATALOG" || { cat "$T/push1.out" >&2; fail "push"; }
(($(grep -c '^registered .* version 1 ' "$T/push1.out") == NFILES)) || { cat "$T/push1.out" >&2; fail "push1"; }
# The referenced schema went first, so that its referrers can name it.
head -1 "$T/push1.out" | grep -q '^registered   common.order-line ' || { cat "$T/push1.out" >&2; fail "reference not first"; }
referee "$CATALOG" record
pass "push: $NFILES subjects, read back by the Confluent client with their references"

reg diff1 diff "${AUTH[@]}" "$CATALOG" || fail "diff after push"
(($(grep -c '^unchanged' "$T/diff1.out") == NFILES)) || { cat "$T/diff1.out" >&2; fail "diff after push: not all unchanged"; }
reg push2 push "${AUTH[@]}" "$CATALOG" || fail "push again"
grep -q '^registered .* version 2' "$T/push2.out" && { cat "$T/push2.out" >&2; fail "a second push made new versions"; }
pass "diff after push: all unchanged; pushing again changes nothing"

# An incompatible change: a new required property (old events lack it).
cp -r "$ROOT/schemas" "$T/bad"
json_edit "$ROOT/schemas/events/example.order.cancelled.json" "$T/bad/events/example.order.cancelled.json" \
	'd.properties.refundId = {type: "string"}; d.required.push("refundId")'
reg check-bad check "${AUTH[@]}" "$T/bad/catalog.json"
rc=$?
((rc == 1)) || { cat "$T/check-bad.out" >&2; fail "check of an incompatible schema: exit $rc, not 1"; }
grep -q '^INCOMPATIBLE example.order.cancelled' "$T/check-bad.out" && grep -q 'new required property refundId' "$T/check-bad.out" ||
	{ cat "$T/check-bad.out" >&2; fail "check did not name the incompatible schema and why"; }
(($(grep -c '^unchanged' "$T/check-bad.out") == NFILES - 1)) || { cat "$T/check-bad.out" >&2; fail "check: the others"; }
reg push-bad push "${AUTH[@]}" "$T/bad/catalog.json"
rc=$?
((rc == 1)) && grep -q 'register example.order.cancelled: HTTP 409' "$T/push-bad.out" ||
	{ cat "$T/push-bad.out" >&2; fail "push of an incompatible schema: exit $rc"; }
referee "$CATALOG" record # still version 1 everywhere, the same text
pass "check and push refuse a new required property (exit 1)"

# The dev registry's simplified JSON Schema rules (docs/registry.md), one
# change each: FILE, JavaScript on its document d, the reason check must
# print (or "compatible").
n=0
while IFS='|' read -r file change want; do
	n=$((n + 1))
	rm -rf "$T/rule"
	cp -r "$ROOT/schemas" "$T/rule"
	json_edit "$ROOT/schemas/$file" "$T/rule/$file" "$change"
	reg "rule$n" check "${AUTH[@]}" "$T/rule/catalog.json"
	rc=$?
	if [[ $want == compatible ]]; then
		((rc == 0)) && grep -q '^compatible ' "$T/rule$n.out" || { cat "$T/rule$n.out" >&2; fail "rule $n ($change): exit $rc, not compatible"; }
	else
		((rc == 1)) && grep -qF -- "$want" "$T/rule$n.out" || { cat "$T/rule$n.out" >&2; fail "rule $n ($change): exit $rc, not '$want'"; }
	fi
done <<'RULES'
events/example.order.placed.json|d.properties.total.type = "integer"|/properties/total: type narrowed
events/example.order.placed.json|delete d.properties.currency; d.required = d.required.filter((x) => x !== "currency")|property removed under additionalProperties: false currency
events/example.notification.json|d.additionalProperties = false|/: additionalProperties turned false
events/example.notification.json|d.properties.message.enum = ["a", "b"]|/properties/message: enum added
common/order-line.json|d.properties.qty.type = "string"|/properties/qty: type narrowed
common/order-line.json|d.properties.qty.type = "number"|compatible
events/example.notification.json|d.properties.extra = {type: "boolean"}|compatible
RULES
pass "check: the dev registry's $n compatibility rules, each on its own change"

# The subject's own compatibility level: NONE lets it through.
put_level() { # SUBJECT LEVEL
	curl -sf -u "$USER_PASS" -X PUT -H 'Content-Type: application/vnd.schemaregistry.v1+json' \
		-d "{\"compatibility\": \"$2\"}" "$REGISTRY_URL/config/$1" >/dev/null || fail "PUT /config/$1 $2"
}
put_level example.order.cancelled NONE
reg check-none check "${AUTH[@]}" "$T/bad/catalog.json" || { cat "$T/check-none.out" >&2; fail "check under NONE"; }
grep -q '^compatible   example.order.cancelled with version 1, NONE ' "$T/check-none.out" ||
	{ cat "$T/check-none.out" >&2; fail "check does not say the subject's level"; }
put_level example.order.cancelled BACKWARD
pass "check names the subject's compatibility level (GET /config/SUBJECT)"

# A compatible change: a new optional property, version 2; its referrers unchanged.
cp -r "$ROOT/schemas" "$T/good"
json_edit "$ROOT/schemas/common/order-line.json" "$T/good/common/order-line.json" 'd.properties.note = {type: "string"}'
reg check-good check "${AUTH[@]}" "$T/good/catalog.json" || { cat "$T/check-good.out" >&2; fail "check of a compatible change"; }
grep -q '^compatible   common.order-line with version 1, BACKWARD ' "$T/check-good.out" || { cat "$T/check-good.out" >&2; fail "check-good"; }
reg diff-good diff "${AUTH[@]}" "$T/good/catalog.json" || fail "diff-good"
grep -q '^new version  common.order-line version 2' "$T/diff-good.out" || { cat "$T/diff-good.out" >&2; fail "diff-good"; }
# The referrers name the new version of their reference: new versions too.
grep -q '^new version  example.order.placed version 2' "$T/diff-good.out" || { cat "$T/diff-good.out" >&2; fail "diff-good: referrer"; }
reg push-good push "${AUTH[@]}" "$T/good/catalog.json" || { cat "$T/push-good.out" >&2; fail "push-good"; }
referee "$T/good/catalog.json" record
pass "a new optional property: check passes, diff and push make version 2, references follow"

# The registry's state is in Kafka: a new registry process has it all.
kill -TERM "$REGISTRY_PID"
wait "$REGISTRY_PID" 2>/dev/null
start_registry --user "$USER_PASS" --bearer dev-token
reg diff-restart diff "${AUTH[@]}" "$T/good/catalog.json" || fail "diff after restart"
(($(grep -c '^unchanged' "$T/diff-restart.out") == NFILES)) || { cat "$T/diff-restart.out" >&2; fail "state lost across a restart"; }
referee "$T/good/catalog.json" record
pass "a restarted registry reads its state back from _schemas"

reg wrong diff --registry "$REGISTRY_URL" --user tributary --password wrong "$CATALOG"
rc=$?
((rc == 1)) && grep -q 'HTTP 401' "$T/wrong.out" && grep -q 'refused the credentials' "$T/wrong.out" ||
	{ cat "$T/wrong.out" >&2; fail "a wrong password: exit $rc"; }
pass "a wrong password: a clear error, exit 1"
reg bearer diff --registry "$REGISTRY_URL" --bearer dev-token "$T/good/catalog.json" || { cat "$T/bearer.out" >&2; fail "--bearer"; }
(($(grep -c '^unchanged' "$T/bearer.out") == NFILES)) || { cat "$T/bearer.out" >&2; fail "--bearer: diff"; }
reg bearer-wrong diff --registry "$REGISTRY_URL" --bearer other-token "$CATALOG"
rc=$?
((rc == 1)) && grep -q 'HTTP 401' "$T/bearer-wrong.out" || { cat "$T/bearer-wrong.out" >&2; fail "a wrong bearer token: exit $rc"; }
pass "a bearer token: accepted; a wrong one: exit 1"

reg topic-record push "${AUTH[@]}" --strategy topic-record --topic events.order "$CATALOG" ||
	{ cat "$T/topic-record.out" >&2; fail "push --strategy topic-record"; }
referee "$CATALOG" topic-record events.order
pass "--strategy topic-record: subjects TOPIC-TYPE"

# The dev registry's Avro, with Confluent's client (registry-avro-dev.mjs).
REGISTRY_USER_INFO=$USER_PASS node "$ROOT/tests/node/registry-avro-dev.mjs" >"$T/avro-dev.out" 2>&1 ||
	{ cat "$T/avro-dev.out" "$T/registry.log" >&2; fail "the dev registry's Avro"; }
pass "dev registry Avro: registered, looked up, invalid refused 42201, compatibility, Confluent's serde"

# Bad usage and a broken catalog: exit 2, a clear message, nothing registered.
reg usage1 push "${AUTH[@]}" --strategy topic "$CATALOG"
(($? == 2)) && grep -q 'need --topic' "$T/usage1.out" || { cat "$T/usage1.out" >&2; fail "--strategy topic without --topic"; }
reg usage2 push "${AUTH[@]}" --retries many "$CATALOG"
(($? == 2)) && grep -q -- '--retries: 0 to 100' "$T/usage2.out" || { cat "$T/usage2.out" >&2; fail "--retries many"; }
cp -r "$ROOT/schemas" "$T/broken"
echo '{"type": "object", "minProperties": "two"}' >"$T/broken/events/example.notification.json"
reg broken push "${AUTH[@]}" "$T/broken/catalog.json"
(($? == 2)) && grep -q 'example.notification.json' "$T/broken.out" || { cat "$T/broken.out" >&2; fail "a broken catalog"; }
grep -q . <(grep '^registered' "$T/broken.out") && fail "a broken catalog reached the registry"
# Two files with one $id: which one a $ref names would be a guess.
cp -r "$ROOT/schemas" "$T/dup"
cp "$T/dup/common/order-line.json" "$T/dup/common/other.json"
json_edit "$T/dup/catalog.json" "$T/dup/catalog.json" 'd.resources.push("common/other.json")'
reg dup push "${AUTH[@]}" "$T/dup/catalog.json"
(($? == 2)) && grep -q 'have the same \$id' "$T/dup.out" || { cat "$T/dup.out" >&2; fail "two files with one \$id"; }
pass "bad usage, a broken schema, an ambiguous \$id: exit 2 before anything reaches the registry"

# HTTPS: the registry's certificate verified against --ca; without it, refused.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj /CN=tributary-test-ca -keyout "$T/ca.key" -out "$T/ca.pem" >>"$T/openssl.log" 2>&1 &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=127.0.0.1 \
		-keyout "$T/srv.key" -out "$T/srv.csr" >>"$T/openssl.log" 2>&1 &&
	openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
		-extfile <(printf 'subjectAltName=IP:127.0.0.1\n') -out "$T/srv.pem" >>"$T/openssl.log" 2>&1 ||
	{ cat "$T/openssl.log" >&2; fail "openssl: test certificates"; }
kill -TERM "$REGISTRY_PID"
wait "$REGISTRY_PID" 2>/dev/null
start_registry --user "$USER_PASS" --tls-cert "$T/srv.pem" --tls-key "$T/srv.key"
HTTPS=(--registry "https://127.0.0.1:$REGISTRY_PORT" --user tributary --password dev-secret)
reg tls diff "${HTTPS[@]}" --ca "$T/ca.pem" "$CATALOG" || { cat "$T/tls.out" >&2; fail "https with --ca"; }
(($(grep -c '^unchanged' "$T/tls.out") == NFILES)) || { cat "$T/tls.out" >&2; fail "https: diff"; }
reg tls-noca diff "${HTTPS[@]}" "$CATALOG"
rc=$?
((rc == 1)) && grep -qi 'certificate' "$T/tls-noca.out" || { cat "$T/tls-noca.out" >&2; fail "https without the CA: exit $rc"; }
pass "https: verified with --ca; an unknown CA refused (exit 1)"
