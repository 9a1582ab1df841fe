/// @file dense_network.hpp
/// @brief DenseNetwork: a feed-forward network of dense layers (weights of any runtime weight
/// dtype, optional f32 biases) with ReLU between layers; a single layer is a linear model.
#pragma once

#include <algorithm>
#include <cstddef>
#include <vector>

#include "apr/core/thread_pool.hpp"
#include "apr/nn/dynamic_linear.hpp"
#include "apr/simd/elementwise.hpp"
#include "apr/simd/quantized_activations.hpp"

namespace apr::nn {

/// y = W·x + b, W of runtime dtype.
struct DenseLayer {
  DynamicLinear linear;         ///< the weight matrix
  const float* bias = nullptr;  ///< [out_features] or null
};

/// Buffers a DenseNetwork pass needs; reused across calls.
struct DenseScratch {
  std::vector<float> ping;                  ///< hidden activations of even layers
  std::vector<float> pong;                  ///< hidden activations of odd layers
  simd::QuantizedActivations quantized;     ///< int8 activations for Q8_0/Q4_0 weights
};

/// x → relu(L₀x) → relu(L₁·) → … → L_last·: dense layers with ReLU between them.
struct DenseNetwork {
  std::vector<DenseLayer> layers;  ///< in order; in_features of each = out_features of the one before

  /// Length of an input row.
  [[nodiscard]] size_t in_features() const noexcept { return layers.empty() ? 0 : layers.front().linear.in_features; }
  /// Length of an output row.
  [[nodiscard]] size_t out_features() const noexcept { return layers.empty() ? 0 : layers.back().linear.out_features; }

  /// Y = network(X) for `rows` rows ([rows][in_features] → [rows][out_features]).
  void forward_batch(const float* x, size_t rows, float* y, DenseScratch& scratch, ThreadPool& pool) const {
    const float* input = x;
    for (size_t l = 0; l < layers.size(); ++l) {
      const DenseLayer& layer = layers[l];
      const size_t width = layer.linear.out_features;
      const bool last = l + 1 == layers.size();
      std::vector<float>& buffer = l % 2 == 0 ? scratch.ping : scratch.pong;
      if (!last && buffer.size() < rows * width) buffer.resize(rows * width);
      float* output = last ? y : buffer.data();
      layer.linear.forward_batch(input, rows, output, scratch.quantized, pool);
      for (size_t r = 0; r < rows; ++r) {
        float* row = output + r * width;
        if (layer.bias != nullptr) simd::add(row, layer.bias, row, width);
        if (!last) std::transform(row, row + width, row, [](float v) { return std::max(v, 0.0f); });
      }
      input = output;
    }
  }
};

}  // namespace apr::nn
