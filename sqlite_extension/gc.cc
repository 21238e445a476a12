#include "sqlite_extension/gc.h"

#include <charconv>
#include <map>
#include <vector>

#include "core/cursor.h"
#include "core/json.h"
#include "sqlite_extension/sync.h"
#include "sqlite_extension/sync_loop.h"
#include "sqlite_extension/tracking.h"

namespace syncline::sqlite {

using core::Code;
using core::Status;
using core::Value;

namespace {

constexpr const char* kHorizonKey = "gc_horizon";

// The candidates live in the temp schema: private to the connection, and
// part of its transaction, so a rolled back resync leaves none behind.
constexpr const char* kCandidates = "temp.syncline_resync";

Status HighestVersion(sqlite3* db, std::int64_t* highest) {
  return QueryInt(db, "SELECT coalesce(max(version), 0) FROM syncline_rows", highest);
}

Status ParseThrough(const std::string& text, std::int64_t* through) {
  const char* usage = "options: \"through\" (the highest local version to collect, an integer >= 0) is required";
  if (text.empty()) return Status(Code::kInvalidInput, usage);
  core::Json json;
  Status status = core::ParseJson(text, &json);
  if (!status.ok() || !json.is_object()) return Status(Code::kInvalidInput, "options must be a JSON object");
  bool found = false;
  for (const auto& [key, value] : json.members) {
    if (key != "through")
      return Status(Code::kInvalidInput, "options: unknown option \"" + key + "\" (known: \"through\")");
    const std::string& digits = value.text;
    auto end = std::from_chars(digits.data(), digits.data() + digits.size(), *through);
    if (!value.is_number() || end.ec != std::errc() || end.ptr != digits.data() + digits.size() || *through < 0)
      return Status(Code::kInvalidInput, "options: \"through\" must be an integer >= 0 (a local version)");
    found = true;
  }
  if (!found) return Status(Code::kInvalidInput, usage);
  return Status::Ok();
}

// A tracked table's row delete by primary key, prepared once per table.
struct RemovalTable {
  TableInfo info;
  Statement remove;
};

Status LoadRemovalTable(sqlite3* db, std::int64_t tid, RemovalTable* out) {
  bool found = false;
  Status status = FindTrackedTableById(db, tid, &out->info, &found);
  if (!status.ok()) return status;
  if (!found) return Status(Code::kInternal, "metadata names table id " + std::to_string(tid) + ", not tracked");
  return out->remove.Prepare(db,
                             "DELETE FROM " + QuoteIdentifier(out->info.name) + " WHERE " + KeyPredicate(out->info));
}

// Deletes a user row the server no longer has. Not a local write: capture
// leaves the row alone, as for a row apply_push writes (SqlCapturing).
Status RemoveUserRow(ConnectionState& state, RemovalTable& table, const Value& meta_key, std::int64_t* removed) {
  std::vector<Value> key;
  Status status = DecodeMetadataKey(meta_key, &key);
  if (!status.ok()) return status.WithPrefix("metadata key " + MetadataKeyText(meta_key) + ": ");
  if (key.size() != table.info.pk.size())
    return Status(Code::kInternal, "table \"" + table.info.name + "\": metadata key " + MetadataKeyText(meta_key) +
                                       " does not match the primary key; was the table's key changed?");
  for (std::size_t k = 0; k < key.size(); ++k)
    table.remove.BindValue(static_cast<int>(k + 1), key[k]);
  ++state.applying;
  state.applied_tid = table.info.tid;
  state.applied_key = &meta_key;
  status = table.remove.Run();
  state.applied_key = nullptr;
  --state.applying;
  table.remove.Reset();
  if (!status.ok())
    return status.WithPrefix("table \"" + table.info.name + "\", row " + MetadataKeyText(meta_key) + ": ");
  *removed += sqlite3_changes(state.db);
  return Status::Ok();
}

}  // namespace

Status ReadGcHorizon(sqlite3* db, std::int64_t* horizon) {
  std::string value;
  bool found = false;
  Status status = ReadMeta(db, kHorizonKey, &value, &found);
  *horizon = status.ok() && found ? std::stoll(value) : 0;
  return status;
}

Status CollectGarbage(ConnectionState& state, const std::string& options, std::string* result) {
  sqlite3* db = state.db;
  std::int64_t through = 0;
  Status status = ParseThrough(options, &through);
  if (!status.ok()) return status;
  status = EnsureMetadata(db);
  if (!status.ok()) return status;
  Savepoint savepoint(db, "syncline_gc");
  if (!savepoint.status().ok()) return savepoint.status();
  std::int64_t highest = 0, horizon = 0, collected = 0, greatest = 0;
  status = HighestVersion(db, &highest);
  if (status.ok()) status = ReadGcHorizon(db, &horizon);
  if (!status.ok()) return status;
  // tid 0 is the high-water mark's sentinel, not a row's tombstone.
  const std::string selected =
      " FROM syncline_rows WHERE deleted = 1 AND tid > 0 AND version <= " + std::to_string(through);
  status = QueryInt(db, "SELECT coalesce(max(version), 0)" + selected, &greatest);
  if (status.ok()) status = Exec(db, "DELETE" + selected);
  if (!status.ok()) return status;
  collected = sqlite3_changes(db);
  status = KeepVersionHighWaterMark(db, highest);
  if (!status.ok()) return status;
  if (greatest > horizon) {
    horizon = greatest;
    status = WriteMeta(db, kHorizonKey, std::to_string(horizon));
    if (!status.ok()) return status;
  }
  status = savepoint.Release();
  if (!status.ok()) return status;
  *result = "{\"collected\":" + std::to_string(collected) + ",\"horizon\":" + std::to_string(horizon) + "}";
  return Status::Ok();
}

Status ResyncInProgress(sqlite3* db, bool* in_progress) {
  Statement probe;
  Status status =
      probe.Prepare(db, "SELECT 1 FROM temp.sqlite_schema WHERE type = 'table' AND name = 'syncline_resync'");
  if (!status.ok()) return status;
  return probe.Step(in_progress);
}

Status ResyncBegin(ConnectionState& state, const std::optional<std::string>& acked_cursor, std::int64_t* candidates) {
  sqlite3* db = state.db;
  Status status = EnsureMetadata(db);
  if (!status.ok()) return status;
  bool in_progress = false;
  status = ResyncInProgress(db, &in_progress);
  if (!status.ok()) return status;
  if (in_progress)
    return Status(Code::kInvalidInput,
                  "a resync is already in progress on this connection (finish it with syncline_resync_end, or roll "
                  "back)");
  // The acknowledged position is one of this file's local pulls, whose
  // positions are local versions: the changes after it are this device's
  // own that the server may not have yet, and must stay.
  std::int64_t acked = 0;
  if (acked_cursor) {
    std::string node_id;
    std::int64_t highest = 0;
    status = LocalNodeId(db, &node_id);
    if (status.ok()) status = HighestVersion(db, &highest);
    if (!status.ok()) return status;
    core::PullOptions local;
    local.local_only = true;
    status = IssuedPosition(*acked_cursor, node_id, core::FilterFingerprint(local), highest, &acked);
    if (!status.ok())
      return status.WithPrefix("acked_cursor (a cursor of syncline_pull_since(..., '{\"origin\":\"local\"}')): ");
  }
  Savepoint savepoint(db, "syncline_resync_begin");
  if (!savepoint.status().ok()) return savepoint.status();
  status = Exec(db, std::string("CREATE TABLE ") + kCandidates +
                        "(tid INTEGER NOT NULL, pk NOT NULL, PRIMARY KEY (tid, pk)) WITHOUT ROWID");
  if (!status.ok()) return status;
  Statement fill;
  status = fill.Prepare(db, std::string("INSERT INTO ") + kCandidates +
                                "(tid, pk) SELECT tid, pk FROM syncline_rows WHERE tid > 0 AND "
                                "NOT (node = ?1 AND version > ?2)");
  if (!status.ok()) return status;
  fill.BindInt(1, kLocalNodeRef);
  fill.BindInt(2, acked);
  status = fill.Run();
  if (!status.ok()) return status;
  *candidates = sqlite3_changes(db);
  return savepoint.Release();
}

Status ResyncEnd(ConnectionState& state, std::string* result) {
  sqlite3* db = state.db;
  bool in_progress = false;
  Status status = ResyncInProgress(db, &in_progress);
  if (!status.ok()) return status;
  if (!in_progress) return Status(Code::kInvalidInput, "no resync in progress (call syncline_resync_begin first)");
  Savepoint savepoint(db, "syncline_resync_end");
  if (!savepoint.status().ok()) return savepoint.status();
  // As in apply_push: rows go in table order, not in their references'.
  status = Exec(db, "PRAGMA defer_foreign_keys = ON");
  if (!status.ok()) return status;
  std::int64_t highest = 0;
  status = HighestVersion(db, &highest);
  if (!status.ok()) return status;

  // Read first, then delete: user triggers may write anywhere.
  std::vector<std::pair<std::int64_t, Value>> live;
  {
    Statement select;
    status = select.Prepare(db, std::string("SELECT c.tid, c.pk FROM ") + kCandidates +
                                    " c JOIN syncline_rows m ON m.tid = c.tid AND m.pk = c.pk WHERE m.deleted = 0 "
                                    "ORDER BY c.tid");
    for (bool has_row = status.ok(); status.ok() && has_row;) {
      status = select.Step(&has_row);
      if (status.ok() && has_row) live.emplace_back(select.ColumnInt(0), select.ColumnValue(1));
    }
    if (!status.ok()) return status;
  }
  std::map<std::int64_t, RemovalTable> tables;
  std::int64_t rows_deleted = 0;
  for (const auto& [tid, meta_key] : live) {
    auto it = tables.find(tid);
    if (it == tables.end()) {
      it = tables.emplace(tid, RemovalTable{}).first;
      status = LoadRemovalTable(db, tid, &it->second);
      if (!status.ok()) return status;
    }
    status = RemoveUserRow(state, it->second, meta_key, &rows_deleted);
    if (!status.ok()) return status;
  }
  tables.clear();  // finalizes the statements before the DROP below

  status = Exec(db, std::string("DELETE FROM syncline_rows WHERE tid > 0 AND (tid, pk) IN (SELECT tid, pk FROM ") +
                        kCandidates + ")");
  if (!status.ok()) return status;
  const std::int64_t removed = sqlite3_changes(db);
  status = KeepVersionHighWaterMark(db, highest);
  if (status.ok()) status = Exec(db, std::string("DROP TABLE ") + kCandidates);
  if (!status.ok()) return status;
  status = savepoint.Release();
  if (!status.ok()) return status.WithPrefix("resync: ");  // deferred foreign keys
  *result = "{\"removed\":" + std::to_string(removed) + ",\"rows_deleted\":" + std::to_string(rows_deleted) + "}";
  return Status::Ok();
}

Status ResyncCandidates::Prepare(sqlite3* db) {
  return forget_.Prepare(db, std::string("DELETE FROM ") + kCandidates + " WHERE tid = ?1 AND pk = ?2");
}

Status ResyncCandidates::Seen(std::int64_t tid, const Value& meta_key) {
  forget_.BindInt(1, tid);
  forget_.BindValue(2, meta_key);
  Status status = forget_.Run();
  forget_.Reset();
  return status;
}

}  // namespace syncline::sqlite

namespace syncline::sqlite {

namespace {

constexpr const char* kCheckpointKey = "gc_checkpoint";  // "<local version> <server position>"

}  // namespace

Status GcSeen(ConnectionState& state, const std::string& answer, std::string* result) {
  core::Json json;
  if (!core::ParseJson(answer, &json).ok() || !json.is_object())
    return Status(Code::kInvalidInput, "answer must be device_seen's JSON object");
  const std::string bound = core::StringMember(json, "bound"), position = core::StringMember(json, "position");
  std::string checkpoint;
  bool found = false;
  Status status = ReadMeta(state.db, kCheckpointKey, &checkpoint, &found);
  if (!status.ok()) return status;
  const std::size_t space = checkpoint.find(' ');
  if (space == std::string::npos) found = false;  // unreadable: replaced by a new one
  std::int64_t collected = 0;
  // The server's collection has passed the checkpoint: the tombstones this
  // file held then are collected or superseded there, and the ones it kept
  // are older than its collection age, far beyond what a failover loses.
  if (found && !bound.empty() && core::ComparePositions(bound, checkpoint.substr(space + 1)) >= 0) {
    std::string summary;
    status = CollectGarbage(state, "{\"through\":" + checkpoint.substr(0, space) + "}", &summary);
    core::Json done;
    if (status.ok() && core::ParseJson(summary, &done).ok()) {
      const core::Json* count = done.Find("collected");
      if (count != nullptr && count->is_number()) collected = std::stoll(count->text);
    }
    if (status.ok()) status = WriteMeta(state.db, kCheckpointKey, "");
    if (!status.ok()) return status.WithPrefix("collecting this file's tombstones: ");
    found = false;
  }
  // A new checkpoint once the last one is used: the acknowledged push covers
  // this file's own tombstones, and every pulled one came before.
  std::optional<std::string> acked;
  status = PushAcked(state, &acked);
  if (!status.ok()) return status;
  if (!found && acked && !acked->empty() && !position.empty()) {
    // The local version: a position's first part (pull.cc).
    std::string version = acked->substr(acked->rfind(':') + 1);
    version = version.substr(0, version.find('.'));
    status = WriteMeta(state.db, kCheckpointKey, version + " " + position);
    if (!status.ok()) return status;
  }
  *result = "{\"collected\":" + std::to_string(collected) + "}";
  return Status::Ok();
}

}  // namespace syncline::sqlite
