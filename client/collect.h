// Garbage collection on the device (docs/client.md, "Garbage collection").
// After each sync the client tells the server where this file's pulls have
// reached (syncline.device_seen, on the primary), and drops this file's
// tombstones once the server's collection has passed a point that covers
// them, so that no primary a failover may bring could lack what was dropped
// (the extension decides: syncline_gc_seen, docs/sqlite.md).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "client/connections.h"
#include "core/status.h"

namespace syncline::client {

// What a sync round leaves that the report needs.
struct PullPosition {
  std::string node;                   // this file's node id
  std::optional<std::string> cursor;  // the cursor of the last page this file applied
  std::string scope_json;             // empty: none
};

// Reports the position; collects what a checkpoint recorded earlier now
// covers, into *collected; records a new checkpoint. A server without
// garbage collection (extension 0.1) is left alone.
core::Status ReportAndCollect(LocalDb& local, Server& server, const PullPosition& position, std::int64_t* collected,
                              const std::function<void(const std::string&)>& log);

}  // namespace syncline::client
