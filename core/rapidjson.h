// RapidJSON, configured once for every file of the core that includes it
// (json.cc, key.cc, batch_header.cc, changeset_streaming.cc): its classes must
// be defined the same way in each.
//
// SSE2 (part of x86-64) lets RapidJSON skip whitespace and copy unescaped
// string runs 16 bytes at a time when it reads a NUL-terminated stream
// (StringStream, InsituStringStream). Those loads are aligned and stop at the
// first NUL, but may read up to 15 bytes past it: such a buffer needs 16 bytes
// of padding (see DecodeBatchStreaming). RapidJSON 1.1.0's SIMD string scan
// also lets the control bytes 0x1a-0x1f through (it tests max(s, 0x19) ==
// 0x19 for s < 0x20): a text must be screened for them first
// (IsPlainJsonText). MemoryStream, which ParseJson reads, never takes these
// paths.
#pragma once

#if defined(__SSE2__) && !defined(RAPIDJSON_SSE2)
#define RAPIDJSON_SSE2
#endif

#include <rapidjson/error/en.h>
#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include <cstring>
#include <memory>
#include <string_view>

namespace syncline::core {

// Runs a streaming reader (BatchReader, KeyReader) over a text that passed
// IsPlainJsonText. In situ: RapidJSON decodes each string in place, in a copy
// of the text (NUL-terminated, with the padding core/rapidjson.h asks for),
// and hands it over without copying it again. Recursive, not iterative
// (kParseIterativeFlag), which is slower: the recursion cannot go deep,
// because the readers refuse a container anywhere an accepted text has none,
// and RapidJSON asks them before it descends.
template <typename Handler> inline bool ParseInSitu(std::string_view text, Handler& handler) {
  constexpr std::size_t kPadding = 16;
  std::unique_ptr<char[]> buffer(new char[text.size() + kPadding]);
  std::memcpy(buffer.get(), text.data(), text.size());
  std::memset(buffer.get() + text.size(), 0, kPadding);
  rapidjson::Reader parser;
  rapidjson::InsituStringStream stream(buffer.get());
  constexpr unsigned kFlags = rapidjson::kParseInsituFlag | rapidjson::kParseNumbersAsStringsFlag;
  return !parser.Parse<kFlags>(stream, handler).IsError();
}

}  // namespace syncline::core
