/// @file tensor.hpp
/// @brief Shape and TensorView: a typed, shaped, non-owning view of tensor bytes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>

#include <fmt/format.h>

#include "apr/core/dtype.hpp"

namespace apr {

/// Up to eight dimensions, outermost first (row-major: the last dimension is contiguous).
class Shape {
 public:
  /// Most dimensions a tensor may have (the APR limit).
  static constexpr size_t kMaxDims = 8;

  /// A scalar shape (no dimensions, one element).
  constexpr Shape() = default;
  /// A shape from a list of dims (at most kMaxDims; extra dims are a programming error).
  constexpr Shape(std::initializer_list<uint64_t> dims) {
    for (uint64_t d : dims) {
      if (ndim_ < kMaxDims) dims_[ndim_++] = d;
    }
  }
  /// A shape from a span of dims (at most kMaxDims are used).
  static constexpr Shape from(std::span<const uint64_t> dims) {
    Shape shape;
    for (uint64_t d : dims) {
      if (shape.ndim_ < kMaxDims) shape.dims_[shape.ndim_++] = d;
    }
    return shape;
  }

  /// Number of dimensions.
  [[nodiscard]] constexpr size_t ndim() const noexcept { return ndim_; }
  /// Dimension `i` (outermost first).
  [[nodiscard]] constexpr uint64_t operator[](size_t i) const noexcept { return dims_[i]; }
  /// Dimension `i` counted from the innermost (back(0) is the row length).
  [[nodiscard]] constexpr uint64_t back(size_t i = 0) const noexcept { return dims_[ndim_ - 1 - i]; }
  /// The dims as a span.
  [[nodiscard]] constexpr std::span<const uint64_t> dims() const noexcept { return {dims_.data(), ndim_}; }
  /// Product of the dims; false when it overflows 64 bits (result in `out`).
  [[nodiscard]] constexpr bool checked_numel(uint64_t& out) const noexcept {
    out = 1;
    for (size_t i = 0; i < ndim_; ++i) {
      if (__builtin_mul_overflow(out, dims_[i], &out)) return false;
    }
    return true;
  }
  /// Product of the dims (callers validate overflow with checked_numel first).
  [[nodiscard]] constexpr uint64_t numel() const noexcept {
    uint64_t n = 1;
    for (size_t i = 0; i < ndim_; ++i) n *= dims_[i];
    return n;
  }
  /// Equality of rank and every dim.
  friend constexpr bool operator==(const Shape& a, const Shape& b) noexcept {
    if (a.ndim_ != b.ndim_) return false;
    for (size_t i = 0; i < a.ndim_; ++i) {
      if (a.dims_[i] != b.dims_[i]) return false;
    }
    return true;
  }

 private:
  std::array<uint64_t, kMaxDims> dims_{};
  size_t ndim_ = 0;
};

/// "[2, 3, 4]".
inline std::string to_string(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape.dims(), ", ")); }

/// A named, shaped, typed view of tensor bytes owned elsewhere (usually an mmap'd file).
struct TensorView {
  std::string_view name;             ///< tensor name as stored in the file
  DType dtype = DType::f32;          ///< element type
  Shape shape;                       ///< dims, outermost first
  std::span<const std::byte> bytes;  ///< the tensor's data

  /// Number of elements.
  [[nodiscard]] uint64_t numel() const noexcept { return shape.numel(); }
  /// Rows when viewed as a matrix [rows, row_length] (all but the innermost dim).
  [[nodiscard]] uint64_t rows() const noexcept { return shape.ndim() == 0 ? 1 : numel() / shape.back(); }
  /// Values per row (the innermost dim; 1 for a scalar).
  [[nodiscard]] uint64_t row_length() const noexcept { return shape.ndim() == 0 ? 1 : shape.back(); }
  /// The data as blocks of weight dtype W (caller checks dtype == W::dtype).
  template <WeightDtype W>
  [[nodiscard]] const typename W::Block* blocks() const noexcept {
    return reinterpret_cast<const typename W::Block*>(bytes.data());
  }
};

}  // namespace apr
