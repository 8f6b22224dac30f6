#!/usr/bin/env bash
# The Debian packages, installed for real (`make test-packages`, root only):
# builds them (tests/packages/build.sh: dpkg-buildpackage -b, then lintian),
# installs them with apt, configures them as an admin would (Kafka address in
# /etc/tributary/tributary.json, the plugin lines uncommented in
# /etc/mosquitto/conf.d/tributary.conf), starts Debian's own mosquitto and
# nginx from their packaged configuration (/etc/mosquitto/mosquitto.conf,
# /etc/nginx/nginx.conf) as their own users, and runs the smoke test through
# them against Apache Kafka: a valid event lands in Kafka, an invalid one is
# refused with an error event, MQTT over WebSocket through nginx, SSE of a
# Kafka record. Then it removes and purges the packages and checks that
# nothing of them is left behind.
#
# The test's own listeners are on the TEST_PORT_BASE ports (two snippets in
# conf.d, removed at exit); nginx's default site also listens on port 80.
# The system is left as it was found: services stopped, packages purged,
# snippets removed, Mosquitto's persistence file and both servers' logs
# restored. It refuses to run when the packages are installed already or
# when the system's mosquitto or nginx is running.
source "$(dirname "$0")/../lib/stack.sh"

PKGS=(libnginx-mod-http-tributary mosquitto-tributary tributary-tools)
# present_pkgs: those of PKGS dpkg knows (installed, or configuration left).
present_pkgs() {
	local p st
	for p in "${PKGS[@]}"; do
		st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
		[[ -z "$st" || "$st" == not-installed ]] || echo "$p"
	done
}

[[ $(id -u) -eq 0 ]] || skip "installs packages: run as root"
for c in dpkg-buildpackage apt-get mosquitto nginx kcat node; do
	command -v "$c" >/dev/null || fail "$c is missing (tools/install-deps.sh)"
done
[[ -z "$(present_pkgs)" ]] || fail "$(present_pkgs | xargs) on this system: this test would purge them"
for pidfile in /run/mosquitto/mosquitto.pid /run/nginx.pid; do
	if [[ -s $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
		fail "the system's server of $pidfile is running: stop it first (service mosquitto/nginx stop)"
	fi
done
port_free 80 || fail "port 80 is in use: nginx's packaged default site listens there"

stack_init
export DEBIAN_FRONTEND=noninteractive
MOSQ_LOG=/var/log/mosquitto/mosquitto.log
NGX_ERR=/var/log/nginx/error.log
TEST_SNIPPETS=(/etc/mosquitto/conf.d/tributary-test.conf /etc/nginx/conf.d/tributary-test.conf)
# The files that running the servers changes, put back at exit.
RESTORE=(/var/lib/mosquitto/mosquitto.db "$MOSQ_LOG" /var/log/nginx/access.log "$NGX_ERR")
mkdir -p "$T/saved"
for f in "${RESTORE[@]}"; do
	[[ -e $f ]] && cp -a "$f" "$T/saved/$(echo "$f" | tr / _)"
done
[[ -d /run/mosquitto ]] && RUN_MOSQ_EXISTED=1

packages_cleanup() {
	local f left
	left=$(present_pkgs)
	if [[ -n "$left" ]]; then
		dpkg --purge $left >>"$T/apt.log" 2>&1 || echo "cleanup: purge of $left failed ($T/apt.log)" >&2
	fi
	rm -f "${TEST_SNIPPETS[@]}"
	# what the servers logged during the test, kept in $T
	[[ -n "${mosq_from:-}" ]] && tail -c "+$mosq_from" "$MOSQ_LOG" >"$T/mosquitto.log" 2>/dev/null
	[[ -n "${ngx_from:-}" ]] && tail -c "+$ngx_from" "$NGX_ERR" >"$T/nginx-error.log" 2>/dev/null
	for f in "${RESTORE[@]}"; do
		if [[ -e "$T/saved/$(echo "$f" | tr / _)" ]]; then
			cp -a "$T/saved/$(echo "$f" | tr / _)" "$f"
		else
			rm -f "$f"
		fi
	done
	[[ -n "${RUN_MOSQ_EXISTED:-}" ]] || rm -rf /run/mosquitto
}
STACK_AFTER_CLEANUP=packages_cleanup

# --- build and install ----------------------------------------------------
"$ROOT/tests/packages/build.sh" "$T/debs" >"$T/build.out" 2>&1 ||
	{ cat "$T/build.out" >&2; fail "package build (or lintian) failed"; }
debs=()
for p in "${PKGS[@]}"; do debs+=("$(ls "$T"/debs/"${p}"_*.deb)"); done
apt-get install -y -qq --no-install-recommends "${debs[@]}" >"$T/apt.log" 2>&1 ||
	{ cat "$T/apt.log" >&2; fail "apt-get install of the packages failed"; }
pass "built (lintian clean) and installed with apt: ${PKGS[*]}"

# nginx: the module enabled as Debian's libnginx-mod-* are, tied to the ABI
abi=$(sed -n 's/^nginx:abi=//p' /usr/share/nginx/src/debian/libnginx-mod.abisubstvars)
[[ -n "$abi" ]] || fail "no nginx:abi in nginx-dev"
dpkg-query -W -f='${Depends}' libnginx-mod-http-tributary | grep -qw -- "$abi" ||
	fail "libnginx-mod-http-tributary does not depend on $abi"
link=/etc/nginx/modules-enabled/50-mod-http-tributary.conf
[[ $(readlink "$link") == /usr/share/nginx/modules-available/mod-http-tributary.conf ]] ||
	fail "$link is not the modules-available link"
grep -qx 'load_module modules/ngx_http_tributary_module.so;' "$link" || fail "$link: $(cat "$link")"
nginx -t -q 2>"$T/nginx-t.log" || { cat "$T/nginx-t.log" >&2; fail "nginx -t with the module enabled"; }
pass "nginx module: Depends $abi, enabled in modules-enabled, nginx -t passes"

# mosquitto: configuration in /etc/tributary (conffiles), the plugin off
conffiles=$(dpkg-query -W -f='${Conffiles}' mosquitto-tributary)
for f in /etc/tributary/tributary.json /etc/tributary/schemas/catalog.json; do
	grep -q "^ $f " <<<"$conffiles" || fail "$f is not a conffile"
done
MOSQ_CONF=/etc/mosquitto/conf.d/tributary.conf
grep -qx '#plugin /usr/lib/tributary/mosquitto_tributary.so' "$MOSQ_CONF" || fail "$MOSQ_CONF: $(cat "$MOSQ_CONF")"
! grep -q '^plugin' "$MOSQ_CONF" || fail "$MOSQ_CONF loads the plugin before it is configured"
[[ $(stat -c %U /var/lib/tributary) == mosquitto ]] || fail "/var/lib/tributary is not the broker's"
pass "mosquitto plugin: /etc/tributary conffiles, $MOSQ_CONF commented out"

# tools: what tools/ has but the development-only ones
for t in validate jwt journal-tool topics registry; do
	command -v "tributary-$t" >/dev/null || fail "tributary-$t not installed"
done
for t in devkafka kafka-admin registry-dev responder; do
	! dpkg -L tributary-tools | grep -q "tributary-$t" || fail "tributary-$t is development-only"
done
pass "tributary-tools: validate, jwt, journal-tool, topics, registry"

# --- configure as an admin would -----------------------------------------
sed -i "s|\"bootstrap.servers\": \"localhost:9092\"|\"bootstrap.servers\": \"$KAFKA_BOOTSTRAP\"|" /etc/tributary/tributary.json
grep -q "$KAFKA_BOOTSTRAP" /etc/tributary/tributary.json || fail "bootstrap.servers not found in tributary.json"
sed -i 's/^#plugin/plugin/' "$MOSQ_CONF"
# The test's listeners, on its own ports (a broker with a listener of its
# own has no default one on 1883).
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$MQTT_PORT" >/etc/mosquitto/conf.d/tributary-test.conf
cat >/etc/nginx/conf.d/tributary-test.conf <<EOF
tributary_kafka_brokers $KAFKA_BOOTSTRAP;
tributary_kafka_property fetch.wait.max.ms 10;
server {
    listen 127.0.0.1:$HTTP_PORT;
    location = /mqtt { tributary_mqtt_pass 127.0.0.1:$MQTT_PORT; tributary_mqtt_protocol mqtt; }
    location /notifications {
        tributary_stream notifications;
        tributary_stream_key \$arg_user;
    }
}
EOF

# --- start Debian's servers with their packaged configuration -------------
# Apache Kafka (build/bin/tributary-kafka), as the packages meet in
# production; librdkafka's mock only on a machine without Java.
if command -v java >/dev/null; then
	start_real_kafka --topic events.order:3 --topic notifications:2
else
	start_mock_kafka --topic events.order:3 --topic notifications:2
fi

# as systemd's mosquitto.service does before ExecStart
mkdir -p -m 740 /run/mosquitto /var/log/mosquitto
chown mosquitto /run/mosquitto /var/log/mosquitto
mosq_from=$(($(stat -c %s "$MOSQ_LOG" 2>/dev/null || echo 0) + 1))
mosq_log() { tail -c "+$mosq_from" "$MOSQ_LOG" 2>/dev/null; }
mosq_ready() { mosq_log | grep -q 'tributary: ready'; }
port_free "$MQTT_PORT" || fail "port $MQTT_PORT is in use (set TEST_PORT_BASE)"
mosquitto -c /etc/mosquitto/mosquitto.conf >"$T/mosquitto.out" 2>&1 &
MOSQUITTO_PID=$!
STACK_PIDS+=("$MOSQUITTO_PID")
wait_port 127.0.0.1 "$MQTT_PORT" 15 && wait_until 15 mosq_ready ||
	{ cat "$T/mosquitto.out" >&2; mosq_log >&2; fail "mosquitto with the packaged plugin did not start"; }
[[ $(ps -o user= -p "$MOSQUITTO_PID") == mosquitto ]] || fail "mosquitto runs as $(ps -o user= -p "$MOSQUITTO_PID")"

# An upgrade (the same package again) while the broker runs leaves it alone.
starts=$(mosq_log | grep -c 'mosquitto version .* starting')
dpkg -i "$(ls "$T"/debs/mosquitto-tributary_*.deb)" >"$T/dpkg-upgrade.log" 2>&1 ||
	{ cat "$T/dpkg-upgrade.log" >&2; fail "upgrade of mosquitto-tributary failed"; }
grep -q 'keeps the previous plugin until it is restarted' "$T/dpkg-upgrade.log" ||
	fail "the upgrade did not tell that the running broker keeps the old plugin"
sleep 1
kill -0 "$MOSQUITTO_PID" && [[ $(mosq_log | grep -c 'mosquitto version .* starting') == "$starts" ]] ||
	fail "upgrading mosquitto-tributary restarted the broker"
grep -q '^plugin ' "$MOSQ_CONF" || fail "the upgrade changed the admin's $MOSQ_CONF"
pass "mosquitto (packaged config) runs the plugin as user mosquitto; an upgrade does not restart it"

ngx_from=$(($(stat -c %s "$NGX_ERR" 2>/dev/null || echo 0) + 1))
nginx -g 'daemon off;' >"$T/nginx.out" 2>&1 &
NGINX_PID=$!
STACK_PIDS+=("$NGINX_PID")
wait_port 127.0.0.1 "$HTTP_PORT" 15 && kill -0 "$NGINX_PID" ||
	{ cat "$T/nginx.out" >&2; tail -c "+$ngx_from" "$NGX_ERR" >&2; fail "nginx did not start"; }
workers=$(ps -o user= --ppid "$NGINX_PID" | sort -u | xargs)
[[ "$workers" == www-data ]] || fail "nginx workers run as '$workers'"
pass "nginx (packaged config) runs the module, workers as www-data"

# --- smoke test ------------------------------------------------------------
event() { # ORDER_ID QTY
	printf '{"specversion":"1.0","id":"%s","source":"urn:pkgtest","type":"example.order.placed","datacontenttype":"application/json","data":{"orderId":"%s","customerId":"c-1","lines":[{"sku":"SKU-1","qty":%s}],"total":19.99,"currency":"EUR"}}' \
		"e-$1" "$1" "$2"
}
oid=$(cat /proc/sys/kernel/random/uuid)
mosquitto_pub -p "$MQTT_PORT" -q 1 -i pkgtest-pub -t "events/order/$oid" -m "$(event "$oid" 2)" ||
	fail "mosquitto_pub of a valid event"
rec=$(kafka_read events.order 1 20 '%k %h\n')
[[ "$rec" == "$oid "*ce_type=example.order.placed* ]] || fail "Kafka got '$rec' for the valid event"
pass "a valid event (mosquitto_pub) is in Kafka: $rec"

reply=$(mosquitto_rr -V 5 -p "$MQTT_PORT" -i pkgtest -e clients/pkgtest/errors -W 10 \
	-t events/order/bad -m "$(event bad 0)" 2>&1) || fail "no error event for the invalid event: $reply"
grep -q '"reason":"schema_validation_failed"' <<<"$reply" || fail "error event: $reply"
pass "an invalid event is refused, with an error event on clients/pkgtest/errors"

wsid=$(cd "$ROOT" && node tests/packages/ws-publish.mjs "ws://127.0.0.1:$HTTP_PORT/mqtt") ||
	fail "MQTT over WebSocket through nginx"
keys=$(kafka_read events.order 2 20 '%k\n' | sort | xargs)
[[ "$keys" == "$(printf '%s\n' "$oid" "$wsid" | sort | xargs)" ]] || fail "Kafka holds '$keys', not $oid and $wsid (and nothing refused)"
pass "MQTT over WebSocket through nginx: valid event in Kafka, invalid one refused (0x87)"

echo 'alice:{"hello":"from Kafka"}' | kcat -b "$KAFKA_BOOTSTRAP" -P -t notifications -K: 2>>"$T/kcat.log" ||
	fail "kcat produce"
node "$ROOT/tests/node/stream-client.mjs" sse "http://127.0.0.1:$HTTP_PORT/notifications?user=alice&from=beginning" 1 15000 \
	>"$T/sse.jsonl" 2>"$T/sse.err" || { cat "$T/sse.err" >&2; fail "SSE from nginx got no record"; }
grep -q 'from Kafka' "$T/sse.jsonl" || fail "SSE: $(cat "$T/sse.jsonl")"
pass "SSE from nginx delivers the Kafka record"

# --- stop, then the journal through the packaged tool ----------------------
kill -TERM "$NGINX_PID" "$MOSQUITTO_PID"
for pid in "$NGINX_PID" "$MOSQUITTO_PID"; do
	wait_until 15 bash -c "! kill -0 $pid 2>/dev/null" || fail "server $pid did not stop"
done
! tail -c "+$ngx_from" "$NGX_ERR" | grep -E '\[(alert|emerg|crit)\]|exited on signal' ||
	fail "nginx logged alerts"
mosq_log | grep -q 'tributary: journal /var/lib/tributary/journal' || fail "the plugin opened no journal"
[[ $(stat -c %U /var/lib/tributary/journal) == mosquitto ]] || fail "the journal is not the broker's"
stats=$(tributary-journal-tool stats /var/lib/tributary/journal) || fail "tributary-journal-tool stats"
grep -qx 'depth=0' <<<"$stats" && grep -qx 'corrupt_regions=0' <<<"$stats" ||
	fail "journal after a clean stop: $stats"
pass "the broker's journal (/var/lib/tributary/journal) is empty after its stop (tributary-journal-tool)"

# --- remove, purge: nothing left -------------------------------------------
dpkg -L "${PKGS[@]}" | sort -u >"$T/files"
apt-get remove -y -qq "${PKGS[@]}" >>"$T/apt.log" 2>&1 || fail "apt-get remove"
[[ ! -e $MOSQ_CONF && -f $MOSQ_CONF.removed ]] || fail "remove did not set $MOSQ_CONF aside"
[[ ! -e $link && -L $link.removed ]] || fail "remove did not disable the nginx module"
[[ -f /etc/tributary/tributary.json ]] || fail "remove dropped the configuration"
# (the test's server block uses the module: an admin drops such sites too)
rm /etc/nginx/conf.d/tributary-test.conf
nginx -t -q 2>"$T/nginx-t.log" || { cat "$T/nginx-t.log" >&2; fail "nginx -t after the module's removal"; }
mosquitto -c /etc/mosquitto/mosquitto.conf >"$T/mosquitto-removed.out" 2>&1 &
MOSQUITTO_PID=$!
STACK_PIDS+=("$MOSQUITTO_PID")
wait_port 127.0.0.1 "$MQTT_PORT" 15 && kill -0 "$MOSQUITTO_PID" ||
	{ mosq_log >&2; fail "mosquitto does not start after the plugin's removal"; }
stop_mosquitto
pass "remove: mosquitto starts, nginx -t passes without plugin and module; configuration kept"

# tributary-tools has no conffiles: removed, it is gone, and unknown to apt
apt-get purge -y -qq $(present_pkgs) >>"$T/apt.log" 2>&1 || fail "apt-get purge"
[[ -z "$(present_pkgs)" ]] || fail "still there after purge: $(present_pkgs | xargs)"
left=()
while read -r f; do
	[[ "$f" != /. ]] && [[ -e "$f" || -L "$f" ]] || continue
	# a directory other packages still own (/etc, /usr/lib/nginx/modules...)
	[[ -d "$f" && ! -L "$f" ]] && dpkg -S "$f" >/dev/null 2>&1 && continue
	left+=("$f")
done <"$T/files"
left+=($(compgen -G '/etc/nginx/modules-enabled/*tributary*'; compgen -G "$MOSQ_CONF*";
	compgen -G /etc/tributary; compgen -G /var/lib/tributary))
((${#left[@]} == 0)) || fail "left after purge: ${left[*]}"
pass "purge: nothing left behind"
