/// @file utf8.hpp
/// @brief UTF-8 checks and repair: well-formed sequence lengths (Unicode Table 3-7), replacement
/// of ill-formed bytes by U+FFFD per maximal subpart, and the complete prefix of a byte stream.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace apr {

/// U+FFFD REPLACEMENT CHARACTER in UTF-8.
inline constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";

/// Length of the well-formed UTF-8 sequence at `bytes[0]`, or 0 if it is ill-formed; sets
/// `maximal_subpart` to how many bytes form the maximal ill-formed prefix (≥ 1) when it is.
/// With `allow_truncated`, a valid but incomplete sequence at the end returns 0 and subpart 0.
constexpr size_t utf8_sequence_length(std::string_view bytes, size_t& maximal_subpart, bool allow_truncated = false) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(bytes[i]); };
  const uint8_t lead = byte(0);
  maximal_subpart = 1;
  if (lead < 0x80) return 1;
  size_t length = 0;
  uint8_t low = 0x80, high = 0xBF;  // range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) length = 2;
  else if (lead == 0xE0) length = 3, low = 0xA0;
  else if (lead >= 0xE1 && lead <= 0xEC) length = 3;
  else if (lead == 0xED) length = 3, high = 0x9F;
  else if (lead >= 0xEE && lead <= 0xEF) length = 3;
  else if (lead == 0xF0) length = 4, low = 0x90;
  else if (lead >= 0xF1 && lead <= 0xF3) length = 4;
  else if (lead == 0xF4) length = 4, high = 0x8F;
  else return 0;
  for (size_t i = 1; i < length; ++i) {
    if (i >= bytes.size()) {
      if (allow_truncated) maximal_subpart = 0;
      else maximal_subpart = i;
      return 0;
    }
    const uint8_t b = byte(i);
    const bool ok = i == 1 ? (b >= low && b <= high) : (b >= 0x80 && b <= 0xBF);
    if (!ok) {
      maximal_subpart = i;
      return 0;
    }
  }
  return length;
}

/// True when `bytes` is well-formed UTF-8.
constexpr bool is_valid_utf8(std::string_view bytes) {
  size_t subpart = 0;
  for (size_t i = 0; i < bytes.size();) {
    const size_t length = utf8_sequence_length(bytes.substr(i), subpart);
    if (length == 0) return false;
    i += length;
  }
  return true;
}

/// `bytes` with every maximal ill-formed subpart replaced by U+FFFD (as Rust's from_utf8_lossy
/// and the WHATWG decoder do).
inline std::string utf8_lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  size_t subpart = 0;
  for (size_t i = 0; i < bytes.size();) {
    const size_t length = utf8_sequence_length(bytes.substr(i), subpart);
    if (length == 0) {
      out += kReplacementCharacter;
      i += subpart;
    } else {
      out.append(bytes.substr(i, length));
      i += length;
    }
  }
  return out;
}

/// Bytes of `bytes` that can be decoded now: everything but a trailing sequence that is valid so
/// far and may still be completed by more bytes.
constexpr size_t utf8_decodable_prefix(std::string_view bytes) {
  size_t subpart = 0;
  size_t i = 0;
  while (i < bytes.size()) {
    const size_t length = utf8_sequence_length(bytes.substr(i), subpart, true);
    if (length == 0 && subpart == 0) return i;  // incomplete tail
    i += length != 0 ? length : subpart;
  }
  return i;
}

/// Decodes the code point at `bytes[i]` (well-formed input) and advances `i`.
constexpr char32_t next_code_point(std::string_view bytes, size_t& i) {
  const auto b = [&](size_t k) { return static_cast<char32_t>(static_cast<uint8_t>(bytes[k])); };
  const char32_t lead = b(i);
  if (lead < 0x80) return static_cast<char32_t>(bytes[i++]) & 0x7F;
  if (lead < 0xE0) {
    const char32_t c = ((lead & 0x1F) << 6) | (b(i + 1) & 0x3F);
    i += 2;
    return c;
  }
  if (lead < 0xF0) {
    const char32_t c = ((lead & 0x0F) << 12) | ((b(i + 1) & 0x3F) << 6) | (b(i + 2) & 0x3F);
    i += 3;
    return c;
  }
  const char32_t c = ((lead & 0x07) << 18) | ((b(i + 1) & 0x3F) << 12) | ((b(i + 2) & 0x3F) << 6) | (b(i + 3) & 0x3F);
  i += 4;
  return c;
}

/// Appends the UTF-8 encoding of `c` to `out`.
inline void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

}  // namespace apr
