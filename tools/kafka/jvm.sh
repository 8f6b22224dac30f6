# Sourced by tributary-kafka and tributary-connect (tools/kafka/, installed
# in build/bin with ROOT set): one JVM on the jars of tools/kafka/pom.xml,
# run in the background and followed until it exits.
#
#   jvm_init NAME LIB XMS XMX       java is there, the jars are fetched; sets JVM
#                                   (java, its flags and the classpath)
#   jvm_start PIDFILE LOG ARGS...   starts "${JVM[@]}" ARGS..., output appended to
#                                   LOG, pid in JVM_PID and PIDFILE; SIGINT and
#                                   SIGTERM stop it (jvm_stop)
#   jvm_stop                        SIGTERM to the JVM: a clean stop
#   jvm_finish [STATUS]             waits for the JVM, removes PIDFILE, exits with
#                                   STATUS or else the JVM's status

jvm_init() {
	command -v java >/dev/null ||
		{ echo "$1: java not found (tools/install-deps.sh installs openjdk-17-jre-headless)" >&2; exit 1; }
	"$ROOT/tools/kafka/fetch.sh" "$2"
	# A quick start and a small footprint: one GC thread, the C1 compiler only.
	JVM=(java "-Xms$3" "-Xmx$4" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xss512k
		-Djava.awt.headless=true "-Dlog4j2.configurationFile=$ROOT/tools/kafka/log4j2.properties"
		-cp "$2/*")
}

jvm_start() {
	JVM_PIDFILE=$1
	local log=$2
	shift 2
	"${JVM[@]}" "$@" >>"$log" 2>&1 &
	JVM_PID=$!
	echo "$JVM_PID" >"$JVM_PIDFILE"
	trap jvm_stop INT TERM
}

jvm_stop() {
	trap - INT TERM
	kill -TERM "$JVM_PID" 2>/dev/null || true
}

jvm_finish() {
	local rc=0
	wait "$JVM_PID" || rc=$?
	# wait returns early when a trapped signal arrives: wait for the JVM.
	while kill -0 "$JVM_PID" 2>/dev/null; do wait "$JVM_PID" || rc=$?; done
	rm -f "$JVM_PIDFILE"
	exit "${1:-$rc}"
}
