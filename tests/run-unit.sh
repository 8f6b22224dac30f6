#!/usr/bin/env bash
# Runs every cmocka unit test binary in BUILD/tests, then replays each fuzz
# target's corpus; exits non-zero if any fails.
set -uo pipefail
build=${1:-build}
status=0
for t in "$build"/tests/test_*; do
	[[ -x "$t" ]] || continue
	echo "== $t"
	"$t" || status=1
done
# Fuzz targets over their corpora: every seed and every crash once found.
for r in "$build"/tests/replay_*; do
	[[ -x "$r" ]] || continue
	name=${r##*/replay_}
	[[ -d tests/fuzz/corpus/$name ]] || continue
	echo "== $r"
	"$r" "tests/fuzz/corpus/$name" || status=1
done
exit $status
