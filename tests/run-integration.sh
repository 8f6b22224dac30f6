#!/usr/bin/env bash
# Runs tests/integration/*.sh one after another, each against real processes
# (dev Kafka, Mosquitto with the plugin, nginx with the module) that the test
# starts through tests/lib/stack.sh. Exit status of a test: 0 pass, 77 skip,
# anything else fail. TESTS='glob ...' narrows the set (e.g. TESTS='ingest*',
# TESTS='ingest* registry-*': globs separated by spaces).
set -uo pipefail
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-build}
pattern=${TESTS:-*}

# One Apache Kafka for the run (tests/lib/stack.sh's start_kafka empties it
# of topics before each test); KAFKA=mock, or no Java, runs every test on
# librdkafka's mock instead. Tests that stop the broker start their own.
unset TEST_KAFKA_BOOTSTRAP
if [[ "${KAFKA:-real}" != mock ]] && command -v java >/dev/null; then
	base=${TEST_PORT_BASE:-20000}
	kdir="$BUILD/test-tmp/kafka-run"
	rm -rf "$kdir"
	mkdir -p "$kdir"
	kstart=$(date +%s)
	"$BUILD/bin/tributary-kafka" --dir "$kdir" --port $((base + 9095)) --controller-port $((base + 9096)) \
		>"$kdir/out" 2>&1 &
	kpid=$!
	trap 'kill -TERM $kpid 2>/dev/null; wait $kpid 2>/dev/null' EXIT
	until grep -q 'tributary-kafka: ready' "$kdir/out"; do
		kill -0 $kpid 2>/dev/null || { cat "$kdir/out" >&2; echo "Apache Kafka did not start (KAFKA=mock runs without it)" >&2; exit 1; }
		sleep 0.2
	done
	export TEST_KAFKA_BOOTSTRAP="127.0.0.1:$((base + 9095))"
	echo "Apache Kafka for the run on $TEST_KAFKA_BOOTSTRAP (started in $(($(date +%s) - kstart))s)"
fi
passed=0 failed=0 skipped=0 failures=()
mkdir -p "$BUILD/test-logs"
tests=() pats=()
set -f
read -ra pats <<<"$pattern"
set +f
for p in "${pats[@]}"; do
	for t in tests/integration/$p.sh; do
		[[ -f "$t" ]] && tests+=("$t")
	done
done
for t in "${tests[@]}"; do
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
