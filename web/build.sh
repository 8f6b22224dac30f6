#!/usr/bin/env bash
# Builds the demo web app into OUTDIR (make: $(BUILD)/web): our files plus
# mqtt.js's browser bundle from node_modules, and a .gz beside each text file
# for nginx's gzip_static. No bundler: the page loads plain scripts.
#   usage: web/build.sh OUTDIR
set -euo pipefail
src=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$src/.." && pwd)
out=${1:?usage: web/build.sh OUTDIR}
bundle="$root/node_modules/mqtt/dist/mqtt.min.js"

# A fresh clone has no node_modules yet: fetch the project's npm packages
# (project-local, as `make deps` does) rather than stop the whole build.
# Without npm the rest of the build still goes on, with a warning. Only
# the runtime packages (--omit=dev): the registry referee the tests use
# pulls in ~160 MB of cloud SDKs, which `make deps` installs for `make test`.
if [[ ! -f "$bundle" ]]; then
	if command -v npm >/dev/null; then
		echo "web/build.sh: installing the project's npm packages (npm ci)" >&2
		(cd "$root" && npm ci --omit=dev --no-audit --no-fund --loglevel=error)
	else
		echo "web/build.sh: warning: npm not found, demo web app not built ('make deps' installs it)" >&2
		exit 0
	fi
fi

mkdir -p "$out"
for f in index.html app.js style.css; do
	install -m 0644 "$src/$f" "$out/$f"
done
install -m 0644 "$bundle" "$out/mqtt.min.js"
for f in index.html app.js style.css mqtt.min.js; do
	gzip -9 -n -c "$out/$f" >"$out/$f.gz"
	touch -r "$out/$f" "$out/$f.gz"
done
