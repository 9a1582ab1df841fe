/// @file byte_reader.hpp
/// @brief ByteReader: bounds-checked little-endian reads from a byte span, for file parsers.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>

#include "apr/core/result.hpp"

namespace apr {

static_assert(std::endian::native == std::endian::little, "apr reads little-endian files by plain loads");

/// Reads a trivially copyable T from possibly unaligned memory.
template <class T>
  requires std::is_trivially_copyable_v<T>
T load_unaligned(const std::byte* p) noexcept {
  T value;
  std::memcpy(&value, p, sizeof(T));
  return value;
}

/// A cursor over bytes; every read is bounds-checked and errors name the source and offset.
class ByteReader {
 public:
  /// Reads `bytes`; `source` (usually a file name) prefixes error messages.
  ByteReader(std::span<const std::byte> bytes, std::string_view source) : bytes_(bytes), source_(source) {}

  /// Current offset from the start of the span.
  [[nodiscard]] size_t offset() const noexcept { return offset_; }
  /// Bytes left after the cursor.
  [[nodiscard]] size_t remaining() const noexcept { return bytes_.size() - offset_; }
  /// Moves the cursor to `offset` (error if past the end).
  Result<void> seek(uint64_t offset) {
    if (offset > bytes_.size()) return fail("seek", offset, 0);
    offset_ = static_cast<size_t>(offset);
    return ok();
  }

  /// Reads a little-endian scalar named `field` (for the error message).
  template <class T>
    requires std::is_trivially_copyable_v<T>
  Result<T> read(std::string_view field) {
    if (remaining() < sizeof(T)) return fail(field, offset_, sizeof(T));
    T value = load_unaligned<T>(bytes_.data() + offset_);
    offset_ += sizeof(T);
    return value;
  }

  /// Returns the next `count` bytes as a view and advances past them.
  Result<std::span<const std::byte>> take(uint64_t count, std::string_view field) {
    if (count > remaining()) return fail(field, offset_, count);
    std::span<const std::byte> view = bytes_.subspan(offset_, static_cast<size_t>(count));
    offset_ += static_cast<size_t>(count);
    return view;
  }

  /// Returns the next `count` bytes as a string view and advances past them.
  Result<std::string_view> take_string(uint64_t count, std::string_view field) {
    auto view = take(count, field);
    if (!view) return std::move(view).error();
    return std::string_view(reinterpret_cast<const char*>(view->data()), view->size());
  }

  /// Error naming the source, field and offset of a read that ran past the end.
  [[nodiscard]] Error fail(std::string_view field, uint64_t offset, uint64_t wanted) const {
    return make_error(ErrorCode::format, "{}: {} at offset {:#x}: needs {} bytes, only {} left (file size {:#x})",
                      source_, field, offset, wanted, offset <= bytes_.size() ? bytes_.size() - offset : 0,
                      bytes_.size());
  }

 private:
  std::span<const std::byte> bytes_;
  std::string source_;
  size_t offset_ = 0;
};

/// Stores a + b in `out`; false when the sum overflows 64 bits.
constexpr bool checked_add(uint64_t a, uint64_t b, uint64_t& out) noexcept { return !__builtin_add_overflow(a, b, &out); }
/// Stores a * b in `out`; false when the product overflows 64 bits.
constexpr bool checked_mul(uint64_t a, uint64_t b, uint64_t& out) noexcept { return !__builtin_mul_overflow(a, b, &out); }

}  // namespace apr
