// Column-level merge (docs/protocol.md, "Column-level merge"): on a table
// tracked with {"merge": "column"}, every column of a row has its own stamp,
// and concurrent edits of different columns are all kept. Per column the
// greater (hlc, node) wins; a delete is a row-level version that beats every
// column stamp older than it, whose columns read NULL once the row comes
// back. The state of a row is a join (per column, the greater stamp with its
// value), so replicas that saw the same writes hold the same row whatever
// the order. Written once here; the engines store the stamps (metadata text,
// EncodeColumnStamps) and write what MergeColumns decides.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/version_order.h"

namespace syncline::core {

// How a tracked table merges concurrent versions of a row.
enum class MergeMode { kRow, kColumn };

// A row of a column-merge table as a replica holds it. A tombstone's
// columns are all at its stamp; so are the columns a delete cleared in a row
// that came back after it.
struct ColumnRow {
  bool exists = false;        // a version of the row is known here
  bool deleted = false;       // its latest version is a delete
  std::vector<Stamp> stamps;  // one per column, table order
};

// An incoming version: a delete (a row-level stamp), or an upsert with the
// stamps of the columns it carries (table order; nullopt: not carried).
struct ColumnVersion {
  bool deleted = false;
  Stamp stamp;  // a delete's stamp; an upsert's is the greatest of its columns'
  std::vector<std::optional<Stamp>> columns;
};

// What a version does to a row.
struct ColumnMerge {
  enum class Kind {
    kNothing,    // every column it carries is older than the row's (or the same write)
    kWrite,      // write the columns in `take` (the version's values) and `clear` (NULL)
    kTombstone,  // the row is deleted: every column was older than the delete
  };
  Kind kind = Kind::kNothing;
  std::vector<bool> take;   // per column
  std::vector<bool> clear;  // per column: older than a delete, or not written when the row came back
  bool revives = false;     // kWrite on a deleted (or unknown) row: the row is inserted
  ColumnRow after;
};

// The one rule. `row.stamps` and `version.columns` have one entry per column
// of the table. An upsert of a row unknown here takes what it carries and
// leaves the rest to the engine (NULL or the column's default, as for a
// partial row, docs/protocol.md "Schema changes"); one that brings a
// deleted row back sets what it does not carry to NULL at the delete's
// stamp: the row's content before the delete is gone everywhere.
ColumnMerge MergeColumns(const ColumnRow& row, const ColumnVersion& version);

// The greatest of a row's stamps: its version's stamp (the metadata's hlc
// and node).
Stamp LatestStamp(const std::vector<Stamp>& stamps);

// The per-column stamps in metadata, relative to the row's latest stamp
// (docs/protocol.md, "Column-level merge"): "" when every column is at it
// (every row of a row-merge table, a new row, a tombstone), else bytes: the
// base stamp (of the columns not named), then each other column's name and
// stamp. A stamp is the row's, the row's hlc minus d at the row's node, or
// that at another node. Columns are named, so that the bytes survive added,
// dropped and reordered columns. One edited column after an insert takes
// about 7 bytes.
std::string EncodeColumnStamps(const std::vector<std::string>& columns, const std::vector<Stamp>& stamps,
                               const Stamp& latest);
// Reads them back for the table's columns as they are now: a column they do
// not name is at the base (a column added since), a name the table no
// longer has is ignored (a dropped column).
Status DecodeColumnStamps(std::string_view bytes, const std::vector<std::string>& columns, const Stamp& latest,
                          std::vector<Stamp>* stamps);

// Capture of a local UPDATE of a live row: the columns it `changed` move to
// the row's new stamp `now`, the others keep their stamps. `cols` are the
// row's stored stamps relative to `before`, its version until now; the
// result is relative to `now`. The same in both engines' triggers.
Status StampChangedColumns(std::string_view cols, const std::vector<std::string>& columns, const Stamp& before,
                           const std::vector<bool>& changed, const Stamp& now, std::string* out);

// After a column of a column-merge table was renamed `from` -> `to`: the
// same stamps under the new name (else the column would fall back to the
// base stamp, older than its own). With no `to` (the column was dropped),
// its stamp goes, so that a column added later under its name does not
// inherit it.
Status RenameColumnStamps(std::string_view cols, std::string_view from, std::optional<std::string_view> to,
                          std::string* out);

struct Change;
// A pull of a column-merge row for a format-2 reader: the stamps of the
// columns that differ from the change's own ("columns"), or a delete's
// row-level stamp when the change's is above it ("delete_stamp").
Status AddColumnStamps(const std::vector<std::string>& columns, std::string_view cols, Change* change);

}  // namespace syncline::core

namespace syncline::core {

struct MergeTable;
struct RowVersion;
struct MergeChange;

// The merge's part for a change of a column-merge table (core/merge.cc):
// the row's state (`previous`, an earlier change of the row in the batch,
// or `stored`), the change as a ColumnVersion, and what MergeColumns
// decides: fills the change's `columns`, `took`, `write_op` and the `row`
// it writes (an earlier winner's columns included). Returns the kind.
Status PlanColumnWrite(const RowVersion& stored, const MergeChange* previous, MergeChange& change,
                       ColumnMerge::Kind* kind);
// The version the row's metadata records: the greatest stamp; or the least
// stamp above it by `local_node` when the row is not exactly what its
// sender sent, or when `serves_format1` (a server, whose format-1 readers
// see rows as one version) and the content changed beneath the row's stamp;
// and the column stamps' text relative to it.
void StampColumnWrite(const RowVersion& stored, const MergeChange* previous, bool serves_format1,
                      const std::string& local_node, MergeChange& change);
// After the merge moved a column-merge row's stamp (a rewrite): the columns
// it took are at the new stamp.
void RestampTakenColumns(MergeChange& change);

}  // namespace syncline::core
