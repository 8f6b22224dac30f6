#!/usr/bin/env bash
# tributary_jwt on the MQTT relay (tests/node/ws-jwt.mjs), in both relay modes:
# the token from an HttpOnly-style cookie or the Authorization header goes
# into the CONNECT as the password (its sub as the username) and Mosquitto
# with the Tributary plugin (auth on, no anonymous clients) accepts it; a
# CONNECT with credentials of its own gets CONNACK "bad user name or
# password" and never reaches the broker; expired or missing tokens get 401
# at the handshake. The demo page works signed in (tests/node/ws-jwt-browser.mjs)
# without ever seeing the token.
source "$(dirname "$0")/../lib/stack.sh"
stack_init
source "$ROOT/tests/lib/ws.sh"

J="$BUILD/bin/tributary-jwt"
[[ -x "$J" ]] || fail "no $J (make $BUILD/bin/tributary-jwt)"
[[ -f "$BUILD/mosquitto_tributary.so" ]] || fail "no $BUILD/mosquitto_tributary.so: run make"
"$J" keygen --alg ES256 --out "$T/keys" >"$T/keygen.out" 2>&1 || fail "keygen"
KID=$(sed -n 's/^kid=//p' "$T/keygen.out")
export JWKS="$T/keys/es256-jwks.json"
sign() { "$J" sign --key "$T/keys/es256-private.pem" --kid "$KID" --iss https://id.tributary.test/ --aud tributary "$@" || fail "sign $*"; }
export ALICE_TOKEN=$(sign --sub alice) BOB_TOKEN=$(sign --sub bob) EXPIRED_TOKEN=$(sign --sub alice --exp-in -60)

cat >"$T/tributary.json.in" <<'EOF'
{
  "broker_id": "ws-jwt-test",
  "catalog": "@ROOT@/schemas/catalog.json",
  "clusters": { "main": { "bootstrap.servers": "@KAFKA_BOOTSTRAP@" } },
  "ingest": {
    "unmatched": "pass",
    "routes": [ { "match": "events/{aggregate}/{id}", "topic": "events.{aggregate}", "key": "{id}" } ]
  },
  "auth": {
    "enabled": true,
    "keys": "@JWKS@",
    "issuer": "https://id.tributary.test/",
    "audience": "tributary",
    "acl": {
      "publish": ["events/#", "users/{sub}/notifications"],
      "subscribe": ["users/{sub}/#", "clients/{client_id}/errors", "clients/{client_id}/replies"]
    }
  },
  "stats": { "sys_interval": 0 }
}
EOF
cat >"$T/mosquitto.conf.in" <<'EOF'
per_listener_settings false
allow_anonymous false
persistence false
log_dest stderr
log_type error
log_type warning
log_type notice
connection_messages true
listener @MQTT_PORT@ 127.0.0.1
listener @MQTT_WS_PORT@ 127.0.0.1
protocol websockets
plugin @PLUGIN_PATH@
plugin_opt_config @TRIBUTARY_CONFIG@
EOF
start_kafka --topic events.order:1
export MOSQUITTO_WEBSOCKETS=1
MOSQUITTO_CONF_TEMPLATE="$T/mosquitto.conf.in" start_mosquitto "$T/tributary.json.in"
wait_port 127.0.0.1 "$MQTT_WS_PORT" 15 || fail "no websockets listener"

# the dev configuration with tributary_jwt on its /mqtt, and /whoami for
# the demo page
ws_nginx_template "$T/nginx-ws.conf.in" '
        tributary_jwt_keys @JWKS@;
        tributary_jwt_issuer https://id.tributary.test/;
        tributary_jwt_audience tributary;
        tributary_jwt_token $cookie_access_token $http_authorization;
        location = /whoami {
            tributary_jwt on;
            default_type text/plain;
            return 200 $tributary_jwt_sub;
        }'
sed -i 's|^\( *\)location = /mqtt {|&\n\1    tributary_jwt on;|' "$T/nginx-ws.conf.in"
grep -A1 'location = /mqtt {' "$T/nginx-ws.conf.in" | grep -q 'tributary_jwt on' || fail "could not turn tributary_jwt on in /mqtt"
for mode in $(ws_relay_modes); do
	ws_mode_template "$T/nginx-ws.conf.in" "$T/nginx.conf.in" "$mode"
	start_nginx "$T/nginx.conf.in"
	(cd "$ROOT" && WS_RELAY_MODE=$mode node --test --test-concurrency=1 tests/node/ws-jwt.mjs) ||
		fail "ws-jwt tests failed ($mode relay)"
	# the demo page, signed in with an HttpOnly cookie (default mode only)
	if [[ $mode == websockets ]] && command -v "${CHROMIUM:-/usr/bin/chromium}" >/dev/null; then
		(cd "$ROOT" && node --test tests/node/ws-jwt-browser.mjs) || fail "the demo page did not work signed in"
	fi
	ws_stop_nginx
done

LOG="$NGINX_PREFIX/logs/error.log"
grep -q 'tributary: MQTT CONNECT with a username or password refused' "$LOG" ||
	fail "no log line for the refused CONNECT"
grep -q 'tributary_jwt: invalid token: expired' "$LOG" || fail "no log line for the expired token"
# the refused CONNECTs never reached the broker: no client "mallory" there
! grep -q 'mallory' "$T/mosquitto.log" || fail "a refused CONNECT reached the broker: $(grep mallory "$T/mosquitto.log")"
! grep -qF "$ALICE_TOKEN" "$LOG" "$T/mosquitto.log" || fail "a token in a log"
nginx_log_clean || fail "nginx error log has alerts or crashes"
pass "ws-jwt"
