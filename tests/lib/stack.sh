# Sourced by integration tests: starts real processes on loopback, on test
# ports that do not collide with `make run`, and stops them all on exit.
#
#   source "$(dirname "$0")/../lib/stack.sh"
#   stack_init                       # temp dir $T, ports, cleanup trap
#   start_kafka [--topic NAME[:PARTITIONS]]...
#                                    # the run's Apache Kafka (tests/run-integration.sh starts
#                                    # one, $TEST_KAFKA_BOOTSTRAP), emptied of every topic, then
#                                    # these created; without one (KAFKA=mock) the mock below
#   start_mock_kafka [devkafka args...]
#                                    # librdkafka's mock on $KAFKA_PORT, control on
#                                    # $KAFKA_CONTROL_PORT: only for its fault injection
#   start_real_kafka [--topic NAME[:PARTITIONS]]...
#                                    # Apache Kafka (tributary-kafka) on $KAFKA_PORT, its
#                                    # controller on $KAFKA_CONTROLLER_PORT, log dir $T/kafka
#   kafka_pause / kafka_resume       # SIGSTOP / SIGCONT its JVM: a hung broker
#   kafka_kill                       # SIGKILL its JVM: a crashed broker
#   kafka_stop                       # SIGTERM: a clean stop (Kafka down)
#   kafka_restart                    # starts it again from the same log dir
#   start_mosquitto [TRIBUTARY_JSON_TEMPLATE] [EXTRA_MOSQUITTO_CONF_LINES]
#                                    # (MOSQUITTO_CONF_TEMPLATE replaces conf/dev/mosquitto.conf.in;
#                                    # MOSQUITTO_WEBSOCKETS=1: the test uses its websockets
#                                    # listener, which SAN runs drop otherwise)
#   start_nginx [NGINX_CONF_TEMPLATE]
#   start_registry [--user USER:PASSWORD] [--bearer TOKEN] [--tls-cert F --tls-key F]
#                                    # tributary-registry-dev (a Confluent-compatible Schema
#                                    # Registry) on $REGISTRY_URL, its state in the topic
#                                    # _schemas of $KAFKA_BOOTSTRAP (call start_kafka first;
#                                    # again after a TERM to $REGISTRY_PID: a restart)
#   kafka_ctl "broker-down 1"        # fault injection
#   kafka_read TOPIC COUNT [TIMEOUT] [kcat -f FORMAT]   # records to stdout
#   pass / fail MSG / skip MSG
#
# Under a sanitizer build (BUILD ends in /san) the servers run with the
# sanitizer runtime preloaded, since Debian's binaries are not instrumented.
# With VALGRIND=1 (normal build) they run under Valgrind's memcheck instead;
# its logs go to $T/vg and any error in them fails the test (`make valgrind`).

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
export ROOT BUILD
# TEST_PORT_BASE moves every port at once, so that test runs can go on side
# by side (default 20000: Kafka 29092, MQTT 21883, HTTP 28080). Keep every
# port below 32768, where Linux starts picking ephemeral ports.
TEST_PORT_BASE=${TEST_PORT_BASE:-20000}
export KAFKA_PORT=${KAFKA_PORT:-$((TEST_PORT_BASE + 9092))}
export KAFKA_CONTROL_PORT=${KAFKA_CONTROL_PORT:-$((TEST_PORT_BASE + 9099))}
export KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-$((TEST_PORT_BASE + 9093))}
export MQTT_PORT=${MQTT_PORT:-$((TEST_PORT_BASE + 1883))}
export MQTT_WS_PORT=${MQTT_WS_PORT:-$((TEST_PORT_BASE + 1884))}
export HTTP_PORT=${HTTP_PORT:-$((TEST_PORT_BASE + 8080))}
export REGISTRY_PORT=${REGISTRY_PORT:-$((TEST_PORT_BASE + 8081))}
export REGISTRY_URL="http://127.0.0.1:$REGISTRY_PORT"
export KAFKA_BOOTSTRAP="127.0.0.1:$KAFKA_PORT"
export NGINX_MODULES_DIR=/usr/lib/nginx/modules
STACK_PIDS=()
# STACK_SLOW scales the waits for servers to start and stop: several times
# longer under Valgrind, which starts them slower and checks for leaks at exit.
if [[ "${VALGRIND:-0}" != 0 ]]; then STACK_SLOW=${STACK_SLOW:-6}; else STACK_SLOW=1; fi
export STACK_SLOW

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "skipped: $*"; exit 77; }
pass() { echo "ok: $*"; }

stack_is_san() { [[ "$BUILD" == */san ]]; }
stack_is_valgrind() { [[ "${VALGRIND:-0}" != 0 ]]; }

# stack_san_env [mosquitto|mosquitto-ws|nginx|noleaks]: the environment a server runs
# with under a sanitizer build, or under VALGRIND=1 the memcheck command it
# runs under (env runs the first word that is not VAR=value). nginx's worker
# processes drop to `nobody` and Mosquitto to `mosquitto`, so reports go to
# world-writable folders. Under the sanitizers leak checking is off for
# nginx, which leaves its pools (and OpenSSL's one-time setup inside
# librdkafka) to process exit; memcheck checks nginx too: only definitely
# lost blocks count as errors (tests/lib/valgrind.supp says why), and
# nothing points to those any more. No leak check at all for a broker that
# refuses to start (it exits without freeing its own configuration).
stack_san_env() {
	if stack_is_valgrind; then
		local leaks=full name=${1:-server}
		mkdir -p "$T/vg"
		chmod 1777 "$T/vg"
		[[ $name == noleaks ]] && leaks=no name=refused
		# --trace-children: a server started through `timeout` is checked
		# too; nginx's workers are forked without exec, which memcheck
		# follows anyway (one log per process: %p).
		echo valgrind --tool=memcheck --leak-check=$leaks \
			--show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite \
			--num-callers=30 --track-origins=no --trace-children=yes --vgdb=no \
			--keep-debuginfo=yes \
			--log-file="$T/vg/$name.%p.log" --suppressions="$ROOT/tests/lib/valgrind.supp"
	elif stack_is_san; then
		local asan ubsan leaks=1
		asan=$(gcc -print-file-name=libasan.so)
		ubsan=$(gcc -print-file-name=libubsan.so)
		mkdir -p "$T/san"
		chmod 1777 "$T/san"
		# nginx, and a broker that refuses to start (it exits without
		# freeing its own configuration), are not checked for leaks.
		[[ "${1:-}" == nginx || "${1:-}" == noleaks ]] && leaks=0
		# Debian's mosquitto has no frame pointers: the fast unwinder stops
		# in mosquitto__calloc, too short a stack for lsan.supp to tell
		# Mosquitto's own websockets-listener leak from anything else. The
		# slow one doubles the broker's CPU: only with that listener.
		[[ "${1:-}" == mosquitto-ws ]] && leaks="$leaks:fast_unwind_on_malloc=0"
		echo "LD_PRELOAD=$asan:$ubsan"
		echo "ASAN_OPTIONS=detect_leaks=$leaks:abort_on_error=0:halt_on_error=1:log_path=$T/san/asan"
		echo "LSAN_OPTIONS=suppressions=$ROOT/tests/lib/lsan.supp:print_suppressions=0"
		echo "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:log_path=$T/san/ubsan"
	fi
}

# stack_valgrind_clean: prints every Valgrind log in $T/vg that reports an
# error (after suppressions); status 1 if there was one. A process killed
# with SIGKILL writes no summary, but the errors it logged before still count.
stack_valgrind_clean() {
	local log n clean=0
	for log in "$T"/vg/*.log; do
		[[ -f "$log" ]] || continue
		n=$(sed -n 's/^==[0-9]*== ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | tail -1)
		if [[ -z "$n" ]]; then
			grep -qE '^==[0-9]+== (Invalid (read|write|free)|Conditional jump|Use of uninitialised|Syscall param|Mismatched free|Source and destination overlap|Argument .* of function)' "$log" || continue
		elif ((n == 0)); then
			continue
		fi
		echo "valgrind: $log" >&2
		cat "$log" >&2
		clean=1
	done
	return $clean
}

stack_cleanup() {
	local pid sig
	# A paused Kafka would not see the TERM that stops it. (`|| true`: a
	# script under set -e, bench/ingest.sh, would end here if it is dead.)
	[[ -n "${KAFKA_JVM_PID:-}" ]] && { kill -CONT "$KAFKA_JVM_PID" 2>/dev/null || true; }
	for ((i = ${#STACK_PIDS[@]} - 1; i >= 0; i--)); do
		pid=${STACK_PIDS[i]}
		# Under Valgrind nginx stops gracefully: on TERM its master SIGKILLs
		# workers that take more than about a second to exit, and memcheck's
		# leak check at exit takes longer than that.
		sig=TERM
		stack_is_valgrind && [[ "$pid" == "${NGINX_PID:-}" ]] && sig=QUIT
		kill -$sig "$pid" 2>/dev/null || true
	done
	for pid in "${STACK_PIDS[@]}"; do
		for _ in $(seq 1 $((100 * STACK_SLOW))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$pid" 2>/dev/null || true
	done
	[[ -n "${KAFKA_JVM_PID:-}" ]] && { kill -KILL "$KAFKA_JVM_PID" 2>/dev/null || true; }
	# Sanitizer reports from the servers fail the test that started them.
	if compgen -G "$T/san/asan*" >/dev/null || compgen -G "$T/san/ubsan*" >/dev/null; then
		echo "sanitizer reports:" >&2
		cat "$T"/san/asan* "$T"/san/ubsan* >&2 2>/dev/null
		STACK_SAN_FAILED=1
	fi
	# So do Valgrind's.
	if stack_is_valgrind; then
		stack_valgrind_clean || STACK_SAN_FAILED=1
	fi
}

stack_exit() {
	local rc=$?
	stack_cleanup
	eval "${STACK_AFTER_CLEANUP:-}"
	if [[ -n "${STACK_SAN_FAILED:-}" && $rc -eq 0 ]]; then
		rc=1
	fi
	exit $rc
}

stack_init() {
	stack_is_valgrind && stack_is_san && fail "VALGRIND=1 needs the normal build, not $BUILD"
	T="$BUILD/test-tmp/$(basename "$0" .sh)"
	rm -rf "$T"
	mkdir -p "$T"
	export T
	trap stack_exit EXIT
	trap 'exit 130' INT TERM
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # host port timeout_s (times STACK_SLOW)
	local deadline=$((SECONDS + ${3:-10} * STACK_SLOW))
	while ((SECONDS < deadline)); do
		(exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

wait_until() { # timeout_s (times STACK_SLOW) command...: until the command succeeds
	local deadline=$((SECONDS + $1 * STACK_SLOW))
	shift
	while ((SECONDS < deadline)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

wait_log() { # file pattern timeout_s (times STACK_SLOW): until the file has a line matching
	wait_until "${3:-15}" grep -q -- "$2" "$1" 2>/dev/null
}

# wait_assigned [N]: the plugin's outbound consumer has had its partitions
# assigned N times (default 1). Its group starts at "latest": a record
# produced before that would never be delivered.
log_count_at_least() { # file pattern n
	(($(grep -c -- "$2" "$1" 2>/dev/null) >= $3))
}
wait_assigned() {
	wait_until 20 log_count_at_least "$T/mosquitto.log" 'outbound: assigned' "${1:-1}" ||
		{ cat "$T/mosquitto.log" >&2; fail "the plugin's outbound consumer got no partitions"; }
}

start_kafka() {
	if [[ -z "${TEST_KAFKA_BOOTSTRAP:-}" ]]; then
		start_mock_kafka "$@"
		return
	fi
	local topics=()
	while (($#)); do
		[[ "$1" == --topic && $# -ge 2 ]] || fail "start_kafka on Apache Kafka takes only --topic NAME[:PARTITIONS] (not $1)"
		topics+=("$2")
		shift 2
	done
	export KAFKA_BOOTSTRAP=$TEST_KAFKA_BOOTSTRAP
	# The previous test's topics (and with them its groups' offsets) go.
	"$BUILD/bin/tributary-kafka-admin" --brokers "$KAFKA_BOOTSTRAP" --timeout 30 delete-all ||
		fail "could not delete the previous test's topics"
	if ((${#topics[@]})); then
		"$BUILD/bin/tributary-kafka-admin" --brokers "$KAFKA_BOOTSTRAP" --timeout 30 create "${topics[@]}" ||
			fail "could not create the topics ${topics[*]}"
	fi
}

start_mock_kafka() {
	port_free "$KAFKA_PORT" || fail "port $KAFKA_PORT is in use (set TEST_PORT_BASE to run tests side by side)"
	"$BUILD/bin/tributary-devkafka" --port "$KAFKA_PORT" --control "$KAFKA_CONTROL_PORT" "$@" \
		>"$T/devkafka.out" 2>"$T/devkafka.log" &
	STACK_PIDS+=($!)
	KAFKA_PID=$!
	wait_port 127.0.0.1 "$KAFKA_CONTROL_PORT" 10 || { cat "$T/devkafka.log" >&2; fail "dev Kafka did not start"; }
}

# start_real_kafka [tributary-kafka args, e.g. --topic NAME[:PARTITIONS]]...:
# Apache Kafka, one KRaft node, its log dir in $T/kafka. Returns once it
# answers metadata and the topics have leaders. KAFKA_PID is the script's
# pid (TERM stops the broker cleanly), KAFKA_JVM_PID the broker's own.
start_real_kafka() {
	command -v java >/dev/null || skip "no Java here: Apache Kafka cannot run (tools/install-deps.sh installs it)"
	REAL_KAFKA_ARGS=("$@")
	port_free "$KAFKA_PORT" && port_free "$KAFKA_CONTROLLER_PORT" ||
		fail "port $KAFKA_PORT or $KAFKA_CONTROLLER_PORT is in use (set TEST_PORT_BASE to run tests side by side)"
	local ready
	ready=$(grep -c 'tributary-kafka: ready' "$T/kafka.out" 2>/dev/null)
	"$BUILD/bin/tributary-kafka" --dir "$T/kafka" --port "$KAFKA_PORT" \
		--controller-port "$KAFKA_CONTROLLER_PORT" "$@" >>"$T/kafka.out" 2>&1 &
	KAFKA_PID=$!
	STACK_PIDS+=($KAFKA_PID)
	wait_until 120 real_kafka_ready "$((ready + 1))" ||
		{ cat "$T/kafka.out" >&2; tail -30 "$T/kafka/kafka.log" >&2; fail "Kafka did not start"; }
	kill -0 "$KAFKA_PID" 2>/dev/null || { cat "$T/kafka.out" >&2; fail "Kafka did not start"; }
	KAFKA_JVM_PID=$(cat "$T/kafka/kafka.pid")
	grep 'tributary-kafka: ready' "$T/kafka.out" | tail -1
}
real_kafka_ready() { # n: the nth ready line, or the script has exited
	log_count_at_least "$T/kafka.out" 'tributary-kafka: ready' "$1" || ! kill -0 "$KAFKA_PID" 2>/dev/null
}
kafka_restart() { start_real_kafka "${REAL_KAFKA_ARGS[@]}"; }
kafka_pause() { kill -STOP "$KAFKA_JVM_PID" || fail "no Kafka to pause"; }
kafka_resume() { kill -CONT "$KAFKA_JVM_PID" || fail "no Kafka to resume"; }
kafka_stop() {
	kill -TERM "$KAFKA_PID" || fail "no Kafka to stop"
	wait_until 30 eval '! kill -0 "$KAFKA_PID" 2>/dev/null' || fail "Kafka did not stop"
}
kafka_kill() {
	kill -KILL "$KAFKA_JVM_PID" || fail "no Kafka to kill"
	# The script exits with its JVM; its ports are free then.
	wait_until 10 eval '! kill -0 "$KAFKA_PID" 2>/dev/null' || fail "Kafka's script did not exit"
}

kafka_ctl() {
	local reply
	exec 5<>"/dev/tcp/127.0.0.1/$KAFKA_CONTROL_PORT" || fail "no dev Kafka control port"
	printf '%s\n' "$1" >&5
	read -r -t 10 reply <&5
	exec 5>&-
	[[ "$reply" == ok ]] || fail "kafka_ctl '$1': $reply"
}

# kcat's consumer asks the dev Kafka for at most 10 ms of waiting per fetch:
# at librdkafka's default (500 ms) every read to the end of a topic costs
# half a second, only to learn that there is nothing more.
KCAT_CONSUME=(-X fetch.wait.max.ms=10)

# kafka_read TOPIC COUNT [TIMEOUT_S] [FORMAT]: reads COUNT records from the
# beginning of every partition (kcat's -f format; default key<TAB>value).
kafka_read() {
	local topic=$1 count=$2 timeout=${3:-20} fmt=${4:-'%k\t%s\n'}
	timeout "$timeout" kcat -q -b "$KAFKA_BOOTSTRAP" "${KCAT_CONSUME[@]}" -C -t "$topic" -o beginning -c "$count" -f "$fmt" 2>>"$T/kcat.log"
}

# kafka_count TOPIC: how many records the topic holds now.
kafka_count() {
	timeout 20 kcat -q -b "$KAFKA_BOOTSTRAP" "${KCAT_CONSUME[@]}" -C -t "$1" -o beginning -e -f 'x\n' 2>>"$T/kcat.log" | wc -l
}

# render TEMPLATE OUT: conf/ template with @VARS@ from the environment.
render() { "$ROOT/tools/render-conf.sh" "$1" >"$2" || fail "render $1"; }

start_mosquitto() {
	local tj=${1:-$ROOT/conf/dev/tributary.json.in}
	export TRIBUTARY_CONFIG="$T/tributary.json"
	export MOSQUITTO_DATA_DIR="$T/mosquitto-data"
	export PLUGIN_PATH="$BUILD/mosquitto_tributary.so"
	export JOURNAL_DIR="${JOURNAL_DIR:-$T/journal}"
	mkdir -p "$MOSQUITTO_DATA_DIR" "$JOURNAL_DIR"
	# Started as root, Mosquitto drops to its own user: let it write its state.
	if [[ $(id -u) -eq 0 ]] && id mosquitto >/dev/null 2>&1; then
		chown mosquitto: "$MOSQUITTO_DATA_DIR" "$JOURNAL_DIR"
	fi
	render "$tj" "$TRIBUTARY_CONFIG"
	render "${MOSQUITTO_CONF_TEMPLATE:-$ROOT/conf/dev/mosquitto.conf.in}" "$T/mosquitto.conf"
	if [[ -n "${2:-}" ]]; then printf '%s\n' "$2" >>"$T/mosquitto.conf"; fi
	local san=mosquitto
	if grep -q '^protocol websockets' "$T/mosquitto.conf"; then
		# conf/dev's listener for nginx's relay, under the sanitizer only
		# where the test uses it (see stack_san_env)
		if [[ "${MOSQUITTO_WEBSOCKETS:-}" == 1 ]]; then
			san=mosquitto-ws
		elif stack_is_san; then
			sed -i "/^listener $MQTT_WS_PORT /,/^protocol websockets/d" "$T/mosquitto.conf"
		fi
	fi
	port_free "$MQTT_PORT" || fail "port $MQTT_PORT is in use (set TEST_PORT_BASE to run tests side by side)"
	env $(stack_san_env $san) mosquitto -c "$T/mosquitto.conf" >>"$T/mosquitto.log" 2>&1 &
	MOSQUITTO_PID=$!
	STACK_PIDS+=($MOSQUITTO_PID)
	wait_port 127.0.0.1 "$MQTT_PORT" 15 && kill -0 "$MOSQUITTO_PID" 2>/dev/null ||
		{ cat "$T/mosquitto.log" >&2; fail "mosquitto did not start"; }
}

stop_mosquitto() { # [signal]
	kill -"${1:-TERM}" "$MOSQUITTO_PID" 2>/dev/null
	for _ in $(seq 1 $((100 * STACK_SLOW))); do kill -0 "$MOSQUITTO_PID" 2>/dev/null || return 0; sleep 0.1; done
	kill -KILL "$MOSQUITTO_PID" 2>/dev/null
}

start_nginx() {
	local tpl=${1:-$ROOT/conf/dev/nginx.conf.in}
	export NGINX_PREFIX="$T/nginx"
	export NGINX_MODULE_PATH="$BUILD/ngx_http_tributary_module.so"
	export WEB_ROOT="${WEB_ROOT:-$BUILD/web}"
	mkdir -p "$NGINX_PREFIX/logs" "$NGINX_PREFIX/tmp"
	render "$tpl" "$T/nginx.conf"
	port_free "$HTTP_PORT" || fail "port $HTTP_PORT is in use (set TEST_PORT_BASE to run tests side by side)"
	env $(stack_san_env nginx) nginx -p "$NGINX_PREFIX" -c "$T/nginx.conf" -e "$NGINX_PREFIX/logs/error.log" -g 'daemon off;' \
		>>"$T/nginx.out" 2>&1 &
	NGINX_PID=$!
	STACK_PIDS+=($NGINX_PID)
	wait_port 127.0.0.1 "$HTTP_PORT" 15 && kill -0 "$NGINX_PID" 2>/dev/null || { cat "$T/nginx.out" "$NGINX_PREFIX/logs/error.log" >&2; fail "nginx did not start"; }
}

start_registry() {
	[[ -n "${TEST_KAFKA_BOOTSTRAP:-}" ]] || skip "the dev Schema Registry keeps its state in Apache Kafka (not with KAFKA=mock)"
	port_free "$REGISTRY_PORT" || fail "port $REGISTRY_PORT is in use (set TEST_PORT_BASE to run tests side by side)"
	local started
	started=$(grep -c 'registry-dev: listening' "$T/registry.log" 2>/dev/null)
	"$BUILD/bin/tributary-registry-dev" --bootstrap "$KAFKA_BOOTSTRAP" \
		--listen "127.0.0.1:$REGISTRY_PORT" "$@" >>"$T/registry.log" 2>&1 &
	REGISTRY_PID=$!
	STACK_PIDS+=($REGISTRY_PID)
	wait_until 60 log_count_at_least "$T/registry.log" 'registry-dev: listening' "$((started + 1))" &&
		kill -0 "$REGISTRY_PID" 2>/dev/null ||
		{ cat "$T/registry.log" >&2; fail "the dev Schema Registry did not start"; }
}

# nginx_log_clean: no crash, alert or emergency in nginx's error log.
# Memcheck refuses worker_rlimit_nofile's setrlimit (any hard limit but its
# own, which is the shell's and already higher): not an alert about nginx.
nginx_log_clean() {
	local expected='^$'
	stack_is_valgrind && expected='setrlimit\(RLIMIT_NOFILE, [0-9]+\) failed \(1: '
	! grep -E '\[(alert|emerg|crit)\]|signal [0-9]+ .*exited|core dumped' "$NGINX_PREFIX/logs/error.log" |
		grep -vE "$expected"
}
