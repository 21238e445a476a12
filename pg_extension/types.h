// PostgreSQL values <-> the core value model (docs/types.md).
#pragma once

#include <string>

#include "core/status.h"
#include "core/value.h"
#include "pg_extension/pg_headers.h"

namespace syncline::pg {

struct ColumnType {
  std::string name;       // column name
  Oid type = InvalidOid;  // declared type (maybe a domain)
  Oid base = InvalidOid;  // after domains
  int32 typmod = -1;
  int32 base_typmod = -1;
  bool not_null = false;
  Oid io_param = InvalidOid;
  FmgrInfo input;   // of the declared type: domain_in checks the domain's constraints
  FmgrInfo output;  // of the base type
};

// Fills in a column's type information (function lookups in `context`).
void LoadColumnType(Oid type, int32 typmod, MemoryContext context, ColumnType* out);

// A value as the changeset carries it. Text output of date/time types
// depends on DateStyle, IntervalStyle and TimeZone: callers pin them
// (the SQL functions through SET clauses, capture through CanonicalOutput).
core::Value DatumToValue(const ColumnType& column, Datum datum, bool isnull);

// A changeset value into the column's type. Values that do not convert are
// a Status naming the column; an input function's own error (bad syntax,
// a domain check) arrives as a PgError.
core::Status ValueToDatum(const ColumnType& column, const core::Value& value, Datum* out, bool* isnull);

// Whether a type's text form depends on session settings.
bool OutputDependsOnSettings(Oid base);

// Pins the settings text output depends on, for the life of the object.
class CanonicalOutput {
 public:
  CanonicalOutput();
  ~CanonicalOutput();

 private:
  int nest_level_;
};

}  // namespace syncline::pg
