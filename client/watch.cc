// sync --watch (docs/client.md, "sync --watch"): a sync on the server's
// NOTIFY, every interval, and after a lost server with backoff.
#include <poll.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <thread>

#include "client/connections.h"
#include "client/sync_client.h"

namespace syncline::client {

using core::Code;
using core::Status;

namespace {

// Worth another try after a pause: the server is away, a read server has
// not replayed far enough yet, or a recovery conflict cancelled a pull.
bool Transient(const Status& status) {
  return status.code() == Code::kUnavailable || status.code() == Code::kNotYet || status.code() == Code::kConflict;
}

}  // namespace

Status Watch(const Options& options, const WatchOptions& watch, const std::atomic<bool>& stop) {
  auto log = [&](const std::string& line) {
    if (options.log) options.log(line);
  };
  std::mt19937_64 random(std::random_device{}());
  int failures = 0;
  while (!stop) {
    Server listener;
    Status status = listener.Connect(options.server);
    std::optional<std::string> ignored;
    if (status.ok()) status = listener.Text("LISTEN syncline", {}, &ignored);
    auto last_sync = std::chrono::steady_clock::now();
    bool due = true;
    while (status.ok() && !stop) {
      if (due) {
        Counts counts;
        status = Sync(options, &counts);
        if (!status.ok()) break;
        failures = 0;
        last_sync = std::chrono::steady_clock::now();
        if (counts.pushed > 0 || counts.pulled > 0)
          log("synced: pushed " + std::to_string(counts.pushed) + ", pulled " + std::to_string(counts.pulled));
        due = false;
      }
      // Wait for a notification, at most a second at a time so that a stop
      // request and the interval are noticed promptly.
      pollfd fd{PQsocket(listener.handle()), POLLIN, 0};
      int ready = poll(&fd, 1, 1000);
      if (ready < 0 && errno != EINTR) break;
      if (ready > 0 && !PQconsumeInput(listener.handle())) {
        status = Status(Code::kUnavailable, "lost the server connection");
        break;
      }
      while (PGnotify* notify = PQnotifies(listener.handle())) {
        due = true;
        PQfreemem(notify);
      }
      if (PQstatus(listener.handle()) != CONNECTION_OK)
        status = Status(Code::kUnavailable, "lost the server connection");
      std::chrono::duration<double> since = std::chrono::steady_clock::now() - last_sync;
      if (since.count() >= watch.interval_s) due = true;
    }
    if (stop) break;
    if (!status.ok() && !Transient(status)) return status;
    // Exponential backoff with jitter, so that many clients do not return
    // to a recovering server in step.
    ++failures;
    double delay = std::min(watch.max_backoff_s, 0.5 * std::pow(2.0, std::min(failures - 1, 10)));
    delay *= std::uniform_real_distribution<double>(0.5, 1.5)(random);
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.1f", delay);
    log("retry " + std::to_string(failures) + " in " + seconds + " s: " + status.message());
    auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(delay);
    while (!stop && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return Status::Ok();
}

}  // namespace syncline::client
