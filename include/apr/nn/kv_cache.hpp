/// @file kv_cache.hpp
/// @brief KvCache: preallocated keys and values per layer (F32 or F16), ring-buffered under a window.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "apr/core/aligned_buffer.hpp"
#include "apr/core/dtype.hpp"
#include "apr/core/half.hpp"

namespace apr::nn {

/// One layer's keys and values: `capacity` slots of `width` (= kv heads × head dim) values.
/// Position p lives in slot p % capacity, so a layer that only looks back `window` positions
/// needs only window + chunk slots (a ring buffer); a full-attention layer has one slot per position.
class KvCacheLayer {
 public:
  /// Slots for `capacity` positions of `width` values each, stored as `dtype` (f32 or f16).
  KvCacheLayer(size_t capacity, size_t width, DType dtype)
      : capacity_(capacity), width_(width), dtype_(dtype),
        keys_(capacity * width * (dtype == DType::f16 ? 2 : 4)), values_(capacity * width * (dtype == DType::f16 ? 2 : 4)) {}

  /// Stores the key and value rows of position `position`.
  void store(size_t position, const float* key, const float* value) {
    const size_t slot = position % capacity_;
    if (dtype_ == DType::f16) {
      fp32_to_fp16_row(key, keys_.as<uint16_t>().data() + slot * width_, width_);
      fp32_to_fp16_row(value, values_.as<uint16_t>().data() + slot * width_, width_);
    } else {
      std::copy(key, key + width_, keys_.as<float>().data() + slot * width_);
      std::copy(value, value + width_, values_.as<float>().data() + slot * width_);
    }
  }

  /// Start of the key row of `position` (f32 or f16 data, per dtype()).
  [[nodiscard]] const std::byte* key(size_t position) const noexcept {
    return keys_.data() + (position % capacity_) * width_ * element_bytes();
  }
  /// Start of the value row of `position` (f32 or f16 data, per dtype()).
  [[nodiscard]] const std::byte* value(size_t position) const noexcept {
    return values_.data() + (position % capacity_) * width_ * element_bytes();
  }
  /// Storage dtype: f32 or f16.
  [[nodiscard]] DType dtype() const noexcept { return dtype_; }
  /// Number of slots.
  [[nodiscard]] size_t capacity() const noexcept { return capacity_; }
  /// Values per position (kv heads × head dim).
  [[nodiscard]] size_t width() const noexcept { return width_; }
  /// Bytes per stored value.
  [[nodiscard]] size_t element_bytes() const noexcept { return dtype_ == DType::f16 ? 2 : 4; }

 private:
  size_t capacity_;
  size_t width_;
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
