#!/usr/bin/env bash
# tributary_jwt in nginx: tokens minted by tributary-jwt (RS256, ES256,
# HS256) from the Authorization header, a cookie or the query string give
# 200 and the right $tributary_jwt_sub / $tributary_jwt_claim_*; every kind of
# bad token gives 401 with a Bearer challenge and an info line in the error
# log; over SSE and WebSocket a user only ever gets the records of their own
# key, whatever the query string asks for; the auth_request variant does the
# same with an external auth service; /mqtt is checked before the relay; a
# reload reads the keys again; bad configurations are refused by nginx -t.
source "$(dirname "$0")/../lib/stack.sh"
STREAM_CONF="$ROOT/tests/integration/auth-nginx.conf.in"
source "$(dirname "$0")/stream-common.inc"
stack_init

J="$BUILD/bin/tributary-jwt"
[[ -x "$J" ]] || fail "no $J (make $BUILD/bin/tributary-jwt)"
K="$T/keys"
for alg in RS256 ES256 HS256; do
	"$J" keygen --alg $alg --out "$K" >"$K-$alg.out" 2>&1 || fail "keygen $alg"
done
kid() { sed -n 's/^kid=//p' "$K-$1.out"; }
RS_KID=$(kid RS256) ES_KID=$(kid ES256) HS_KID=$(kid HS256)
node -e '
const fs = require("fs");
const keys = process.argv.slice(1).flatMap((f) => JSON.parse(fs.readFileSync(f)).keys);
fs.writeFileSync(process.env.T + "/jwks.json", JSON.stringify({ keys }, null, 2));
' "$K/rs256-jwks.json" "$K/es256-jwks.json" "$K/hs256-jwks.json" || fail "jwks"
export JWKS="$T/jwks.json"
echo "whoami" >"$T/whoami.txt"

ISS=https://id.tributary.test/ AUD=tributary
sign() { "$J" sign --iss "$ISS" --aud "$AUD" "$@" || fail "sign $*"; }
RS=$(sign --key "$K/rs256-private.pem" --kid "$RS_KID" --sub alice --claim "name=Alice Liddell" \
	--claim-json 'roles=["admin","dev"]' --claim-json level=3 --claim preferred_username=alice2)
ES=$(sign --key "$K/es256-private.pem" --kid "$ES_KID" --sub bob)
HS=$(sign --key "$K/hs256-secret" --alg HS256 --kid "$HS_KID" --sub carol)
NOKID=$(sign --key "$K/rs256-private.pem" --sub dave --iss https://other.test/)
ALICE=$(sign --key "$K/es256-private.pem" --kid "$ES_KID" --sub alice)
BOB=$(sign --key "$K/rs256-private.pem" --kid "$RS_KID" --sub bob)
EXPIRED=$(sign --key "$K/rs256-private.pem" --sub alice --exp-in -60)
NOT_YET=$(sign --key "$K/rs256-private.pem" --sub alice --nbf-in 300)
WRONG_ISS=$("$J" sign --key "$K/rs256-private.pem" --sub alice --iss https://evil.test/ --aud "$AUD")
WRONG_AUD=$("$J" sign --key "$K/rs256-private.pem" --sub alice --iss "$ISS" --aud billing)
good=$(sign --key "$K/es256-private.pem" --kid "$ES_KID" --sub alice)
last=${good: -2:1}
[[ $last == A ]] && repl=B || repl=A
BAD_SIG=${good:0:${#good}-2}$repl${good: -1}
ALG_NONE=$(sign --alg none --sub alice)
# HMAC keyed with the RSA public key, which anyone can have
HS_WITH_PUBKEY=$(sign --alg HS256 --key "$K/rs256-public.pem" --kid "$RS_KID" --sub alice)
SLASH_SUB=$(sign --key "$K/rs256-private.pem" --sub 'users/bob')
NO_SUB=$(sign --key "$K/rs256-private.pem")
for v in RS ES HS NOKID ALICE BOB EXPIRED NOT_YET WRONG_ISS WRONG_AUD BAD_SIG ALG_NONE HS_WITH_PUBKEY SLASH_SUB NO_SUB; do
	[[ -n "${!v}" ]] || fail "token $v could not be minted"
done

stream_start
BASE="http://127.0.0.1:$HTTP_PORT"
LOG="$NGINX_PREFIX/logs/error.log"

# req NAME CURL_ARGS...: status code; response headers in $T/h-NAME
req() {
	local name=$1
	shift
	curl -s -o "$T/b-$name" -D "$T/h-$name" -w '%{http_code}' "$@"
}
hdr() { # NAME HEADER: the header's value
	sed -n "s/^$2: \(.*\)\r$/\1/Ip" "$T/h-$1" | head -1
}
expect_ok() { # NAME SUB CURL_ARGS...
	local name=$1 sub=$2 code
	shift 2
	code=$(req "$name" "$@")
	[[ $code == 200 ]] || fail "$name: HTTP $code, not 200 ($(hdr "$name" WWW-Authenticate); $(grep -a "case=$name" "$LOG" | tail -1))"
	[[ "$(hdr "$name" X-Jwt-Sub)" == "$sub" ]] || fail "$name: subject '$(hdr "$name" X-Jwt-Sub)', not '$sub'"
}
# expect_401 NAME DESCRIPTION LOG_TEXT CURL_ARGS...: 401, the challenge with
# that error_description, and an info line with LOG_TEXT for this request.
expect_401() {
	local name=$1 desc=$2 text=$3 code challenge
	shift 3
	code=$(req "$name" "$@")
	[[ $code == 401 ]] || fail "$name: HTTP $code, not 401"
	challenge=$(hdr "$name" WWW-Authenticate)
	if [[ -z "$desc" ]]; then
		[[ "$challenge" == "Bearer" ]] || fail "$name: challenge '$challenge', not a bare 'Bearer'"
	else
		[[ "$challenge" == "Bearer error=\"invalid_token\", error_description=\"$desc\"" ]] ||
			fail "$name: challenge '$challenge'"
	fi
	[[ -z "$(hdr "$name" X-Jwt-Sub)" ]] || fail "$name: a subject on a 401"
	for _ in $(seq 1 20); do
		grep -aF "case=$name" "$LOG" | grep -aF '[info]' | grep -qaF "tributary_jwt: $text" && return 0
		sleep 0.05
	done
	fail "$name: no info line 'tributary_jwt: $text' for the request; got: $(grep -aF "case=$name" "$LOG")"
}

# --- valid tokens, each source --------------------------------------------
W="$BASE/whoami"
expect_ok rs-header alice -H "Authorization: Bearer $RS" "$W?case=rs-header"
[[ "$(hdr rs-header X-Jwt-Name)" == "Alice Liddell" ]] || fail "claim name: '$(hdr rs-header X-Jwt-Name)'"
[[ "$(hdr rs-header X-Jwt-Roles)" == "admin,dev" ]] || fail "array claim: '$(hdr rs-header X-Jwt-Roles)'"
[[ "$(hdr rs-header X-Jwt-Level)" == "3" ]] || fail "number claim: '$(hdr rs-header X-Jwt-Level)'"
[[ "$(cat "$T/b-rs-header")" == whoami ]] || fail "body: $(cat "$T/b-rs-header")"
expect_ok es-cookie bob --cookie "theme=dark; access_token=$ES" "$W?case=es-cookie"
expect_ok hs-query carol "$W?case=hs-query&access_token=$HS"
expect_ok nokid dave -H "Authorization: Bearer $NOKID" "$W?case=nokid"
expect_ok lowercase-scheme alice -H "Authorization: bearer   $RS" "$W?case=lowercase-scheme"
pass "RS256 from the header, ES256 from a cookie, HS256 from the query; claims as variables"

# the first source holding a value decides; other schemes are not tokens
expect_ok order bob -H "Authorization: Bearer $ES" --cookie "access_token=$HS" "$W?case=order&access_token=$RS"
expect_ok cookie-before-query carol --cookie "access_token=$HS" "$W?case=cookie-before-query&access_token=$RS"
expect_ok basic-skipped carol -H "Authorization: Basic YWxpY2U6cHc=" "$W?case=basic-skipped&access_token=$HS"
expect_401 bad-header-wins "invalid signature" "invalid token: bad_signature: signature verification failed" \
	-H "Authorization: Bearer $BAD_SIG" "$W?case=bad-header-wins&access_token=$RS"
pass "header, then cookie, then query; a bad header token is not rescued by the query"

# per-location policy: identity claim and algorithms
expect_ok username-claim alice2 -H "Authorization: Bearer $RS" "$BASE/whoami-username?case=username-claim"
expect_401 username-es "algorithm not accepted" "invalid token: alg_not_allowed: algorithm ES256 is not allowed" \
	-H "Authorization: Bearer $ES" "$BASE/whoami-username?case=username-es"
code=$(req open -H "Authorization: Bearer $RS" "$BASE/open")
[[ $code == 200 && "$(hdr open X-Jwt-Sub)" == "[]" ]] || fail "/open: $code '$(hdr open X-Jwt-Sub)'"
pass "tributary_jwt_identity_claim, tributary_jwt_algorithms; no variables where tributary_jwt is off"

# --- refusals ---------------------------------------------------------------
expect_401 missing "" "no token (looked in \$http_authorization \$cookie_access_token \$arg_access_token)" "$W?case=missing"
expect_401 empty-bearer "malformed token" "invalid token: malformed:" -H "Authorization: Bearer " "$W?case=empty-bearer"
expect_401 expired "token expired" "invalid token: expired: token expired at" \
	-H "Authorization: Bearer $EXPIRED" "$W?case=expired"
expect_401 not-yet "token not yet valid" "invalid token: not_yet_valid: token not valid before" \
	"$W?case=not-yet&access_token=$NOT_YET"
expect_401 wrong-iss "issuer not accepted" "invalid token: issuer: issuer 'https://evil.test/' not accepted" \
	--cookie "access_token=$WRONG_ISS" "$W?case=wrong-iss"
expect_401 wrong-aud "audience not accepted" "invalid token: audience: audience 'billing' not accepted" \
	-H "Authorization: Bearer $WRONG_AUD" "$W?case=wrong-aud"
expect_401 bad-sig "invalid signature" "invalid token: bad_signature: signature verification failed" \
	-H "Authorization: Bearer $BAD_SIG" "$W?case=bad-sig"
expect_401 alg-none "algorithm not accepted" "invalid token: alg_none: algorithm none is not allowed" \
	-H "Authorization: Bearer $ALG_NONE" "$W?case=alg-none"
expect_401 hs-pubkey "algorithm not accepted" "invalid token: alg_key_mismatch: HS256 not allowed for an RSA key (kid '$RS_KID')" \
	-H "Authorization: Bearer $HS_WITH_PUBKEY" "$W?case=hs-pubkey"
expect_401 malformed "malformed token" "invalid token: malformed:" -H "Authorization: Bearer not.a-jwt" "$W?case=malformed"
expect_401 slash-sub "invalid identity" "invalid token: identity claim \"sub\" 'users/bob' contains '/'" \
	-H "Authorization: Bearer $SLASH_SUB" "$W?case=slash-sub"
expect_401 no-sub "invalid identity" "invalid token: identity claim \"sub\" is missing (RS256" \
	-H "Authorization: Bearer $NO_SUB" "$W?case=no-sub"
expect_401 only-basic "" "no token" -H "Authorization: Basic YWxpY2U6cHc=" "$W?case=only-basic"
big=$(head -c 20000 /dev/zero | tr '\0' a)
expect_401 too-large "token too large" "invalid token: too_large:" "$W?case=too-large&access_token=$big"
pass "expired, not yet valid, issuer, audience, signature, alg none, HS256 with the RSA key, malformed, no identity, missing -> 401"

# the WebSocket handshake of /mqtt is checked before the relay takes it
ws_upgrade() { # NAME CURL_ARGS...
	req "$1" -m 3 -H "Upgrade: websocket" -H "Connection: Upgrade" -H "Sec-WebSocket-Version: 13" \
		-H "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==" -H "Sec-WebSocket-Protocol: mqtt" "${@:2}"
}
code=$(ws_upgrade mqtt-none "$BASE/mqtt?case=mqtt-none")
[[ $code == 401 ]] || fail "/mqtt without a token: $code"
code=$(ws_upgrade mqtt-ok "$BASE/mqtt?case=mqtt-ok&access_token=$HS")
[[ $code == 101 ]] || fail "/mqtt with a token: $code, not 101"
pass "/mqtt: no token -> 401, a token -> 101"

# --- the stream: a user gets their own key only -------------------------------
printf 'alice:for-alice-1\nbob:for-bob-1\nalice:for-alice-2\nbob:for-bob-2\nalice:for-alice-3\nbob:for-bob-3\n' | produce -K:
N="$BASE/notifications"
sse() { # NAME CURL_ARGS...: 7 s of the stream
	local name=$1
	shift
	curl -sN -m 7 -D "$T/h-$name" -o "$T/sse-$name" "$@" &
}
sse alice-query "$N?access_token=$ALICE&user=bob&key=bob&from=beginning&case=alice-query"
p1=$!
sse alice-header -H "Authorization: Bearer $ALICE" "$N?user=bob&from=beginning&tributary_jwt_sub=bob"
p2=$!
sse bob-cookie --cookie "access_token=$BOB" "$N?from=beginning&access_token=$ALICE&user=alice"
p3=$!
sse ext-alice -H "X-Api-Key: secret-alice" -H "X-User: bob" "$BASE/ext/notifications?from=beginning&user=bob"
p4=$!
node "$NODE_DIR/stream-client.mjs" sse "$N?access_token=$ALICE&user=bob&from=beginning" 4 15000 \
	>"$T/alice-es.jsonl" 2>"$T/alice-es.err" &
p5=$!
node "$NODE_DIR/stream-client.mjs" ws "ws://127.0.0.1:$HTTP_PORT/notifications?access_token=$ALICE&user=bob&from=beginning" \
	4 15000 >"$T/alice-ws.jsonl" 2>"$T/alice-ws.err" &
p6=$!
stream_wait_subscribers 6
# live records too, not only the replayed history
printf 'bob:for-bob-4\nalice:for-alice-4\n' | produce -K:

code=$(curl -s -o /dev/null -w '%{http_code}' "$N?user=alice&from=beginning")
[[ $code == 401 ]] || fail "stream without a token: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' "$N?access_token=$EXPIRED&from=beginning")
[[ $code == 401 ]] || fail "stream with an expired token: $code"
code=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Api-Key: wrong" "$BASE/ext/notifications?user=alice&from=beginning")
[[ $code == 401 ]] || fail "auth_request stream with a bad API key: $code"

wait $p5 || fail "EventSource as alice: $(cat "$T/alice-es.err")"
wait $p6 || fail "WebSocket as alice: $(cat "$T/alice-ws.err")"
for p in $p1 $p2 $p3 $p4; do wait $p; done
# count NAME WHO: events for WHO in that stream
count() { grep -c "^data: for-$2-" "$T/sse-$1"; }
for name in alice-query alice-header ext-alice; do
	grep -q '^HTTP/1.1 200' "$T/h-$name" || fail "$name: $(head -1 "$T/h-$name")"
	[[ $(count $name alice) == 4 && $(count $name bob) == 0 ]] ||
		fail "$name: $(count $name alice) of alice's 4 records, $(count $name bob) of bob's: $(grep '^data' "$T/sse-$name")"
done
[[ $(count bob-cookie bob) == 4 && $(count bob-cookie alice) == 0 ]] ||
	fail "bob-cookie: $(count bob-cookie bob) of bob's 4 records, $(count bob-cookie alice) of alice's"
node_check "$T/alice-es.jsonl" "
assert(lines.length === 4, 'EventSource got ' + lines.length);
assert(lines.every((l) => /^for-alice-[1-4]$/.test(l.data)), 'EventSource: ' + JSON.stringify(lines));
"
node_check "$T/alice-ws.jsonl" "
assert(lines.length === 4, 'WebSocket got ' + lines.length);
assert(lines.every((l) => /^for-alice-[1-4]$/.test(l.data)), 'WebSocket: ' + JSON.stringify(lines));
"
pass "SSE and WebSocket: alice gets alice's records only (query, header, EventSource, auth_request), bob his"

# --- a stream lasts as long as its token -----------------------------------------
# exp 4 s ahead, leeway 2 s (tributary_jwt_leeway): the streams end between
# exp + 2 s and a bounded time after; a stream without a JWT goes on.
SHORT=$(sign --key "$K/es256-private.pem" --kid "$ES_KID" --sub erin --exp-in 4)
FRESH=$(sign --key "$K/es256-private.pem" --kid "$ES_KID" --sub erin)
curl -sN -m 20 -o "$T/sse-short" "$N?access_token=$SHORT" &
short=$!
curl -sN -m 10 -o "$T/sse-nojwt" -H "X-Api-Key: secret-alice" "$BASE/ext/notifications" &
nojwt=$!
node "$NODE_DIR/stream-reauth.mjs" "$BASE" "$SHORT" "$FRESH" 2 >"$T/reauth.out" 2>&1 ||
	fail "token expiry: $(cat "$T/reauth.out")"
wait $short || fail "SSE with an expiring token: not ended by the server (curl $?)"
grep -qx 'event: reauthenticate' "$T/sse-short" && grep -qx 'data: token expired' "$T/sse-short" ||
	fail "SSE with an expiring token: no reauthenticate event: $(cat "$T/sse-short")"
rc=0
wait $nojwt || rc=$?
[[ $rc == 28 ]] || fail "stream without JWT ended (curl $rc, not the 10 s timeout): $(tail -3 "$T/sse-nojwt")"
! grep -q reauthenticate "$T/sse-nojwt" || fail "stream without JWT told to reauthenticate"
grep -q 'tributary_stream: token expired, stream ended' "$LOG" || fail "no log line for the expiry"
pass "token expiry: SSE 'event: reauthenticate' and WebSocket 1008 at exp + leeway; renewal with from= loses nothing ($(tr '\n' ';' <"$T/reauth.out")); a stream without JWT goes on"

# --- reload: the keys are read again -------------------------------------------
node -e '
const fs = require("fs");
const keys = JSON.parse(fs.readFileSync(process.env.JWKS)).keys.filter((k) => k.kty !== "RSA");
fs.writeFileSync(process.env.JWKS, JSON.stringify({ keys }));
' || fail "rewrite jwks"
kill -HUP "$NGINX_PID"
RS_AFTER=$(sign --key "$K/rs256-private.pem" --kid "$RS_KID" --sub alice)
for _ in $(seq 1 100); do
	code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $RS_AFTER" "$W?case=after-reload")
	[[ $code == 401 ]] && break
	sleep 0.1
done
[[ $code == 401 ]] || fail "RSA token still accepted after its key was removed and nginx reloaded"
expect_401 after-reload-rs "unknown signing key" "invalid token: no_key: no key with kid '$RS_KID'" \
	-H "Authorization: Bearer $RS_AFTER" "$W?case=after-reload-rs"
expect_ok after-reload-es bob -H "Authorization: Bearer $ES" "$W?case=after-reload-es"
pass "reload reads the keys again"

# --- configurations nginx must refuse -------------------------------------------
nginx_t() { # NAME: nginx -t on $T/NAME.conf; its output in $T/NAME.out
	mkdir -p "$T/$1/logs"
	! env $(stack_san_env nginx) nginx -t -p "$T/$1" -c "$T/$1.conf" -e "$T/$1/logs/error.log" >"$T/$1.out" 2>&1
}
(
	export NGINX_PREFIX="$T/bad-keys" JWKS="$K/rs256-private.pem"
	render "$ROOT/tests/integration/auth-nginx.conf.in" "$T/bad-keys.conf"
)
nginx_t bad-keys || fail "nginx -t accepted a private key as tributary_jwt_keys"
grep -q "tributary_jwt_keys: $K/rs256-private.pem: .*private key" "$T/bad-keys.out" ||
	fail "bad keys: $(cat "$T/bad-keys.out")"
mini() { # NAME LOCATION_BODY
	cat >"$T/$1.conf" <<EOF
load_module $NGINX_MODULE_PATH;
events {}
http {
    client_body_temp_path $T/$1/tmp;
    proxy_temp_path $T/$1/tmp;
    fastcgi_temp_path $T/$1/tmp;
    uwsgi_temp_path $T/$1/tmp;
    scgi_temp_path $T/$1/tmp;
    access_log off;
    server {
        listen 127.0.0.1:$((HTTP_PORT + 5));
        location / { $2 }
    }
}
EOF
}
mini no-keys 'tributary_jwt on;'
nginx_t no-keys || fail "nginx -t accepted tributary_jwt on without keys"
grep -q '"tributary_jwt" is on but no "tributary_jwt_keys"' "$T/no-keys.out" || fail "no keys: $(cat "$T/no-keys.out")"
mini bad-alg "tributary_jwt_keys $JWKS; tributary_jwt_algorithms RS256 none;"
nginx_t bad-alg || fail "nginx -t accepted algorithm none"
grep -q 'unknown algorithm "none"' "$T/bad-alg.out" || fail "bad alg: $(cat "$T/bad-alg.out")"
mini good "tributary_jwt on; tributary_jwt_keys $JWKS; tributary_jwt_algorithms ES256;"
! nginx_t good || fail "nginx -t refused a good configuration: $(cat "$T/good.out")"
pass "nginx -t refuses private keys, missing keys and unknown algorithms"

kill -0 "$NGINX_PID" || fail "nginx died"
nginx_log_clean || fail "nginx error log has alerts"
pass "tributary_jwt in nginx"
