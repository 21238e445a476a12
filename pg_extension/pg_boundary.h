// The C++/PostgreSQL boundary (STYLE.md, after pg_duckdb). Two rules:
//
// 1. A PostgreSQL error (a longjmp) must never skip a C++ destructor. Every
//    call into PostgreSQL that may raise an error goes through PgGuard, which
//    catches the error right there, below every C++ object it must protect,
//    and turns it into a PgError exception. The guarded lambda may hold only
//    trivially destructible locals and must not throw: it only calls
//    PostgreSQL and stores plain pointers or scalars (no std::string).
// 2. A C++ exception must never reach PostgreSQL. Every SQL-callable function
//    runs through RunAtBoundary, which catches everything, leaves the catch
//    scope (so all C++ objects are gone) and only then raises the PostgreSQL
//    error. Nothing pallocs inside a catch handler: a failure would longjmp
//    out of it.
//
// A caught PostgreSQL error is copied into the memory context the SQL
// function was called in, not the current one: that may be an SPI session's,
// which SPI_finish frees while the exception unwinds to RunAtBoundary.
#pragma once

extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
}

#include <string>
#include <utility>

#include "core/status.h"

namespace syncline::pg {

// A PostgreSQL error in flight, copied out of the error state. Throwing one
// allocates nothing but the exception object (`prefix` starts empty).
struct PgError {
  explicit PgError(ErrorData* error) noexcept : data(error) {}
  ErrorData* data;     // in boundary::error_memory: outlives the SPI sessions it unwinds through
  std::string prefix;  // prepended to the message when RunAtBoundary raises it
};

namespace boundary {
// State of the innermost RunAtBoundary on the stack (null outside any).
extern MemoryContext error_memory;  // the context the SQL function was called in
extern ErrorData* pending_error;    // an error a destructor caught (PgGuardInDestructor)

// Copies the error in flight out of PostgreSQL's error state and clears it.
ErrorData* TakeError(MemoryContext current);
[[noreturn]] void ThrowPendingError();
void KeepPendingError(ErrorData* error) noexcept;
// The (sub)transaction callbacks _PG_init registers: a rollback cleans up
// after the errors raised inside it, so a kept one is forgotten (a body may
// catch a PgError, roll back a subtransaction and carry on).
void ForgetOnAbort(XactEvent event, void* arg);
void ForgetOnSubAbort(SubXactEvent event, SubTransactionId subid, SubTransactionId parent, void* arg);
}  // namespace boundary

// Runs a call into PostgreSQL and returns the error it raised, copied into
// the caller's memory context, or null. The call is guarded right here, below
// every C++ object its callers hold.
template <typename F> ErrorData* CatchPgError(F&& call) noexcept {
  MemoryContext context = CurrentMemoryContext;
  ErrorData* volatile error = nullptr;
  PG_TRY();
  { call(); }
  PG_CATCH();
  { error = boundary::TakeError(context); }
  PG_END_TRY();
  return error;
}

template <typename F> void PgGuard(F&& call) {
  // After a destructor swallowed an error, PostgreSQL is not called again
  // until that error has been raised (the transaction is failing).
  if (boundary::pending_error != nullptr) boundary::ThrowPendingError();
  if (ErrorData* error = CatchPgError(call)) throw PgError(error);
}

// PgGuard for a destructor, which may run while a C++ exception unwinds and
// so must neither throw nor longjmp. An error the call raises is kept, not
// raised: the next PgGuard throws it, or else RunAtBoundary raises it when
// the function returns; if another error is on its way already, that one is
// reported and this one dropped (the transaction fails either way).
template <typename F> void PgGuardInDestructor(F&& call) noexcept {
  if (ErrorData* error = CatchPgError(call)) boundary::KeepPendingError(error);
}

// Prefixes the message of an error in flight, e.g. with the change at fault.
// Allocates no PostgreSQL memory (callers run it in a catch handler, which a
// palloc failure would longjmp out of): RunAtBoundary applies the prefix.
void PrefixError(PgError& error, const std::string& prefix);

// The SQLSTATE a Status is raised with (an ERRCODE_ value).
int SqlState(core::Code code);

// The body of a SQL-callable function: returns a Status and sets *result.
using FunctionBody = core::Status (*)(FunctionCallInfo fcinfo, Datum* result);

Datum RunAtBoundary(FunctionCallInfo fcinfo, const char* name, FunctionBody body);

}  // namespace syncline::pg

// Defines the C entry point `syncline_<name>` of a SQL function.
#define SYNCLINE_PG_FUNCTION(c_name, sql_name, body)                                                                   \
  extern "C" {                                                                                                         \
  PG_FUNCTION_INFO_V1(c_name);                                                                                         \
  Datum c_name(PG_FUNCTION_ARGS) { return syncline::pg::RunAtBoundary(fcinfo, sql_name, body); }                       \
  }
