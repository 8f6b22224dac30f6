# Sourced by tributary-kafka and tributary-connect (tools/kafka/, installed
# in build/bin with ROOT set): one JVM on the jars of tools/kafka/pom.xml,
# run in the background and followed until it exits.
#
#   jvm_init NAME LIB XMS XMX       java is there, the jars are fetched; sets JVM
#                                   (java, its flags and the classpath)
#   jvm_start PIDFILE LOG ARGS...   starts "${JVM[@]}" ARGS..., output appended to
#                                   LOG, pid in JVM_PID and PIDFILE; SIGINT and
#                                   SIGTERM stop it (jvm_stop)
#   JVM_READY=1                     the JVM came up as it should (see below)
#   jvm_stop                        SIGTERM to the JVM: a clean stop
#   jvm_finish [STATUS]             waits for the JVM, removes PIDFILE, exits with
#                                   STATUS or else the JVM's status
#
# Class data sharing (JDK 17's dynamic AppCDS archives): the first run of
# each NAME that came up (JVM_READY=1) and exited cleanly leaves the classes
# it loaded in LIB/.cds/NAME-JDK.jsa, and later runs map that archive
# instead of loading and verifying those classes again. On 2 cores that is
# about 3 s less for Connect's start (5.7 s to 2 s) and 1 s for the
# broker's; the first run's exit takes a few seconds more, for the dump.
# The archive goes with LIB when fetch.sh replaces it, and is named after
# the java binary, so a new JDK makes its own. A JVM that cannot use an
# archive runs without it (-Xshare:auto: a warning in the log, no failure).

jvm_init() {
	JVM_NAME=$1 JVM_LIB=$2
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
	local log=$2 cds=() java id
	shift 2
	java=$(readlink -f "$(command -v java)")
	id=$(printf '%s %s' "$java" "$(stat -c %Y "$java")" | cksum | cut -d' ' -f1)
	JVM_CDS="$JVM_LIB/.cds/$JVM_NAME-$id.jsa" JVM_CDS_NEW=""
	if [[ -f "$JVM_CDS" ]]; then
		cds=("-XX:SharedArchiveFile=$JVM_CDS")
	elif mkdir -p "$JVM_LIB/.cds" 2>/dev/null; then
		# Dumps left by runs that were killed.
		find "$JVM_LIB/.cds" -name '*.tmp.*' -mmin +10 -delete 2>/dev/null || true
		JVM_CDS_NEW="$JVM_CDS.tmp.$$"
		cds=("-XX:ArchiveClassesAtExit=$JVM_CDS_NEW")
	fi
	"${JVM[@]}" "${cds[@]}" "$@" >>"$log" 2>&1 &
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
	# The dump is whole once the JVM has exited by itself or on SIGTERM or
	# SIGINT (not SIGKILL). Another run may have installed one meanwhile.
	if [[ -n "$JVM_CDS_NEW" ]]; then
		if [[ "${JVM_READY:-}" == 1 && -s "$JVM_CDS_NEW" ]] && ((rc == 0 || rc == 130 || rc == 143)); then
			mv -f "$JVM_CDS_NEW" "$JVM_CDS"
		else
			rm -f "$JVM_CDS_NEW"
		fi
	fi
	exit "${1:-$rc}"
}
