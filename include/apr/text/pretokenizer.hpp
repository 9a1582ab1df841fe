/// @file pretokenizer.hpp
/// @brief RegexSplitter: splits text into the pieces BPE sees, with a Unicode regex (PCRE2 in
/// UTF + UCP mode, JIT-compiled), keeping both the matches and the gaps between them. Without
/// PCRE2 (a WebAssembly build) the JavaScript host's RegExp does the matching (apr/text/js_host.hpp).
#pragma once

#if __has_include(<pcre2.h>)
#ifndef PCRE2_CODE_UNIT_WIDTH
/// pcre2.h requires it: apr uses the 8-bit (UTF-8) library.
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>
#elif defined(__EMSCRIPTEN__)
#include "apr/text/js_host.hpp"
#else
#error "apr/text/pretokenizer.hpp needs PCRE2 (libpcre2-dev) or a JavaScript host (emscripten)"
#endif

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "apr/core/result.hpp"

namespace apr::text {

/// Qwen2's pre-tokenizer pattern (contractions, letters with one leading non-letter, single
/// digits, punctuation runs, newlines, whitespace not followed by non-space).
inline constexpr std::string_view kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
/// GPT-2's pre-tokenizer pattern (also Whisper's tiktoken pattern).
inline constexpr std::string_view kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

#if __has_include(<pcre2.h>)
/// A compiled split pattern; thread-safe (each call uses its own match data).
class RegexSplitter {
 public:
  /// Compiles `pattern` (PCRE2 syntax with `\p{..}` classes); errors name the offset.
  static Result<RegexSplitter> compile(std::string_view pattern) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), PCRE2_UTF | PCRE2_UCP,
                                     &error, &offset, nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof message);
      return make_error(ErrorCode::format, "split pattern: {} at offset {}", reinterpret_cast<const char*>(message), offset);
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // falls back to the interpreter if JIT is unavailable
    return RegexSplitter(code, std::string(pattern));
  }

  /// Appends the pieces of valid UTF-8 `text` to `pieces`: every match, and every gap between
  /// matches, in order (Hugging Face's "Isolated" split behaviour).
  void split(std::string_view text, std::vector<std::string_view>& pieces) const {
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match(
        pcre2_match_data_create_from_pattern(code_.get(), nullptr), &pcre2_match_data_free);
    size_t position = 0;
    size_t last_end = 0;
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    while (position < text.size()) {
      const int rc = pcre2_match(code_.get(), subject, text.size(), position, PCRE2_NO_UTF_CHECK, match.get(), nullptr);
      if (rc < 0) break;
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.get());
      const size_t begin = ovector[0], end = ovector[1];
      if (begin > last_end) pieces.push_back(text.substr(last_end, begin - last_end));
      if (end > begin) {
        pieces.push_back(text.substr(begin, end - begin));
        position = last_end = end;
      } else {  // empty match: step over one code point
        last_end = begin;
        position = begin + 1;
        while (position < text.size() && (static_cast<uint8_t>(text[position]) & 0xC0) == 0x80) ++position;
      }
    }
    if (last_end < text.size()) pieces.push_back(text.substr(last_end));
  }

  /// The pattern text.
  [[nodiscard]] const std::string& pattern() const noexcept { return pattern_; }

 private:
  RegexSplitter(pcre2_code* code, std::string pattern) : code_(code, &pcre2_code_free), pattern_(std::move(pattern)) {}
  std::shared_ptr<pcre2_code> code_;
  std::string pattern_;
};

#else
/// A split pattern compiled by the JavaScript host; thread-safe (the host caches the RegExp).
class RegexSplitter {
 public:
  /// Compiles `pattern` in the host; errors carry the host's message.
  static Result<RegexSplitter> compile(std::string_view pattern) {
    char message[256];
    const int size = apr_host_regex_compile(pattern.data(), pattern.size(), message, sizeof message);
    if (size != 0) {
      return make_error(ErrorCode::format, "split pattern: {}", std::string_view(message, std::min<size_t>(static_cast<size_t>(size), sizeof message)));
    }
    return RegexSplitter(std::string(pattern));
  }

  /// Appends the pieces of valid UTF-8 `text` to `pieces`: every match and every gap between
  /// matches, in order (Hugging Face's "Isolated" split behaviour).
  void split(std::string_view text, std::vector<std::string_view>& pieces) const {
    const std::vector<uint32_t> offsets = host_regex_matches(pattern_, text);
    size_t last_end = 0;
    for (size_t m = 0; m + 1 < offsets.size(); m += 2) {
      const size_t begin = offsets[m], end = offsets[m + 1];
      if (begin > last_end) pieces.push_back(text.substr(last_end, begin - last_end));
      if (end > begin) {
        pieces.push_back(text.substr(begin, end - begin));
        last_end = end;
      } else {
        last_end = begin;
      }
    }
    if (last_end < text.size()) pieces.push_back(text.substr(last_end));
  }

  /// The pattern text.
  [[nodiscard]] const std::string& pattern() const noexcept { return pattern_; }

 private:
  explicit RegexSplitter(std::string pattern) : pattern_(std::move(pattern)) {}
  std::string pattern_;
};

#endif

}  // namespace apr::text
