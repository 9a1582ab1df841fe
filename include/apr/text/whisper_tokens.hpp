/// @file whisper_tokens.hpp
/// @brief Whisper's special tokens: the table openai/whisper appends after the BPE ranks
/// (end of text, start of transcript, languages, tasks, no-timestamps, 0.02 s timestamps).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "apr/core/result.hpp"
#include "apr/text/tokenizer.hpp"

namespace apr::text {

/// Whisper's language codes in token order (large-v3 adds "yue" as the 100th).
inline constexpr std::array<std::string_view, 100> kWhisperLanguages = {
    "en", "zh", "de", "es", "ru", "ko", "fr", "ja", "pt", "tr", "pl", "ca", "nl", "ar", "sv", "it", "id", "hi", "fi", "vi",
    "he", "uk", "el", "ms", "cs", "ro", "da", "hu", "ta", "no", "th", "ur", "hr", "bg", "lt", "la", "mi", "ml", "cy", "sk",
    "te", "fa", "lv", "bn", "sr", "az", "sl", "kn", "et", "mk", "br", "eu", "is", "hy", "ne", "mn", "bs", "kk", "sq", "sw",
    "gl", "mr", "pa", "si", "km", "sn", "yo", "so", "af", "oc", "ka", "be", "tg", "sd", "gu", "am", "yi", "lo", "uz", "fo",
    "ht", "ps", "tk", "nn", "mt", "sa", "lb", "my", "bo", "tl", "mg", "as", "tt", "haw", "ln", "ha", "ba", "jw", "su", "yue"};

/// Whisper's special tokens in order, starting at id `first` (the number of BPE ranks), with
/// `languages` language tokens (99, or 100 for large-v3).
inline std::vector<AddedToken> whisper_special_tokens(int32_t first, size_t languages = 99) {
  std::vector<std::string> names{"<|endoftext|>", "<|startoftranscript|>"};
  for (size_t i = 0; i < languages; ++i) names.push_back(fmt::format("<|{}|>", kWhisperLanguages[i]));
  for (const char* name : {"<|translate|>", "<|transcribe|>", "<|startoflm|>", "<|startofprev|>", "<|nospeech|>", "<|notimestamps|>"}) {
    names.emplace_back(name);
  }
  for (int i = 0; i <= 1500; ++i) names.push_back(fmt::format("<|{:.2f}|>", i * 0.02));
  std::vector<AddedToken> tokens;
  for (size_t i = 0; i < names.size(); ++i) tokens.push_back({first + static_cast<int32_t>(i), names[i], true});
  return tokens;
}

/// The ids a Whisper decoder needs, looked up in a tokenizer.
struct WhisperTokens {
  int32_t end_of_text = 0;       ///< <|endoftext|>
  int32_t start_of_transcript = 0;  ///< <|startoftranscript|>
  int32_t translate = 0;         ///< <|translate|>
  int32_t transcribe = 0;        ///< <|transcribe|>
  int32_t start_of_lm = 0;       ///< <|startoflm|>
  int32_t start_of_prev = 0;     ///< <|startofprev|>
  int32_t no_speech = 0;         ///< <|nospeech|>
  int32_t no_timestamps = 0;     ///< <|notimestamps|>
  int32_t timestamp_begin = 0;   ///< <|0.00|>
  std::vector<int32_t> language_ids;  ///< one per language, in kWhisperLanguages order

  /// Reads the ids from `tokenizer`; an error names the first missing token.
  static Result<WhisperTokens> from(const Tokenizer& tokenizer) {
    WhisperTokens t;
    const std::pair<const char*, int32_t*> fields[] = {
        {"<|endoftext|>", &t.end_of_text}, {"<|startoftranscript|>", &t.start_of_transcript}, {"<|translate|>", &t.translate},
        {"<|transcribe|>", &t.transcribe}, {"<|startoflm|>", &t.start_of_lm}, {"<|startofprev|>", &t.start_of_prev},
        {"<|nospeech|>", &t.no_speech}, {"<|notimestamps|>", &t.no_timestamps}, {"<|0.00|>", &t.timestamp_begin}};
    for (const auto& [name, field] : fields) {
      const auto id = tokenizer.token_to_id(name);
      if (!id) return make_error(ErrorCode::format, "tokenizer has no Whisper token {}", name);
      *field = *id;
    }
    for (std::string_view code : kWhisperLanguages) {
      const auto id = tokenizer.token_to_id(fmt::format("<|{}|>", code));
      if (!id) break;
      t.language_ids.push_back(*id);
    }
    return t;
  }

  /// The token of language `code` ("en"), or nullopt.
  [[nodiscard]] std::optional<int32_t> language(std::string_view code) const {
    for (size_t i = 0; i < language_ids.size(); ++i) {
      if (kWhisperLanguages[i] == code) return language_ids[i];
    }
    return std::nullopt;
  }
};

}  // namespace apr::text
