#!/usr/bin/env bash
# JSON Schema validation: tributary (jansson + shared/jsonschema) beside
# ajv 8 (+ ajv-formats) on the same schemas and documents, in the same run:
# 1 KB and 10 KB order events, and the test suite's valid 2020-12 instances.
# Prints ns per validation of a parsed document and from its bytes (parse +
# validate), medians of REPS repetitions. Standalone after `make`:
#   bash bench/validate.sh            (BUILD=build REPS=7)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${BUILD:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
REPS=${REPS:-7}
cd "$ROOT"
[[ -x "$BUILD/bench/validate" ]] || make -s "$BUILD/bench/validate" BUILD="$BUILD" >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
suite="$ROOT/../shared/json-schema-test-suite"
node bench/validate_gen.mjs "$tmp" "$suite" 2>"$tmp/gen.log" || { cat "$tmp/gen.log" >&2; exit 1; }
"$BUILD/bench/validate" "$tmp/cases.json" "$REPS" >"$tmp/ours.txt"
node bench/validate_ajv.mjs "$tmp/cases.json" "$REPS" >"$tmp/ajv.txt"

echo "JSON Schema validation, ns per document (median of $REPS), $(nproc) cores"
printf '%-12s %8s %14s %14s %18s %18s\n' case docs tributary ajv tributary+parse ajv+JSON.parse
# first four fields of each side (a trailing skipped=N is reported below)
join <(cut -d' ' -f1-4 "$tmp/ours.txt" | sort) <(cut -d' ' -f1-4 "$tmp/ajv.txt" | sort) |
	while read -r name ov opv on av apv an; do
		printf '%-12s %8s %14s %14s %18s %18s\n' "$name" "$on/$an" "$ov" "$av" "$opv" "$apv"
	done
sed 's/^/input: /' "$tmp/gen.log"
grep -h skipped "$tmp/ours.txt" "$tmp/ajv.txt" | sed 's/^/note: /' || true
