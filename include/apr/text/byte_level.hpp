/// @file byte_level.hpp
/// @brief GPT-2's byte-level alphabet: each byte maps to a printable code point, so BPE
/// vocabularies (tokenizer.json, encoder.json) can store arbitrary bytes as text.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "apr/core/utf8.hpp"

namespace apr::text {

/// The code point byte `b` is written as: printable Latin-1 bytes stand for themselves, the
/// other 68 bytes are shifted to U+0100 and up, in byte order.
constexpr std::array<char32_t, 256> byte_level_alphabet() {
  std::array<char32_t, 256> table{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    table[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return table;
}

/// Raw bytes of a byte-level string (as stored in a vocabulary), or nullopt if it uses a code
/// point outside the alphabet or is not valid UTF-8.
inline std::optional<std::string> byte_level_decode(std::string_view text) {
  static const auto inverse = [] {
    std::array<int, 512> map{};
    map.fill(-1);
    const auto alphabet = byte_level_alphabet();
    for (int b = 0; b < 256; ++b) map[alphabet[b]] = b;
    return map;
  }();
  if (!is_valid_utf8(text)) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < text.size();) {
    const char32_t c = next_code_point(text, i);
    if (c >= inverse.size() || inverse[c] < 0) return std::nullopt;
    out += static_cast<char>(inverse[c]);
  }
  return out;
}

/// The byte-level string of raw bytes (the inverse of byte_level_decode).
inline std::string byte_level_encode(std::string_view bytes) {
  static const auto alphabet = byte_level_alphabet();
  std::string out;
  for (char c : bytes) append_utf8(out, alphabet[static_cast<uint8_t>(c)]);
  return out;
}

}  // namespace apr::text
