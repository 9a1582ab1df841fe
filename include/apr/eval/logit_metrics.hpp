/// @file logit_metrics.hpp
/// @brief Comparing two models' outputs: KL divergence, cosine similarity, top-1 and top-k agreement.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

namespace apr::eval {

/// log-softmax of `logits` in double precision.
inline std::vector<double> log_softmax(std::span<const float> logits) {
  const double max = *std::max_element(logits.begin(), logits.end());
  double total = 0.0;
  for (float v : logits) total += std::exp(static_cast<double>(v) - max);
  const double log_total = std::log(total) + max;
  std::vector<double> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = static_cast<double>(logits[i]) - log_total;
  return out;
}

/// KL(P‖Q) in nats between the next-token distributions softmax(p_logits) and softmax(q_logits).
inline double kl_divergence(std::span<const float> p_logits, std::span<const float> q_logits) {
  const auto log_p = log_softmax(p_logits);
  const auto log_q = log_softmax(q_logits);
  double kl = 0.0;
  for (size_t i = 0; i < log_p.size(); ++i) kl += std::exp(log_p[i]) * (log_p[i] - log_q[i]);
  return std::max(0.0, kl);
}

/// Cosine similarity a·b / (|a||b|); 1 when both are zero.
inline double cosine_similarity(std::span<const float> a, std::span<const float> b) {
  double dot = 0.0, aa = 0.0, bb = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
  }
  if (aa == 0.0 && bb == 0.0) return 1.0;
  if (aa == 0.0 || bb == 0.0) return 0.0;
  return dot / std::sqrt(aa * bb);
}

/// Ids of the k largest logits, largest first (lowest id first on ties).
inline std::vector<int32_t> top_k_ids(std::span<const float> logits, size_t k) {
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  k = std::min(k, ids.size());
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  ids.resize(k);
  return ids;
}

/// Fraction of the top-k ids of `a` that are also among the top-k of `b`.
inline double top_k_overlap(std::span<const float> a, std::span<const float> b, size_t k) {
  const auto top_a = top_k_ids(a, k);
  auto top_b = top_k_ids(b, k);
  std::sort(top_b.begin(), top_b.end());
  size_t shared = 0;
  for (int32_t id : top_a) shared += std::binary_search(top_b.begin(), top_b.end(), id) ? 1 : 0;
  return top_a.empty() ? 1.0 : static_cast<double>(shared) / static_cast<double>(top_a.size());
}

/// True when the top-k sets of `a` and `b` agree up to near-ties: every id in one top-k but not
/// the other must have a logit within `tolerance` of the k-th largest logit in both models.
inline bool top_k_agree(std::span<const float> a, std::span<const float> b, size_t k, float tolerance) {
  const auto top_a = top_k_ids(a, k);
  const auto top_b = top_k_ids(b, k);
  if (top_a.empty()) return true;
  const float kth_a = a[top_a.back()];
  const float kth_b = b[top_b.back()];
  auto near_boundary = [&](int32_t id) { return std::fabs(a[id] - kth_a) <= tolerance && std::fabs(b[id] - kth_b) <= tolerance; };
  for (int32_t id : top_a) {
    if (std::find(top_b.begin(), top_b.end(), id) == top_b.end() && !near_boundary(id)) return false;
  }
  for (int32_t id : top_b) {
    if (std::find(top_a.begin(), top_a.end(), id) == top_a.end() && !near_boundary(id)) return false;
  }
  return true;
}

}  // namespace apr::eval
