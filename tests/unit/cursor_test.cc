// Unit tests of pull options and cursors (core/cursor.h): option parsing and
// canonical form, filter fingerprints, the cursor text and position order.
#include "core/cursor.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace {

using namespace syncline::core;

const std::string kNodeA = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";
const std::string kNodeB = "11111111-2222-4333-8444-555555555555";

PullOptions Parse(const std::string& text) {
  PullOptions options;
  Status status = ParsePullOptions(text, &options);
  EXPECT_TRUE(status.ok()) << text << ": " << status.message();
  return options;
}

void ExpectBadOptions(const std::string& text, const std::string& why) {
  PullOptions options;
  Status status = ParsePullOptions(text, &options);
  ASSERT_FALSE(status.ok()) << text;
  EXPECT_EQ(status.code(), Code::kInvalidInput) << text;
  EXPECT_EQ(status.message().rfind("options: ", 0), 0u) << status.message();
  EXPECT_NE(status.message().find(why), std::string::npos) << text << " -> " << status.message();
}

bool IsDefault(const PullOptions& o) {
  return !o.local_only && o.exclude_origin.empty() && o.scope.empty() && !o.has_scope && o.max_bytes == kMaxPageBytes &&
         o.schema == -1;
}

// ---------------------------------------------------------------- options

TEST(PullOptionsTest, EmptyMeansNoOptions) {
  EXPECT_TRUE(IsDefault(Parse("")));
  EXPECT_TRUE(IsDefault(Parse("{}")));
  EXPECT_TRUE(IsDefault(Parse(" { } ")));
}

TEST(PullOptionsTest, ParseResetsTheOutput) {
  PullOptions options;
  options.local_only = true;
  options.exclude_origin = kNodeA;
  options.scope = "1";
  options.has_scope = true;
  options.max_bytes = 10;
  options.schema = 3;
  ASSERT_TRUE(ParsePullOptions("{}", &options).ok());
  EXPECT_TRUE(IsDefault(options));
}

TEST(PullOptionsTest, OriginLocal) {
  PullOptions options = Parse(R"({"origin":"local"})");
  EXPECT_TRUE(options.local_only);
  EXPECT_TRUE(options.exclude_origin.empty());
  EXPECT_FALSE(options.has_scope);
}

TEST(PullOptionsTest, ExcludeOriginIsCanonicalised) {
  PullOptions options = Parse(R"({"exclude_origin":"AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE"})");
  EXPECT_EQ(options.exclude_origin, kNodeA);
  EXPECT_FALSE(options.local_only);
  EXPECT_EQ(Parse(R"({"exclude_origin":")" + kNodeA + "\"}").exclude_origin, kNodeA);
}

TEST(PullOptionsTest, ScopeKeepsTheValuesCanonicalJson) {
  struct Case {
    const char* input;
    const char* scope;
  };
  const Case cases[] = {
      {R"({"scope":"org-1"})", R"("org-1")"},
      {R"({"scope":7})", "7"},
      {R"({"scope":7.0})", "7.0"},
      {R"({"scope":7.50})", "7.5"},
      {R"({"scope":-0.0})", R"({"real":"-0.0"})"},
      {R"({"scope":null})", "null"},
      {R"({"scope":true})", "1"},
      {R"({"scope":{"blob":"AAE="}})", R"({"blob":"AAE="})"},
      {R"({"scope":{"real":"NaN"}})", R"({"real":"NaN"})"},
      {R"({"scope":"a\"\n\u00e9"})", "\"a\\\"\\n\xc3\xa9\""},
  };
  for (const Case& c : cases) {
    PullOptions options = Parse(c.input);
    EXPECT_TRUE(options.has_scope) << c.input;
    EXPECT_EQ(options.scope, c.scope) << c.input;
  }
}

TEST(PullOptionsTest, AllTogether) {
  PullOptions options = Parse(R"({"scope":"x","exclude_origin":")" + kNodeB + R"(","origin":"local"})");
  EXPECT_TRUE(options.local_only);
  EXPECT_EQ(options.exclude_origin, kNodeB);
  EXPECT_TRUE(options.has_scope);
  EXPECT_EQ(options.scope, "\"x\"");
}

TEST(PullOptionsTest, MaxBytes) {
  EXPECT_EQ(Parse("{}").max_bytes, kMaxPageBytes);
  EXPECT_EQ(Parse(R"({"max_bytes":1})").max_bytes, 1u);
  EXPECT_EQ(Parse(R"({"max_bytes":4096,"origin":"local"})").max_bytes, 4096u);
  EXPECT_EQ(Parse(R"({"max_bytes":)" + std::to_string(kMaxBatchBytes) + "}").max_bytes, kMaxBatchBytes);
  for (const char* bad : {"0", "-1", "1.5", "1e3", "\"100\"", "null", "true", "67108865", "9223372036854775808"})
    ExpectBadOptions(std::string(R"({"max_bytes":)") + bad + "}",
                     "\"max_bytes\" must be an integer from 1 to 67108864");
}

TEST(PullOptionsTest, SchemaVersionIsNotPartOfTheFilter) {
  EXPECT_EQ(Parse("{}").schema, -1);
  EXPECT_EQ(Parse(R"({"schema":0})").schema, 0);
  EXPECT_EQ(Parse(R"({"schema":12,"origin":"local"})").schema, 12);
  EXPECT_EQ(FilterFingerprint(Parse(R"({"schema":12,"origin":"local"})")),
            FilterFingerprint(Parse(R"({"origin":"local"})")));
  for (const char* bad : {"-1", "1.5", "\"1\"", "null"})
    ExpectBadOptions(std::string(R"({"schema":)") + bad + "}", "\"schema\" must be a schema version");
}

TEST(PullOptionsTest, Rejections) {
  ExpectBadOptions(R"({"since":1})", "unknown option \"since\"");
  ExpectBadOptions(R"({"Origin":"local"})", "unknown option \"Origin\"");
  ExpectBadOptions(R"({"origin":"local","scopes":1})", "unknown option \"scopes\"");
  ExpectBadOptions(R"({"origin":"remote"})", "\"origin\" must be \"local\"");
  ExpectBadOptions(R"({"origin":"LOCAL"})", "\"origin\" must be \"local\"");
  ExpectBadOptions(R"({"origin":""})", "\"origin\" must be \"local\"");
  ExpectBadOptions(R"({"origin":1})", "\"origin\" must be \"local\"");
  ExpectBadOptions(R"({"origin":null})", "\"origin\" must be \"local\"");
  ExpectBadOptions(R"({"exclude_origin":"nope"})", "\"exclude_origin\" must be a node id");
  ExpectBadOptions(R"({"exclude_origin":"aaaaaaaabbbb4ccc8dddeeeeeeeeeeee"})", "\"exclude_origin\" must be a node id");
  ExpectBadOptions(R"({"exclude_origin":5})", "\"exclude_origin\" must be a node id");
  ExpectBadOptions(R"({"exclude_origin":""})", "\"exclude_origin\" must be a node id");
  ExpectBadOptions(R"({"scope":[1]})", "\"scope\": an array is not a column value");
  ExpectBadOptions(R"({"scope":{"x":1}})", "\"scope\": a value object must be");
  ExpectBadOptions(R"({"scope":9223372036854775808})", "\"scope\": integer 9223372036854775808 is out");
  ExpectBadOptions(R"({"origin":"local","origin":"local"})", "duplicate key");
  ExpectBadOptions("[]", "must be a JSON object");
  ExpectBadOptions("null", "must be a JSON object");
  ExpectBadOptions("\"origin\"", "must be a JSON object");
  ExpectBadOptions("{", "malformed JSON");
  ExpectBadOptions("{} {}", "malformed JSON");
}

// ---------------------------------------------------------------- fingerprints

bool IsLowerHex16(const std::string& text) {
  if (text.size() != 16) return false;
  for (char c : text) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

TEST(FilterFingerprintTest, NoOptionsIsTheFnvOffsetBasis) {
  // FNV-1a of the empty canonical text is the offset basis itself; a fixed
  // value, so cursors stay valid across releases.
  EXPECT_EQ(FilterFingerprint(PullOptions{}), "cbf29ce484222325");
  EXPECT_EQ(FilterFingerprint(Parse("{}")), FilterFingerprint(Parse("")));
}

TEST(FilterFingerprintTest, DiffersBetweenOptionSets) {
  const std::vector<std::string> sets = {
      "{}",
      R"({"origin":"local"})",
      R"({"exclude_origin":")" + kNodeA + "\"}",
      R"({"exclude_origin":")" + kNodeB + "\"}",
      R"({"scope":"1"})",
      R"({"scope":1})",
      R"({"scope":1.0})",
      R"({"scope":null})",
      R"({"scope":"x"})",
      R"({"scope":{"blob":"eA=="}})",
      R"({"origin":"local","scope":"x"})",
      R"({"origin":"local","exclude_origin":")" + kNodeA + "\"}",
      R"({"exclude_origin":")" + kNodeA + R"(","scope":"x"})",
      R"({"origin":"local","exclude_origin":")" + kNodeA + R"(","scope":"x"})",
  };
  std::set<std::string> seen;
  for (const std::string& text : sets) {
    std::string fingerprint = FilterFingerprint(Parse(text));
    EXPECT_TRUE(IsLowerHex16(fingerprint)) << fingerprint;
    EXPECT_TRUE(seen.insert(fingerprint).second) << "collision for " << text;
  }
}

TEST(FilterFingerprintTest, SameSetInAnotherOrderOrSpelling) {
  const std::string a = R"({"origin":"local","exclude_origin":")" + kNodeA + R"(","scope":"x"})";
  const std::string b = R"({"scope":"x","origin":"local","exclude_origin":"AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE"})";
  const std::string c = R"( { "exclude_origin" : ")" + kNodeA + R"(" , "scope" : "x" , "origin" : "local" } )";
  EXPECT_EQ(FilterFingerprint(Parse(a)), FilterFingerprint(Parse(b)));
  EXPECT_EQ(FilterFingerprint(Parse(a)), FilterFingerprint(Parse(c)));
  // Numbers are compared by value as the codec reads them, not by spelling.
  EXPECT_EQ(FilterFingerprint(Parse(R"({"scope":7.50})")), FilterFingerprint(Parse(R"({"scope":7.5})")));
  EXPECT_EQ(FilterFingerprint(Parse(R"({"scope":"\u0078"})")), FilterFingerprint(Parse(R"({"scope":"x"})")));
  // Deterministic.
  EXPECT_EQ(FilterFingerprint(Parse(a)), FilterFingerprint(Parse(a)));
}

TEST(FilterFingerprintTest, MaxBytesIsNotPartOfTheFilter) {
  // A cursor taken with one page size stays valid with another.
  EXPECT_EQ(FilterFingerprint(Parse(R"({"max_bytes":100})")), FilterFingerprint(Parse("{}")));
  EXPECT_EQ(FilterFingerprint(Parse(R"({"max_bytes":100,"origin":"local"})")),
            FilterFingerprint(Parse(R"({"origin":"local","max_bytes":5000})")));
}

TEST(FilterFingerprintTest, ScopeTextCannotForgeOtherOptions) {
  // The scope is written as JSON, so a newline in it cannot make its
  // canonical text look like another option line.
  PullOptions forged = Parse(R"({"scope":"x\norigin=local"})");
  PullOptions real = Parse(R"({"scope":"x","origin":"local"})");
  EXPECT_NE(FilterFingerprint(forged), FilterFingerprint(real));
}

// ---------------------------------------------------------------- cursors

TEST(CursorTest, EncodeDecodeRoundTrip) {
  const std::string fingerprint = FilterFingerprint(Parse(R"({"origin":"local"})"));
  for (const char* position : {"0", "1", "12.5", "1.2.3.4", "007", "18446744073709551616123"}) {
    Cursor cursor{kNodeA, fingerprint, position};
    std::string text = EncodeCursor(cursor);
    EXPECT_EQ(text, kNodeA + ":" + fingerprint + ":" + position);
    Cursor back{"stale", "stale", "stale"};
    Status status = DecodeCursor(text, &back);
    ASSERT_TRUE(status.ok()) << text << ": " << status.message();
    EXPECT_EQ(back.node, cursor.node);
    EXPECT_EQ(back.filter, cursor.filter);
    EXPECT_EQ(back.position, cursor.position);
  }
}

TEST(CursorTest, DecodeCanonicalisesTheNode) {
  Cursor back;
  ASSERT_TRUE(DecodeCursor("AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE:cbf29ce484222325:5", &back).ok());
  EXPECT_EQ(back.node, kNodeA);
  EXPECT_EQ(back.filter, "cbf29ce484222325");
  EXPECT_EQ(back.position, "5");
}

TEST(CursorTest, DecodeRejectsMalformed) {
  const std::string fp = "cbf29ce484222325";
  const std::vector<std::string> bad = {
      "",
      "abc",
      kNodeA,
      kNodeA + ":" + fp,        // missing position
      kNodeA + ":" + fp + ":",  // empty position
      kNodeA + "::5",           // empty fingerprint
      ":" + fp + ":5",          // empty node
      "node-1:" + fp + ":5",    // bad uuid
      "aaaaaaaabbbb4ccc8dddeeeeeeeeeeee:" + fp + ":5",
      kNodeA + ":CBF29CE484222325:5",   // fingerprints are lower-case
      kNodeA + ":cbf29ce48422232:5",    // 15 digits
      kNodeA + ":cbf29ce4842223250:5",  // 17 digits
      kNodeA + ":cbf29ce48422232g:5",
      kNodeA + ":" + fp + ":1..2",
      kNodeA + ":" + fp + ":.1",
      kNodeA + ":" + fp + ":1.",
      kNodeA + ":" + fp + ":.",
      kNodeA + ":" + fp + ":1a",
      kNodeA + ":" + fp + ":abc",
      kNodeA + ":" + fp + ":-1",
      kNodeA + ":" + fp + ":+1",
      kNodeA + ":" + fp + ": 1",
      kNodeA + ":" + fp + ":1 ",
      kNodeA + ":" + fp + ":1:2",
      kNodeA + ":" + fp + ":1,2",
      kNodeA + ":" + fp + ":" + std::string(201, '1'),
      kNodeA + ":" + fp + ":1" + std::string("\0", 1),
      fp + ":" + kNodeA + ":5",  // parts swapped
  };
  for (const std::string& text : bad) {
    Cursor out{"untouched", "", ""};
    Status status = DecodeCursor(text, &out);
    EXPECT_FALSE(status.ok()) << testing::PrintToString(text);
    EXPECT_EQ(status.code(), Code::kInvalidInput);
    EXPECT_NE(status.message().find("is malformed"), std::string::npos) << status.message();
    EXPECT_EQ(out.node, "untouched") << text;  // nothing half-decoded
  }
  Cursor out;
  EXPECT_TRUE(DecodeCursor(kNodeA + ":" + fp + ":" + std::string(200, '1'), &out).ok());
}

TEST(CursorTest, MalformedMessageQuotesATruncatedCursor) {
  Cursor out;
  std::string text = "x" + std::string(500, 'y');
  Status status = DecodeCursor(text, &out);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message().find(std::string(120, 'y')), std::string::npos);
  EXPECT_NE(status.message().find("\"x" + std::string(119, 'y') + "\""), std::string::npos) << status.message();
}

// ---------------------------------------------------------------- positions

int Sign(int v) { return (v > 0) - (v < 0); }

TEST(ComparePositionsTest, NumericNotLexicographic) {
  EXPECT_GT(ComparePositions("10", "9"), 0);
  EXPECT_LT(ComparePositions("9", "10"), 0);
  EXPECT_LT(ComparePositions("99", "100"), 0);
  EXPECT_GT(ComparePositions("1000000000000000000000", "999999999999999999999"), 0);  // beyond 64 bits
  EXPECT_EQ(ComparePositions("42", "42"), 0);
  EXPECT_LT(ComparePositions("0", "1"), 0);
}

TEST(ComparePositionsTest, LeadingZerosDoNotCount) {
  EXPECT_EQ(ComparePositions("010", "10"), 0);
  EXPECT_EQ(ComparePositions("0", "000"), 0);
  EXPECT_LT(ComparePositions("009", "10"), 0);
  EXPECT_GT(ComparePositions("0010", "9"), 0);
  EXPECT_EQ(ComparePositions("1.02", "1.2"), 0);
  EXPECT_LT(ComparePositions("1.09", "1.10"), 0);
}

TEST(ComparePositionsTest, DottedSequences) {
  EXPECT_LT(ComparePositions("1.2", "1.10"), 0);
  EXPECT_GT(ComparePositions("1.10", "1.9"), 0);
  EXPECT_LT(ComparePositions("1", "1.0"), 0);  // a proper prefix sorts first
  EXPECT_GT(ComparePositions("1.0", "1"), 0);
  EXPECT_LT(ComparePositions("1.2", "1.2.0"), 0);
  EXPECT_GT(ComparePositions("2", "1.99"), 0);
  EXPECT_LT(ComparePositions("1.99", "2"), 0);
  EXPECT_LT(ComparePositions("1.2.3", "1.2.4"), 0);
  EXPECT_EQ(ComparePositions("5.5", "5.5"), 0);
  EXPECT_GT(ComparePositions("10.0", "9.99"), 0);
  EXPECT_EQ(ComparePositions("0.0", "00.000"), 0);
}

// A reference order: sequences of numbers, compared element by element.
std::vector<std::uint64_t> Parts(const std::string& position) {
  std::vector<std::uint64_t> parts;
  std::size_t start = 0;
  while (true) {
    std::size_t dot = position.find('.', start);
    parts.push_back(std::stoull(position.substr(start, dot - start)));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

TEST(ComparePositionsTest, AgreesWithAReferenceOnRandomPositions) {
  std::mt19937_64 rng(41);
  auto random_position = [&rng] {
    std::string text;
    for (std::size_t i = 0, n = 1 + rng() % 4; i < n; ++i) {
      if (i) text += ".";
      text += std::string(rng() % 4 == 0 ? rng() % 3 : 0, '0');  // leading zeros now and then
      std::uint64_t part = rng() % 4 == 0 ? rng() >> 1 : rng() % 12;
      text += std::to_string(part);
    }
    return text;
  };
  for (int i = 0; i < 20000; ++i) {
    std::string a = random_position(), b = random_position();
    if (rng() % 8 == 0) b = a;
    int expected = Parts(a) < Parts(b) ? -1 : (Parts(b) < Parts(a) ? 1 : 0);
    int got = ComparePositions(a, b);
    ASSERT_TRUE(got == -1 || got == 0 || got == 1) << got;
    ASSERT_EQ(got, expected) << a << " vs " << b;
    ASSERT_EQ(Sign(ComparePositions(b, a)), -expected) << a << " vs " << b;
    // Every position generated here is one DecodeCursor accepts.
    Cursor cursor;
    ASSERT_TRUE(DecodeCursor(kNodeA + ":cbf29ce484222325:" + a, &cursor).ok()) << a;
  }
}

}  // namespace
