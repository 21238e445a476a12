// Unit tests of the JSON reader and writer (core/json.h): what ParseJson
// refuses (bad UTF-8, NUL bytes, trailing content, duplicate keys, deep
// nesting), number literals kept verbatim, the writer's escaping and doubles,
// and strict base64.
#include "core/json.h"

#include <gtest/gtest.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace syncline::core;
using namespace std::string_literals;

// The byte offset named in a "malformed JSON at byte N: ..." message, or -1.
long OffsetOf(const Status& status) {
  const std::string prefix = "malformed JSON at byte ";
  std::size_t at = status.message().find(prefix);
  if (at == std::string::npos) return -1;
  return std::strtol(status.message().c_str() + at + prefix.size(), nullptr, 10);
}

Status Parse(const std::string& text, Json* out) { return ParseJson(text, out); }

void ExpectRejected(const std::string& text, const std::string& why = "") {
  Json json;
  Status status = ParseJson(text, &json);
  EXPECT_FALSE(status.ok()) << "accepted: " << text;
  if (status.ok()) return;
  EXPECT_EQ(status.code(), Code::kInvalidInput) << status.message();
  EXPECT_GE(OffsetOf(status), 0) << "no byte offset in: " << status.message();
  EXPECT_LE(OffsetOf(status), static_cast<long>(text.size())) << status.message();
  if (!why.empty()) {
    EXPECT_NE(status.message().find(why), std::string::npos) << status.message();
  }
}

// ---------------------------------------------------------------- reading

TEST(JsonParse, BuildsTheTreeInDocumentOrder) {
  Json json;
  ASSERT_TRUE(Parse(R"( {"b": [1, "two", true, false, null, {}], "a": {"x": "y"}} )", &json).ok());
  ASSERT_TRUE(json.is_object());
  ASSERT_EQ(json.members.size(), 2u);
  EXPECT_EQ(json.members[0].first, "b");
  EXPECT_EQ(json.members[1].first, "a");
  const Json* b = json.Find("b");
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(b->is_array());
  ASSERT_EQ(b->items.size(), 6u);
  EXPECT_EQ(b->items[0].kind, Json::Kind::kNumber);
  EXPECT_EQ(b->items[0].text, "1");
  EXPECT_EQ(b->items[1].kind, Json::Kind::kString);
  EXPECT_EQ(b->items[1].text, "two");
  EXPECT_EQ(b->items[2].kind, Json::Kind::kTrue);
  EXPECT_EQ(b->items[3].kind, Json::Kind::kFalse);
  EXPECT_EQ(b->items[4].kind, Json::Kind::kNull);
  EXPECT_TRUE(b->items[5].is_object());
  EXPECT_TRUE(b->items[5].members.empty());
  const Json* a = json.Find("a");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(a->Find("x"), nullptr);
  EXPECT_EQ(a->Find("x")->text, "y");
  EXPECT_EQ(json.Find("c"), nullptr);
  EXPECT_EQ(a->Find("X"), nullptr);
}

TEST(JsonParse, ManySiblingsOfNestedContainers) {
  // Sibling vectors reallocate while the tree is built; every nested value
  // must still land in the right place.
  std::string text = "[";
  for (int i = 0; i < 500; ++i) {
    if (i) text += ",";
    text += "{\"k\":[" + std::to_string(i) + ",[\"" + std::to_string(i) + "\"]]}";
  }
  text += "]";
  Json json;
  ASSERT_TRUE(Parse(text, &json).ok());
  ASSERT_EQ(json.items.size(), 500u);
  for (int i = 0; i < 500; ++i) {
    const Json* k = json.items[i].Find("k");
    ASSERT_NE(k, nullptr);
    ASSERT_EQ(k->items.size(), 2u);
    ASSERT_EQ(k->items[0].text, std::to_string(i));
    ASSERT_EQ(k->items[1].items.at(0).text, std::to_string(i));
  }
}

TEST(JsonParse, ScalarDocuments) {
  Json json;
  ASSERT_TRUE(Parse("\"x\"", &json).ok());
  EXPECT_TRUE(json.is_string());
  ASSERT_TRUE(Parse(" 42 ", &json).ok());
  EXPECT_TRUE(json.is_number());
  EXPECT_EQ(json.text, "42");
  ASSERT_TRUE(Parse("null", &json).ok());
  EXPECT_TRUE(json.is_null());
}

TEST(JsonParse, NumbersKeepTheirLiteralText) {
  const char* literals[] = {"1",
                            "1.0",
                            "-0",
                            "-0.0",
                            "0.10",
                            "1e5",
                            "1E+05",
                            "2.5e-3",
                            "1e-400",
                            "123456789012345678901234567890",
                            "9223372036854775808",
                            "-9223372036854775809",
                            "4.9406564584124654e-324",
                            "17976931348623157e292"};
  for (const char* literal : literals) {
    Json json;
    Status status = Parse(std::string("[") + literal + "]", &json);
    ASSERT_TRUE(status.ok()) << literal << ": " << status.message();
    ASSERT_EQ(json.items.size(), 1u);
    EXPECT_EQ(json.items[0].kind, Json::Kind::kNumber) << literal;
    EXPECT_EQ(json.items[0].text, literal);
  }
}

TEST(JsonParse, StringEscapesDecoded) {
  Json json;
  ASSERT_TRUE(Parse(R"(["a\"b\\c\/d\n\r\t\b\f", "\u00e9\u20ac", "\ud83d\ude00", "x\u0000y"])", &json).ok());
  ASSERT_EQ(json.items.size(), 4u);
  EXPECT_EQ(json.items[0].text, "a\"b\\c/d\n\r\t\b\f");
  EXPECT_EQ(json.items[1].text, "\xc3\xa9\xe2\x82\xac");
  EXPECT_EQ(json.items[2].text, "\xf0\x9f\x98\x80");
  EXPECT_EQ(json.items[3].text, "x\0y"s);  // an escaped NUL is data, kept
}

TEST(JsonParse, AcceptsValidUtf8) {
  Json json;
  ASSERT_TRUE(
      Parse("[\"\xc3\xa9\", \"\xe4\xb8\xad\xe6\x96\x87\", \"\xf0\x9f\x98\x80\", \"\xf4\x8f\xbf\xbf\"]", &json).ok());
  EXPECT_EQ(json.items[1].text, "\xe4\xb8\xad\xe6\x96\x87");
  ASSERT_TRUE(Parse("{\"\xc3\xa9\":1}", &json).ok());
  EXPECT_EQ(json.members[0].first, "\xc3\xa9");
}

TEST(JsonParse, RejectsInvalidUtf8) {
  ExpectRejected("\"\xff\"");
  ExpectRejected("\"\xfe\"");
  ExpectRejected("\"\x80\"");              // lone continuation byte
  ExpectRejected("\"\xc0\xaf\"");          // overlong '/'
  ExpectRejected("\"\xc1\xbf\"");          // overlong
  ExpectRejected("\"\xe0\x80\xaf\"");      // overlong, three bytes
  ExpectRejected("\"\xf0\x80\x80\xaf\"");  // overlong, four bytes
  ExpectRejected("\"\xed\xa0\x80\"");      // surrogate U+D800
  ExpectRejected("\"\xed\xbf\xbf\"");      // surrogate U+DFFF
  ExpectRejected("\"\xf4\x90\x80\x80\"");  // past U+10FFFF
  ExpectRejected("\"\xe2\x82\"");          // truncated
  ExpectRejected("\"abc\xc3\"");           // truncated before the quote
  ExpectRejected("{\"\xff\":1}");          // in a key
  ExpectRejected("[\"ok\", \"\xc0\xaf\"]");
  ExpectRejected("\xef\xbb\xbf{}");  // a byte order mark is not JSON
}

TEST(JsonParse, RejectsEscapedSurrogatesThatAreNotPairs) {
  ExpectRejected(R"(["\ud800"])");  // lone high surrogate
  ExpectRejected(R"(["\ud800x"])");
  ExpectRejected(R"(["\ud800\u0041"])");  // high surrogate, then not a low one
}

TEST(JsonParse, RejectsLoneLowSurrogateEscape) {
  // BUG (core/json.cc, ParseJson, lines 127-129): RapidJSON 1.1.0 (the Debian
  // rapidjson-dev in use) only checks surrogate pairs that start with a high
  // surrogate; a lone low-surrogate escape "\udc00" is accepted and encoded
  // as the bytes ED B0 80, so ParseJson returns a string that is not valid
  // UTF-8 despite its contract ("Rejects invalid UTF-8"). Expected: an error;
  // actual: ok, text == "\xed\xb0\x80". Such text passes DecodeBatch (e.g. as
  // a pk value), then EncodeKey refuses it ("primary key column 1 is text that
  // is not valid UTF-8"), and a node that relays it through BatchWriter emits
  // raw invalid UTF-8 that every peer's DecodeBatch refuses.
  ExpectRejected(R"(["\udc00"])");
  ExpectRejected(R"(["\udfff"])");
  ExpectRejected(R"(["a\udc00b"])");
}

TEST(JsonParse, StringsAreValidUtf8AfterEscapes) {
  // Whatever the escapes, a parsed string holds valid UTF-8. Lone low
  // surrogates are covered (and skipped) above; this walks the rest of the BMP.
  for (unsigned cp = 1; cp < 0x10000; cp += 7) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    char escape[16];
    std::snprintf(escape, sizeof escape, "[\"\\u%04x\"]", cp);
    Json json;
    ASSERT_TRUE(Parse(escape, &json).ok()) << escape;
    ASSERT_TRUE(IsValidUtf8(json.items[0].text)) << escape;
  }
}

TEST(JsonParse, RejectsNulBytesAnywhere) {
  Json json;
  Status status = Parse("\0"s, &json);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(OffsetOf(status), 0);
  EXPECT_NE(status.message().find("NUL"), std::string::npos) << status.message();

  status = Parse("{\"a\":1}\0"s, &json);  // after a complete document
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(OffsetOf(status), 7);

  status = Parse("{\"a\":1}\0garbage"s, &json);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(OffsetOf(status), 7);

  status = Parse("[\"a\0b\"]"s, &json);  // raw NUL inside a string
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(OffsetOf(status), 3);

  status = Parse("[1,\0 2]"s, &json);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(OffsetOf(status), 3);
}

TEST(JsonParse, RejectsTrailingContent) {
  ExpectRejected("{} x");
  ExpectRejected("[1]]");
  ExpectRejected("1 2");
  ExpectRejected("{}{}");
  ExpectRejected("\"a\"\"b\"");
  ExpectRejected("null,");
  Json json;
  EXPECT_TRUE(Parse("{} \n\t\r ", &json).ok());  // trailing whitespace is fine
}

TEST(JsonParse, RejectsSyntaxErrors) {
  ExpectRejected("");
  ExpectRejected("   ");
  ExpectRejected("{");
  ExpectRejected("[1,]");
  ExpectRejected("{\"a\":1,}");
  ExpectRejected("{'a':1}");
  ExpectRejected("{a:1}");
  ExpectRejected("[01]");
  ExpectRejected("[+1]");
  ExpectRejected("[.5]");
  ExpectRejected("[1.]");
  ExpectRejected("[NaN]");
  ExpectRejected("[Infinity]");
  ExpectRejected("[\"tab\there\"]");  // raw control character in a string
  ExpectRejected("[\"\\x41\"]");
  ExpectRejected("[tru]");
  ExpectRejected("/* c */ {}");
}

TEST(JsonParse, ReportsTheByteOffset) {
  Json json;
  Status status = Parse("[1,,2]", &json);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message().rfind("malformed JSON at byte 3: ", 0), 0u) << status.message();
  status = Parse("[1]]", &json);
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(OffsetOf(status), 3);
  status = Parse("[\"ok\", \"\xff\"]", &json);
  ASSERT_FALSE(status.ok());
  EXPECT_GE(OffsetOf(status), 7);
  EXPECT_LE(OffsetOf(status), 8);
}

TEST(JsonParse, RejectsDuplicateKeys) {
  Json json;
  Status status = Parse(R"({"a":1,"a":2})", &json);
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.message().find("duplicate key \"a\""), std::string::npos) << status.message();
  EXPECT_GE(OffsetOf(status), 0);
  ExpectRejected(R"({"a":1,"b":2,"a":1})", "duplicate key");
  ExpectRejected(R"({"x":{"id":1,"id":1}})", "duplicate key \"id\"");
  ExpectRejected(R"([{"k":[{"q":1,"q":{}}]}])", "duplicate key \"q\"");
  ExpectRejected("{\"\":1,\"\":2}", "duplicate key");
  // The same key in different objects, and keys differing in case, are fine.
  EXPECT_TRUE(Parse(R"({"a":{"a":1},"b":{"a":2},"A":3})", &json).ok());
}

std::string Nested(int depth, bool objects) {
  std::string text;
  for (int i = 0; i < depth; ++i)
    text += objects ? "{\"k\":" : "[";
  text += "1";
  for (int i = 0; i < depth; ++i)
    text += objects ? "}" : "]";
  return text;
}

TEST(JsonParse, NestingLimit) {
  ASSERT_EQ(kMaxJsonDepth, 64);
  Json json;
  EXPECT_TRUE(Parse(Nested(kMaxJsonDepth, false), &json).ok());
  EXPECT_TRUE(Parse(Nested(kMaxJsonDepth, true), &json).ok());
  // The innermost value is really there.
  const Json* node = &json;
  for (int i = 0; i < kMaxJsonDepth; ++i)
    node = node->Find("k");
  ASSERT_NE(node, nullptr);
  EXPECT_EQ(node->text, "1");

  ExpectRejected(Nested(kMaxJsonDepth + 1, false), "nesting deeper than 64");
  ExpectRejected(Nested(kMaxJsonDepth + 1, true), "nesting deeper than 64");
  // Mixed containers count alike.
  std::string mixed;
  for (int i = 0; i < kMaxJsonDepth + 1; ++i)
    mixed += (i % 2) ? "{\"k\":" : "[";
  ExpectRejected(mixed, "nesting deeper");
  // Very deep input is refused without exhausting the stack.
  ExpectRejected(std::string(200000, '['), "nesting deeper");
  // Depth is nesting, not the number of containers.
  std::string wide = "[";
  for (int i = 0; i < 1000; ++i)
    wide += (i ? "," : "") + Nested(kMaxJsonDepth - 1, false);
  EXPECT_TRUE(Parse(wide + "]", &json).ok());
}

TEST(JsonParse, KindNames) {
  EXPECT_STREQ(JsonKindName(Json::Kind::kNull), "null");
  EXPECT_STREQ(JsonKindName(Json::Kind::kTrue), "boolean");
  EXPECT_STREQ(JsonKindName(Json::Kind::kFalse), "boolean");
  EXPECT_STREQ(JsonKindName(Json::Kind::kNumber), "number");
  EXPECT_STREQ(JsonKindName(Json::Kind::kString), "string");
  EXPECT_STREQ(JsonKindName(Json::Kind::kArray), "array");
  EXPECT_STREQ(JsonKindName(Json::Kind::kObject), "object");
}

// ---------------------------------------------------------------- UTF-8

TEST(Utf8, ValidCases) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("plain ascii"));
  EXPECT_TRUE(IsValidUtf8("a\0b"s));  // NUL is a valid character
  EXPECT_TRUE(IsValidUtf8("\x7f"));
  EXPECT_TRUE(IsValidUtf8("\xc2\x80"));          // U+0080
  EXPECT_TRUE(IsValidUtf8("\xdf\xbf"));          // U+07FF
  EXPECT_TRUE(IsValidUtf8("\xe0\xa0\x80"));      // U+0800
  EXPECT_TRUE(IsValidUtf8("\xed\x9f\xbf"));      // U+D7FF
  EXPECT_TRUE(IsValidUtf8("\xee\x80\x80"));      // U+E000
  EXPECT_TRUE(IsValidUtf8("\xef\xbf\xbf"));      // U+FFFF
  EXPECT_TRUE(IsValidUtf8("\xf0\x90\x80\x80"));  // U+10000
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));  // U+10FFFF
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x98\x80 \xe4\xb8\xad\xe6\x96\x87 \xc3\xa9"));
}

TEST(Utf8, InvalidCases) {
  const std::vector<std::string> bad = {
      "\x80",
      "\xbf",
      "\xc0\x80",
      "\xc1\xbf",
      "\xc2",
      "\xc2\x41",
      "\xc2\xc2\x80",
      "\xe0\x80\x80",
      "\xe0\x9f\xbf",
      "\xed\xa0\x80",
      "\xed\xbf\xbf",
      "\xe2\x82",
      "\xe2\x28\xa1",
      "\xf0\x80\x80\x80",
      "\xf0\x8f\xbf\xbf",
      "\xf4\x90\x80\x80",
      "\xf5\x80\x80\x80",
      "\xf8\x88\x80\x80\x80",
      "\xfe",
      "\xff",
      "\xf0\x9f\x98",
      "ok\xff",
      "\xc3\xa9\xa9",
  };
  for (const std::string& s : bad)
    EXPECT_FALSE(IsValidUtf8(s)) << testing::PrintToString(s);
}

TEST(Utf8, StopsAtTheEndOfTheView) {
  // The bytes after the view complete the sequence; they must not be read.
  const std::string buffer = "a\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80";
  EXPECT_TRUE(IsValidUtf8(std::string_view(buffer.data(), 1)));
  EXPECT_FALSE(IsValidUtf8(std::string_view(buffer.data(), 2)));
  EXPECT_TRUE(IsValidUtf8(std::string_view(buffer.data(), 3)));
  EXPECT_FALSE(IsValidUtf8(std::string_view(buffer.data(), 4)));
  EXPECT_FALSE(IsValidUtf8(std::string_view(buffer.data(), 5)));
  EXPECT_TRUE(IsValidUtf8(std::string_view(buffer.data(), 6)));
  for (std::size_t n = 7; n < buffer.size(); ++n)
    EXPECT_FALSE(IsValidUtf8(std::string_view(buffer.data(), n))) << n;
  EXPECT_TRUE(IsValidUtf8(buffer));
}

// A reference validator written differently: split by the lead byte's length
// and require each chunk to be exactly the encoding of a valid code point.
void EncodeUtf8(std::uint32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

bool ReferenceUtf8(const std::string& s) {
  std::size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    std::uint32_t cp = len == 1 ? c : (c & (0x7f >> len));
    for (std::size_t k = 1; k < len; ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3f);
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    std::string again;
    EncodeUtf8(cp, &again);
    if (again != s.substr(i, len)) return false;
    i += len;
  }
  return true;
}

TEST(Utf8, EveryCodePointEncodingIsValid) {
  std::string all;
  for (std::uint32_t cp = 0; cp <= 0x10ffff; ++cp) {
    if (cp >= 0xd800 && cp <= 0xdfff) continue;
    std::string one;
    EncodeUtf8(cp, &one);
    ASSERT_TRUE(IsValidUtf8(one)) << std::hex << cp;
    if (cp % 97 == 0) all += one;
  }
  EXPECT_TRUE(IsValidUtf8(all));
  for (std::uint32_t cp = 0xd800; cp <= 0xdfff; ++cp) {
    std::string surrogate;
    EncodeUtf8(cp, &surrogate);
    ASSERT_FALSE(IsValidUtf8(surrogate)) << std::hex << cp;
  }
}

TEST(Utf8, AgreesWithAReferenceOnEveryTwoByteString) {
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) {
      std::string s{static_cast<char>(a), static_cast<char>(b)};
      ASSERT_EQ(IsValidUtf8(s), ReferenceUtf8(s)) << testing::PrintToString(s);
    }
  }
}

TEST(Utf8, AgreesWithAReferenceOnRandomStrings) {
  std::mt19937_64 rng(21);
  int valid = 0;
  for (int i = 0; i < 300000; ++i) {
    std::string s(1 + rng() % 6, '\0');
    for (char& c : s) {
      // Mostly bytes from the interesting high range, with some ASCII.
      std::uint64_t r = rng();
      c = static_cast<char>((r & 0x700) == 0 ? (r & 0x7f) : (0x80 | (r & 0x7f)));
      if ((r & 0x7000) == 0) c = static_cast<char>(0xe0 | (r & 0x1f) >> 1);
    }
    bool expected = ReferenceUtf8(s);
    valid += expected;
    ASSERT_EQ(IsValidUtf8(s), expected) << testing::PrintToString(s);
  }
  EXPECT_GT(valid, 1000);  // the sample exercised the accepting paths too
}

// ---------------------------------------------------------------- writing

// Long mostly-ASCII strings, so that the eight-byte ASCII skip meets every
// kind of byte at every offset within and across words.
std::string MostlyAscii(std::mt19937_64& rng, std::size_t size) {
  std::string s(size, 'a');
  for (char& c : s) {
    std::uint64_t r = rng();
    if ((r & 0xf) == 0)
      c = static_cast<char>(0x80 | (r >> 8 & 0x7f));  // a high byte
    else if ((r & 0xf) == 1)
      c = static_cast<char>(r >> 8 & 0x1f);  // a control byte
    else
      c = static_cast<char>(0x20 + (r >> 8) % 0x5f);
  }
  return s;
}

bool ReferencePlainJsonText(const std::string& s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') return false;
  }
  return ReferenceUtf8(s);
}

TEST(Utf8, AgreesWithAReferenceOnLongMostlyAsciiStrings) {
  std::mt19937_64 rng(22);
  int valid = 0, plain = 0;
  for (int i = 0; i < 100000; ++i) {
    std::string s = MostlyAscii(rng, rng() % 40);
    // Mostly one odd byte at a random place in an ASCII run.
    if (i % 4 != 0) {
      std::string run(s.size(), 'x');
      if (!s.empty()) run[rng() % s.size()] = s[rng() % s.size()];
      s = run;
    }
    bool expected = ReferenceUtf8(s);
    valid += expected;
    ASSERT_EQ(IsValidUtf8(s), expected) << testing::PrintToString(s);
    expected = ReferencePlainJsonText(s);
    plain += expected;
    ASSERT_EQ(IsPlainJsonText(s), expected) << testing::PrintToString(s);
  }
  EXPECT_GT(valid, 1000);
  EXPECT_GT(plain, 1000);
}

TEST(Utf8, PlainJsonTextRefusesControlBytesButWhitespace) {
  for (int c = 0; c < 0x20; ++c) {
    for (std::size_t at : {0, 5, 7, 8, 15, 16, 23}) {
      std::string s(24, 'q');
      s[at] = static_cast<char>(c);
      bool whitespace = c == '\t' || c == '\n' || c == '\r';
      EXPECT_EQ(IsPlainJsonText(s), whitespace) << c << " at " << at;
      EXPECT_TRUE(IsValidUtf8(s)) << c << " at " << at;
    }
  }
  EXPECT_TRUE(IsPlainJsonText("{\"\xc3\xa9\": \"\xf0\x9f\x98\x80\x7f\"}\r\n"));
  EXPECT_FALSE(IsPlainJsonText("{\"a\": \"\xc3\"}  padding past eight"));
  EXPECT_TRUE(IsPlainJsonText(""));
}

TEST(JsonWriterTest, StructureAndSeparators) {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("a");
  w.Int(1);
  w.Key("b");
  w.BeginArray();
  w.Int(-2);
  w.Bool(true);
  w.Bool(false);
  w.Null();
  w.BeginObject();
  w.EndObject();
  w.BeginArray();
  w.EndArray();
  w.Double(0.5);
  w.EndArray();
  w.Key("c");
  w.String("x");
  w.Key("d");
  w.Raw("[7]");
  w.EndObject();
  EXPECT_EQ(out, R"({"a":1,"b":[-2,true,false,null,{},[],0.5],"c":"x","d":[7]})");
  Json json;
  EXPECT_TRUE(ParseJson(out, &json).ok());
}

TEST(JsonWriterTest, EscapesQuotesBackslashAndControlCharacters) {
  std::string out;
  JsonWriter w(&out);
  w.String("q\"b\\s/n\nr\rt\tb\bf\f\x01\x1f\x7f\0z \xc3\xa9"s);
  EXPECT_EQ(out, "\"q\\\"b\\\\s/n\\nr\\rt\\tb\\bf\\f\\u0001\\u001f\x7f\\u0000z \xc3\xa9\""s);
}

TEST(JsonWriterTest, EveryControlCharacterIsEscapedAndReadsBack) {
  std::string all;
  for (int c = 0; c < 0x80; ++c)
    all.push_back(static_cast<char>(c));
  all += "\xe4\xb8\xad\xf0\x9f\x98\x80";
  std::string out;
  JsonWriter w(&out);
  w.String(all);
  for (std::size_t i = 1; i + 1 < out.size(); ++i) {
    ASSERT_GE(static_cast<unsigned char>(out[i]), 0x20u) << "raw control byte at " << i;
  }
  Json json;
  Status status = ParseJson(out, &json);
  ASSERT_TRUE(status.ok()) << status.message();
  EXPECT_EQ(json.text, all);
  // Keys are escaped the same way.
  out.clear();
  JsonWriter k(&out);
  k.BeginObject();
  k.Key("a\"\n");
  k.Int(1);
  k.EndObject();
  EXPECT_EQ(out, "{\"a\\\"\\n\":1}");
}

// The escaping JsonWriter::String did one character at a time.
std::string ReferenceJsonString(const std::string& text) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"')
      out += "\\\"";
    else if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += "\\t";
    else if (c == '\b')
      out += "\\b";
    else if (c == '\f')
      out += "\\f";
    else if (c < 0x20)
      out += std::string("\\u00") + kHex[c >> 4] + kHex[c & 0xf];
    else
      out.push_back(ch);
  }
  return out + "\"";
}

TEST(JsonWriterTest, StringMatchesAReferenceAtEveryOffset) {
  // Escaped bytes at every offset of words read eight bytes at a time, and
  // bytes next to the ones escaped ('!' 0x21, '#' 0x23, '[' 0x5b, ']' 0x5d,
  // 0x1f, 0x7f, 0x80, 0xff).
  const std::string pool = "ab!#[]\x7f\x80\xff\x1f\x01\"\\\n\t\x00"s;
  std::mt19937_64 rng(23);
  for (int i = 0; i < 50000; ++i) {
    std::string text(rng() % 40, 'x');
    for (char& c : text) {
      if (rng() % 4 == 0) c = pool[rng() % pool.size()];
    }
    std::string out;
    JsonWriter writer(&out);
    writer.String(text);
    ASSERT_EQ(out, ReferenceJsonString(text)) << testing::PrintToString(text);
  }
}

TEST(JsonWriterTest, IntExtremes) {
  std::string out;
  JsonWriter w(&out);
  w.BeginArray();
  w.Int(INT64_MIN);
  w.Int(INT64_MAX);
  w.Int(0);
  w.Int(-1);
  w.EndArray();
  EXPECT_EQ(out, "[-9223372036854775808,9223372036854775807,0,-1]");
}

std::string WriteDouble(double v) {
  std::string out;
  JsonWriter w(&out);
  w.Double(v);
  return out;
}

// Reads back a written double and checks it is a float literal, bit-exact.
void ExpectDoubleRoundTrip(double v) {
  std::string text = WriteDouble(v);
  ASSERT_NE(text.find_first_of(".e"), std::string::npos) << text;
  double back = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), back);
  ASSERT_EQ(ec, std::errc()) << text;
  ASSERT_EQ(ptr, text.data() + text.size()) << text;
  ASSERT_EQ(std::memcmp(&back, &v, sizeof v), 0) << text;
  Json json;
  ASSERT_TRUE(ParseJson(text, &json).ok()) << text;  // and it is valid JSON
  ASSERT_TRUE(json.is_number()) << text;
}

TEST(JsonWriterTest, DoubleKnownTexts) {
  EXPECT_EQ(WriteDouble(1.0), "1.0");
  EXPECT_EQ(WriteDouble(0.0), "0.0");
  EXPECT_EQ(WriteDouble(-0.0), "-0.0");
  EXPECT_EQ(WriteDouble(-3.0), "-3.0");
  EXPECT_EQ(WriteDouble(0.1), "0.1");
  EXPECT_EQ(WriteDouble(1.5), "1.5");
  EXPECT_EQ(WriteDouble(123456789.0), "123456789.0");
  EXPECT_EQ(WriteDouble(1e100), "1e+100");
  EXPECT_EQ(WriteDouble(5e-324), "5e-324");
  EXPECT_EQ(WriteDouble(9007199254740993.0), "9007199254740992.0");
}

TEST(JsonWriterTest, DoubleEdgeValuesRoundTrip) {
  const double values[] = {0.0,
                           -0.0,
                           1.0,
                           -1.0,
                           0.1,
                           1.0 / 3,
                           1e21,
                           1e22,
                           1e23,
                           123456789012345680000.0,
                           9007199254740992.0,
                           std::numeric_limits<double>::max(),
                           -std::numeric_limits<double>::max(),
                           std::numeric_limits<double>::min(),
                           std::numeric_limits<double>::denorm_min(),
                           -std::numeric_limits<double>::denorm_min(),
                           std::numeric_limits<double>::epsilon(),
                           2.2250738585072009e-308};
  for (double v : values)
    ExpectDoubleRoundTrip(v);
  EXPECT_EQ(WriteDouble(-0.0)[0], '-');
}

TEST(JsonWriterTest, RandomDoublesRoundTrip) {
  std::mt19937_64 rng(22);
  for (int i = 0; i < 20000; ++i) {
    double v;
    if (i % 3 == 0) {
      std::uint64_t bits = rng();
      std::memcpy(&v, &bits, sizeof v);
      if (!std::isfinite(v)) continue;
    } else if (i % 3 == 1) {
      v = static_cast<double>(static_cast<std::int64_t>(rng()) >> (rng() % 64));  // integral values
    } else {
      v = std::ldexp(static_cast<double>(rng() >> 11), static_cast<int>(rng() % 200) - 100);
    }
    ExpectDoubleRoundTrip(v);
    if (HasFatalFailure()) return;
  }
}

// ---------------------------------------------------------------- base64

TEST(Base64, Rfc4648Vectors) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foob"), "Zm9vYg==");
  EXPECT_EQ(Base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode("\x00\x01"s), "AAE=");
  EXPECT_EQ(Base64Encode("\xff\xfe\xfd"), "//79");
  EXPECT_EQ(Base64Encode("\xfb\xff"), "+/8=");
  std::string out;
  ASSERT_TRUE(Base64Decode("Zm9vYmE=", &out));
  EXPECT_EQ(out, "fooba");
  ASSERT_TRUE(Base64Decode("+/8=", &out));
  EXPECT_EQ(out, "\xfb\xff");
  ASSERT_TRUE(Base64Decode("", &out));
  EXPECT_EQ(out, "");
}

TEST(Base64, RandomRoundTrip) {
  std::mt19937_64 rng(23);
  for (std::size_t len = 0; len <= 64; ++len) {
    for (int rep = 0; rep < 30; ++rep) {
      std::string bytes(len, '\0');
      for (char& c : bytes)
        c = static_cast<char>(rng());
      std::string text = Base64Encode(bytes);
      ASSERT_EQ(text.size(), (len + 2) / 3 * 4);
      for (char c : text) {
        ASSERT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/' || c == '=') << text;
      }
      std::string back = "stale";
      ASSERT_TRUE(Base64Decode(text, &back)) << text;
      ASSERT_EQ(back, bytes);
    }
  }
}

TEST(Base64, RejectsBadLength) {
  std::string out;
  for (const char* text : {"A", "AB", "ABC", "ABCDE", "Zg=", "Zg", "Zm9vY", "Zm9vYmFy=", "Zg==="}) {
    EXPECT_FALSE(Base64Decode(text, &out)) << text;
  }
}

TEST(Base64, RejectsTruncatedViews) {
  // The bytes after the view would complete the text; they must not be read.
  const std::string buffer = "Zm9vYmFy";
  std::string out;
  for (std::size_t n = 1; n < buffer.size(); ++n) {
    EXPECT_EQ(Base64Decode(std::string_view(buffer.data(), n), &out), n == 4) << n;
  }
  EXPECT_TRUE(Base64Decode(buffer, &out));
  EXPECT_EQ(out, "foobar");
}

TEST(Base64, RejectsBadAlphabet) {
  std::string out;
  for (const char* text : {"AB*D", "AB D", "AB\nD", "-_8=", "Zm9v\xc3\xa9xx", "Zm9v YmFy", "AAA.", "@@@@",
                           "Zg==Zg==", "Z===", "====", "=AAA", "A=AA", "AA=A", "Zm9v====", "Zm8=Zm8="}) {
    EXPECT_FALSE(Base64Decode(text, &out)) << testing::PrintToString(std::string(text));
  }
  EXPECT_FALSE(Base64Decode("Zg\0="s, &out));
  EXPECT_FALSE(Base64Decode("\0\0\0\0"s, &out));
}

TEST(Base64, RejectsNonCanonicalPaddingBits) {
  std::string out;
  EXPECT_FALSE(Base64Decode("QR==", &out));
  EXPECT_FALSE(Base64Decode("Zh==", &out));
  EXPECT_FALSE(Base64Decode("Zm9=", &out));
  EXPECT_FALSE(Base64Decode("QUJ=", &out));
  EXPECT_TRUE(Base64Decode("QQ==", &out));
  EXPECT_EQ(out, "A");
  EXPECT_TRUE(Base64Decode("QUI=", &out));
  EXPECT_EQ(out, "AB");
}

TEST(Base64, ExactlyTheCanonicalPaddedFormsDecode) {
  // Over every "XY==" and "XYZ=" text: decoding succeeds exactly when the
  // text is what the encoder produces for the decoded bytes.
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  int accepted2 = 0, accepted3 = 0;
  std::string out;
  for (int a = 0; a < 64; ++a) {
    for (int b = 0; b < 64; ++b) {
      std::string text{kAlphabet[a], kAlphabet[b], '=', '='};
      bool ok = Base64Decode(text, &out);
      if (ok) {
        ++accepted2;
        ASSERT_EQ(out.size(), 1u);
        ASSERT_EQ(Base64Encode(out), text);
      }
      for (int c = 0; c < 64; ++c) {
        std::string text3{kAlphabet[a], kAlphabet[b], kAlphabet[c], '='};
        if (Base64Decode(text3, &out)) {
          ++accepted3;
          ASSERT_EQ(out.size(), 2u);
          ASSERT_EQ(Base64Encode(out), text3);
        }
      }
    }
  }
  EXPECT_EQ(accepted2, 256);    // one text per byte value
  EXPECT_EQ(accepted3, 65536);  // one text per pair of bytes
}

}  // namespace
