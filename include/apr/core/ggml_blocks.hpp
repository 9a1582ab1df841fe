/// @file ggml_blocks.hpp
/// @brief ggml's other block layouts, read and dequantized (apr computes with Q8_0/Q4_0 and
/// converts these at load): Q4_1, Q5_0, Q5_1 (32 values per block) and the 256-value
/// super-blocks Q4_K and Q6_K. Layouts as ggml-common.h draws them:
/// - Q4_1: f16 d, f16 m, 16 bytes; byte j holds element j (low nibble) and j+16 (high); x = q·d + m.
/// - Q5_0: f16 d, 4 bytes qh (bit j = fifth bit of element j), 16 bytes as Q4_0; x = (q − 16)·d.
/// - Q5_1: f16 d, f16 m, qh, 16 bytes; x = q·d + m.
/// - Q4_K: f16 d, f16 dmin, 12 bytes of eight 6-bit scales and mins, 128 bytes of nibbles; each
///   64 values take 32 bytes, low nibbles for the first 32, high for the next.
/// - Q6_K: 128 bytes low nibbles, 64 bytes high 2-bit pairs, 16 int8 scales, f16 d; x = d·s·(q − 32).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "apr/core/half.hpp"

namespace apr {

/// ggml Q4_1 block: 32 values.
struct BlockQ4_1 {
  uint16_t d;      ///< scale, binary16
  uint16_t m;      ///< offset, binary16
  uint8_t qs[16];  ///< nibbles: element j low, element j+16 high
};
static_assert(sizeof(BlockQ4_1) == 20);

/// ggml Q5_0 block: 32 values.
struct BlockQ5_0 {
  uint16_t d;      ///< scale, binary16
  uint8_t qh[4];   ///< fifth bits, bit j for element j
  uint8_t qs[16];  ///< low four bits, as Q4_0
};
static_assert(sizeof(BlockQ5_0) == 22);

/// ggml Q5_1 block: 32 values.
struct BlockQ5_1 {
  uint16_t d;      ///< scale, binary16
  uint16_t m;      ///< offset, binary16
  uint8_t qh[4];   ///< fifth bits
  uint8_t qs[16];  ///< low four bits
};
static_assert(sizeof(BlockQ5_1) == 24);

/// ggml Q4_K super-block: 256 values in 8 groups of 32 with 6-bit scales and mins.
struct BlockQ4_K {
  uint16_t d;          ///< scale of the scales, binary16
  uint16_t dmin;       ///< scale of the mins, binary16
  uint8_t scales[12];  ///< eight 6-bit scales and eight 6-bit mins, packed
  uint8_t qs[128];     ///< nibbles
};
static_assert(sizeof(BlockQ4_K) == 144);

/// ggml Q6_K super-block: 256 values in 16 groups of 16 with int8 scales.
struct BlockQ6_K {
  uint8_t ql[128];    ///< low four bits
  uint8_t qh[64];     ///< high two bits, four values per byte
  int8_t scales[16];  ///< per group of 16
  uint16_t d;         ///< super-block scale, binary16
};
static_assert(sizeof(BlockQ6_K) == 210);

/// Dequantizes `blocks` Q4_1 blocks into 32 × blocks floats.
inline void dequantize_q4_1(const BlockQ4_1* x, float* y, size_t blocks) {
  for (size_t i = 0; i < blocks; ++i, y += 32) {
    const float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
    for (size_t j = 0; j < 16; ++j) {
      y[j] = static_cast<float>(x[i].qs[j] & 0x0F) * d + m;
      y[j + 16] = static_cast<float>(x[i].qs[j] >> 4) * d + m;
    }
  }
}

/// The fifth bits of a Q5 block's elements j and j+16.
inline void q5_high_bits(const uint8_t* qh, size_t j, uint8_t& low_half, uint8_t& high_half) {
  uint32_t bits = 0;
  std::memcpy(&bits, qh, 4);
  low_half = static_cast<uint8_t>(((bits >> j) << 4) & 0x10);
  high_half = static_cast<uint8_t>((bits >> (j + 12)) & 0x10);
}

/// Dequantizes `blocks` Q5_0 blocks into 32 × blocks floats.
inline void dequantize_q5_0(const BlockQ5_0* x, float* y, size_t blocks) {
  for (size_t i = 0; i < blocks; ++i, y += 32) {
    const float d = fp16_to_fp32(x[i].d);
    for (size_t j = 0; j < 16; ++j) {
      uint8_t low = 0, high = 0;
      q5_high_bits(x[i].qh, j, low, high);
      y[j] = static_cast<float>(((x[i].qs[j] & 0x0F) | low) - 16) * d;
      y[j + 16] = static_cast<float>(((x[i].qs[j] >> 4) | high) - 16) * d;
    }
  }
}

/// Dequantizes `blocks` Q5_1 blocks into 32 × blocks floats.
inline void dequantize_q5_1(const BlockQ5_1* x, float* y, size_t blocks) {
  for (size_t i = 0; i < blocks; ++i, y += 32) {
    const float d = fp16_to_fp32(x[i].d), m = fp16_to_fp32(x[i].m);
    for (size_t j = 0; j < 16; ++j) {
      uint8_t low = 0, high = 0;
      q5_high_bits(x[i].qh, j, low, high);
      y[j] = static_cast<float>((x[i].qs[j] & 0x0F) | low) * d + m;
      y[j + 16] = static_cast<float>((x[i].qs[j] >> 4) | high) * d + m;
    }
  }
}

/// Scale and min of group `j` (0..7) of a Q4_K block's packed 6-bit `scales`.
inline void q4_k_scale_min(size_t j, const uint8_t* scales, uint8_t& scale, uint8_t& min) {
  if (j < 4) {
    scale = scales[j] & 63;
    min = scales[j + 4] & 63;
  } else {
    scale = static_cast<uint8_t>((scales[j + 4] & 0x0F) | ((scales[j - 4] >> 6) << 4));
    min = static_cast<uint8_t>((scales[j + 4] >> 4) | ((scales[j] >> 6) << 4));
  }
}

/// Dequantizes `blocks` Q4_K super-blocks into 256 × blocks floats.
inline void dequantize_q4_k(const BlockQ4_K* x, float* y, size_t blocks) {
  for (size_t i = 0; i < blocks; ++i) {
    const float d = fp16_to_fp32(x[i].d), dmin = fp16_to_fp32(x[i].dmin);
    const uint8_t* q = x[i].qs;
    for (size_t group = 0; group < 8; group += 2, q += 32) {
      uint8_t scale = 0, min = 0;
      q4_k_scale_min(group, x[i].scales, scale, min);
      const float d1 = d * scale, m1 = dmin * min;
      q4_k_scale_min(group + 1, x[i].scales, scale, min);
      const float d2 = d * scale, m2 = dmin * min;
      for (size_t l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0x0F) - m1;
      for (size_t l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
    }
  }
}

/// Dequantizes `blocks` Q6_K super-blocks into 256 × blocks floats.
inline void dequantize_q6_k(const BlockQ6_K* x, float* y, size_t blocks) {
  for (size_t i = 0; i < blocks; ++i) {
    const float d = fp16_to_fp32(x[i].d);
    const uint8_t* ql = x[i].ql;
    const uint8_t* qh = x[i].qh;
    const int8_t* sc = x[i].scales;
    for (size_t half = 0; half < 2; ++half, y += 128, ql += 64, qh += 32, sc += 8) {
      for (size_t l = 0; l < 32; ++l) {
        const size_t is = l / 16;
        const int q1 = static_cast<int8_t>((ql[l] & 0x0F) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = static_cast<int8_t>((ql[l + 32] & 0x0F) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = static_cast<int8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = static_cast<int8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * static_cast<float>(sc[is]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
    }
  }
}

}  // namespace apr
