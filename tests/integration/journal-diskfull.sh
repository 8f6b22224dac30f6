#!/usr/bin/env bash
# Journal on a full filesystem: a 2 MB tmpfs is filled through the operator
# tool. Appends must fail cleanly with "no space left on device", leave no
# partial entry behind (everything replays and verifies, no corrupt region),
# and work again once releases have freed segments.
source "$(dirname "$0")/../lib/stack.sh"
stack_init

TOOL="$BUILD/bin/tributary-journal-tool"
[[ -x "$TOOL" ]] || fail "$TOOL not built"
MNT="$T/mnt"
J="$MNT/journal"
mkdir -p "$MNT"
mount -t tmpfs -o size=2m tmpfs "$MNT" 2>"$T/mount.err" || skip "cannot mount a tmpfs: $(cat "$T/mount.err")"
trap 'rc=$?; umount -l "$MNT" 2>/dev/null; (exit $rc); stack_exit' EXIT

# tool ARGS...: runs the tool, stdout to $T/out, stderr to $T/err, status in $rc.
tool() {
	env $(stack_san_env) "$TOOL" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	cat "$T/out" "$T/err" >>"$T/tool.log"
}

appended() { sed -n 's/^appended \([0-9]*\) of.*/\1/p' "$T/out"; }

# verify EXPECTED_COUNT: every unreleased entry is intact, no corrupt region.
verify() {
	tool replay "$J" --verify -q
	[[ $rc -eq 0 ]] || { cat "$T/out" "$T/err" >&2; fail "replay --verify exited $rc"; }
	grep -q "^replayed $1 entries (.*), 0 bad, 0 corrupt regions$" "$T/out" ||
		fail "expected $1 intact entries: $(tail -1 "$T/out")"
	[[ ! -s "$T/err" ]] || fail "replay reported problems: $(cat "$T/err")"
	tool dump "$J"
	! grep -q -e CORRUPT -e UNREADABLE "$T/out" || fail "dump shows damage: $(grep -e CORRUPT -e UNREADABLE "$T/out")"
}

# 1. Fill it: ~1.1 KB records, 128 KiB segments, no-loss sync policy.
tool append "$J" 5000 1000 --segment-bytes=128k --sync=always
[[ $rc -eq 4 ]] || fail "append on a full disk exited $rc, expected 4 (no space): $(cat "$T/err")"
grep -q "no space left on device" "$T/err" || fail "no ENOSPC message: $(cat "$T/err")"
K=$(appended)
((K > 1000 && K < 2000)) || fail "appended $K entries of ~1.1 KB into 2 MB"
pass "filled the disk after $K entries, clean ENOSPC"
verify "$K"
pass "all $K entries intact after ENOSPC"

# 2. Still full: fails again, adds nothing, damages nothing.
tool append "$J" 10 1000 --segment-bytes=128k
[[ $rc -eq 4 ]] || fail "second append exited $rc"
[[ $(appended) == 0 ]] || fail "second append stored $(appended) entries on a full disk"
verify "$K"
pass "repeated ENOSPC leaves the journal as it was"

# 3. Delivery confirmed for the older half: their segments are deleted.
HALF=$((K / 2))
tool release "$J" "1-$HALF"
[[ $rc -eq 0 || $rc -eq 5 ]] || fail "release exited $rc: $(cat "$T/err")"
grep -q "^released $HALF, unknown 0, depth now $((K - HALF))$" "$T/out" || fail "release: $(cat "$T/out")"
verify "$((K - HALF))"
tool replay "$J" --verify
first=$(head -1 "$T/out" | cut -d' ' -f1)
[[ "$first" == $((HALF + 1)) ]] || fail "oldest entry after release is $first, expected $((HALF + 1))"
used=$(df -k --output=used "$MNT" | tail -1)
((used < 1400)) || fail "releases freed too little: ${used} KiB still used"
pass "released $HALF entries, ${used} KiB in use"

# 4. Space is back: appends work again, then fill up once more.
tool append "$J" 300 1000 --segment-bytes=128k --sync=interval
[[ $rc -eq 0 ]] || fail "append after freeing space exited $rc: $(cat "$T/err")"
verify "$((K - HALF + 300))"
tool append "$J" 5000 1000 --segment-bytes=128k --sync=never
[[ $rc -eq 4 ]] || fail "refill exited $rc"
M=$(appended)
((M > 100)) || fail "refill stored only $M entries"
verify "$((K - HALF + 300 + M))"
pass "appends resumed after space was freed; refilled with $M more, all intact"

tool stats "$J"
grep -q "^corrupt_regions=0$" "$T/out" || fail "stats: $(cat "$T/out")"
pass "journal-diskfull"
