// Shared by the kernel tests: weights of every dtype made from random floats, tolerances.
#pragma once

#include <cmath>
#include <vector>

#include "apr/core/quantize.hpp"
#include "apr/simd/arch.hpp"
#include "test_support.hpp"

namespace apr::test {

/// A rows × cols matrix of random values quantized to W.
template <WeightDtype W>
std::vector<typename W::Block> random_matrix(size_t rows, size_t cols, uint32_t seed) {
  const auto values = random_floats(rows * cols, seed);
  std::vector<typename W::Block> blocks(rows * cols / W::block_size);
  for (size_t r = 0; r < rows; ++r) {
    quantize_row<W>(values.data() + r * cols, blocks.data() + r * cols / W::block_size, cols);
  }
  return blocks;
}

/// Float-reordering tolerance for a sum of n products of values in [-1, 1]: n·2^-20, at least 1e-5.
inline float sum_tolerance(size_t n) { return std::max(1e-5f, static_cast<float>(n) * 0x1p-20f); }

}  // namespace apr::test
