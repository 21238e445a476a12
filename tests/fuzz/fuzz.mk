# Fuzzing and sanitizer builds, included by the top Makefile
# (`include tests/fuzz/fuzz.mk`); uses its BUILD, CORE_SRC, SQLITE_SRC,
# UNIT_SRC and SQLTEST_SRC. Everything is built under $(BUILD)/fuzz and
# $(BUILD)/asan.
#
#   make fuzz [FUZZ_SECONDS=60]   builds the libFuzzer targets and runs each for
#                                 FUZZ_SECONDS on a copy of tests/fuzz/corpus;
#                                 fails on a crash, a sanitizer report, a broken
#                                 property or a hang (FUZZ_TIMEOUT seconds)
#   make sanitize                 builds the unit tests, the SQLite tests and the
#                                 extension with ASan + UBSan and runs them
#
# Needs clang with libFuzzer (Debian: clang-14 libclang-rt-14-dev); `make -j2`
# builds and fuzzes in parallel. Reproduce a crash: build/fuzz/<name>_fuzz FILE.

# Whichever goal was the default before this file stays the default.
FUZZ_SAVED_DEFAULT_GOAL := $(.DEFAULT_GOAL)

FUZZ_CXX     ?= $(shell command -v clang++-14 || echo clang++)
FUZZ_SECONDS ?= 60
FUZZ_TIMEOUT ?= 10
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_NAMES   := decode apply
FUZZ_IGNORE  := tests/fuzz/ubsan_ignorelist.txt
FUZZ_FLAGS   := -std=c++17 -g -O1 -I. -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -fsanitize-ignorelist=$(FUZZ_IGNORE) -fno-omit-frame-pointer
# Sanitizer reports are failures; leaks are checked too.
FUZZ_ENV     := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

FUZZ_CORE_OBJ   := $(CORE_SRC:%.cc=$(FUZZ_DIR)/obj/%.o)
FUZZ_SQLITE_OBJ := $(SQLITE_SRC:%.cc=$(FUZZ_DIR)/obj/%.o)

.PHONY: fuzz fuzz-build fuzz-replay $(FUZZ_NAMES:%=fuzz-run-%) sanitize sanitize-build

fuzz-build: $(FUZZ_NAMES:%=$(FUZZ_DIR)/%_fuzz)

fuzz: $(FUZZ_NAMES:%=fuzz-run-%)

$(FUZZ_DIR)/obj/%.o: %.cc $(FUZZ_IGNORE)
	@mkdir -p $(dir $@)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -MMD -MP -c $< -o $@

$(FUZZ_DIR)/decode_fuzz: $(FUZZ_DIR)/obj/tests/fuzz/decode_fuzz.o $(FUZZ_CORE_OBJ)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -o $@ $^

# The extension is linked in and registered with sqlite3_auto_extension.
$(FUZZ_DIR)/apply_fuzz: $(FUZZ_DIR)/obj/tests/fuzz/apply_fuzz.o $(FUZZ_SQLITE_OBJ) $(FUZZ_CORE_OBJ)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -o $@ $^ -lsqlite3

# The committed seeds are copied, so that what the fuzzer finds stays in
# build/ (and is kept between local runs); crashes go to $(FUZZ_DIR)/artifacts.
$(FUZZ_NAMES:%=fuzz-run-%): fuzz-run-%: $(FUZZ_DIR)/%_fuzz
	@mkdir -p $(FUZZ_DIR)/corpus/$* $(FUZZ_DIR)/artifacts
	cp tests/fuzz/corpus/$*/* $(FUZZ_DIR)/corpus/$*/
	$(FUZZ_ENV) $< -max_total_time=$(FUZZ_SECONDS) -timeout=$(FUZZ_TIMEOUT) -dict=tests/fuzz/batch.dict \
	  -artifact_prefix=$(FUZZ_DIR)/artifacts/$*- -print_final_stats=1 $(FUZZ_DIR)/corpus/$*

# Replays the saved crashes (tests/fuzz/crashes/<name>-*): fails while any of
# them still fails; once fixed, move the input into the corpus.
fuzz-replay: fuzz-build
	@status=0; for name in $(FUZZ_NAMES); do \
	  for input in tests/fuzz/crashes/$$name-*; do \
	    [ -e "$$input" ] || continue; \
	    if $(FUZZ_ENV) $(FUZZ_DIR)/$${name}_fuzz "$$input" > $(FUZZ_DIR)/replay.log 2>&1; then echo "fixed:  $$input"; \
	    else echo "FAILS:  $$input"; grep -A3 '^[a-z_]*_fuzz: ' $(FUZZ_DIR)/replay.log | grep -v '^  input:'; status=1; fi; \
	  done; \
	done; exit $$status

# --- sanitize ---------------------------------------------------------------
# The test binaries are instrumented too: an ASan extension only loads into an
# ASan host. The extension links libstdc++ dynamically here (unlike the release
# build) so that it shares the host's sanitizer-aware allocator and runtime.
ASAN_CXX      ?= g++
ASAN_DIR      := $(BUILD)/asan
ASAN_OPT      := -O1
ASAN_CXXFLAGS = -std=c++17 $(ASAN_OPT) -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=all -Wall -Wextra -Werror=return-type -fPIC -fvisibility=hidden -I.
ASAN_ENV      := ASAN_OPTIONS=detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:abort_on_error=1 \
                 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1

ASAN_CORE_OBJ   := $(CORE_SRC:%.cc=$(ASAN_DIR)/%.o)
ASAN_SQLITE_OBJ := $(SQLITE_SRC:%.cc=$(ASAN_DIR)/%.o)

$(ASAN_DIR)/%.o: %.cc
	@mkdir -p $(dir $@)
	$(ASAN_CXX) $(ASAN_CXXFLAGS) -MMD -MP -c $< -o $@

# The test drivers (gtest-heavy) compile about four times faster unoptimized;
# the code under test keeps -O1.
$(ASAN_DIR)/tests/%.o: ASAN_OPT := -O0

$(ASAN_DIR)/syncline.so: $(ASAN_SQLITE_OBJ) $(ASAN_CORE_OBJ)
	$(ASAN_CXX) $(ASAN_CXXFLAGS) -shared -o $@ $^

$(ASAN_DIR)/unit_tests: $(UNIT_SRC:%.cc=$(ASAN_DIR)/%.o) $(ASAN_CORE_OBJ)
	$(ASAN_CXX) $(ASAN_CXXFLAGS) -o $@ $^ -lgtest -lgtest_main -lpthread

$(ASAN_DIR)/sqlite_tests: $(SQLTEST_SRC:%.cc=$(ASAN_DIR)/%.o) $(ASAN_CORE_OBJ)
	$(ASAN_CXX) $(ASAN_CXXFLAGS) -o $@ $^ -lsqlite3 -lgtest -lgtest_main -lpthread

sanitize-build: $(ASAN_DIR)/unit_tests $(ASAN_DIR)/sqlite_tests $(ASAN_DIR)/syncline.so

# tests/sqlite/smoke.sh is left out: its hosts (the sqlite3 shell, Python)
# are not instrumented, so they cannot load the ASan extension.
sanitize: sanitize-build
	$(ASAN_ENV) $(ASAN_DIR)/unit_tests
	SYNCLINE_EXTENSION=$(abspath $(ASAN_DIR)/syncline) $(ASAN_ENV) $(ASAN_DIR)/sqlite_tests

.DEFAULT_GOAL := $(FUZZ_SAVED_DEFAULT_GOAL)
