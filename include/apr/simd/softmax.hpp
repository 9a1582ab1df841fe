/// @file softmax.hpp
/// @brief Numerically stable softmax of one vector, in place.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "apr/simd/arch.hpp"

namespace apr::simd {

/// x ← exp(x − max x) / Σ exp(x − max x); entries equal to −inf get probability 0.
template <class Arch = DefaultArch>
void softmax(float* x, size_t n) {
  if (n == 0) return;
  float max = -std::numeric_limits<float>::infinity();
  size_t i = 0;
  if constexpr (!std::is_same_v<Arch, Scalar>) {
    using Batch = xsimd::batch<float, Arch>;
    Batch acc(max);
    for (; i + Batch::size <= n; i += Batch::size) acc = xsimd::max(acc, Batch::load_unaligned(x + i));
    alignas(64) float lanes[Batch::size];
    acc.store_aligned(lanes);
    for (float v : lanes) max = std::max(max, v);
  }
  for (; i < n; ++i) max = std::max(max, x[i]);
  if (max == -std::numeric_limits<float>::infinity()) max = 0.0f;

  float sum = 0.0f;
  i = 0;
  if constexpr (!std::is_same_v<Arch, Scalar>) {
    using Batch = xsimd::batch<float, Arch>;
    const Batch m(max);
    Batch acc(0.0f);
    for (; i + Batch::size <= n; i += Batch::size) {
      const Batch e = xsimd::exp(Batch::load_unaligned(x + i) - m);
      e.store_unaligned(x + i);
      acc += e;
    }
    sum = hadd(acc);
  }
  for (; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inverse = 1.0f / sum;
  i = 0;
  if constexpr (!std::is_same_v<Arch, Scalar>) {
    using Batch = xsimd::batch<float, Arch>;
    const Batch s(inverse);
    for (; i + Batch::size <= n; i += Batch::size) (Batch::load_unaligned(x + i) * s).store_unaligned(x + i);
  }
  for (; i < n; ++i) x[i] *= inverse;
}

}  // namespace apr::simd
