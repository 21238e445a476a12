// The sync loop's decisions, kept in the extension so that every client
// (the C++ one over libpq, the JavaScript one over HTTP) is a thin driver
// of one loop (docs/sqlite.md, "The sync loop"). The driver does the I/O:
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
#pragma once

#include <optional>
#include <string>

#include "core/status.h"
#include "sqlite_extension/state.h"

namespace syncline::sqlite {

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

}  // namespace syncline::sqlite
