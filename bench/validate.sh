#!/usr/bin/env bash
# JSON Schema validation: tributary (shared/jsonschema) beside ajv 8
# (+ ajv-formats) on the same schemas and documents, in the same run:
# 1 KB and 10 KB order events, and the test suite's valid 2020-12 instances.
# Prints ns per document (medians of REPS repetitions):
#   validate:  tjs_validate on a jansson document | tjs_validate_value on a
#              tjs_doc | ajv on a JS object
#   parse+validate from the bytes: json_loadb + tjs_validate (jansson path) |
#              tjs_validate_bytes (tjs_doc path) | JSON.parse + ajv
# Both sides read the same compact text (shortest round-trip numbers).
# Standalone after `make`:
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
printf '%-12s %8s | %9s %9s %9s | %15s %15s %15s\n' case docs 'tjs json_t' 'tjs doc' ajv 'json_loadb+tjs' 'tjs bytes' 'JSON.parse+ajv'
# ours: NAME validate parse_validate N bytes value; ajv: NAME validate parse_validate N
# (a trailing skipped=N is reported below)
join <(cut -d' ' -f1-6 "$tmp/ours.txt" | sort) <(cut -d' ' -f1-4 "$tmp/ajv.txt" | sort) |
	while read -r name ov opv on obv ovv av apv an; do
		printf '%-12s %8s | %9s %9s %9s | %15s %15s %15s\n' "$name" "$on/$an" "$ov" "$ovv" "$av" "$opv" "$obv" "$apv"
	done
sed 's/^/input: /' "$tmp/gen.log"
grep -h skipped "$tmp/ours.txt" "$tmp/ajv.txt" | sed 's/^/note: /' || true
