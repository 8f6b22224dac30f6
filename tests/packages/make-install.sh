#!/usr/bin/env bash
# `make install` and `make uninstall` into a DESTDIR (no root needed): the
# layout (plugin, nginx module in nginx's modules directory, tools but the
# development-only ones, configuration, docs), an admin's configuration
# kept on a second install (the new file beside it as .new), and uninstall
# removing the program files but never the configuration.
source "$(dirname "$0")/../lib/stack.sh"
stack_init
d="$T/root"
inst() { make -s -C "$ROOT" BUILD="$BUILD" DESTDIR="$d" "$@" >>"$T/make.log" 2>&1 || { cat "$T/make.log" >&2; fail "make $*"; }; }

inst install
for f in usr/local/lib/tributary/mosquitto_tributary.so usr/lib/nginx/modules/ngx_http_tributary_module.so \
	usr/local/bin/tributary-validate usr/local/bin/tributary-jwt usr/local/bin/tributary-journal-tool \
	usr/local/bin/tributary-registry \
	etc/tributary/tributary.json etc/tributary/schemas/catalog.json \
	etc/tributary/schemas/events/example.order.placed.json usr/local/share/doc/tributary/README.md \
	usr/local/share/doc/tributary/examples/nginx.conf; do
	[[ -f "$d/$f" ]] || fail "make install: no /$f"
done
[[ -x "$d/usr/local/bin/tributary-jwt" ]] || fail "tools are not executable"
for f in usr/local/bin/tributary-devkafka usr/local/bin/tributary-responder usr/local/bin/tributary-registry-dev \
	etc/tributary/schemas/meta; do
	[[ ! -e "$d/$f" ]] || fail "make install: /$f is development-only or built in"
done
cmp -s "$d/etc/tributary/tributary.json" "$ROOT/conf/install/tributary.json" || fail "tributary.json is not conf/install's"
# The installed example names its catalog relative to itself: it resolves.
grep -q '"catalog": "schemas/catalog.json"' "$d/etc/tributary/tributary.json" || fail "catalog path"
pass "make install: plugin, nginx module, tools, /etc/tributary, docs"

echo '{"mine": true}' >"$d/etc/tributary/tributary.json"
echo '{"types": {}}' >"$d/etc/tributary/schemas/catalog.json"
inst install
grep -q mine "$d/etc/tributary/tributary.json" || fail "a second make install overwrote tributary.json"
grep -q '"types": {}' "$d/etc/tributary/schemas/catalog.json" || fail "a second make install overwrote catalog.json"
cmp -s "$d/etc/tributary/tributary.json.new" "$ROOT/conf/install/tributary.json" || fail "no tributary.json.new"
grep -q "kept $d/etc/tributary/tributary.json" "$T/make.log" || fail "make install did not say it kept the config"
[[ ! -e "$d/etc/tributary/schemas/events/example.order.placed.json.new" ]] || fail ".new for an unchanged file"
pass "make install again: the admin's configuration kept, the new one as .new"

inst uninstall
left=$(cd "$d" && find . -type f ! -path './etc/tributary/*' | sort | xargs)
[[ -z "$left" ]] || fail "make uninstall left $left"
[[ -f "$d/etc/tributary/tributary.json" ]] || fail "make uninstall removed the configuration"
pass "make uninstall: program files gone, /etc/tributary kept"
