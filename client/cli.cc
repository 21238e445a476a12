// syncline: the command-line client (docs/client.md).
//
// Exit codes: 0 success; 1 the sync failed (bad data, a refused batch, a
// local database error); 2 usage; 3 the server cannot be reached.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "client/sync_client.h"

namespace {

using syncline::client::Options;
using syncline::core::Code;
using syncline::core::Status;

constexpr int kExitFailed = 1, kExitUsage = 2, kExitUnavailable = 3;

const char* kUsage = R"(usage: syncline COMMAND [OPTIONS]

Offline-first sync between a local SQLite file and a PostgreSQL server that
runs the syncline extension.

commands:
  clone   --db FILE [--server CONNINFO] [--read-server CONNINFO] [--scope VALUE]
          First run on a new device: create the server's tracked tables in a
          new file, track them and pull the full state in pages.
  sync    --db FILE [--server CONNINFO] [--read-server CONNINFO] [--scope VALUE]
          [--watch [--interval SECONDS]]
          Push this device's changes, then pull the server's, until none remain;
          the file follows the server's schema changes (docs/client.md).
          --watch keeps running: syncs within a second of a server change
          (LISTEN), every --interval seconds (default 30), and retries a lost
          server with exponential backoff; stops cleanly on SIGINT/SIGTERM.
  status  --db FILE [--json]
          Node id, server, scope, pending local changes, open conflicts, last
          cursor, last sync, garbage collection.
  conflicts --db FILE [--all] [--json] [--resolve ID]
          This file's conflict log: changes of this device the server refused,
          and versions of the server's this file could not store (open ones;
          --all: resolved too). --resolve marks an entry done.

options:
  --server CONNINFO   libpq connection string or URI ("host=... dbname=...",
                      "postgresql://..."); default: the PG* environment variables
  --read-server CONNINFO
                      pull from this hot standby of the server instead; pushes
                      and LISTEN stay on --server (docs/client.md, "Read servers")
  --db FILE           the client's SQLite file
  --scope VALUE       sync only that scope (e.g. an organisation id); fixed at clone
  --page N            changes per page (default 1000)
  --extension PATH    the SQLite extension (default: $SYNCLINE_EXTENSION, or
                      syncline.so beside this program's directory)
  --json              machine-readable output (sync, status, conflicts)
  -q, --quiet         no progress lines
  -h, --help          this text

exit codes: 0 ok (also when the only news is conflicts: they are logged and
counted), 1 sync failed, 2 usage, 3 server unreachable
)";

std::atomic<bool> stop_requested{false};
void RequestStop(int) { stop_requested = true; }

std::string DefaultExtension() {
  if (const char* env = std::getenv("SYNCLINE_EXTENSION")) return env;
  char path[4096];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  if (n > 0) {
    std::string exe(path, static_cast<std::size_t>(n));
    std::string dir = exe.substr(0, exe.rfind('/'));     // build/bin
    std::string parent = dir.substr(0, dir.rfind('/'));  // build
    for (const std::string& candidate : {dir + "/syncline.so", parent + "/syncline.so"}) {
      if (access(candidate.c_str(), R_OK) == 0) return candidate;
    }
  }
  return "syncline";  // the dynamic linker's search path
}

int Fail(const Status& status) {
  std::cerr << "syncline: " << status.message() << "\n";
  return status.code() == Code::kUnavailable ? kExitUnavailable : kExitFailed;
}

int Usage(const std::string& problem) {
  std::cerr << "syncline: " << problem << "\n(see syncline --help)\n";
  return kExitUsage;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) return Usage("missing command");
  for (const std::string& arg : args) {
    if (arg == "-h" || arg == "--help" || arg == "help") {
      std::cout << kUsage;
      return 0;
    }
  }
  const std::string command = args[0];
  if (command != "clone" && command != "sync" && command != "status" && command != "conflicts")
    return Usage("unknown command \"" + command + "\"");

  Options options;
  options.extension = DefaultExtension();
  bool watch = false, quiet = false, json = false, all = false;
  long long resolve = 0;
  syncline::client::WatchOptions watch_options;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string& arg = args[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= args.size()) return false;
      *out = args[++i];
      return true;
    };
    std::string number;
    if (arg == "--server") {
      if (!value(&options.server)) return Usage("--server needs a connection string");
    } else if (arg == "--read-server" && (command == "clone" || command == "sync")) {
      if (!value(&options.read_server)) return Usage("--read-server needs a connection string");
    } else if (arg == "--db") {
      if (!value(&options.db_path)) return Usage("--db needs a file");
    } else if (arg == "--scope") {
      if (!value(&options.scope) || options.scope.empty()) return Usage("--scope needs a value");
    } else if (arg == "--extension") {
      if (!value(&options.extension)) return Usage("--extension needs a path");
    } else if (arg == "--page") {
      if (!value(&number) || (options.page_size = std::atoi(number.c_str())) < 1) return Usage("--page needs N >= 1");
    } else if (arg == "--interval") {
      if (!value(&number) || (watch_options.interval_s = std::atof(number.c_str())) <= 0)
        return Usage("--interval needs seconds > 0");
    } else if (arg == "--watch" && command == "sync") {
      watch = true;
    } else if (arg == "--json" && command != "clone") {
      json = true;
    } else if (arg == "--all" && command == "conflicts") {
      all = true;
    } else if (arg == "--resolve" && command == "conflicts") {
      if (!value(&number) || (resolve = std::atoll(number.c_str())) < 1) return Usage("--resolve needs an entry id");
    } else if (arg == "-q" || arg == "--quiet") {
      quiet = true;
    } else {
      return Usage("unknown option \"" + arg + "\" for " + command);
    }
  }
  if (options.db_path.empty()) return Usage("--db FILE is required");

  // Progress on a terminal rewrites one line; elsewhere nothing.
  bool terminal = isatty(STDERR_FILENO) && !quiet;
  bool progressed = false;
  if (terminal) {
    options.progress = [&](const std::string& line) {
      std::fprintf(stderr, "\r\033[K%s", line.c_str());
      progressed = true;
    };
  }
  options.log = [&](const std::string& line) {
    if (progressed) std::fputc('\n', stderr);
    progressed = false;
    std::fprintf(stderr, "syncline: %s\n", line.c_str());
  };
  auto end_progress = [&] {
    if (progressed) std::fputc('\n', stderr);
    progressed = false;
  };

  Status status;
  syncline::client::Counts counts;
  if (command == "status") {
    std::string report;
    status = syncline::client::Describe(options, json, &report);
    if (status.ok()) std::cout << report;
  } else if (command == "conflicts") {
    std::string report;
    if (resolve > 0) status = syncline::client::ResolveConflict(options, resolve);
    if (status.ok()) status = syncline::client::ListConflicts(options, all, json, &report);
    if (status.ok()) std::cout << report;
  } else if (command == "clone") {
    status = syncline::client::Clone(options, &counts);
    end_progress();
    if (status.ok()) std::cout << "cloned: " << counts.pulled << " changes in " << counts.pages << " pages\n";
  } else if (watch) {
    std::signal(SIGINT, RequestStop);
    std::signal(SIGTERM, RequestStop);
    status = syncline::client::Watch(options, watch_options, stop_requested);
    end_progress();
    if (status.ok()) std::cout << "stopped\n";
  } else {
    status = syncline::client::Sync(options, &counts);
    end_progress();
    if (status.ok() && json) {
      std::cout << "{\"pushed\":" << counts.pushed << ",\"pulled\":" << counts.pulled
                << ",\"conflicts\":" << counts.conflicts
                << ",\"push_deferred\":" << (counts.push_deferred ? "true" : "false");
      if (counts.schema_due > 0) std::cout << ",\"schema_due\":" << counts.schema_due;
      std::cout << ",\"resynced\":" << (counts.resynced ? "true" : "false") << ",\"collected\":" << counts.collected
                << "}\n";
    } else if (status.ok()) {
      std::cout << "synced: pushed " << counts.pushed << ", pulled " << counts.pulled;
      if (counts.conflicts > 0)
        std::cout << ", " << counts.conflicts << " new conflict" << (counts.conflicts > 1 ? "s" : "")
                  << " (syncline conflicts --db " << options.db_path << ")";
      if (counts.push_deferred) std::cout << " (push deferred: see above)";
      if (counts.schema_due > 0)
        std::cout << " (schema migration to version " << counts.schema_due << " due: see above)";
      if (counts.resynced) std::cout << " (resynced from the server's state)";
      std::cout << "\n";
    }
  }
  return status.ok() ? 0 : Fail(status);
}
