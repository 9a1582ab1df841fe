/// @file full_attention.hpp
/// @brief Attention without a mask: every query sees every key (an encoder's self-attention, a
/// decoder's cross-attention to the encoder output), computed head by head as two matrix
/// products so long inputs run at gemm speed.
///
/// For head h: S = (Q_h / √d) · K_hᵀ, P = softmax over each row of S, O_h = P · V_h. Keys are kept
/// per head as [length][head_dim] and values transposed as [head_dim][length], the layouts in
/// which both products are row-major weight matrices for simd::gemm. Work items are (head,
/// block of queries), split contiguously between threads, so results do not depend on the
/// thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>

#include "apr/core/aligned_buffer.hpp"
#include "apr/core/dtype.hpp"
#include "apr/core/half.hpp"
#include "apr/core/thread_pool.hpp"
#include "apr/simd/gemm.hpp"
#include "apr/simd/softmax.hpp"

namespace apr::nn {

/// Keys and values of one attention input, laid out per head for the two products, stored as
/// f32 or f16 (half the bytes a decoder step reads from the encoder output).
class FullAttentionKv {
 public:
  /// An empty set of keys and values.
  FullAttentionKv() = default;
  /// Room for `max_length` positions of `n_heads` heads of `head_dim` values, stored as `storage` (f32 or f16).
  FullAttentionKv(size_t n_heads, size_t head_dim, size_t max_length, DType storage = DType::f32)
      : n_heads_(n_heads), head_dim_(head_dim), max_length_(max_length), storage_(storage == DType::f16 ? DType::f16 : DType::f32),
        keys_(n_heads * head_dim * max_length * value_bytes()), values_t_(n_heads * head_dim * max_length * value_bytes()) {}

  /// Takes `length` rows of keys and values, each [n_heads × head_dim] (the projections' output layout).
  void assign(const float* keys, const float* values, size_t length, ThreadPool& pool) {
    length_ = std::min(length, max_length_);
    const size_t width = n_heads_ * head_dim_;
    pool.parallel_for(n_heads_, [&](size_t begin, size_t end) {
      for (size_t h = begin; h < end; ++h) {
        for (size_t j = 0; j < length_; ++j) {
          const float* key_row = keys + j * width + h * head_dim_;
          const float* value_row = values + j * width + h * head_dim_;
          if (storage_ == DType::f16) {
            fp32_to_fp16_row(key_row, keys_of<F16>(h) + j * head_dim_, head_dim_);
            uint16_t* v = values_of<F16>(h);
            for (size_t d = 0; d < head_dim_; ++d) v[d * length_ + j] = fp32_to_fp16(value_row[d]);
          } else {
            std::copy(key_row, key_row + head_dim_, keys_of<F32>(h) + j * head_dim_);
            float* v = values_of<F32>(h);
            for (size_t d = 0; d < head_dim_; ++d) v[d * length_ + j] = value_row[d];
          }
        }
      }
    });
  }

  /// Keys of head `h` as blocks of `S` (the storage dtype): [length][head_dim].
  template <WeightDtype S>
  [[nodiscard]] const typename S::Block* keys(size_t h) const noexcept {
    return reinterpret_cast<const typename S::Block*>(keys_.data()) + h * head_dim_ * max_length_;
  }
  /// Values of head `h` as blocks of `S`, transposed: [head_dim][length].
  template <WeightDtype S>
  [[nodiscard]] const typename S::Block* values_transposed(size_t h) const noexcept {
    return reinterpret_cast<const typename S::Block*>(values_t_.data()) + h * head_dim_ * max_length_;
  }
  /// Storage dtype: f32 or f16.
  [[nodiscard]] DType storage() const noexcept { return storage_; }
  /// Positions held.
  [[nodiscard]] size_t length() const noexcept { return length_; }
  /// Heads.
  [[nodiscard]] size_t n_heads() const noexcept { return n_heads_; }
  /// Values per head.
  [[nodiscard]] size_t head_dim() const noexcept { return head_dim_; }

 private:
  [[nodiscard]] size_t value_bytes() const noexcept { return storage_ == DType::f16 ? 2 : 4; }
  template <WeightDtype S>
  typename S::Block* keys_of(size_t h) noexcept {
    return reinterpret_cast<typename S::Block*>(keys_.data()) + h * head_dim_ * max_length_;
  }
  template <WeightDtype S>
  typename S::Block* values_of(size_t h) noexcept {
    return reinterpret_cast<typename S::Block*>(values_t_.data()) + h * head_dim_ * max_length_;
  }

  size_t n_heads_ = 0;
  size_t head_dim_ = 0;
  size_t max_length_ = 0;
  size_t length_ = 0;
  DType storage_ = DType::f32;
  AlignedArray<std::byte> keys_;
  AlignedArray<std::byte> values_t_;
};

/// Per-thread scratch for attend_full: a block of queries, their scores and their outputs.
class FullAttentionScratch {
 public:
  /// Queries scored together per work item.
  static constexpr size_t kQueryBlock = 64;
  /// An empty scratch.
  FullAttentionScratch() = default;
  /// Room for `threads` threads, keys up to `max_length`, heads of `head_dim`.
  FullAttentionScratch(size_t threads, size_t max_length, size_t head_dim)
      : stride_(kQueryBlock * (max_length + 2 * head_dim)), max_length_(max_length), buffer_(threads * stride_) {}
  /// Scores of thread `thread`: [kQueryBlock][max_length].
  float* scores(size_t thread) noexcept { return buffer_.data() + thread * stride_; }
  /// Gathered queries of thread `thread`: [kQueryBlock][head_dim].
  float* queries(size_t thread) noexcept { return scores(thread) + kQueryBlock * max_length_; }
  /// Outputs of thread `thread`: [kQueryBlock][head_dim].
  float* outputs(size_t thread, size_t head_dim) noexcept { return scores(thread) + kQueryBlock * (max_length_ + head_dim); }
  /// Threads it was sized for.
  [[nodiscard]] size_t threads() const noexcept { return stride_ == 0 ? 0 : buffer_.size() / stride_; }
  /// Longest key sequence it was sized for.
  [[nodiscard]] size_t max_length() const noexcept { return max_length_; }

 private:
  size_t stride_ = 0;
  size_t max_length_ = 0;
  AlignedArray<float> buffer_;
};

/// out[t] = Σ_h softmax(q_t,h · K_hᵀ / √head_dim) · V_h for `n` query rows ([n][n_heads × head_dim]
/// in and out); when `weights` is given it receives the attention probabilities as
/// [n_heads][n][kv.length()].
inline void attend_full(const float* q, size_t n, const FullAttentionKv& kv, float* out, FullAttentionScratch& scratch,
                        ThreadPool& pool, float* weights = nullptr) {
  const size_t heads = kv.n_heads();
  const size_t head_dim = kv.head_dim();
  const size_t width = heads * head_dim;
  const size_t length = kv.length();
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const size_t blocks = (n + FullAttentionScratch::kQueryBlock - 1) / FullAttentionScratch::kQueryBlock;
  const size_t items = heads * blocks;
  pool.run([&](size_t thread, size_t threads) {
    const size_t first = items * thread / threads;
    const size_t last = items * (thread + 1) / threads;
    float* scores = scratch.scores(thread);
    float* queries = scratch.queries(thread);
    float* outputs = scratch.outputs(thread, head_dim);
    for (size_t item = first; item < last; ++item) {
      const size_t h = item / blocks;
      const size_t row0 = (item % blocks) * FullAttentionScratch::kQueryBlock;
      const size_t rows = std::min(FullAttentionScratch::kQueryBlock, n - row0);
      for (size_t r = 0; r < rows; ++r) {
        const float* source = q + (row0 + r) * width + h * head_dim;
        for (size_t d = 0; d < head_dim; ++d) queries[r * head_dim + d] = source[d] * scale;
      }
      // nested inside this job, the products run on this thread only
      if (kv.storage() == DType::f16) {
        simd::gemm<F16>(kv.keys<F16>(h), queries, scores, length, head_dim, rows, pool);
      } else {
        simd::gemm<F32>(kv.keys<F32>(h), queries, scores, length, head_dim, rows, pool);
      }
      for (size_t r = 0; r < rows; ++r) {
        simd::softmax(scores + r * length, length);
        if (weights != nullptr) std::copy_n(scores + r * length, length, weights + (h * n + row0 + r) * length);
      }
      if (kv.storage() == DType::f16) {
        simd::gemm<F16>(kv.values_transposed<F16>(h), scores, outputs, head_dim, length, rows, pool);
      } else {
        simd::gemm<F32>(kv.values_transposed<F32>(h), scores, outputs, head_dim, length, rows, pool);
      }
      for (size_t r = 0; r < rows; ++r) std::copy_n(outputs + r * head_dim, head_dim, out + (row0 + r) * width + h * head_dim);
    }
  });
}

}  // namespace apr::nn
