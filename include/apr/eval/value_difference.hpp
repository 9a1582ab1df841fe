/// @file value_difference.hpp
/// @brief compare_values(): how far two equally long arrays of values (tensors, logits) are
/// apart: max and mean absolute difference, RMS, the max relative to the reference's scale.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <span>

namespace apr::eval {

/// The difference between a reference array and another one, element by element.
struct ValueDifference {
  double max_abs = 0;       ///< largest |a - b| over positions where both are finite
  double mean_abs = 0;      ///< mean |a - b| over those positions
  double rms = 0;           ///< sqrt(mean (a - b)²) over those positions
  double relative = 0;      ///< max_abs / max |a| (infinite when `a` is all zero and `b` is not)
  double cosine = 1;        ///< cosine similarity of the finite values
  size_t worst_index = 0;   ///< position of max_abs
  size_t differing = 0;     ///< positions where a != b (NaN equals NaN)
  size_t nan_mismatch = 0;  ///< positions where exactly one of them is NaN or Inf
};

/// The difference of `b` from the reference `a` (same length: the caller checks the shapes).
inline ValueDifference compare_values(std::span<const float> a, std::span<const float> b) {
  ValueDifference d;
  const size_t n = std::min(a.size(), b.size());
  double sum_abs = 0, sum_squares = 0, scale = 0;
  double dot = 0, aa = 0, bb = 0;
  size_t finite = 0;
  for (size_t i = 0; i < n; ++i) {
    const bool a_finite = std::isfinite(a[i]), b_finite = std::isfinite(b[i]);
    if (!(a_finite && b_finite)) {
      const bool same = (std::isnan(a[i]) && std::isnan(b[i])) || a[i] == b[i];
      if (!same) {
        ++d.differing;
        ++d.nan_mismatch;
      }
      continue;
    }
    const double diff = std::fabs(static_cast<double>(a[i]) - b[i]);
    if (diff != 0) ++d.differing;
    if (diff > d.max_abs) {
      d.max_abs = diff;
      d.worst_index = i;
    }
    sum_abs += diff;
    sum_squares += diff * diff;
    scale = std::max(scale, std::fabs(static_cast<double>(a[i])));
    dot += static_cast<double>(a[i]) * b[i];
    aa += static_cast<double>(a[i]) * a[i];
    bb += static_cast<double>(b[i]) * b[i];
    ++finite;
  }
  if (finite > 0) {
    d.mean_abs = sum_abs / static_cast<double>(finite);
    d.rms = std::sqrt(sum_squares / static_cast<double>(finite));
  }
  d.relative = scale > 0 ? d.max_abs / scale : (d.max_abs > 0 ? std::numeric_limits<double>::infinity() : 0.0);
  d.cosine = (aa == 0 && bb == 0) ? 1.0 : (aa == 0 || bb == 0) ? 0.0 : dot / std::sqrt(aa * bb);
  return d;
}

}  // namespace apr::eval
