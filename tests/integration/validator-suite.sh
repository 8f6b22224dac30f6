#!/usr/bin/env bash
# JSON-Schema-Test-Suite against tributary-validate: every required test of
# drafts 4, 6, 7 and 2020-12 must pass; optional tests (format ones in
# assertion mode) may only fail where tests/jsonschema-known-failures.txt
# says so, with its reason. The suite lives beside the project, in
# ../shared/json-schema-test-suite; without it the test is skipped.
source "$(dirname "$0")/../lib/stack.sh"
stack_init

suite="$ROOT/../shared/json-schema-test-suite"
[[ -d "$suite/tests" ]] || skip "no JSON-Schema-Test-Suite at $suite"
bin="$BUILD/bin/tributary-validate"
[[ -x "$bin" ]] || fail "$bin not built"
known="$ROOT/tests/jsonschema-known-failures.txt"

status=0
run() { # label args...
	local label=$1
	shift
	if "$bin" --remotes "$suite/remotes" "$@" >"$T/$label.out" 2>&1; then
		echo "ok   $label: $(tail -1 "$T/$label.out")"
	else
		echo "FAIL $label: $(tail -1 "$T/$label.out")"
		grep -E '(FAIL|failed, |known failure)' "$T/$label.out" | grep -v ' 0 failed' | sed 's/^/    /'
		status=1
	fi
}

for d in draft4 draft6 draft7 draft2020-12; do
	[[ -d "$suite/tests/$d" ]] || fail "suite has no tests/$d"
	run "$d-required" --suite "$suite/tests/$d"
	run "$d-optional" --known-failures "$known" --suite "$suite/tests/$d/optional"
	run "$d-format" --format-assert --known-failures "$known" --suite "$suite/tests/$d/optional/format"
done
# known failures are reported, not hidden
grep -h 'known failure' "$T"/*.out | sed 's/^/    expected: /'
((status == 0)) || fail "JSON-Schema-Test-Suite failures"
pass "JSON-Schema-Test-Suite: all required tests pass"
