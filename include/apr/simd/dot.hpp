/// @file dot.hpp
/// @brief Dot product of a weight row (any weight dtype) with float activations.
#pragma once

#include <cstddef>

#include "apr/core/dtype.hpp"
#include "apr/core/quantize.hpp"
#include "apr/simd/arch.hpp"
#include "apr/simd/load.hpp"

namespace apr::simd {

/// Reference twin of dot: plain loops, double accumulation; `n` is a multiple of W::block_size.
template <WeightDtype W>
float dot_reference(const typename W::Block* row, const float* x, size_t n) {
  double sum = 0.0;
  float values[32];
  for (size_t b = 0; b < n / W::block_size; ++b) {
    dequantize_row<W>(row + b, values, W::block_size);
    for (size_t j = 0; j < W::block_size; ++j) sum += static_cast<double>(values[j]) * x[b * W::block_size + j];
  }
  return static_cast<float>(sum);
}

/// Σ row[i]·x[i] for i < n, with the row in weight dtype W (n a multiple of W::block_size).
template <WeightDtype W, class Arch = DefaultArch>
float dot(const typename W::Block* row, const float* x, size_t n) {
  if constexpr (std::is_same_v<Arch, Scalar>) {
    return dot_reference<W>(row, x, n);
  } else {
    using Batch = FloatBatch<Arch>;
    constexpr size_t width = Batch::size;
    Batch acc0(0.0f), acc1(0.0f), acc2(0.0f), acc3(0.0f);
    size_t i = 0;
    if constexpr (is_plain_v<W>) {
      constexpr size_t step_bytes = 4 * width * sizeof(typename W::Block);
      for (; i + 4 * width <= n; i += 4 * width) {
        const char* ahead = reinterpret_cast<const char*>(row + i) + kPrefetchBytes;
        for (size_t line = 0; line < step_bytes; line += 64) __builtin_prefetch(ahead + line, 0, 3);
        acc0 = xsimd::fma(load_as_float<W, Arch>(row, i), Batch::load_unaligned(x + i), acc0);
        acc1 = xsimd::fma(load_as_float<W, Arch>(row, i + width), Batch::load_unaligned(x + i + width), acc1);
        acc2 = xsimd::fma(load_as_float<W, Arch>(row, i + 2 * width), Batch::load_unaligned(x + i + 2 * width), acc2);
        acc3 = xsimd::fma(load_as_float<W, Arch>(row, i + 3 * width), Batch::load_unaligned(x + i + 3 * width), acc3);
      }
      for (; i + width <= n; i += width) acc0 = xsimd::fma(load_as_float<W, Arch>(row, i), Batch::load_unaligned(x + i), acc0);
      float sum = hadd((acc0 + acc1) + (acc2 + acc3));
      for (; i < n; ++i) sum += element_as_float<W>(row, i) * x[i];
      return sum;
    } else {
      alignas(64) float values[32];
      for (size_t b = 0; b < n / 32; ++b) {
        dequantize_row<W>(row + b, values, 32);
        for (size_t j = 0; j < 32; j += width) {
          acc0 = xsimd::fma(Batch::load_aligned(values + j), Batch::load_unaligned(x + b * 32 + j), acc0);
        }
      }
      return hadd(acc0);
    }
  }
}

/// out[i] = Σ row·x[i] over n values for i < kRows activation rows x[i] = x + i·n (the sequences
/// of one decode step): each weight vector is loaded and converted once for all rows, and each
/// sum is taken in dot's order, so out[i] equals dot(row, x + i·n, n) exactly. Plain dtypes only.
template <WeightDtype W, size_t kRows, class Arch = DefaultArch>
  requires is_plain_v<W>
void dot_rows(const typename W::Block* row, const float* x, size_t n, float* out) {
  if constexpr (std::is_same_v<Arch, Scalar>) {
    for (size_t r = 0; r < kRows; ++r) out[r] = dot_reference<W>(row, x + r * n, n);
  } else {
    using Batch = FloatBatch<Arch>;
    constexpr size_t width = Batch::size;
    Batch acc[kRows][4];
    for (size_t r = 0; r < kRows; ++r) {
      for (size_t a = 0; a < 4; ++a) acc[r][a] = Batch(0.0f);
    }
    // Decode streams these rows once. 16-bit rows want the next lines prefetched (F16 decode at
    // Qwen2-0.5B dims: 0.945 -> 1.005 of the bandwidth bound); F32 rows lost 8% with it.
    constexpr bool kPrefetch = sizeof(typename W::Block) == 2;
    constexpr size_t step_bytes = 4 * width * sizeof(typename W::Block);
    size_t i = 0;
    for (; i + 4 * width <= n; i += 4 * width) {
      if constexpr (kPrefetch) {
        const char* ahead = reinterpret_cast<const char*>(row + i) + kPrefetchBytes;
        for (size_t line = 0; line < step_bytes; line += 64) __builtin_prefetch(ahead + line, 0, 3);
      }
      for (size_t a = 0; a < 4; ++a) {
        const Batch w = load_as_float<W, Arch>(row, i + a * width);
        for (size_t r = 0; r < kRows; ++r) acc[r][a] = xsimd::fma(w, Batch::load_unaligned(x + r * n + i + a * width), acc[r][a]);
      }
    }
    for (; i + width <= n; i += width) {
      const Batch w = load_as_float<W, Arch>(row, i);
      for (size_t r = 0; r < kRows; ++r) acc[r][0] = xsimd::fma(w, Batch::load_unaligned(x + r * n + i), acc[r][0]);
    }
    for (size_t r = 0; r < kRows; ++r) {
      float sum = hadd((acc[r][0] + acc[r][1]) + (acc[r][2] + acc[r][3]));
      for (size_t j = i; j < n; ++j) sum += element_as_float<W>(row, j) * x[r * n + j];
      out[r] = sum;
    }
  }
}

}  // namespace apr::simd
