#include "pg_extension/pg_boundary.h"

#include <new>
#include <string>

extern "C" {
#include "utils/elog.h"
}

namespace syncline::pg {

using core::Code;

namespace {

int SqlState(Code code) {
  switch (code) {
    case Code::kOk: return ERRCODE_SUCCESSFUL_COMPLETION;
    case Code::kInvalidInput: return ERRCODE_INVALID_PARAMETER_VALUE;
    case Code::kUndefinedTable: return ERRCODE_UNDEFINED_TABLE;
    case Code::kUndefinedColumn: return ERRCODE_UNDEFINED_COLUMN;
    case Code::kTypeMismatch: return ERRCODE_DATATYPE_MISMATCH;
    case Code::kClockDrift: return ERRCODE_INVALID_PARAMETER_VALUE;
    case Code::kCorruptBatch: return ERRCODE_DATA_EXCEPTION;
    case Code::kConstraint: return ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION;
    case Code::kUnavailable: return ERRCODE_CONNECTION_FAILURE;
    case Code::kConflict: return ERRCODE_T_R_SERIALIZATION_FAILURE;
    case Code::kInternal: return ERRCODE_INTERNAL_ERROR;
  }
  return ERRCODE_INTERNAL_ERROR;
}

}  // namespace

void PrefixError(PgError& error, const std::string& prefix) {
  const char* message = error.data->message != nullptr ? error.data->message : "";
  error.data->message = psprintf("%s%s", prefix.c_str(), message);
}

Datum RunAtBoundary(FunctionCallInfo fcinfo, const char* name, FunctionBody body) {
  ErrorData* pg_error = nullptr;
  char* message = nullptr;
  // A C++ exception's text, copied without palloc: a PostgreSQL error must
  // not leave a catch handler.
  char internal[512] = "";
  int sqlstate = ERRCODE_INTERNAL_ERROR;
  Datum result = (Datum)0;
  try {
    core::Status status = body(fcinfo, &result);
    if (status.ok()) return result;
    // palloc may itself fail; that error then leaves from here, where the
    // only C++ object alive is `status`, whose leak is harmless.
    message = psprintf("%s: %s", name, status.message().c_str());
    sqlstate = SqlState(status.code());
  } catch (const PgError& error) {
    pg_error = error.data;
  } catch (const std::bad_alloc&) {
    sqlstate = ERRCODE_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    snprintf(internal, sizeof internal, "%s: internal error: %s", name, e.what());
  } catch (...) {
    snprintf(internal, sizeof internal, "%s: internal error", name);
  }
  // Outside every C++ scope of the call: raising now skips no destructor.
  if (pg_error != nullptr) ReThrowError(pg_error);
  if (sqlstate == ERRCODE_OUT_OF_MEMORY) ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
  ereport(ERROR, (errcode(sqlstate), errmsg_internal("%s", message != nullptr ? message : internal)));
  pg_unreachable();
}

}  // namespace syncline::pg
