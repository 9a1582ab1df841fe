/// @file kv_cache.hpp
/// @brief KvCache: preallocated keys and values per layer (F32 or F16), ring-buffered under a window.
///
/// Keys are stored transposed per kv head, [kv_head][head_dim][slot], so attention scores for
/// 16 keys at a time are 16-wide fused multiply-adds with no horizontal sums; values stay
/// [slot][kv_heads × head_dim], the layout the weighted sum reads row by row.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "apr/core/aligned_buffer.hpp"
#include "apr/core/dtype.hpp"
#include "apr/core/half.hpp"

namespace apr::nn {

/// One layer's keys and values: `capacity` slots for `kv_heads` heads of `head_dim` values.
/// Position p lives in slot p % capacity, so a layer that only looks back `window` positions
/// needs only window + chunk slots (a ring buffer); a full-attention layer has one slot per position.
class KvCacheLayer {
 public:
  /// Slots for `capacity` positions of `kv_heads` × `head_dim` values, stored as `dtype` (f32 or f16).
  KvCacheLayer(size_t capacity, size_t kv_heads, size_t head_dim, DType dtype)
      : capacity_(capacity), kv_heads_(kv_heads), head_dim_(head_dim), dtype_(dtype),
        keys_(capacity * kv_heads * head_dim * element_bytes()), values_(capacity * kv_heads * head_dim * element_bytes()) {}

  /// Stores the key and value rows (kv_heads × head_dim values each) of position `position`.
  void store(size_t position, const float* key, const float* value) {
    const size_t slot = position % capacity_;
    const size_t width = kv_heads_ * head_dim_;
    if (dtype_ == DType::f16) {
      auto* keys = keys_.as<uint16_t>().data();
      for (size_t i = 0; i < width; ++i) keys[i * capacity_ + slot] = fp32_to_fp16(key[i]);
      fp32_to_fp16_row(value, values_.as<uint16_t>().data() + slot * width, width);
    } else {
      auto* keys = keys_.as<float>().data();
      for (size_t i = 0; i < width; ++i) keys[i * capacity_ + slot] = key[i];
      std::copy(value, value + width, values_.as<float>().data() + slot * width);
    }
  }

  /// Copies slots [0, slots) of `other`, a layer of the same heads, head_dim and dtype whose
  /// capacity may differ (beam search hands one sequence's cache to another; a stream starts
  /// from a compact copy of a common prefix).
  void copy_from(const KvCacheLayer& other, size_t slots) {
    const size_t bytes = element_bytes();
    slots = std::min({slots, capacity_, other.capacity_});
    for (size_t row = 0; row < kv_heads_ * head_dim_; ++row) {
      std::copy_n(other.keys_.data() + row * other.capacity_ * bytes, slots * bytes, keys_.data() + row * capacity_ * bytes);
    }
    std::copy_n(other.values_.data(), slots * kv_heads_ * head_dim_ * bytes, values_.data());
  }

  /// Keys of `kv_head` as [head_dim][capacity] (f32 or f16 data, per dtype()); slot = position % capacity.
  [[nodiscard]] const std::byte* keys_transposed(size_t kv_head) const noexcept {
    return keys_.data() + kv_head * head_dim_ * capacity_ * element_bytes();
  }
  /// Start of the value row of `position` (kv_heads × head_dim values, f32 or f16 per dtype()).
  [[nodiscard]] const std::byte* value(size_t position) const noexcept {
    return values_.data() + (position % capacity_) * kv_heads_ * head_dim_ * element_bytes();
  }
  /// Key value `d` of `kv_head` at `position`, as a float (for tests and inspection).
  [[nodiscard]] float key_at(size_t position, size_t kv_head, size_t d) const noexcept {
    const size_t index = (kv_head * head_dim_ + d) * capacity_ + position % capacity_;
    return dtype_ == DType::f16 ? fp16_to_fp32(keys_.as<uint16_t>()[index]) : keys_.as<float>()[index];
  }
  /// Storage dtype: f32 or f16.
  [[nodiscard]] DType dtype() const noexcept { return dtype_; }
  /// Number of slots.
  [[nodiscard]] size_t capacity() const noexcept { return capacity_; }
  /// Key/value heads.
  [[nodiscard]] size_t kv_heads() const noexcept { return kv_heads_; }
  /// Values per head.
  [[nodiscard]] size_t head_dim() const noexcept { return head_dim_; }
  /// Bytes per stored value.
  [[nodiscard]] size_t element_bytes() const noexcept { return dtype_ == DType::f16 ? 2 : 4; }

 private:
  size_t capacity_;
  size_t kv_heads_;
  size_t head_dim_;
  DType dtype_;
  AlignedBuffer keys_;
  AlignedBuffer values_;
};

/// Keys and values of every layer of one sequence, plus how many positions it holds.
struct KvCache {
  std::vector<KvCacheLayer> layers;  ///< one per transformer layer
  size_t length = 0;                 ///< positions stored so far (the next token's position)
  size_t max_length = 0;             ///< most positions this cache can hold

  /// Forgets every position (keeps the memory).
  void clear() noexcept { length = 0; }
};

}  // namespace apr::nn
