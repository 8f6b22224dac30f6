# Helpers for the MQTT-over-WebSocket tests (tests/integration/ws-*.sh) and
# bench/ws.sh; source after tests/lib/stack.sh and stack_init.

# ws_start_plain_mosquitto: Mosquitto without the plugin on $MQTT_PORT and
# its websockets listener on $MQTT_WS_PORT: the relay does not look inside
# MQTT (but for the CONNECT under tributary_jwt), so its tests need no plugin.
ws_start_plain_mosquitto() {
	{
		echo "per_listener_settings false"
		echo "allow_anonymous true"
		echo "log_dest stderr"
		echo "log_type error"
		echo "log_type warning"
		echo "max_queued_messages 100000"
		# as production should: no Nagle delay on small MQTT acks
		echo "set_tcp_nodelay true"
		echo "listener $MQTT_PORT 127.0.0.1"
		echo "listener $MQTT_WS_PORT 127.0.0.1"
		echo "protocol websockets"
	} >"$T/mosquitto-plain.conf"
	ws_restart_plain_mosquitto
}

ws_restart_plain_mosquitto() {
	mosquitto -c "$T/mosquitto-plain.conf" >>"$T/mosquitto.log" 2>&1 &
	MOSQUITTO_PID=$!
	STACK_PIDS+=($MOSQUITTO_PID)
	wait_port 127.0.0.1 "$MQTT_PORT" 15 && wait_port 127.0.0.1 "$MQTT_WS_PORT" 15 ||
		{ cat "$T/mosquitto.log" >&2; fail "mosquitto did not start"; }
}

# ws_relay_modes: the relay modes a ws test runs in, one per line:
# "websockets" (the default) and "mqtt" (tributary_mqtt_protocol mqtt, to the
# TCP listener); WS_RELAY_MODES narrows it (e.g. WS_RELAY_MODES=mqtt).
# ws_relay_modes SAN_MODE: under ASan+UBSan only SAN_MODE, for make test's
# time: the long ws tests split the modes between them there (ws-raw the
# websockets relay, ws-mqtt the TCP one), so that both stay checked by the
# sanitizers and the normal pass runs both everywhere.
ws_relay_modes() {
	if [[ -z "${WS_RELAY_MODES:-}" && -n "${1:-}" ]] && stack_is_san; then
		echo "$1"
	else
		printf '%s\n' ${WS_RELAY_MODES:-websockets mqtt}
	fi
}

# ws_mode_template IN OUT MODE: IN with every tributary_mqtt_pass to the
# websockets listener turned into one to the TCP listener when MODE is mqtt.
ws_mode_template() {
	if [[ "$3" == mqtt ]]; then
		sed -E 's|tributary_mqtt_pass 127\.0\.0\.1:@MQTT_WS_PORT@;|tributary_mqtt_pass 127.0.0.1:@MQTT_PORT@; tributary_mqtt_protocol mqtt;|' "$1" >"$2"
		grep -q 'tributary_mqtt_protocol mqtt' "$2" || fail "could not switch $1 to the TCP relay"
	else
		cp "$1" "$2"
	fi
}

# ws_nginx_template OUT EXTRA: the dev template with EXTRA (location blocks)
# inserted into its server{} before the /mqtt location.
ws_nginx_template() {
	local out=$1 extra=$2
	EXTRA="$extra" awk '/location = \/mqtt/ { print ENVIRON["EXTRA"] } { print }' \
		"$ROOT/conf/dev/nginx.conf.in" >"$out"
	grep -q 'location' <<<"$extra" && ! cmp -s "$out" "$ROOT/conf/dev/nginx.conf.in" ||
		fail "could not extend the nginx template"
}

# ws_stop_nginx: stops the nginx of start_nginx (before starting another).
# A graceful stop (QUIT): a fast one makes the master SIGKILL workers that
# take over a second to exit, as sanitizer builds do.
ws_stop_nginx() {
	kill -QUIT "$NGINX_PID" 2>/dev/null
	for _ in $(seq 1 300); do kill -0 "$NGINX_PID" 2>/dev/null || return 0; sleep 0.1; done
	kill -KILL "$NGINX_PID" 2>/dev/null
	wait "$NGINX_PID" 2>/dev/null
}
