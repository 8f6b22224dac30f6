#!/usr/bin/env bash
# `make bench`: every benchmark, each beside the baseline it is judged
# against, measured in the same run. Medians of BENCH_REPS repetitions.
# BENCH_ONLY=ingest,validate,... runs a subset.
set -uo pipefail
cd "$(dirname "$0")/.."
export BUILD=${BUILD:-build}
only=${BENCH_ONLY:-}
want() { [[ -z "$only" || ",$only," == *",$1,"* ]]; }
status=0
for b in ingest validate journal jwt auth ws outbound stream; do
	want "$b" || continue
	if [[ -f "bench/$b.sh" ]]; then
		echo "=== $b"
		bash "bench/$b.sh" || { echo "bench $b failed"; status=1; }
		echo
	fi
done
exit $status
