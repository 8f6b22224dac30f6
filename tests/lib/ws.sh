# Helpers for the MQTT-over-WebSocket tests (tests/integration/ws-*.sh) and
# bench/ws.sh; source after tests/lib/stack.sh and stack_init.

# ws_start_plain_mosquitto [websockets]: Mosquitto without the plugin on
# $MQTT_PORT (and its own websockets listener on $MQTT_WS_PORT when asked):
# the relay does not look inside MQTT, so its tests need no plugin.
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
		if [[ "${1:-}" == websockets ]]; then
			echo "listener $MQTT_WS_PORT 127.0.0.1"
			echo "protocol websockets"
		fi
	} >"$T/mosquitto-plain.conf"
	ws_restart_plain_mosquitto
}

ws_restart_plain_mosquitto() {
	mosquitto -c "$T/mosquitto-plain.conf" >>"$T/mosquitto.log" 2>&1 &
	MOSQUITTO_PID=$!
	STACK_PIDS+=($MOSQUITTO_PID)
	wait_port 127.0.0.1 "$MQTT_PORT" 15 || { cat "$T/mosquitto.log" >&2; fail "mosquitto did not start"; }
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
