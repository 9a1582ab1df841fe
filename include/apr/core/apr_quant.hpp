/// @file apr_quant.hpp
/// @brief aprender's native quantized layouts, APR_Q4 and APR_Q8 (quantize and dequantize).
///
/// - APR_Q4: blocks of 32 values, an f16 scale = max|x|/7 (1 when the block is all zero), then 16
///   bytes; q = clamp(round(x/scale), −8, 7) stored as q+8, element 2k in the low nibble of byte
///   k and 2k+1 in the high nibble; the last block is zero-padded. A NaN, infinite or subnormal
///   scale dequantizes as 0 (aprender's reader does the same).
/// - APR_Q8: one f32 scale = max|x|/127 for the whole tensor (1 when all zero), then n int8;
///   q = clamp(round(x/scale), −127, 127).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "apr/core/half.hpp"

namespace apr {

/// Bytes of `n` values in APR_Q4 (last block padded).
constexpr size_t apr_q4_bytes(size_t n) { return (n + 31) / 32 * 18; }
/// Bytes of `n` values in APR_Q8 (0 for an empty tensor).
constexpr size_t apr_q8_bytes(size_t n) { return n == 0 ? 0 : 4 + n; }

/// Quantizes `n` floats to APR_Q4 into `out` (apr_q4_bytes(n) bytes).
inline void quantize_apr_q4(const float* x, size_t n, uint8_t* out) {
  for (size_t block = 0; block * 32 < n; ++block) {
    const size_t count = std::min<size_t>(32, n - block * 32);
    const float* v = x + block * 32;
    float amax = 0.0f;
    for (size_t j = 0; j < count; ++j) amax = std::max(amax, std::fabs(v[j]));
    const float scale = amax == 0.0f ? 1.0f : amax / 7.0f;
    const uint16_t stored = fp32_to_fp16(scale);
    uint8_t* b = out + block * 18;
    std::memcpy(b, &stored, 2);
    std::memset(b + 2, 0, 16);
    for (size_t j = 0; j < count; ++j) {
      const int q = std::clamp(static_cast<int>(std::round(v[j] / scale)), -8, 7) + 8;
      b[2 + j / 2] |= static_cast<uint8_t>(j % 2 == 0 ? q : q << 4);
    }
  }
}

/// Dequantizes `n` APR_Q4 values from `in` into `y`.
inline void dequantize_apr_q4(const uint8_t* in, size_t n, float* y) {
  for (size_t block = 0; block * 32 < n; ++block) {
    const uint8_t* b = in + block * 18;
    uint16_t bits;
    std::memcpy(&bits, b, 2);
    float scale = fp16_to_fp32(bits);
    if (!std::isfinite(scale) || (scale != 0.0f && std::fabs(scale) < 6.103515625e-05f)) scale = 0.0f;
    const size_t count = std::min<size_t>(32, n - block * 32);
    for (size_t j = 0; j < count; ++j) {
      const int q = j % 2 == 0 ? (b[2 + j / 2] & 0x0F) : (b[2 + j / 2] >> 4);
      y[block * 32 + j] = static_cast<float>(q - 8) * scale;
    }
  }
}

/// Quantizes `n` floats to APR_Q8 into `out` (apr_q8_bytes(n) bytes).
inline void quantize_apr_q8(const float* x, size_t n, uint8_t* out) {
  if (n == 0) return;
  float amax = 0.0f;
  for (size_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float scale = amax == 0.0f ? 1.0f : amax / 127.0f;
  std::memcpy(out, &scale, 4);
  for (size_t i = 0; i < n; ++i) {
    out[4 + i] = static_cast<uint8_t>(static_cast<int8_t>(std::clamp(static_cast<int>(std::round(x[i] / scale)), -127, 127)));
  }
}

/// Dequantizes `n` APR_Q8 values from `in` into `y`.
inline void dequantize_apr_q8(const uint8_t* in, size_t n, float* y) {
  if (n == 0) return;
  float scale;
  std::memcpy(&scale, in, 4);
  for (size_t i = 0; i < n; ++i) y[i] = static_cast<float>(static_cast<int8_t>(in[4 + i])) * scale;
}

}  // namespace apr
