/// @file precision_gate.hpp
/// @brief The precision gate of a conversion: run the source-precision model and the converted
/// one on a fixed token set and compare next-token distributions, logits and hidden states
/// against per-level thresholds.
#pragma once

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/core/dtype.hpp"
#include "apr/core/result.hpp"
#include "apr/eval/logit_metrics.hpp"
#include "apr/models/language_model.hpp"

namespace apr::eval {

/// Limits a converted model must meet (means over positions unless noted).
struct GateThresholds {
  double max_mean_kl = 0.0;           ///< mean KL(source ‖ converted), nats
  double min_top1_agreement = 1.0;    ///< fraction of positions with the same argmax
  double min_top10_overlap = 1.0;     ///< mean overlap of the top-10 sets
  double min_logit_cosine = 1.0;      ///< smallest per-position cosine of the logits
  double min_hidden_cosine = 1.0;     ///< smallest per-layer cosine of the hidden states
};

/// The documented thresholds per target dtype (docs/precision-gates.md explains how they were set).
inline GateThresholds default_thresholds(DType target) {
  switch (target) {
    case DType::f32: return {1e-9, 1.0, 1.0, 0.999999, 0.999999};
    case DType::f16: return {1e-4, 0.98, 0.98, 0.9999, 0.9999};
    case DType::bf16: return {2e-3, 0.95, 0.95, 0.999, 0.999};
    case DType::q8_0: return {5e-3, 0.95, 0.95, 0.999, 0.999};
    case DType::q4_0: return {5e-2, 0.85, 0.85, 0.99, 0.98};
    default: return {1e-1, 0.7, 0.7, 0.95, 0.95};
  }
}

/// What the gate measured and whether it passed.
struct GateReport {
  size_t positions = 0;             ///< token positions compared
  double mean_kl = 0.0;             ///< mean KL divergence
  double max_kl = 0.0;              ///< largest KL divergence
  double top1_agreement = 0.0;      ///< fraction of equal argmax
  double top10_overlap = 0.0;       ///< mean top-10 overlap
  double min_logit_cosine = 1.0;    ///< smallest logits cosine
  double min_hidden_cosine = 1.0;   ///< smallest hidden-state cosine over layers
  GateThresholds thresholds;        ///< limits applied
  std::vector<std::string> failures;  ///< each violated limit, with values

  /// True when every threshold is met.
  [[nodiscard]] bool passed() const noexcept { return failures.empty(); }
  /// The report as JSON.
  [[nodiscard]] nlohmann::json to_json() const {
    return {{"passed", passed()}, {"positions", positions}, {"mean_kl", mean_kl}, {"max_kl", max_kl},
            {"top1_agreement", top1_agreement}, {"top10_overlap", top10_overlap}, {"min_logit_cosine", min_logit_cosine},
            {"min_hidden_cosine", min_hidden_cosine}, {"failures", failures},
            {"thresholds", {{"max_mean_kl", thresholds.max_mean_kl}, {"min_top1_agreement", thresholds.min_top1_agreement},
                            {"min_top10_overlap", thresholds.min_top10_overlap}, {"min_logit_cosine", thresholds.min_logit_cosine},
                            {"min_hidden_cosine", thresholds.min_hidden_cosine}}}};
  }
};

/// A fixed, deterministic token set of `count` ids below `vocab` (a linear congruential walk).
inline std::vector<int32_t> gate_tokens(size_t vocab, size_t count = 64) {
  std::vector<int32_t> ids(count);
  uint64_t state = 0x9e3779b97f4a7c15ull;
  for (auto& id : ids) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    id = static_cast<int32_t>((state >> 33) % vocab);
  }
  return ids;
}

/// Compares two models' outputs against `thresholds`: `a` and `b` hold `rows` logit rows of
/// `vocab` values each (source, converted); `hidden_a`/`hidden_b` hold matching hidden states
/// (per layer, or any other intermediate tensors), compared by cosine.
inline GateReport compare_outputs(std::span<const float> a, std::span<const float> b, size_t rows, size_t vocab,
                                  const std::vector<std::vector<float>>& hidden_a, const std::vector<std::vector<float>>& hidden_b,
                                  const GateThresholds& thresholds) {
  GateReport report;
  report.thresholds = thresholds;
  report.positions = rows;
  size_t agree = 0;
  double overlap = 0.0, kl_sum = 0.0;
  for (size_t t = 0; t < rows; ++t) {
    const std::span<const float> la(a.data() + t * vocab, vocab), lb(b.data() + t * vocab, vocab);
    const double kl = kl_divergence(la, lb);
    kl_sum += kl;
    report.max_kl = std::max(report.max_kl, kl);
    agree += top_k_ids(la, 1) == top_k_ids(lb, 1) ? 1 : 0;
    overlap += top_k_overlap(la, lb, 10);
    report.min_logit_cosine = std::min(report.min_logit_cosine, cosine_similarity(la, lb));
  }
  for (size_t layer = 0; layer < std::min(hidden_a.size(), hidden_b.size()); ++layer) {
    if (hidden_a[layer].size() == hidden_b[layer].size() && !hidden_a[layer].empty()) {
      report.min_hidden_cosine = std::min(report.min_hidden_cosine, cosine_similarity(hidden_a[layer], hidden_b[layer]));
    }
  }
  const double n = static_cast<double>(rows);
  report.mean_kl = kl_sum / n;
  report.top1_agreement = static_cast<double>(agree) / n;
  report.top10_overlap = overlap / n;
  auto check = [&](bool ok, std::string_view what, double value, double limit) {
    if (!ok) report.failures.push_back(fmt::format("{} {:.6g} (limit {:.6g})", what, value, limit));
  };
  check(report.mean_kl <= thresholds.max_mean_kl, "mean KL", report.mean_kl, thresholds.max_mean_kl);
  check(report.top1_agreement >= thresholds.min_top1_agreement, "top-1 agreement", report.top1_agreement, thresholds.min_top1_agreement);
  check(report.top10_overlap >= thresholds.min_top10_overlap, "top-10 overlap", report.top10_overlap, thresholds.min_top10_overlap);
  check(report.min_logit_cosine >= thresholds.min_logit_cosine, "logit cosine", report.min_logit_cosine, thresholds.min_logit_cosine);
  check(report.min_hidden_cosine >= thresholds.min_hidden_cosine, "hidden-state cosine", report.min_hidden_cosine, thresholds.min_hidden_cosine);
  return report;
}

/// Compares `converted` with `source` on `tokens` against `thresholds`.
inline Result<GateReport> precision_gate(const models::LanguageModel& source, const models::LanguageModel& converted,
                                         std::span<const int32_t> tokens, const GateThresholds& thresholds) {
  if (source.vocab_size() != converted.vocab_size()) {
    return make_error(ErrorCode::validation, "precision gate: vocabularies differ ({} vs {})", source.vocab_size(), converted.vocab_size());
  }
  const size_t vocab = source.vocab_size();
  std::vector<float> a(tokens.size() * vocab), b(tokens.size() * vocab);
  std::vector<std::vector<float>> hidden_a, hidden_b;
  auto sa = source.new_sequence(tokens.size());
  auto sb = converted.new_sequence(tokens.size());
  auto status = source.forward(*sa, tokens, a, {.all_logits = true, .hidden_states = &hidden_a});
  if (!status) return std::move(status).error();
  status = converted.forward(*sb, tokens, b, {.all_logits = true, .hidden_states = &hidden_b});
  if (!status) return std::move(status).error();
  return compare_outputs(a, b, tokens.size(), vocab, hidden_a, hidden_b, thresholds);
}

}  // namespace apr::eval
