// Unit tests of core::Status (core/status.h): the optional detail and hint
// travel with the code through WithPrefix, as the engines report them.
#include "core/status.h"

#include <gtest/gtest.h>

#include <string>

namespace {

using syncline::core::Code;
using syncline::core::Status;

TEST(Status, OkHasNoMessageDetailOrHint) {
  Status status = Status::Ok();
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(status.code(), Code::kOk);
  EXPECT_EQ(status.message(), "");
  EXPECT_EQ(status.detail(), "");
  EXPECT_EQ(status.hint(), "");
}

TEST(Status, DetailAndHintAreOptional) {
  Status plain(Code::kInvalidInput, "options: must be a JSON object");
  EXPECT_EQ(plain.detail(), "");
  EXPECT_EQ(plain.hint(), "");
  Status full = Status(Code::kPermissionDenied, "must be owner of table notes")
                    .WithDetail("Only a table's owner tracks it.")
                    .WithHint("Ask its owner.");
  EXPECT_EQ(full.code(), Code::kPermissionDenied);
  EXPECT_EQ(full.message(), "must be owner of table notes");
  EXPECT_EQ(full.detail(), "Only a table's owner tracks it.");
  EXPECT_EQ(full.hint(), "Ask its owner.");
}

TEST(Status, WithOnACopyLeavesTheOriginal) {
  const Status original = Status(Code::kUndefinedTable, "no tracked table of this name").WithHint("Track it.");
  Status detailed = original.WithDetail("Batches name tables unqualified.");
  Status prefixed = original.WithPrefix("change 3 (table \"notes\"): ");
  EXPECT_EQ(original.detail(), "");
  EXPECT_EQ(original.message(), "no tracked table of this name");
  EXPECT_EQ(detailed.detail(), "Batches name tables unqualified.");
  EXPECT_EQ(detailed.hint(), "Track it.");
  EXPECT_EQ(prefixed.message(), "change 3 (table \"notes\"): no tracked table of this name");
}

TEST(Status, WithPrefixKeepsCodeDetailAndHint) {
  Status status = Status(Code::kTypeMismatch, "column \"org_id\" expects integer, got text")
                      .WithDetail("The value is \"seven\".")
                      .WithHint("Send a number.")
                      .WithPrefix("change 3 (table \"notes\"): ")
                      .WithPrefix("apply_push: ");
  EXPECT_EQ(status.code(), Code::kTypeMismatch);
  EXPECT_EQ(status.message(), "apply_push: change 3 (table \"notes\"): column \"org_id\" expects integer, got text");
  EXPECT_EQ(status.detail(), "The value is \"seven\".");
  EXPECT_EQ(status.hint(), "Send a number.");
}

}  // namespace
