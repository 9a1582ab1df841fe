/// @file half.hpp
/// @brief IEEE binary16 (F16) and bfloat16 (BF16) conversion, scalar and by row.
///
/// F16 rounding is round-to-nearest-even, as F16C's `vcvtps2ph` (imm 0), numpy and ggml do,
/// so quantized scales written by apr equal the ones llama.cpp's tools write.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#if defined(__F16C__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace apr {

/// std::bit_cast, which emscripten 3.1's libc++ lacks; the compilers' builtin is the same thing.
template <class To, class From>
  requires(sizeof(To) == sizeof(From) && std::is_trivially_copyable_v<To> && std::is_trivially_copyable_v<From>)
constexpr To bit_cast(const From& from) noexcept {
  return __builtin_bit_cast(To, from);
}

/// Converts an IEEE binary16 bit pattern to float (exact); portable reference twin of fp16_to_fp32.
constexpr float fp16_to_fp32_scalar(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1fu;
  uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1f) return bit_cast<float>(sign | 0x7f800000u | (mantissa << 13));
  if (exponent != 0) return bit_cast<float>(sign | ((exponent + 112) << 23) | (mantissa << 13));
  if (mantissa == 0) return bit_cast<float>(sign);
  exponent = 113;
  while ((mantissa & 0x400u) == 0) {
    mantissa <<= 1;
    --exponent;
  }
  return bit_cast<float>(sign | (exponent << 23) | ((mantissa & 0x3ffu) << 13));
}

/// Converts a float to binary16, round-to-nearest-even, NaN kept; portable reference twin of fp32_to_fp16.
constexpr uint16_t fp32_to_fp16_scalar(float f) {
  const uint32_t bits = bit_cast<uint32_t>(f);
  const auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((magnitude >> 13) & 0x3ffu));
  if (magnitude >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to Inf
  uint32_t half = 0;
  uint32_t remainder = 0;
  uint32_t halfway = 0;
  if (magnitude < 0x38800000u) {  // result is subnormal or zero: units of 2^-24
    if (magnitude < 0x33000000u) return sign;
    const uint32_t exponent = magnitude >> 23;
    const uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exponent;
    half = mantissa >> shift;
    remainder = mantissa & ((1u << shift) - 1);
    halfway = 1u << (shift - 1);
  } else {
    half = (magnitude - 0x38000000u) >> 13;
    remainder = magnitude & 0x1fffu;
    halfway = 0x1000u;
  }
  if (remainder > halfway || (remainder == halfway && (half & 1u))) ++half;
  return static_cast<uint16_t>(sign | half);
}

/// Converts an IEEE binary16 bit pattern to float (exact).
inline float fp16_to_fp32(uint16_t h) {
#if defined(__F16C__)
  return _cvtsh_ss(h);
#else
  return fp16_to_fp32_scalar(h);
#endif
}

/// Converts a float to IEEE binary16 with round-to-nearest-even; NaN stays NaN.
inline uint16_t fp32_to_fp16(float f) {
#if defined(__F16C__)
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
#else
  return fp32_to_fp16_scalar(f);
#endif
}

/// Converts a bfloat16 bit pattern to float (exact).
inline float bf16_to_fp32(uint16_t b) { return bit_cast<float>(static_cast<uint32_t>(b) << 16); }

/// Converts a float to bfloat16 with round-to-nearest-even; NaN stays a quiet NaN.
inline uint16_t fp32_to_bf16(float f) {
  const uint32_t bits = bit_cast<uint32_t>(f);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

/// Converts `n` binary16 values to float.
inline void fp16_to_fp32_row(const uint16_t* src, float* dst, size_t n) {
  size_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
#elif defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
#endif
  for (; i < n; ++i) dst[i] = fp16_to_fp32(src[i]);
}

/// Converts `n` floats to binary16 (round-to-nearest-even).
inline void fp32_to_fp16_row(const float* src, uint16_t* dst, size_t n) {
  size_t i = 0;
#if defined(__AVX512F__)
  for (; i + 16 <= n; i += 16)
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
#elif defined(__F16C__)
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
#endif
  for (; i < n; ++i) dst[i] = fp32_to_fp16(src[i]);
}

/// Converts `n` bfloat16 values to float.
inline void bf16_to_fp32_row(const uint16_t* src, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(src[i]);
}

/// Converts `n` floats to bfloat16 (round-to-nearest-even).
inline void fp32_to_bf16_row(const float* src, uint16_t* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = fp32_to_bf16(src[i]);
}

}  // namespace apr
