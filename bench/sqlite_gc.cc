// The SQLite half of the metadata benchmark after a delete-heavy workload
// (bench/run.sh, section gc; the PostgreSQL half is bench/gc.sh):
//
//   sqlite_bench sqlite-gc --ext PATH --dir DIR [--rows N]
//
// A tracked table of N rows, 90 % of them deleted (the metadata then holds
// nine tombstones for every live row); the bytes of the metadata's b-trees
// (every table and index of a syncline_* table) and of the table's own
// (items and its primary key index) per live row, from the dbstat virtual
// table, before and after syncline_gc collects every tombstone. Twice: in
// place (pages the deletes and the collection emptied go to the file's
// freelist, which dbstat counts against no table; partly emptied pages count
// in full), and with the file compacted by VACUUM before each measurement.
// Sizes are deterministic, so each is measured once.
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/bench_common.h"

namespace syncline_bench {

namespace {

struct Sizes {
  std::int64_t metadata_bytes, data_bytes, file_bytes, live_rows, metadata_rows, tombstones;
};

// The b-trees of the tables named by `tables` (a condition on
// sqlite_schema.tbl_name), their indexes included: automatic indexes
// (sqlite_autoindex_<table>_N) carry their table's tbl_name, so this counts
// UNIQUE and PRIMARY KEY indexes, which a condition on dbstat's name alone
// would miss. dbstat lists every page of a b-tree, overflow pages included.
std::int64_t BtreeBytes(Db& db, const std::string& tables) {
  return db.Int("SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name IN (SELECT name FROM sqlite_schema WHERE " +
                tables + ")");
}

Sizes Measure(Db& db, const std::string& path) {
  db.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
  Sizes s{};
  s.metadata_bytes = BtreeBytes(db, "tbl_name LIKE 'syncline\\_%' ESCAPE '\\'");
  s.data_bytes = BtreeBytes(db, "tbl_name = 'items'");
  s.file_bytes = FileSize(path);
  s.live_rows = db.Int("SELECT count(*) FROM items");
  s.metadata_rows = db.Int("SELECT count(*) FROM syncline_rows");
  s.tombstones = db.Int("SELECT count(*) FROM syncline_rows WHERE deleted = 1 AND tid > 0");
  return s;
}

void ReportSizes(const std::string& name, const Sizes& s, std::int64_t collected) {
  std::string detail =
      "{\"metadata_bytes\":" + std::to_string(s.metadata_bytes) + ",\"data_bytes\":" + std::to_string(s.data_bytes) +
      ",\"file_bytes\":" + std::to_string(s.file_bytes) + ",\"live_rows\":" + std::to_string(s.live_rows) +
      ",\"metadata_rows\":" + std::to_string(s.metadata_rows) + ",\"tombstones\":" + std::to_string(s.tombstones);
  if (collected >= 0) detail += ",\"collected\":" + std::to_string(collected);
  detail += "}";
  const double live = static_cast<double>(s.live_rows);
  Report(name, "bytes/row", {s.metadata_bytes / live}, {s.data_bytes / live}, {}, detail);
  Progress(name + ": metadata " + std::to_string(s.metadata_bytes) + " bytes (" + Num(s.metadata_bytes / live) +
           " a live row), table " + std::to_string(s.data_bytes) + " bytes (" + Num(s.data_bytes / live) + "), file " +
           std::to_string(s.file_bytes) + " bytes; " + std::to_string(s.live_rows) + " live rows, " +
           std::to_string(s.metadata_rows) + " metadata rows, " + std::to_string(s.tombstones) + " tombstones");
}

// One pass: build, delete 90 %, measure, collect, measure. `compact` runs
// VACUUM before each measurement.
void MetadataPass(const std::string& ext, const std::string& dir, const std::vector<Row>& rows, bool compact) {
  const std::string path = dir + "/gc.db", suffix = compact ? "_compacted" : "";
  const std::int64_t nrows = static_cast<std::int64_t>(rows.size()), live = nrows / 10, deleted = nrows - live;
  {
    Db db(path, ext, /*fresh=*/true);
    CreateItems(db, /*tracked=*/true);
    InsertRows(db, rows, rows.size());
    // n runs from 1 to N: every tenth row stays.
    db.Exec("DELETE FROM items WHERE n % 10 <> 0");
    if (compact) db.Exec("VACUUM");
    Sizes before = Measure(db, path);
    if (before.live_rows != live || before.tombstones != deleted)
      Die("sqlite-gc: " + std::to_string(before.live_rows) + " live rows and " + std::to_string(before.tombstones) +
          " tombstones after the delete, expected " + std::to_string(live) + " and " + std::to_string(deleted));
    ReportSizes("gc.sqlite_before" + suffix, before, -1);

    // Every tombstone: through the highest version there is.
    const std::int64_t through = db.Int("SELECT max(version) FROM syncline_rows");
    Stmt gc(db.Prepare("SELECT syncline_gc('{\"through\":" + std::to_string(through) + "}')"));
    db.Step(gc.s, SQLITE_ROW);
    const std::string result = reinterpret_cast<const char*>(sqlite3_column_text(gc.s, 0));
    db.Step(gc.s, SQLITE_DONE);
    const std::size_t at = result.find("\"collected\":");
    const std::int64_t collected = at == std::string::npos ? -1 : std::atoll(result.c_str() + at + 12);
    if (collected <= 0 || collected != deleted)
      Die("sqlite-gc: syncline_gc through " + std::to_string(through) + " returned " + result + ", expected " +
          std::to_string(deleted) + " collected");
    if (compact) db.Exec("VACUUM");
    Sizes after = Measure(db, path);
    if (after.live_rows != live || after.tombstones != 0)
      Die("sqlite-gc: " + std::to_string(after.tombstones) + " tombstones left after syncline_gc (" + result + ")");
    ReportSizes("gc.sqlite_after" + suffix, after, collected);
  }
  for (const char* file_suffix : {"", "-wal", "-shm"})
    unlink((path + file_suffix).c_str());
}

}  // namespace

void RunSqliteGc(const Args& args) {
  const std::string ext = args.Need("ext"), dir = args.Need("dir");
  const std::vector<Row> rows = MakeRows(args.Int("rows", 100000));
  if (rows.size() < 10) Die("sqlite-gc: --rows must be at least 10");
  MetadataPass(ext, dir, rows, /*compact=*/false);
  MetadataPass(ext, dir, rows, /*compact=*/true);
}

}  // namespace syncline_bench
