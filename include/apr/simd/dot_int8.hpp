/// @file dot_int8.hpp
/// @brief Integer dot products of Q8_0 / Q4_0 weight rows with int8-quantized activations.
///
/// Per block b: Σ w·x ≈ d_w(b)·d_x(b)·Σ q_w·q_x. The AVX2 kernel takes a block per 256-bit
/// register with vpmaddubsw (unsigned × signed bytes: Q4_0's nibbles as stored, Q8_0 as |w|
/// times x with w's sign). The AVX-512 VNNI kernel handles two blocks
/// per 512-bit register with vpdpbusd (unsigned × signed bytes), so the signed weight values
/// are offset to unsigned (Q4_0 nibbles as stored, Q8_0 via +128) and the offset times Σ q_x
/// is subtracted once per row from a second accumulator.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "apr/core/dtype.hpp"
#include "apr/core/half.hpp"
#include "apr/simd/arch.hpp"
#include "apr/simd/quantized_activations.hpp"

namespace apr::simd {

/// Weight dtypes with an integer dot product against QuantizedActivations.
template <class W>
concept Int8DotWeight = std::is_same_v<W, Q8_0> || std::is_same_v<W, Q4_0>;

/// True when Arch's int8 kernels are the 256-bit vpmaddubsw ones: AVX2, or AVX-512 in a build without VNNI.
template <class Arch>
inline constexpr bool uses_avx2_int8_v = (is_avx2_v<Arch> || is_avx512_v<Arch>) && !(kHasAvx512Vnni && is_avx512_v<Arch>);

/// Signed integer value `j` (0..31) of a weight block.
template <Int8DotWeight W>
inline int weight_value(const typename W::Block& block, size_t j) {
  if constexpr (std::is_same_v<W, Q8_0>) return block.qs[j];
  else return (j < 16 ? (block.qs[j] & 0x0f) : (block.qs[j - 16] >> 4)) - 8;
}

/// Reference twin of dot_int8: exact integer sums per block, scaled and added in order.
template <Int8DotWeight W>
float dot_int8_reference(const typename W::Block* row, const QuantizedActivations& x, size_t x_row) {
  const int8_t* q = x.values(x_row);
  const float* scales = x.scales(x_row);
  float sum = 0.0f;
  for (size_t b = 0; b < x.n() / 32; ++b) {
    int32_t block_sum = 0;
    for (size_t j = 0; j < 32; ++j) block_sum += weight_value<W>(row[b], j) * q[b * 32 + j];
    sum += fp16_to_fp32(row[b].d) * scales[b] * static_cast<float>(block_sum);
  }
  return sum;
}

#if defined(__SSE4_1__)
namespace detail {

/// Σ w·x of one weight block with the block's int16 activations (QuantizedActivations::values_int16
/// order), exact, in four int32 lanes. Q4_0 nibbles stay unsigned (0..15; the caller subtracts
/// 8·Σx): masks and shifts of 16-bit lanes give them in that order, and pmaddwd (one SIMD128
/// instruction) multiplies and adds pairs.
template <Int8DotWeight W>
inline __m128i block_sums(const typename W::Block& block, const int16_t* x) {
  __m128i w0, w1, w2, w3;
  if constexpr (std::is_same_v<W, Q4_0>) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block.qs));
    const __m128i nibble = _mm_set1_epi16(0x0f);
    w0 = _mm_and_si128(packed, nibble);
    w1 = _mm_and_si128(_mm_srli_epi16(packed, 8), nibble);
    w2 = _mm_and_si128(_mm_srli_epi16(packed, 4), nibble);
    w3 = _mm_srli_epi16(packed, 12);
  } else {
    const __m128i low = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block.qs));
    const __m128i high = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block.qs + 16));
    w0 = _mm_srai_epi16(_mm_slli_epi16(low, 8), 8);
    w1 = _mm_srai_epi16(low, 8);
    w2 = _mm_srai_epi16(_mm_slli_epi16(high, 8), 8);
    w3 = _mm_srai_epi16(high, 8);
  }
  const auto* xv = reinterpret_cast<const __m128i*>(x);
  return _mm_add_epi32(_mm_add_epi32(_mm_madd_epi16(w0, _mm_load_si128(xv)), _mm_madd_epi16(w1, _mm_load_si128(xv + 1))),
                       _mm_add_epi32(_mm_madd_epi16(w2, _mm_load_si128(xv + 2)), _mm_madd_epi16(w3, _mm_load_si128(xv + 3))));
}

/// Four f16 values (the low 16 bits of each lane) as floats, exactly: the exponent is rebased by a
/// multiply (which also normalises subnormals) and infinities and NaNs get the float exponent.
inline __m128 f16_to_f32(__m128i half) {
  const __m128i magnitude = _mm_and_si128(half, _mm_set1_epi32(0x7fff));
  const __m128i sign = _mm_slli_epi32(_mm_xor_si128(half, magnitude), 16);
  const __m128 rebased = _mm_mul_ps(_mm_castsi128_ps(_mm_slli_epi32(magnitude, 13)), _mm_castsi128_ps(_mm_set1_epi32((254 - 15) << 23)));
  const __m128i inf_or_nan = _mm_cmpgt_epi32(magnitude, _mm_set1_epi32(0x7bff));
  const __m128 special = _mm_and_ps(_mm_castsi128_ps(inf_or_nan), _mm_castsi128_ps(_mm_set1_epi32(255 << 23)));
  return _mm_or_ps(rebased, _mm_or_ps(_mm_castsi128_ps(sign), special));
}

/// The f16 scales of block `b` of kRows (at most 4) weight rows `row_blocks` apart, one per lane.
template <Int8DotWeight W, size_t kRows>
inline __m128 row_scales(const typename W::Block* rows, size_t row_blocks, size_t b) {
  auto d = [&](size_t i) { return i < kRows ? static_cast<int>(rows[i * row_blocks + b].d) : 0; };
  return f16_to_f32(_mm_setr_epi32(d(0), d(1), d(2), d(3)));
}

/// a·b + c, fused where the target has FMA: written out, so that no instantiation rounds
/// differently from another by how the compiler chose to contract a multiply and an add.
inline __m128 multiply_add(__m128 a, __m128 b, __m128 c) {
#if defined(__FMA__)
  return _mm_fmadd_ps(a, b, c);
#else
  return _mm_add_ps(_mm_mul_ps(a, b), c);
#endif
}

/// Lane `i` of `v` in every lane.
template <size_t i>
inline __m128 broadcast_lane(__m128 v) {
  return _mm_shuffle_ps(v, v, _MM_SHUFFLE(i, i, i, i));
}

/// out[i] = Σ row_i·x over x.n() values for kRows (at most 4) weight rows `row_blocks` blocks
/// apart: one accumulator per row, blocks in order, the rows read side by side so that kRows
/// weight streams are in flight at once (WebAssembly has no prefetch instruction; interleaved
/// streams are how its loads overlap: 4 rows stream a 76 MB matrix 2.2x faster than 1 on the
/// Xeon VM), and the rows' scales of a block converted and scaled in one vector.
template <Int8DotWeight W, size_t kRows>
  requires(kRows >= 1 && kRows <= 4)
inline void dot_int8_128(const typename W::Block* rows, size_t row_blocks, const QuantizedActivations& x, size_t x_row, float* out) {
  const int16_t* q = x.values_int16(x_row);
  const float* x_scales = x.scales(x_row);
  const int32_t* x_sums = x.sums(x_row);
  __m128 acc[kRows];
  for (size_t i = 0; i < kRows; ++i) acc[i] = _mm_setzero_ps();
  __m128 offset = _mm_setzero_ps();  // per row, Σ scale·Σx over the blocks: Q4_0's nibbles are 8 above their values
  for (size_t b = 0; b < row_blocks; ++b) {
    const __m128 scales = _mm_mul_ps(row_scales<W, kRows>(rows, row_blocks, b), _mm_set1_ps(x_scales[b]));
    if constexpr (std::is_same_v<W, Q4_0>) offset = multiply_add(scales, _mm_set1_ps(static_cast<float>(x_sums[b])), offset);
    [&]<size_t... i>(std::index_sequence<i...>) {
      ((acc[i] = multiply_add(_mm_cvtepi32_ps(block_sums<W>(rows[i * row_blocks + b], q + b * 32)), broadcast_lane<i>(scales), acc[i])), ...);
    }(std::make_index_sequence<kRows>());
  }
  alignas(16) float offsets[4];
  _mm_store_ps(offsets, offset);
  for (size_t i = 0; i < kRows; ++i) {
    alignas(16) float lanes[4];
    _mm_store_ps(lanes, acc[i]);
    out[i] = std::fma(-8.0f, offsets[i], (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]));
  }
}

}  // namespace detail
#endif

#if defined(__AVX2__) && defined(__F16C__)
namespace detail {

/// One weight block's 32 values as signed bytes in element order (Q4_0's nibbles minus 8).
template <Int8DotWeight W>
inline __m256i signed_block(const typename W::Block& block) {
  if constexpr (std::is_same_v<W, Q4_0>) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block.qs));
    const __m256i nibbles = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0f));
    return _mm256_sub_epi8(nibbles, _mm256_set1_epi8(8));
  } else {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.qs));
  }
}

/// Σ w·x over each group of four values (lane l: values 4l..4l+3), exact. vpmaddubsw multiplies
/// unsigned by signed bytes, so |w| meets x with w's sign; the int16 pair sums cannot saturate,
/// as |w| ≤ 128 and |x| ≤ 127 (QuantizedActivations).
inline __m256i group_sums(__m256i weights, __m256i weight_magnitudes, __m256i activations) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(weight_magnitudes, _mm256_sign_epi8(activations, weights)), _mm256_set1_epi16(1));
}

/// One weight block as dot_int8_avx2 multiplies it: Q4_0's nibbles unsigned as stored (0..15),
/// Q8_0's values signed.
template <Int8DotWeight W>
inline __m256i weight_bytes(const typename W::Block& block) {
  if constexpr (std::is_same_v<W, Q4_0>) {
    const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block.qs));
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0f));
  } else {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block.qs));
  }
}

/// Σ w·x of a weight_bytes block and 32 activations per group of four values, exact: Q4_0's
/// unsigned nibbles go straight into vpmaddubsw and `q4_offsets` (x.lane_offsets<8>) takes the
/// 8·Σx back out; Q8_0 goes through group_sums.
template <Int8DotWeight W>
inline __m256i block_group_sums(__m256i weights, const int8_t* activations, const int32_t* q4_offsets) {
  const __m256i x = _mm256_load_si256(reinterpret_cast<const __m256i*>(activations));
  if constexpr (std::is_same_v<W, Q4_0>) {
    const __m256i sums = _mm256_madd_epi16(_mm256_maddubs_epi16(weights, x), _mm256_set1_epi16(1));
    return _mm256_add_epi32(sums, _mm256_load_si256(reinterpret_cast<const __m256i*>(q4_offsets)));
  } else {
    return group_sums(weights, _mm256_sign_epi8(weights, weights), x);
  }
}

/// The f16 scales of four consecutive weight blocks as floats in lanes 0..3 (one conversion).
template <Int8DotWeight W>
inline __m128 quad_weight_scales(const typename W::Block* blocks) {
  const uint64_t bits = static_cast<uint64_t>(blocks[0].d) | (static_cast<uint64_t>(blocks[1].d) << 16) |
                        (static_cast<uint64_t>(blocks[2].d) << 32) | (static_cast<uint64_t>(blocks[3].d) << 48);
  return _mm_cvtph_ps(_mm_cvtsi64_si128(static_cast<long long>(bits)));
}

/// Prefetches the weight bytes of the four blocks kInt8PrefetchBytes past `blocks`.
template <Int8DotWeight W>
inline void prefetch_quad(const typename W::Block* blocks) {
  const char* ahead = reinterpret_cast<const char*>(blocks) + kInt8PrefetchBytes;
  for (size_t line = 0; line < 4 * sizeof(typename W::Block); line += 64) _mm_prefetch(ahead + line, _MM_HINT_T0);
}

/// Sum of the 8 lanes of `v`.
inline float reduce_add(__m256 v) {
  const __m128 four = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 two = _mm_add_ps(four, _mm_movehl_ps(four, four));
  return _mm_cvtss_f32(_mm_add_ss(two, _mm_movehdup_ps(two)));
}

/// out[i] = Σ row·x[x_row0 + i] for i < kRows on 256-bit vectors: each weight block is unpacked
/// once for all kRows activation rows, four blocks' scales are converted and multiplied at once,
/// and the even and the odd blocks go to two accumulators per row, the same order for every
/// kRows, so any out[i] equals the kRows = 1 result exactly.
template <Int8DotWeight W, size_t kRows>
inline void dot_int8_avx2(const typename W::Block* row, const QuantizedActivations& x, size_t x_row0, float* out) {
  const size_t blocks = x.n() / 32;
  __m256 acc[kRows][2];
  for (size_t i = 0; i < kRows; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  // Adds block b's sums times scale(i) (the product of the two scales, in every lane) to row i's chain.
  auto step = [&](size_t b, size_t chain, auto scale) {
    const __m256i weights = weight_bytes<W>(row[b]);
    for (size_t i = 0; i < kRows; ++i) {
      const size_t r = x_row0 + i;
      const __m256i sums = block_group_sums<W>(weights, x.values(r) + b * 32, x.lane_offsets<8>(r) + b * 8);
      acc[i][chain] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), scale(i), acc[i][chain]);
    }
  };
  size_t b = 0;
  for (; b + 4 <= blocks; b += 4) {
    prefetch_quad<W>(row + b);
    const __m128 weight_scales = quad_weight_scales<W>(row + b);
    __m128 scales[kRows];
    for (size_t i = 0; i < kRows; ++i) scales[i] = _mm_mul_ps(weight_scales, _mm_loadu_ps(x.scales(x_row0 + i) + b));
    [&]<int... j>(std::integer_sequence<int, j...>) {
      (step(b + j, j % 2, [&](size_t i) { return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(scales[i]), _mm256_set1_epi32(j)); }), ...);
    }(std::make_integer_sequence<int, 4>());
  }
  for (; b < blocks; ++b) {
    const float weight_scale = fp16_to_fp32(row[b].d);
    step(b, b % 2, [&](size_t i) { return _mm256_set1_ps(weight_scale * x.scales(x_row0 + i)[b]); });
  }
  for (size_t i = 0; i < kRows; ++i) out[i] = reduce_add(_mm256_add_ps(acc[i][0], acc[i][1]));
}

}  // namespace detail
#endif

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
namespace detail {

/// 64 unsigned bytes of two consecutive weight blocks, in element order, offset to be non-negative.
template <Int8DotWeight W>
inline __m512i unsigned_pair(const typename W::Block* blocks) {
  if constexpr (std::is_same_v<W, Q4_0>) {
    const __m256i packed = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks[0].qs))),
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(blocks[1].qs)), 1);
    const __m512i doubled = _mm512_permutexvar_epi64(_mm512_setr_epi64(0, 1, 0, 1, 2, 3, 2, 3), _mm512_castsi256_si512(packed));
    const __m512i shifted = _mm512_srlv_epi64(doubled, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4));
    return _mm512_and_si512(shifted, _mm512_set1_epi8(0x0f));
  } else {
    const __m512i values = _mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blocks[0].qs))),
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blocks[1].qs)), 1);
    return _mm512_xor_si512(values, _mm512_set1_epi8(static_cast<char>(0x80)));
  }
}

/// The two blocks' f16 scales as 16 float lanes (8 copies each).
template <Int8DotWeight W>
inline __m512 pair_weight_scales(const typename W::Block* blocks) {
  const __m128i bits = _mm_cvtsi32_si128(static_cast<int>(blocks[0].d | (static_cast<uint32_t>(blocks[1].d) << 16)));
  const __m128 two = _mm_cvtph_ps(bits);
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1), _mm512_castps128_ps512(two));
}

/// Lanes kFirst and kFirst + 1 of `four` as a pair's 16 float lanes (8 copies each).
template <int kFirst>
inline __m512 spread_pair(__m128 four) {
  return _mm512_permutexvar_ps(_mm512_setr_epi32(kFirst, kFirst, kFirst, kFirst, kFirst, kFirst, kFirst, kFirst, kFirst + 1, kFirst + 1,
                                                 kFirst + 1, kFirst + 1, kFirst + 1, kFirst + 1, kFirst + 1, kFirst + 1),
                               _mm512_castps128_ps512(four));
}

/// Offset added to each weight value to make it unsigned.
template <Int8DotWeight W>
inline constexpr int kUnsignedOffset = std::is_same_v<W, Q4_0> ? 8 : 128;

/// acc + Σ w·x of the pair of blocks at `blocks`, per lane: vpdpbusd starts from the lanes'
/// −offset·Σx (x.lane_offsets), so its int32 sums are the exact signed ones, which are then
/// scaled by the weight scales `weight_scales` times the activations' `pair_scales`.
template <Int8DotWeight W>
inline __m512 accumulate_pair(__m512 acc, const typename W::Block* blocks, __m512 weight_scales, const int8_t* q, const int32_t* lane_offsets,
                              const float* pair_scales) {
  const __m512i sums = _mm512_dpbusd_epi32(_mm512_loadu_si512(lane_offsets), unsigned_pair<W>(blocks), _mm512_loadu_si512(q));
  return _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), _mm512_mul_ps(weight_scales, _mm512_loadu_ps(pair_scales)), acc);
}

/// Σ over blocks [b, blocks) of `row` in the scalar order: the tail after the pairs.
template <Int8DotWeight W>
inline float dot_int8_tail(const typename W::Block* row, size_t b, size_t blocks, const QuantizedActivations& x, size_t x_row) {
  float sum = 0.0f;
  for (; b < blocks; ++b) {
    int32_t block_sum = 0;
    for (size_t j = 0; j < 32; ++j) block_sum += weight_value<W>(row[b], j) * x.values(x_row)[b * 32 + j];
    sum += fp16_to_fp32(row[b].d) * x.scales(x_row)[b] * static_cast<float>(block_sum);
  }
  return sum;
}

}  // namespace detail
#endif

/// Σ row·x over x.n() values, for a Q8_0 or Q4_0 weight row and row `x_row` of x.
template <Int8DotWeight W, class Arch = DefaultArch>
float dot_int8(const typename W::Block* row, const QuantizedActivations& x, size_t x_row) {
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
  if constexpr (is_avx512_v<Arch>) {
    const size_t blocks = x.n() / 32;
    const int8_t* q = x.values(x_row);
    const int32_t* offsets = x.lane_offsets<detail::kUnsignedOffset<W>>(x_row);
    const float* pair_scales = x.pair_scales(x_row);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();  // two chains: the even and the odd pairs
    size_t b = 0;
    for (; b + 4 <= blocks; b += 4) {
      detail::prefetch_quad<W>(row + b);
      const __m128 four = detail::quad_weight_scales<W>(row + b);
      acc0 = detail::accumulate_pair<W>(acc0, row + b, detail::spread_pair<0>(four), q + b * 32, offsets + b * 8, pair_scales + b * 8);
      acc1 = detail::accumulate_pair<W>(acc1, row + b + 2, detail::spread_pair<2>(four), q + b * 32 + 64, offsets + b * 8 + 16,
                                        pair_scales + b * 8 + 16);
    }
    if (b + 2 <= blocks) {
      acc0 = detail::accumulate_pair<W>(acc0, row + b, detail::pair_weight_scales<W>(row + b), q + b * 32, offsets + b * 8, pair_scales + b * 8);
      b += 2;
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)) + detail::dot_int8_tail<W>(row, b, blocks, x, x_row);
  }
#endif
#if defined(__AVX2__) && defined(__F16C__)
  if constexpr (uses_avx2_int8_v<Arch>) {
    float out;
    detail::dot_int8_avx2<W, 1>(row, x, x_row, &out);
    return out;
  }
#endif
#if defined(__SSE4_1__)
  if constexpr (!std::is_same_v<Arch, Scalar>) {  // 128-bit: SSE4.1 up to AVX, and WebAssembly SIMD128
    float out;
    detail::dot_int8_128<W, 1>(row, x.n() / 32, x, x_row, &out);
    return out;
  }
#endif
  return dot_int8_reference<W>(row, x, x_row);
}

/// Weight rows gemv_int8 hands dot_int8_weight_rows at a time.
inline constexpr size_t kInt8WeightRows = 4;

/// out[i] = dot_int8(rows + i·row_blocks, x, x_row) for i < kRows, exactly; the 128-bit kernel
/// reads the rows side by side (several weight streams in flight), the others one after another
/// (they prefetch).
template <Int8DotWeight W, size_t kRows, class Arch = DefaultArch>
void dot_int8_weight_rows(const typename W::Block* rows, size_t row_blocks, const QuantizedActivations& x, size_t x_row, float* out) {
#if defined(__SSE4_1__)
  if constexpr (!std::is_same_v<Arch, Scalar> && !uses_avx2_int8_v<Arch> && !(kHasAvx512Vnni && is_avx512_v<Arch>)) {
    detail::dot_int8_128<W, kRows>(rows, row_blocks, x, x_row, out);
    return;
  }
#endif
  for (size_t i = 0; i < kRows; ++i) out[i] = dot_int8<W, Arch>(rows + i * row_blocks, x, x_row);
}

/// out[i] = Σ row·x[x_row0 + i] for i < kRows: the weight row is unpacked once for all kRows
/// activation rows (the sequences of one decode step), each sum taken in dot_int8's order, so
/// every out[i] equals dot_int8(row, x, x_row0 + i) exactly.
template <Int8DotWeight W, size_t kRows, class Arch = DefaultArch>
void dot_int8_rows(const typename W::Block* row, const QuantizedActivations& x, size_t x_row0, float* out) {
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
  if constexpr (is_avx512_v<Arch>) {
    const size_t blocks = x.n() / 32;
    constexpr int kOffset = detail::kUnsignedOffset<W>;
    __m512 acc0[kRows], acc1[kRows];
    for (size_t i = 0; i < kRows; ++i) acc0[i] = acc1[i] = _mm512_setzero_ps();
    size_t b = 0;
    for (; b + 4 <= blocks; b += 4) {  // dot_int8's steps, the weights unpacked once for every activation row
      detail::prefetch_quad<W>(row + b);
      const __m128 four = detail::quad_weight_scales<W>(row + b);
      const __m512i even = detail::unsigned_pair<W>(row + b), odd = detail::unsigned_pair<W>(row + b + 2);
      const __m512 even_scales = detail::spread_pair<0>(four), odd_scales = detail::spread_pair<2>(four);
      for (size_t i = 0; i < kRows; ++i) {
        const size_t r = x_row0 + i;
        const int8_t* q = x.values(r) + b * 32;
        const int32_t* offsets = x.lane_offsets<kOffset>(r) + b * 8;
        const float* pair_scales = x.pair_scales(r) + b * 8;
        acc0[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_loadu_si512(offsets), even, _mm512_loadu_si512(q))),
                                  _mm512_mul_ps(even_scales, _mm512_loadu_ps(pair_scales)), acc0[i]);
        acc1[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_loadu_si512(offsets + 16), odd, _mm512_loadu_si512(q + 64))),
                                  _mm512_mul_ps(odd_scales, _mm512_loadu_ps(pair_scales + 16)), acc1[i]);
      }
    }
    const bool pair_left = b + 2 <= blocks;
    for (size_t i = 0; i < kRows; ++i) {
      const size_t r = x_row0 + i;
      if (pair_left) {
        acc0[i] = detail::accumulate_pair<W>(acc0[i], row + b, detail::pair_weight_scales<W>(row + b), x.values(r) + b * 32,
                                             x.lane_offsets<kOffset>(r) + b * 8, x.pair_scales(r) + b * 8);
      }
      out[i] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[i], acc1[i])) + detail::dot_int8_tail<W>(row, pair_left ? b + 2 : b, blocks, x, r);
    }
    return;
  }
#endif
#if defined(__AVX2__) && defined(__F16C__)
  if constexpr (uses_avx2_int8_v<Arch>) {
    detail::dot_int8_avx2<W, kRows>(row, x, x_row0, out);
    return;
  }
#endif
  for (size_t i = 0; i < kRows; ++i) out[i] = dot_int8<W, Arch>(row, x, x_row0 + i);
}

}  // namespace apr::simd
