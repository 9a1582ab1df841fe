/// @file conv1d.hpp
/// @brief Conv1d<W>: 1-D convolution over time (any kernel, stride and zero padding, with bias),
/// computed as im2col followed by one matrix product.
///
/// y[t][o] = b[o] + Σ_c Σ_k w[o][c][k] · x[t·stride + k − padding][c], with x zero outside
/// [0, length). The weight keeps PyTorch's [out][in][kernel] layout, read as a matrix of
/// in × kernel columns, so the product of the im2col rows with it is a plain Linear layer.
#pragma once

#include <algorithm>
#include <cstddef>

#include "apr/core/aligned_buffer.hpp"
#include "apr/core/dtype.hpp"
#include "apr/core/thread_pool.hpp"
#include "apr/nn/linear.hpp"

namespace apr::nn {

/// A 1-D convolution over time-major activations ([length][channels]).
template <WeightDtype W>
struct Conv1d {
  const typename W::Block* weight = nullptr;  ///< [out_channels][in_channels][kernel]
  const float* bias = nullptr;                ///< [out_channels] or null
  size_t in_channels = 0;                     ///< channels of x
  size_t out_channels = 0;                    ///< channels of y
  size_t kernel = 3;                          ///< taps per channel
  size_t stride = 1;                          ///< input steps per output step
  size_t padding = 1;                         ///< zeros added at each end of the input

  /// Output steps for `length` input steps (0 when the input is shorter than the kernel).
  [[nodiscard]] size_t output_length(size_t length) const noexcept {
    const size_t padded = length + 2 * padding;
    return padded < kernel ? 0 : (padded - kernel) / stride + 1;
  }

  /// Floats of im2col scratch needed for `length` input steps.
  [[nodiscard]] size_t columns_size(size_t length) const noexcept { return output_length(length) * in_channels * kernel; }

  /// y ([output_length][out_channels]) = conv(x) for x of `length` steps ([length][in_channels]);
  /// `columns` holds at least columns_size(length) floats.
  void forward(const float* x, size_t length, float* y, float* columns, simd::QuantizedActivations& scratch,
               ThreadPool& pool) const {
    const size_t steps = output_length(length);
    const size_t row = in_channels * kernel;
    pool.parallel_for(steps, [&](size_t begin, size_t end) {
      for (size_t t = begin; t < end; ++t) {
        float* column = columns + t * row;
        for (size_t k = 0; k < kernel; ++k) {
          const ptrdiff_t source = static_cast<ptrdiff_t>(t * stride + k) - static_cast<ptrdiff_t>(padding);
          const bool inside = source >= 0 && source < static_cast<ptrdiff_t>(length);
          for (size_t c = 0; c < in_channels; ++c) {
            column[c * kernel + k] = inside ? x[static_cast<size_t>(source) * in_channels + c] : 0.0f;
          }
        }
      }
    });
    const Linear<W> product{weight, bias, row, out_channels};
    product.forward_batch(columns, steps, y, scratch, pool);
  }
};

}  // namespace apr::nn
