/// @file gemm_int8.hpp
/// @brief Prefill matrix × matrix for Q8_0 / Q4_0 weights against int8-quantized activations.
///
/// Y[t][r] = Σ_b d_w(r,b)·d_x(t,b)·Σ_j q_w(r,b,j)·q_x(t,b,j). The AVX2 kernel unpacks a few
/// weight rows to signed bytes and multiplies them with a tile of tokens by vpmaddubsw (as
/// dot_int8 does on AVX2). The AVX-512 VNNI kernel packs a panel
/// of kPanel weight rows into vpdpbusd's layout, per block b and step s (4 values):
///
///     packed[b][s][row][i] = q_w(row, b, 4s+i) + offset   (unsigned bytes, kPanel × 4 per step)
///
/// (Q4_0: nibbles as stored, offset 8; Q8_0: value xor 0x80 = value + 128, offset 128) and the
/// panel's block scales as kPanel floats. For a tile of tokens, each int32 accumulator starts at
/// −offset·Σ_j q_x(t,b,j), so after the 8 steps `vpdpbusd acc, packed, broadcast(x[t][4s..4s+3])`
/// it holds the exact signed block sum; one fma per block applies d_w·d_x in float. Threads own
/// whole panels, every output is summed in the same order, so results do not depend on the
/// thread count.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "apr/core/aligned_buffer.hpp"
#include "apr/core/thread_pool.hpp"
#include "apr/simd/arch.hpp"
#include "apr/simd/dot_int8.hpp"
#include "apr/simd/gemv.hpp"
#include "apr/simd/quantized_activations.hpp"

namespace apr::simd {

/// Reference twin of gemm_int8: one dot_int8_reference per output.
template <Int8DotWeight W>
void gemm_int8_reference(const typename W::Block* w, const QuantizedActivations& x, float* y, size_t rows) {
  const size_t row_blocks = x.n() / QuantizedActivations::kBlock;
  for (size_t t = 0; t < x.rows(); ++t) {
    for (size_t r = 0; r < rows; ++r) y[t * rows + r] = dot_int8_reference<W>(w + r * row_blocks, x, t);
  }
}

#if defined(__AVX2__) && defined(__F16C__)
namespace detail {

/// Register tile of the AVX2 int8 gemm: kTokens token rows × kRows weight rows, one 8-lane
/// accumulator each, with the rows' unpacked blocks and their magnitudes in registers.
struct Avx2Int8Tile {
  static constexpr size_t kRows = 2;    ///< weight rows per tile
  static constexpr size_t kTokens = 3;  ///< token rows per tile (4 and more spill on AVX2's 16 registers)
};

/// Weight rows [row0, row0 + kRows) unpacked once for every token tile: `values` [kRows][blocks·32]
/// signed bytes (Q4_0's nibbles minus 8), `scales` [kRows][blocks] floats; rows past `rows` are zero.
template <Int8DotWeight W>
void unpack_int8_rows(const typename W::Block* w, size_t rows, size_t blocks, size_t row0, int8_t* values, float* scales) {
  for (size_t i = 0; i < Avx2Int8Tile::kRows; ++i) {
    for (size_t b = 0; b < blocks; ++b) {
      auto* out = reinterpret_cast<__m256i*>(values + (i * blocks + b) * 32);
      if (row0 + i < rows) {
        const typename W::Block& block = w[(row0 + i) * blocks + b];
        _mm256_store_si256(out, signed_block<W>(block));
        scales[i * blocks + b] = fp16_to_fp32(block.d);
      } else {
        _mm256_store_si256(out, _mm256_setzero_si256());
        scales[i * blocks + b] = 0.0f;
      }
    }
  }
}

/// Y[token0 + t][i] for t < kTokens and the first `valid` of the tile's unpacked rows; every
/// output is one accumulator over the blocks in order, whatever the tile, so results do not
/// depend on the thread count.
template <size_t kTokens>
void int8_avx2_micro_kernel(const int8_t* values, const float* scales, size_t blocks, const QuantizedActivations& x, size_t token0,
                            float* y, size_t y_stride, size_t valid) {
  constexpr size_t kRows = Avx2Int8Tile::kRows;
  const int8_t* x_values[kTokens];
  const float* x_scales[kTokens];
  for (size_t t = 0; t < kTokens; ++t) {
    x_values[t] = x.values(token0 + t);
    x_scales[t] = x.scales(token0 + t);
  }
  __m256 acc[kTokens][kRows];
  for (size_t t = 0; t < kTokens; ++t) {
    for (size_t i = 0; i < kRows; ++i) acc[t][i] = _mm256_setzero_ps();
  }
  for (size_t b = 0; b < blocks; ++b) {
    __m256i weights[kRows], magnitudes[kRows];
    __m256 weight_scales[kRows];
    for (size_t i = 0; i < kRows; ++i) {
      weights[i] = _mm256_load_si256(reinterpret_cast<const __m256i*>(values + (i * blocks + b) * 32));
      magnitudes[i] = _mm256_sign_epi8(weights[i], weights[i]);
      weight_scales[i] = _mm256_broadcast_ss(scales + i * blocks + b);
    }
#pragma GCC unroll 8
    for (size_t t = 0; t < kTokens; ++t) {
      const __m256i activations = _mm256_load_si256(reinterpret_cast<const __m256i*>(x_values[t] + b * 32));
      const __m256 x_scale = _mm256_broadcast_ss(x_scales[t] + b);
      for (size_t i = 0; i < kRows; ++i) {
        const __m256i sums = group_sums(weights[i], magnitudes[i], activations);
        acc[t][i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(weight_scales[i], x_scale), acc[t][i]);
      }
    }
  }
  for (size_t t = 0; t < kTokens; ++t) {
    for (size_t i = 0; i < kRows; ++i) {
      if (i < valid) y[t * y_stride + i] = reduce_add(acc[t][i]);
    }
  }
}

/// Runs the AVX2 micro-kernel for `tokens` (≤ kTokens) rows by picking the instantiation of that size.
template <size_t kTokens = Avx2Int8Tile::kTokens>
void int8_avx2_micro_kernel_n(size_t tokens, const int8_t* values, const float* scales, size_t blocks, const QuantizedActivations& x,
                              size_t token0, float* y, size_t y_stride, size_t valid) {
  if constexpr (kTokens > 1) {
    if (tokens < kTokens) return int8_avx2_micro_kernel_n<kTokens - 1>(tokens, values, scales, blocks, x, token0, y, y_stride, valid);
  }
  int8_avx2_micro_kernel<kTokens>(values, scales, blocks, x, token0, y, y_stride, valid);
}

}  // namespace detail
#endif

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
namespace detail {

/// Register tile of the int8 gemm: kTokens token rows × kVectors vectors of 16 weight rows.
struct Int8GemmTile {
  static constexpr size_t kVectors = 2;                ///< 16-row vectors per panel
  static constexpr size_t kPanel = kVectors * 16;      ///< weight rows per panel
  static constexpr size_t kTokens = 6;                 ///< token rows per tile
  static constexpr size_t kSteps = 8;                  ///< 4-value steps per block of 32
  static constexpr size_t kStepBytes = kPanel * 4;     ///< packed bytes per step
  static constexpr size_t kBlockBytes = kSteps * kStepBytes;  ///< packed bytes per block
};

/// One row's block as 32 unsigned bytes in element order (offset by kUnsignedOffset<W>) in
/// one 256-bit half of a register: `half` 0 or 1 of `into`.
template <Int8DotWeight W>
inline __m512i insert_unsigned_block(__m512i into, const typename W::Block& block, int half) {
  __m256i bytes;
  if constexpr (std::is_same_v<W, Q4_0>) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block.qs));
    bytes = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0f));
  } else {
    bytes = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.qs)),
                             _mm256_set1_epi8(static_cast<char>(0x80)));
  }
  return half == 0 ? _mm512_inserti64x4(into, bytes, 0) : _mm512_inserti64x4(into, bytes, 1);
}

/// Transposes 8 registers of [row i | row i+8] (8 dwords each, i < 8) into 8 registers of
/// [rows 0..15 at dword s] (s < 8): an 8×8 dword transpose in each 256-bit half.
inline void transpose_rows_to_steps(const __m512i (&rows)[8], __m512i (&steps)[8]) {
  __m512i pairs[8], quads[8];
  for (int i = 0; i < 8; i += 2) {
    pairs[i] = _mm512_unpacklo_epi32(rows[i], rows[i + 1]);
    pairs[i + 1] = _mm512_unpackhi_epi32(rows[i], rows[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    quads[i] = _mm512_unpacklo_epi64(pairs[i], pairs[i + 2]);
    quads[i + 1] = _mm512_unpackhi_epi64(pairs[i], pairs[i + 2]);
    quads[i + 2] = _mm512_unpacklo_epi64(pairs[i + 1], pairs[i + 3]);
    quads[i + 3] = _mm512_unpackhi_epi64(pairs[i + 1], pairs[i + 3]);
  }
  const __m512i low_lanes = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
  const __m512i high_lanes = _mm512_setr_epi64(2, 3, 10, 11, 6, 7, 14, 15);
  for (int s = 0; s < 4; ++s) {
    steps[s] = _mm512_permutex2var_epi64(quads[s], low_lanes, quads[s + 4]);
    steps[s + 4] = _mm512_permutex2var_epi64(quads[s], high_lanes, quads[s + 4]);
  }
}

/// Packs weight rows [row0, row0 + kPanel) (rows past `rows` are zero with scale 0) into
/// `packed` ([blocks][steps][kPanel][4] bytes) and `scales` ([blocks][kPanel] floats).
template <Int8DotWeight W>
void pack_int8_panel(const typename W::Block* w, size_t rows, size_t blocks, size_t row0, uint8_t* packed,
                     float* scales) {
  using Tile = Int8GemmTile;
  const typename W::Block* panel_rows[Tile::kPanel];
  const size_t valid = std::min(Tile::kPanel, rows - row0);
  for (size_t j = 0; j < Tile::kPanel; ++j) panel_rows[j] = j < valid ? w + (row0 + j) * blocks : nullptr;
  for (size_t b = 0; b < blocks; ++b) {
    alignas(64) uint16_t half_scales[Tile::kPanel] = {};
    for (size_t j = 0; j < valid; ++j) half_scales[j] = panel_rows[j][b].d;
    for (size_t v = 0; v < Tile::kVectors; ++v) {
      _mm512_store_ps(scales + b * Tile::kPanel + v * 16,
                      _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(half_scales + v * 16))));
      __m512i row_pairs[8], steps[8];
      for (size_t i = 0; i < 8; ++i) {
        row_pairs[i] = _mm512_setzero_si512();
        for (int half = 0; half < 2; ++half) {
          const typename W::Block* row = panel_rows[v * 16 + i + 8 * static_cast<size_t>(half)];
          if (row != nullptr) row_pairs[i] = insert_unsigned_block<W>(row_pairs[i], row[b], half);
        }
      }
      transpose_rows_to_steps(row_pairs, steps);
      for (size_t s = 0; s < Tile::kSteps; ++s) {
        _mm512_store_si512(packed + b * Tile::kBlockBytes + s * Tile::kStepBytes + v * 64, steps[s]);
      }
    }
  }
}

/// Four int8 activations as one int32 (the broadcast operand of vpdpbusd).
inline int32_t activation_word(const int8_t* values) {
  int32_t word;
  std::memcpy(&word, values, 4);
  return word;
}

/// Y[t][row0 ..] for kTokens tokens against one packed panel; `offset_sums` holds
/// −offset·Σq_x per token and block ([token][blocks]); stores the first `valid` rows.
template <size_t kTokens>
void int8_micro_kernel(const uint8_t* packed, const float* scales, size_t blocks, const QuantizedActivations& x,
                       size_t token0, const int32_t* offset_sums, float* y, size_t y_stride, size_t valid) {
  using Tile = Int8GemmTile;
  const size_t n = x.n();
  const int8_t* values = x.values(token0);
  const float* x_scales = x.scales(token0);
  const int32_t* sums = offset_sums + token0 * blocks;
  __m512 total[kTokens][Tile::kVectors];
  for (size_t t = 0; t < kTokens; ++t) {
    for (size_t v = 0; v < Tile::kVectors; ++v) total[t][v] = _mm512_setzero_ps();
  }
  for (size_t b = 0; b < blocks; ++b) {
    __m512i acc[kTokens][Tile::kVectors];
    for (size_t t = 0; t < kTokens; ++t) {
      const __m512i start = _mm512_set1_epi32(sums[t * blocks + b]);
      for (size_t v = 0; v < Tile::kVectors; ++v) acc[t][v] = start;
    }
    const uint8_t* block = packed + b * Tile::kBlockBytes;
#pragma GCC unroll 8
    for (size_t s = 0; s < Tile::kSteps; ++s) {
      __m512i weights[Tile::kVectors];
      for (size_t v = 0; v < Tile::kVectors; ++v) weights[v] = _mm512_load_si512(block + s * Tile::kStepBytes + v * 64);
#pragma GCC unroll 16
      for (size_t t = 0; t < kTokens; ++t) {
        const __m512i activation = _mm512_set1_epi32(activation_word(values + t * n + b * 32 + s * 4));
        for (size_t v = 0; v < Tile::kVectors; ++v) acc[t][v] = _mm512_dpbusd_epi32(acc[t][v], weights[v], activation);
      }
    }
    __m512 weight_scale[Tile::kVectors];
    for (size_t v = 0; v < Tile::kVectors; ++v) weight_scale[v] = _mm512_load_ps(scales + b * Tile::kPanel + v * 16);
#pragma GCC unroll 16
    for (size_t t = 0; t < kTokens; ++t) {
      const __m512 x_scale = _mm512_set1_ps(x_scales[t * (n / 32) + b]);
      for (size_t v = 0; v < Tile::kVectors; ++v) {
        total[t][v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[t][v]), _mm512_mul_ps(weight_scale[v], x_scale), total[t][v]);
      }
    }
  }
  for (size_t t = 0; t < kTokens; ++t) {
    float* out = y + t * y_stride;
    for (size_t v = 0; v < Tile::kVectors; ++v) {
      const size_t lanes = valid > v * 16 ? std::min<size_t>(16, valid - v * 16) : 0;
      const __mmask16 mask = static_cast<__mmask16>((uint32_t{1} << lanes) - 1);
      _mm512_mask_storeu_ps(out + v * 16, mask, total[t][v]);
    }
  }
}

/// Runs the micro-kernel for `tokens` (≤ kTokens) rows by picking the instantiation of that size.
template <size_t kTokens = Int8GemmTile::kTokens>
void int8_micro_kernel_n(size_t tokens, const uint8_t* packed, const float* scales, size_t blocks,
                         const QuantizedActivations& x, size_t token0, const int32_t* offset_sums, float* y,
                         size_t y_stride, size_t valid) {
  if constexpr (kTokens > 0) {
    if (tokens == kTokens) {
      int8_micro_kernel<kTokens>(packed, scales, blocks, x, token0, offset_sums, y, y_stride, valid);
    } else {
      int8_micro_kernel_n<kTokens - 1>(tokens, packed, scales, blocks, x, token0, offset_sums, y, y_stride, valid);
    }
  }
}

}  // namespace detail
#endif

/// Y[t][r] = Σ_c W[r][c]·X[t][c] with X already quantized to int8 (x.rows() tokens, x.n() == cols).
template <Int8DotWeight W, class Arch = DefaultArch>
void gemm_int8(const typename W::Block* w, const QuantizedActivations& x, float* y, size_t rows, ThreadPool& pool) {
  const size_t blocks = x.n() / QuantizedActivations::kBlock;
  const size_t tokens = x.rows();
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
  if constexpr (is_avx512_v<Arch>) {
    using Tile = detail::Int8GemmTile;
    AlignedArray<int32_t> offset_sums(tokens * blocks);
    for (size_t i = 0; i < tokens * blocks; ++i) offset_sums[i] = -static_cast<int32_t>(detail::kUnsignedOffset<W>) * x.sums()[i];
    const size_t panels = (rows + Tile::kPanel - 1) / Tile::kPanel;
    pool.parallel_for(panels, [&](size_t first_panel, size_t end_panel) {
      AlignedArray<uint8_t> packed(blocks * Tile::kBlockBytes);
      AlignedArray<float> scales(blocks * Tile::kPanel);
      for (size_t p = first_panel; p < end_panel; ++p) {
        const size_t row0 = p * Tile::kPanel;
        const size_t valid = std::min(Tile::kPanel, rows - row0);
        detail::pack_int8_panel<W>(w, rows, blocks, row0, packed.data(), scales.data());
        for (size_t t = 0; t < tokens; t += Tile::kTokens) {
          const size_t count = std::min(Tile::kTokens, tokens - t);
          detail::int8_micro_kernel_n(count, packed.data(), scales.data(), blocks, x, t, offset_sums.data(),
                                      y + t * rows + row0, rows, valid);
        }
      }
    });
    return;
  }
#endif
#if defined(__AVX2__) && defined(__F16C__)
  if constexpr (uses_avx2_int8_v<Arch>) {
    using Tile = detail::Avx2Int8Tile;
    const size_t groups = (rows + Tile::kRows - 1) / Tile::kRows;
    pool.parallel_for(
        groups,
        [&](size_t first_group, size_t end_group) {
          AlignedArray<int8_t> values(Tile::kRows * blocks * 32);
          AlignedArray<float> scales(Tile::kRows * blocks);
          for (size_t g = first_group; g < end_group; ++g) {
            const size_t row0 = g * Tile::kRows;
            detail::unpack_int8_rows<W>(w, rows, blocks, row0, values.data(), scales.data());
            for (size_t t = 0; t < tokens; t += Tile::kTokens) {
              detail::int8_avx2_micro_kernel_n(std::min(Tile::kTokens, tokens - t), values.data(), scales.data(), blocks, x, t,
                                               y + t * rows + row0, rows, std::min(Tile::kRows, rows - row0));
            }
          }
        },
        kGemvGrain / Tile::kRows);
    return;
  }
#endif
  pool.parallel_for(
      rows,
      [&](size_t begin, size_t end) {
        size_t r = begin;
        for (; r + kInt8WeightRows <= end; r += kInt8WeightRows) {  // as gemv_int8: a few weight rows side by side
          float out[kInt8WeightRows];
          for (size_t t = 0; t < tokens; ++t) {
            dot_int8_weight_rows<W, kInt8WeightRows, Arch>(w + r * blocks, blocks, x, t, out);
            for (size_t i = 0; i < kInt8WeightRows; ++i) y[t * rows + r + i] = out[i];
          }
        }
        for (; r < end; ++r) {
          for (size_t t = 0; t < tokens; ++t) y[t * rows + r] = dot_int8<W, Arch>(w + r * blocks, x, t);
        }
      },
      kGemvGrain);
}

}  // namespace apr::simd
