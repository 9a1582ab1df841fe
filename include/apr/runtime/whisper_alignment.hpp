/// @file whisper_alignment.hpp
/// @brief Word timestamps as openai/whisper computes them (timing.py): the text is forced
/// through the decoder after [SOT, language, task, <|notimestamps|>], the cross-attention of the
/// alignment heads over the window's frames is softmax-normalised, standardised per frame over
/// the tokens, median-filtered along time (width 7), averaged over heads, and dynamic time
/// warping over its negation maps every token to a time; words are the tokens split on spaces
/// (or on code points for languages written without them), punctuation is merged into the
/// neighbouring word, and over-long words at sentence and pause boundaries are clipped.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "apr/core/result.hpp"
#include "apr/core/utf8.hpp"
#include "apr/runtime/whisper_decode.hpp"
#include "apr/text/tokenizer.hpp"

namespace apr::runtime {

/// One word with its time span (seconds) and mean token probability.
struct WordTiming {
  std::string word;             ///< the word as decoded, leading space included
  std::vector<int32_t> tokens;  ///< its tokens
  double start = 0.0;           ///< start, seconds
  double end = 0.0;             ///< end, seconds
  double probability = 0.0;     ///< mean probability of its tokens, in [0, 1]
};

/// The monotonic path of least total cost through `cost` ([rows][cols], row-major) from (0, 0)
/// to (rows−1, cols−1), steps down, right or diagonal; as pairs (row, col) in order. Costs
/// accumulate in float as whisper's dtw_cpu does, so ties break the same way; as in whisper's
/// backtrace, a path that reaches the first row or column early walks along it with index −1.
inline std::vector<std::pair<int64_t, int64_t>> dtw_path(std::span<const double> cost, size_t rows, size_t cols) {
  const size_t width = cols + 1;
  std::vector<float> total((rows + 1) * width, std::numeric_limits<float>::infinity());
  std::vector<uint8_t> step((rows + 1) * width, 0);  // 0 diagonal, 1 from above, 2 from the left
  total[0] = 0.0f;
  for (size_t j = 1; j <= cols; ++j) {
    for (size_t i = 1; i <= rows; ++i) {
      const float diagonal = total[(i - 1) * width + j - 1], above = total[(i - 1) * width + j], left = total[i * width + j - 1];
      float best = left;
      uint8_t from = 2;
      if (diagonal < above && diagonal < left) {
        best = diagonal;
        from = 0;
      } else if (above < diagonal && above < left) {
        best = above;
        from = 1;
      }
      total[i * width + j] = static_cast<float>(cost[(i - 1) * cols + (j - 1)] + static_cast<double>(best));
      step[i * width + j] = from;
    }
  }
  std::vector<std::pair<int64_t, int64_t>> path;
  size_t i = rows, j = cols;
  while (i > 0 || j > 0) {
    path.emplace_back(static_cast<int64_t>(i) - 1, static_cast<int64_t>(j) - 1);
    const uint8_t from = i == 0 ? 2 : j == 0 ? 1 : step[i * width + j];
    if (from == 0) {
      --i;
      --j;
    } else if (from == 1) {
      --i;
    } else {
      --j;
    }
  }
  std::reverse(path.begin(), path.end());
  return path;
}

/// Median filter of odd `width` along each of `rows` rows of `values` ([rows][cols]), with
/// reflect padding; rows no longer than width / 2 are left as they are (as whisper does).
inline void median_filter_rows(std::span<float> values, size_t rows, size_t cols, size_t width) {
  const size_t half = width / 2;
  if (cols <= half) return;
  std::vector<float> padded(cols + 2 * half), window(width);
  for (size_t r = 0; r < rows; ++r) {
    float* row = values.data() + r * cols;
    for (size_t k = 0; k < padded.size(); ++k) {
      const ptrdiff_t at = static_cast<ptrdiff_t>(k) - static_cast<ptrdiff_t>(half);
      const ptrdiff_t last = static_cast<ptrdiff_t>(cols) - 1;
      const ptrdiff_t reflected = at < 0 ? -at : at > last ? 2 * last - at : at;
      padded[k] = row[reflected];
    }
    for (size_t c = 0; c < cols; ++c) {
      std::copy_n(padded.begin() + static_cast<ptrdiff_t>(c), width, window.begin());
      std::nth_element(window.begin(), window.begin() + static_cast<ptrdiff_t>(half), window.end());
      row[c] = window[half];
    }
  }
}

/// `text` as code points (well-formed UTF-8, as the tokenizer's decode() returns).
inline std::u32string code_points(std::string_view text) {
  std::u32string out;
  for (size_t i = 0; i < text.size();) out += next_code_point(text, i);
  return out;
}

/// Python's round(x, 2): the nearest multiple of 0.01 by the exact binary value, ties to even.
inline double round_centiseconds(double seconds) { return std::strtod(fmt::format("{:.2f}", seconds).c_str(), nullptr); }

/// Splits `tokens` into words as whisper's tokenizer does: first into the shortest runs that
/// decode to whole code points, then (unless `split_on_code_points`) joining runs that neither
/// start with a space, nor are special (id >= `end_of_text`), nor are punctuation.
inline std::pair<std::vector<std::string>, std::vector<std::vector<int32_t>>> split_to_word_tokens(
    const text::Tokenizer& tokenizer, std::span<const int32_t> tokens, int32_t end_of_text, bool split_on_code_points) {
  const std::u32string full = code_points(tokenizer.decode(tokens));
  const char32_t replacement = U'\uFFFD';
  std::vector<std::string> pieces;
  std::vector<std::vector<int32_t>> piece_tokens;
  std::vector<int32_t> current;
  size_t offset = 0;
  for (int32_t token : tokens) {
    current.push_back(token);
    const std::string decoded = tokenizer.decode(current);
    const std::u32string points = code_points(decoded);
    const size_t bad = points.find(replacement);
    if (bad == std::u32string::npos || (offset + bad < full.size() && full[offset + bad] == replacement)) {
      pieces.push_back(decoded);
      piece_tokens.push_back(std::move(current));
      current.clear();
      offset += points.size();
    }
  }
  if (split_on_code_points) return {std::move(pieces), std::move(piece_tokens)};

  constexpr std::string_view punctuation = R"(!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~)";
  std::vector<std::string> words;
  std::vector<std::vector<int32_t>> word_tokens;
  for (size_t i = 0; i < pieces.size(); ++i) {
    const bool special = piece_tokens[i][0] >= end_of_text;
    const bool with_space = pieces[i].starts_with(' ');
    const bool is_punctuation = punctuation.find(strip_text(pieces[i])) != std::string_view::npos;
    if (special || with_space || is_punctuation || words.empty()) {
      words.push_back(pieces[i]);
      word_tokens.push_back(piece_tokens[i]);
    } else {
      words.back() += pieces[i];
      word_tokens.back().insert(word_tokens.back().end(), piece_tokens[i].begin(), piece_tokens[i].end());
    }
  }
  return {std::move(words), std::move(word_tokens)};
}

/// Merges punctuation into neighbouring words as whisper does: a word in `prepended` (after a
/// space) joins the next word, a word in `appended` joins the previous one; merged words are
/// left empty. Membership is Python's substring test, as in whisper.
inline void merge_punctuations(std::vector<WordTiming>& alignment, std::string_view prepended, std::string_view appended) {
  if (alignment.size() >= 2) {
    size_t following = alignment.size() - 1;
    for (size_t i = alignment.size() - 1; i-- > 0;) {
      WordTiming& previous = alignment[i];
      WordTiming& next = alignment[following];
      if (previous.word.starts_with(' ') && prepended.find(strip_text(previous.word)) != std::string_view::npos) {
        next.word = previous.word + next.word;
        next.tokens.insert(next.tokens.begin(), previous.tokens.begin(), previous.tokens.end());
        previous.word.clear();
        previous.tokens.clear();
      } else {
        following = i;
      }
    }
  }
  size_t previous_index = 0;
  for (size_t j = 1; j < alignment.size(); ++j) {
    WordTiming& previous = alignment[previous_index];
    WordTiming& next = alignment[j];
    if (!previous.word.ends_with(' ') && appended.find(next.word) != std::string_view::npos) {
      previous.word += next.word;
      previous.tokens.insert(previous.tokens.end(), next.tokens.begin(), next.tokens.end());
      next.word.clear();
      next.tokens.clear();
    } else {
      previous_index = j;
    }
  }
}

/// How word alignment reads the cross-attention.
struct AlignmentSettings {
  std::vector<std::pair<size_t, size_t>> heads;  ///< (decoder layer, head) pairs used for alignment
  size_t median_filter_width = 7;                ///< odd width of the median filter along time
  double tokens_per_second = 50.0;               ///< audio positions per second
};

/// Word timings from the cross-attention `weights` ([layer][head][tokens][positions], softmax
/// probabilities) of the forced sequence [sot_length specials, <|notimestamps|>, text, eot],
/// the probabilities `text_probs` of each text token, and the words of the text (+ eot) from
/// split_to_word_tokens(). `frames` is the window's mel frames that hold audio.
inline std::vector<WordTiming> align_words(std::span<const float> weights, size_t layers, size_t heads, size_t tokens,
                                           size_t positions, size_t sot_length, size_t frames, std::span<const double> text_probs,
                                           std::vector<std::string> words, std::vector<std::vector<int32_t>> word_tokens,
                                           const AlignmentSettings& settings) {
  if (word_tokens.size() <= 1) return {};
  const size_t cols = std::min(frames / 2, positions);
  const size_t n_heads = settings.heads.size();
  std::vector<float> matrix(tokens * cols, 0.0f);
  std::vector<float> head(tokens * cols);
  for (const auto& [layer, h] : settings.heads) {
    if (layer >= layers || h >= heads) continue;
    const float* source = weights.data() + (layer * heads + h) * tokens * positions;
    // softmax over the first `cols` positions = the probabilities renormalised over them
    for (size_t t = 0; t < tokens; ++t) {
      double sum = 0.0;
      for (size_t c = 0; c < cols; ++c) sum += source[t * positions + c];
      for (size_t c = 0; c < cols; ++c) head[t * cols + c] = static_cast<float>(source[t * positions + c] / sum);
    }
    // standardise every frame over the tokens (population standard deviation)
    for (size_t c = 0; c < cols; ++c) {
      double mean = 0.0, squares = 0.0;
      for (size_t t = 0; t < tokens; ++t) mean += head[t * cols + c];
      mean /= static_cast<double>(tokens);
      for (size_t t = 0; t < tokens; ++t) squares += (head[t * cols + c] - mean) * (head[t * cols + c] - mean);
      const double deviation = std::sqrt(squares / static_cast<double>(tokens));
      for (size_t t = 0; t < tokens; ++t) head[t * cols + c] = static_cast<float>((head[t * cols + c] - mean) / deviation);
    }
    median_filter_rows(head, tokens, cols, settings.median_filter_width);
    for (size_t k = 0; k < head.size(); ++k) matrix[k] += head[k] / static_cast<float>(n_heads);
  }
  // rows from <|notimestamps|> up to the last text token; DTW over the negation
  const size_t first_row = sot_length, rows = tokens - sot_length - 1;
  std::vector<double> cost(rows * cols);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < cols; ++c) cost[r * cols + c] = -static_cast<double>(matrix[(first_row + r) * cols + c]);
  }
  const auto path = dtw_path(cost, rows, cols);
  std::vector<double> jump_times;
  for (size_t k = 0; k < path.size(); ++k) {
    if (k == 0 || path[k].first != path[k - 1].first) jump_times.push_back(static_cast<double>(path[k].second) / settings.tokens_per_second);
  }
  std::vector<size_t> boundaries{0};
  for (size_t w = 0; w + 1 < word_tokens.size(); ++w) boundaries.push_back(boundaries.back() + word_tokens[w].size());
  std::vector<WordTiming> alignment;
  for (size_t w = 0; w + 1 < boundaries.size(); ++w) {
    const size_t begin = boundaries[w], end = boundaries[w + 1];
    if (end >= jump_times.size() || end > text_probs.size()) break;
    double probability = 0.0;
    for (size_t i = begin; i < end; ++i) probability += text_probs[i];
    alignment.push_back({std::move(words[w]), std::move(word_tokens[w]), jump_times[begin], jump_times[end],
                         probability / static_cast<double>(end - begin)});  // every word has at least one token
  }
  return alignment;
}

}  // namespace apr::runtime
