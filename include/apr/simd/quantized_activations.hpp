/// @file quantized_activations.hpp
/// @brief Activations quantized to int8 blocks of 32 (one f32 scale each) for integer dot products.
///
/// Like llama.cpp's q8_0 activations, but the scale stays f32 and the sums of the values are kept
/// (per block, and per group of four for vpdpbusd), so the kernels can use unsigned weights
/// directly: Σ (n−8)·x = Σ n·x − 8·Σ x for Q4_0's nibbles, likewise with 128 for Q8_0.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "apr/core/aligned_buffer.hpp"
#include "apr/simd/arch.hpp"

namespace apr::simd {

/// Rows of activations quantized to int8 in blocks of 32 (values, per-block scale and sum).
class QuantizedActivations {
 public:
  /// Values per block.
  static constexpr size_t kBlock = 32;

  /// Quantizes `rows` rows of `n` floats (row stride `n`; n a multiple of 32), reusing storage.
  void quantize(const float* x, size_t rows, size_t n) {
    reserve(rows, n);
    for (size_t r = 0; r < rows; ++r) quantize_row(x + r * n, r);
  }

  /// Makes room for `rows` rows of `n` values (n a multiple of 32); keeps capacity.
  void reserve(size_t rows, size_t n) {
    rows_ = rows;
    n_ = n;
    const size_t blocks = rows * n / kBlock;
    if (values_.size() < rows * n) values_ = AlignedArray<int8_t>(rows * n);
    if (scales_.size() < blocks) {
      scales_ = AlignedArray<float>(blocks);
      sums_ = AlignedArray<int32_t>(blocks);
    }
    if (kWithInt16 && values_int16_.size() < rows * n) values_int16_ = AlignedArray<int16_t>(rows * n);
    if (pair_scales_.size() < rows * n / 4) {
      pair_scales_ = AlignedArray<float>(rows * n / 4);
      q4_lane_offsets_ = AlignedArray<int32_t>(rows * n / 4);
      q8_lane_offsets_ = AlignedArray<int32_t>(rows * n / 4);
    }
  }

  /// Quantizes one row of `n()` floats into row `r` (after reserve).
  void quantize_row(const float* x, size_t r) {
    int8_t* q = values_.data() + r * n_;
    float* scales = scales_.data() + r * n_ / kBlock;
    int32_t* sums = sums_.data() + r * n_ / kBlock;
    for (size_t b = 0; b < n_ / kBlock; ++b) quantize_block(x + b * kBlock, q + b * kBlock, scales[b], sums[b]);
    if constexpr (kWithInt16) {
      int16_t* wide = values_int16_.data() + r * n_;
      for (size_t b = 0; b < n_ / kBlock; ++b) {
        for (size_t k = 0; k < 8; ++k) {
          wide[b * kBlock + k] = q[b * kBlock + 2 * k];
          wide[b * kBlock + 8 + k] = q[b * kBlock + 2 * k + 1];
          wide[b * kBlock + 16 + k] = q[b * kBlock + 16 + 2 * k];
          wide[b * kBlock + 24 + k] = q[b * kBlock + 17 + 2 * k];
        }
      }
    }
    float* pair_scales = pair_scales_.data() + r * n_ / 4;
    for (size_t b = 0; b < n_ / kBlock; ++b) {
      for (size_t j = 0; j < 8; ++j) pair_scales[b * 8 + j] = scales[b];
    }
    int32_t* q4_offsets = q4_lane_offsets_.data() + r * n_ / 4;
    int32_t* q8_offsets = q8_lane_offsets_.data() + r * n_ / 4;
    for (size_t lane = 0; lane < n_ / 4; ++lane) {
      const int32_t sum = q[4 * lane] + q[4 * lane + 1] + q[4 * lane + 2] + q[4 * lane + 3];
      q4_offsets[lane] = -8 * sum;
      q8_offsets[lane] = -128 * sum;
    }
  }

  /// Number of rows.
  [[nodiscard]] size_t rows() const noexcept { return rows_; }
  /// Values per row.
  [[nodiscard]] size_t n() const noexcept { return n_; }
  /// Row r's int8 values.
  [[nodiscard]] const int8_t* values(size_t r = 0) const noexcept { return values_.data() + r * n_; }
  /// Row r's per-block scales (x ≈ q · scale).
  [[nodiscard]] const float* scales(size_t r = 0) const noexcept { return scales_.data() + r * n_ / kBlock; }
  /// Row r's per-block sums of the int8 values.
  [[nodiscard]] const int32_t* sums(size_t r = 0) const noexcept { return sums_.data() + r * n_ / kBlock; }
  /// Row r's values as int16 for the 128-bit kernels (built with SSE4.1 or WebAssembly SIMD128):
  /// per block four groups of 8 — the even then the odd values of 0..15, then of 16..31 — the
  /// order in which 16-bit lanes split a Q4_0 block's bytes into nibbles (and Q8_0's into bytes).
  [[nodiscard]] const int16_t* values_int16(size_t r = 0) const noexcept { return values_int16_.data() + r * n_; }
  /// Row r's scales laid out for 512-bit kernels: per pair of blocks, 16 floats (8 copies of
  /// each block's scale), so lanes match the int32 sums vpdpbusd makes of 64 bytes.
  [[nodiscard]] const float* pair_scales(size_t r = 0) const noexcept { return pair_scales_.data() + r * n_ / 4; }
  /// Row r's −kUnsignedOffset·(q[4l] + … + q[4l+3]) for every group l of four values: vpdpbusd
  /// lanes seeded with these sum unsigned weights (value + kUnsignedOffset: 8 for Q4_0's nibbles,
  /// 128 for Q8_0) into the exact signed sums.
  template <int kUnsignedOffset>
    requires(kUnsignedOffset == 8 || kUnsignedOffset == 128)
  [[nodiscard]] const int32_t* lane_offsets(size_t r = 0) const noexcept {
    return (kUnsignedOffset == 8 ? q4_lane_offsets_ : q8_lane_offsets_).data() + r * n_ / 4;
  }

 private:
  static void quantize_block(const float* x, int8_t* q, float& scale, int32_t& sum) {
#if defined(__AVX512F__) && defined(__AVX512BW__)
    const __m512 lo = _mm512_loadu_ps(x);
    const __m512 hi = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(lo), _mm512_abs_ps(hi)));
    scale = amax / 127.0f;
    const __m512 inverse = _mm512_set1_ps(scale != 0.0f ? 127.0f / amax : 0.0f);
    const __m512i qlo = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(lo, inverse), _MM_FROUND_TO_NEAREST_INT));
    const __m512i qhi = _mm512_cvtps_epi32(_mm512_roundscale_ps(_mm512_mul_ps(hi, inverse), _MM_FROUND_TO_NEAREST_INT));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm512_cvtsepi32_epi8(qlo));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm512_cvtsepi32_epi8(qhi));
    sum = _mm512_reduce_add_epi32(_mm512_add_epi32(qlo, qhi));
#else
    float amax = 0.0f;
    for (size_t j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(x[j]));
    scale = amax / 127.0f;
    const float inverse = scale != 0.0f ? 127.0f / amax : 0.0f;
    sum = 0;
    for (size_t j = 0; j < kBlock; ++j) {
      q[j] = static_cast<int8_t>(std::nearbyint(x[j] * inverse));
      sum += q[j];
    }
#endif
  }

  /// True when the int16 copy is kept: the 128-bit integer kernels exist in this build.
  static constexpr bool kWithInt16 =
#if defined(__SSE4_1__)
      true;
#else
      false;
#endif

  AlignedArray<int8_t> values_;
  AlignedArray<int16_t> values_int16_;
  AlignedArray<float> scales_;
  AlignedArray<int32_t> sums_;
  AlignedArray<float> pair_scales_;
  AlignedArray<int32_t> q4_lane_offsets_;
  AlignedArray<int32_t> q8_lane_offsets_;
  size_t rows_ = 0;
  size_t n_ = 0;
};

}  // namespace apr::simd
