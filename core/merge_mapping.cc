// MapChange (core/merge_internal.h): the merge's first step, a change's "pk"
// and "row" mapped onto its table's columns, by their names or by former
// names, leaving out dropped columns (docs/protocol.md, "Schema changes").
#include <string>
#include <vector>

#include "core/merge.h"
#include "core/merge_internal.h"

namespace syncline::core {

namespace {

std::string KeyNames(const MergeTable& table) {
  std::string names;
  for (std::size_t k = 0; k < table.pk.size(); ++k)
    names += (k > 0 ? ", " : "") + table.columns[table.pk[k]];
  return names;
}

// The column named `name`, looked for first at `hint` (batches list columns
// in table order), or names.size().
std::size_t FindColumn(const std::vector<std::string>& names, const std::string& name, std::size_t hint) {
  if (hint < names.size() && names[hint] == name) return hint;
  std::size_t c = 0;
  while (c < names.size() && names[c] != name)
    ++c;
  return c;
}

constexpr std::size_t kNoColumn = static_cast<std::size_t>(-1);
constexpr std::size_t kDroppedColumn = static_cast<std::size_t>(-2);

// The column a change names: by its name, else by a former name; or
// kDroppedColumn for a dropped one, or kNoColumn.
std::size_t ResolveColumn(const MergeTable& table, const std::string& name, std::size_t hint) {
  std::size_t c = FindColumn(table.columns, name, hint);
  if (c < table.columns.size()) return c;
  for (auto it = table.former_names.rbegin(); it != table.former_names.rend(); ++it)
    if (it->first == name) return static_cast<std::size_t>(it->second);
  for (const std::string& dropped : table.dropped)
    if (dropped == name) return kDroppedColumn;
  return kNoColumn;
}
}  // namespace

// Maps a change's "pk" and "row" onto its table: exactly the key columns,
// and every column of an upsert's row, each once. Former names map to
// their columns; values of dropped columns are left out (`ignored`); a row
// may lack columns where the table allows it.
Status MapChange(MergeChange& out, std::vector<std::string>* ignored) {
  const MergeTable& table = *out.table;
  const Change& change = *out.change;
  out.key.assign(table.pk.size(), nullptr);
  for (std::size_t i = 0; i < change.pk.size(); ++i) {
    const ColumnValue& column = change.pk[i];
    const std::size_t c = ResolveColumn(table, column.column, i < table.pk.size() ? table.pk[i] : 0);
    std::size_t k = 0;
    while (k < table.pk.size() && static_cast<std::size_t>(table.pk[k]) != c)
      ++k;
    if (k == table.pk.size())
      return Status(Code::kUndefinedColumn, "\"pk\" names column \"" + column.column +
                                                "\", which is not in the table's primary key (" + KeyNames(table) +
                                                ")");
    if (out.key[k] != nullptr)
      return Status(Code::kInvalidInput, "\"pk\" names column \"" + table.columns[c] + "\" twice");
    if (column.value.type == Value::Type::kNull)
      return Status(Code::kInvalidInput, "primary key column \"" + column.column + "\" is null");
    out.key[k] = &column.value;
  }
  for (std::size_t k = 0; k < table.pk.size(); ++k) {
    if (out.key[k] == nullptr)
      return Status(Code::kUndefinedColumn, "\"pk\" lacks primary key column \"" + table.columns[table.pk[k]] + "\"");
  }
  out.row.clear();
  out.partial = false;
  if (change.op == Op::kDelete) return Status::Ok();
  out.row.assign(table.columns.size(), nullptr);
  // A column under its own name wins over one sent under a former name.
  std::vector<bool> by_former(table.columns.size(), false);
  for (std::size_t i = 0; i < change.row.size(); ++i) {
    const ColumnValue& column = change.row[i];
    std::size_t c = ResolveColumn(table, column.column, i);
    if (c == kNoColumn) return Status(Code::kUndefinedColumn, "unknown column \"" + column.column + "\"");
    if (c == kDroppedColumn) {
      ignored->push_back(column.column);
      continue;
    }
    const bool former = table.columns[c] != column.column;
    if (out.row[c] != nullptr) {
      if (former) continue;
      if (!by_former[c]) return Status(Code::kInvalidInput, "\"row\" holds column \"" + table.columns[c] + "\" twice");
    }
    out.row[c] = &column.value;
    by_former[c] = former;
  }
  for (std::size_t c = 0; c < table.columns.size(); ++c) {
    if (out.row[c] != nullptr) continue;
    bool in_key = false;
    for (int k : table.pk)
      in_key = in_key || static_cast<std::size_t>(k) == c;
    if (!table.partial_rows || in_key)
      return Status(Code::kUndefinedColumn, "\"row\" lacks column \"" + table.columns[c] + "\"");
    out.partial = true;
  }
  // The key columns of "row" are the key: a change cannot say two things.
  for (std::size_t k = 0; k < table.pk.size(); ++k) {
    if (!SameValue(KeyForm(*out.row[table.pk[k]]), KeyForm(*out.key[k])))
      return Status(Code::kInvalidInput,
                    "\"pk\" and \"row\" differ in primary key column \"" + table.columns[table.pk[k]] + "\"");
  }
  return Status::Ok();
}

}  // namespace syncline::core
