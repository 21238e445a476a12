// Capture for column-merge tables (docs/sqlite.md, "Column-level merge"):
// the UPDATE trigger's metadata upsert sets syncline_rows.cols with
// syncline_column_stamps, which stamps the columns whose stored value
// changed with the row's new stamp and keeps the others' stamps.
#include "sqlite_extension/column_capture.h"

#include <algorithm>
#include <cstring>
#include <memory>

#include "core/json.h"
#include "sqlite_extension/sqlite_util.h"

namespace syncline::sqlite {

using core::Code;
using core::Stamp;
using core::Status;

// The table's columns and key, from the trigger's constant argument
// [["id", "title", ...], [0]]: parsed once per connection (SqlColumnStamps).
struct ColumnList {
  std::vector<std::string> names;
  std::vector<bool> key;
  // `names`, then the table's columns the list lacks: a trigger made before
  // the app added them still runs in the statement during which capture
  // rewrote it (ddl.cc). Their values are not passed, so they count as
  // changed. Checked once per schema version.
  std::int64_t checked_schema = -2;
  std::vector<std::string> all;
};

namespace {

Status FindExtraColumns(ConnectionState& state, std::int64_t tid, ColumnList* list) {
  if (list->checked_schema == state.schema_version) return Status::Ok();
  TableInfo table;
  bool found = false;
  Status status = FindTrackedTableById(state.db, tid, &table, &found);
  if (!status.ok()) return status;
  list->all = list->names;
  for (const std::string& column : table.columns)
    if (std::find(list->names.begin(), list->names.end(), column) == list->names.end()) list->all.push_back(column);
  list->checked_schema = state.schema_version;
  return Status::Ok();
}

Status ParseColumnList(sqlite3_value* arg, ColumnList* out) {
  core::Json json;
  const char* text = reinterpret_cast<const char*>(sqlite3_value_text(arg));
  Status status = core::ParseJson(text == nullptr ? "" : text, &json);
  if (!status.ok() || !json.is_array() || json.items.size() != 2 || !json.items[0].is_array() ||
      !json.items[1].is_array())
    return Status(Code::kInvalidInput, "the column list is [[names], [key indexes]]");
  for (const core::Json& name : json.items[0].items)
    out->names.push_back(name.text);
  out->key.assign(out->names.size(), false);
  for (const core::Json& index : json.items[1].items) {
    std::size_t at = static_cast<std::size_t>(std::atoll(index.text.c_str()));
    if (at >= out->key.size()) return Status(Code::kInvalidInput, "a key index is past the columns");
    out->key[at] = true;
  }
  return Status::Ok();
}

// Whether the stored value changed: type and bytes, so that 1 and 1.0 and
// -0.0 and 0.0 differ, as the changeset tells them apart.
bool Changed(sqlite3_value* before, sqlite3_value* after) {
  const int type = sqlite3_value_type(before);
  if (type != sqlite3_value_type(after)) return true;
  switch (type) {
    case SQLITE_NULL: return false;
    case SQLITE_INTEGER: return sqlite3_value_int64(before) != sqlite3_value_int64(after);
    case SQLITE_FLOAT: {
      const double a = sqlite3_value_double(before), b = sqlite3_value_double(after);
      return std::memcmp(&a, &b, sizeof a) != 0;
    }
    default: {
      const void* a =
          type == SQLITE_TEXT ? static_cast<const void*>(sqlite3_value_text(before)) : sqlite3_value_blob(before);
      const void* b =
          type == SQLITE_TEXT ? static_cast<const void*>(sqlite3_value_text(after)) : sqlite3_value_blob(after);
      const int size = sqlite3_value_bytes(before);
      return size != sqlite3_value_bytes(after) || (size > 0 && std::memcmp(a, b, static_cast<std::size_t>(size)) != 0);
    }
  }
}

}  // namespace

Status NodeIdOfRef(ConnectionState& state, std::int64_t ref, std::string* out) {
  auto known = state.node_ids.find(ref);
  if (known != state.node_ids.end()) {
    *out = known->second;
    return Status::Ok();
  }
  Status status;
  if (ref == kLocalNodeRef) {
    status = LocalNodeId(state.db, out);
  } else {
    Statement find;
    status = find.Prepare(state.db, "SELECT node_id FROM syncline_nodes WHERE ref = ?1");
    if (!status.ok()) return status;
    find.BindInt(1, ref);
    bool found = false;
    status = find.Step(&found);
    if (status.ok() && !found)
      return Status(Code::kInternal, "syncline_rows names node ref " + std::to_string(ref) + ", unknown");
    if (status.ok()) *out = find.ColumnText(0);
  }
  if (status.ok()) state.node_ids[ref] = *out;
  return status;
}

// syncline_column_stamps(cols, hlc, node, deleted, tid, column_list, OLD.c1, NEW.c1, ...):
// the metadata's new cols text (NULL: every column at the row's new stamp,
// which syncline_stamp issued just before: SQLite computes an UPDATE's new
// values in the table's column order, and cols comes after hlc).
Status SqlColumnStamps(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv) {
  constexpr int kList = 5, kValues = 6;
  // Parsed once per connection: SQLite keeps no auxdata across a trigger's
  // firings (each runs in a frame of its own).
  const std::string_view list_text(reinterpret_cast<const char*>(sqlite3_value_text(argv[kList])),
                                   static_cast<std::size_t>(sqlite3_value_bytes(argv[kList])));
  auto cached = state.column_lists.find(list_text);
  if (cached == state.column_lists.end()) {
    auto parsed = std::make_shared<ColumnList>();
    Status status = ParseColumnList(argv[kList], parsed.get());
    if (!status.ok()) return status;
    cached = state.column_lists.emplace(std::string(list_text), std::move(parsed)).first;
  }
  ColumnList* columns = cached->second.get();
  const std::size_t count = columns->names.size();
  if (static_cast<std::size_t>(argc) != kValues + 2 * count)
    return Status(Code::kInvalidInput,
                  "expected an old and a new value for each of " + std::to_string(count) + " columns");
  const core::Hlc old_hlc = static_cast<core::Hlc>(sqlite3_value_int64(argv[1]));
  const core::Hlc new_hlc = state.clock;
  if (new_hlc <= old_hlc)
    return Status(Code::kInternal, "the row's new stamp is not issued yet (SQLite evaluated cols before hlc)");
  // A row written again after its delete, or under a new key, is a new row:
  // every column at the new stamp.
  bool whole_row = sqlite3_value_int64(argv[3]) != 0;
  std::vector<bool> changed(count);
  for (std::size_t i = 0; i < count; ++i) {
    changed[i] = Changed(argv[kValues + 2 * i], argv[kValues + 1 + 2 * i]);
    if (changed[i] && columns->key[i]) whole_row = true;
  }
  if (whole_row) {
    sqlite3_result_null(ctx);
    return Status::Ok();
  }
  Status status = FindExtraColumns(state, sqlite3_value_int64(argv[4]), columns);
  if (!status.ok()) return status;
  const std::vector<std::string>& names = columns->all;
  changed.resize(names.size(), true);
  Stamp before{old_hlc, ""};
  status = NodeIdOfRef(state, sqlite3_value_int64(argv[2]), &before.node);
  if (!status.ok()) return status;
  std::string_view old_cols;
  if (sqlite3_value_type(argv[0]) == SQLITE_BLOB)
    old_cols = std::string_view(static_cast<const char*>(sqlite3_value_blob(argv[0])),
                                static_cast<std::size_t>(sqlite3_value_bytes(argv[0])));
  Stamp now{new_hlc, ""};
  status = NodeIdOfRef(state, kLocalNodeRef, &now.node);
  if (!status.ok()) return status;
  std::string text;
  status = core::StampChangedColumns(old_cols, names, before, changed, now, &text);
  if (!status.ok()) return status;
  if (text.empty())
    sqlite3_result_null(ctx);
  else
    sqlite3_result_blob(ctx, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return Status::Ok();
}

Status RenameColumnInMetadata(sqlite3* db, std::int64_t tid, const std::string& from,
                              const std::optional<std::string>& to) {
  std::vector<std::pair<std::int64_t, std::string>> rows;  // version, new cols
  {
    Statement read;
    Status status = read.Prepare(db, "SELECT version, cols FROM syncline_rows WHERE tid = ?1 AND cols IS NOT NULL");
    if (!status.ok()) return status;
    read.BindInt(1, tid);
    for (;;) {
      bool has_row = false;
      status = read.Step(&has_row);
      if (!status.ok()) return status;
      if (!has_row) break;
      std::string renamed;
      status = core::RenameColumnStamps(read.ColumnValue(1).bytes, from,
                                        to ? std::optional<std::string_view>(*to) : std::nullopt, &renamed);
      if (!status.ok()) return status;
      rows.emplace_back(read.ColumnInt(0), std::move(renamed));
    }
  }
  Statement write;
  Status status = write.Prepare(db, "UPDATE syncline_rows SET cols = ?2 WHERE version = ?1");
  for (const auto& [version, cols] : rows) {
    if (!status.ok()) return status;
    write.BindInt(1, version);
    if (!cols.empty()) write.BindValue(2, core::Value::Blob(cols));  // else NULL
    status = write.Run();
    write.Reset();
  }
  return status;
}

}  // namespace syncline::sqlite
