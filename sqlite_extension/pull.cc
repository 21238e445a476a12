#include <map>

#include "core/changeset.h"
#include "core/cursor.h"
#include "core/node_id.h"
#include "sqlite_extension/gc.h"
#include "sqlite_extension/sqlite_util.h"
#include "sqlite_extension/sync.h"
#include "sqlite_extension/tracking.h"

namespace syncline::sqlite {

using core::Code;
using core::Status;
using core::Value;

namespace {

struct PullTable {
  TableInfo info;
  Statement select_row;  // the current row by primary key
};

Status LoadPullTable(sqlite3* db, std::int64_t tid, PullTable* out) {
  bool found = false;
  Status status = FindTrackedTableById(db, tid, &out->info, &found);
  if (!status.ok()) return status;
  if (!found) return Status(Code::kInternal, "metadata names table id " + std::to_string(tid) + ", not tracked");
  std::string columns;
  for (std::size_t i = 0; i < out->info.columns.size(); ++i) {
    if (i > 0) columns += ", ";
    columns += QuoteIdentifier(out->info.columns[i]);
  }
  return out->select_row.Prepare(db, "SELECT " + columns + " FROM " + QuoteIdentifier(out->info.name) + " WHERE " +
                                         KeyPredicate(out->info));
}

Status CheckText(const Value& value, const TableInfo& table, const Value& stored_key, const std::string& column) {
  if (value.type == Value::Type::kText && !core::IsValidUtf8(value.bytes))
    return Status(Code::kInvalidInput, "table \"" + table.name + "\", row " + MetadataKeyText(stored_key) +
                                           ": column \"" + column +
                                           "\" holds text that is not valid UTF-8; fix the row (or store it as a "
                                           "blob) so that it can sync");
  return Status::Ok();
}

}  // namespace

Status IssuedPosition(const std::string& cursor_text, const std::string& node_id, const std::string& filter,
                      std::int64_t highest, std::int64_t* position, std::int64_t* covered) {
  core::Cursor cursor;
  Status status = core::DecodeIssuedCursor(cursor_text, node_id, filter, &cursor);
  if (!status.ok()) return status;
  // "<version>", or "<version>.<horizon>" (PullSince says why); core checked
  // that the parts are decimal digits.
  const std::string& text = cursor.position;
  const std::size_t dot = text.find('.');
  const std::string version = text.substr(0, dot);
  const std::string horizon = dot == std::string::npos ? version : text.substr(dot + 1);
  if (version.size() > 18 || horizon.size() > 18 || horizon.find('.') != std::string::npos)
    return core::NeverIssued(text);
  *position = std::stoll(version);
  const std::int64_t issued_under = std::stoll(horizon);
  if (*position > highest || issued_under > highest || (dot != std::string::npos && issued_under <= *position))
    return core::NeverIssued(text);
  if (covered != nullptr) *covered = issued_under;
  return Status::Ok();
}

Status PullSince(ConnectionState& state, const std::optional<std::string>& cursor_text, std::int64_t limit,
                 const std::string& options_text, std::string* batch) {
  sqlite3* db = state.db;
  if (limit < 1) return Status(Code::kInvalidInput, "limit must be at least 1, got " + std::to_string(limit));
  core::PullOptions options;
  Status status = core::ParsePullOptions(options_text, &options);
  if (!status.ok()) return status;
  if (options.has_scope)
    return Status(Code::kInvalidInput, "options: \"scope\" is not supported by the SQLite extension");
  status = EnsureMetadata(db);
  if (!status.ok()) return status;

  // The page and the end position must come from one snapshot, or a write
  // committed between them could be skipped. They do: a SQL function runs
  // inside its calling statement, which holds the connection's read
  // transaction until it finishes. (No savepoint, so pull_since also works
  // inside a writing statement and in read-only transactions.)

  std::string node_id;
  status = LocalNodeId(db, &node_id);
  if (!status.ok()) return status;
  std::int64_t highest = 0;
  status = QueryInt(db, "SELECT coalesce(max(version), 0) FROM syncline_rows", &highest);
  if (!status.ok()) return status;

  const std::string filter = core::FilterFingerprint(options);
  std::int64_t position = 0;
  // Tombstones up to the horizon are gone: a reader that had not pulled
  // them all when they were collected cannot learn of those deletes any
  // more, and must resync. A cursor is safe up to its version, or up to the
  // horizon it was issued under (a full pull's pages after a collection:
  // the reader never saw the rows those tombstones deleted).
  std::int64_t horizon = 0;
  status = ReadGcHorizon(db, &horizon);
  if (!status.ok()) return status;
  if (cursor_text) {
    std::int64_t covered = 0;
    status = IssuedPosition(*cursor_text, node_id, filter, highest, &position, &covered);
    if (!status.ok()) return status;
    if (covered < horizon) return core::CursorBeforeHorizon(std::to_string(position), std::to_string(horizon));
  }

  std::string where = "m.version > ?1 AND m.tid > 0";
  std::int64_t excluded_ref = -1;
  if (options.local_only) where += " AND m.node = 0";
  if (!options.exclude_origin.empty()) {
    if (options.exclude_origin == node_id) {
      excluded_ref = kLocalNodeRef;
    } else {
      Statement ref;
      status = ref.Prepare(db, "SELECT ref FROM syncline_nodes WHERE node_id = ?1");
      if (!status.ok()) return status;
      ref.BindText(1, options.exclude_origin);
      bool found = false;
      status = ref.Step(&found);
      if (!status.ok()) return status;
      if (found) excluded_ref = ref.ColumnInt(0);
    }
    where += " AND m.node <> ?3";
  }

  Statement page;
  status = page.Prepare(db, "SELECT m.version, m.tid, m.pk, m.clock, m.hlc, m.node, m.deleted, n.node_id, m.cols "
                            "FROM syncline_rows m LEFT JOIN syncline_nodes n ON n.ref = m.node WHERE " +
                                where + " ORDER BY m.version LIMIT ?2");
  if (!status.ok()) return status;
  page.BindInt(1, position);
  page.BindInt(2, limit + 1);  // one more tells whether more remain
  if (!options.exclude_origin.empty()) page.BindInt(3, excluded_ref);

  std::map<std::int64_t, PullTable> tables;
  core::BatchWriter writer(node_id);
  std::int64_t last_version = position;
  bool has_more = false;
  core::Change change;
  std::vector<Value> key;
  while (true) {
    bool has_row = false;
    status = page.Step(&has_row);
    if (!status.ok()) return status;
    if (!has_row) break;
    if (static_cast<std::int64_t>(writer.count()) == limit) {
      has_more = true;
      break;
    }
    const std::int64_t version = page.ColumnInt(0);
    std::int64_t tid = page.ColumnInt(1);
    auto it = tables.find(tid);
    if (it == tables.end()) {
      it = tables.emplace(tid, PullTable{}).first;
      status = LoadPullTable(db, tid, &it->second);
      if (!status.ok()) return status;
    }
    PullTable& table = it->second;
    const Value stored_key = page.ColumnValue(2);
    status = DecodeMetadataKey(stored_key, &key);
    if (!status.ok()) return status.WithPrefix("metadata key " + MetadataKeyText(stored_key) + ": ");
    if (key.size() != table.info.pk.size())
      return Status(Code::kInternal, "table \"" + table.info.name + "\": metadata key " + MetadataKeyText(stored_key) +
                                         " does not match the primary key; was the table's key changed?");

    change.table = table.info.name;
    change.clock = page.ColumnInt(3);
    change.hlc = static_cast<core::Hlc>(page.ColumnInt(4));
    change.node = page.ColumnInt(5) == kLocalNodeRef ? node_id : page.ColumnText(7);
    change.op = page.ColumnInt(6) != 0 ? core::Op::kDelete : core::Op::kUpsert;
    change.pk.clear();
    change.row.clear();
    for (std::size_t i = 0; i < key.size(); ++i)
      change.pk.push_back({table.info.columns[table.info.pk[i]], FromStoredForm(table.info, table.info.pk[i], key[i])});
    if (change.op == core::Op::kUpsert) {
      Statement& select = table.select_row;
      select.Reset();
      for (std::size_t i = 0; i < key.size(); ++i)
        select.BindValue(static_cast<int>(i + 1), key[i]);
      bool found = false;
      status = select.Step(&found);
      if (!status.ok()) return status;
      if (!found)
        return Status(Code::kInternal, "table \"" + table.info.name + "\", row " + MetadataKeyText(stored_key) +
                                           ": the metadata holds it as live but the row is gone (written without "
                                           "capture?); run syncline_track again to resynchronise the metadata");
      for (std::size_t i = 0; i < table.info.columns.size(); ++i) {
        Value value = FromStoredForm(table.info, i, select.ColumnValue(static_cast<int>(i)));
        status = CheckText(value, table.info, stored_key, table.info.columns[i]);
        if (!status.ok()) return status;
        change.row.push_back({table.info.columns[i], std::move(value)});
      }
      // The key as stored (2.0 in an untyped column), not its key form.
      for (std::size_t k = 0; k < key.size(); ++k)
        change.pk[k].value = change.row[table.info.pk[k]].value;
      select.Reset();
    }
    change.column_stamps.clear();
    change.has_delete_stamp = false;
    if (options.format >= 2 && table.info.merge == core::MergeMode::kColumn) {
      status = core::AddColumnStamps(table.info.columns, page.ColumnValue(8).bytes, &change);
      if (!status.ok())
        return status.WithPrefix("table \"" + table.info.name + "\", row " + MetadataKeyText(stored_key) + ": ");
    }
    // A page full in bytes ends before this change; the next one begins at it.
    bool added = false;
    status = writer.AddToPage(change, options.max_bytes, &added);
    if (!status.ok()) return status;
    if (!added) {
      has_more = true;
      break;
    }
    last_version = version;
  }
  // With nothing left, the cursor moves to the end of the snapshot: rows the
  // filter skipped need not be scanned again.
  std::int64_t end = has_more ? last_version : std::max(highest, position);
  std::string end_text = std::to_string(end);
  if (end < horizon) end_text += "." + std::to_string(horizon);
  std::string cursor = core::EncodeCursor({node_id, filter, end_text});
  *batch = writer.Finish(cursor, has_more);
  return Status::Ok();
}

Status PeerCursor(ConnectionState& state, const std::string& node_text, const std::string& options_text,
                  std::optional<std::string>* cursor) {
  cursor->reset();
  std::optional<std::string> node = core::CanonicalNodeId(node_text);
  if (!node) return Status(Code::kInvalidInput, "node id \"" + node_text.substr(0, 60) + "\" is not a UUID");
  core::PullOptions options;
  Status status = core::ParsePullOptions(options_text, &options);
  if (!status.ok()) return status;
  status = EnsureMetadata(state.db);
  if (!status.ok()) return status;
  Statement select;
  status = select.Prepare(state.db, "SELECT cursor FROM syncline_peers WHERE node_id = ?1 AND filter = ?2");
  if (!status.ok()) return status;
  select.BindText(1, *node);
  select.BindText(2, core::FilterFingerprint(options));
  bool found = false;
  status = select.Step(&found);
  if (status.ok() && found) *cursor = select.ColumnText(0);
  return status;
}

}  // namespace syncline::sqlite
