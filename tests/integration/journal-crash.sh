#!/usr/bin/env bash
# Journal after a process crash (SIGKILL) in the middle of appends and in
# the middle of releases: the lock is free again, every entry that reached
# the journal is intact and replays in order, sequence numbers continue, and
# the releases that were made stay made (a prefix, since they ran in order).
source "$(dirname "$0")/../lib/stack.sh"
stack_init

TOOL="$BUILD/bin/tributary-journal-tool"
[[ -x "$TOOL" ]] || fail "$TOOL not built"
J="$T/journal"

tool() {
	env $(stack_san_env) "$TOOL" "$@" >"$T/out" 2>"$T/err"
	rc=$?
}
stat_of() { sed -n "s/^$1=//p" "$T/out"; }

# kill_during SECONDS TOOL-ARGS...: starts the tool and SIGKILLs it; status 1
# if it had finished already.
kill_during() {
	local delay=$1 killed=0
	shift
	env $(stack_san_env) "$TOOL" "$@" >"$T/killed.out" 2>"$T/killed.err" &
	local pid=$!
	# under Valgrind (STACK_SLOW > 1) the tool needs about half a second to start
	sleep "$(awk -v d="$delay" -v s="$STACK_SLOW" 'BEGIN { print d + (s > 1 ? 0.5 : 0) }')"
	kill -KILL "$pid" 2>/dev/null || killed=1
	wait "$pid" 2>/dev/null
	return $killed
}

# check_contiguous FIRST LAST: replay lists exactly FIRST..LAST, all intact.
check_contiguous() {
	tool replay "$J" --verify
	[[ $rc -eq 0 ]] || fail "replay --verify exited $rc: $(tail -3 "$T/out") $(cat "$T/err")"
	local n=$(($2 - $1 + 1))
	grep -q "^replayed $n entries (.*), 0 bad, 0 corrupt regions$" "$T/out" ||
		fail "expected $n entries $1..$2: $(tail -1 "$T/out")"
	local got
	got=$(grep -E '^[0-9]+ len=' "$T/out" | cut -d' ' -f1 | awk -v f="$1" 'NR==1 && $1!=f {print "first " $1; exit} NR>1 && $1!=p+1 {print "gap after " p; exit} {p=$1} END {if (p) print "last " p}')
	[[ "$got" == "last $2" ]] || fail "replay order: $got (expected $1..$2)"
}

# 1. SIGKILL while appending (sync=never: the largest window in user space).
kill_during 0.5 append "$J" 100000000 200 --sync=never --segment-bytes=1m --max-bytes=300m ||
	fail "append finished before it could be killed: $(cat "$T/killed.out" "$T/killed.err")"
tool stats "$J"
[[ $rc -eq 0 ]] || fail "stats after crash exited $rc: $(cat "$T/err")"
K=$(stat_of depth)
((K > 1000)) || fail "only $K entries before the kill"
[[ $(stat_of next_seq) == $((K + 1)) && $(stat_of oldest_seq) == 1 ]] || fail "stats: $(cat "$T/out")"
check_contiguous 1 "$K"
pass "$K entries intact and in order after SIGKILL during appends"

# 2. The lock died with the process: a writer can open it and continues the numbering.
tool append "$J" 10 200
[[ $rc -eq 0 ]] || fail "append after crash exited $rc: $(cat "$T/err")"
grep -q "^appended 10 of 10 (seq $((K + 1))-$((K + 10)))$" "$T/out" || fail "append: $(cat "$T/out")"
K=$((K + 10))
pass "appends continue at seq $((K - 9))"

# 3. SIGKILL while releasing everything in order; loading the journal takes
# a while first, so wait longer until some releases got through.
for delay in 0.3 0.8 2 5; do
	kill_during "$delay" release "$J" "1-$K"
	tool stats "$J"
	D=$(stat_of depth)
	((D < K)) && break
done
((D < K)) || fail "no release survived the kill (depth $D of $K)"
if ((D == 0)); then
	pass "release finished before the kill; nothing left"
else
	check_contiguous $((K - D + 1)) "$K"
	pass "$((K - D)) releases survived the kill, $D entries left, in order"
fi

# 4. Finishing the job empties the journal on disk.
tool release "$J" "1-$K"
[[ $rc -eq 0 ]] || fail "final release exited $rc: $(cat "$T/err")"
tool stats "$J"
[[ $(stat_of depth) == 0 && $(stat_of segments) == 0 ]] || fail "not empty: $(cat "$T/out")"
left=$(find "$J" -name '*.seg' -o -name '*.ack' | wc -l)
[[ $left == 0 ]] || fail "$left segment/ack files left"
pass "journal-crash"
