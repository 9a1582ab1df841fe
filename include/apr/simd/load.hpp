/// @file load.hpp
/// @brief Loading a vector's worth of weights of any plain dtype as floats.
#pragma once

#include <cstddef>
#include <cstdint>

#include "apr/core/dtype.hpp"
#include "apr/core/half.hpp"
#include "apr/simd/arch.hpp"

namespace apr::simd {

/// A batch of floats for Arch.
template <class Arch>
using FloatBatch = xsimd::batch<float, Arch>;

/// Loads FloatBatch<Arch>::size values of a plain (F32, F16 or BF16) row starting at element `i`.
template <WeightDtype W, class Arch>
FloatBatch<Arch> load_as_float(const typename W::Block* row, size_t i) {
  using Batch = FloatBatch<Arch>;
  if constexpr (std::is_same_v<W, F32>) {
    return Batch::load_unaligned(row + i);
#if defined(__AVX512F__) && defined(__AVX512BW__)
  } else if constexpr (is_avx512_v<Arch>) {
    const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + i));
    if constexpr (std::is_same_v<W, F16>) return _mm512_cvtph_ps(raw);
    else return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
#endif
#if defined(__AVX2__) && defined(__F16C__)
  } else if constexpr (is_avx2_v<Arch>) {
    const __m128i raw = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + i));
    if constexpr (std::is_same_v<W, F16>) return _mm256_cvtph_ps(raw);
    else return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16));
#endif
  } else {
    alignas(64) float values[Batch::size];
    for (size_t j = 0; j < Batch::size; ++j) {
      values[j] = std::is_same_v<W, F16> ? fp16_to_fp32(row[i + j]) : bf16_to_fp32(row[i + j]);
    }
    return Batch::load_aligned(values);
  }
}

/// Value `i` of a plain (F32, F16 or BF16) row as a float.
template <WeightDtype W>
float element_as_float(const typename W::Block* row, size_t i) {
  if constexpr (std::is_same_v<W, F32>) return row[i];
  else if constexpr (std::is_same_v<W, F16>) return fp16_to_fp32(row[i]);
  else return bf16_to_fp32(row[i]);
}

/// True for weight dtypes stored one value per element (F32, F16, BF16).
template <WeightDtype W>
inline constexpr bool is_plain_v = W::block_size == 1;

}  // namespace apr::simd
