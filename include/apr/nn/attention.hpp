/// @file attention.hpp
/// @brief Scaled dot-product attention of query rows against a KV cache layer: multi-head or
/// grouped-query, causal, with an optional sliding window.
///
/// Work is split into (query row, kv head) items, each scoring the group of query heads that
/// share the kv head against every visible key at once: with keys stored transposed, 16 keys
/// cost head_dim fused multiply-adds per query head. Items are divided between threads by their
/// number of keys (causal rows grow), contiguously, so results do not depend on the thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "apr/core/aligned_buffer.hpp"
#include "apr/core/half.hpp"
#include "apr/core/thread_pool.hpp"
#include "apr/nn/kv_cache.hpp"
#include "apr/simd/arch.hpp"
#include "apr/simd/elementwise.hpp"
#include "apr/simd/load.hpp"
#include "apr/simd/softmax.hpp"

namespace apr::nn {

/// Most query heads that may share one kv head (n_heads / n_kv_heads); configs are checked against it.
inline constexpr size_t kMaxAttentionGroup = 64;

/// Head geometry and masking of one attention layer.
struct AttentionShape {
  size_t n_heads = 0;     ///< query heads
  size_t n_kv_heads = 0;  ///< key/value heads (divides n_heads; equal for plain multi-head)
  size_t head_dim = 0;    ///< values per head
  size_t window = 0;      ///< query at i sees keys j with i − window < j ≤ i; 0 = no window
};

/// Per-thread scratch: the scores of one group of query heads against at most `max_keys` keys,
/// and one value row converted from f16.
class AttentionScratch {
 public:
  /// Room for `threads` threads, `group` query heads per kv head, `max_keys` keys, heads of `head_dim`.
  AttentionScratch(size_t threads, size_t max_keys, size_t group, size_t head_dim)
      : max_keys_(max_keys), group_(group), stride_(group * max_keys + head_dim), buffer_(threads * stride_) {}
  /// Score row of query head `g` of the group, for thread `thread`.
  float* scores(size_t thread, size_t g) noexcept { return buffer_.data() + thread * stride_ + g * max_keys_; }
  /// A head_dim-long float row for thread `thread`.
  float* row(size_t thread) noexcept { return buffer_.data() + thread * stride_ + group_ * max_keys_; }
  /// Most keys one query may attend to.
  [[nodiscard]] size_t max_keys() const noexcept { return max_keys_; }
  /// Query heads per kv head it was sized for.
  [[nodiscard]] size_t group() const noexcept { return group_; }

 private:
  size_t max_keys_;
  size_t group_;
  size_t stride_;
  AlignedArray<float> buffer_;
};

namespace detail {

/// scores[g][j] = scale · q_g · key(slot0 + j) for j < count and G query heads, keys transposed
/// ([head_dim][capacity], f32 or f16 as W). Each step takes kKeyBatches vectors of keys, so that
/// G · kKeyBatches ≥ 4 fma chains run at once (one head alone, as in Voxtral's encoder, would
/// otherwise wait on each fma's latency); every score is summed over d in the same order.
template <size_t G, WeightDtype W, class Arch>
void score_keys(const float* const* queries, const typename W::Block* keys_t, size_t capacity, size_t slot0,
                size_t count, size_t head_dim, float scale, float* const* scores) {
  size_t j = 0;
  if constexpr (!std::is_same_v<Arch, simd::Scalar>) {
    using Batch = xsimd::batch<float, Arch>;
    constexpr size_t width = Batch::size;
    constexpr size_t kKeyBatches = G >= 4 ? 1 : 4 / G;
    auto step = [&]<size_t kBatches>(std::integral_constant<size_t, kBatches>) {
      Batch acc[G][kBatches];
      for (size_t g = 0; g < G; ++g) {
        for (size_t b = 0; b < kBatches; ++b) acc[g][b] = Batch(0.0f);
      }
      for (size_t d = 0; d < head_dim; ++d) {
        for (size_t b = 0; b < kBatches; ++b) {
          const Batch k = simd::load_as_float<W, Arch>(keys_t + d * capacity + slot0, j + b * width);
          for (size_t g = 0; g < G; ++g) acc[g][b] = xsimd::fma(Batch(queries[g][d]), k, acc[g][b]);
        }
      }
      for (size_t g = 0; g < G; ++g) {
        for (size_t b = 0; b < kBatches; ++b) (acc[g][b] * Batch(scale)).store_unaligned(scores[g] + j + b * width);
      }
      j += kBatches * width;
    };
    while (j + kKeyBatches * width <= count) step(std::integral_constant<size_t, kKeyBatches>{});
    while (j + width <= count) step(std::integral_constant<size_t, 1>{});
  }
  for (; j < count; ++j) {
    for (size_t g = 0; g < G; ++g) {
      float sum = 0.0f;
      for (size_t d = 0; d < head_dim; ++d) sum += queries[g][d] * simd::element_as_float<W>(keys_t + d * capacity + slot0, j);
      scores[g][j] = sum * scale;
    }
  }
}

/// Scores `group` query heads (in chunks of up to 4 register accumulators) over one run of slots.
template <WeightDtype W>
void score_group(const float* const* queries, size_t group, const typename W::Block* keys_t, size_t capacity, size_t slot0,
                 size_t count, size_t head_dim, float scale, float* const* scores) {
  using Arch = simd::DefaultArch;
  size_t g = 0;
  for (; g + 4 <= group; g += 4) score_keys<4, W, Arch>(queries + g, keys_t, capacity, slot0, count, head_dim, scale, scores + g);
  switch (group - g) {
    case 3: score_keys<3, W, Arch>(queries + g, keys_t, capacity, slot0, count, head_dim, scale, scores + g); break;
    case 2: score_keys<2, W, Arch>(queries + g, keys_t, capacity, slot0, count, head_dim, scale, scores + g); break;
    case 1: score_keys<1, W, Arch>(queries + g, keys_t, capacity, slot0, count, head_dim, scale, scores + g); break;
    default: break;
  }
}

/// First key position visible from `position` under `window` (0 = no window).
inline size_t first_visible(size_t position, size_t window) {
  return window != 0 && position + 1 > window ? position + 1 - window : 0;
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
  const size_t capacity = cache.capacity();
  const size_t items = n * shape.n_kv_heads;
  // cost of item i (row i / n_kv_heads): its visible keys plus a fixed per-item overhead; threads
  // take contiguous items with equal shares of the prefix sums
  std::vector<size_t> cost_before(items + 1, 0);
  for (size_t i = 0; i < items; ++i) {
    const size_t position = first_position + i / shape.n_kv_heads;
    cost_before[i + 1] = cost_before[i] + position + 1 - detail::first_visible(position, shape.window) + 8;
  }
  pool.run([&](size_t thread, size_t threads) {
    const size_t total = cost_before[items];
    const size_t first_item = static_cast<size_t>(std::lower_bound(cost_before.begin(), cost_before.end(), total * thread / threads) - cost_before.begin());
    const size_t end_item = static_cast<size_t>(std::lower_bound(cost_before.begin(), cost_before.end(), total * (thread + 1) / threads) - cost_before.begin());
    float* scores[kMaxAttentionGroup];
    const float* queries[kMaxAttentionGroup];
    for (size_t item = first_item; item < std::min(end_item, items); ++item) {
      const size_t t = item / shape.n_kv_heads;
      const size_t kv_head = item % shape.n_kv_heads;
      const size_t position = first_position + t;
      const size_t first_key = detail::first_visible(position, shape.window);
      const size_t keys = position + 1 - first_key;
      for (size_t g = 0; g < group; ++g) {
        scores[g] = scratch.scores(thread, g);
        queries[g] = q + t * q_width + (kv_head * group + g) * shape.head_dim;
      }
      // visible slots: [first_key % capacity, ...), wrapping at most once
      const size_t slot0 = first_key % capacity;
      const size_t first_run = std::min(keys, capacity - slot0);
      const std::byte* keys_t = cache.keys_transposed(kv_head);
      auto score_run = [&](size_t slot, size_t count, size_t offset) {
        float* shifted[kMaxAttentionGroup];
        for (size_t g = 0; g < group; ++g) shifted[g] = scores[g] + offset;
        if (cache.dtype() == DType::f16) {
          detail::score_group<F16>(queries, group, reinterpret_cast<const uint16_t*>(keys_t), capacity, slot, count, shape.head_dim, scale, shifted);
        } else {
          detail::score_group<F32>(queries, group, reinterpret_cast<const float*>(keys_t), capacity, slot, count, shape.head_dim, scale, shifted);
        }
      };
      score_run(slot0, first_run, 0);
      if (first_run < keys) score_run(0, keys - first_run, first_run);

      for (size_t g = 0; g < group; ++g) {
        simd::softmax(scores[g], keys);
        float* result = out + t * q_width + (kv_head * group + g) * shape.head_dim;
        std::fill(result, result + shape.head_dim, 0.0f);
      }
      size_t j = 0;
      if (cache.dtype() == DType::f32) {  // four values at a time, one pass over each output row
        for (; j + 4 <= keys; j += 4) {
          const float* values[4];
          for (size_t k = 0; k < 4; ++k) values[k] = reinterpret_cast<const float*>(cache.value(first_key + j + k)) + kv_head * shape.head_dim;
          for (size_t g = 0; g < group; ++g) simd::add_scaled4(values, scores[g] + j, out + t * q_width + (kv_head * group + g) * shape.head_dim, shape.head_dim);
        }
      }
      for (; j < keys; ++j) {
        const std::byte* value_row = cache.value(first_key + j) + kv_head * shape.head_dim * cache.element_bytes();
        const float* value = reinterpret_cast<const float*>(value_row);
        if (cache.dtype() == DType::f16) {
          fp16_to_fp32_row(reinterpret_cast<const uint16_t*>(value_row), scratch.row(thread), shape.head_dim);
          value = scratch.row(thread);
        }
        for (size_t g = 0; g < group; ++g) {
          simd::add_scaled(value, scores[g][j], out + t * q_width + (kv_head * group + g) * shape.head_dim, shape.head_dim);
        }
      }
    }
  });
}

}  // namespace apr::nn
