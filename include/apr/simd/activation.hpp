/// @file activation.hpp
/// @brief Activation functions: SiLU, GELU (erf and tanh forms), SwiGLU gating.
#pragma once

#include <cmath>
#include <cstddef>

#include "apr/simd/arch.hpp"

namespace apr::simd {

/// Applies `vector_f` to full batches of x and `scalar_f` to the tail, in place.
template <class Arch, class VectorF, class ScalarF>
void unary_map(float* x, size_t n, VectorF vector_f, ScalarF scalar_f) {
  size_t i = 0;
  if constexpr (!std::is_same_v<Arch, Scalar>) {
    using Batch = xsimd::batch<float, Arch>;
    for (; i + Batch::size <= n; i += Batch::size) vector_f(Batch::load_unaligned(x + i)).store_unaligned(x + i);
  }
  for (; i < n; ++i) x[i] = scalar_f(x[i]);
}

/// x ← x·σ(x) (SiLU / swish), in place.
template <class Arch = DefaultArch>
void silu(float* x, size_t n) {
  unary_map<Arch>(
      x, n, [](auto v) { return v / (decltype(v)(1.0f) + xsimd::exp(-v)); },
      [](float v) { return v / (1.0f + std::exp(-v)); });
}

/// x ← x·Φ(x) = 0.5·x·(1 + erf(x/√2)) (exact GELU, as Whisper and PyTorch's default), in place.
template <class Arch = DefaultArch>
void gelu_erf(float* x, size_t n) {
  constexpr float kInvSqrt2 = 0.70710678118654752440f;
  unary_map<Arch>(
      x, n,
      [](auto v) {
        using B = decltype(v);
        return B(0.5f) * v * (B(1.0f) + xsimd::erf(v * B(kInvSqrt2)));
      },
      [](float v) { return 0.5f * v * (1.0f + std::erf(v * kInvSqrt2)); });
}

/// x ← 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) (the tanh approximation of GELU), in place.
template <class Arch = DefaultArch>
void gelu_tanh(float* x, size_t n) {
  constexpr float kSqrt2OverPi = 0.79788456080286535588f;
  constexpr float kCubic = 0.044715f;
  unary_map<Arch>(
      x, n,
      [](auto v) {
        using B = decltype(v);
        return B(0.5f) * v * (B(1.0f) + xsimd::tanh(B(kSqrt2OverPi) * (v + B(kCubic) * v * v * v)));
      },
      [](float v) { return 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * (v + kCubic * v * v * v))); });
}

/// gate ← silu(gate)·up (the SwiGLU MLP's gating), in place on `gate`.
template <class Arch = DefaultArch>
void swiglu(float* gate, const float* up, size_t n) {
  size_t i = 0;
  if constexpr (!std::is_same_v<Arch, Scalar>) {
    using Batch = xsimd::batch<float, Arch>;
    for (; i + Batch::size <= n; i += Batch::size) {
      const Batch g = Batch::load_unaligned(gate + i);
      (g / (Batch(1.0f) + xsimd::exp(-g)) * Batch::load_unaligned(up + i)).store_unaligned(gate + i);
    }
  }
  for (; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

}  // namespace apr::simd
