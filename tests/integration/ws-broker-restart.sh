#!/usr/bin/env bash
# The broker stops and restarts under live MQTT-over-WebSocket clients
# (tests/node/ws-restart.mjs): close frames, 1013 while down, an error log
# line, reconnects after the restart; in both relay modes (ws_relay_modes).
source "$(dirname "$0")/../lib/stack.sh"
stack_init
source "$ROOT/tests/lib/ws.sh"

ws_start_plain_mosquitto
wait_file() { for _ in $(seq 1 600); do [[ -f "$T/$1" ]] && return 0; kill -0 "$node_pid" 2>/dev/null || return 1; sleep 0.05; done; return 1; }

for mode in $(ws_relay_modes); do
	rm -f "$T"/ws-restart.*
	[[ -z "${NGINX_PREFIX:-}" ]] || : >"$NGINX_PREFIX/logs/error.log"
	ws_mode_template "$ROOT/conf/dev/nginx.conf.in" "$T/nginx.conf.in" "$mode"
	start_nginx "$T/nginx.conf.in"
	(cd "$ROOT" && exec node tests/node/ws-restart.mjs) &
	node_pid=$!
	wait_file ws-restart.ready || fail "clients did not connect ($mode relay)"
	stop_mosquitto TERM
	touch "$T/ws-restart.stopped"
	wait_file ws-restart.checked || fail "node client failed while the broker was down ($mode relay)"
	ws_restart_plain_mosquitto
	touch "$T/ws-restart.started"
	wait "$node_pid" || fail "ws-restart client failed ($mode relay)"
	ws_stop_nginx

	grep -q '\[error\].*tributary: .*MQTT broker' "$NGINX_PREFIX/logs/error.log" ||
		fail "no error log line while the broker was down ($mode relay)"
	nginx_log_clean || fail "nginx error log has alerts or crashes"
done
pass "ws-broker-restart"
