/// @file word_error_rate.hpp
/// @brief Word error rate: the word-level edit distance (substitutions, deletions, insertions)
/// between a reference transcript and a hypothesis, after lower-casing ASCII letters and turning
/// every character that is not a letter or digit into a word break.
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace apr::eval {

/// Errors and reference words of one or more transcripts (add them up over a test set).
struct WordErrors {
  size_t errors = 0;  ///< substitutions + deletions + insertions
  size_t words = 0;   ///< words in the reference

  /// errors / words (0 for an empty reference with no errors).
  [[nodiscard]] double rate() const noexcept {
    return words > 0 ? static_cast<double>(errors) / static_cast<double>(words) : static_cast<double>(errors);
  }
  /// Adds another transcript's counts.
  WordErrors& operator+=(const WordErrors& other) noexcept {
    errors += other.errors;
    words += other.words;
    return *this;
  }
};

/// The normalised words of `text`: ASCII letters lower-cased, any byte that is not an ASCII
/// letter or digit (punctuation, spaces, non-ASCII) separating words.
inline std::vector<std::string> normalized_words(std::string_view text) {
  std::vector<std::string> words;
  std::string word;
  for (char c : text) {
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'), digit = c >= '0' && c <= '9';
    if (letter || digit) {
      word += letter && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
    } else if (!word.empty()) {
      words.push_back(std::move(word));
      word.clear();
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

/// The word errors of `hypothesis` against `reference` (Levenshtein distance over normalised words).
inline WordErrors word_errors(std::string_view reference, std::string_view hypothesis) {
  const auto r = normalized_words(reference), h = normalized_words(hypothesis);
  std::vector<size_t> row(h.size() + 1);
  for (size_t j = 0; j <= h.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= r.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= h.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (r[i - 1] == h[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return {row[h.size()], r.size()};
}

}  // namespace apr::eval
