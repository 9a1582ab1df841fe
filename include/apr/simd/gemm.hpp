/// @file gemm.hpp
/// @brief Matrix × matrix (prefill): Y = X·Wᵀ for a batch of token rows against a weight matrix.
///
/// Layout: W is [rows][cols] (one output feature per row), X is [tokens][cols], Y is
/// [tokens][rows]. The float kernel packs a panel of kPanel weight rows (dequantized, transposed
/// to [k][kPanel]) per chunk of kDepth columns and runs an MR×kPanel register-tiled micro-kernel
/// over the tokens; threads own whole panels, so each output is summed in one fixed order.
#pragma once

#include <algorithm>
#include <cstddef>

#include "apr/core/aligned_buffer.hpp"
#include "apr/core/dtype.hpp"
#include "apr/core/quantize.hpp"
#include "apr/core/thread_pool.hpp"
#include "apr/simd/dot.hpp"
#include "apr/simd/gemv.hpp"

namespace apr::simd {

/// Reference twin of gemm: one dot_reference per output.
template <WeightDtype W>
void gemm_reference(const typename W::Block* w, const float* x, float* y, size_t rows, size_t cols, size_t tokens) {
  for (size_t t = 0; t < tokens; ++t) {
    for (size_t r = 0; r < rows; ++r) y[t * rows + r] = dot_reference<W>(w + r * (cols / W::block_size), x + t * cols, cols);
  }
}

namespace detail {

/// Register tile of the float gemm for Arch: kRows token rows × kVectors vectors of weight rows.
template <class Arch>
struct GemmTile {
  static constexpr size_t kVectors = 2;                                         ///< vectors per packed k step
  static constexpr size_t kWidth = FloatBatch<Arch>::size;                      ///< floats per vector
  static constexpr size_t kPanel = kVectors * kWidth;                           ///< weight rows per panel
  static constexpr size_t kRows = is_avx512_v<Arch> ? 12 : 6;                   ///< token rows per tile
  static constexpr size_t kDepth = 256;                                         ///< k values per packed chunk
};

/// Packs weight rows [row0, row0+kPanel) × columns [k0, k0+depth) as floats laid out [k][kPanel]
/// (rows past `rows` are zero).
template <WeightDtype W, class Arch>
void pack_panel(const typename W::Block* w, size_t rows, size_t cols, size_t row0, size_t k0, size_t depth,
                float* packed, float* scratch) {
  constexpr size_t panel = GemmTile<Arch>::kPanel;
  for (size_t j = 0; j < panel; ++j) {
    const size_t r = row0 + j;
    if (r < rows) {
      dequantize_row<W>(w + (r * cols + k0) / W::block_size, scratch, depth);
      for (size_t k = 0; k < depth; ++k) packed[k * panel + j] = scratch[k];
    } else {
      for (size_t k = 0; k < depth; ++k) packed[k * panel + j] = 0.0f;
    }
  }
}

/// acc[i] (+)= Σ_k x[i][k]·packed[k][:] for kTokens token rows; stores kPanel outputs per row
/// into y (row stride y_stride), only the first `valid` of them, adding when `accumulate`.
template <size_t kTokens, class Arch>
void gemm_micro_kernel(const float* x, size_t x_stride, const float* packed, size_t depth, float* y, size_t y_stride,
                       size_t valid, bool accumulate) {
  using Batch = FloatBatch<Arch>;
  using Tile = GemmTile<Arch>;
  Batch acc[kTokens][Tile::kVectors];
  for (size_t i = 0; i < kTokens; ++i) {
    for (size_t v = 0; v < Tile::kVectors; ++v) acc[i][v] = Batch(0.0f);
  }
  for (size_t k = 0; k < depth; ++k) {
    const Batch b0 = Batch::load_aligned(packed + k * Tile::kPanel);
    const Batch b1 = Batch::load_aligned(packed + k * Tile::kPanel + Tile::kWidth);
#pragma GCC unroll 16
    for (size_t i = 0; i < kTokens; ++i) {
      const Batch a(x[i * x_stride + k]);
      acc[i][0] = xsimd::fma(a, b0, acc[i][0]);
      acc[i][1] = xsimd::fma(a, b1, acc[i][1]);
    }
  }
  for (size_t i = 0; i < kTokens; ++i) {
    float* out = y + i * y_stride;
    if (valid == Tile::kPanel) {
      for (size_t v = 0; v < Tile::kVectors; ++v) {
        Batch value = acc[i][v];
        if (accumulate) value += Batch::load_unaligned(out + v * Tile::kWidth);
        value.store_unaligned(out + v * Tile::kWidth);
      }
    } else {
      alignas(64) float tile[Tile::kPanel];
      for (size_t v = 0; v < Tile::kVectors; ++v) acc[i][v].store_aligned(tile + v * Tile::kWidth);
      for (size_t j = 0; j < valid; ++j) out[j] = accumulate ? out[j] + tile[j] : tile[j];
    }
  }
}

/// Runs the micro-kernel for `tokens` (< kRows) rows by picking the instantiation of that size.
template <class Arch, size_t kTokens = GemmTile<Arch>::kRows>
void gemm_micro_kernel_n(size_t tokens, const float* x, size_t x_stride, const float* packed, size_t depth, float* y,
                         size_t y_stride, size_t valid, bool accumulate) {
  if constexpr (kTokens > 0) {
    if (tokens == kTokens) {
      gemm_micro_kernel<kTokens, Arch>(x, x_stride, packed, depth, y, y_stride, valid, accumulate);
    } else {
      gemm_micro_kernel_n<Arch, kTokens - 1>(tokens, x, x_stride, packed, depth, y, y_stride, valid, accumulate);
    }
  }
}

}  // namespace detail

/// Y[t][r] = Σ_c W[r][c]·X[t][c] for t < tokens, r < rows (float activations, any weight dtype).
template <WeightDtype W, class Arch = DefaultArch>
void gemm(const typename W::Block* w, const float* x, float* y, size_t rows, size_t cols, size_t tokens,
          ThreadPool& pool) {
  if constexpr (std::is_same_v<Arch, Scalar>) {
    gemm_reference<W>(w, x, y, rows, cols, tokens);
  } else {
    using Tile = detail::GemmTile<Arch>;
    if (tokens < 3) {
      for (size_t t = 0; t < tokens; ++t) gemv<W, Arch>(w, x + t * cols, y + t * rows, rows, cols, pool);
      return;
    }
    const size_t panels = (rows + Tile::kPanel - 1) / Tile::kPanel;
    pool.parallel_for(panels, [&](size_t first_panel, size_t end_panel) {
      AlignedArray<float> packed(Tile::kPanel * Tile::kDepth);
      AlignedArray<float> scratch(Tile::kDepth);
      for (size_t p = first_panel; p < end_panel; ++p) {
        const size_t row0 = p * Tile::kPanel;
        const size_t valid = std::min(Tile::kPanel, rows - row0);
        for (size_t k0 = 0; k0 < cols; k0 += Tile::kDepth) {
          const size_t depth = std::min(Tile::kDepth, cols - k0);
          detail::pack_panel<W, Arch>(w, rows, cols, row0, k0, depth, packed.data(), scratch.data());
          for (size_t t = 0; t < tokens; t += Tile::kRows) {
            const size_t count = std::min(Tile::kRows, tokens - t);
            detail::gemm_micro_kernel_n<Arch>(count, x + t * cols + k0, cols, packed.data(), depth, y + t * rows + row0,
                                              rows, valid, k0 != 0);
          }
        }
      }
    });
  }
}

}  // namespace apr::simd
