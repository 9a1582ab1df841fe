/// @file gemv.hpp
/// @brief Matrix × vector (decode): y = W·x for a row-major weight matrix of any weight dtype.
#pragma once

#include <cstddef>

#include "apr/core/dtype.hpp"
#include "apr/core/thread_pool.hpp"
#include "apr/simd/dot.hpp"
#include "apr/simd/dot_int8.hpp"

namespace apr::simd {

/// Rows per scheduling unit: keeps each thread's range a whole number of cache lines of y.
inline constexpr size_t kGemvGrain = 16;

/// y[r] = Σ_c W[r][c]·x[c] for r < rows; W is `rows` rows of `cols` values in dtype W.
template <WeightDtype W, class Arch = DefaultArch>
void gemv(const typename W::Block* w, const float* x, float* y, size_t rows, size_t cols, ThreadPool& pool) {
  const size_t row_blocks = cols / W::block_size;
  pool.parallel_for(
      rows,
      [&](size_t begin, size_t end) {
        for (size_t r = begin; r < end; ++r) y[r] = dot<W, Arch>(w + r * row_blocks, x, cols);
      },
      kGemvGrain);
}

/// y[r] = Σ_c W[r][c]·x[c] with x already quantized to int8 (row `x_row` of `x`, x.n() == cols).
template <Int8DotWeight W, class Arch = DefaultArch>
void gemv_int8(const typename W::Block* w, const QuantizedActivations& x, size_t x_row, float* y, size_t rows,
               ThreadPool& pool) {
  const size_t row_blocks = x.n() / 32;
  pool.parallel_for(
      rows,
      [&](size_t begin, size_t end) {
        for (size_t r = begin; r < end; ++r) y[r] = dot_int8<W, Arch>(w + r * row_blocks, x, x_row);
      },
      kGemvGrain);
}

}  // namespace apr::simd
