#!/usr/bin/env bash
# Runs tests/integration/*.sh one after another, each against real processes
# (dev Kafka, Mosquitto with the plugin, nginx with the module) that the test
# starts through tests/lib/stack.sh. Exit status of a test: 0 pass, 77 skip,
# anything else fail. TESTS=glob narrows the set (e.g. TESTS='ingest*').
set -uo pipefail
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-build}
pattern=${TESTS:-*}
passed=0 failed=0 skipped=0 failures=()
mkdir -p "$BUILD/test-logs"
for t in tests/integration/$pattern.sh; do
	[[ -f "$t" ]] || continue
	name=$(basename "$t" .sh)
	log="$BUILD/test-logs/$name.log"
	start=$(date +%s)
	timeout --kill-after=10 "${TEST_TIMEOUT:-300}" bash "$t" >"$log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	case $rc in
	0) passed=$((passed + 1)); echo "PASS $name (${secs}s)" ;;
	77) skipped=$((skipped + 1)); echo "SKIP $name: $(tail -1 "$log")" ;;
	*) failed=$((failed + 1)); failures+=("$name"); echo "FAIL $name (exit $rc, ${secs}s) — last lines of $log:"; tail -25 "$log" | sed 's/^/    /' ;;
	esac
done
echo "($BUILD)"; echo "integration: $passed passed, $failed failed, $skipped skipped"
((failed == 0))
