#!/usr/bin/env bash
# A newcomer's first run: `make`'s web step on a tree without node_modules
# installs the npm packages it needs and builds the demo app instead of
# stopping the build, and the dev broker's log stays readable (no
# "Saving in-memory database" line every second).
source "$(dirname "$0")/../lib/stack.sh"
stack_init

# 1. The web build from a tree that has never seen `npm ci`: the project's
# web sources and npm manifests only, as in a fresh clone.
mkdir -p "$T/fresh"
cp -r "$ROOT/web" "$ROOT/package.json" "$ROOT/package-lock.json" "$T/fresh/"
if command -v npm >/dev/null; then
	bash "$T/fresh/web/build.sh" "$T/fresh/out" >"$T/web-build.log" 2>&1 ||
		{ cat "$T/web-build.log" >&2; fail "the web build stopped on a tree without node_modules"; }
	[[ -s "$T/fresh/out/mqtt.min.js" && -s "$T/fresh/out/index.html" ]] ||
		fail "the web build did not produce the demo app"
	pass "web build on a fresh tree installs its npm packages and builds the app"
else
	echo "npm not found: web build part not checked"
fi

# 2. The dev broker's log over a few seconds of idling.
start_kafka
start_mosquitto
sleep 3
n=$(grep -c 'Saving in-memory database' "$T/mosquitto.log" || true)
((n == 0)) || { tail -20 "$T/mosquitto.log" >&2; fail "the dev broker logged 'Saving in-memory database' $n times in 3 s"; }
pass "the dev broker's log has no periodic save lines"
