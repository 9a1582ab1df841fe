/// @file gemv.hpp
/// @brief Matrix × vector (decode): y = W·x for a row-major weight matrix of any weight dtype.
#pragma once

#include <algorithm>
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
        size_t r = begin;
        for (; r + kInt8WeightRows <= end; r += kInt8WeightRows) {
          dot_int8_weight_rows<W, kInt8WeightRows, Arch>(w + r * row_blocks, row_blocks, x, x_row, y + r);
        }
        for (; r < end; ++r) y[r] = dot_int8<W, Arch>(w + r * row_blocks, x, x_row);
      },
      kGemvGrain);
}

/// Most activation rows one gemv_int8_rows pass takes (the sequences of one decode step).
inline constexpr size_t kGemvMaxRows = 8;

/// Most activation rows one float gemv_rows pass takes (4 accumulators per row must fit the registers).
inline constexpr size_t kGemvMaxFloatRows = 4;

namespace detail {

/// Y[t][r] for tokens [t0, t0 + kRows) of x ([tokens][cols]) over weight rows [begin, end).
template <WeightDtype W, size_t kRows, class Arch>
void gemv_rows_tile(const typename W::Block* w, const float* x, size_t t0, float* y, size_t rows, size_t cols, size_t begin,
                    size_t end) {
  float out[kRows];
  for (size_t r = begin; r < end; ++r) {
    dot_rows<W, kRows, Arch>(w + r * cols, x + t0 * cols, cols, out);
    for (size_t i = 0; i < kRows; ++i) y[(t0 + i) * rows + r] = out[i];
  }
}

/// Runs gemv_rows_tile for `count` (1..kGemvMaxFloatRows) tokens by picking that instantiation.
template <WeightDtype W, class Arch, size_t kRows = kGemvMaxFloatRows>
void gemv_rows_dispatch(size_t count, const typename W::Block* w, const float* x, size_t t0, float* y, size_t rows, size_t cols,
                        size_t begin, size_t end) {
  if constexpr (kRows > 1) {
    if (count < kRows) return gemv_rows_dispatch<W, Arch, kRows - 1>(count, w, x, t0, y, rows, cols, begin, end);
  }
  gemv_rows_tile<W, kRows, Arch>(w, x, t0, y, rows, cols, begin, end);
}

/// Y[t][r] for tokens [t0, t0 + kRows) of x over weight rows [begin, end).
template <Int8DotWeight W, size_t kRows, class Arch>
void gemv_int8_rows_tile(const typename W::Block* w, const QuantizedActivations& x, size_t t0, float* y, size_t rows,
                         size_t begin, size_t end) {
  const size_t row_blocks = x.n() / 32;
  float out[kRows];
  for (size_t r = begin; r < end; ++r) {
    dot_int8_rows<W, kRows, Arch>(w + r * row_blocks, x, t0, out);
    for (size_t i = 0; i < kRows; ++i) y[(t0 + i) * rows + r] = out[i];
  }
}

/// Runs gemv_int8_rows_tile for `count` (1..kGemvMaxRows) tokens by picking that instantiation.
template <Int8DotWeight W, class Arch, size_t kRows = kGemvMaxRows>
void gemv_int8_rows_dispatch(size_t count, const typename W::Block* w, const QuantizedActivations& x, size_t t0, float* y,
                             size_t rows, size_t begin, size_t end) {
  if constexpr (kRows > 1) {
    if (count < kRows) return gemv_int8_rows_dispatch<W, Arch, kRows - 1>(count, w, x, t0, y, rows, begin, end);
  }
  gemv_int8_rows_tile<W, kRows, Arch>(w, x, t0, y, rows, begin, end);
}

}  // namespace detail

/// Y[t][r] = Σ_c W[r][c]·X[t][c] for the few `tokens` rows of x (one per sequence of a decode
/// step), plain dtypes: each weight vector is converted once per kGemvMaxFloatRows tokens and
/// nothing is packed; every output equals gemv's exactly.
template <WeightDtype W, class Arch = DefaultArch>
  requires is_plain_v<W>
void gemv_rows(const typename W::Block* w, const float* x, float* y, size_t rows, size_t cols, size_t tokens, ThreadPool& pool) {
  pool.parallel_for(
      rows,
      [&](size_t begin, size_t end) {
        for (size_t t0 = 0; t0 < tokens; t0 += kGemvMaxFloatRows) {
          detail::gemv_rows_dispatch<W, Arch>(std::min(kGemvMaxFloatRows, tokens - t0), w, x, t0, y, rows, cols, begin, end);
        }
      },
      kGemvGrain);
}

/// Y[t][r] = Σ_c W[r][c]·X[t][c] for the few rows t of x (one per sequence of a decode step):
/// each weight row is read once per kGemvMaxRows tokens and nothing is packed, so unlike
/// gemm_int8 the cost stays near one gemv's while the weights stream from memory. Every output
/// equals gemv_int8's exactly.
template <Int8DotWeight W, class Arch = DefaultArch>
void gemv_int8_rows(const typename W::Block* w, const QuantizedActivations& x, float* y, size_t rows, ThreadPool& pool) {
  pool.parallel_for(
      rows,
      [&](size_t begin, size_t end) {
        for (size_t t0 = 0; t0 < x.rows(); t0 += kGemvMaxRows) {
          detail::gemv_int8_rows_dispatch<W, Arch>(std::min(kGemvMaxRows, x.rows() - t0), w, x, t0, y, rows, begin, end);
        }
      },
      kGemvGrain);
}

}  // namespace apr::simd
