#!/usr/bin/env bash
# Installs the Debian packages in deps/apt-packages.txt that are missing, and
# the npm packages of package.json when node_modules is out of date, and
# Apache Kafka's jars (tools/kafka/fetch.sh: once, then cached).
# Quiet and fast when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
while read -r pkg; do
	[[ -z "$pkg" || "$pkg" == \#* ]] && continue
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	[[ "$status" == installed ]] || missing+=("$pkg")
done < deps/apt-packages.txt

# Node.js may come from another source than Debian (as on CI images); then
# Debian's nodejs/npm must not replace it.
if command -v node >/dev/null && command -v npm >/dev/null; then
	filtered=()
	for p in "${missing[@]}"; do
		[[ "$p" == nodejs || "$p" == npm ]] || filtered+=("$p")
	done
	missing=("${filtered[@]+"${filtered[@]}"}")
fi

if ((${#missing[@]})); then
	echo "install-deps: installing Debian packages: ${missing[*]}"
	sudo=""
	[[ $(id -u) -eq 0 ]] || sudo="sudo"
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update -qq
	$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	# Debian starts the packaged services; ours run from conf/ on our own ports.
	for svc in mosquitto nginx; do
		$sudo service "$svc" stop >/dev/null 2>&1 || true
	done
fi

# A git worktree may share another checkout's packages through a symlink:
# npm ci would empty the folder it points to, which is not this tree's.
if [[ -f package-lock.json && ! -L node_modules ]]; then
	# npm ls fails when a package is missing, e.g. the dev packages after
	# web/build.sh's `npm ci --omit=dev` on a fresh clone.
	if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]] ||
		! npm ls --depth=0 >/dev/null 2>&1; then
		echo "install-deps: installing npm packages"
		npm ci --no-audit --no-fund --loglevel=error
	fi
fi

# Apache Kafka (tools/kafka/pom.xml) for tributary-kafka: a no-op once fetched.
tools/kafka/fetch.sh
