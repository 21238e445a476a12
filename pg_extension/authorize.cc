#include "pg_extension/authorize.h"

#include "pg_extension/spi.h"

namespace syncline::pg {

using core::Status;

Status Authorizer::Allowed(const std::string& function, const std::optional<std::string>& scope, bool* allowed) {
  *allowed = false;
  if (!scope) return Status::Ok();
  auto key = std::make_pair(function, *scope);
  auto it = cache_.find(key);
  if (it != cache_.end()) {
    *allowed = it->second;
    return Status::Ok();
  }
  // regprocedure text "app.member_of(jsonb)": call it by its name.
  std::string name = function.substr(0, function.rfind('('));
  SPIPlanPtr plan = Prepare("SELECT " + name + "($1::pg_catalog.jsonb) IS TRUE", {TEXTOID});
  Datum args[1] = {TextDatum(*scope)};
  Execute(plan, args, " ", true, 0, snapshot_);
  bool isnull = false;
  *allowed = DatumGetBool(ResultDatum(0, 1, &isnull)) && !isnull;
  cache_[key] = *allowed;
  return Status::Ok();
}

}  // namespace syncline::pg
