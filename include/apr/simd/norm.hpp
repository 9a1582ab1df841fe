/// @file norm.hpp
/// @brief RMSNorm and LayerNorm of one vector.
#pragma once

#include <cmath>
#include <cstddef>

#include "apr/simd/arch.hpp"

namespace apr::simd {

/// out = x / sqrt(mean(x²) + eps) · weight (RMSNorm; out may alias x).
template <class Arch = DefaultArch>
void rmsnorm(const float* x, const float* weight, float* out, size_t n, float eps) {
  size_t i = 0;
  float sum_squares = 0.0f;
  if constexpr (!std::is_same_v<Arch, Scalar>) {
    using Batch = xsimd::batch<float, Arch>;
    Batch acc(0.0f);
    for (; i + Batch::size <= n; i += Batch::size) {
      const Batch v = Batch::load_unaligned(x + i);
      acc = xsimd::fma(v, v, acc);
    }
    sum_squares = hadd(acc);
  }
  for (; i < n; ++i) sum_squares += x[i] * x[i];
  const float inverse = 1.0f / std::sqrt(sum_squares / static_cast<float>(n) + eps);
  i = 0;
  if constexpr (!std::is_same_v<Arch, Scalar>) {
    using Batch = xsimd::batch<float, Arch>;
    const Batch s(inverse);
    for (; i + Batch::size <= n; i += Batch::size) {
      (Batch::load_unaligned(x + i) * s * Batch::load_unaligned(weight + i)).store_unaligned(out + i);
    }
  }
  for (; i < n; ++i) out[i] = x[i] * inverse * weight[i];
}

/// out = (x − mean) / sqrt(var + eps) · weight + bias (LayerNorm; out may alias x; bias may be null).
template <class Arch = DefaultArch>
void layernorm(const float* x, const float* weight, const float* bias, float* out, size_t n, float eps) {
  float sum = 0.0f;
  size_t i = 0;
  if constexpr (!std::is_same_v<Arch, Scalar>) {
    using Batch = xsimd::batch<float, Arch>;
    Batch acc(0.0f);
    for (; i + Batch::size <= n; i += Batch::size) acc += Batch::load_unaligned(x + i);
    sum = hadd(acc);
  }
  for (; i < n; ++i) sum += x[i];
  const float mean = sum / static_cast<float>(n);
  float sum_squares = 0.0f;
  i = 0;
  if constexpr (!std::is_same_v<Arch, Scalar>) {
    using Batch = xsimd::batch<float, Arch>;
    Batch acc(0.0f);
    const Batch m(mean);
    for (; i + Batch::size <= n; i += Batch::size) {
      const Batch d = Batch::load_unaligned(x + i) - m;
      acc = xsimd::fma(d, d, acc);
    }
    sum_squares = hadd(acc);
  }
  for (; i < n; ++i) sum_squares += (x[i] - mean) * (x[i] - mean);
  const float inverse = 1.0f / std::sqrt(sum_squares / static_cast<float>(n) + eps);
  for (i = 0; i < n; ++i) out[i] = (x[i] - mean) * inverse * weight[i] + (bias != nullptr ? bias[i] : 0.0f);
}

}  // namespace apr::simd
