#!/usr/bin/env bash
# Builds the Debian packages (debian/) with dpkg-buildpackage -b from a copy
# of the source tree in OUT/src, so that neither the tree nor its parent
# directory (where dpkg-buildpackage writes) is touched; the .debs land in
# OUT. Then lintian checks them: any error or warning that debian/*.lintian-
# overrides does not explain fails the build.
#
# usage: tests/packages/build.sh OUT
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:?usage: build.sh OUT}
mkdir -p "$out"
out=$(cd "$out" && pwd)

rm -rf "$out/src" "$out"/*.deb "$out"/*.ddeb "$out"/*.changes "$out"/*.buildinfo
mkdir -p "$out/src"
# The working tree as it is (committed or not), without builds and npm's tree.
tar -C "$root" --exclude=./build --exclude=./node_modules --exclude=./.git \
	--exclude=./debian/build --exclude='./debian/.debhelper' -c . | tar -C "$out/src" -x

cd "$out/src"
export DEB_BUILD_OPTIONS="parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}"
dpkg-buildpackage -b -uc -us >"$out/build.log" 2>&1 ||
	{ tail -40 "$out/build.log" >&2; echo "build.sh: dpkg-buildpackage failed ($out/build.log)" >&2; exit 1; }

cd "$out"
if command -v lintian >/dev/null; then
	lintian --fail-on error,warning --display-info ./*.deb | tee "$out/lintian.log" ||
		{ echo "build.sh: lintian found errors or warnings ($out/lintian.log)" >&2; exit 1; }
else
	echo "build.sh: lintian is not installed (deps/apt-packages.txt): not checked" >&2
fi
ls "$out"/*.deb
