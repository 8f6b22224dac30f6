#!/usr/bin/env bash
# MQTT over WebSocket through nginx's relay with mqtt.js (tests/node/ws-mqtt.mjs):
# MQTT 3.1.1 and 5, QoS 0/1/2, 1 and 5 MB messages, bursts, 1,000 concurrent
# clients, against the dev nginx configuration and a plain Mosquitto, in both
# relay modes (ws_relay_modes).
source "$(dirname "$0")/../lib/stack.sh"
stack_init
source "$ROOT/tests/lib/ws.sh"

ws_start_plain_mosquitto
for mode in $(ws_relay_modes mqtt); do
	ws_mode_template "$ROOT/conf/dev/nginx.conf.in" "$T/nginx.conf.in" "$mode"
	start_nginx "$T/nginx.conf.in"
	(cd "$ROOT" && WS_RELAY_MODE=$mode node --test --test-concurrency=1 tests/node/ws-mqtt.mjs) ||
		fail "ws-mqtt tests failed ($mode relay)"
	ws_stop_nginx
	# every relayed session shows up as a 101 in the access log
	n=$(grep -c '"GET /mqtt HTTP/1.1" 101 ' "$NGINX_PREFIX/logs/access.log")
	rm "$NGINX_PREFIX/logs/access.log"
	((n >= 1000)) || fail "expected at least 1000 upgraded sessions in access.log ($mode relay), got $n"
done
nginx_log_clean || fail "nginx error log has alerts or crashes"
pass "ws-mqtt"
