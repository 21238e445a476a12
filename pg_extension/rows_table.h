// syncline.rows written directly through the table and index access
// methods, as logical replication's apply does: no SPI, no planner, no
// executor start per row. Capture writes every local version this way
// (docs/postgres.md, "Capture").
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>

#include "core/hlc.h"
#include "pg_extension/pg_headers.h"

namespace syncline::pg {

// The relations behind syncline.rows (resolved once per backend, again after
// a relcache reset), and one statement's open state.
struct RowsRelations;
struct RowsOpen;

// A live row's version as stored, for restamping its columns.
struct StoredStamps {
  core::Hlc hlc;
  int32 node;  // syncline.nodes.ref, 0 for this database
  std::string_view cols;
};
// The new syncline.rows.cols of a column-merge row that a local UPDATE
// changed, stamped `hlc` (core::StampChangedColumns). Called outside any
// call into PostgreSQL, between finding the row's version and writing over
// it.
using RestampColumns = std::function<void(const StoredStamps& stored, core::Hlc hlc, std::string* cols)>;

// syncline.rows, open for one statement's writes (RowExclusiveLock, held to
// the end of the transaction as any writer's).
class RowsTable {
 public:
  RowsTable();
  ~RowsTable();
  RowsTable(const RowsTable&) = delete;
  RowsTable& operator=(const RowsTable&) = delete;

  // A new local version of row `key` of table `tid`: clock + 1, a stamp
  // above both `stamp` and the row's previous one (saturating), node 0, the
  // writing transaction and the next sequence number. A tombstone keeps the
  // scope the row had. With `hold_back`, a version this transaction wrote is
  // not turned from live to deleted or back (see VersionWriter::Recheck):
  // nothing is written and the result is empty. Otherwise the stamp
  // written. `probably_new` (an inserted row) writes first and looks for an
  // older version only when the primary key says there may be one.
  // `restamp` (a column-merge row's update) sets the version's column
  // stamps when it writes over a live version with a live one; any other
  // version has every column at its stamp (cols NULL).
  std::optional<core::Hlc> Write(int32 tid, const std::string& key, core::Hlc stamp, bool deleted,
                                 const std::string& scope, bool hold_back, bool probably_new,
                                 const RestampColumns* restamp = nullptr);

 private:
  const RowsRelations* relations_ = nullptr;
  RowsOpen* open_ = nullptr;
  MemoryContext row_memory_ = nullptr;
  // Hashes of the keys written by this object: writing one again needs a
  // new command id (an update cannot see a tuple its own command inserted).
  // A collision costs only a needless one.
  std::unordered_set<std::size_t> written_;
};

// Called from the relcache callback: forget the resolved relations.
void InvalidateRowsTable(Oid relid);

}  // namespace syncline::pg
