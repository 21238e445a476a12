#include "client/collect.h"

namespace syncline::client {

using core::Status;

Status ReportAndCollect(LocalDb& local, Server& server, const PullPosition& position, std::int64_t* collected,
                        const std::function<void(const std::string&)>& log) {
  std::optional<std::string> answer, result;
  std::string sqlstate;
  std::optional<std::string> scope;
  if (!position.scope_json.empty()) scope = position.scope_json;
  Status status = server.Text("SELECT syncline.device_seen($1::uuid, $2, $3::jsonb)::text",
                              {position.node, position.cursor, scope}, &answer, &sqlstate);
  if (!status.ok() && sqlstate == "42883") return Status::Ok();  // extension 0.1: no garbage collection
  if (!status.ok()) return status.WithPrefix("reporting the pull position: ");
  // What the answer allows, the extension decides (syncline_gc_seen).
  status = local.Text("SELECT json_extract(syncline_gc_seen(?1), '$.collected')", {answer}, &result);
  if (!status.ok()) return status;
  const std::int64_t count = std::stoll(result.value_or("0"));
  *collected += count;
  if (count > 0 && log) log("collected " + std::to_string(count) + " tombstones of this file");
  return Status::Ok();
}

}  // namespace syncline::client
