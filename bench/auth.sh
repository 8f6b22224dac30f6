#!/usr/bin/env bash
# Connection-rate benchmark (issue 8): MQTT CONNECT + CONNACK + DISCONNECT
# per second, THREADS client threads (build/bench/authconn), against
# Mosquitto + the Tributary plugin with JWT authentication on (RS256, ES256
# and HS256 tokens verified at every CONNECT), beside the same plugin
# configuration without the "auth" section and anonymous clients, in the same
# run. Each repetition runs every case once, in turn; medians of REPS.
#   BENCH_REPS (5), BENCH_SECONDS (3), BENCH_THREADS (4)
set -euo pipefail
source "$(dirname "$0")/../tests/lib/stack.sh"
REPS=${BENCH_REPS:-5} SECS=${BENCH_SECONDS:-3} THREADS=${BENCH_THREADS:-4}
stack_init
AC="$BUILD/bench/authconn" J="$BUILD/bin/tributary-jwt"
for f in "$AC" "$J" "$BUILD/mosquitto_tributary.so"; do
	[[ -x "$f" || -f "$f" ]] || fail "no $f (make $f)"
done

K="$T/keys"
for alg in RS256 ES256 HS256; do
	"$J" keygen --alg $alg --out "$K" >"$K-$alg.out" 2>&1 || fail "keygen $alg"
done
kid() { sed -n 's/^kid=//p' "$K-$1.out"; }
node -e '
const fs = require("fs");
const keys = process.argv.slice(1).flatMap((f) => JSON.parse(fs.readFileSync(f)).keys);
fs.writeFileSync(process.env.T + "/jwks.json", JSON.stringify({ keys }));
' "$K/rs256-jwks.json" "$K/es256-jwks.json" "$K/hs256-jwks.json" || fail "jwks"
export JWKS="$T/jwks.json"
ISS=https://id.tributary.test/ AUD=tributary
# valid for the whole run; each CONNECT verifies the token again
"$J" sign --key "$K/rs256-private.pem" --kid "$(kid RS256)" --sub bench --iss $ISS --aud $AUD --exp-in 3600 >"$T/rs256.jwt"
"$J" sign --key "$K/es256-private.pem" --kid "$(kid ES256)" --sub bench --iss $ISS --aud $AUD --exp-in 3600 >"$T/es256.jwt"
"$J" sign --key "$K/hs256-secret" --alg HS256 --kid "$(kid HS256)" --sub bench --iss $ISS --aud $AUD --exp-in 3600 >"$T/hs256.jwt"

start_kafka --topic events.order:3

# broker NAME PORT AUTH_SECTION ALLOW_ANONYMOUS: Mosquitto + plugin on PORT.
# Both brokers load the same plugin configuration but for "auth", so the
# difference measured is JWT authentication alone.
broker() {
	local name=$1 port=$2 auth=$3 anon=$4
	mkdir -p "$T/$name"
	cat >"$T/$name/tributary.json" <<EOF
{
  "broker_id": "bench-$name",
  "catalog": "$ROOT/schemas/catalog.json",
  "clusters": { "main": { "bootstrap.servers": "$KAFKA_BOOTSTRAP" } },
  "ingest": {
    "unmatched": "pass",
    "routes": [ { "match": "events/{aggregate}/{id}", "topic": "events.{aggregate}", "key": "{id}" } ]
  },
  $auth
  "stats": { "sys_interval": 0 }
}
EOF
	cat >"$T/$name/mosquitto.conf" <<EOF
per_listener_settings false
allow_anonymous $anon
persistence false
log_dest stderr
log_type error
log_type warning
connection_messages false
max_keepalive 65535
listener $port 127.0.0.1
plugin $BUILD/mosquitto_tributary.so
plugin_opt_config $T/$name/tributary.json
EOF
	port_free "$port" || fail "port $port is in use (set TEST_PORT_BASE)"
	env $(stack_san_env) mosquitto -c "$T/$name/mosquitto.conf" >>"$T/$name/mosquitto.log" 2>&1 &
	STACK_PIDS+=($!)
	wait_port 127.0.0.1 "$port" 15 || { cat "$T/$name/mosquitto.log" >&2; fail "mosquitto ($name) did not start"; }
}
ANON_PORT=$MQTT_PORT AUTH_PORT=$((MQTT_PORT + 10))
broker anon "$ANON_PORT" "" true
broker jwt "$AUTH_PORT" "\"auth\": { \"enabled\": true, \"keys\": \"$JWKS\", \"issuer\": \"$ISS\", \"audience\": \"$AUD\", \"leeway\": 30 }," false

# The authenticated broker must really refuse: an anonymous client and a
# bad token are refused, or the figures below would mean nothing.
if "$AC" --port "$AUTH_PORT" --threads 1 --seconds 1 >"$T/check-anon.out" 2>&1; then
	fail "the JWT broker accepted an anonymous client: $(cat "$T/check-anon.out")"
fi
grep -q 'conns=0 .*refused=[1-9]' "$T/check-anon.out" || fail "anonymous check: $(cat "$T/check-anon.out")"
if "$AC" --port "$AUTH_PORT" --threads 1 --seconds 1 --token "$(cut -c1-20 "$T/rs256.jwt")" >"$T/check-bad.out" 2>&1; then
	fail "the JWT broker accepted a bad token: $(cat "$T/check-bad.out")"
fi

median() { sort -n | awk '{a[NR]=$1} END {if (NR==0) print "n/a"; else print a[int((NR+1)/2)]}'; }
field() { sed -n "s/.*$1=\([^ ]*\).*/\1/p"; }
CASES=(anon rs256 es256 hs256)
declare -A LABEL=([anon]="anonymous (plugin without auth)" [rs256]="JWT RS256 (2048-bit)"
	[es256]="JWT ES256 (P-256)" [hs256]="JWT HS256")
declare -A RATES P50 P99
for rep in $(seq 1 "$REPS"); do
	for c in "${CASES[@]}"; do
		if [[ $c == anon ]]; then
			out=$("$AC" --port "$ANON_PORT" --threads "$THREADS" --seconds "$SECS") || fail "$c: $out"
		else
			out=$("$AC" --port "$AUTH_PORT" --threads "$THREADS" --seconds "$SECS" --token-file "$T/$c.jwt") ||
				fail "$c: $out"
		fi
		RATES[$c]+="$(echo "$out" | field conns_per_s) "
		P50[$c]+="$(echo "$out" | field p50_ms) "
		P99[$c]+="$(echo "$out" | field p99_ms) "
	done
done

echo "auth: MQTT connections/s (CONNECT, CONNACK, DISCONNECT), $THREADS threads, ${SECS}s x $REPS reps (medians)"
base=$(tr ' ' '\n' <<<"${RATES[anon]}" | grep . | median)
for c in "${CASES[@]}"; do
	rate=$(tr ' ' '\n' <<<"${RATES[$c]}" | grep . | median)
	printf '%-34s %8s conn/s  %5s%%   CONNACK p50 %7s ms  p99 %7s ms\n' "${LABEL[$c]}" "$rate" \
		"$(awk -v r="$rate" -v b="$base" 'BEGIN { printf "%.0f", 100 * r / b }')" \
		"$(tr ' ' '\n' <<<"${P50[$c]}" | grep . | median)" "$(tr ' ' '\n' <<<"${P99[$c]}" | grep . | median)"
done
for name in anon jwt; do
	if grep -qiE 'error|warning' "$T/$name/mosquitto.log"; then
		echo "mosquitto ($name) logged:"
		grep -iE 'error|warning' "$T/$name/mosquitto.log" | sort | uniq -c | sort -rn | head -5
	fi
done
