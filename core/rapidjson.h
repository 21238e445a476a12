// RapidJSON, configured once for every file of the core that includes it
// (json.cc, changeset.cc): its classes must be defined the same way in each.
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
