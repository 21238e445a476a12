#include "pg_extension/column_stamps.h"

#include <optional>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "core/column_merge.h"

#include "pg_extension/backend.h"
#include "pg_extension/pg_boundary.h"
#include "pg_extension/spi.h"

extern "C" {
#include "utils/datum.h"
}

namespace syncline::pg {

namespace {

// A heap object reached through a plain pointer: nothing runs at load or
// unload.
std::unordered_map<int32, std::string>* node_ids = nullptr;

}  // namespace

void ChangedColumns(const TableInfo& table, TupleTableSlot* before, TupleTableSlot* after, std::vector<bool>* changed) {
  const std::size_t count = table.attnums.size();
  changed->assign(count, false);
  const AttrNumber* attnums = table.attnums.data();
  std::vector<bool>& out = *changed;
  PgGuard([&] {
    TupleDesc desc = before->tts_tupleDescriptor;
    for (std::size_t i = 0; i < count; ++i) {
      const AttrNumber attnum = attnums[i];
      bool before_null = false, after_null = false;
      const Datum a = slot_getattr(before, attnum, &before_null);
      const Datum b = slot_getattr(after, attnum, &after_null);
      if (before_null || after_null) {
        out[i] = before_null != after_null;
        continue;
      }
      const Form_pg_attribute attribute = TupleDescAttr(desc, attnum - 1);
      out[i] = !datum_image_eq(a, b, attribute->attbyval, attribute->attlen);
    }
  });
}

std::string NodeIdOfRef(int32 ref) {
  if (node_ids == nullptr) node_ids = new std::unordered_map<int32, std::string>();
  auto known = node_ids->find(ref);
  if (known != node_ids->end()) return known->second;
  std::string id;
  if (ref == 0) {
    id = LocalNodeId();
  } else {
    AsExtensionOwner owner;
    SPIPlanPtr find = Prepare("SELECT node_id FROM syncline.nodes WHERE ref OPERATOR(pg_catalog.=) $1", {INT4OID});
    Datum args[1] = {Int32GetDatum(ref)};
    if (Execute(find, args, " ", false) == 0)
      throw std::runtime_error("syncline.rows names node ref " + std::to_string(ref) + ", which syncline.nodes lacks");
    id = ResultText(0, 1);
  }
  node_ids->emplace(ref, id);
  return id;
}

void ForgetNodeIds() {
  delete node_ids;
  node_ids = nullptr;
}

namespace {

std::string_view BytesArg(FunctionCallInfo fcinfo, int arg) {
  const char* data = nullptr;
  int size = 0;
  Datum datum = PG_GETARG_DATUM(arg);
  PgGuard([&] {
    struct varlena* bytes = PG_DETOAST_DATUM_PACKED(datum);
    data = VARDATA_ANY(bytes);
    size = static_cast<int>(VARSIZE_ANY_EXHDR(bytes));
  });
  return std::string_view(data, static_cast<std::size_t>(size));
}

// syncline.column_stamps_renamed(cols, from, to): a row's column stamps
// after column `from` was renamed `to`, or dropped (`to` NULL); the event
// trigger's follow_table rewrites a column-merge table's rows with it
// (core::RenameColumnStamps).
core::Status ColumnStampsRenamed(FunctionCallInfo fcinfo, Datum* result) {
  if (PG_ARGISNULL(0) || PG_ARGISNULL(1)) {
    fcinfo->isnull = true;
    *result = (Datum)0;
    return core::Status::Ok();
  }
  const std::string_view cols = BytesArg(fcinfo, 0);
  const std::string_view from = BytesArg(fcinfo, 1);
  std::optional<std::string_view> to;
  if (!PG_ARGISNULL(2)) to = BytesArg(fcinfo, 2);
  std::string renamed;
  core::Status status = core::RenameColumnStamps(cols, from, to, &renamed);
  if (!status.ok()) return status;
  if (renamed.empty()) {
    fcinfo->isnull = true;
    *result = (Datum)0;
    return core::Status::Ok();
  }
  *result = ByteaDatum(renamed);
  return core::Status::Ok();
}

}  // namespace

}  // namespace syncline::pg

SYNCLINE_PG_FUNCTION(syncline_column_stamps_renamed, "syncline.column_stamps_renamed",
                     syncline::pg::ColumnStampsRenamed)
