#!/usr/bin/env bash
# Builds build/ngx_http_tributary_module.so the way Debian's module packages
# do: nginx's own configure, run on a private copy of nginx-dev's source with
# the distro's conf_flags plus --with-compat, then `make modules`.
#
# usage: build-nginx-module.sh NGX_SRC WORK_DIR LIBTRIBUTARY.a CFLAGS LIBS OUT.so
set -euo pipefail
ngx_src=$1 work=$2 lib=$3 cflags=$4 libs=$5 out=$6
root=$(cd "$(dirname "$0")/.." && pwd)

if [[ ! -f "$ngx_src/conf_flags" ]]; then
	echo "build-nginx-module: $ngx_src/conf_flags missing: install nginx-dev" >&2
	exit 1
fi
# shellcheck disable=SC1091
source "$ngx_src/conf_flags"

# Only flags nginx's build can take: relative include paths made absolute,
# symbol visibility left alone (the loader looks up ngx_modules).
ngx_cflags=""
for f in $cflags; do
	case "$f" in
	-I/*) ngx_cflags+=" $f" ;;
	-I*) ngx_cflags+=" -I$root/${f#-I}" ;;
	-std=* | -fvisibility=* | -Werror | -Wextra | -MMD | -MP) ;;
	*) ngx_cflags+=" $f" ;;
	esac
done

# nginx's configure starts from $CFLAGS: every flag comes from the arguments
# (a caller's exported CFLAGS, as dpkg-buildpackage's, would otherwise bring
# the plugin's -fvisibility=hidden, and the module would lose ngx_modules).
unset CFLAGS CPPFLAGS LDFLAGS

# Reconfigure only when the flags or the set of module files change.
stamp="$(printf '%s\n' "$ngx_cflags" "$libs" "$lib" "${NGX_CONF_FLAGS[*]}" "$(ls "$root/nginx-module")" | md5sum | cut -d' ' -f1)"
if [[ ! -f "$work/.configured" || "$(cat "$work/.configured")" != "$stamp" ]]; then
	rm -rf "$work"
	mkdir -p "$work"
	cp -a "$ngx_src/." "$work/"
	(
		cd "$work"
		TRIBUTARY_LIB="$lib" TRIBUTARY_LIBS="$libs" ./configure "${NGX_CONF_FLAGS[@]}" \
			--add-dynamic-module="$root/nginx-module" \
			--with-cc-opt="$ngx_cflags" >configure.log 2>&1 ||
			{ tail -30 configure.log >&2; exit 1; }
	)
	echo "$stamp" >"$work/.configured"
fi
# libtributary.a is outside nginx's dependency graph: always relink.
rm -f "$work/objs/ngx_http_tributary_module.so"
make -s -C "$work" -f objs/Makefile modules
cp "$work/objs/ngx_http_tributary_module.so" "$out"
