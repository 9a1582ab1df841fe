/// @file expert_groups.hpp
/// @brief ExpertGroups: the rows a router sent to each expert, grouped by expert (a counting sort
/// of the (row, choice) pairs), so that each expert runs once over a contiguous gathered batch
/// and its output is scattered back, weighted, to the rows it came from.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "apr/simd/elementwise.hpp"

namespace apr::nn {

/// Rows per expert after top-k routing; experts no row chose have empty groups.
class ExpertGroups {
 public:
  /// Groups `rows` rows routed to `top_k` experts each (ids and weights [rows][top_k]) among `experts` experts.
  void build(const int32_t* ids, const float* weights, size_t rows, size_t top_k, size_t experts) {
    offsets_.assign(experts + 1, 0);
    for (size_t i = 0; i < rows * top_k; ++i) ++offsets_[static_cast<size_t>(ids[i]) + 1];
    for (size_t e = 0; e < experts; ++e) offsets_[e + 1] += offsets_[e];
    rows_.resize(rows * top_k);
    weights_.resize(rows * top_k);
    cursor_.assign(offsets_.begin(), offsets_.end() - 1);
    for (size_t row = 0; row < rows; ++row) {
      for (size_t k = 0; k < top_k; ++k) {
        const size_t slot = cursor_[static_cast<size_t>(ids[row * top_k + k])]++;
        rows_[slot] = static_cast<uint32_t>(row);
        weights_[slot] = weights[row * top_k + k];
      }
    }
  }

  /// Number of experts grouped.
  [[nodiscard]] size_t experts() const noexcept { return offsets_.empty() ? 0 : offsets_.size() - 1; }
  /// Rows routed to expert `e`, ascending.
  [[nodiscard]] std::span<const uint32_t> rows(size_t e) const { return std::span(rows_).subspan(offsets_[e], offsets_[e + 1] - offsets_[e]); }
  /// The routing weights of those rows.
  [[nodiscard]] std::span<const float> weights(size_t e) const {
    return std::span(weights_).subspan(offsets_[e], offsets_[e + 1] - offsets_[e]);
  }
  /// The largest group (to size gather buffers).
  [[nodiscard]] size_t largest() const {
    size_t most = 0;
    for (size_t e = 0; e < experts(); ++e) most = std::max<size_t>(most, offsets_[e + 1] - offsets_[e]);
    return most;
  }

  /// Copies the rows of expert `e` from `input` ([rows][width]) into consecutive rows of `gathered`.
  void gather(size_t e, const float* input, size_t width, float* gathered) const {
    const auto group = rows(e);
    for (size_t i = 0; i < group.size(); ++i) std::copy_n(input + group[i] * width, width, gathered + i * width);
  }

  /// output[row] += weight · expert_out[i] for the i-th row of expert `e`'s group.
  void scatter_add(size_t e, const float* expert_out, size_t width, float* output) const {
    const auto group = rows(e);
    const auto group_weights = weights(e);
    for (size_t i = 0; i < group.size(); ++i) simd::add_scaled(expert_out + i * width, group_weights[i], output + group[i] * width, width);
  }

 private:
  std::vector<size_t> offsets_;  // [experts + 1]: start of each group in rows_ / weights_
  std::vector<size_t> cursor_;   // build scratch: next free slot per expert
  std::vector<uint32_t> rows_;   // grouped row indices
  std::vector<float> weights_;   // their routing weights
};

}  // namespace apr::nn
