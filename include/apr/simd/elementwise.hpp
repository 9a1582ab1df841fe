/// @file elementwise.hpp
/// @brief Element-wise vector ops: add, mul, scale, add-scaled (axpy).
#pragma once

#include <cstddef>

#include "apr/simd/arch.hpp"

namespace apr::simd {

/// Applies `vector_op` to full batches and `scalar_op` to the tail: out[i] = op(a[i], b[i]).
template <class Arch, class VectorOp, class ScalarOp>
void binary_map(const float* a, const float* b, float* out, size_t n, VectorOp vector_op, ScalarOp scalar_op) {
  size_t i = 0;
  if constexpr (!std::is_same_v<Arch, Scalar>) {
    using Batch = xsimd::batch<float, Arch>;
    for (; i + Batch::size <= n; i += Batch::size) {
      vector_op(Batch::load_unaligned(a + i), Batch::load_unaligned(b + i)).store_unaligned(out + i);
    }
  }
  for (; i < n; ++i) out[i] = scalar_op(a[i], b[i]);
}

/// out[i] = a[i] + b[i] (out may alias a or b).
template <class Arch = DefaultArch>
void add(const float* a, const float* b, float* out, size_t n) {
  binary_map<Arch>(a, b, out, n, [](auto x, auto y) { return x + y; }, [](float x, float y) { return x + y; });
}

/// out[i] = a[i] * b[i] (out may alias a or b).
template <class Arch = DefaultArch>
void mul(const float* a, const float* b, float* out, size_t n) {
  binary_map<Arch>(a, b, out, n, [](auto x, auto y) { return x * y; }, [](float x, float y) { return x * y; });
}

/// x[i] *= factor.
template <class Arch = DefaultArch>
void scale(float* x, float factor, size_t n) {
  size_t i = 0;
  if constexpr (!std::is_same_v<Arch, Scalar>) {
    using Batch = xsimd::batch<float, Arch>;
    const Batch f(factor);
    for (; i + Batch::size <= n; i += Batch::size) (Batch::load_unaligned(x + i) * f).store_unaligned(x + i);
  }
  for (; i < n; ++i) x[i] *= factor;
}

/// y[i] += factor * x[i].
template <class Arch = DefaultArch>
void add_scaled(const float* x, float factor, float* y, size_t n) {
  size_t i = 0;
  if constexpr (!std::is_same_v<Arch, Scalar>) {
    using Batch = xsimd::batch<float, Arch>;
    const Batch f(factor);
    for (; i + Batch::size <= n; i += Batch::size) {
      xsimd::fma(f, Batch::load_unaligned(x + i), Batch::load_unaligned(y + i)).store_unaligned(y + i);
    }
  }
  for (; i < n; ++i) y[i] += factor * x[i];
}

/// y[i] += f[0]·x[0][i] + f[1]·x[1][i] + f[2]·x[2][i] + f[3]·x[3][i]: four add_scaled in one
/// pass over y (attention's weighted sum of values, where y's store and reload would otherwise
/// sit between every two keys).
template <class Arch = DefaultArch>
void add_scaled4(const float* const* x, const float* f, float* y, size_t n) {
  size_t i = 0;
  if constexpr (!std::is_same_v<Arch, Scalar>) {
    using Batch = xsimd::batch<float, Arch>;
    const Batch f0(f[0]), f1(f[1]), f2(f[2]), f3(f[3]);
    for (; i + Batch::size <= n; i += Batch::size) {
      const Batch low = xsimd::fma(f1, Batch::load_unaligned(x[1] + i), f0 * Batch::load_unaligned(x[0] + i));
      const Batch high = xsimd::fma(f3, Batch::load_unaligned(x[3] + i), f2 * Batch::load_unaligned(x[2] + i));
      (Batch::load_unaligned(y + i) + (low + high)).store_unaligned(y + i);
    }
  }
  for (; i < n; ++i) y[i] += (f[0] * x[0][i] + f[1] * x[1][i]) + (f[2] * x[2][i] + f[3] * x[3][i]);
}

/// Σ a[i]·b[i] for float vectors (attention scores).
template <class Arch = DefaultArch>
float dot_f32(const float* a, const float* b, size_t n) {
  size_t i = 0;
  float sum = 0.0f;
  if constexpr (!std::is_same_v<Arch, Scalar>) {
    using Batch = xsimd::batch<float, Arch>;
    Batch acc0(0.0f), acc1(0.0f);
    for (; i + 2 * Batch::size <= n; i += 2 * Batch::size) {
      acc0 = xsimd::fma(Batch::load_unaligned(a + i), Batch::load_unaligned(b + i), acc0);
      acc1 = xsimd::fma(Batch::load_unaligned(a + i + Batch::size), Batch::load_unaligned(b + i + Batch::size), acc1);
    }
    for (; i + Batch::size <= n; i += Batch::size) acc0 = xsimd::fma(Batch::load_unaligned(a + i), Batch::load_unaligned(b + i), acc0);
    sum = hadd(acc0 + acc1);
  }
  for (; i < n; ++i) sum += a[i] * b[i];
  return sum;
}

}  // namespace apr::simd
