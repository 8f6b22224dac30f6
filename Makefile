# Tributary — top-level build.
#
#   make            plugin, nginx module, tools (build/)
#   make test       deps, unit + integration tests, then the same under ASan+UBSan
#   make valgrind   integration tests with the servers under Valgrind memcheck
#   make test-cluster  a 3-node Apache Kafka, its partition leader killed under load
#   make run        the whole dev stack on loopback, in the foreground
#   make clean-data wipes what `make run` keeps across runs (Apache Kafka's var/kafka,
#                   the broker's journal var/journal)
#   make bench      benchmarks, each beside its baseline
#   make fuzz       libFuzzer targets for a bounded time
#
# Sources are found by wildcard so that each area only adds files:
#   shared/**/*.c          -> build/libtributary.a (PIC, linked by plugin, module, tools)
#   mosquitto-plugin/*.c   -> build/mosquitto_tributary.so
#   nginx-module/*.c       -> build/ngx_http_tributary_module.so (nginx's own build)
#   tools/NAME/*.c         -> build/bin/tributary-NAME
#   tests/unit/test_*.c    -> build/tests/test_* (cmocka)
#   bench/NAME/*.c         -> build/bench/NAME

SAN ?=
ifeq ($(SAN),1)
BUILD ?= build/san
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD ?= build
SAN_FLAGS :=
endif

CC ?= cc
OPT ?= -O2
PKGS := jansson rdkafka libpcre2-8 libssl libcrypto libcurl avro-c
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g $(OPT) -fPIC -fvisibility=hidden \
	-Ishared/include -I$(BUILD)/gen $(PKG_CFLAGS) $(SAN_FLAGS) $(EXTRA_CFLAGS)
LDFLAGS := $(SAN_FLAGS) $(EXTRA_LDFLAGS)

SHARED_SRC := $(sort $(wildcard shared/*.c shared/*/*.c))
SHARED_GEN_SRC := $(BUILD)/gen/metaschemas.c
PLUGIN_SRC := $(sort $(wildcard mosquitto-plugin/*.c))
TOOLS := $(notdir $(patsubst %/,%,$(sort $(dir $(wildcard tools/*/*.c)))))
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
FUZZ_TARGETS := $(patsubst tests/fuzz/fuzz_%.c,%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))
BENCHES := $(notdir $(patsubst %/,%,$(sort $(dir $(wildcard bench/*/*.c)))))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIB := $(BUILD)/libtributary.a
PLUGIN := $(BUILD)/mosquitto_tributary.so
NGX_MODULE := $(BUILD)/ngx_http_tributary_module.so
TOOL_BINS := $(addprefix $(BUILD)/bin/tributary-,$(TOOLS))
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC)) \
	$(addprefix $(BUILD)/tests/replay_,$(FUZZ_TARGETS))
BENCH_BINS := $(addprefix $(BUILD)/bench/,$(BENCHES))

.PHONY: all deps test unit integration test-san test-cluster valgrind run bench fuzz clean format web
.DELETE_ON_ERROR:

all: $(PLUGIN) $(NGX_MODULE) $(TOOL_BINS) $(UNIT_BINS) web

deps:
	@tools/install-deps.sh

# A fresh machine without the Debian -dev packages: one clear message naming
# what is missing and how to get it, instead of a compiler error per file.
$(BUILD)/.pkgs-ok:
	@missing=$$(for p in $(PKGS); do pkg-config --exists $$p 2>/dev/null || echo -n " $$p"; done); \
	if [ -n "$$missing" ]; then \
		echo "missing development packages (pkg-config):$$missing; 'make deps' installs them (deps/apt-packages.txt)" >&2; \
		exit 1; \
	fi; mkdir -p $(dir $@); touch $@

$(BUILD)/obj/%.o: %.c | $(BUILD)/.pkgs-ok
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c | $(BUILD)/.pkgs-ok
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# The published JSON Schema meta-schemas ship inside the binaries so that
# $schema and $ref to them resolve offline.
$(BUILD)/gen/metaschemas.c: tools/embed-metaschemas.sh $(shell find schemas/meta -name '*.json' 2>/dev/null)
	@mkdir -p $(dir $@)
	tools/embed-metaschemas.sh schemas/meta > $@

$(LIB): $(call obj,$(SHARED_SRC)) $(BUILD)/obj/gen/metaschemas.o
	@rm -f $@
	ar rcs $@ $^

# -z nodelete: Mosquitto unloads plugins before it exits; keeping the code
# mapped lets LeakSanitizer see what librdkafka's and OpenSSL's one-time
# globals still hold (reachable, not leaked) and name the frames it reports.
$(PLUGIN): $(call obj,$(PLUGIN_SRC)) $(LIB)
	$(CC) -shared -Wl,-z,nodelete -o $@ $(call obj,$(PLUGIN_SRC)) $(LIB) $(LDFLAGS) $(PKG_LIBS)

# A tool's own libraries beyond PKGS: TOOL_LIBS_<name>.
TOOL_LIBS_registry-dev = $(shell pkg-config --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)

.SECONDEXPANSION:
$(BUILD)/bin/tributary-%: $$(call obj,$$(wildcard tools/%/*.c)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(call obj,$(wildcard tools/$*/*.c)) $(LIB) $(LDFLAGS) $(PKG_LIBS) $(TOOL_LIBS_$*)

# tributary-kafka and tributary-connect, scripts: the real Kafka broker of
# `make run` and the tests, and a standalone Kafka Connect worker
# (tools/kafka/). Their jars are fetched by tools/kafka/fetch.sh into
# build/kafka/lib on first use, shared by every build.
KAFKA_SCRIPTS := $(BUILD)/bin/tributary-kafka $(BUILD)/bin/tributary-connect
all: $(KAFKA_SCRIPTS)
$(KAFKA_SCRIPTS): $(BUILD)/bin/tributary-%: tools/kafka/tributary-%.sh
	@mkdir -p $(dir $@)
	sed 's|@ROOT@|$(CURDIR)|' $< >$@
	chmod +x $@

# Each fuzz target, linked with a plain main() that replays its corpus
# (tests/fuzz/replay.c): found crashes stay regression tests of `make unit`.
$(BUILD)/tests/replay_%: $(BUILD)/obj/tests/fuzz/fuzz_%.o $(BUILD)/obj/tests/fuzz/replay.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDFLAGS) $(PKG_LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(LIB) $(LDFLAGS) $(PKG_LIBS) -lcmocka

# Unit tests of the plugin's own logic (tests/unit/test_plugin_*.c) link the
# plugin objects that make no broker call but the log, and Mosquitto's client
# library for its topic helpers; the test defines mosquitto_log_printf.
PLUGIN_UNIT_OBJ := $(call obj,mosquitto-plugin/config.c mosquitto-plugin/ingest_route.c \
	mosquitto-plugin/ring.c)
$(BUILD)/tests/test_plugin_%: $(BUILD)/obj/tests/unit/test_plugin_%.o $(PLUGIN_UNIT_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(PLUGIN_UNIT_OBJ) $(LIB) $(LDFLAGS) $(PKG_LIBS) -lmosquitto -lcmocka

# The journal glue's test loads the whole plugin (plugin.c included) against
# librdkafka's mock cluster; it defines the broker functions the plugin calls.
PLUGIN_ALL_OBJ := $(call obj,$(PLUGIN_SRC))
$(BUILD)/tests/test_plugin_journal: $(BUILD)/obj/tests/unit/test_plugin_journal.o $(PLUGIN_ALL_OBJ) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< $(PLUGIN_ALL_OBJ) $(LIB) $(LDFLAGS) $(PKG_LIBS) -lmosquitto -lcmocka

$(BUILD)/bench/%: $$(call obj,$$(wildcard bench/%/*.c)) $(LIB)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $(call obj,$(wildcard bench/$*/*.c)) $(LIB) $(LDFLAGS) $(PKG_LIBS) -lmosquitto

# nginx builds its own modules: configure a private copy of Debian's nginx
# source (nginx-dev) with the distro's flags and --with-compat, so that
# load_module accepts the result in the packaged nginx.
NGX_SRC := /usr/share/nginx/src
NGX_DIR := $(BUILD)/nginx
NGX_MODULE_SRC := nginx-module/config $(wildcard nginx-module/*.c nginx-module/*.h)
$(NGX_MODULE): $(NGX_MODULE_SRC) $(LIB) tools/build-nginx-module.sh
	+tools/build-nginx-module.sh "$(NGX_SRC)" "$(NGX_DIR)" "$(abspath $(LIB))" \
		"$(CFLAGS) -Wno-unused-parameter -Wno-sign-compare" "$(LDFLAGS) $(PKG_LIBS)" "$@"

web:
	@if [ -f web/build.sh ]; then web/build.sh $(BUILD)/web; fi

unit: $(UNIT_BINS)
	tests/run-unit.sh $(BUILD)

integration: all
	BUILD=$(BUILD) tests/run-integration.sh

test: deps
	$(MAKE) lint
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) integration
	$(MAKE) test-san

test-san:
	$(MAKE) SAN=1 OPT=-O1 all
	$(MAKE) SAN=1 OPT=-O1 unit
	$(MAKE) SAN=1 OPT=-O1 integration

# Three Kafka nodes (3 JVMs), the leader of the written partitions killed
# while clients publish (tests/cluster/kafka-cluster.sh, about a minute):
# apart from `make test`, which has no time left for it; CI runs both.
test-cluster: all
	BUILD=$(BUILD) tests/cluster/kafka-cluster.sh || test $$? -eq 77

# The integration tests with Mosquitto, nginx (master and workers) and the
# tools they start under Valgrind's memcheck (VALGRIND=1 in
# tests/lib/stack.sh, suppressions in tests/lib/valgrind.supp): any error or
# definite leak fails the test. Every test runs, at its full load (also
# stream-scale, ingest-bulk and the Chromium one): the servers are mostly
# waiting on sockets, so memcheck slows them down far less than it does
# CPU-bound code. Only the per-test time limit is raised.
valgrind: all
	VALGRIND=1 BUILD=$(BUILD) TEST_TIMEOUT=$${TEST_TIMEOUT:-900} tests/run-integration.sh

run: deps all
	tools/run-dev.sh $(BUILD)

bench: deps all $(BENCH_BINS)
	BUILD=$(BUILD) bench/run.sh

fuzz: deps
	tools/fuzz.sh

# clang-format (.clang-format) for the project's own style; nginx-module/
# keeps nginx's style, which clang-format cannot express. `make lint` is the
# check `make test` runs first: it fails on any file `make format` would change.
FORMAT_FILES = $(shell git ls-files '*.c' '*.h' | grep -v '^nginx-module/')
.PHONY: lint
format:
	clang-format -i $(FORMAT_FILES)

lint:
	@mkdir -p $(BUILD)
	@command -v clang-format >/dev/null || { echo "lint: clang-format not found ('make deps' installs it)" >&2; exit 1; }
	@clang-format --dry-run --Werror $(FORMAT_FILES) 2>$(BUILD)/lint.log || \
		{ grep -o '^[^:]*:[0-9]*:[0-9]*' $(BUILD)/lint.log | cut -d: -f1 | sort | uniq -c | \
		  awk '{print "lint: " $$2 " is not formatted (" $$1 " places): make format"}' >&2; exit 1; }
	@echo "lint: $(words $(FORMAT_FILES)) files formatted"

clean:
	rm -rf build

# `make run`'s Kafka keeps its events across runs, as a store of record does.
.PHONY: clean-data
clean-data:
	rm -rf var/kafka var/journal

# --- Installation: make install / uninstall, Debian packages (debian/) ------
# `make install` puts the plugin, the nginx module (into nginx's modules
# directory, where Debian's nginx looks), the tools, the example
# configuration and the docs in place; debian/rules calls it with
# DESTDIR=debian/tmp PREFIX=/usr. Everything under CONFDIR is
# configuration: an existing file is never overwritten (the new one is left
# beside it as FILE.new), and uninstall leaves it. Every tools/NAME is
# installed but the development-only ones (DEV_TOOLS), so a new tool needs
# no edit here nor in debian/.
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
PLUGINDIR ?= $(PREFIX)/lib/tributary
DOCDIR ?= $(PREFIX)/share/doc/tributary
SYSCONFDIR ?= /etc
CONFDIR ?= $(SYSCONFDIR)/tributary
STATEDIR ?= /var/lib/tributary
NGINX_MODULESDIR ?= /usr/lib/nginx/modules
# devkafka: librdkafka's mock cluster; kafka-admin: the dev stack's and
# the tests' admin calls (delete-all); responder: an example service;
# registry-dev: a small Schema Registry for the tests and `make run`.
DEV_TOOLS := devkafka kafka-admin responder registry-dev
INSTALL_TOOLS := $(filter-out $(DEV_TOOLS),$(TOOLS))
# The bundled meta-schemas are compiled into the binaries: not configuration.
INSTALL_CONF := tributary.json \
	$(sort $(filter-out schemas/meta/%,$(shell find schemas -type f -name '*.json' 2>/dev/null)))
INSTALL_DOCS := README.md docs/*.md
INSTALL_EXAMPLES := conf/production/*

.PHONY: installables install uninstall test-packages packages
installables: $(PLUGIN) $(NGX_MODULE) $(addprefix $(BUILD)/bin/tributary-,$(INSTALL_TOOLS))

install: installables
	install -d $(DESTDIR)$(PLUGINDIR) $(DESTDIR)$(NGINX_MODULESDIR) $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(DOCDIR)/examples $(DESTDIR)$(CONFDIR)
	install -m 644 $(PLUGIN) $(DESTDIR)$(PLUGINDIR)/
	install -m 644 $(NGX_MODULE) $(DESTDIR)$(NGINX_MODULESDIR)/
	install -m 755 $(addprefix $(BUILD)/bin/tributary-,$(INSTALL_TOOLS)) $(DESTDIR)$(BINDIR)/
	install -m 644 $(INSTALL_DOCS) $(DESTDIR)$(DOCDIR)/
	install -m 644 nginx-module/README.md $(DESTDIR)$(DOCDIR)/nginx-module.md
	install -m 644 $(INSTALL_EXAMPLES) $(DESTDIR)$(DOCDIR)/examples/
	@set -e; for f in $(INSTALL_CONF); do \
		src=$$f; case $$f in tributary.json) src=conf/install/tributary.json ;; esac; \
		dst="$(DESTDIR)$(CONFDIR)/$$f"; \
		if [ -e "$$dst" ] && ! cmp -s "$$src" "$$dst"; then \
			install -D -m 644 "$$src" "$$dst.new"; \
			echo "install: kept $$dst (yours), the new one is $$dst.new"; \
		else \
			install -D -m 644 "$$src" "$$dst"; \
		fi; \
	done
	install -d -m 750 $(DESTDIR)$(STATEDIR)
	@if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then \
		chown mosquitto: $(STATEDIR); fi

uninstall:
	rm -f $(DESTDIR)$(PLUGINDIR)/mosquitto_tributary.so \
		$(DESTDIR)$(NGINX_MODULESDIR)/ngx_http_tributary_module.so \
		$(addprefix $(DESTDIR)$(BINDIR)/tributary-,$(INSTALL_TOOLS))
	rm -rf $(DESTDIR)$(DOCDIR)
	-rmdir $(DESTDIR)$(PLUGINDIR) 2>/dev/null
	-rmdir $(DESTDIR)$(STATEDIR) 2>/dev/null
	@echo "uninstall: $(DESTDIR)$(CONFDIR) (configuration) and the journal in $(DESTDIR)$(STATEDIR) are left in place"

# Debian packages (debian/): libnginx-mod-http-tributary, mosquitto-tributary,
# tributary-tools, built with dpkg-buildpackage from a copy of the tree in
# $(BUILD)/packages (the .debs land there), then installed with apt, run
# with Debian's own mosquitto and nginx and purged by
# tests/packages/debian-install.sh (root, skipped otherwise; it leaves the
# system as it was).
packages:
	tests/packages/build.sh $(BUILD)/packages

test-packages: installables $(BUILD)/bin/tributary-kafka $(BUILD)/bin/tributary-devkafka
	BUILD=$(BUILD) tests/packages/make-install.sh
	BUILD=$(BUILD) tests/packages/debian-install.sh || test $$? -eq 77

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
