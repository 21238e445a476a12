// The sync loop's decisions, kept in the extension so that every client
// (the C++ one over libpq, the JavaScript one over HTTP) is a thin driver
// of one loop (docs/sync-loop.md). The driver does the I/O:
// it asks what to send, sends it, and reports the server's answer.
//
// Pushing:
//   syncline_push_begin(acked, options)  the server's acknowledgement of
//                                        this device's pushes starts a push
//   syncline_push_page()                 the next page to send (a batch), or
//                                        NULL when nothing is left
//   syncline_push_answer(summary, sqlstate, message)
//                                        the server's answer to that page:
//                                        what to do next, as JSON
// Pulling:
//   syncline_pull_begin(server, options) the first request to send
//   syncline_pull_next(page)             the request for the page after this
//                                        one (sent before applying it), or NULL
//   syncline_pull_apply(page)            applies it; says whether to commit now
//   syncline_pull_cursor(server, options) the cursor of the file's usual pulls
#pragma once

#include <optional>
#include <string>

#include "core/json.h"
#include "core/status.h"
#include "sqlite_extension/state.h"

namespace syncline::sqlite {

// The "page_size" of begin's options (changes a page: a whole number from 1).
core::Status PageSizeOption(const core::Json& options, std::int64_t* page_size);

// options: {"page_size": N} (changes a page; 1000 when absent).
core::Status PushBegin(ConnectionState& state, const std::optional<std::string>& acked, const std::string& options);

// The next page, or nullopt when the server has acknowledged everything
// (then its acknowledgement is recorded: syncline_push_acked).
core::Status PushPage(ConnectionState& state, std::optional<std::string>* batch);

// The answer to the page sent last: the apply summary, or the error the
// server raised (its SQLSTATE and message). Returns
//   {"action": "next"|"done"|"merge"|"retry"|"deferred"|"failed",
//    "applied": n, "log": "...", "prefix": "..."}
// next/done: the page was applied (its cursor is now the acknowledgement);
// merge: the page needs rows of the next one, send the bigger page that
// syncline_push_page now cuts; retry: send the same page again (a
// serialization failure or deadlock); deferred: the server takes the push
// later (a stamp ahead of its clock), stop pushing for now; failed: stop,
// report the server's error with "prefix" before it. "log" says what
// happened, for the driver's log, when there is something to say.
core::Status PushAnswer(ConnectionState& state, const std::optional<std::string>& summary, const std::string& sqlstate,
                        const std::string& message, std::string* decision);

// The cursor of this device's last push the server acknowledged (NULL before
// the first).
core::Status PushAcked(ConnectionState& state, std::optional<std::string>* acked);

// options: {"scope": JSON value (absent: none), "page_size": N, "resync":
// bool, "legacy_schema": bool (a server without schema versions)}. Returns
// {"cursor": text|null, "limit": N, "options": text}: the arguments of the
// server's pull_since. A resync pulls from the beginning, this file's own
// changes too (docs/client.md, "Resync").
core::Status PullBegin(ConnectionState& state, const std::string& server_node, const std::string& options,
                       std::string* request);

// The request for the page after `page` (the file's schema version as it
// stands, which an earlier page may have moved), or nullopt after the last.
core::Status PullNext(ConnectionState& state, const std::string& page, std::optional<std::string>* request);

// Applies a page of the pull in the driver's transaction. Returns
// {"summary": apply_push's, "commit": bool, "last": bool, "retried": n,
//  "resync": {"candidates": n} on a resync's first page, {"removed", ...}
//  on its last}. "commit": commit now (every 50,000 changes or second, and
// at the end; a resync only at the end); the versions skipped earlier have
// been tried again, and a resync's end is done.
core::Status PullApply(ConnectionState& state, const std::string& page, std::string* result);

// The cursor of the file's usual pulls from `server_node` (options: {"scope"}).
core::Status PullCursor(ConnectionState& state, const std::string& server_node, const std::string& options,
                        std::optional<std::string>* cursor);

// The SQL functions over the above (sync_loop_sql.cc), registered by
// extension.cc: syncline_push_*, syncline_pull_*, syncline_gc_seen.
core::Status SqlPushBegin(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv);
core::Status SqlPushPage(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv);
core::Status SqlPushAnswer(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv);
core::Status SqlPushAcked(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv);
core::Status SqlPullBegin(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv);
core::Status SqlPullNext(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv);
core::Status SqlPullApply(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv);
core::Status SqlPullCursor(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv);
core::Status SqlGcSeen(ConnectionState& state, sqlite3_context* ctx, int argc, sqlite3_value** argv);

}  // namespace syncline::sqlite
