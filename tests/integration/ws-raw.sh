#!/usr/bin/env bash
# MQTT-over-WebSocket relay, raw protocol: handshake statuses, framing, limits,
# close codes, misbehaving clients (tests/node/ws-raw.mjs) against nginx with
# the dev configuration plus two test locations, and a plain Mosquitto (the
# relay does not look inside MQTT, so no plugin is needed), in both relay
# modes (ws_relay_modes: to the websockets listener, then to the TCP one).
source "$(dirname "$0")/../lib/stack.sh"
stack_init
source "$ROOT/tests/lib/ws.sh"

ws_start_plain_mosquitto

# test locations next to the dev ones: small limits, and a dead broker
ws_nginx_template "$T/nginx-ws.conf.in" '
        location = /mqtt-limits {
            tributary_mqtt_pass 127.0.0.1:@MQTT_WS_PORT@;
            tributary_mqtt_max_frame_size 1k;
            tributary_mqtt_max_message_size 4k;
            tributary_mqtt_buffer_size 1k;
            tributary_mqtt_idle_timeout 3s;
            tributary_mqtt_send_timeout 2s;
        }
        location = /mqtt-down {
            tributary_mqtt_pass 127.0.0.1:1;
            tributary_mqtt_connect_timeout 2s;
        }'
for mode in $(ws_relay_modes websockets); do
	ws_mode_template "$T/nginx-ws.conf.in" "$T/nginx.conf.in" "$mode"
	start_nginx "$T/nginx.conf.in"
	(cd "$ROOT" && WS_RELAY_MODE=$mode node --test --test-concurrency=1 tests/node/ws-raw.mjs) ||
		fail "ws-raw tests failed ($mode relay)"
	ws_stop_nginx
done

grep -q 'tributary: connect() to MQTT broker .* failed\|tributary: cannot connect to MQTT broker' \
	"$NGINX_PREFIX/logs/error.log" || fail "no error log line for the unreachable broker"
nginx_log_clean || fail "nginx error log has alerts or crashes"
pass "ws-raw"
