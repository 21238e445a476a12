#include "client/collect.h"

#include "core/cursor.h"
#include "core/json.h"

namespace syncline::client {

using core::Code;
using core::Status;

namespace {

// A checkpoint: every tombstone of this file at a local version up to
// `version` was on the server before `position` (pushed and acknowledged,
// or pulled). Once the server's collection bound passes `position`, the
// server has collected or superseded them, and the ones it kept are older
// than its collection age, far beyond what a failover loses.
struct Checkpoint {
  std::string version;   // a local version
  std::string position;  // a server position
};

Status ReadCheckpoint(LocalDb& local, std::optional<Checkpoint>* out) {
  std::optional<std::string> text;
  Status status = local.Text("SELECT value FROM syncline_client WHERE key = 'gc_checkpoint'", {}, &text);
  if (!status.ok() || !text) return status;
  std::size_t space = text->find(' ');
  if (space == std::string::npos) return Status::Ok();  // unreadable: replaced by a new one
  *out = Checkpoint{text->substr(0, space), text->substr(space + 1)};
  return Status::Ok();
}

Status WriteCheckpoint(LocalDb& local, const std::optional<Checkpoint>& checkpoint) {
  std::optional<std::string> ignored;
  if (!checkpoint) return local.Text("DELETE FROM syncline_client WHERE key = 'gc_checkpoint'", {}, &ignored);
  return local.Text("INSERT OR REPLACE INTO syncline_client(key, value) VALUES ('gc_checkpoint', ?1)",
                    {checkpoint->version + " " + checkpoint->position}, &ignored);
}

std::string Field(const core::Json& json, const char* name) {
  const core::Json* field = json.Find(name);
  return field != nullptr && field->is_string() ? field->text : "";
}

}  // namespace

Status ReportAndCollect(LocalDb& local, Server& server, const PullPosition& position, std::int64_t* collected,
                        const std::function<void(const std::string&)>& log) {
  std::optional<std::string> answer;
  std::string sqlstate;
  std::optional<std::string> scope;
  if (!position.scope_json.empty()) scope = position.scope_json;
  Status status = server.Text("SELECT syncline.device_seen($1::uuid, $2, $3::jsonb)::text",
                              {position.node, position.cursor, scope}, &answer, &sqlstate);
  if (!status.ok() && sqlstate == "42883") return Status::Ok();  // extension 0.1: no garbage collection
  if (!status.ok()) return status.WithPrefix("reporting the pull position: ");
  core::Json json;
  status = core::ParseJson(answer.value_or(""), &json);
  if (!status.ok()) return Status(Code::kInternal, "syncline.device_seen answered " + answer.value_or("NULL"));
  const std::string bound = Field(json, "bound"), server_position = Field(json, "position");

  std::optional<Checkpoint> checkpoint;
  status = ReadCheckpoint(local, &checkpoint);
  if (!status.ok()) return status;
  if (checkpoint && !bound.empty() && core::ComparePositions(bound, checkpoint->position) >= 0) {
    std::optional<std::string> result;
    status = local.Text("SELECT syncline_gc(?1)", {"{\"through\":" + checkpoint->version + "}"}, &result);
    if (!status.ok()) return status.WithPrefix("collecting this file's tombstones: ");
    core::Json summary;
    if (core::ParseJson(result.value_or(""), &summary).ok()) {
      if (const core::Json* count = summary.Find("collected"); count != nullptr && count->is_number())
        *collected += std::stoll(count->text);
    }
    if (*collected > 0 && log) log("collected " + std::to_string(*collected) + " tombstones of this file");
    checkpoint.reset();
  }
  // A new checkpoint once the last one is used: the acknowledged push
  // covers this file's own tombstones, and every pulled one came before.
  if (!checkpoint && position.acked_push && !server_position.empty()) {
    // The local version: a position's first part (pull.cc in the extension).
    std::string version = position.acked_push->substr(position.acked_push->rfind(':') + 1);
    version = version.substr(0, version.find('.'));
    return WriteCheckpoint(local, Checkpoint{version, server_position});
  }
  return Status::Ok();
}

}  // namespace syncline::client
