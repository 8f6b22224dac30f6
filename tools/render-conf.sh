#!/usr/bin/env bash
# Renders a conf/ template: every @NAME@ is replaced by the environment
# variable NAME. Unknown or unset names are an error, so a typo cannot slip
# into a running config.  usage: render-conf.sh TEMPLATE > OUT
set -euo pipefail
tpl=$1
out=$(cat "$tpl")
for name in $(grep -o '@[A-Z_][A-Z0-9_]*@' "$tpl" | sort -u | tr -d @); do
	if [[ -z "${!name+x}" ]]; then
		echo "render-conf: $tpl uses @$name@ but $name is not set" >&2
		exit 1
	fi
	out=${out//@$name@/${!name}}
done
printf '%s\n' "$out"
