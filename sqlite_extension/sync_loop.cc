#include "sqlite_extension/sync_loop.h"

#include <algorithm>
#include <cstdint>

#include "core/changeset.h"
#include "core/json.h"
#include "sqlite_extension/sync.h"

namespace syncline::sqlite {

using core::Code;
using core::Status;

namespace {

constexpr const char* kAckedKey = "acked_push";

// A page that met a concurrent write on the server is applied again, this
// often, before the push gives up.
constexpr int kConflictRetries = 3;

Status NotBegun() {
  return Status(Code::kInvalidInput, "no push in progress").WithHint("Call syncline_push_begin first.");
}

std::string Decision(const char* action, std::int64_t applied, const std::string& log, const std::string& prefix = "") {
  std::string out;
  core::JsonWriter writer(&out);
  writer.BeginObject();
  writer.Key("action");
  writer.String(action);
  writer.Key("applied");
  writer.Int(applied);
  if (!log.empty()) {
    writer.Key("log");
    writer.String(log);
  }
  if (!prefix.empty()) {
    writer.Key("prefix");
    writer.String(prefix);
  }
  writer.EndObject();
  return out;
}

Status RecordAcked(ConnectionState& state, const std::string& cursor) {
  state.push.has_acked = true;
  state.push.acked = cursor;
  return WriteMeta(state.db, kAckedKey, cursor);
}

// The next page is cut as the first was.
void ResetCut(PushState& push) {
  push.limit = push.page_size;
  push.max_bytes = 0;
  push.merged_from = 0;
  push.retries = 0;
}

}  // namespace

Status PageSizeOption(const core::Json& options, std::int64_t* page_size) {
  const core::Json* size = options.Find("page_size");
  if (size == nullptr) return Status::Ok();
  if (!size->is_number() || size->text.find_first_not_of("0123456789") != std::string::npos || size->text.size() > 9 ||
      std::stoll(size->text) < 1)
    return Status(Code::kInvalidInput, "page_size must be a whole number from 1");
  *page_size = std::stoll(size->text);
  return Status::Ok();
}

Status PushBegin(ConnectionState& state, const std::optional<std::string>& acked, const std::string& options) {
  PushState push;
  if (!options.empty()) {
    core::Json json;
    Status status = core::ParseJson(options, &json);
    if (!status.ok() || !json.is_object()) return Status(Code::kInvalidInput, "options must be a JSON object");
    status = PageSizeOption(json, &push.page_size);
    if (!status.ok()) return status;
  }
  push.active = true;
  push.has_acked = acked.has_value();
  push.acked = acked.value_or("");
  ResetCut(push);
  state.push = push;
  return Status::Ok();
}

Status PushPage(ConnectionState& state, std::optional<std::string>* batch) {
  PushState& push = state.push;
  if (!push.active) return NotBegun();
  std::string options = R"({"origin":"local")";
  if (push.max_bytes > 0) options += R"(,"max_bytes":)" + std::to_string(push.max_bytes);
  bool columns = false;
  Status status = HasColumnMergeTables(state.db, &columns);
  if (!status.ok()) return status;
  if (columns) options += R"(,"format":2)";
  options += "}";
  std::string text;
  std::optional<std::string> after;
  if (push.has_acked) after = push.acked;
  status = PullSince(state, after, push.limit, options, &text);
  core::BatchHeader page;
  if (status.ok()) status = core::ReadBatchHeader(text, &page);
  if (!status.ok()) return status.WithPrefix("push: ");
  // Nothing new: the server's acknowledgement is the truth, also when this
  // file missed it (a reply lost to a crash). A device that never pushed
  // sends its empty page once, which the server records as its first.
  if (page.changes == 0 && push.has_acked && page.cursor == push.acked) {
    push.active = false;
    batch->reset();
    return RecordAcked(state, push.acked);
  }
  push.sent = true;
  push.changes = page.changes;
  push.cursor = page.cursor;
  push.has_more = page.has_more;
  *batch = std::move(text);
  return Status::Ok();
}

Status PushAnswer(ConnectionState& state, const std::optional<std::string>& summary, const std::string& sqlstate,
                  const std::string& message, std::string* decision) {
  PushState& push = state.push;
  if (!push.active || !push.sent) return NotBegun().WithPrefix("an answer with no page sent: ");
  push.sent = false;
  if (summary) {
    std::int64_t applied = 0;
    core::Json json;
    if (core::ParseJson(*summary, &json).ok() && json.is_object()) {
      const core::Json* count = json.Find("applied");
      if (count != nullptr && count->is_number()) applied = std::stoll(count->text);
    }
    Status status = RecordAcked(state, push.cursor);
    if (!status.ok()) return status;
    ResetCut(push);
    push.active = push.has_more;
    *decision = Decision(push.has_more ? "next" : "done", applied, "");
    return Status::Ok();
  }
  // A constraint may hold once a later page is in the same batch (a parent
  // that comes later, a UNIQUE value a later change frees): the server
  // refuses a page with more to come whole, rather than refuse the change
  // for good. Retry with the pages merged, up to the largest batch; in the
  // last page a change still refused is refused on its own.
  const bool constraint = sqlstate.compare(0, 2, "23") == 0 || sqlstate == "P0001";
  if (constraint && push.has_more) {
    if (push.merged_from > 0 && push.changes <= push.merged_from) {
      push.active = false;
      *decision = Decision("failed", 0, "",
                           "push: the page cannot take the rows it needs from later pages (a batch holds at most "
                           "64 MiB): ");
      return Status::Ok();
    }
    push.merged_from = push.changes;
    push.limit = push.limit > (1 << 29) ? push.limit : push.limit * 2;
    const auto cap = static_cast<std::int64_t>(core::kMaxBatchBytes);
    push.max_bytes = std::min<std::int64_t>(
        cap, 2 * (push.max_bytes > 0 ? push.max_bytes : static_cast<std::int64_t>(core::kMaxPageBytes)));
    *decision = Decision("merge", 0,
                         "push: a page needs rows of the next one (" + sqlstate + "); retrying with " +
                             std::to_string(push.limit) + " changes a page");
    return Status::Ok();
  }
  // A concurrent write to the same rows (serialization failure, deadlock):
  // the server rolled the page back; apply it again, decided anew.
  if (sqlstate.compare(0, 2, "40") == 0 && push.retries < kConflictRetries) {
    ++push.retries;
    *decision = Decision("retry", 0, "push: " + message + "; retrying");
    return Status::Ok();
  }
  push.active = false;
  // A stamp ahead of the server's clock, within reason: the server will take
  // it later. Pulling goes on meanwhile.
  if (sqlstate == core::SqlStateOf(Code::kNotYet)) {
    *decision = Decision("deferred", 0, "push deferred: " + message);
    return Status::Ok();
  }
  *decision = Decision("failed", 0, "", "push: ");
  return Status::Ok();
}

Status PushAcked(ConnectionState& state, std::optional<std::string>* acked) {
  std::string value;
  bool found = false;
  Status status = ReadMeta(state.db, kAckedKey, &value, &found);
  if (status.ok() && found) *acked = value;
  return status;
}

}  // namespace syncline::sqlite
