# Builds with SQLite linked in rather than loaded: `make static` for iOS and
# Android apps (and any program that links SQLite's amalgamation), `make
# wasm` for the browser and Node (docs/sqlite.md, "Linking it in").
# Included by the Makefile.

# SQLite's amalgamation at a pinned version, checked (tools/sqlite_amalgamation.sh).
AMALGAMATION := $(BUILD)/deps/sqlite
$(AMALGAMATION)/sqlite3.c: tools/sqlite_amalgamation.sh
	tools/sqlite_amalgamation.sh $(AMALGAMATION)
	touch $@

# The extension compiled against SQLite's own API (SQLITE_CORE: no
# sqlite3_api table), with the amalgamation's header, and the core.
STATIC_OBJ := $(SQLITE_SRC:%.cc=$(BUILD)/static/%.o)
$(BUILD)/static/%.o: %.cc $(AMALGAMATION)/sqlite3.c
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS) -DSQLITE_CORE -I$(AMALGAMATION) -MMD -MP -c $< -o $@

# One archive to link beside sqlite3.c: the extension and the core.
$(BUILD)/libsyncline_static.a: $(STATIC_OBJ) $(CORE_OBJ)
	rm -f $@
	ar rcs $@ $^

static: $(BUILD)/libsyncline_static.a

# A C program with the amalgamation and the archive; it syncs two databases.
$(BUILD)/static/sqlite3.o: $(AMALGAMATION)/sqlite3.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -c $< -o $@

$(BUILD)/static/static_test: tests/static/static_test.c $(BUILD)/static/sqlite3.o $(BUILD)/libsyncline_static.a
	$(CC) -O2 -Wall -Wextra -I. -I$(AMALGAMATION) -o $@ $^ -lstdc++ -lm -lpthread -ldl

static-test: $(BUILD)/static/static_test
	$(BUILD)/static/static_test


# WebAssembly (emscripten): SQLite, the extension and the core in one module,
# web/sqlite/dist/sqlite-core.{mjs,wasm}, which web/sqlite/index.mjs wraps.
# C++ exceptions are caught (the extension's boundary catches them); 64-bit
# integers cross into JS as BigInt.
# Debian's emscripten runs its JS tools with the node on PATH, which finds
# Debian's node-acorn only through NODE_PATH when it is not Debian's own.
EMCC      ?= NODE_PATH=/usr/share/nodejs emcc
EMXX      ?= NODE_PATH=/usr/share/nodejs em++
WASM_DIR  := $(BUILD)/wasm
WASM_OUT  := web/sqlite/dist
WASM_OBJ  := $(SQLITE_SRC:%.cc=$(WASM_DIR)/%.o) $(CORE_SRC:%.cc=$(WASM_DIR)/%.o)
# The C functions index.mjs calls.
WASM_FUNCTIONS := malloc free syncline_register syncline_opfs_register sqlite3_libversion sqlite3_open_v2 \
  sqlite3_close_v2 sqlite3_errmsg sqlite3_extended_errcode sqlite3_prepare_v2 sqlite3_step sqlite3_finalize \
  sqlite3_changes sqlite3_total_changes sqlite3_get_autocommit sqlite3_bind_parameter_count sqlite3_bind_parameter_name \
  sqlite3_bind_null sqlite3_bind_int64 sqlite3_bind_double sqlite3_bind_text sqlite3_bind_blob \
  sqlite3_column_count sqlite3_column_name sqlite3_column_type sqlite3_column_int64 sqlite3_column_double \
  sqlite3_column_text sqlite3_column_blob sqlite3_column_bytes
comma := ,
WASM_EXPORTS := $(subst $() ,$(comma),$(strip $(WASM_FUNCTIONS:%=_%)))
# SQLite for one thread, no extension loading, memory temp files.
WASM_SQLITE_FLAGS := -DSQLITE_THREADSAFE=0 -DSQLITE_OMIT_LOAD_EXTENSION -DSQLITE_TEMP_STORE=3 \
  -DSQLITE_DEFAULT_MEMSTATUS=0 -DSQLITE_DQS=0

# RapidJSON is header-only: the system's copy, alone, for emscripten's sysroot.
RAPIDJSON_INCLUDE ?= /usr/include/rapidjson
$(WASM_DIR)/include/rapidjson:
	@mkdir -p $(dir $@)
	ln -sfn $(RAPIDJSON_INCLUDE) $@

$(WASM_DIR)/%.o: %.cc $(AMALGAMATION)/sqlite3.c | $(WASM_DIR)/include/rapidjson
	@mkdir -p $(dir $@)
	$(EMXX) -O2 -std=c++17 -fexceptions -I. -I$(AMALGAMATION) -I$(WASM_DIR)/include -DSQLITE_CORE -MMD -MP -c $< -o $@

$(WASM_DIR)/sqlite3.o: $(AMALGAMATION)/sqlite3.c
	@mkdir -p $(dir $@)
	$(EMCC) -O2 $(WASM_SQLITE_FLAGS) -c $< -o $@

$(WASM_DIR)/opfs_vfs.o: web/sqlite/opfs_vfs.c $(AMALGAMATION)/sqlite3.c
	@mkdir -p $(dir $@)
	$(EMCC) -O2 -I$(AMALGAMATION) -c $< -o $@

$(WASM_OUT)/sqlite-core.mjs: $(WASM_OBJ) $(WASM_DIR)/sqlite3.o $(WASM_DIR)/opfs_vfs.o mk/portable.mk
	@mkdir -p $(dir $@)
	$(EMXX) -O2 -fexceptions -o $@ $(filter %.o,$^) -sMODULARIZE=1 -sEXPORT_ES6=1 -sEXPORT_NAME=createCore \
	  -sENVIRONMENT=web,worker -sALLOW_MEMORY_GROWTH=1 -sWASM_BIGINT=1 \
	  -sEXPORTED_FUNCTIONS=$(WASM_EXPORTS) \
	  -sEXPORTED_RUNTIME_METHODS=UTF8ToString,stringToUTF8,lengthBytesUTF8,getValue

wasm: $(WASM_OUT)/sqlite-core.mjs

# The module in Node (the API, batches exchanged with the native build) and
# in headless Chromium (a worker's database in OPFS). Node 20's WebSocket
# client, which drives Chromium, is behind a flag.
wasm-test: wasm $(BUILD)/syncline.so
	SYNCLINE_EXTENSION=$(abspath $(BUILD)/syncline) node --experimental-websocket --test web/sqlite/test/*.test.mjs
