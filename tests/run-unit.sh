#!/usr/bin/env bash
# Runs every cmocka unit test binary in BUILD/tests; exits non-zero if any fails.
set -uo pipefail
build=${1:-build}
status=0
for t in "$build"/tests/test_*; do
	[[ -x "$t" ]] || continue
	echo "== $t"
	"$t" || status=1
done
exit $status
