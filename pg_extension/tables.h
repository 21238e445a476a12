// Tracked tables as the PostgreSQL extension sees them.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/column_merge.h"
#include "core/status.h"
#include "core/value.h"
#include "pg_extension/types.h"

namespace syncline::pg {

struct TableInfo {
  int32 tid = 0;
  Oid relid = InvalidOid;
  std::string schema;
  std::string name;
  std::vector<ColumnType> columns;  // synced columns (generated ones excluded), table order
  std::vector<AttrNumber> attnums;  // per column
  std::vector<int> pk;              // indexes into columns, primary key order
  int scope = -1;                   // index of the scope column, or -1
  bool notify = true;
  std::string authorize;  // the authorisation hook, "schema.function(jsonb)"; empty when none
  core::MergeMode merge = core::MergeMode::kRow;
};

// Reads a relation's shape (columns, primary key). `context` keeps the type
// functions' lookups.
core::Status LoadShape(Oid relid, MemoryContext context, TableInfo* out);

// The tracking row of a relation, or of a table by its unqualified name.
// Needs an SPI session. `found` false when not tracked.
core::Status FindTrackedByRelid(Oid relid, MemoryContext context, TableInfo* out, bool* found);
// The tracking a capture trigger on `relid` writes under: the table's own,
// or for a partition the root of its partition tree's, with the attribute
// numbers of the partition's columns (its transition tables' rows).
core::Status FindTrackedForCapture(Oid relid, MemoryContext context, TableInfo* out, bool* found);
core::Status FindTrackedByName(const std::string& name, MemoryContext context, TableInfo* out, bool* found);
core::Status FindTrackedById(int32 tid, MemoryContext context, TableInfo* out, bool* found);

// The metadata key of a row: its primary key values in canonical form.
core::Status RowKey(const TableInfo& table, HeapTuple tuple, TupleDesc desc, std::string* key,
                    std::vector<core::Value>* values = nullptr);
core::Status RowKey(const TableInfo& table, TupleTableSlot* slot, std::string* key);
// The canonical JSON of the row's scope value ("" when the table has none).
std::string RowScope(const TableInfo& table, HeapTuple tuple, TupleDesc desc);
std::string RowScope(const TableInfo& table, TupleTableSlot* slot);

// Calls `each` with the metadata key and scope of every row of `source` (a
// quoted relation name with the table's columns: the table or one of its
// partitions), read in chunks through a cursor so that memory stays flat.
// Needs an SPI session; `each` may use it.
core::Status ForEachKey(const TableInfo& table, const std::string& source,
                        const std::function<core::Status(const std::string& key, const std::string& scope)>& each);

std::string QualifiedName(const TableInfo& table);
// schema.name of a relation, quoted.
std::string RelationName(Oid relid);
// "column OPERATOR(schema.=) value": the key column's own equality, named
// in full so that no search path decides which operator it is.
std::string KeyEquals(const ColumnType& column, const std::string& value);
std::string Quote(const std::string& identifier);
std::string QuoteLiteral(const std::string& literal);
// "expression + 1" on an int8 stamp or clock, saturating at the greatest
// (docs/protocol.md, "Stamps"): a row whose version is at the top still takes
// writes, rather than failing them with "bigint out of range".
std::string NextInt8(const std::string& expression);

}  // namespace syncline::pg
