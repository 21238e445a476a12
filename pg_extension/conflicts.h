// The server's conflict log and device identity (docs/protocol.md,
// "Conflicts" and "Device identity").
#pragma once

#include <string>

#include "core/changeset.h"
#include "core/merge.h"
#include "pg_extension/pg_headers.h"

namespace syncline::pg {

// A change apply_push refused on its own, as syncline.conflicts records it.
struct ConflictEntry {
  const std::string& device;  // the batch's source
  const std::string& role;    // the role that pushed it
  const core::Change* sent;
  const std::string& scope;  // canonical JSON, "" for none
  const core::Refusal* refusal;
};

// Inserts the entry in the apply's transaction; *plan is prepared on first use.
void LogConflict(const ConflictEntry& entry, SPIPlanPtr* plan);

// Binds the batch's source to the calling role on its first push; a push
// by another role under it is refused (superusers may push under any).
// Sets *role to the calling role's name.
core::Status BindSource(const std::string& source, std::string* role);

}  // namespace syncline::pg
