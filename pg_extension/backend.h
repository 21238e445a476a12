// State of one backend: the clock, the apply flag, the capture cache.
#pragma once

#include <string>

#include "core/hlc.h"
#include "pg_extension/pg_headers.h"

namespace syncline::pg {

struct Backend {
  core::Hlc clock = 0;
  bool clock_loaded = false;
  int applying = 0;                                           // >0 while apply_push writes user tables: capture is off
  SubTransactionId applying_since = InvalidSubTransactionId;  // where the outermost apply began
};

Backend& backend();

// The next stamp for a local write (loads the saved clock on first use;
// needs an SPI session).
core::Hlc NextStamp();
void ReceiveStamp(core::Hlc remote);

// Capture stays off while apply_push writes; reset when the transaction, or
// the subtransaction the apply began in, aborts, in case an error skipped
// the destructor.
class CaptureOff {
 public:
  CaptureOff() {
    if (++backend().applying == 1) backend().applying_since = GetCurrentSubTransactionId();
  }
  ~CaptureOff() {
    if (backend().applying > 0) --backend().applying;
  }
};

std::string LocalNodeId();  // needs an SPI session

}  // namespace syncline::pg
