// The merge: how a batch of changes from another node is applied, written
// once for every engine (docs/protocol.md, "Applying"). An engine supplies a
// small store (MergeStore): its tables, its conversions, reading versions and
// writing rows and metadata. Everything else is decided here: mapping keys
// and rows onto a table, the drift check, the conflict rule, same-content and
// copied-database detection, the order writes are made in, rewrites, cursor
// recording, the summary, and what to do with a change that cannot be
// applied (docs/protocol.md, "Conflicts").
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/changeset.h"
#include "core/column_merge.h"
#include "core/cursor.h"
#include "core/status.h"
#include "core/value.h"
#include "core/version_order.h"

namespace syncline::core {

// A tracked table as the merge sees it. Engines derive their own table from
// it and keep what they need to write it (statements, types).
struct MergeTable {
  std::vector<std::string> columns;  // synced columns, table order
  std::vector<int> pk;               // indexes into columns, primary key order
  // The table's schema history, for changes from a node behind it
  // (docs/protocol.md, "Schema changes"): former names of its columns, newest
  // rename last (a name in `columns` always means that column), and the
  // names of dropped columns, whose values are ignored.
  std::vector<std::pair<std::string, int>> former_names;
  std::vector<std::string> dropped;
  // An upsert may lack columns (its sender has not added them yet): the
  // store keeps the row's values of those, or the defaults for a new row.
  bool partial_rows = false;
  // Column-merge tables (docs/protocol.md, "Column-level merge") merge
  // each column by its own stamp.
  MergeMode merge = MergeMode::kRow;
};

// A row's current version: stored, or written earlier in the same batch.
struct RowVersion {
  bool exists = false;
  Hlc hlc = 0;
  std::string node;  // canonical node id
  bool deleted = false;
  std::string cols;  // a column-merge row's column stamps (EncodeColumnStamps), "" when all are at its stamp
};

// One change of a batch on its way through the merge.
struct MergeChange {
  std::size_t index = 0;  // in batch.changes
  const Change* change = nullptr;
  MergeTable* table = nullptr;
  std::vector<const Value*> key;  // the key as sent, primary key order
  std::vector<const Value*> row;  // the row as sent, table order (null: a column it lacks); empty for deletes
  bool partial = false;           // the row lacks columns (MergeTable::partial_rows)
  // Set by MergeStore::Prepare: the row's metadata key, and the key as sent
  // when the engine stores the row under another one (a canonical form),
  // which then gets a tombstone so that the sender drops its copy.
  Value meta_key;
  Value sent_key;
  bool has_sent_key = false;
  RowVersion stored;  // set by MergeStore::ReadVersions
  // A row new at its origin (clock 1) that this server takes although it is
  // stamped below its garbage collection watermark: its version is stamped
  // above the watermark, so that replicas still holding an older tombstone
  // of the key take it too (docs/postgres.md, "Garbage collection").
  bool above_watermark = false;
  // Set by MergeStore::WriteRows: the engine stored other values than sent
  // (a canonical form, a trigger, a default), which become a new local
  // version (types.md, "Canonical values").
  bool rewritten = false;
  // The version the metadata records, decided by the merge.
  std::int64_t clock = 0;
  Hlc hlc = 0;
  std::string node;
  bool deleted = false;
  // The version is a server's answer to a refused change: its own state of
  // the row, stamped above the refused one, or above its own version when
  // the device forgets its copy (the row's scope stays as is).
  bool answer = false;
  // What the write does: the change's op, but on a column-merge table a
  // delete that clears only some columns is an upsert of NULLs, and `row`
  // then holds what is written (null: kept as stored; `partial`).
  Op write_op = Op::kUpsert;
  ColumnRow columns;       // a column-merge row after this change
  std::string cols;        // what WriteVersions records: EncodeColumnStamps of `columns`
  std::vector<bool> took;  // a column-merge write: the columns it took from the change (the rest cleared or kept)
  bool as_sent = false;    // a column-merge row after this change is exactly the change (every column at its stamp)
};

// A change a node refused on its own, leaving the rest of the batch to apply
// (docs/protocol.md, "Conflicts").
struct Refusal {
  std::size_t index = 0;  // in batch.changes
  Status reason;          // names the table and what was wrong
  std::string sqlstate;   // set by the store: its engine's error class
  // The device is to drop its copy of the row: the server's answer may not
  // reach it through a pull (row-level security, a scope it does not pull,
  // a key or table this server cannot name), or its copy carries a stamp
  // the server will not accept.
  bool forget = false;
  bool answered = false;  // the server wrote its own state of the row as a new version (Merger::Answer)
};

// What an engine provides. Every call may fail with a Status; a PostgreSQL
// error may also arrive as an exception, which the merge lets pass.
class MergeStore {
 public:
  virtual ~MergeStore() = default;

  // The tracked table a batch names (the same object for the same name).
  virtual Status Table(const std::string& name, MergeTable** out) = 0;
  // Converts and checks a change's values for its table (a value a column
  // cannot hold is an error) and sets its meta_key (and sent_key).
  virtual Status Prepare(MergeChange& change) = 0;
  // Sets `stored` of every change (one read per table, preferably).
  virtual Status ReadVersions(const std::vector<MergeChange*>& changes) = 0;
  // A server's garbage collection watermark: the greatest stamp of the
  // tombstones it dropped (0: none). Read after the versions, so that a
  // collection that removed a version read as missing is seen. An edit of a
  // row the server does not know, stamped at or below it, may be older than
  // a delete collected since: it is refused (kResync) rather than bring the
  // row back. A row new at its origin is taken, stamped above the
  // watermark (docs/postgres.md, "Garbage collection").
  virtual Status ReadGcWatermark(Hlc* out) {
    *out = 0;
    return Status::Ok();
  }
  // Whether the row as stored is the change (the same stamp arrived again).
  virtual Status SameContent(const MergeChange& change, bool* same) = 0;
  // Engine rules for a change that wins (PostgreSQL: scopes and the
  // authorisation hook).
  virtual Status Admit(const MergeChange& change) = 0;
  // Writes changes of one table and one op, in order. Returns Ok, or the
  // error of change run[*written], of which nothing was written; the ones
  // before it are written. kConstraint errors are retried by the merge in
  // another order; any other error ends the apply.
  virtual Status WriteRows(const std::vector<MergeChange*>& run, std::size_t* written) = 0;
  // Records the versions the merge decided (clock, hlc, node, deleted).
  virtual Status WriteVersions(const std::vector<const MergeChange*>& changes) = 0;
  // The acknowledged position of a peer's pulls; found false when none.
  virtual Status ReadPeer(const Cursor& cursor, bool* found, std::string* position) = 0;
  virtual Status WritePeer(const Cursor& cursor) = 0;
  // The local clock has seen this stamp (it stays ahead of it).
  virtual void ReceiveStamp(Hlc hlc) = 0;
  // Records a refused change in the engine's conflict log, in the apply's
  // transaction, and sets refusal->sqlstate (the engine may also replace
  // the reason with its own error's words).
  virtual Status LogRefusal(const MergeChange& change, Refusal* refusal) = 0;
};

// How a node treats a change it cannot apply.
enum class MergeRole {
  kStrict,  // rejects the whole batch, naming the change
  // The source of truth: checks every change's stamp against its own clock,
  // refuses a change on its own, logs it and answers with its own state.
  kServer,
  // Applies what its server sends: trusts its stamps (no drift check) and
  // logs and skips a version it cannot store. It never writes an answer.
  kDevice,
};

// Past this, a stamp ahead of the server's clock is not an honest clock's
// that will soon be in range: the change is refused into the log.
inline constexpr std::int64_t kDefaultRefuseDriftMs = 60 * 60 * 1000;

struct MergeOptions {
  MergeRole role = MergeRole::kStrict;
  std::string local_node;
  std::int64_t wall_ms = 0;
  std::int64_t max_drift_ms = kDefaultMaxDriftMs;
  std::int64_t refuse_drift_ms = kDefaultRefuseDriftMs;  // kServer
  std::string copied_database_docs;                      // where the engine's docs explain copied files
  bool count_rewritten = false;                          // the summary reports "rewritten" (PostgreSQL)
  // A resync starts over: the batch's cursor replaces the one recorded for
  // its source and filter even when it is behind it (after a failover a
  // new primary's positions may be below a lost timeline's).
  bool replace_cursor = false;
};

struct MergeResult {
  std::int64_t applied = 0;
  std::int64_t skipped = 0;
  std::int64_t rewritten = 0;
  std::vector<Refusal> refusals;
  // Values of dropped columns that were ignored, as "table.column", each once.
  std::vector<std::string> ignored_columns;
  std::string summary;  // apply_push's answer
  // The change whose write the engine refused when the merge failed there
  // (the engine may hold its own error for it), or SIZE_MAX.
  std::size_t failed = static_cast<std::size_t>(-1);
};

// How an incoming change compares with a row's current version.
enum class Verdict {
  kApply,           // newer: write it
  kOlder,           // skip
  kSameStamp,       // skip if the content is the same, corrupt otherwise
  kCopiedDatabase,  // newer, yet stamped with this node's own id
};
Verdict Decide(const Change& change, const RowVersion& current, const std::string& local_node);

// The least stamp above `hlc`, saturating at kHlcMax.
inline Hlc NextHlc(Hlc hlc) { return hlc < kHlcMax ? hlc + 1 : kHlcMax; }
// A row's next change count, saturating at the greatest int64.
inline std::int64_t NextClock(std::int64_t clock) {
  return clock < std::numeric_limits<std::int64_t>::max() ? clock + 1 : clock;
}

// Applies a decoded batch through a store: all of it, or an error naming the
// change at fault (the caller rolls back). The batch's cursor, if any, must
// have been issued by its source.
Status Merge(const Batch& batch, MergeStore& store, const MergeOptions& options, MergeResult* result);

// Decodes a batch's cursor and checks that its source issued it.
Status BatchCursor(const Batch& batch, Cursor* out);

// The drift bound (docs/protocol.md, "Stamps"): whether a stamp is more than
// max_drift_ms ahead of this node's wall clock (a kClockDrift error saying
// by how much).
Status CheckDrift(Hlc hlc, std::int64_t wall_ms, std::int64_t max_drift_ms);

// Whether the merge may refuse a change for this error on its own (a
// conflict), rather than reject the batch (malformed; docs/protocol.md,
// "Conflicts").
bool IsConflict(Code code);

// A change stamped with this node's own id that is newer than anything this
// node wrote to the row cannot have been made here: the database is a copy.
Status CopiedDatabase(const std::string& docs_section);

}  // namespace syncline::core
