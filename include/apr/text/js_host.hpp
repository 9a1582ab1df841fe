/// @file js_host.hpp
/// @brief Unicode services a JavaScript host gives a WebAssembly build that has no PCRE2 or
/// utf8proc: regex splitting with the engine's `u`-mode RegExp and NFC with String.normalize.
///
/// The functions are imports; `examples/wasm/apr_host.js` implements them (link it with
/// `emcc --js-library`). Byte offsets and lengths are of UTF-8 text in the module's memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

extern "C" {
/// Compiles `pattern` (PCRE2 syntax as tokenizer.json has it) in the host; 0 when it compiles,
/// else the length of the host's message, written (truncated) into `message`.
int apr_host_regex_compile(const char* pattern, size_t pattern_size, char* message, size_t message_capacity);
/// Finds the successive matches of `pattern` in `text` as PCRE2's loop would (empty matches step
/// one code point); writes begin/end byte offsets in pairs, returns the number of matches written.
size_t apr_host_regex_matches(const char* pattern, size_t pattern_size, const char* text, size_t text_size, uint32_t* offsets,
                              size_t max_matches);
/// NFC of UTF-8 `text`; returns its size in bytes, written into `out` when it fits `capacity`.
size_t apr_host_nfc(const char* text, size_t text_size, char* out, size_t capacity);
}

namespace apr::text {

/// NFC of valid UTF-8 `text`, by the host.
inline std::string host_nfc(std::string_view text) {
  std::string out(text.size() + 16, '\0');
  size_t size = apr_host_nfc(text.data(), text.size(), out.data(), out.size());
  if (size > out.size()) {
    out.resize(size);
    size = apr_host_nfc(text.data(), text.size(), out.data(), out.size());
  }
  out.resize(size);
  return out;
}

/// Begin/end byte offsets of every match of `pattern` in valid UTF-8 `text`, by the host.
inline std::vector<uint32_t> host_regex_matches(std::string_view pattern, std::string_view text) {
  const size_t max_matches = text.size() + 1;  // each match is non-empty or steps one code point
  std::vector<uint32_t> offsets(2 * max_matches);
  const size_t found = apr_host_regex_matches(pattern.data(), pattern.size(), text.data(), text.size(), offsets.data(), max_matches);
  offsets.resize(2 * found);
  return offsets;
}

}  // namespace apr::text
