/// @file norm.hpp
/// @brief RmsNorm and LayerNorm layers over rows of activations.
#pragma once

#include <cstddef>

#include "apr/simd/norm.hpp"

namespace apr::nn {

/// RMSNorm with a learned f32 scale: out = x / rms(x) · weight.
struct RmsNorm {
  const float* weight = nullptr;  ///< [dim]
  size_t dim = 0;                 ///< row length
  float eps = 1e-6f;              ///< added to the mean square

  /// Normalises `rows` rows of `dim` values (out may alias x).
  void forward(const float* x, float* out, size_t rows = 1) const {
    for (size_t r = 0; r < rows; ++r) simd::rmsnorm(x + r * dim, weight, out + r * dim, dim, eps);
  }
};

/// LayerNorm with learned f32 scale and bias: out = (x − mean) / std · weight + bias.
struct LayerNorm {
  const float* weight = nullptr;  ///< [dim]
  const float* bias = nullptr;    ///< [dim] or null
  size_t dim = 0;                 ///< row length
  float eps = 1e-5f;              ///< added to the variance

  /// Normalises `rows` rows of `dim` values (out may alias x).
  void forward(const float* x, float* out, size_t rows = 1) const {
    for (size_t r = 0; r < rows; ++r) simd::layernorm(x + r * dim, weight, bias, out + r * dim, dim, eps);
  }
};

}  // namespace apr::nn
