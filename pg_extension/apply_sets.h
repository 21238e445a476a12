// Writing a merge's winning rows to a user's table in sets: one statement
// for a run of changes of one table and op (arrays in, through unnest), in
// a subtransaction, so that a refused run leaves nothing behind and can be
// written again one change at a time to name the change at fault.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/merge.h"
#include "core/value.h"
#include "pg_extension/pg_boundary.h"
#include "pg_extension/tables.h"

namespace syncline::pg {

struct SetTable : core::MergeTable {
  TableInfo info;
  // INSERT ... ON CONFLICT DO UPDATE and DELETE of a set of rows, each
  // returning what it wrote. When a column's type has no array type, the
  // one-row forms instead, run once per row (the others stay null).
  SPIPlanPtr upsert_set = nullptr, delete_set = nullptr;
  SPIPlanPtr upsert_one = nullptr, delete_one = nullptr;
  SPIPlanPtr select_row = nullptr;  // by key, every synced column
  // Writes of rows that lack columns (core::MergeTable::partial_rows), one
  // row at a time, by the set of columns present: the others keep their
  // values, or take their defaults in a new row.
  std::map<std::vector<bool>, SPIPlanPtr> partial_writes;
  std::string notify_payload;
};

void PrepareSetTable(SetTable* table);

// One row of a run.
struct RowWrite {
  const std::string* key;          // metadata key
  const Datum* values;             // upserts: every column; deletes: the key
  const char* nulls;               // ' ' or 'n' per value
  const core::Value* const* sent;  // upserts: the row as sent, table order (null: a column it lacks)
  bool rewritten;                  // set: PostgreSQL stored other values than sent
  bool partial;                    // upserts: the row lacks columns (core::MergeChange::partial)
  // A column-merge write: the columns it lacks are kept as the merge
  // decided, not a rewrite; only the ones it writes are compared.
  bool column_merge;
};

// An internal subtransaction that leaves the caller's memory context
// current (what is allocated in it outlives a rollback).
struct Subtransaction {
  MemoryContext context;
  ResourceOwner owner;
};
Subtransaction BeginSubtransaction();
void EndSubtransaction(const Subtransaction& begun, bool commit);

// Writes rows[first, first + count) in a subtransaction. False, with
// PostgreSQL's error in *error, when it refused them (nothing is written).
bool WriteSet(SetTable& table, bool upsert, std::vector<RowWrite>& rows, std::size_t first, std::size_t count,
              ErrorData** error);

Datum ScalarArray(const std::vector<Datum>& values, Oid type);
Datum TextArray(const std::vector<std::string>& texts, bool empty_is_null = false);
Datum ByteaArray(const std::vector<std::string>& values);  // "" is NULL

}  // namespace syncline::pg
