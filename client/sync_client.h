// The sync client: moves changes between a local SQLite file and the server
// (docs/client.md). Used by the `syncline` CLI; apps can link it directly.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "core/status.h"

namespace syncline::client {

struct Options {
  std::string server;  // libpq connection string; empty: the PG* environment variables
  // Where pulls go, when not to the server: a hot standby of it (libpq
  // connection string; docs/client.md, "Read servers"). Pushes, conflicts,
  // position reports and LISTEN stay on the server.
  std::string read_server;
  std::string db_path;    // the client's SQLite file
  std::string extension;  // path of the SQLite extension (build/syncline)
  std::string scope;      // --scope as given ("7", "acme"); empty: none / as cloned
  int page_size = 1000;
  // Progress lines (a page pulled or pushed) and log lines (retries); may be empty.
  std::function<void(const std::string&)> progress;
  std::function<void(const std::string&)> log;
};

struct Counts {
  std::int64_t pushed = 0;  // changes the server applied
  std::int64_t pulled = 0;  // changes this file applied
  std::int64_t pages = 0;
  // New entries in this file's conflict log (docs/client.md, "Conflicts"):
  // changes of this device the server refused, versions of the server's
  // this file could not store.
  std::int64_t conflicts = 0;
  bool push_deferred = false;  // the server asked to push later (a stamp ahead of its clock)
  // A file that follows the server's schema by hand (docs/client.md,
  // "Following the server's schema") and is behind it: the server's schema
  // version to migrate to; 0 otherwise.
  std::int64_t schema_due = 0;
  // The server had collected deletes past this file's cursor: the file was
  // rebuilt from the server's state (docs/client.md, "Resync").
  bool resynced = false;
  std::int64_t collected = 0;  // tombstones of this file collected (docs/client.md, "Garbage collection")
};

// First run on a new device: creates the server's tracked tables in an empty
// file (from the schema document of the first page), tracks them and pulls
// the full state in pages.
core::Status Clone(const Options& options, Counts* counts);

// One cycle: push this device's changes the server has not acknowledged,
// then pull the server's changes until none remain, following the server's
// schema where it changed.
core::Status Sync(const Options& options, Counts* counts);

struct WatchOptions {
  double interval_s = 30;  // sync local changes at least this often
  double max_backoff_s = 30;
};
// Keeps syncing: on the server's NOTIFY, every interval, and after a lost
// connection with exponential backoff and jitter, until `stop` is set.
core::Status Watch(const Options& options, const WatchOptions& watch, const std::atomic<bool>& stop);

// Node id, server, scope, pending local changes, open conflicts, last
// cursor, last sync; as text, or as a JSON object.
core::Status Describe(const Options& options, bool json, std::string* report);

// The open entries of this file's conflict log (all of them with `all`),
// as text lines or a JSON array.
core::Status ListConflicts(const Options& options, bool all, bool json, std::string* report);
// Marks an entry done.
core::Status ResolveConflict(const Options& options, std::int64_t id);

}  // namespace syncline::client
