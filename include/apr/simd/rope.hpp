/// @file rope.hpp
/// @brief Rotary position embedding of one head vector, given the cos/sin of its position.
#pragma once

#include <cstddef>

#include "apr/simd/arch.hpp"

namespace apr::simd {

/// How RoPE pairs the dimensions of a head.
enum class RopeStyle {
  split_halves,  ///< dim i pairs with dim i + d/2 (GPT-NeoX, Qwen2, HF "rotate_half")
  interleaved,   ///< dim 2i pairs with dim 2i+1 (GPT-J, original Llama, ggml "NORM")
};

/// Rotates pair i of `x` (head_dim values) by the angle whose cos/sin are cos[i], sin[i]
/// (i < head_dim/2), pairing dims as `style` says.
template <class Arch = DefaultArch>
void rope(float* x, const float* cos, const float* sin, size_t head_dim, RopeStyle style) {
  const size_t half = head_dim / 2;
  if (style == RopeStyle::split_halves) {
    size_t i = 0;
    if constexpr (!std::is_same_v<Arch, Scalar>) {
      using Batch = xsimd::batch<float, Arch>;
      for (; i + Batch::size <= half; i += Batch::size) {
        const Batch a = Batch::load_unaligned(x + i);
        const Batch b = Batch::load_unaligned(x + half + i);
        const Batch c = Batch::load_unaligned(cos + i);
        const Batch s = Batch::load_unaligned(sin + i);
        fms(a, c, b * s).store_unaligned(x + i);
        xsimd::fma(a, s, b * c).store_unaligned(x + half + i);
      }
    }
    for (; i < half; ++i) {
      const float a = x[i];
      const float b = x[half + i];
      x[i] = a * cos[i] - b * sin[i];
      x[half + i] = a * sin[i] + b * cos[i];
    }
  } else {
    for (size_t i = 0; i < half; ++i) {
      const float a = x[2 * i];
      const float b = x[2 * i + 1];
      x[2 * i] = a * cos[i] - b * sin[i];
      x[2 * i + 1] = a * sin[i] + b * cos[i];
    }
  }
}

}  // namespace apr::simd
