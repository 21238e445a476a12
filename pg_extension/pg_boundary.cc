#include "pg_extension/pg_boundary.h"

#include <cstring>
#include <new>
#include <string>

extern "C" {
#include "utils/elog.h"
#include "utils/memutils.h"
}

namespace syncline::pg {

using core::Code;

namespace boundary {

MemoryContext error_memory = nullptr;
ErrorData* pending_error = nullptr;
SubTransactionId pending_since = InvalidSubTransactionId;  // where pending_error was raised

ErrorData* TakeError(MemoryContext current) {
  MemoryContextSwitchTo(error_memory != nullptr ? error_memory : current);
  ErrorData* error = CopyErrorData();
  FlushErrorState();
  MemoryContextSwitchTo(current);
  return error;
}

void ThrowPendingError() {
  ErrorData* error = pending_error;
  pending_error = nullptr;
  throw PgError(error);
}

void KeepPendingError(ErrorData* error) noexcept {
  // Outside every RunAtBoundary there is no one to raise it to.
  if (error_memory == nullptr) return;
  // The first error is the cause; later ones are its consequences.
  if (pending_error != nullptr) return;
  pending_error = error;
  pending_since = GetCurrentSubTransactionId();
}

void ForgetOnAbort(XactEvent event, void*) {
  if (event != XACT_EVENT_ABORT && event != XACT_EVENT_PARALLEL_ABORT) return;
  // No RunAtBoundary survives a top-level abort (it never raises from
  // inside one): nothing of its state is current.
  error_memory = nullptr;
  pending_error = nullptr;
}

void ForgetOnSubAbort(SubXactEvent event, SubTransactionId subid, SubTransactionId, void*) {
  if (event == SUBXACT_EVENT_ABORT_SUB && pending_error != nullptr && pending_since >= subid) pending_error = nullptr;
}

}  // namespace boundary

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
    case Code::kPermissionDenied: return ERRCODE_INSUFFICIENT_PRIVILEGE;
    case Code::kTooLarge: return ERRCODE_PROGRAM_LIMIT_EXCEEDED;
    case Code::kInternal: return ERRCODE_INTERNAL_ERROR;
  }
  return ERRCODE_INTERNAL_ERROR;
}

// Appends `text` to the string in `buffer` without allocating; what does not
// fit is cut off at a character boundary (the text is UTF-8).
void AppendClipped(char* buffer, std::size_t size, const char* text) {
  std::size_t used = strlen(buffer);
  std::size_t length = strlen(text);
  if (used + length >= size) {
    length = size - 1 - used;
    while (length > 0 && (static_cast<unsigned char>(text[length]) & 0xC0) == 0x80)
      --length;
  }
  memcpy(buffer + used, text, length);
  buffer[used + length] = '\0';
}

}  // namespace

void PrefixError(PgError& error, const std::string& prefix) { error.prefix.insert(0, prefix); }

Datum RunAtBoundary(FunctionCallInfo fcinfo, const char* name, FunctionBody body) {
  // A trigger that this function's SQL fires runs a RunAtBoundary of its
  // own: each keeps its own error state and gives the caller's back.
  MemoryContext outer_memory = boundary::error_memory;
  ErrorData* outer_pending = boundary::pending_error;
  boundary::error_memory = CurrentMemoryContext;
  boundary::pending_error = nullptr;

  Datum result = (Datum)0;
  bool ok = false;
  ErrorData* pg_error = nullptr;
  char* message = nullptr;  // a Status's, palloc'd
  char* detail = nullptr;
  char* hint = nullptr;
  // A PostgreSQL error's prefix, or a C++ exception's text, copied without
  // palloc: a PostgreSQL error must not leave a catch handler.
  char text[1024] = "";
  int sqlstate = ERRCODE_INTERNAL_ERROR;
  try {
    core::Status status = body(fcinfo, &result);
    if (status.ok()) {
      ok = true;
    } else {
      sqlstate = SqlState(status.code());
      const char* status_message = status.message().c_str();
      const char* status_detail = status.detail().empty() ? nullptr : status.detail().c_str();
      const char* status_hint = status.hint().empty() ? nullptr : status.hint().c_str();
      PgGuard([&] {
        message = psprintf("%s: %s", name, status_message);
        if (status_detail != nullptr) detail = pstrdup(status_detail);
        if (status_hint != nullptr) hint = pstrdup(status_hint);
      });
    }
  } catch (PgError& error) {
    pg_error = error.data;
    AppendClipped(text, sizeof text, error.prefix.c_str());
  } catch (const std::bad_alloc&) {
    sqlstate = ERRCODE_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    AppendClipped(text, sizeof text, name);
    AppendClipped(text, sizeof text, ": internal error: ");
    AppendClipped(text, sizeof text, e.what());
  } catch (...) {
    AppendClipped(text, sizeof text, name);
    AppendClipped(text, sizeof text, ": internal error");
  }
  // Outside every C++ scope of the call: raising now skips no destructor.
  ErrorData* pending = boundary::pending_error;
  boundary::error_memory = outer_memory;
  boundary::pending_error = outer_pending;
  if (ok && pending == nullptr) return result;
  if (ok) pg_error = pending;  // a destructor's error; one the body raised would come first
  if (pg_error != nullptr) {
    if (text[0] != '\0')
      pg_error->message = psprintf("%s%s", text, pg_error->message != nullptr ? pg_error->message : "");
    ReThrowError(pg_error);
  }
  if (sqlstate == ERRCODE_OUT_OF_MEMORY) ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
  ereport(ERROR, (errcode(sqlstate), errmsg("%s", message != nullptr ? message : text),
                  detail != nullptr ? errdetail("%s", detail) : 0, hint != nullptr ? errhint("%s", hint) : 0));
  pg_unreachable();
}

}  // namespace syncline::pg
