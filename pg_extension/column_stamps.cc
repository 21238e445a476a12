#include "pg_extension/column_stamps.h"

#include <stdexcept>
#include <unordered_map>

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

}  // namespace syncline::pg
