#include "pg_extension/spi.h"

extern "C" {
#include "catalog/pg_extension.h"
#include "commands/extension.h"
}

namespace syncline::pg {

namespace {

// The extension's owner, looked up again whenever pg_extension changed (DROP
// and CREATE EXTENSION by another role, in this session or another). Counted
// rather than flagged, so that a change that arrives while the lookup runs
// (opening pg_extension accepts invalidations) is not lost.
uint64 extension_changes = 1;
uint64 owner_looked_up_at = 0;
Oid extension_owner = InvalidOid;

Oid ExtensionOwner() {
  if (owner_looked_up_at != extension_changes) {
    uint64 changes = extension_changes;
    Oid owner = InvalidOid;
    PgGuard([&] {
      Oid extension = get_extension_oid("syncline", false);
      HeapTuple tuple = SearchSysCache1(EXTENSIONOID, ObjectIdGetDatum(extension));
      if (!HeapTupleIsValid(tuple)) elog(ERROR, "syncline: cache lookup failed for extension %u", extension);
      owner = ((Form_pg_extension)GETSTRUCT(tuple))->extowner;
      ReleaseSysCache(tuple);
    });
    extension_owner = owner;
    owner_looked_up_at = changes;
  }
  return extension_owner;
}

}  // namespace

void InvalidateExtensionOwner(Datum, int, uint32) { ++extension_changes; }

AsExtensionOwner::AsExtensionOwner() {
  Oid owner = ExtensionOwner();
  GetUserIdAndSecContext(&saved_user_, &saved_context_);
  SetUserIdAndSecContext(owner, saved_context_ | SECURITY_LOCAL_USERID_CHANGE);
}

AsExtensionOwner::~AsExtensionOwner() { SetUserIdAndSecContext(saved_user_, saved_context_); }

PinnedSearchPath::PinnedSearchPath() {
  PgGuard([&] {
    nest_level_ = NewGUCNestLevel();
    (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0,
                            false);
  });
}

// Runs while a PgError unwinds: AtEOXact_GUC runs the restored setting's
// assign hook, which is not promised never to raise.
PinnedSearchPath::~PinnedSearchPath() {
  int nest_level = nest_level_;
  PgGuardInDestructor([nest_level] { AtEOXact_GUC(true, nest_level); });
}

SPIPlanPtr Prepare(const std::string& sql, const std::vector<Oid>& types, bool keep) {
  SPIPlanPtr plan = nullptr;
  const char* text = sql.c_str();
  Oid* argtypes = const_cast<Oid*>(types.data());
  int nargs = static_cast<int>(types.size());
  PgGuard([&] {
    plan = SPI_prepare(text, nargs, argtypes);
    if (plan == nullptr) elog(ERROR, "syncline: SPI_prepare failed (%s): %s", SPI_result_code_string(SPI_result), text);
    if (keep) SPI_keepplan(plan);
  });
  return plan;
}

uint64 Execute(SPIPlanPtr plan, Datum* values, const char* nulls, bool read_only, long limit, Snapshot snapshot) {
  uint64 processed = 0;
  PgGuard([&] {
    int rc = snapshot != InvalidSnapshot
                 ? SPI_execute_snapshot(plan, values, nulls, snapshot, InvalidSnapshot, read_only, false, limit)
                 : SPI_execute_plan(plan, values, nulls, read_only, limit);
    if (rc < 0) elog(ERROR, "syncline: SPI execution failed: %s", SPI_result_code_string(rc));
    processed = SPI_processed;
  });
  return processed;
}

uint64 ExecuteSql(const std::string& sql, bool read_only) {
  uint64 processed = 0;
  const char* text = sql.c_str();
  PgGuard([&] {
    int rc = SPI_execute(text, read_only, 0);
    if (rc < 0) elog(ERROR, "syncline: SPI execution failed: %s", SPI_result_code_string(rc));
    processed = SPI_processed;
  });
  return processed;
}

Datum ResultDatum(uint64 row, int column, bool* isnull) {
  Datum value = (Datum)0;
  PgGuard([&] { value = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, column, isnull); });
  return value;
}

int64 ResultInt64(uint64 row, int column) {
  bool isnull = false;
  Datum value = ResultDatum(row, column, &isnull);
  if (isnull) return 0;
  Oid type = SPI_gettypeid(SPI_tuptable->tupdesc, column);
  if (type == INT4OID) return DatumGetInt32(value);
  if (type == INT2OID) return DatumGetInt16(value);
  return DatumGetInt64(value);
}

std::string ResultText(uint64 row, int column) {
  char* text = nullptr;
  PgGuard([&] { text = SPI_getvalue(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, column); });
  return text == nullptr ? std::string() : std::string(text);
}

std::string ResultBytes(uint64 row, int column) {
  const char* data = nullptr;
  int size = 0;
  PgGuard([&] {
    bool isnull = false;
    Datum datum = SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, column, &isnull);
    if (isnull) return;
    struct varlena* bytes = PG_DETOAST_DATUM_PACKED(datum);
    data = VARDATA_ANY(bytes);
    size = static_cast<int>(VARSIZE_ANY_EXHDR(bytes));
  });
  return data == nullptr ? std::string() : std::string(data, static_cast<std::size_t>(size));
}

Datum ByteaDatum(const std::string& bytes) {
  Datum result = (Datum)0;
  const char* data = bytes.data();
  const int size = static_cast<int>(bytes.size());
  PgGuard([&] {
    bytea* value = static_cast<bytea*>(palloc(size + VARHDRSZ));
    SET_VARSIZE(value, size + VARHDRSZ);
    memcpy(VARDATA(value), data, size);
    result = PointerGetDatum(value);
  });
  return result;
}

Datum TextDatum(const std::string& text) {
  Datum result = (Datum)0;
  const char* data = text.data();
  int size = static_cast<int>(text.size());
  PgGuard([&] { result = PointerGetDatum(cstring_to_text_with_len(data, size)); });
  return result;
}

std::string JsonbText(Datum jsonb) {
  char* text = nullptr;
  PgGuard([&] { text = DatumGetCString(DirectFunctionCall1(jsonb_out, jsonb)); });
  return text;
}

Datum JsonbFromText(const std::string& text) {
  Datum result = (Datum)0;
  const char* cstring = text.c_str();
  PgGuard([&] { result = DirectFunctionCall1(jsonb_in, CStringGetDatum(cstring)); });
  return result;
}

}  // namespace syncline::pg
