/// @file dynamic_linear.hpp
/// @brief DynamicLinear: a dense layer whose weight dtype is known only at run time (e.g. an
/// output head tied to embeddings stored differently from the other matrices).
#pragma once

#include <cstddef>

#include "apr/core/dtype.hpp"
#include "apr/nn/linear.hpp"

namespace apr::nn {

/// y = W·x for a row-major weight matrix of runtime dtype (one dispatch per call, not per row).
struct DynamicLinear {
  DType dtype = DType::f32;           ///< a weight dtype
  const std::byte* weight = nullptr;  ///< [out_features][in_features] in `dtype`
  size_t in_features = 0;             ///< length of x
  size_t out_features = 0;            ///< length of y

  /// Y[t] = W·X[t] for `tokens` rows.
  void forward_batch(const float* x, size_t tokens, float* y, simd::QuantizedActivations& scratch,
                     ThreadPool& pool) const {
    (void)visit_dtype(dtype, [&](auto tag) -> Result<void> {
      using W = decltype(tag);
      const Linear<W> linear{reinterpret_cast<const typename W::Block*>(weight), nullptr, in_features, out_features};
      if (tokens == 1) {
        linear.forward(x, y, scratch, pool);
      } else {
        linear.forward_batch(x, tokens, y, scratch, pool);
      }
      return ok();
    });
  }
};

}  // namespace apr::nn
