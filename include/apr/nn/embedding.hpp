/// @file embedding.hpp
/// @brief Embedding: token id → row of a table stored in any weight dtype.
#pragma once

#include <cstddef>
#include <cstdint>

#include "apr/core/dtype.hpp"
#include "apr/core/quantize.hpp"

namespace apr::nn {

/// A [rows][dim] table whose dtype is known only at run time (embeddings are often stored
/// differently from the matmul weights); one row is dequantized per lookup.
struct Embedding {
  DType dtype = DType::f32;        ///< a weight dtype (F32, F16, BF16, Q8_0, Q4_0)
  const std::byte* data = nullptr;  ///< row-major table
  size_t rows = 0;                  ///< vocabulary size
  size_t dim = 0;                   ///< values per row

  /// Writes row `id` (caller checks id < rows) as floats into `out`.
  void lookup(size_t id, float* out) const {
    (void)visit_dtype(dtype, [&](auto tag) -> Result<void> {
      using W = decltype(tag);
      const auto* table = reinterpret_cast<const typename W::Block*>(data);
      dequantize_row<W>(table + id * (dim / W::block_size), out, dim);
      return ok();
    });
  }
};

}  // namespace apr::nn
