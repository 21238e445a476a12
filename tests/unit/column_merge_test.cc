// Unit tests of the column-level merge (core/column_merge.h): the rule's
// cases, and its properties over random writes: the state after a set of
// writes does not depend on their order or duplicates, and merging two
// replicas' states is commutative, associative and idempotent. The metadata
// encoding of the stamps round-trips and stays small.
#include "core/column_merge.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace syncline::core;

const std::string kA = "00000000-0000-4000-8000-00000000000a";
const std::string kB = "00000000-0000-4000-8000-00000000000b";
const std::string kC = "00000000-0000-4000-8000-00000000000c";
constexpr std::size_t kColumns = 3;

// A stamp in a few characters: hlc and the node's last digit ("-": no node).
std::string Short(const Stamp& stamp) {
  return std::to_string(stamp.hlc) + (stamp.node.empty() ? "-" : stamp.node.substr(35));
}

// A write: a delete, or an upsert of some columns at one stamp, or (a
// replica's state passed on) of every column at its own stamp.
struct Write {
  ColumnVersion version;
  std::vector<std::optional<std::string>> values;  // per column, for the carried ones
};

Write Upsert(Stamp stamp, std::vector<std::size_t> columns) {
  Write write;
  write.version.stamp = stamp;
  write.version.columns.resize(kColumns);
  write.values.resize(kColumns);
  for (std::size_t column : columns) {
    write.version.columns[column] = stamp;
    write.values[column] = Short(stamp) + "/" + std::to_string(column);
  }
  return write;
}

Write Delete(Stamp stamp) {
  Write write;
  write.version.deleted = true;
  write.version.stamp = stamp;
  write.version.columns.resize(kColumns);
  write.values.resize(kColumns);
  return write;
}

// A replica's row: stamps and values (nullopt: NULL, or never written).
struct Replica {
  ColumnRow row;
  std::vector<std::optional<std::string>> values = std::vector<std::optional<std::string>>(kColumns);

  void Apply(const Write& write) {
    ColumnMerge merge = MergeColumns(row, write.version);
    if (merge.kind == ColumnMerge::Kind::kTombstone) values.assign(kColumns, std::nullopt);
    if (merge.kind == ColumnMerge::Kind::kWrite) {
      for (std::size_t i = 0; i < kColumns; ++i) {
        EXPECT_FALSE(merge.take[i] && merge.clear[i]);
        // An engine inserts a row that comes back: what is neither taken
        // nor cleared gets the column's default.
        if (merge.revives) values[i] = "default";
        if (merge.take[i]) values[i] = write.values[i];
        if (merge.clear[i]) values[i] = std::nullopt;
      }
    }
    row = merge.after;
  }

  // The replica's state as one version, for merging it into another.
  Write AsWrite() const {
    Write write;
    write.version.deleted = row.deleted;
    write.version.stamp = LatestStamp(row.stamps);
    write.version.columns.resize(kColumns);
    write.values.resize(kColumns);
    if (!row.deleted) {
      for (std::size_t i = 0; i < kColumns; ++i) {
        write.version.columns[i] = row.stamps[i];
        write.values[i] = values[i];
      }
    }
    return write;
  }

  // What an app sees: nothing, a deleted row, or the values; and the stamps.
  std::string View() const {
    if (!row.exists) return "unknown";
    std::string out = row.deleted ? "deleted" : "live";
    for (std::size_t i = 0; i < kColumns; ++i) {
      out += " " + Short(row.stamps[i]);
      if (!row.deleted) out += "=" + values[i].value_or("NULL");
    }
    return out;
  }
};

Replica Join(Replica a, const Replica& b) {
  if (b.row.exists) a.Apply(b.AsWrite());
  return a;
}

TEST(ColumnMerge, DifferentColumnsAreBothKept) {
  Replica server;
  server.Apply(Upsert({10, kA}, {0, 1, 2}));
  Replica laptop = server, phone = server;
  laptop.Apply(Upsert({20, kB}, {0}));  // the title
  phone.Apply(Upsert({15, kC}, {1}));   // the body, offline, earlier
  server.Apply(phone.AsWrite());
  server.Apply(laptop.AsWrite());
  EXPECT_EQ(server.values[0], laptop.values[0]);
  EXPECT_EQ(server.values[1], phone.values[1]);
  EXPECT_EQ(server.View(), Join(Join(Replica(), laptop), phone).View());
}

TEST(ColumnMerge, TheLatestEditOfAColumnWinsNotTheMostFrequent) {
  Replica phone;
  phone.Apply(Upsert({10, kA}, {0, 1, 2}));
  Replica laptop = phone;
  for (Hlc hlc = 11; hlc <= 20; ++hlc)
    phone.Apply(Upsert({hlc, kC}, {1}));  // ten edits offline
  laptop.Apply(Upsert({30, kB}, {1}));    // one later edit
  EXPECT_EQ(Join(phone, laptop).values[1], laptop.values[1]);
  EXPECT_EQ(Join(laptop, phone).values[1], laptop.values[1]);
}

TEST(ColumnMerge, ADeleteIsAFloorAndAnEditAfterItBringsTheRowBackWithNulls) {
  Replica row;
  row.Apply(Upsert({10, kA}, {0, 1, 2}));
  row.Apply(Delete({20, kB}));
  EXPECT_TRUE(row.row.deleted);
  row.Apply(Upsert({15, kC}, {0}));  // older than the delete: nothing
  EXPECT_TRUE(row.row.deleted);
  row.Apply(Upsert({25, kC}, {0}));  // after it: back, the rest NULL
  EXPECT_FALSE(row.row.deleted);
  EXPECT_TRUE(row.values[0].has_value());
  EXPECT_FALSE(row.values[1].has_value());
  EXPECT_EQ(row.row.stamps[1].hlc, 20u);
  row.Apply(Upsert({18, kA}, {1}));  // a late edit older than the delete never wins
  EXPECT_FALSE(row.values[1].has_value());

  // A delete older than some columns clears only the older ones.
  Replica live;
  live.Apply(Upsert({10, kA}, {0, 1, 2}));
  live.Apply(Upsert({30, kB}, {2}));
  live.Apply(Delete({20, kC}));
  EXPECT_FALSE(live.row.deleted);
  EXPECT_FALSE(live.values[0].has_value());
  EXPECT_TRUE(live.values[2].has_value());
}

TEST(ColumnMerge, TheSameWriteTwiceIsNothing) {
  Replica row;
  Write write = Upsert({10, kA}, {0, 1});
  row.Apply(write);
  EXPECT_EQ(MergeColumns(row.row, write.version).kind, ColumnMerge::Kind::kNothing);
  row.Apply(Delete({20, kB}));
  EXPECT_EQ(MergeColumns(row.row, Delete({20, kB}).version).kind, ColumnMerge::Kind::kNothing);
}

// Writes with distinct stamps, hlcs drawn from a small range so that ties
// broken by node are frequent.
std::vector<Write> RandomWrites(std::mt19937_64& rng) {
  const std::string nodes[] = {kA, kB, kC};
  std::vector<Write> writes;
  std::vector<Stamp> used;
  const std::size_t count = 1 + rng() % 8;
  while (writes.size() < count) {
    Stamp stamp{1 + rng() % 6, nodes[rng() % 3]};
    if (std::any_of(used.begin(), used.end(), [&](const Stamp& s) { return CompareStamps(s, stamp) == 0; })) continue;
    used.push_back(stamp);
    if (rng() % 5 == 0) {
      writes.push_back(Delete(stamp));
      continue;
    }
    std::vector<std::size_t> columns;
    for (std::size_t i = 0; i < kColumns; ++i)
      if (rng() % 2) columns.push_back(i);
    if (columns.empty()) columns.push_back(rng() % kColumns);
    writes.push_back(Upsert(stamp, columns));
  }
  return writes;
}

TEST(ColumnMerge, OrderAndDuplicatesDoNotMatter) {
  std::mt19937_64 rng(20261203);
  for (int round = 0; round < 3000; ++round) {
    std::vector<Write> writes = RandomWrites(rng);
    Replica first;
    for (const Write& write : writes)
      first.Apply(write);
    for (int order = 0; order < 6; ++order) {
      std::vector<Write> shuffled = writes;
      shuffled.push_back(writes[rng() % writes.size()]);  // a duplicate
      std::shuffle(shuffled.begin(), shuffled.end(), rng);
      Replica other;
      for (const Write& write : shuffled)
        other.Apply(write);
      ASSERT_EQ(other.View(), first.View()) << "round " << round;
    }
  }
}

TEST(ColumnMerge, JoiningStatesIsCommutativeAssociativeAndIdempotent) {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 3000; ++round) {
    // Three replicas that each saw some of the writes, in their own order.
    std::vector<Write> writes = RandomWrites(rng);
    Replica replicas[3];
    for (const Write& write : writes)
      for (Replica& replica : replicas)
        if (rng() % 2) replica.Apply(write);
    const Replica& a = replicas[0];
    const Replica& b = replicas[1];
    const Replica& c = replicas[2];
    ASSERT_EQ(Join(a, b).View(), Join(b, a).View()) << "round " << round;
    ASSERT_EQ(Join(Join(a, b), c).View(), Join(a, Join(b, c)).View()) << "round " << round;
    ASSERT_EQ(Join(a, a).View(), a.View()) << "round " << round;
    // Replicas that exchange everything hold what one that saw every write holds.
    Replica all;
    for (const Write& write : writes)
      all.Apply(write);
    Replica everything = Join(Join(a, b), c);
    Replica rest;
    for (const Write& write : writes)
      rest.Apply(write);
    ASSERT_EQ(Join(everything, rest).View(), all.View()) << "round " << round;
  }
}

TEST(ColumnStamps, EmptyWhenEveryColumnIsAtTheRowsStamp) {
  const std::vector<std::string> columns = {"id", "title", "body"};
  const Stamp latest{HlcFromPhysicalMs(1764750000000), kA};
  EXPECT_EQ(EncodeColumnStamps(columns, {latest, latest, latest}, latest), "");
  std::vector<Stamp> stamps;
  ASSERT_TRUE(DecodeColumnStamps("", columns, latest, &stamps).ok());
  EXPECT_EQ(stamps.size(), 3u);
  EXPECT_EQ(CompareStamps(stamps[2], latest), 0);
}

TEST(ColumnStamps, OneEditedColumnIsOneShortEntry) {
  const std::vector<std::string> columns = {"id", "title", "body", "status"};
  const Stamp insert{HlcFromPhysicalMs(1764750000000), kA};
  const Stamp edit{HlcFromPhysicalMs(1764750002500) + 3, kA};
  const std::vector<Stamp> stamps = {insert, edit, insert, insert};
  const std::string text = EncodeColumnStamps(columns, stamps, edit);
  // The base (tag 1: the row's node, hlc minus a varint), then "title" at
  // the row's stamp (tag 0): 12 bytes.
  EXPECT_EQ(text.size(), 12u);
  EXPECT_EQ(text[0], 1);
  EXPECT_EQ(text.substr(text.size() - 7), std::string("\x05title\x00", 7));
  std::vector<Stamp> back;
  ASSERT_TRUE(DecodeColumnStamps(text, columns, edit, &back).ok());
  for (std::size_t i = 0; i < columns.size(); ++i)
    EXPECT_EQ(CompareStamps(back[i], stamps[i]), 0) << columns[i];
}

TEST(ColumnStamps, RoundTripsRandomStampsAndFollowsColumnChanges) {
  std::mt19937_64 rng(7);
  const std::string nodes[] = {kA, kB, kC};
  const std::vector<std::string> columns = {"id", "a", "b", "c", "d"};
  for (int round = 0; round < 2000; ++round) {
    std::vector<Stamp> stamps;
    for (std::size_t i = 0; i < columns.size(); ++i)
      stamps.push_back(Stamp{HlcFromPhysicalMs(1764750000000) + rng() % 5, nodes[rng() % 3]});
    const Stamp latest = LatestStamp(stamps);
    std::vector<Stamp> back;
    ASSERT_TRUE(DecodeColumnStamps(EncodeColumnStamps(columns, stamps, latest), columns, latest, &back).ok());
    for (std::size_t i = 0; i < columns.size(); ++i)
      ASSERT_EQ(CompareStamps(back[i], stamps[i]), 0);
  }
  // A column a new row's first change did not carry was never written.
  const Stamp written{2000, kA};
  std::vector<Stamp> back;
  ASSERT_TRUE(DecodeColumnStamps(EncodeColumnStamps({"id", "a", "b"}, {written, Stamp(), written}, written),
                                 {"id", "a", "b"}, written, &back)
                  .ok());
  EXPECT_TRUE(back[1].node.empty());
  EXPECT_EQ(back[1].hlc, 0u);
  // A column added since is at the base; a dropped one is ignored.
  const Stamp insert{1000, kA}, edit{2000, kB};
  const std::string text = EncodeColumnStamps({"id", "gone", "title"}, {insert, edit, edit}, edit);
  std::vector<Stamp> now;
  ASSERT_TRUE(DecodeColumnStamps(text, {"id", "title", "added"}, edit, &now).ok());
  EXPECT_EQ(CompareStamps(now[0], insert), 0);
  EXPECT_EQ(CompareStamps(now[1], edit), 0);
  EXPECT_EQ(CompareStamps(now[2], edit), 0);  // the base: two of three columns were at the edit
}

TEST(ColumnStamps, ARenamedColumnKeepsItsStampAndADroppedOneLosesIt) {
  const Stamp insert{1000, kA}, edit{2000, kB}, latest{3000, kC};
  const std::vector<Stamp> stamps = {insert, edit, latest, insert};
  const std::string text = EncodeColumnStamps({"id", "title", "body", "status"}, stamps, latest);
  std::string renamed;
  ASSERT_TRUE(RenameColumnStamps(text, "title", std::string_view("heading"), &renamed).ok());
  std::vector<Stamp> back;
  ASSERT_TRUE(DecodeColumnStamps(renamed, {"id", "heading", "body", "status"}, latest, &back).ok());
  for (std::size_t i = 0; i < stamps.size(); ++i)
    EXPECT_EQ(CompareStamps(back[i], stamps[i]), 0) << i;
  // Dropped: a column added later under the name is at the base, not at
  // the dropped column's stamp.
  std::string dropped;
  ASSERT_TRUE(RenameColumnStamps(renamed, "heading", std::nullopt, &dropped).ok());
  ASSERT_TRUE(DecodeColumnStamps(dropped, {"id", "heading", "body", "status"}, latest, &back).ok());
  EXPECT_EQ(CompareStamps(back[1], insert), 0);  // the base: most columns were at the insert
  EXPECT_EQ(CompareStamps(back[2], latest), 0);
  // Renamed onto a name a dropped column left behind: the renamed one's stamp.
  ASSERT_TRUE(RenameColumnStamps(text, "body", std::string_view("title"), &renamed).ok());
  ASSERT_TRUE(DecodeColumnStamps(renamed, {"id", "title", "status"}, latest, &back).ok());
  EXPECT_EQ(CompareStamps(back[1], latest), 0);
  EXPECT_EQ(CompareStamps(back[2], insert), 0);
  EXPECT_TRUE(RenameColumnStamps("", "a", std::string_view("b"), &renamed).ok());
  EXPECT_EQ(renamed, "");
  EXPECT_FALSE(RenameColumnStamps(std::string("\x04", 1), "a", std::string_view("b"), &renamed).ok());
}

TEST(ColumnStamps, CorruptBytesAreAnError) {
  const Stamp latest{1000, kA};
  std::vector<Stamp> stamps;
  const std::string bad[] = {
      std::string("\x04", 1),          // an unknown stamp tag
      std::string("\x01", 1),          // a distance cut short
      std::string("\x01\x80", 2),      // a varint cut short
      std::string("\x01\xe9\x07", 3),  // a distance past the row's stamp (1001)
      std::string("\x00\x05"
                  "ab",
                  4),  // a name cut short
      std::string("\x00\x01"
                  "a",
                  3),                                                       // no stamp after the name
      std::string("\x02\x00\x01\x02", 4),                                   // a node id cut short
      std::string("\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 12),  // more than 64 bits
  };
  for (const std::string& bytes : bad) {
    Status status = DecodeColumnStamps(bytes, {"a"}, latest, &stamps);
    EXPECT_FALSE(status.ok()) << bytes.size();
    EXPECT_NE(status.message().find("column stamps in metadata"), std::string::npos) << status.message();
  }
}

}  // namespace
