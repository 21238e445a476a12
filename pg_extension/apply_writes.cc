// PgStore's writing side (apply_store.h): the winning rows into the user's
// tables, in sets split down to the change at fault when PostgreSQL refuses
// one, the versions the merge decided into syncline.rows, and refused changes
// into the conflict log. Reading is in apply_store.cc.
#include "pg_extension/apply_store.h"

#include <algorithm>
#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "core/changeset.h"
#include "core/merge.h"
#include "core/status.h"
#include "core/value.h"
#include "pg_extension/apply_sets.h"
#include "pg_extension/conflicts.h"
#include "pg_extension/pg_boundary.h"
#include "pg_extension/spi.h"
#include "pg_extension/types.h"

namespace syncline::pg {

using core::Code;
using core::Status;
using core::Value;

namespace {

constexpr std::size_t kWriteChunk = 1000;

}  // namespace

Status PgStore::WriteRows(const std::vector<core::MergeChange*>& run, std::size_t* written) {
  SetTable& table = Of(*run[0]);
  const bool upsert = run[0]->write_op == core::Op::kUpsert;
  const bool column_merge = table.merge == core::MergeMode::kColumn;
  std::vector<RowWrite> rows;
  rows.reserve(run.size());
  for (const core::MergeChange* change : run) {
    ChangeData& data = data_[change->index];
    // A column-merge write is what the merge decided (core::PlanColumnWrite):
    // some of the change's columns, NULLs, an earlier change's columns.
    if (upsert && column_merge) {
      // (a delete that clears some columns is an upsert of NULLs)
      data.row.resize(table.info.columns.size(), (Datum)0);
      data.row_nulls.resize(table.info.columns.size(), 'n');
      for (std::size_t c = 0; c < table.info.columns.size(); ++c) {
        bool isnull = change->row[c] == nullptr;
        if (!isnull) {
          Status status = ValueToDatum(table.info.columns[c], *change->row[c], &data.row[c], &isnull);
          if (!status.ok()) return status;
        }
        data.row_nulls[c] = isnull ? 'n' : ' ';
      }
    }
    rows.push_back(upsert ? RowWrite{&change->meta_key.bytes, data.row.data(), data.row_nulls.data(),
                                     change->row.data(), false, change->partial, column_merge}
                          : RowWrite{&change->meta_key.bytes, data.key.data(), data.key_nulls.data(), nullptr, false,
                                     false, false});
  }
  // The whole run in one statement; when PostgreSQL refuses it, halves of
  // it, down to the change at fault (a few subtransactions per refusal, not
  // one per change: more than 64 in a transaction slow every backend's
  // snapshots).
  ErrorData* error = nullptr;
  *written = WriteSplitting(table, upsert, run, rows, 0, run.size(), &error);
  for (std::size_t i = 0; i < *written; ++i)
    run[i]->rewritten = rows[i].rewritten;
  if (*written == run.size()) return Status::Ok();
  // A refusal of this change (the merge retries a constraint after the
  // others), or an error that ends the apply.
  return Refusal(run[*written]->index, error);
}

std::size_t PgStore::WriteSplitting(SetTable& table, bool upsert, const std::vector<core::MergeChange*>& run,
                                    std::vector<RowWrite>& rows, std::size_t first, std::size_t count,
                                    ErrorData** error) {
  current_ = run[first]->index;
  if (WriteSet(table, upsert, rows, first, count, error)) return first + count;
  if (count == 1) return first;
  const std::size_t half = count / 2;
  std::size_t refused = WriteSplitting(table, upsert, run, rows, first, half, error);
  if (refused < first + half) return refused;
  return WriteSplitting(table, upsert, run, rows, first + half, count - half, error);
}

Status PgStore::Refusal(std::size_t index, ErrorData* error) {
  const int code = error->sqlerrcode;
  const std::string message = error->message != nullptr ? error->message : "refused";
  Code kind = Code::kOk;
  if (ERRCODE_TO_CATEGORY(code) == ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION || code == ERRCODE_RAISE_EXCEPTION)
    kind = Code::kConstraint;  // a user's trigger refusing the row, too
  else if (ERRCODE_TO_CATEGORY(code) == ERRCODE_DATA_EXCEPTION || code == ERRCODE_DATATYPE_MISMATCH)
    kind = Code::kTypeMismatch;
  else if (code == ERRCODE_INSUFFICIENT_PRIVILEGE || code == ERRCODE_WITH_CHECK_OPTION_VIOLATION)
    kind = Code::kPermissionDenied;
  if (kind == Code::kOk) throw PgError{error};
  refusals_[index] = error;
  return Status(kind, message);
}

Status PgStore::WriteVersions(const std::vector<const core::MergeChange*>& changes) {
  current_.reset();
  // A row written twice (a tombstone for a key as sent that another change
  // also wrote) keeps its last write.
  std::map<std::pair<int32, std::string>, const core::MergeChange*> last;
  for (const core::MergeChange* change : changes)
    last[{Of(*change).info.tid, change->meta_key.bytes}] = change;
  for (bool in_table : {true, false}) {
    std::vector<const core::MergeChange*> writes;
    for (const core::MergeChange* change : changes) {
      const std::pair<int32, std::string> id{Of(*change).info.tid, change->meta_key.bytes};
      if (last[id] == change && Meta(id.first, id.second).in_table == in_table) writes.push_back(change);
    }
    Status status = WriteChunks(writes, in_table ? update_metas_ : insert_metas_);
    if (!status.ok()) return status;
  }
  std::set<std::string> notifications;
  for (const core::MergeChange* change : changes) {
    const TableInfo& info = Of(*change).info;
    if (!info.notify) continue;
    std::string payload = Of(*change).notify_payload;
    const std::string& scope = scopes_[{info.tid, change->meta_key.bytes}];
    if (!scope.empty()) payload = payload.substr(0, payload.size() - 1) + ",\"scope\":" + scope + "}";
    notifications.insert(std::move(payload));
  }
  for (const std::string& payload : notifications) {
    const char* text = payload.c_str();
    PgGuard([&] { Async_Notify("syncline", text); });
  }
  return Status::Ok();
}

Status PgStore::WriteChunks(const std::vector<const core::MergeChange*>& changes, SPIPlanPtr plan) {
  for (std::size_t start = 0; start < changes.size(); start += kWriteChunk) {
    const std::size_t count = std::min(kWriteChunk, changes.size() - start);
    std::vector<std::string> keys, scopes, versions, cols;
    std::vector<Datum> tids, clocks, hlcs, nodes, deleted;
    for (std::size_t i = start; i < start + count; ++i) {
      const core::MergeChange& change = *changes[i];
      const int32 tid = Of(change).info.tid;
      int64 node_ref = 0;
      Status status = NodeRef(change.node, &node_ref);
      if (!status.ok()) return status;
      versions.push_back(Meta(tid, change.meta_key.bytes).version);
      tids.push_back(Int32GetDatum(tid));
      keys.push_back(change.meta_key.bytes);
      clocks.push_back(Int64GetDatum(change.clock));
      hlcs.push_back(Int64GetDatum(static_cast<int64>(change.hlc)));
      nodes.push_back(Int32GetDatum(static_cast<int32>(node_ref)));
      deleted.push_back(BoolGetDatum(change.deleted));
      cols.push_back(change.cols);
      // A tombstone keeps the scope its row had (an empty one keeps the
      // stored one), and so does an answer to a refused change; an answer
      // for a row the server never had carries the refused row's scope, so
      // that the device's scoped pull receives it.
      const bool keep_scope = change.change->op == core::Op::kDelete || (change.answer && plan == update_metas_);
      scopes.push_back(keep_scope ? std::string() : data_[change.index].scope);
    }
    AsExtensionOwner owner;
    Datum args[9] = {ScalarArray(tids, INT4OID),
                     TextArray(keys),
                     ScalarArray(clocks, INT8OID),
                     ScalarArray(hlcs, INT8OID),
                     ScalarArray(nodes, INT4OID),
                     ScalarArray(deleted, BOOLOID),
                     TextArray(scopes, /*empty_is_null=*/true),
                     TextArray(versions, /*empty_is_null=*/true),
                     ByteaArray(cols)};
    uint64 written = 0;
    ErrorData* clash = nullptr;
    try {
      written = Execute(plan, args, "         ", false);
    } catch (PgError& error) {
      clash = error.data;
    }
    if (clash != nullptr) {
      // The transaction is lost either way; a concurrent first write of one
      // of these rows is worth retrying, so it is reported as such.
      if (plan != insert_metas_ || clash->sqlerrcode != ERRCODE_UNIQUE_VIOLATION) throw PgError{clash};
      return Status(Code::kConflict, std::string("a row without metadata when this apply read it got some in a "
                                                 "concurrent transaction (") +
                                         (clash->detail != nullptr ? clash->detail : "") + "); apply the batch again");
    }
    if (plan == update_metas_ && written < count) {
      std::set<std::string> done;
      for (uint64 r = 0; r < written; ++r)
        done.insert(ResultText(r, 1));
      std::string key;
      for (const std::string& k : keys)
        if (done.count(k) == 0 && key.empty()) key = k;
      return Status(Code::kConflict, "row " + key +
                                         " changed in a concurrent transaction after this apply read it; apply the "
                                         "batch again");
    }
  }
  return Status::Ok();
}

Status PgStore::NodeRef(const std::string& node, int64* ref) {
  if (node == local_node_) {
    *ref = 0;
    return Status::Ok();
  }
  auto it = node_refs_.find(node);
  if (it != node_refs_.end()) {
    *ref = it->second;
    return Status::Ok();
  }
  Datum args[1] = {TextDatum(node)};
  AsExtensionOwner owner;
  // A session that registered the node concurrently and committed while
  // this insert waited is only visible to a new snapshot (read committed);
  // under a transaction snapshot it stays invisible: a conflict to retry.
  if (Execute(node_ref_, args, " ", false) == 0 && Execute(find_node_, args, " ", false) == 0)
    return Status(Code::kConflict,
                  "node " + node + " was registered by a concurrent transaction; apply the batch again");
  *ref = ResultInt64(0, 1);
  node_refs_[node] = *ref;
  return Status::Ok();
}

// The refused change as sent, with PostgreSQL's own words for the reason
// when it raised the error, into syncline.conflicts (docs/protocol.md,
// "Conflicts").
Status PgStore::LogRefusal(const core::MergeChange& change, core::Refusal* refusal) {
  const core::Change& sent = *change.change;
  if (ErrorData* error = KeptError(change.index)) {
    std::string message = core::ChangeContext(change.index, sent.table) + error->message;
    if (error->detail != nullptr) message += " (" + std::string(error->detail) + ")";
    refusal->reason = Status(refusal->reason.code(), message);
    refusal->sqlstate = unpack_sql_state(error->sqlerrcode);
  } else {
    refusal->sqlstate = core::SqlStateOf(refusal->reason.code());
  }
  std::string scope = data_[change.index].scope;
  const bool keyed = change.table != nullptr && change.meta_key.type == Value::Type::kText;
  if (scope.empty() && keyed) scope = Meta(Of(change).info.tid, change.meta_key.bytes).scope;
  // A scoped row without a scope (its scope column refused) is answered
  // with a tombstone no scoped pull delivers: the device drops its copy.
  if (keyed && Of(change).info.scope >= 0 && scope.empty()) refusal->forget = true;
  LogConflict(ConflictEntry{batch_.source, role_, &sent, scope, refusal}, &log_conflict_);
  return Status::Ok();
}

}  // namespace syncline::pg
