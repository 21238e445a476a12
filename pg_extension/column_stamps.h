// Column-merge tables on PostgreSQL (docs/column-merge.md): what capture
// needs beside row-level versions.
#pragma once

#include <string>
#include <vector>

#include "pg_extension/pg_headers.h"
#include "pg_extension/tables.h"

namespace syncline::pg {

// Which of a row's synced columns an UPDATE changed, by the stored images
// of their values (datum_image_eq): -0.0 and 0.0, or 1.0 and 1.00, differ
// although `=` calls them equal, and setting a column to its value is no
// change. `changed` has one entry per column of `table`.
void ChangedColumns(const TableInfo& table, TupleTableSlot* before, TupleTableSlot* after, std::vector<bool>* changed);

// The node id a syncline.rows.node ref stands for (0: this database's),
// cached until the transaction ends (DROP and CREATE EXTENSION in one
// session renumber them). Needs an SPI session.
std::string NodeIdOfRef(int32 ref);
// Called when a transaction ends.
void ForgetNodeIds();

}  // namespace syncline::pg
