/// @file attention.hpp
/// @brief Scaled dot-product attention of query rows against a KV cache layer: multi-head or
/// grouped-query, causal, with an optional sliding window.
///
/// Work is split into (kv head, block of up to kRowBlock query rows) items, head by head so one
/// head's keys and values stay in cache over all the rows. An item scores the query heads that
/// share the kv head, for every row of its block, against the union of the keys those rows see,
/// each key loaded once for all of them: with keys stored transposed, 16 keys cost head_dim fused
/// multiply-adds per query. Every score is the same sequence of fmas wherever its key falls in a
/// batch, and each row's softmax and weighted sum of values run over its own keys in the order
/// a row alone would, so the results do not depend on the blocking; items are divided between
/// threads by their number of keys (causal rows grow), contiguously, so they do not depend on
/// the thread count either.
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

/// Query rows scored together against each key load (one attention work item).
inline constexpr size_t kAttentionRowBlock = 4;

/// Per-thread scratch: the scores of kAttentionRowBlock rows of one group of query heads against
/// the keys those rows see (at most `max_keys` each), and one value row converted from f16.
class AttentionScratch {
 public:
  /// Room for `threads` threads, `group` query heads per kv head, `max_keys` keys, heads of `head_dim`.
  AttentionScratch(size_t threads, size_t max_keys, size_t group, size_t head_dim)
      : max_keys_(max_keys), group_(group), score_stride_(max_keys + kAttentionRowBlock - 1),
        stride_(kAttentionRowBlock * group * score_stride_ + head_dim), buffer_(threads * stride_) {}
  /// Score row `i` (row of the block × group + query head of the group), for thread `thread`.
  float* scores(size_t thread, size_t i) noexcept { return buffer_.data() + thread * stride_ + i * score_stride_; }
  /// A head_dim-long float row for thread `thread`.
  float* row(size_t thread) noexcept { return buffer_.data() + thread * stride_ + kAttentionRowBlock * group_ * score_stride_; }
  /// Most keys one query may attend to.
  [[nodiscard]] size_t max_keys() const noexcept { return max_keys_; }
  /// Query heads per kv head it was sized for.
  [[nodiscard]] size_t group() const noexcept { return group_; }

 private:
  size_t max_keys_;
  size_t group_;
  size_t score_stride_;  ///< floats per score row: a block's union of keys
  size_t stride_;
  AlignedArray<float> buffer_;
};

namespace detail {

/// scores[g][j] = scale · q_g · key(slot0 + j) for j < count and G query heads, keys transposed
/// ([head_dim][capacity], f32 or f16 as W). Each step takes kKeyBatches vectors of keys, so that
/// G · kKeyBatches ≥ 8 fma chains run at once (one query alone would otherwise wait on each
/// fma's latency); every score is the same fmas over d in the same order, in a vector lane or
/// in the scalar tail.
template <size_t G, WeightDtype W, class Arch>
void score_keys(const float* const* queries, const typename W::Block* keys_t, size_t capacity, size_t slot0,
                size_t count, size_t head_dim, float scale, float* const* scores) {
  size_t j = 0;
  if constexpr (!std::is_same_v<Arch, simd::Scalar>) {
    using Batch = xsimd::batch<float, Arch>;
    constexpr size_t width = Batch::size;
    constexpr size_t kKeyBatches = G >= 8 ? 1 : 8 / G;
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
      for (size_t d = 0; d < head_dim; ++d) sum = std::fma(queries[g][d], simd::element_as_float<W>(keys_t + d * capacity + slot0, j), sum);
      scores[g][j] = sum * scale;
    }
  }
}

/// Scores `group` queries (in chunks of up to 4 register accumulators) over one run of slots.
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
  const size_t blocks = (n + kAttentionRowBlock - 1) / kAttentionRowBlock;
  const size_t items = shape.n_kv_heads * blocks;  // item = kv head · blocks + block of rows
  auto visible_keys = [&](size_t t) {
    const size_t position = first_position + t;
    return position + 1 - detail::first_visible(position, shape.window);
  };
  // cost of an item: its rows' visible keys plus a fixed per-row overhead; threads take
  // contiguous items with equal shares of the prefix sums
  std::vector<size_t> cost_before(items + 1, 0);
  for (size_t i = 0; i < items; ++i) {
    const size_t t0 = (i % blocks) * kAttentionRowBlock;
    size_t cost = 0;
    for (size_t t = t0; t < std::min(t0 + kAttentionRowBlock, n); ++t) cost += visible_keys(t) + 8;
    cost_before[i + 1] = cost_before[i] + cost;
  }
  pool.run([&](size_t thread, size_t threads) {
    const size_t total = cost_before[items];
    const size_t first_item = static_cast<size_t>(std::lower_bound(cost_before.begin(), cost_before.end(), total * thread / threads) - cost_before.begin());
    const size_t end_item = static_cast<size_t>(std::lower_bound(cost_before.begin(), cost_before.end(), total * (thread + 1) / threads) - cost_before.begin());
    constexpr size_t kMaxQueries = kAttentionRowBlock * kMaxAttentionGroup;
    float* scores[kMaxQueries];
    const float* queries[kMaxQueries];
    for (size_t item = first_item; item < std::min(end_item, items); ++item) {
      const size_t kv_head = item / blocks;
      const size_t t0 = (item % blocks) * kAttentionRowBlock;
      const size_t rows = std::min(kAttentionRowBlock, n - t0);
      // the block's rows see keys from the first row's first visible one to the last row's position
      const size_t union_first = detail::first_visible(first_position + t0, shape.window);
      const size_t union_keys = first_position + t0 + rows - union_first;
      for (size_t r = 0; r < rows; ++r) {
        for (size_t g = 0; g < group; ++g) {
          scores[r * group + g] = scratch.scores(thread, r * group + g);
          queries[r * group + g] = q + (t0 + r) * q_width + (kv_head * group + g) * shape.head_dim;
        }
      }
      // visible slots: [union_first % capacity, ...), wrapping at most once
      const size_t slot0 = union_first % capacity;
      const size_t first_run = std::min(union_keys, capacity - slot0);
      const std::byte* keys_t = cache.keys_transposed(kv_head);
      auto score_run = [&](size_t slot, size_t count, size_t offset) {
        float* shifted[kMaxQueries];
        for (size_t i = 0; i < rows * group; ++i) shifted[i] = scores[i] + offset;
        if (cache.dtype() == DType::f16) {
          detail::score_group<F16>(queries, rows * group, reinterpret_cast<const uint16_t*>(keys_t), capacity, slot, count, shape.head_dim, scale, shifted);
        } else {
          detail::score_group<F32>(queries, rows * group, reinterpret_cast<const float*>(keys_t), capacity, slot, count, shape.head_dim, scale, shifted);
        }
      };
      score_run(slot0, first_run, 0);
      if (first_run < union_keys) score_run(0, union_keys - first_run, first_run);

      // each row over its own keys: softmax, then the values four at a time and one by one, the
      // rows interleaved so the value rows they share are read from cache once
      auto output = [&](size_t r, size_t g) { return out + (t0 + r) * q_width + (kv_head * group + g) * shape.head_dim; };
      size_t first_key[kAttentionRowBlock], keys[kAttentionRowBlock], most_keys = 0;
      for (size_t r = 0; r < rows; ++r) {
        first_key[r] = detail::first_visible(first_position + t0 + r, shape.window);
        keys[r] = first_position + t0 + r + 1 - first_key[r];
        most_keys = std::max(most_keys, keys[r]);
        for (size_t g = 0; g < group; ++g) {
          float*& row_scores = scores[r * group + g];
          row_scores += first_key[r] - union_first;
          simd::softmax(row_scores, keys[r]);
          std::fill(output(r, g), output(r, g) + shape.head_dim, 0.0f);
        }
      }
      if (cache.dtype() == DType::f32) {
        for (size_t j = 0; j + 4 <= most_keys; j += 4) {
          for (size_t r = 0; r < rows; ++r) {
            if (j + 4 > keys[r]) continue;
            const float* values[4];
            for (size_t k = 0; k < 4; ++k) values[k] = reinterpret_cast<const float*>(cache.value(first_key[r] + j + k)) + kv_head * shape.head_dim;
            for (size_t g = 0; g < group; ++g) simd::add_scaled4(values, scores[r * group + g] + j, output(r, g), shape.head_dim);
          }
        }
      }
      for (size_t r = 0; r < rows; ++r) {
        for (size_t j = cache.dtype() == DType::f32 ? keys[r] / 4 * 4 : 0; j < keys[r]; ++j) {
          const std::byte* value_row = cache.value(first_key[r] + j) + kv_head * shape.head_dim * cache.element_bytes();
          const float* value = reinterpret_cast<const float*>(value_row);
          if (cache.dtype() == DType::f16) {
            fp16_to_fp32_row(reinterpret_cast<const uint16_t*>(value_row), scratch.row(thread), shape.head_dim);
            value = scratch.row(thread);
          }
          for (size_t g = 0; g < group; ++g) simd::add_scaled(value, scores[r * group + g][j], output(r, g), shape.head_dim);
        }
      }
    }
  });
}

}  // namespace apr::nn
