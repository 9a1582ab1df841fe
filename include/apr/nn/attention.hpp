/// @file attention.hpp
/// @brief Scaled dot-product attention of query rows against a KV cache layer: multi-head or
/// grouped-query, causal, with an optional sliding window.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "apr/core/aligned_buffer.hpp"
#include "apr/core/half.hpp"
#include "apr/core/thread_pool.hpp"
#include "apr/nn/kv_cache.hpp"
#include "apr/simd/dot.hpp"
#include "apr/simd/elementwise.hpp"
#include "apr/simd/softmax.hpp"

namespace apr::nn {

/// Head geometry and masking of one attention layer.
struct AttentionShape {
  size_t n_heads = 0;     ///< query heads
  size_t n_kv_heads = 0;  ///< key/value heads (divides n_heads; equal for plain multi-head)
  size_t head_dim = 0;    ///< values per head
  size_t window = 0;      ///< query at i sees keys j with i − window < j ≤ i; 0 = no window
};

/// Per-thread scratch for attention scores: `threads` rows of `max_keys` floats.
class AttentionScratch {
 public:
  /// Room for `threads` threads attending over at most `max_keys` keys.
  AttentionScratch(size_t threads, size_t max_keys) : max_keys_(max_keys), scores_(threads * max_keys) {}
  /// Score row of thread `index`.
  float* scores(size_t index) noexcept { return scores_.data() + index * max_keys_; }
  /// Most keys one query may attend to.
  [[nodiscard]] size_t max_keys() const noexcept { return max_keys_; }

 private:
  size_t max_keys_;
  AlignedArray<float> scores_;
};

namespace detail {

/// out += weight · value for one head's value row stored as f32 or f16.
inline void accumulate_value(const std::byte* value, DType dtype, float weight, float* out, size_t head_dim) {
  if (dtype == DType::f16) {
    float row[1024];
    fp16_to_fp32_row(reinterpret_cast<const uint16_t*>(value), row, head_dim);
    simd::add_scaled(row, weight, out, head_dim);
  } else {
    simd::add_scaled(reinterpret_cast<const float*>(value), weight, out, head_dim);
  }
}

/// q · key for one head's key row stored as f32 or f16.
inline float key_dot(const std::byte* key, DType dtype, const float* q, size_t head_dim) {
  if (dtype == DType::f16) return simd::dot<F16>(reinterpret_cast<const uint16_t*>(key), q, head_dim);
  return simd::dot<F32>(reinterpret_cast<const float*>(key), q, head_dim);
}

}  // namespace detail

/// For query rows t < n at positions first_position + t, writes softmax(q·Kᵀ/√d)·V per head
/// into out[t] (layout [n][n_heads × head_dim]); keys and values come from `cache`, which must
/// already hold every position the queries may see. Query head h uses kv head h / (n_heads / n_kv_heads).
inline void attend(const float* q, size_t n, size_t first_position, const KvCacheLayer& cache,
                   const AttentionShape& shape, float* out, AttentionScratch& scratch, ThreadPool& pool) {
  const size_t q_width = shape.n_heads * shape.head_dim;
  const size_t group = shape.n_heads / shape.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
  const size_t kv_bytes_per_head = shape.head_dim * cache.element_bytes();
  pool.run([&](size_t thread, size_t threads) {
    float* scores = scratch.scores(thread);
    const RowRange range = split_rows(n * shape.n_heads, thread, threads);
    for (size_t item = range.begin; item < range.end; ++item) {
      const size_t t = item / shape.n_heads;
      const size_t head = item % shape.n_heads;
      const size_t kv_head = head / group;
      const size_t position = first_position + t;
      const size_t first_key = shape.window != 0 && position + 1 > shape.window ? position + 1 - shape.window : 0;
      const size_t keys = position + 1 - first_key;
      const float* query = q + t * q_width + head * shape.head_dim;
      for (size_t j = 0; j < keys; ++j) {
        const std::byte* key = cache.key(first_key + j) + kv_head * kv_bytes_per_head;
        scores[j] = detail::key_dot(key, cache.dtype(), query, shape.head_dim) * scale;
      }
      simd::softmax(scores, keys);
      float* result = out + t * q_width + head * shape.head_dim;
      std::fill(result, result + shape.head_dim, 0.0f);
      for (size_t j = 0; j < keys; ++j) {
        const std::byte* value = cache.value(first_key + j) + kv_head * kv_bytes_per_head;
        detail::accumulate_value(value, cache.dtype(), scores[j], result, shape.head_dim);
      }
    }
  });
}

}  // namespace apr::nn
