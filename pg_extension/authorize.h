// Tables' authorisation hooks (docs/security.md): pulls and applies call
// them as the caller, once per function and scope value.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>

#include "core/status.h"
#include "pg_extension/pg_headers.h"

namespace syncline::pg {

class Authorizer {
 public:
  explicit Authorizer(Snapshot snapshot = InvalidSnapshot) : snapshot_(snapshot) {}

  // A NULL scope (a tombstone of a row never seen here) is never authorised.
  core::Status Allowed(const std::string& function, const std::optional<std::string>& scope, bool* allowed);

 private:
  Snapshot snapshot_;
  std::map<std::pair<std::string, std::string>, bool> cache_;
};

}  // namespace syncline::pg
