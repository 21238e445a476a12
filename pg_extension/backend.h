// State of one backend: the clock, the apply flag, the capture cache.
#pragma once

#include <string>
#include <unordered_set>

#include "core/hlc.h"
#include "pg_extension/pg_headers.h"

namespace syncline::pg {

struct Backend {
  core::Hlc clock = 0;
  bool clock_loaded = false;
  int applying = 0;                                           // >0 while apply_push runs
  SubTransactionId applying_since = InvalidSubTransactionId;  // where the outermost apply began
  // The rows apply_push is writing, which capture leaves alone (they keep
  // their origin's versions); anything else their writes cause is captured.
  Oid applied_relid = InvalidOid;
  const std::unordered_set<std::string>* applied_keys = nullptr;
  // >0 while syncline installs or drops capture triggers itself: the event
  // triggers that follow partitions leave that DDL alone.
  int changing_triggers = 0;
};

Backend& backend();

// The next stamp for a local write (loads the saved clock on first use;
// needs an SPI session).
core::Hlc NextStamp();
void ReceiveStamp(core::Hlc remote);

// The span of an apply_push; reset when the transaction, or the
// subtransaction the apply began in, aborts, in case an error skipped the
// destructor.
class Applying {
 public:
  Applying() {
    if (++backend().applying == 1) backend().applying_since = GetCurrentSubTransactionId();
  }
  ~Applying() {
    if (backend().applying > 0) --backend().applying;
  }
};

// apply_push writing a set of rows of one table (merged changes: capture
// leaves them alone). A user's statement trigger fires once per set.
class ApplyingRows {
 public:
  ApplyingRows(Oid relid, const std::unordered_set<std::string>& keys) {
    backend().applied_relid = relid;
    backend().applied_keys = &keys;
  }
  ~ApplyingRows() {
    backend().applied_relid = InvalidOid;
    backend().applied_keys = nullptr;
  }
};

// syncline's own trigger DDL (track, untrack, following partitions).
class ChangingTriggers {
 public:
  ChangingTriggers() { ++backend().changing_triggers; }
  ~ChangingTriggers() {
    if (backend().changing_triggers > 0) --backend().changing_triggers;
  }
};

// Whether capture leaves this row alone.
inline bool BeingApplied(Oid relid, const std::string& key) {
  const Backend& state = backend();
  return state.applying > 0 && state.applied_keys != nullptr && state.applied_relid == relid &&
         state.applied_keys->count(key) > 0;
}

std::string LocalNodeId();  // needs an SPI session

// Refuses a write on a hot standby up front (`what`: where to do it instead),
// rather than with the first INSERT's "read-only transaction".
core::Status WritableServer(const char* what);

}  // namespace syncline::pg
