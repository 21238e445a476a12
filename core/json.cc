#include "core/json.h"

#include <charconv>
#include <cmath>
#include <cstring>

#include "core/float_text.h"
#include "core/rapidjson.h"

namespace syncline::core {

const Json* Json::Find(std::string_view key) const {
  for (const auto& [name, value] : members) {
    if (name == key) return &value;
  }
  return nullptr;
}

const char* JsonKindName(Json::Kind kind) {
  switch (kind) {
    case Json::Kind::kNull: return "null";
    case Json::Kind::kFalse:
    case Json::Kind::kTrue: return "boolean";
    case Json::Kind::kNumber: return "number";
    case Json::Kind::kString: return "string";
    case Json::Kind::kArray: return "array";
    case Json::Kind::kObject: return "object";
  }
  return "unknown";
}

namespace {

void WriteJson(JsonWriter& writer, const Json& json) {
  switch (json.kind) {
    case Json::Kind::kNull: writer.Null(); return;
    case Json::Kind::kFalse: writer.Bool(false); return;
    case Json::Kind::kTrue: writer.Bool(true); return;
    case Json::Kind::kNumber: writer.Raw(json.text); return;
    case Json::Kind::kString: writer.String(json.text); return;
    case Json::Kind::kArray:
      writer.BeginArray();
      for (const Json& item : json.items)
        WriteJson(writer, item);
      writer.EndArray();
      return;
    case Json::Kind::kObject:
      writer.BeginObject();
      for (const auto& member : json.members) {
        writer.Key(member.first);
        WriteJson(writer, member.second);
      }
      writer.EndObject();
      return;
  }
}

}  // namespace

std::string StringMember(const Json& json, std::string_view key) {
  const Json* member = json.Find(key);
  return member != nullptr && member->is_string() ? member->text : "";
}

std::string JsonText(const Json& json) {
  std::string text;
  JsonWriter writer(&text);
  WriteJson(writer, json);
  return text;
}

namespace {

// Builds a Json tree from SAX events. The stack holds the containers being
// filled; a value goes into the top container (or becomes the root).
class TreeBuilder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, TreeBuilder> {
 public:
  explicit TreeBuilder(Json* root) : root_(root) {}

  bool Null() { return Add(Json{}); }
  bool Bool(bool b) { return Add(Scalar(b ? Json::Kind::kTrue : Json::Kind::kFalse, {})); }
  bool RawNumber(const char* str, rapidjson::SizeType length, bool) {
    return Add(Scalar(Json::Kind::kNumber, std::string_view(str, length)));
  }
  bool String(const char* str, rapidjson::SizeType length, bool) {
    if (!CheckText(str, length)) return false;
    return Add(Scalar(Json::Kind::kString, std::string_view(str, length)));
  }
  bool StartObject() { return Open(Json::Kind::kObject); }
  bool Key(const char* str, rapidjson::SizeType length, bool) {
    if (!CheckText(str, length)) return false;
    Json* object = stack_.back();
    std::string_view key(str, length);
    // Duplicate keys make a batch ambiguous (which "id" wins?): refuse them.
    if (object->Find(key) != nullptr) {
      error_ = "duplicate key \"" + std::string(key) + "\"";
      return false;
    }
    object->members.emplace_back(std::string(key), Json{});
    return true;
  }
  bool EndObject(rapidjson::SizeType) {
    stack_.pop_back();
    return true;
  }
  bool StartArray() { return Open(Json::Kind::kArray); }
  bool EndArray(rapidjson::SizeType) {
    stack_.pop_back();
    return true;
  }

  const std::string& error() const { return error_; }

 private:
  // RapidJSON validates raw bytes but decodes a lone low-surrogate escape
  // ("\udc00") into bytes that are not UTF-8: check what it produced.
  bool CheckText(const char* str, rapidjson::SizeType length) {
    if (IsValidUtf8(std::string_view(str, length))) return true;
    error_ = "string is not valid UTF-8 (a lone surrogate escape?)";
    return false;
  }

  static Json Scalar(Json::Kind kind, std::string_view text) {
    Json json;
    json.kind = kind;
    json.text.assign(text);
    return json;
  }

  // Places a value and returns where it now lives.
  Json* Place(Json&& value) {
    if (stack_.empty()) {
      *root_ = std::move(value);
      return root_;
    }
    Json* parent = stack_.back();
    if (parent->kind == Json::Kind::kArray) {
      parent->items.push_back(std::move(value));
      return &parent->items.back();
    }
    parent->members.back().second = std::move(value);
    return &parent->members.back().second;
  }

  bool Add(Json&& value) {
    Place(std::move(value));
    return true;
  }

  bool Open(Json::Kind kind) {
    if (stack_.size() >= kMaxJsonDepth) {
      error_ = "nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels";
      return false;
    }
    Json container;
    container.kind = kind;
    // Children are appended to the container at the top of the stack; vectors
    // of siblings may reallocate, but only the innermost open container's
    // vector grows while it is open, so the pointers on the stack stay valid.
    stack_.push_back(Place(std::move(container)));
    return true;
  }

  Json* root_;
  std::vector<Json*> stack_;
  std::string error_;
};

}  // namespace

Status ParseJson(std::string_view input, Json* out) {
  *out = Json{};
  // RapidJSON takes a NUL byte for the end of input, which would let anything
  // after it pass unread. JSON text never holds a raw NUL (strings escape it).
  if (const void* nul = std::memchr(input.data(), '\0', input.size()))
    return Status(Code::kInvalidInput, "malformed JSON at byte " +
                                           std::to_string(static_cast<const char*>(nul) - input.data()) +
                                           ": NUL byte in input");
  TreeBuilder builder(out);
  rapidjson::Reader reader;
  rapidjson::MemoryStream stream(input.data(), input.size());
  constexpr unsigned kFlags =
      rapidjson::kParseValidateEncodingFlag | rapidjson::kParseIterativeFlag | rapidjson::kParseNumbersAsStringsFlag;
  rapidjson::ParseResult result = reader.Parse<kFlags>(stream, builder);
  if (!result) {
    std::string why = builder.error().empty() ? rapidjson::GetParseError_En(result.Code()) : builder.error();
    return Status(Code::kInvalidInput, "malformed JSON at byte " + std::to_string(result.Offset()) + ": " + why);
  }
  return Status::Ok();
}

namespace {

// The length of the UTF-8 sequence that starts at s[i] (a byte >= 0x80), or
// 0 when it is not valid: overlong forms, surrogates and code points past
// U+10FFFF are not.
std::size_t Utf8SequenceLength(const unsigned char* s, std::size_t i, std::size_t n) {
  unsigned char c = s[i];
  std::size_t len;
  std::uint32_t cp;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2, cp = c & 0x1f;
  else if (c >= 0xe0 && c <= 0xef)
    len = 3, cp = c & 0x0f;
  else if (c >= 0xf0 && c <= 0xf4)
    len = 4, cp = c & 0x07;
  else
    return 0;
  if (i + len > n) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    if ((s[i + k] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (s[i + k] & 0x3f);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
    return 0;
  return len;
}

constexpr std::uint64_t kHighBits = 0x8080808080808080u;

// Eight bytes at a time through the ASCII that batches mostly are. With
// printable, also only where no byte is below 0x20: for a byte b < 0x80,
// b + 0x60 carries into the high bit exactly when b >= 0x20, and never into
// the next byte.
template <bool printable> std::size_t SkipAscii(const unsigned char* s, std::size_t i, std::size_t n) {
  std::uint64_t word;
  while (i + 8 <= n) {
    std::memcpy(&word, s + i, 8);
    if ((word & kHighBits) != 0) break;
    if (printable && ((word + 0x6060606060606060u) & kHighBits) != kHighBits) break;
    i += 8;
  }
  return i;
}

}  // namespace

bool IsValidUtf8(std::string_view bytes) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t n = bytes.size(), i = 0;
  while ((i = SkipAscii<false>(s, i, n)) < n) {
    if (s[i] < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = Utf8SequenceLength(s, i, n);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

bool IsPlainJsonText(std::string_view bytes) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t n = bytes.size(), i = 0;
  while ((i = SkipAscii<true>(s, i, n)) < n) {
    unsigned char c = s[i];
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') return false;
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = Utf8SequenceLength(s, i, n);
    if (len == 0) return false;
    i += len;
  }
  return true;
}

namespace {

// The first index from i on of a word of eight bytes that holds a byte JSON
// escapes (below 0x20, '"' or '\\'), or of the last few bytes. Bit tricks
// from "Bit Twiddling Hacks" (hasless, haszero): (x - 0x01..01 * n) & ~x &
// 0x80..80 is nonzero exactly when some byte of x is below n (n <= 128).
std::size_t SkipUnescaped(std::string_view text, std::size_t i) {
  constexpr std::uint64_t kOnes = 0x0101010101010101u;
  while (i + 8 <= text.size()) {
    std::uint64_t x;
    std::memcpy(&x, text.data() + i, 8);
    std::uint64_t quote = x ^ (kOnes * '"'), backslash = x ^ (kOnes * '\\');
    std::uint64_t found = ((x - kOnes * 0x20) & ~x) | ((quote - kOnes) & ~quote) | ((backslash - kOnes) & ~backslash);
    if ((found & kHighBits) != 0) break;
    i += 8;
  }
  return i;
}

}  // namespace

void JsonWriter::String(std::string_view text) {
  Separate();
  static constexpr char kHex[] = "0123456789abcdef";
  out_->push_back('"');
  // Runs of characters that need no escape are appended whole; they are
  // found eight bytes at a time where possible.
  std::size_t run = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    i = SkipUnescaped(text, i);
    if (i == text.size()) break;
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out_->append(text.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out_->append("\\\""); break;
      case '\\': out_->append("\\\\"); break;
      case '\n': out_->append("\\n"); break;
      case '\r': out_->append("\\r"); break;
      case '\t': out_->append("\\t"); break;
      case '\b': out_->append("\\b"); break;
      case '\f': out_->append("\\f"); break;
      default:
        out_->append("\\u00");
        out_->push_back(kHex[c >> 4]);
        out_->push_back(kHex[c & 0xf]);
    }
  }
  out_->append(text.data() + run, text.size() - run);
  out_->push_back('"');
}

void JsonWriter::Int(std::int64_t value) {
  Separate();
  char buf[24];
  auto result = std::to_chars(buf, buf + sizeof buf, value);
  out_->append(buf, result.ptr);
}

void JsonWriter::Double(double value) {
  Separate();
  char buf[kDoubleTextSize];
  std::string_view text(buf, FormatDouble(value, buf) - buf);
  out_->append(text);
  // Mark it as a float literal so that readers never take it for an integer.
  if (text.find_first_of(".e") == std::string_view::npos) out_->append(".0");
}

namespace {

constexpr char kBase64Alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// Each byte's value in the alphabet, or -1.
struct Base64Sextets {
  constexpr Base64Sextets() : of() {
    for (int c = 0; c < 256; ++c)
      of[c] = -1;
    for (int i = 0; i < 64; ++i)
      of[static_cast<unsigned char>(kBase64Alphabet[i])] = static_cast<signed char>(i);
  }
  signed char of[256];
};
constexpr Base64Sextets kBase64Sextets;

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out((bytes.size() + 2) / 3 * 4, '\0');
  char* o = out.data();
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    std::uint32_t v = (s[i] << 16) | (s[i + 1] << 8) | s[i + 2];
    *o++ = kBase64Alphabet[v >> 18];
    *o++ = kBase64Alphabet[(v >> 12) & 63];
    *o++ = kBase64Alphabet[(v >> 6) & 63];
    *o++ = kBase64Alphabet[v & 63];
  }
  std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t v = s[i] << 16;
    if (rest == 2) v |= s[i + 1] << 8;
    *o++ = kBase64Alphabet[v >> 18];
    *o++ = kBase64Alphabet[(v >> 12) & 63];
    *o++ = rest == 2 ? kBase64Alphabet[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
  return out;
}

bool Base64Decode(std::string_view text, std::string* out) {
  out->clear();
  if (text.size() % 4 != 0) return false;
  // Padding, only at the very end: "x===" is not a form, "xx==" and "xxx=" are.
  std::size_t pad = 0;
  if (!text.empty() && text.back() == '=') pad = text[text.size() - 2] == '=' ? 2 : 1;
  out->resize(text.size() / 4 * 3);
  char* o = out->data();
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  for (std::size_t i = 0; i < text.size(); i += 4) {
    std::size_t digits = i + 4 == text.size() ? 4 - pad : 4;
    std::uint32_t v = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      int d = k < digits ? kBase64Sextets.of[s[i + k]] : 0;
      if (d < 0) return false;
      v = (v << 6) | static_cast<std::uint32_t>(d);
    }
    *o++ = static_cast<char>(v >> 16);
    *o++ = static_cast<char>((v >> 8) & 0xff);
    *o++ = static_cast<char>(v & 0xff);
  }
  // Canonical form only: the bits under the padding must be zero.
  if ((pad == 1 && (out->back() != '\0')) || (pad == 2 && (out->end()[-2] != '\0' || out->back() != '\0')))
    return false;
  out->resize(out->size() - pad);
  return true;
}

}  // namespace syncline::core
