/// @file linear.hpp
/// @brief Linear<W>: y = W·x (+ b) over a weight matrix of dtype W, for one token or a batch.
///
/// Q8_0 and Q4_0 weights multiply int8-quantized activations (as llama.cpp does); the other
/// dtypes multiply float activations directly.
#pragma once

#include <cstddef>

#include "apr/core/dtype.hpp"
#include "apr/core/thread_pool.hpp"
#include "apr/simd/elementwise.hpp"
#include "apr/simd/gemm.hpp"
#include "apr/simd/gemm_int8.hpp"
#include "apr/simd/gemv.hpp"
#include "apr/simd/quantized_activations.hpp"

namespace apr::nn {

/// A dense layer: `out_features` rows of `in_features` values in dtype W, optional f32 bias.
template <WeightDtype W>
struct Linear {
  const typename W::Block* weight = nullptr;  ///< row-major [out_features][in_features]
  const float* bias = nullptr;                ///< [out_features] or null
  size_t in_features = 0;                     ///< length of x
  size_t out_features = 0;                    ///< length of y

  /// True when activations are quantized to int8 for this layer's products.
  static constexpr bool kInt8Activations = simd::Int8DotWeight<W>;

  /// y = W·x + b for one token; `scratch` holds the quantized x for int8 dtypes.
  void forward(const float* x, float* y, simd::QuantizedActivations& scratch, ThreadPool& pool) const {
    if constexpr (kInt8Activations) {
      scratch.quantize(x, 1, in_features);
      forward_quantized(scratch, 0, y, pool);
    } else {
      simd::gemv<W>(weight, x, y, out_features, in_features, pool);
      add_bias(y, 1);
    }
  }

  /// y = W·x + b for row `row` of activations already quantized (int8 dtypes only).
  void forward_quantized(const simd::QuantizedActivations& x, size_t row, float* y, ThreadPool& pool) const
    requires kInt8Activations
  {
    simd::gemv_int8<W>(weight, x, row, y, out_features, pool);
    add_bias(y, 1);
  }

  /// Y[t] = W·X[t] + b for `tokens` rows of X ([tokens][in_features] → [tokens][out_features]).
  void forward_batch(const float* x, size_t tokens, float* y, simd::QuantizedActivations& scratch,
                     ThreadPool& pool) const {
    if constexpr (kInt8Activations) {
      scratch.quantize(x, tokens, in_features);
      forward_batch_quantized(scratch, y, pool);
    } else if (simd::is_plain_v<W> && tokens <= 4 * simd::kGemvMaxFloatRows) {
      // gemm packs every weight panel per call, which only pays off over many rows
      simd::gemv_rows<W>(weight, x, y, out_features, in_features, tokens, pool);
      add_bias(y, tokens);
    } else {
      simd::gemm<W>(weight, x, y, out_features, in_features, tokens, pool);
      add_bias(y, tokens);
    }
  }

  /// Y[t] = W·X[t] + b with every row of X already quantized (int8 dtypes only).
  void forward_batch_quantized(const simd::QuantizedActivations& x, float* y, ThreadPool& pool) const
    requires kInt8Activations
  {
    if (x.rows() == 1) {
      simd::gemv_int8<W>(weight, x, 0, y, out_features, pool);
    } else if (x.rows() <= simd::kGemvMaxRows) {
      // gemm_int8 packs every weight panel per call, which only pays off over many rows
      simd::gemv_int8_rows<W>(weight, x, y, out_features, pool);
    } else {
      simd::gemm_int8<W>(weight, x, y, out_features, pool);
    }
    add_bias(y, x.rows());
  }

 private:
  void add_bias(float* y, size_t tokens) const {
    if (bias == nullptr) return;
    for (size_t t = 0; t < tokens; ++t) simd::add(y + t * out_features, bias, y + t * out_features, out_features);
  }
};

}  // namespace apr::nn
