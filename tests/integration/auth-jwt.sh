#!/usr/bin/env bash
# JWT authentication and identity ACLs in the broker: tokens minted by
# tributary-jwt; valid ones connect, every kind of bad one is refused with a
# clear log line; users stay inside their own topics; tokens are enforced for
# the life of the connection; SIGHUP reloads the keys.
source "$(dirname "$0")/../lib/stack.sh"
stack_init

J="$BUILD/bin/tributary-jwt"
[[ -x "$J" ]] || fail "no $J (make $BUILD/bin/tributary-jwt)"
K="$T/keys"
for alg in RS256 ES256 HS256; do
	"$J" keygen --alg $alg --out "$K" >"$K-$alg.out" 2>&1 || fail "keygen $alg"
done
kid() { sed -n 's/^kid=//p' "$K-$1.out"; }
RS_KID=$(kid RS256) ES_KID=$(kid ES256) HS_KID=$(kid HS256)
# One JWKS with all three keys, as an identity provider would publish.
node -e '
const fs = require("fs");
const keys = process.argv.slice(1).flatMap((f) => JSON.parse(fs.readFileSync(f)).keys);
fs.writeFileSync(process.env.T + "/jwks.json", JSON.stringify({ keys }, null, 2));
' "$K/rs256-jwks.json" "$K/es256-jwks.json" "$K/hs256-jwks.json" || fail "jwks"

ISS=https://id.tributary.test/ AUD=tributary
export JWKS="$T/jwks.json"
cat >"$T/tributary-auth.json.in" <<'EOF'
{
  "broker_id": "auth-test",
  "catalog": "@ROOT@/schemas/catalog.json",
  "clusters": { "main": { "bootstrap.servers": "@KAFKA_BOOTSTRAP@" } },
  "ingest": {
    "unmatched": "pass",
    "response_topics": ["clients/{client_id}/replies", "users/{sub}/replies/#"],
    "routes": [ { "match": "events/{aggregate}/{id}", "topic": "events.{aggregate}", "key": "{id}" } ]
  },
  "auth": {
    "enabled": true,
    "keys": "@JWKS@",
    "issuer": ["https://other.test/", "https://id.tributary.test/"],
    "audience": "tributary",
    "leeway": 2,
    "username_claim": "preferred_username",
    "internal_usernames": ["relay"],
    "internal_client_ids": ["{username}-*"],
    "acl": {
      "publish": ["events/#", "users/{sub}/notifications"],
      "subscribe": ["users/{sub}/#", "clients/{client_id}/errors", "clients/{client_id}/replies"]
    }
  },
  "stats": { "sys_interval": 0 }
}
EOF
mosquitto_passwd -c -b "$T/passwd" relay relay-secret >/dev/null 2>&1 || fail "mosquitto_passwd"
# Mosquitto's own ACL, which governs only the internal (non-JWT) user "relay":
# a back-end service that reads and writes every user's notifications.
printf 'user relay\ntopic readwrite users/+/notifications\n' >"$T/acl"
cat >"$T/mosquitto.conf.in" <<'CONF'
per_listener_settings false
allow_anonymous false
persistence false
log_dest stderr
log_type all
log_timestamp true
connection_messages true
listener @MQTT_PORT@ 127.0.0.1
password_file @T@/passwd
acl_file @T@/acl
plugin @PLUGIN_PATH@
plugin_opt_config @TRIBUTARY_CONFIG@
CONF
start_kafka --topic events.order:3
# As start_mosquitto, with the configuration above instead of conf/dev's.
export TRIBUTARY_CONFIG="$T/tributary.json" PLUGIN_PATH="$BUILD/mosquitto_tributary.so"
render "$T/tributary-auth.json.in" "$TRIBUTARY_CONFIG"
render "$T/mosquitto.conf.in" "$T/mosquitto.conf"
env $(stack_san_env) mosquitto -c "$T/mosquitto.conf" >>"$T/mosquitto.log" 2>&1 &
MOSQUITTO_PID=$!
STACK_PIDS+=($MOSQUITTO_PID)
wait_port 127.0.0.1 "$MQTT_PORT" 15 || { cat "$T/mosquitto.log" >&2; fail "mosquitto did not start"; }
sleep 0.2
kill -0 "$MOSQUITTO_PID" 2>/dev/null || { cat "$T/mosquitto.log" >&2; fail "mosquitto exited (port $MQTT_PORT taken?)"; }
grep -q 'tributary: auth: JWT authentication on' "$T/mosquitto.log" ||
	fail "JWT authentication did not start"
grep -q "kid=$RS_KID algs=RS256" "$T/mosquitto.log" || fail "startup log does not list the keys"

sign() { "$J" sign --iss "$ISS" --aud "$AUD" "$@" || fail "sign $*"; }
TOKENS="$T/tokens.env"
{
	echo "VALID_RS=$(sign --key "$K/rs256-private.pem" --kid "$RS_KID" --sub alice --claim preferred_username=alice)"
	echo "VALID_ES=$(sign --key "$K/es256-private.pem" --kid "$ES_KID" --sub bob --claim preferred_username=bob)"
	echo "VALID_HS=$(sign --key "$K/hs256-secret" --alg HS256 --sub carol)"
	echo "VALID_NOKID=$(sign --key "$K/rs256-private.pem" --sub dave --iss https://other.test/)"
	echo "ALICE=$(sign --key "$K/rs256-private.pem" --kid "$RS_KID" --sub alice --claim preferred_username=alice)"
	echo "BOB=$(sign --key "$K/es256-private.pem" --kid "$ES_KID" --sub bob --claim preferred_username=bob)"
	echo "EXPIRED=$(sign --key "$K/rs256-private.pem" --sub alice --exp-in -60)"
	echo "NOT_YET=$(sign --key "$K/rs256-private.pem" --sub alice --nbf-in 300)"
	echo "WRONG_ISS=$("$J" sign --key "$K/rs256-private.pem" --sub alice --iss https://evil.test/ --aud "$AUD")"
	echo "WRONG_AUD=$("$J" sign --key "$K/rs256-private.pem" --sub alice --iss "$ISS" --aud billing)"
	good=$(sign --key "$K/es256-private.pem" --kid "$ES_KID" --sub alice)
	# Flip one character of the signature (keeping it valid base64url).
	last=${good: -2:1}
	[[ $last == A ]] && repl=B || repl=A
	echo "BAD_SIG=${good:0:${#good}-2}$repl${good: -1}"
	echo "ALG_NONE=$(sign --alg none --sub alice)"
	# The classic confusion: HMAC keyed with the RSA public key (which is public).
	echo "HS_WITH_PUBKEY=$(sign --alg HS256 --key "$K/rs256-public.pem" --kid "$RS_KID" --sub alice)"
	echo "MALFORMED=not.a-jwt"
	echo "SLASH_SUB=$(sign --key "$K/rs256-private.pem" --sub 'users/bob')"
	echo "WILDCARD_SUB=$(sign --key "$K/rs256-private.pem" --sub 'bob#')"
	# Subjects that try to forge or disguise log lines: U+2028, U+0085 (NEL),
	# U+202E (RLO), quotes, a newline. The first is refused (control
	# characters), the second accepted; both are logged escaped.
	forge=$'eve\xe2\x80\xa8FORGED-S1\xc2\x85\xe2\x80\xae\'"\nFORGED-S2'
	echo "FORGE_REFUSED=$(sign --key "$K/rs256-private.pem" --sub "$forge")"
	forge=$'eve\xe2\x80\xa8FORGED-S3\xe2\x80\xae\'"'
	echo "FORGE_OK=$(sign --key "$K/rs256-private.pem" --sub "$forge")"
} >"$TOKENS"
grep -q '=$' "$TOKENS" && fail "a token could not be minted: $(grep '=$' "$TOKENS")"

set -a
source "$TOKENS"
set +a
cd "$ROOT" && node --test --test-concurrency=1 tests/node/auth.mjs || fail "auth tests failed"

# A token valid for 4 more seconds (+2 s leeway): the broker ends the
# connection when it expires, not only refuses it at the next CONNECT.
SHORT=$(sign --key "$K/rs256-private.pem" --sub erin --exp-in 4)
out=$(node tests/node/auth.mjs expiry c-short "$SHORT") || fail "expiry: $out"
echo "$out" | grep -qE '^closed after [0-9]+ ms$' || fail "expiry: $out"
ms=$(echo "$out" | grep -oE '[0-9]+')
((ms >= 2500 && ms <= 12000)) || fail "connection closed $ms ms after connecting (token lived 4 s + 2 s leeway)"

# Every refusal is one clear log line naming the client and the reason.
expect_log() {
	grep -qF -- "$1" "$T/mosquitto.log" || fail "no log line containing: $1"
}
expect_log "tributary: auth: refused client 'c-expired' from 127.0.0.1: expired: token expired at"
expect_log "tributary: auth: refused client 'c-not-yet' from 127.0.0.1: not_yet_valid: token not valid before"
expect_log "refused client 'c-wrong-iss' from 127.0.0.1: issuer: issuer 'https://evil.test/' not accepted"
expect_log "refused client 'c-wrong-aud' from 127.0.0.1: audience: audience 'billing' not accepted"
expect_log "refused client 'c-bad-sig' from 127.0.0.1: bad_signature: signature verification failed"
expect_log "refused client 'c-alg-none' from 127.0.0.1: alg_none: algorithm none is not allowed"
expect_log "refused client 'c-hs-pubkey' from 127.0.0.1: alg_key_mismatch: HS256 not allowed for an RSA key (kid '$RS_KID')"
expect_log "refused client 'c-malformed' from 127.0.0.1: malformed:"
expect_log "refused client 'c-no-token' from 127.0.0.1: no token"
expect_log "refused client 'c-user-mismatch' from 127.0.0.1: username 'mallory' does not match the token's 'preferred_username' claim"
expect_log "refused client 'c-slash' from 127.0.0.1: identity 'users/bob' contains '/'"
expect_log "refused client 'c-wild' from 127.0.0.1: identity 'bob#' contains '#'"
expect_log "refused client 'c+plus' from 127.0.0.1: client id contains '+'"
expect_log "refused client 'c-taken' from 127.0.0.1: client id is bound to another identity's session ('alice')"
expect_log "tributary: acl: client 'c-alice' (alice) may not subscribe to 'users/bob/#'"
expect_log "tributary: acl: client 'c-alice' (alice) may not publish to 'users/bob/notifications'"
expect_log "tributary: auth: disconnecting client 'c-short': token expired"
expect_log "tributary: auth: client 'c-rs' authenticated as 'alice' (RS256, kid $RS_KID)"
# Client ids of internal users are theirs alone.
reserved="client id is reserved for internal clients (auth.internal_client_ids)"
expect_log "refused client 'relay-5' from 127.0.0.1: $reserved; identity 'alice'"
expect_log "refused client 'relay-other' from 127.0.0.1: $reserved; identity 'bob'"
expect_log "refused client 'svc-1' from 127.0.0.1: internal user 'relay' must use a client id matching auth.internal_client_ids"

# Client-controlled strings are escaped (\xNN, \u{NNNN}, \' \"): nothing
# starts a line of its own, no line separator, C1 or bidi control is written raw.
weird="c-FORGED-C\\u{2028}\\u{202e}\\'\\\""
expect_log "tributary: auth: client '$weird' authenticated as 'carol'"
expect_log "tributary: acl: client '$weird' (carol) may not publish to 'users/bob/FORGED-T\\u{2028}\\u{202e}\\''"
grep -aF "tributary: rejected event from '$weird' on 'events/order/" "$T/mosquitto.log" |
	grep -qF "x FORGED-E\\u{2028}\\u{202e}\\'" || fail "the rejected event's type is not logged escaped"
expect_log "refused client 'c-forge' from 127.0.0.1: identity 'eve\\u{2028}FORGED-S1\\u{0085}\\u{202e}\\'\\\"\\x0aFORGED-S2' contains a control character"
expect_log "tributary: auth: client 'c-forge' authenticated as 'eve\\u{2028}FORGED-S3\\u{202e}\\'\\\"' (RS256)"
grep -a '^FORGED\|^[^0-9]' "$T/mosquitto.log" | grep -a FORGED && fail "a client string started a log line of its own"
LC_ALL=C grep -a 'tributary:' "$T/mosquitto.log" | LC_ALL=C grep -a $'\xe2\x80[\xa8\xa9\xaa-\xae]\|\xc2[\x80-\x9f]' &&
	fail "a plugin log line holds a raw line separator, C1 or bidi control"

# Reload with a key set that no longer holds the RSA key: a fresh RSA token is
# refused, the ES256 one still accepted, and the log says what was loaded.
node -e '
const fs = require("fs");
const keys = JSON.parse(fs.readFileSync(process.env.JWKS)).keys.filter((k) => k.kty !== "RSA");
fs.writeFileSync(process.env.JWKS, JSON.stringify({ keys }));
' || fail "rewrite jwks"
kill -HUP "$MOSQUITTO_PID"
wait_log "$T/mosquitto.log" 'tributary: auth: reloaded' 5 || fail "SIGHUP: no auth reload logged"
expect_log "tributary: auth: reloaded: JWT keys from $JWKS: EC 256 kid=$ES_KID"
RS_AFTER=$(sign --key "$K/rs256-private.pem" --kid "$RS_KID" --sub alice)
ES_AFTER=$(sign --key "$K/es256-private.pem" --kid "$ES_KID" --sub bob)
node tests/node/auth.mjs connect c-reload-rs "" "$RS_AFTER" | grep -qx 'refused 135' || fail "RSA token accepted after its key was removed"
node tests/node/auth.mjs connect c-reload-es "" "$ES_AFTER" | grep -qx 'connected' || fail "ES256 token refused after reload"
expect_log "refused client 'c-reload-rs' from 127.0.0.1: no_key: no key with kid '$RS_KID'"
kill -0 "$MOSQUITTO_PID" || fail "mosquitto died"
pass "JWT authentication and ACLs"
