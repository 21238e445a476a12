// State of one backend: the clock, the apply flag, the capture cache.
#pragma once

#include <string>

#include "core/hlc.h"
#include "pg_extension/pg_headers.h"

namespace syncline::pg {

struct Backend {
  core::Hlc clock = 0;
  bool clock_loaded = false;
  int applying = 0;                                           // >0 while apply_push runs
  SubTransactionId applying_since = InvalidSubTransactionId;  // where the outermost apply began
  // The row apply_push is writing, which capture leaves alone (it keeps its
  // origin's version); anything else its write causes is captured.
  Oid applied_relid = InvalidOid;
  const std::string* applied_key = nullptr;
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

// apply_push writing one row (a merged change: capture leaves it alone).
class ApplyingRow {
 public:
  ApplyingRow(Oid relid, const std::string& key) {
    backend().applied_relid = relid;
    backend().applied_key = &key;
  }
  ~ApplyingRow() {
    backend().applied_relid = InvalidOid;
    backend().applied_key = nullptr;
  }
};

// Whether capture leaves this row alone.
inline bool BeingApplied(Oid relid, const std::string& key) {
  const Backend& state = backend();
  return state.applying > 0 && state.applied_key != nullptr && state.applied_relid == relid &&
         *state.applied_key == key;
}

std::string LocalNodeId();  // needs an SPI session

}  // namespace syncline::pg
