// `sqlite_bench sqlite-column`: what column-level merge costs in SQLite
// (docs/column-merge.md). The same tracked table in row mode and in column
// mode (syncline_track's "merge" option), interleaved: the time of an
// UPDATE of one column of every row, and the metadata per row after it
// (dbstat, the file compacted by VACUUM, so that both are measured alike).
//
//   sqlite_bench sqlite-column --ext PATH --dir DIR [--rows N] [--runs R]
#include <string>
#include <vector>

#include "bench/bench_common.h"

namespace syncline_bench {

void RunSqliteColumn(const Args& args) {
  const std::string ext = args.Need("ext"), dir = args.Need("dir");
  const int runs = args.Int("runs", 5);
  const std::vector<Row> rows = MakeRows(args.Int("rows", 100000));
  const char* const kModes[] = {"row", "column"};
  std::vector<double> update[2], bytes[2];
  for (int run = 0; run < runs; ++run) {
    for (int k = 0; k < 2; ++k) {
      const int mode = (k + run) % 2;
      const std::string path = dir + "/merge_" + kModes[mode] + ".db";
      Db db(path, ext, /*fresh=*/true);
      db.Exec(kSqliteTable);
      db.Exec(std::string("SELECT syncline_track('items', '{\"merge\": \"") + kModes[mode] + "\"}')");
      InsertRows(db, rows, rows.size());
      db.Exec("PRAGMA wal_checkpoint(TRUNCATE)");
      const auto start = Clock::now();
      db.Exec("UPDATE items SET n = n + 1");
      update[mode].push_back(Seconds(start) * 1000);
      if (mode == 1 && db.Int("SELECT count(*) FROM syncline_rows WHERE hex(cols) LIKE '%016E00'") !=
                           static_cast<std::int64_t>(rows.size()))
        Die("sqlite-column: the update did not stamp column n alone");
      db.Exec("VACUUM");
      bytes[mode].push_back(
          static_cast<double>(db.Int("SELECT sum(pgsize) FROM dbstat WHERE name IN (SELECT name FROM sqlite_schema "
                                     "WHERE tbl_name = 'syncline_rows')")) /
          static_cast<double>(rows.size()));
    }
    Progress("sqlite column merge run " + std::to_string(run + 1) + ": update " + Num(update[1].back()) + " / " +
             Num(update[0].back()) + " ms, metadata " + Num(bytes[1].back()) + " / " + Num(bytes[0].back()) +
             " bytes a row (column / row)");
  }
  Report("sqlite.column_merge_update", "ms", update[1], update[0]);
  Report("sqlite.column_merge_metadata", "bytes/row", bytes[1], bytes[0]);
}

}  // namespace syncline_bench
