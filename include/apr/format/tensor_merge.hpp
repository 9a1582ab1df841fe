/// @file tensor_merge.hpp
/// @brief merge_values(): one tensor of several same-architecture models merged element by
/// element: average, weighted average, or task arithmetic (Ilharco et al. 2023, "Editing Models
/// with Task Arithmetic": base + scale · Σ wᵢ (modelᵢ − base)).
#pragma once

#include <cstddef>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "apr/core/result.hpp"

namespace apr::format {

/// How tensors are combined.
enum class MergeStrategy {
  average,          ///< mean of the models
  weighted,         ///< Σ wᵢ xᵢ / Σ wᵢ
  task_arithmetic,  ///< base + scale · Σ wᵢ (xᵢ − base)
};

/// The strategy named `name` ("average", "weighted", "task-arithmetic"), or nothing.
inline std::optional<MergeStrategy> parse_merge_strategy(std::string_view name) {
  if (name == "average") return MergeStrategy::average;
  if (name == "weighted") return MergeStrategy::weighted;
  if (name == "task-arithmetic" || name == "task_arithmetic") return MergeStrategy::task_arithmetic;
  return std::nullopt;
}

/// The merge of `models` (one span per model, equally long) by `strategy` with one weight per
/// model (`weights` empty: all 1); task arithmetic also takes `base` and `scale`.
inline Result<std::vector<float>> merge_values(MergeStrategy strategy, std::span<const std::span<const float>> models, std::span<const float> weights,
                                               std::span<const float> base = {}, float scale = 1.0f) {
  if (models.empty()) return make_error(ErrorCode::invalid_argument, "merge: no models");
  if (!weights.empty() && weights.size() != models.size()) {
    return make_error(ErrorCode::invalid_argument, "merge: {} weights for {} models", weights.size(), models.size());
  }
  const size_t n = models[0].size();
  for (const auto& model : models) {
    if (model.size() != n) return make_error(ErrorCode::invalid_argument, "merge: tensors of {} and {} values", n, model.size());
  }
  if (strategy == MergeStrategy::task_arithmetic && base.size() != n) {
    return make_error(ErrorCode::invalid_argument, "merge: task arithmetic needs a base of {} values (got {})", n, base.size());
  }
  auto weight = [&](size_t m) { return weights.empty() ? 1.0 : static_cast<double>(weights[m]); };
  double total = 0;
  for (size_t m = 0; m < models.size(); ++m) total += weight(m);
  if (strategy != MergeStrategy::task_arithmetic && total == 0) return make_error(ErrorCode::invalid_argument, "merge: the weights sum to zero");
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) {
    double sum = 0;
    for (size_t m = 0; m < models.size(); ++m) {
      const double x = models[m][i];
      sum += weight(m) * (strategy == MergeStrategy::task_arithmetic ? x - base[i] : x);
    }
    switch (strategy) {
      case MergeStrategy::average:
      case MergeStrategy::weighted: out[i] = static_cast<float>(sum / total); break;
      case MergeStrategy::task_arithmetic: out[i] = static_cast<float>(base[i] + scale * sum); break;
    }
  }
  return out;
}

}  // namespace apr::format
