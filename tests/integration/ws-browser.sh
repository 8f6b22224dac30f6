#!/usr/bin/env bash
# The demo web app in headless Chromium through nginx (tests/node/browser-demo.mjs).
# With the plugin built: the whole path (dev Kafka, Mosquitto + plugin, nginx):
# events reach Kafka, rejections and notifications reach the page. Without
# it, only the hosting and transport part runs, and the test reports a skip.
source "$(dirname "$0")/../lib/stack.sh"
stack_init
source "$ROOT/tests/lib/ws.sh"

command -v /usr/bin/chromium >/dev/null || skip "no /usr/bin/chromium"
[[ -f "$BUILD/web/index.html" ]] || fail "web app not built ($BUILD/web): run make"

plugin=0 responder=0
if [[ -f "$BUILD/mosquitto_tributary.so" ]]; then
	plugin=1
	start_kafka --topic events.order:3 --topic notifications:3 --topic replies:3
	MOSQUITTO_WEBSOCKETS=1 start_mosquitto
	if [[ -x "$BUILD/bin/tributary-responder" ]]; then
		"$BUILD/bin/tributary-responder" --brokers "$KAFKA_BOOTSTRAP" >"$T/responder.log" 2>&1 &
		STACK_PIDS+=($!)
		responder=1
	fi
	# The consumer groups start at "latest": a notification or request
	# produced before they have their partitions would never be seen.
	wait_assigned
	if ((responder)); then
		wait_log "$T/responder.log" 'responder: assigned' || fail "the responder got no partitions"
	fi
else
	ws_start_plain_mosquitto
fi
start_nginx

cd "$ROOT" && PLUGIN=$plugin RESPONDER=$responder node --test --test-concurrency=1 tests/node/browser-demo.mjs ||
	fail "browser tests failed"
nginx_log_clean || fail "nginx error log has alerts or crashes"
((plugin)) || skip "plugin not built ($BUILD/mosquitto_tributary.so): only hosting and transport were tested"
pass "ws-browser"
