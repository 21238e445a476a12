// The steps of the merge that live in files of their own, for the Merger
// (core/merge.cc); outside the merge's interface.
#pragma once

#include <string>
#include <vector>

#include "core/merge.h"

namespace syncline::core {

// core/merge_mapping.cc: a change's key and row mapped onto its table.
Status MapChange(MergeChange& out, std::vector<std::string>* ignored);

// core/merge_summary.cc: apply_push's answer.
std::string Summary(const Batch& batch, const MergeResult& result, bool count_rewritten, const std::string& cursor);

}  // namespace syncline::core
