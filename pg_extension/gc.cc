#include "pg_extension/gc.h"

#include "pg_extension/spi.h"

namespace syncline::pg {

bool ReadGcHorizon(std::string* position, Snapshot snapshot) {
  AsExtensionOwner owner;
  SPIPlanPtr plan = Prepare("SELECT value FROM syncline.meta WHERE key OPERATOR(pg_catalog.=) 'gc_horizon'", {});
  if (Execute(plan, nullptr, nullptr, true, 0, snapshot) == 0) return false;
  *position = ResultText(0, 1);
  return *position != "0.0";
}

core::Hlc ReadGcWatermark() {
  AsExtensionOwner owner;
  SPIPlanPtr plan =
      Prepare("SELECT value::pg_catalog.int8 FROM syncline.meta WHERE key OPERATOR(pg_catalog.=) 'gc_watermark'", {});
  // Not read-only: a snapshot taken now, after the versions the merge read.
  if (Execute(plan, nullptr, nullptr, false) == 0) return 0;
  return static_cast<core::Hlc>(ResultInt64(0, 1));
}

}  // namespace syncline::pg
