#!/usr/bin/env bash
# Copies Apache Kafka (the broker of tools/kafka/pom.xml) and its runtime
# dependencies from Maven Central into build/kafka/lib, once: Maven keeps
# its own cache in ~/.m2, and the copy is redone only when pom.xml changes.
#   tools/kafka/fetch.sh [LIB_DIR]     (default ROOT/build/kafka/lib)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LIB=${1:-$ROOT/build/kafka/lib}
POM="$ROOT/tools/kafka/pom.xml"
stamp=$(sha256sum "$POM" | cut -d' ' -f1)
[[ -f "$LIB/.pom.sha256" && $(cat "$LIB/.pom.sha256") == "$stamp" ]] && exit 0
command -v mvn >/dev/null || { echo "fetch: mvn not found (tools/install-deps.sh installs maven)" >&2; exit 1; }
echo "fetch: Apache Kafka from Maven Central into $LIB" >&2
tmp="$LIB.tmp.$$"
rm -rf "$tmp"
mkdir -p "$(dirname "$LIB")"
if ! mvn -q -B -f "$POM" dependency:copy-dependencies -DincludeScope=runtime \
	-DoutputDirectory="$tmp" >"$tmp.log" 2>&1; then
	cat "$tmp.log" >&2
	echo "fetch: mvn failed" >&2
	exit 1
fi
rm -f "$tmp.log"
echo "$stamp" >"$tmp/.pom.sha256"
rm -rf "$LIB"
# Another fetch may have finished meanwhile: then keep that one.
mv -T "$tmp" "$LIB" 2>/dev/null || rm -rf "$tmp"
