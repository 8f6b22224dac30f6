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
rm -rf "$LIB.tmp"
mkdir -p "$(dirname "$LIB")"
if ! mvn -q -B -f "$POM" dependency:copy-dependencies -DincludeScope=runtime \
	-DoutputDirectory="$LIB.tmp" >"$LIB.mvn.log" 2>&1; then
	cat "$LIB.mvn.log" >&2
	echo "fetch: mvn failed" >&2
	exit 1
fi
rm -f "$LIB.mvn.log"
echo "$stamp" >"$LIB.tmp/.pom.sha256"
rm -rf "$LIB"
mv "$LIB.tmp" "$LIB"
