# syncline: `make` builds the core and the SQLite extension; `make check` runs
# every test. Build output goes to build/ (never committed).
CXX      ?= g++
CXXFLAGS ?= -O2 -g
CXXFLAGS += -std=c++17 -Wall -Wextra -Werror=return-type -fPIC -fvisibility=hidden -I.
BUILD    := build

CORE_SRC   := $(wildcard core/*.cc)
CORE_OBJ   := $(CORE_SRC:%.cc=$(BUILD)/%.o)
SQLITE_SRC := $(wildcard sqlite_extension/*.cc)
SQLITE_OBJ := $(SQLITE_SRC:%.cc=$(BUILD)/%.o)

.PHONY: all bench static static-test wasm wasm-test web-test web-demo check check-long format-check demo unit-test sqlite-test smoke-test pg pg-install pg-test clean format

all: $(BUILD)/syncline.so $(BUILD)/bin/syncline pg

# Installing into PostgreSQL's directories needs root; elsewhere sudo.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

pg:
	$(MAKE) -C pg_extension

pg-install: pg
	$(SUDO) $(MAKE) -C pg_extension install

$(BUILD)/%.o: %.cc
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libsyncline_core.a: $(CORE_OBJ)
	ar rcs $@ $^

# The loadable extension links the core statically: it must load into any
# program without extra shared libraries beside libsqlite3's host.
$(BUILD)/syncline.so: $(SQLITE_OBJ) $(BUILD)/libsyncline_core.a
	$(CXX) -shared -o $@.tmp $(SQLITE_OBJ) $(BUILD)/libsyncline_core.a -static-libstdc++ -static-libgcc
	mv $@.tmp $@  # a new file: processes that have the old one loaded keep it intact

# The client library and the `syncline` CLI (libpq + SQLite).
CLIENT_SRC := $(filter-out client/cli.cc,$(wildcard client/*.cc))
CLIENT_OBJ := $(CLIENT_SRC:%.cc=$(BUILD)/%.o)
PG_INCLUDE := -I$(shell pg_config --includedir)
$(BUILD)/client/%.o: CXXFLAGS += $(PG_INCLUDE)

$(BUILD)/libsyncline_client.a: $(CLIENT_OBJ)
	ar rcs $@ $^

$(BUILD)/bin/syncline: $(BUILD)/client/cli.o $(BUILD)/libsyncline_client.a $(BUILD)/libsyncline_core.a
	@mkdir -p $(dir $@)
	$(CXX) -o $@ $^ -lpq -lsqlite3

UNIT_SRC   := $(wildcard tests/unit/*.cc)
PGTEST_SRC := $(wildcard tests/pg/*.cc)
E2E_SRC    := $(wildcard tests/e2e/*.cc)
SIM_SRC    := $(wildcard tests/sim/*.cc)
SQLTEST_SRC := $(wildcard tests/sqlite/*.cc)

$(BUILD)/unit_tests: $(UNIT_SRC:%.cc=$(BUILD)/%.o) $(BUILD)/libsyncline_core.a
	$(CXX) -o $@ $^ -lgtest -lgtest_main -lpthread

$(BUILD)/sqlite_tests: $(SQLTEST_SRC:%.cc=$(BUILD)/%.o) $(BUILD)/libsyncline_core.a
	$(CXX) -o $@ $^ -lsqlite3 -lgtest -lgtest_main -lpthread

$(BUILD)/pg_tests: $(PGTEST_SRC:%.cc=$(BUILD)/%.o) $(BUILD)/libsyncline_core.a
	$(CXX) -o $@ $^ -lpq -lsqlite3 -lgtest -lgtest_main -lpthread

$(BUILD)/tests/pg/%.o $(BUILD)/tests/e2e/%.o $(BUILD)/tests/sim/%.o: CXXFLAGS += $(PG_INCLUDE)

# End-to-end (the CLI against a real server) and the randomized simulator.
$(BUILD)/e2e_tests: $(E2E_SRC:%.cc=$(BUILD)/%.o) $(BUILD)/libsyncline_core.a
	$(CXX) -o $@ $^ -lpq -lsqlite3 -lgtest -lgtest_main -lpthread

# The constraints simulation syncs its devices through the client library.
$(BUILD)/sim_tests: $(SIM_SRC:%.cc=$(BUILD)/%.o) $(BUILD)/libsyncline_client.a $(BUILD)/libsyncline_core.a
	$(CXX) -o $@ $^ -lpq -lsqlite3 -lgtest -lgtest_main -lpthread

unit-test: $(BUILD)/unit_tests
	$(BUILD)/unit_tests

sqlite-test: $(BUILD)/sqlite_tests $(BUILD)/syncline.so
	SYNCLINE_EXTENSION=$(abspath $(BUILD)/syncline) $(BUILD)/sqlite_tests

smoke-test: $(BUILD)/syncline.so
	tests/sqlite/smoke.sh $(abspath $(BUILD)/syncline)

# A throwaway cluster (tests/pg/with_cluster.sh) runs the pgTAP files and the
# libpq suites (concurrency, cross-engine); then a throwaway primary and hot
# standby (tests/pg/with_standby.sh) run the standby pulls and the CLI with a
# read server (about 40 s).
# glibc scribbles over the memory it frees (MALLOC_PERTURB_), so that a read
# after free shows.
pg-test: pg-install $(if $(PGTEST_SRC),$(BUILD)/pg_tests) $(if $(E2E_SRC),$(BUILD)/e2e_tests) \
         $(if $(SIM_SRC),$(BUILD)/sim_tests) $(BUILD)/syncline.so $(BUILD)/bin/syncline
	SYNCLINE_EXTENSION=$(abspath $(BUILD)/syncline) SYNCLINE_CLI=$(abspath $(BUILD)/bin/syncline) MALLOC_PERTURB_=165 \
	  tests/pg/with_cluster.sh tests/pg/run.sh
	tests/pg/with_standby.sh tests/pg/standby.sh
	SYNCLINE_EXTENSION=$(abspath $(BUILD)/syncline) SYNCLINE_CLI=$(abspath $(BUILD)/bin/syncline) \
	  tests/pg/with_standby.sh tests/pg/standby_client.sh

# The HTTP handler (web/server, docs/http.md) and the JS client with it, then
# the notes demo in two headless Chromium devices: Node's test runner
# against a throwaway cluster.
web-test: pg-install $(BUILD)/syncline.so wasm
	tests/pg/with_cluster.sh web/server/test.sh
	tests/pg/with_cluster.sh node --experimental-websocket --test web/demo/test/demo.test.mjs

# The notes demo in the browser (docs/web.md, "The demo"): a throwaway
# cluster and the demo server on http://127.0.0.1:8080/ until Ctrl-C; open
# it in two browser profiles.
web-demo: pg-install wasm
	cd web/server && npm ci --no-audit --no-fund --loglevel=error
	tests/pg/with_cluster.sh node web/demo/server.mjs 8080

# Benchmarks (bench/run.sh): results in bench/results.json and docs/benchmarks.md.
bench: all pg-install wasm
	tests/pg/with_cluster.sh bench/run.sh

# The long variants: more simulated scenarios, the 30 s concurrency run.
check-long:
	SYNCLINE_LONG=1 SYNCLINE_SIM_SCENARIOS=$${SYNCLINE_SIM_SCENARIOS:-2000} $(MAKE) check

# The quick start's demo is a test too: it fails when the replicas do not
# converge or an edit is lost.
check: unit-test sqlite-test smoke-test static-test wasm-test pg-test demo web-test sanitize fuzz

demo: all pg-install
	client/demo.sh

FORMATTED := $(filter-out bench/json_choice/%,$(shell git ls-files '*.cc' '*.h' 2>/dev/null))

format:
	clang-format -i $(FORMATTED)

format-check:
	clang-format --dry-run --Werror $(FORMATTED)

clean:
	rm -rf $(BUILD)
	$(MAKE) -C pg_extension clean

# libFuzzer targets and sanitizer builds: make fuzz, make sanitize.
include tests/fuzz/fuzz.mk
# SQLite linked in: make static, make wasm.
include mk/portable.mk

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
