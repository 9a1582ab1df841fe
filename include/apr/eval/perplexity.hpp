/// @file perplexity.hpp
/// @brief Perplexity of a language model over a token stream, with a sliding window.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "apr/core/result.hpp"
#include "apr/eval/logit_metrics.hpp"
#include "apr/eval/statistics.hpp"
#include "apr/models/language_model.hpp"

namespace apr::eval {

/// Sliding-window settings: each window holds up to `context` tokens and advances by `stride`;
/// only tokens not scored by an earlier window are scored (Hugging Face's strided perplexity).
struct PerplexityOptions {
  size_t context = 512;  ///< tokens per window
  size_t stride = 256;   ///< window advance (≤ context)
};

/// Perplexity with the statistics behind it.
struct PerplexityResult {
  size_t tokens = 0;          ///< tokens scored
  double mean_nll = 0.0;      ///< mean negative log-likelihood (nats)
  double perplexity = 0.0;    ///< exp(mean_nll)
  double ppl_low = 0.0;       ///< 95% lower bound: exp(mean − 1.96·se)
  double ppl_high = 0.0;      ///< 95% upper bound: exp(mean + 1.96·se)
  size_t windows = 0;         ///< forward passes run
};

/// Perplexity and its 95% interval from per-token negative log-likelihoods (nats) scored in
/// `windows` forward passes; the interval is exp(mean ± 1.96·standard error).
inline PerplexityResult summarize_nll(std::span<const double> nll, size_t windows) {
  PerplexityResult result;
  result.windows = windows;
  result.tokens = nll.size();
  if (nll.empty()) return result;
  double sum = 0.0;
  for (double v : nll) sum += v;
  result.mean_nll = sum / static_cast<double>(nll.size());
  double squares = 0.0;
  for (double v : nll) squares += (v - result.mean_nll) * (v - result.mean_nll);
  const double se = nll.size() > 1 ? std::sqrt(squares / static_cast<double>(nll.size() - 1) / static_cast<double>(nll.size())) : 0.0;
  result.perplexity = std::exp(result.mean_nll);
  result.ppl_low = std::exp(result.mean_nll - kZ95 * se);
  result.ppl_high = std::exp(result.mean_nll + kZ95 * se);
  return result;
}

/// Scores `tokens` with `model`: NLL of each token given the ones before it in its window.
inline Result<PerplexityResult> perplexity(const models::LanguageModel& model, std::span<const int32_t> tokens,
                                           const PerplexityOptions& options) {
  if (tokens.size() < 2) return make_error(ErrorCode::invalid_argument, "perplexity needs at least 2 tokens, got {}", tokens.size());
  if (options.context < 2 || options.stride == 0 || options.stride > options.context) {
    return make_error(ErrorCode::invalid_argument, "perplexity: need context >= 2 and 0 < stride <= context (got {} and {})",
                      options.context, options.stride);
  }
  const size_t vocab = model.vocab_size();
  std::vector<double> nll;
  std::vector<float> logits;
  size_t windows = 0;
  size_t scored_until = 1;  // tokens before this index are scored (token 0 never is)
  for (size_t begin = 0; scored_until < tokens.size(); begin += options.stride) {
    const size_t end = std::min(begin + options.context, tokens.size());
    auto sequence = model.new_sequence(end - begin);
    logits.resize((end - begin) * vocab);
    auto status = model.forward(*sequence, tokens.subspan(begin, end - begin), logits, {.all_logits = true});
    if (!status) return std::move(status).error();
    ++windows;
    for (size_t target = std::max(scored_until, begin + 1); target < end; ++target) {
      const auto row = std::span<const float>(logits).subspan((target - 1 - begin) * vocab, vocab);
      const auto log_probs = log_softmax(row);
      nll.push_back(-log_probs[static_cast<size_t>(tokens[target])]);
    }
    scored_until = end;
    if (end == tokens.size()) break;
  }
  return summarize_nll(nll, windows);
}

}  // namespace apr::eval
