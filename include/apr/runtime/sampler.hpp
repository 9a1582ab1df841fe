/// @file sampler.hpp
/// @brief Sampler: picks the next token from logits (greedy, temperature, top-k, top-p, min-p,
/// repetition / presence / frequency penalties), deterministic for a given seed.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <span>
#include <unordered_map>
#include <vector>

#include "apr/core/result.hpp"

namespace apr::runtime {

/// How the next token is chosen. The order is Hugging Face's: penalties, temperature, top-k,
/// top-p, min-p, then a draw. temperature 0 means greedy (argmax, lowest id on ties).
struct SamplingOptions {
  float temperature = 0.8f;         ///< logits are divided by it; 0 = greedy
  size_t top_k = 40;                ///< keep the k most likely tokens; 0 = all
  float top_p = 0.95f;              ///< keep the smallest set with probability ≥ top_p; 1 = all
  float min_p = 0.0f;               ///< drop tokens below min_p × the top probability; 0 = off
  float repetition_penalty = 1.0f;  ///< CTRL-style: positive logits ÷ p, negative × p, for seen tokens
  float presence_penalty = 0.0f;    ///< OpenAI-style: subtracted once from every seen token
  float frequency_penalty = 0.0f;   ///< OpenAI-style: subtracted per occurrence
  size_t penalty_window = 64;       ///< how many recent tokens the penalties look at; 0 = all
  uint64_t seed = 0;                ///< random seed (same seed, same choices)

  /// Options for plain argmax decoding.
  static SamplingOptions greedy() {
    SamplingOptions options;
    options.temperature = 0.0f;
    return options;
  }

  /// Checks ranges; names the offending field.
  [[nodiscard]] Result<void> validate() const {
    if (!(temperature >= 0.0f) || !std::isfinite(temperature)) return make_error(ErrorCode::invalid_argument, "temperature {} must be >= 0", temperature);
    if (!(top_p > 0.0f && top_p <= 1.0f)) return make_error(ErrorCode::invalid_argument, "top_p {} must be in (0, 1]", top_p);
    if (!(min_p >= 0.0f && min_p <= 1.0f)) return make_error(ErrorCode::invalid_argument, "min_p {} must be in [0, 1]", min_p);
    if (!(repetition_penalty > 0.0f) || !std::isfinite(repetition_penalty)) {
      return make_error(ErrorCode::invalid_argument, "repetition_penalty {} must be > 0", repetition_penalty);
    }
    if (!std::isfinite(presence_penalty) || !std::isfinite(frequency_penalty)) {
      return make_error(ErrorCode::invalid_argument, "presence and frequency penalties must be finite");
    }
    return ok();
  }
};

/// Index of the largest value (lowest index on ties); NaN never wins.
inline int32_t argmax(std::span<const float> values) {
  size_t best = 0;
  for (size_t i = 1; i < values.size(); ++i) {
    if (values[i] > values[best] || std::isnan(values[best])) best = i;
  }
  return static_cast<int32_t>(best);
}

/// Chooses tokens from logits according to SamplingOptions, with its own random generator.
class Sampler {
 public:
  /// A sampler with `options` (validate them first).
  explicit Sampler(const SamplingOptions& options) : options_(options), rng_(options.seed) {}

  /// The next token for `logits` (modified in place by penalties), given the tokens so far.
  int32_t sample(std::span<float> logits, std::span<const int32_t> history) {
    apply_penalties(logits, history);
    if (options_.temperature == 0.0f) return argmax(logits);
    for (float& logit : logits) {
      if (std::isnan(logit)) logit = -std::numeric_limits<float>::infinity();
    }

    candidates_.resize(logits.size());
    std::iota(candidates_.begin(), candidates_.end(), 0);
    const float inverse_temperature = 1.0f / options_.temperature;
    size_t keep = logits.size();
    if (options_.top_k > 0 && options_.top_k < keep) keep = options_.top_k;
    auto by_logit = [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
    std::partial_sort(candidates_.begin(), candidates_.begin() + static_cast<std::ptrdiff_t>(keep), candidates_.end(), by_logit);
    candidates_.resize(keep);

    probabilities_.resize(keep);
    const float max_logit = logits[candidates_[0]] * inverse_temperature;
    double total = 0.0;
    for (size_t i = 0; i < keep; ++i) {
      probabilities_[i] = std::exp(logits[candidates_[i]] * inverse_temperature - max_logit);
      total += probabilities_[i];
    }
    size_t kept = keep;
    if (options_.top_p < 1.0f) {
      double cumulative = 0.0;
      for (size_t i = 0; i < keep; ++i) {
        cumulative += probabilities_[i] / total;
        if (cumulative >= options_.top_p) {
          kept = i + 1;
          break;
        }
      }
    }
    if (options_.min_p > 0.0f) {
      const double threshold = options_.min_p * probabilities_[0];
      size_t above = 1;
      while (above < kept && probabilities_[above] >= threshold) ++above;
      kept = above;
    }
    double kept_total = 0.0;
    for (size_t i = 0; i < kept; ++i) kept_total += probabilities_[i];
    std::uniform_real_distribution<double> uniform(0.0, kept_total);
    const double draw = uniform(rng_);
    double cumulative = 0.0;
    for (size_t i = 0; i < kept; ++i) {
      cumulative += probabilities_[i];
      if (draw < cumulative) return candidates_[i];
    }
    return candidates_[kept - 1];
  }

  /// The options in use.
  [[nodiscard]] const SamplingOptions& options() const noexcept { return options_; }

 private:
  void apply_penalties(std::span<float> logits, std::span<const int32_t> history) {
    const bool any = options_.repetition_penalty != 1.0f || options_.presence_penalty != 0.0f || options_.frequency_penalty != 0.0f;
    if (!any || history.empty()) return;
    const size_t window = options_.penalty_window == 0 ? history.size() : std::min(history.size(), options_.penalty_window);
    counts_.clear();
    for (int32_t token : history.subspan(history.size() - window)) {
      if (token >= 0 && static_cast<size_t>(token) < logits.size()) ++counts_[token];
    }
    for (const auto& [token, count] : counts_) {
      float& logit = logits[static_cast<size_t>(token)];
      if (options_.repetition_penalty != 1.0f) logit = logit > 0.0f ? logit / options_.repetition_penalty : logit * options_.repetition_penalty;
      logit -= options_.presence_penalty + options_.frequency_penalty * static_cast<float>(count);
    }
  }

  SamplingOptions options_;
  std::mt19937_64 rng_;
  std::vector<int32_t> candidates_;
  std::vector<double> probabilities_;
  std::unordered_map<int32_t, int> counts_;
};

}  // namespace apr::runtime
