#!/usr/bin/env bash
# Builds and runs every libFuzzer target tests/fuzz/fuzz_NAME.c for
# FUZZ_SECONDS (default 60) each, from its seed corpus tests/fuzz/corpus/NAME/.
# The shared sources (and the embedded meta-schemas) are compiled with clang
# and the fuzzer's coverage instrumentation here, separately from the gcc build.
# New inputs go to build/fuzz/corpus/NAME, crashes to build/fuzz/artifacts/NAME.
#   FUZZ_SECONDS=10 tools/fuzz.sh [NAME...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
out=build/fuzz
CC=${FUZZ_CC:-clang}
command -v "$CC" >/dev/null || { echo "fuzz: $CC not found" >&2; exit 2; }
pkgs="jansson rdkafka libpcre2-8 libssl libcrypto"
cflags="-std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer -Wall -Wextra -Ishared/include -I$out/gen $(pkg-config --cflags $pkgs)"
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
libs="$(pkg-config --libs $pkgs) -lpthread -lm"

if (($# > 0)); then
	targets=("$@")
else
	targets=()
	for f in tests/fuzz/fuzz_*.c; do
		[[ -f "$f" ]] && targets+=("$(basename "$f" .c | sed 's/^fuzz_//')")
	done
fi
((${#targets[@]})) || { echo "fuzz: no targets in tests/fuzz"; exit 0; }

mkdir -p "$out/gen" "$out/obj"
tools/embed-metaschemas.sh schemas/meta >"$out/gen/metaschemas.c.tmp"
mv "$out/gen/metaschemas.c.tmp" "$out/gen/metaschemas.c"
objs=()
while IFS= read -r src; do
	obj="$out/obj/${src%.c}.o"
	mkdir -p "$(dirname "$obj")"
	if [[ ! -f "$obj" || "$src" -nt "$obj" || -n "$(find shared/include "$(dirname "$src")" -name '*.h' -newer "$obj" 2>/dev/null | head -1)" ]]; then
		$CC $cflags $san -fsanitize=fuzzer-no-link -c "$src" -o "$obj"
	fi
	objs+=("$obj")
done < <(find shared -name '*.c' | LC_ALL=C sort; echo "$out/gen/metaschemas.c")
rm -f "$out/libtributary-fuzz.a"
ar rcs "$out/libtributary-fuzz.a" "${objs[@]}"

status=0
for name in "${targets[@]}"; do
	src=tests/fuzz/fuzz_$name.c
	[[ -f "$src" ]] || { echo "fuzz: no $src" >&2; status=1; continue; }
	bin="$out/fuzz_$name"
	$CC $cflags $san -fsanitize=fuzzer "$src" "$out/libtributary-fuzz.a" $libs -o "$bin"
	corpus="$out/corpus/$name"
	artifacts="$out/artifacts/$name/"
	mkdir -p "$corpus" "$artifacts"
	seeds=()
	[[ -d tests/fuzz/corpus/$name ]] && seeds=("tests/fuzz/corpus/$name")
	echo "== fuzz_$name for ${seconds}s"
	if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
		"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$artifacts" "$corpus" "${seeds[@]}" 2>"$out/fuzz_$name.log"; then
		grep -E '^(stat::number_of_executed_units|stat::new_units_added|#[0-9]+.*DONE)' "$out/fuzz_$name.log" || true
	else
		echo "fuzz_$name FAILED; log: $out/fuzz_$name.log, inputs: $artifacts" >&2
		echo "  (with the fix, copy the input into tests/fuzz/corpus/$name/: make test replays it)" >&2
		tail -40 "$out/fuzz_$name.log" >&2
		status=1
	fi
done
exit $status
