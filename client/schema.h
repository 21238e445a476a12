// Following the server's schema, the client's part (docs/client.md,
// "Following the server's schema"): the extension follows a page's schema
// document itself; the client handles servers without schema versions and
// says what changed, or what migration is due.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "client/connections.h"
#include "core/status.h"

namespace syncline::client {

using Log = std::function<void(const std::string&)>;

// A file that follows the server's schema by hand and is behind it: sets
// *schema_due to the server's version and logs what to do, at every sync
// until the app has migrated. Not an error: pages the old schema can hold
// still apply.
core::Status CheckSchemaDue(LocalDb& local, std::int64_t* schema_due, const Log& log);

// A server without schema versions (0.1): the file takes the tables and
// columns it lacks from syncline.tracked_tables, as a document without a
// version (which the extension follows additively).
core::Status FollowTableDescriptions(LocalDb& local, Server& server, const Log& log);

// Logs what following the server's schema changed in this file (an apply
// summary's "schema").
void LogSchemaChanges(const std::string& summary, const Log& log);

// A page this file could not apply, from a server whose schema this file
// follows by hand and lacks: the error says which migration is due.
core::Status ExplainRefusedPage(LocalDb& local, core::Status status, const std::string& batch);

}  // namespace syncline::client
