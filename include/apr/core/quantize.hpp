/// @file quantize.hpp
/// @brief Quantize and dequantize one row of a weight dtype (reference implementations).
///
/// Q8_0 and Q4_0 follow ggml's reference quantizers exactly (and so gguf-py's), so the blocks
/// apr writes are byte-identical to llama.cpp's for the same float input.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "apr/core/dtype.hpp"
#include "apr/core/half.hpp"

namespace apr {

/// Quantizes `n` floats into `dst` (n must be a multiple of W::block_size).
template <WeightDtype W>
void quantize_row(const float* src, typename W::Block* dst, size_t n) {
  if constexpr (std::is_same_v<W, F32>) {
    std::memcpy(dst, src, n * sizeof(float));
  } else if constexpr (std::is_same_v<W, F16>) {
    fp32_to_fp16_row(src, dst, n);
  } else if constexpr (std::is_same_v<W, BF16>) {
    fp32_to_bf16_row(src, dst, n);
  } else if constexpr (std::is_same_v<W, Q8_0>) {
    for (size_t b = 0; b < n / 32; ++b) {
      const float* x = src + b * 32;
      float amax = 0.0f;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
      const float d = amax / 127.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      dst[b].d = fp32_to_fp16(d);
      for (int j = 0; j < 32; ++j) dst[b].qs[j] = static_cast<int8_t>(std::round(x[j] * id));
    }
  } else if constexpr (std::is_same_v<W, Q4_0>) {
    for (size_t b = 0; b < n / 32; ++b) {
      const float* x = src + b * 32;
      float amax = 0.0f;
      float max = 0.0f;  // the value of largest magnitude, sign kept (first one on ties)
      for (int j = 0; j < 32; ++j) {
        if (amax < std::fabs(x[j])) {
          amax = std::fabs(x[j]);
          max = x[j];
        }
      }
      const float d = max / -8.0f;
      const float id = d != 0.0f ? 1.0f / d : 0.0f;
      dst[b].d = fp32_to_fp16(d);
      for (int j = 0; j < 16; ++j) {
        const auto lo = static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(x[j] * id + 8.5f))));
        const auto hi =
            static_cast<uint8_t>(std::min(15, static_cast<int>(static_cast<int8_t>(x[j + 16] * id + 8.5f))));
        dst[b].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
      }
    }
  }
}

/// Dequantizes `n` values from `src` into floats (n must be a multiple of W::block_size).
template <WeightDtype W>
void dequantize_row(const typename W::Block* src, float* dst, size_t n) {
  if constexpr (std::is_same_v<W, F32>) {
    std::memcpy(dst, src, n * sizeof(float));
  } else if constexpr (std::is_same_v<W, F16>) {
    fp16_to_fp32_row(src, dst, n);
  } else if constexpr (std::is_same_v<W, BF16>) {
    bf16_to_fp32_row(src, dst, n);
  } else if constexpr (std::is_same_v<W, Q8_0>) {
    for (size_t b = 0; b < n / 32; ++b) {
      const float d = fp16_to_fp32(src[b].d);
      for (int j = 0; j < 32; ++j) dst[b * 32 + j] = static_cast<float>(src[b].qs[j]) * d;
    }
  } else if constexpr (std::is_same_v<W, Q4_0>) {
    for (size_t b = 0; b < n / 32; ++b) {
      const float d = fp16_to_fp32(src[b].d);
      for (int j = 0; j < 16; ++j) {
        dst[b * 32 + j] = static_cast<float>((src[b].qs[j] & 0x0f) - 8) * d;
        dst[b * 32 + j + 16] = static_cast<float>((src[b].qs[j] >> 4) - 8) * d;
      }
    }
  }
}

/// Bytes of one row of `n` values of weight dtype W.
template <WeightDtype W>
constexpr size_t row_bytes(size_t n) {
  return n / W::block_size * W::block_bytes;
}

}  // namespace apr
