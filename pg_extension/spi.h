// SPI, guarded: each call that may raise a PostgreSQL error goes through
// PgGuard, so a failure arrives as a PgError exception.
#pragma once

#include <string>
#include <vector>

#include "pg_extension/pg_boundary.h"
#include "pg_extension/pg_headers.h"

namespace syncline::pg {

// SPI_connect for the life of the object.
class SpiSession {
 public:
  SpiSession() {
    PgGuard([] { SPI_connect(); });
  }
  // Runs while a PgError unwinds, so it must not longjmp. SPI_finish raises
  // no error of its own, but it deletes SPI's memory contexts, which runs
  // the reset callbacks that code under the session registered on them.
  ~SpiSession() {
    PgGuardInDestructor([] { SPI_finish(); });
  }
  SpiSession(const SpiSession&) = delete;
  SpiSession& operator=(const SpiSession&) = delete;
};

// What type input and output functions allocate for one row (capture: its
// key and scope; pull: its values), freed before the next row: a statement
// of millions of rows, or a page of large ones, stays flat.
class RowMemory {
 public:
  RowMemory() {
    PgGuard([&] { context_ = AllocSetContextCreate(CurrentMemoryContext, "syncline row", ALLOCSET_SMALL_SIZES); });
  }

  // The row context, emptied, is current for the life of a Scope.
  class Scope {
   public:
    explicit Scope(MemoryContext context) {
      MemoryContextReset(context);
      saved_ = MemoryContextSwitchTo(context);
    }
    ~Scope() { MemoryContextSwitchTo(saved_); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    MemoryContext saved_;
  };
  Scope Use() { return Scope(context_); }

 private:
  MemoryContext context_ = nullptr;  // a child of the SPI session's context
};

// Runs PostgreSQL code as the extension's owner (its current one: see
// InvalidateExtensionOwner), so that the metadata, which no one else may
// write, is written in the name of the extension. Restored on scope exit; on
// a PostgreSQL error transaction abort restores it as well.
class AsExtensionOwner {
 public:
  AsExtensionOwner();
  // Unguarded, though it runs while a PgError unwinds: it only calls
  // SetUserIdAndSecContext, which assigns two globals (miscinit.c) and cannot
  // raise. (A guard would cost a sigsetjmp per backfilled row.)
  ~AsExtensionOwner();

 private:
  Oid saved_user_;
  int saved_context_;
};

// search_path pinned to pg_catalog, pg_temp for the life of the object,
// around SQL run from a function declared without a SET clause: the capture
// trigger, for which a SET clause would cost a GUC save and restore on every
// statement while it runs SQL only to fill its caches.
class PinnedSearchPath {
 public:
  PinnedSearchPath();
  ~PinnedSearchPath();
  PinnedSearchPath(const PinnedSearchPath&) = delete;
  PinnedSearchPath& operator=(const PinnedSearchPath&) = delete;

 private:
  int nest_level_ = 0;
};

// The syscache callback (on EXTENSIONOID) that makes AsExtensionOwner look
// the owner up again; registered by _PG_init.
void InvalidateExtensionOwner(Datum arg, int cache_id, uint32 hash);

SPIPlanPtr Prepare(const std::string& sql, const std::vector<Oid>& types, bool keep = false);

// Returns SPI_processed. `nulls` holds ' ' or 'n' per argument.
uint64 Execute(SPIPlanPtr plan, Datum* values, const char* nulls, bool read_only, long limit = 0,
               Snapshot snapshot = InvalidSnapshot);
uint64 ExecuteSql(const std::string& sql, bool read_only);

// Reads a result column of row `row` of SPI_tuptable.
Datum ResultDatum(uint64 row, int column, bool* isnull);
int64 ResultInt64(uint64 row, int column);
std::string ResultText(uint64 row, int column);   // NULL reads as ""
std::string ResultBytes(uint64 row, int column);  // bytea; NULL reads as ""

// Text and jsonb in and out of Datums (palloc'd in the current context).
Datum TextDatum(const std::string& text);
Datum ByteaDatum(const std::string& bytes);
std::string JsonbText(Datum jsonb);
Datum JsonbFromText(const std::string& text);

}  // namespace syncline::pg
