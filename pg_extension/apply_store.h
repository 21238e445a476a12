// The store the core merge (core/merge.h) writes through for apply_push
// (apply.cc). Its reading side (tables, conversions, versions, scopes,
// peers) is in apply_store.cc, its writing side (rows, metadata, refusals)
// in apply_writes.cc. How it reads and writes is described in
// docs/postgres.md, "apply_push(batch)".
#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/changeset.h"
#include "core/cursor.h"
#include "core/hlc.h"
#include "core/merge.h"
#include "core/status.h"
#include "pg_extension/apply_sets.h"
#include "pg_extension/authorize.h"
#include "pg_extension/pg_headers.h"

namespace syncline::pg {

// A row's metadata as the apply read it.
struct RowMeta {
  bool in_table = false;  // syncline.rows held the row
  std::string scope;      // canonical JSON, "" for none
  std::string version;    // its (xid, seq) then, as "xid.seq"
};

// What a change becomes on this engine, beside the merge's view of it.
struct ChangeData {
  std::vector<Datum> key;  // canonical, primary key order
  std::string key_nulls;
  std::vector<Datum> row;  // table order (upserts)
  std::string row_nulls;
  std::string scope;  // canonical JSON of the scope value, "" for none
};

class PgStore : public core::MergeStore {
 public:
  PgStore(const core::Batch& batch, std::string local_node, std::string role)
      : batch_(batch), data_(batch.changes.size()), local_node_(std::move(local_node)), role_(std::move(role)) {}

  void PrepareStatements();

  // The change being worked on, for errors PostgreSQL raises (none between changes).
  std::optional<std::size_t> current() const { return current_; }
  // PostgreSQL's own error for a change it refused, if kept.
  ErrorData* KeptError(std::size_t index) const;

  core::Status Table(const std::string& name, core::MergeTable** out) override;

  // Conversions run inside one subtransaction for the whole batch: a value
  // PostgreSQL's input function refuses (raising an error) is then this
  // change's refusal, and the rest go on in a new one.
  core::Status Prepare(core::MergeChange& change) override;

  // Closes Prepare's subtransaction if the merge ended before reading
  // versions: an error raised with an internal subtransaction open would
  // leave the session in an aborted transaction block.
  void EndConversions();

  core::Status Convert(core::MergeChange& change);

  // Reads, in one statement per table, the metadata of every row the batch
  // names (and of keys sent in another form, which get tombstones).
  core::Status ReadVersions(const std::vector<core::MergeChange*>& changes) override;

  core::Status SameContent(const core::MergeChange& change, bool* same) override;

  // A row's scope never changes (it says who receives the row and its
  // tombstone), and a table's authorisation hook must allow the scope the
  // change touches.
  core::Status Admit(const core::MergeChange& change) override;

  core::Status WriteRows(const std::vector<core::MergeChange*>& run, std::size_t* written) override;
  // Writes rows[first, first + count) in order, splitting a refused set;
  // the index of the first row refused (its error in *error), or first + count.
  std::size_t WriteSplitting(SetTable& table, bool upsert, const std::vector<core::MergeChange*>& run,
                             std::vector<RowWrite>& rows, std::size_t first, std::size_t count, ErrorData** error);

  core::Status WriteVersions(const std::vector<const core::MergeChange*>& changes) override;

  core::Status ReadPeer(const core::Cursor& cursor, bool* found, std::string* position) override;
  core::Status WritePeer(const core::Cursor& cursor) override;
  void ReceiveStamp(core::Hlc hlc) override;
  core::Status ReadGcWatermark(core::Hlc* out) override;

  core::Status LogRefusal(const core::MergeChange& change, core::Refusal* refusal) override;

 private:
  static SetTable& Of(const core::MergeChange& change) { return *static_cast<SetTable*>(change.table); }

  RowMeta Meta(int32 tid, const std::string& key) const;
  core::RowVersion ResultVersion(uint64 row) const;
  static RowMeta ResultMeta(uint64 row);

  // Ok when a row's metadata is still at the version this apply read;
  // otherwise a conflict to retry.
  core::Status StillAsRead(int32 tid, const std::string& key);

  // PostgreSQL refused change `index` with `error`: a conflict the merge
  // may refuse the change for (the error is kept for the log and for
  // raising), or else an error that ends the apply (raised here).
  core::Status Refusal(std::size_t index, ErrorData* error);

  core::Status WriteChunks(const std::vector<const core::MergeChange*>& changes, SPIPlanPtr plan);
  core::Status NodeRef(const std::string& node, int64* ref);

  const core::Batch& batch_;
  std::vector<ChangeData> data_;  // per change of the batch
  std::string local_node_;
  std::string role_;  // the role applying the batch (not the extension owner)
  SPIPlanPtr log_conflict_ = nullptr;
  std::optional<std::size_t> current_;
  bool converting_ = false;  // Prepare's subtransaction is open
  Subtransaction conversions_{};
  SPIPlanPtr read_metas_ = nullptr, insert_metas_ = nullptr, update_metas_ = nullptr, node_ref_ = nullptr,
             find_node_ = nullptr;
  std::map<std::pair<int32, std::string>, RowMeta> meta_;
  std::map<std::pair<int32, std::string>, std::string> scopes_;  // admitted so far
  std::map<std::string, SetTable> tables_;
  std::unordered_map<std::string, int64> node_refs_;
  std::map<std::size_t, ErrorData*> refusals_;
  bool has_schema_log_ = false;  // extension version 0.2 or later
  Authorizer authorizer_;
};

}  // namespace syncline::pg
