/// @file rope_table.hpp
/// @brief RotaryEmbedding: per-position cos/sin of RoPE angles and their application to heads.
#pragma once

#include <cmath>
#include <cstddef>
#include <vector>

#include "apr/simd/rope.hpp"

namespace apr::nn {

/// RoPE with frequencies θ^(−2i/d): angle(pos, i) = pos · inv_freq[i], computed in f32 like
/// Hugging Face's rotary embedding so parity holds to ~1e-6.
class RotaryEmbedding {
 public:
  /// Largest head size supported (configs are validated against it).
  static constexpr size_t kMaxHeadDim = 1024;

  /// An embedding for heads of `head_dim` (≤ kMaxHeadDim, even) values with base `theta`.
  RotaryEmbedding(size_t head_dim, float theta, simd::RopeStyle style)
      : head_dim_(head_dim), style_(style), inv_freq_(head_dim / 2) {
    for (size_t i = 0; i < head_dim / 2; ++i) {
      inv_freq_[i] = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(head_dim));
    }
  }

  /// Rotates `n_heads` consecutive heads of `x` for position `position`.
  void apply(float* x, size_t n_heads, size_t position) const {
    float cos[kMaxHeadDim / 2];
    float sin[kMaxHeadDim / 2];
    for (size_t i = 0; i < head_dim_ / 2; ++i) {
      const float angle = static_cast<float>(position) * inv_freq_[i];
      cos[i] = std::cos(angle);
      sin[i] = std::sin(angle);
    }
    for (size_t h = 0; h < n_heads; ++h) simd::rope(x + h * head_dim_, cos, sin, head_dim_, style_);
  }

  /// Values per head.
  [[nodiscard]] size_t head_dim() const noexcept { return head_dim_; }

 private:
  size_t head_dim_;
  simd::RopeStyle style_;
  std::vector<float> inv_freq_;
};

}  // namespace apr::nn
