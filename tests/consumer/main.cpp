// Uses the umbrella header only: quantizes a row, runs a gemv on the pool, checks the result.
#include <apr/apr.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  constexpr size_t rows = 8;
  constexpr size_t cols = 64;
  std::vector<float> weights(rows * cols);
  std::vector<float> x(cols, 1.0f);
  for (size_t i = 0; i < weights.size(); ++i) weights[i] = static_cast<float>(i % 7) - 3.0f;

  std::vector<apr::BlockQ8_0> quantized(rows * cols / 32);
  for (size_t r = 0; r < rows; ++r) apr::quantize_row<apr::Q8_0>(&weights[r * cols], &quantized[r * cols / 32], cols);

  std::vector<float> y(rows);
  apr::simd::gemv<apr::Q8_0>(quantized.data(), x.data(), y.data(), rows, cols, apr::ThreadPool::global());
  for (size_t r = 0; r < rows; ++r) {
    float expected = 0.0f;
    for (size_t c = 0; c < cols; ++c) expected += weights[r * cols + c];
    if (std::fabs(y[r] - expected) > 0.05f * (1.0f + std::fabs(expected))) {
      std::fprintf(stderr, "row %zu: got %f, expected %f\n", r, y[r], expected);
      return 1;
    }
  }
  std::printf("apr consumer ok\n");
  return 0;
}
