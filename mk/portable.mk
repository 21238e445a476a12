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

