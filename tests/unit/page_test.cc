// Unit tests of pages capped in bytes (BatchWriter::AddToPage): a page stops
// before the change that would take it past its cap, a change larger than
// the cap travels alone, and one larger than any batch is an error naming
// its table and key.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/changeset.h"

namespace {

using namespace syncline::core;

const std::string kSource = "11111111-2222-4333-8444-555555555555";
const std::string kNode = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
// The longest cursor an engine issues: a node id, a fingerprint, 200 digits.
const std::string kLongCursor = kSource + ":cbf29ce484222325:" + std::string(200, '9');

Change Upsert(const std::string& id, std::size_t body_bytes) {
  Change change;
  change.table = "notes";
  change.op = Op::kUpsert;
  change.pk = {{"id", Value::Text(id)}};
  change.row = {{"id", Value::Text(id)}, {"body", Value::Text(std::string(body_bytes, 'x'))}};
  change.clock = 1;
  change.hlc = 0x0000018c2a1b0001ULL;
  change.node = kNode;
  return change;
}

std::vector<std::string> Ids(const std::string& batch_text) {
  Batch batch;
  Status status = DecodeBatch(batch_text, &batch);
  EXPECT_TRUE(status.ok()) << status.message();
  std::vector<std::string> ids;
  for (const Change& change : batch.changes)
    ids.push_back(change.pk[0].value.bytes);
  return ids;
}

TEST(PageTest, StopsBeforeTheChangeThatWouldPassTheCap) {
  const std::size_t cap = 4000;
  std::vector<Change> changes;
  for (int i = 0; i < 50; ++i)
    changes.push_back(Upsert("n" + std::to_string(i), 300));
  BatchWriter one(kSource), none(kSource);
  one.Add(changes[0]);
  const std::size_t change_bytes = one.size() - none.size();
  // Pages are cut as a pull cuts them: each starts with the change the one
  // before left out.
  std::vector<std::string> delivered;
  std::size_t next = 0;
  int pages = 0;
  while (next < changes.size()) {
    BatchWriter writer(kSource);
    for (; next < changes.size(); ++next) {
      bool added = false;
      ASSERT_TRUE(writer.AddToPage(changes[next], cap, &added).ok());
      if (!added) break;
    }
    const bool full = next < changes.size();
    std::string page = writer.Finish(kLongCursor, full);
    EXPECT_LE(page.size(), cap);
    // One more change would have passed the cap (size() allows for a
    // cursor longer than this one by a few bytes).
    if (full) {
      EXPECT_GT(page.size() + change_bytes + 64, cap) << "the page stopped early";
    }
    for (const std::string& id : Ids(page))
      delivered.push_back(id);
    ++pages;
  }
  EXPECT_GT(pages, 3);
  ASSERT_EQ(delivered.size(), changes.size());
  for (std::size_t i = 0; i < changes.size(); ++i)
    EXPECT_EQ(delivered[i], changes[i].pk[0].value.bytes);
}

TEST(PageTest, ALeftOutChangeLeavesThePageAsItWas) {
  BatchWriter capped(kSource), plain(kSource);
  bool added = false;
  ASSERT_TRUE(capped.AddToPage(Upsert("a", 10), 2000, &added).ok());
  EXPECT_TRUE(added);
  ASSERT_TRUE(capped.AddToPage(Upsert("b", 5000), 2000, &added).ok());
  EXPECT_FALSE(added);
  EXPECT_EQ(capped.count(), 1u);
  ASSERT_TRUE(capped.AddToPage(Upsert("c", 10), 2000, &added).ok());
  EXPECT_TRUE(added);
  plain.Add(Upsert("a", 10));
  plain.Add(Upsert("c", 10));
  EXPECT_EQ(capped.Finish("c1", true), plain.Finish("c1", true));
}

TEST(PageTest, SizeBoundsTheFinishedBatch) {
  BatchWriter writer(kSource);
  writer.Add(Upsert("a", 10));
  const std::size_t bound = writer.size();
  EXPECT_LE(writer.Finish(kLongCursor, false).size(), bound);
}

TEST(PageTest, AChangeLargerThanTheCapTravelsAlone) {
  const std::size_t cap = 1000;
  BatchWriter writer(kSource);
  bool added = false;
  ASSERT_TRUE(writer.AddToPage(Upsert("big", 5000), cap, &added).ok());
  EXPECT_TRUE(added);
  ASSERT_TRUE(writer.AddToPage(Upsert("small", 1), cap, &added).ok());
  EXPECT_FALSE(added);
  std::string page = writer.Finish("c", true);
  EXPECT_GT(page.size(), cap);
  EXPECT_EQ(Ids(page), std::vector<std::string>{"big"});
}

TEST(PageTest, TheCapIsAtMostTheBatchLimit) {
  // Two changes that together pass kMaxBatchBytes never share a page, even
  // with a larger cap asked for.
  BatchWriter writer(kSource);
  bool added = false;
  ASSERT_TRUE(writer.AddToPage(Upsert("a", kMaxBatchBytes / 2), SIZE_MAX, &added).ok());
  EXPECT_TRUE(added);
  ASSERT_TRUE(writer.AddToPage(Upsert("b", kMaxBatchBytes / 2), SIZE_MAX, &added).ok());
  EXPECT_FALSE(added);
  EXPECT_EQ(writer.count(), 1u);
}

TEST(PageTest, AChangeLargerThanAnyBatchIsAnErrorNamingItsRow) {
  BatchWriter writer(kSource);
  bool added = true;
  Change huge = Upsert("n7", kMaxBatchBytes);
  huge.pk.push_back({"part", Value::Integer(3)});
  huge.row.push_back({"part", Value::Integer(3)});
  Status status = writer.AddToPage(huge, kMaxPageBytes, &added);
  ASSERT_FALSE(status.ok());
  EXPECT_FALSE(added);
  EXPECT_EQ(status.code(), Code::kTooLarge);
  EXPECT_EQ(status.message().rfind("table \"notes\", row [\"n7\",3]: its change takes ", 0), 0u) << status.message();
  EXPECT_NE(status.message().find("more than a batch may hold (64 MiB)"), std::string::npos) << status.message();
  EXPECT_FALSE(status.hint().empty());
  // Just under the limit, alone in its page, it travels.
  EXPECT_EQ(writer.count(), 0u);
  ASSERT_TRUE(writer.AddToPage(Upsert("n8", kMaxBatchBytes - 1000), kMaxPageBytes, &added).ok());
  EXPECT_TRUE(added);
  std::string page = writer.Finish(kLongCursor, true);
  EXPECT_LE(page.size(), kMaxBatchBytes);
  EXPECT_EQ(Ids(page), std::vector<std::string>{"n8"});
}

}  // namespace
