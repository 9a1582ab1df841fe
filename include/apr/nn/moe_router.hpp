/// @file moe_router.hpp
/// @brief Mixture-of-experts routing: softmax over the router's logits, the top-k experts per
/// token (renormalised to sum 1 when asked), and statistics of where tokens went — per-expert
/// counts, the load-balancing loss as Switch Transformers / Hugging Face define it, routing
/// entropy and capacity overflow.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

namespace apr::nn {

/// Routes `tokens` tokens: probabilities[t] = softmax(logits[t]) over `experts` experts; ids[t]
/// and weights[t] (top_k each) are the most probable experts, best first (lower id first on
/// ties), their probabilities divided by their sum when `normalize` is set.
inline void route_tokens(const float* logits, size_t tokens, size_t experts, size_t top_k, bool normalize, float* probabilities,
                         int32_t* ids, float* weights) {
  std::vector<int32_t> order(experts);
  for (size_t t = 0; t < tokens; ++t) {
    const float* row = logits + t * experts;
    float* p = probabilities + t * experts;
    const float max = *std::max_element(row, row + experts);
    float sum = 0.0f;
    for (size_t e = 0; e < experts; ++e) sum += p[e] = std::exp(row[e] - max);
    for (size_t e = 0; e < experts; ++e) p[e] /= sum;
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + static_cast<ptrdiff_t>(top_k), order.end(),
                      [&](int32_t a, int32_t b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    float chosen = 0.0f;
    for (size_t k = 0; k < top_k; ++k) chosen += p[order[k]];
    for (size_t k = 0; k < top_k; ++k) {
      ids[t * top_k + k] = order[k];
      weights[t * top_k + k] = normalize ? p[order[k]] / chosen : p[order[k]];
    }
  }
}

/// Where routed tokens went, accumulated over tokens (and layers).
struct RouterStatistics {
  size_t experts = 0;                    ///< experts per layer
  size_t top_k = 0;                      ///< experts per token
  uint64_t tokens = 0;                   ///< token routings counted (tokens × layers)
  std::vector<uint64_t> assignments;     ///< per expert: how many token routings chose it
  std::vector<double> probability_sum;   ///< per expert: Σ of its routing probability
  double entropy_sum = 0.0;              ///< Σ over routings of the entropy of the routing distribution (nats)

  /// Empty statistics for `experts` experts and top-k `top_k`.
  RouterStatistics(size_t experts_, size_t top_k_) : experts(experts_), top_k(top_k_), assignments(experts_, 0), probability_sum(experts_, 0.0) {}

  /// Adds `count` routings (probabilities [count][experts], ids [count][top_k]).
  void add(const float* probabilities, const int32_t* ids, size_t count) {
    for (size_t t = 0; t < count; ++t) {
      for (size_t e = 0; e < experts; ++e) {
        const double p = probabilities[t * experts + e];
        probability_sum[e] += p;
        if (p > 0.0) entropy_sum -= p * std::log(p);
      }
      for (size_t k = 0; k < top_k; ++k) ++assignments[static_cast<size_t>(ids[t * top_k + k])];
    }
    tokens += count;
  }

  /// The auxiliary load-balancing loss: experts × Σ_e (share of routings to e) × (mean probability of e),
  /// with the share taken over tokens (so Σ_e share = top_k), as Hugging Face's load_balancing_loss_func.
  [[nodiscard]] double load_balance_loss() const {
    if (tokens == 0) return 0.0;
    double loss = 0.0;
    const double n = static_cast<double>(tokens);
    for (size_t e = 0; e < experts; ++e) loss += (static_cast<double>(assignments[e]) / n) * (probability_sum[e] / n);
    return loss * static_cast<double>(experts);
  }

  /// Mean entropy of the routing distribution, in nats (log(experts) when uniform).
  [[nodiscard]] double mean_entropy() const { return tokens == 0 ? 0.0 : entropy_sum / static_cast<double>(tokens); }

  /// Routings beyond each expert's capacity ⌈factor × tokens × top_k / experts⌉, summed over experts.
  [[nodiscard]] uint64_t capacity_overflow(double capacity_factor) const {
    const auto capacity = static_cast<uint64_t>(std::ceil(capacity_factor * static_cast<double>(tokens * top_k) / static_cast<double>(experts)));
    uint64_t overflow = 0;
    for (uint64_t count : assignments) overflow += count > capacity ? count - capacity : 0;
    return overflow;
  }
};

}  // namespace apr::nn
