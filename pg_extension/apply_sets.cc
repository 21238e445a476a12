#include "pg_extension/apply_sets.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "pg_extension/backend.h"
#include "pg_extension/spi.h"

namespace syncline::pg {

using core::Value;

void PrepareSetTable(SetTable* table) {
  const TableInfo& info = table->info;
  std::string columns, values, unnest, names, updates, keys, where, key_unnest, key_names, key_match, returning_key;
  std::vector<Oid> types, key_types, array_types, key_array_types;
  bool sets = true;
  for (std::size_t i = 0; i < info.columns.size(); ++i) {
    const std::string column = Quote(info.columns[i].name);
    const std::string n = std::to_string(i + 1);
    columns += (i > 0 ? ", " : "") + column;
    values += (i > 0 ? ", $" : "$") + n;
    unnest += (i > 0 ? ", " : "") + std::string("pg_catalog.unnest($") + n + ")";
    names += (i > 0 ? ", c" : "c") + n;
    // Parameters of the base type: the planner then adds the domain check.
    types.push_back(info.columns[i].base);
    Oid array_type = InvalidOid;
    Oid base = info.columns[i].base;
    PgGuard([&] { array_type = get_array_type(base); });
    // An array column's "array type" would be itself, unnested a level too far.
    if (array_type == InvalidOid || type_is_array(base)) sets = false;
    array_types.push_back(array_type);
    bool in_key = std::find(info.pk.begin(), info.pk.end(), static_cast<int>(i)) != info.pk.end();
    if (!in_key) updates += (updates.empty() ? "" : ", ") + column + " = EXCLUDED." + column;
  }
  for (std::size_t k = 0; k < info.pk.size(); ++k) {
    const ColumnType& column = info.columns[info.pk[k]];
    const std::string n = std::to_string(k + 1);
    keys += (k > 0 ? ", " : "") + Quote(column.name);
    returning_key += (k > 0 ? ", t." : "t.") + Quote(column.name);
    where += (k > 0 ? " AND " : "") + KeyEquals(column, "$" + n);
    key_unnest += (k > 0 ? ", " : "") + std::string("pg_catalog.unnest($") + n + ")";
    // Names no user column has: the key column's name stands unqualified.
    key_names += (k > 0 ? ", syncline_key_" : "syncline_key_") + n;
    key_match += (k > 0 ? " AND " : "") + KeyEquals(column, "k.syncline_key_" + n);
    key_types.push_back(column.base);
    key_array_types.push_back(array_types[info.pk[k]]);
  }
  const std::string name = QualifiedName(info);
  const std::string conflict =
      " ON CONFLICT (" + keys + ") DO " + (updates.empty() ? "NOTHING" : "UPDATE SET " + updates);
  if (sets) {
    table->upsert_set =
        Prepare("INSERT INTO " + name + " AS t (" + columns + ") SELECT " + names + " FROM ROWS FROM (" + unnest +
                    ") AS u(" + names + ")" + conflict + " RETURNING " + columns,
                array_types);
    // The key's own equality operator, named in full (KeyEquals).
    table->delete_set = Prepare("DELETE FROM " + name + " AS t USING ROWS FROM (" + key_unnest + ") AS k(" + key_names +
                                    ") WHERE " + key_match + " RETURNING " + returning_key,
                                key_array_types);
  } else {
    table->upsert_one = Prepare("INSERT INTO " + name + " AS t (" + columns + ") VALUES (" + values + ")" + conflict +
                                    " RETURNING " + columns,
                                types);
    table->delete_one =
        Prepare("DELETE FROM " + name + " AS t WHERE " + where + " RETURNING " + returning_key, key_types);
  }
  table->select_row = Prepare("SELECT " + columns + " FROM " + name + " WHERE " + where, key_types);
  core::JsonWriter writer(&table->notify_payload);
  writer.BeginObject();
  writer.Key("table");
  writer.String(info.name);
  writer.EndObject();
}

Datum ScalarArray(const std::vector<Datum>& values, Oid type) {
  Datum array = (Datum)0;
  PgGuard([&] {
    int16 length = 0;
    bool by_value = false;
    char align = 0;
    get_typlenbyvalalign(type, &length, &by_value, &align);
    array = PointerGetDatum(construct_array(const_cast<Datum*>(values.data()), static_cast<int>(values.size()), type,
                                            length, by_value, align));
  });
  return array;
}

Datum TextArray(const std::vector<std::string>& texts, bool empty_is_null) {
  Datum array = (Datum)0;
  const int count = static_cast<int>(texts.size());
  PgGuard([&] {
    auto* elements = static_cast<Datum*>(palloc(sizeof(Datum) * (count > 0 ? count : 1)));
    auto* nulls = static_cast<bool*>(palloc(sizeof(bool) * (count > 0 ? count : 1)));
    for (int i = 0; i < count; ++i) {
      nulls[i] = empty_is_null && texts[i].empty();
      elements[i] = nulls[i] ? (Datum)0 : CStringGetTextDatum(texts[i].c_str());
    }
    int dims[1] = {count};
    int lower_bounds[1] = {1};
    array =
        PointerGetDatum(construct_md_array(elements, nulls, 1, dims, lower_bounds, TEXTOID, -1, false, TYPALIGN_INT));
  });
  return array;
}

Datum ByteaArray(const std::vector<std::string>& values) {
  std::vector<Datum> elements(values.size(), (Datum)0);
  std::vector<char> nulls(values.size(), 0);
  for (std::size_t i = 0; i < values.size(); ++i) {
    if (values[i].empty())
      nulls[i] = 1;
    else
      elements[i] = ByteaDatum(values[i]);
  }
  Datum array = (Datum)0;
  Datum* data = elements.data();
  bool* null_flags = reinterpret_cast<bool*>(nulls.data());
  const int count = static_cast<int>(values.size());
  PgGuard([&] {
    int dims[1] = {count};
    int lower_bounds[1] = {1};
    array =
        PointerGetDatum(construct_md_array(data, null_flags, 1, dims, lower_bounds, BYTEAOID, -1, false, TYPALIGN_INT));
  });
  return array;
}

namespace {

// The write of a row that has only the `present` columns (the key among
// them): an UPDATE of those, and when it finds no row an INSERT (the other
// columns take their defaults). Not INSERT ... ON CONFLICT DO UPDATE alone,
// which checks NOT NULL on the row it would insert before it finds the
// conflict: a write of one column of a row with NOT NULL columns failed.
// The INSERT keeps ON CONFLICT for a row a concurrent transaction inserts.
SPIPlanPtr PartialWrite(SetTable& table, const std::vector<bool>& present) {
  auto it = table.partial_writes.find(present);
  if (it != table.partial_writes.end()) return it->second;
  const TableInfo& info = table.info;
  std::string columns, values, sets, excluded, where, keys, all;
  std::vector<Oid> types;
  for (std::size_t c = 0; c < info.columns.size(); ++c) {
    const ColumnType& column_type = info.columns[c];
    const std::string column = Quote(column_type.name);
    all += (c > 0 ? ", " : "") + column;
    if (!present[c]) continue;
    columns += (columns.empty() ? "" : ", ") + column;
    types.push_back(column_type.base);
    const std::string parameter = "$" + std::to_string(types.size());
    values += (values.empty() ? "" : ", ") + parameter;
    if (std::find(info.pk.begin(), info.pk.end(), static_cast<int>(c)) == info.pk.end()) {
      sets += (sets.empty() ? "" : ", ") + column + " = " + parameter;
      excluded += (excluded.empty() ? "" : ", ") + column + " = EXCLUDED." + column;
    } else {
      where += (where.empty() ? "" : " AND ") + KeyEquals(column_type, parameter);
    }
  }
  for (std::size_t k = 0; k < info.pk.size(); ++k)
    keys += (k > 0 ? ", " : "") + Quote(info.columns[info.pk[k]].name);
  const std::string name = QualifiedName(info);
  std::string sql;
  if (sets.empty()) {
    sql = "INSERT INTO " + name + " AS t (" + columns + ") VALUES (" + values + ") ON CONFLICT (" + keys +
          ") DO NOTHING RETURNING " + all;
  } else {
    sql = "WITH updated AS (UPDATE " + name + " AS t SET " + sets + " WHERE " + where + " RETURNING " + all +
          "), inserted AS (INSERT INTO " + name + " AS t (" + columns + ") SELECT " + values +
          " WHERE NOT EXISTS (SELECT FROM updated) ON CONFLICT (" + keys + ") DO UPDATE SET " + excluded +
          " RETURNING " + all + ") SELECT * FROM updated UNION ALL SELECT * FROM inserted";
  }
  SPIPlanPtr plan = Prepare(sql, types);
  table.partial_writes.emplace(present, plan);
  return plan;
}

// One column of a run as an array parameter (with its NULLs).
Datum ColumnArray(Oid element_type, const std::vector<RowWrite>& rows, std::size_t first, std::size_t count,
                  std::size_t column) {
  std::vector<Datum> elements(count);
  std::vector<char> nulls(count);
  for (std::size_t i = 0; i < count; ++i) {
    elements[i] = rows[first + i].values[column];
    nulls[i] = rows[first + i].nulls[column] == 'n';
  }
  Datum array = (Datum)0;
  Datum* data = elements.data();
  bool* null_flags = reinterpret_cast<bool*>(nulls.data());
  const int n = static_cast<int>(count);
  PgGuard([&] {
    int16 length = 0;
    bool by_value = false;
    char align = 0;
    get_typlenbyvalalign(element_type, &length, &by_value, &align);
    int dims[1] = {n};
    int lower_bounds[1] = {1};
    array = PointerGetDatum(
        construct_md_array(data, null_flags, 1, dims, lower_bounds, element_type, length, by_value, align));
  });
  return array;
}

// The metadata key of a row SPI returned, its key columns at `key_attnums`.
std::string ReturnedKey(const TableInfo& info, HeapTuple tuple, TupleDesc desc, const std::vector<int>& key_attnums) {
  std::vector<Value> key(info.pk.size());
  for (std::size_t k = 0; k < info.pk.size(); ++k) {
    bool isnull = false;
    Datum datum = (Datum)0;
    int attnum = key_attnums[k];
    PgGuard([&] { datum = SPI_getbinval(tuple, desc, attnum, &isnull); });
    key[k] = DatumToValue(info.columns[info.pk[k]], datum, isnull);
  }
  std::string text;
  (void)core::EncodeKey(key, &text);  // values PostgreSQL stored in a key: valid UTF-8
  return text;
}

// Writes the run as the caller (its privileges and row-level security
// apply), raising PostgreSQL's error when it is refused.
void WriteRun(SetTable& table, bool upsert, std::vector<RowWrite>& rows, std::size_t first, std::size_t count) {
  const TableInfo& info = table.info;
  std::unordered_map<std::string, RowWrite*> by_key;
  std::unordered_set<std::string> keys;
  for (std::size_t i = first; i < first + count; ++i) {
    by_key[*rows[i].key] = &rows[i];
    keys.insert(*rows[i].key);
  }
  ApplyingRows applying(info.relid, keys);
  bool partial = false;
  for (std::size_t i = first; upsert && !partial && i < first + count; ++i)
    partial = rows[i].partial;
  const bool one_at_a_time = table.upsert_set == nullptr || partial;
  std::unordered_set<std::string> done;
  for (std::size_t start = first; start < first + count; start += one_at_a_time ? 1 : count) {
    uint64 returned = 0;
    if (partial) {
      std::vector<bool> present(info.columns.size());
      std::vector<Datum> values;
      std::string nulls;
      for (std::size_t c = 0; c < info.columns.size(); ++c) {
        present[c] = rows[start].sent[c] != nullptr;
        if (!present[c]) continue;
        values.push_back(rows[start].values[c]);
        nulls.push_back(rows[start].nulls[c]);
      }
      returned = Execute(PartialWrite(table, present), values.data(), nulls.data(), false);
    } else if (one_at_a_time) {
      returned = Execute(upsert ? table.upsert_one : table.delete_one, const_cast<Datum*>(rows[start].values),
                         rows[start].nulls, false);
    } else {
      const std::size_t width = upsert ? info.columns.size() : info.pk.size();
      std::vector<Datum> arrays(width);
      for (std::size_t c = 0; c < width; ++c) {
        const std::size_t column = upsert ? c : static_cast<std::size_t>(info.pk[c]);
        arrays[c] = ColumnArray(info.columns[column].base, rows, first, count, c);
      }
      const std::string nulls(width, ' ');
      returned = Execute(upsert ? table.upsert_set : table.delete_set, arrays.data(), nulls.data(), false);
    }
    // What PostgreSQL stored, against what was sent: a canonical form, a
    // trigger's or a default's value is a rewrite (types.md).
    std::vector<int> key_attnums(info.pk.size());
    for (std::size_t k = 0; k < info.pk.size(); ++k)
      key_attnums[k] = upsert ? info.pk[k] + 1 : static_cast<int>(k + 1);
    for (uint64 r = 0; r < returned; ++r) {
      HeapTuple tuple = SPI_tuptable->vals[r];
      TupleDesc desc = SPI_tuptable->tupdesc;
      std::string key = ReturnedKey(info, tuple, desc, key_attnums);
      auto it = by_key.find(key);
      if (it == by_key.end()) continue;  // a trigger moved the row to another key
      done.insert(key);
      if (!upsert) continue;
      RowWrite& row = *it->second;
      // A row that lacked columns is stored with values its sender did not
      // send: a rewrite, so that it gets them (docs/protocol.md, "Schema changes").
      row.rewritten = row.partial && !row.column_merge;
      for (std::size_t c = 0; c < info.columns.size() && !row.rewritten; ++c) {
        if (row.sent[c] == nullptr) continue;  // a column-merge write keeps it
        bool isnull = false;
        Datum datum = (Datum)0;
        int attnum = static_cast<int>(c + 1);
        PgGuard([&] { datum = SPI_getbinval(tuple, desc, attnum, &isnull); });
        row.rewritten = !core::SameValue(DatumToValue(info.columns[c], datum, isnull), *row.sent[c]);
      }
    }
  }
  if (upsert) return;
  // A delete that deleted nothing: the row is gone (fine), or row-level
  // security hides it from the caller, which is an error rather than a
  // silent no-op. A fresh snapshot: a concurrent delete that committed
  // while this one waited has removed it.
  AsExtensionOwner owner;
  for (std::size_t i = first; i < first + count; ++i) {
    if (done.count(*rows[i].key) > 0) continue;
    if (Execute(table.select_row, const_cast<Datum*>(rows[i].values), rows[i].nulls, false, 1) == 0) continue;
    PgGuard([] {
      ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                      errmsg("the row exists but the current role may not delete it (row-level security)")));
    });
  }
}

}  // namespace

Subtransaction BeginSubtransaction() {
  Subtransaction begun{CurrentMemoryContext, CurrentResourceOwner};
  PgGuard([] { BeginInternalSubTransaction(nullptr); });
  MemoryContextSwitchTo(begun.context);
  return begun;
}

void EndSubtransaction(const Subtransaction& begun, bool commit) {
  if (commit)
    PgGuard([] { ReleaseCurrentSubTransaction(); });
  else
    PgGuard([] { RollbackAndReleaseCurrentSubTransaction(); });
  MemoryContextSwitchTo(begun.context);
  CurrentResourceOwner = begun.owner;
}

bool WriteSet(SetTable& table, bool upsert, std::vector<RowWrite>& rows, std::size_t first, std::size_t count,
              ErrorData** error) {
  const Subtransaction begun = BeginSubtransaction();
  *error = nullptr;
  try {
    WriteRun(table, upsert, rows, first, count);
  } catch (PgError& refused) {
    *error = refused.data;  // copied into the caller's context, which outlives the subtransaction
  }
  if (*error != nullptr) {
    for (std::size_t i = first; i < first + count; ++i)
      rows[i].rewritten = false;
  }
  EndSubtransaction(begun, *error == nullptr);
  return *error == nullptr;
}

}  // namespace syncline::pg
