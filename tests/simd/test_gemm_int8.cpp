// gemm_int8 (packed VNNI panels, or AVX2 row groups, for Q8_0/Q4_0 × int8 activations) against its exact-integer reference.
#include <catch2/catch.hpp>

#include "apr/core/thread_pool.hpp"
#include "apr/simd/gemm_int8.hpp"
#include "kernel_support.hpp"

using namespace apr;
using namespace apr::simd;

namespace {

/// Y of gemm_int8 for a random rows × cols matrix of W and `tokens` random activation rows.
template <Int8DotWeight W>
struct Int8Case {
  size_t rows, cols, tokens;
  std::vector<typename W::Block> w = test::random_matrix<W>(rows, cols, static_cast<uint32_t>(rows * 7 + cols));
  QuantizedActivations x = quantized(test::random_floats(tokens * cols, static_cast<uint32_t>(tokens + cols), -3.0f, 3.0f));

  QuantizedActivations quantized(const std::vector<float>& values) const {
    QuantizedActivations q;
    q.quantize(values.data(), tokens, cols);
    return q;
  }
  template <class Arch = DefaultArch>
  std::vector<float> run(size_t threads) const {
    ThreadPool pool(threads);
    std::vector<float> y(tokens * rows, -1.0f);
    gemm_int8<W, Arch>(w.data(), x, y.data(), rows, pool);
    return y;
  }
};

}  // namespace

TEMPLATE_PRODUCT_TEST_CASE("gemm_int8 matches gemm_int8_reference for ragged shapes", "[gemm][int8]", std::pair,
                           ((Q8_0, DefaultArch), (Q4_0, DefaultArch), (Q8_0, xsimd::fma3<xsimd::avx2>), (Q4_0, xsimd::fma3<xsimd::avx2>))) {
  using W = typename TestType::first_type;
  using Arch = typename TestType::second_type;
  struct Shape {
    size_t rows, cols, tokens;
  };
  // rows not a multiple of the 32-row panel (VNNI) or the 2-row group (AVX2), tokens not a multiple
  // of the 6-token (VNNI) or 4-token (AVX2) tile, odd block counts
  for (const Shape s : {Shape{1, 32, 1}, Shape{15, 96, 2}, Shape{17, 288, 7}, Shape{33, 64, 13}, Shape{45, 864, 9},
                        Shape{100, 160, 25}, Shape{64, 896, 6}, Shape{7, 4864, 3}}) {
    const Int8Case<W> c{s.rows, s.cols, s.tokens};
    const auto y = c.template run<Arch>(2);
    std::vector<float> reference(s.tokens * s.rows);
    gemm_int8_reference<W>(c.w.data(), c.x, reference.data(), s.rows);
    // block sums are exact integers in both; only the float scaling may round differently (fma
    // contraction), a few ulp of each partial sum: cols·2^-20 absolute for |terms| ≤ 3·32 per block
    for (size_t i = 0; i < y.size(); ++i) {
      INFO("rows " << s.rows << " cols " << s.cols << " tokens " << s.tokens << " index " << i);
      REQUIRE(y[i] == Approx(reference[i]).margin(test::sum_tolerance(s.cols)));
    }
  }
}

TEMPLATE_TEST_CASE("gemm_int8 is bit-identical for 1, 2 and 3 threads", "[gemm][int8]", Q8_0, Q4_0) {
  const Int8Case<TestType> c{.rows = 200, .cols = 416, .tokens = 17};
  const auto one = c.run(1);
  REQUIRE(one == c.run(2));
  REQUIRE(one == c.run(3));
}

TEMPLATE_TEST_CASE("gemm_int8 with one token equals gemv_int8", "[gemm][int8]", Q8_0, Q4_0) {
  using W = TestType;
  const Int8Case<W> c{.rows = 70, .cols = 320, .tokens = 1};
  const auto y = c.run(2);
  ThreadPool pool(2);
  std::vector<float> gemv_y(c.rows);
  gemv_int8<W>(c.w.data(), c.x, 0, gemv_y.data(), c.rows, pool);
  for (size_t r = 0; r < c.rows; ++r) REQUIRE(y[r] == Approx(gemv_y[r]).margin(test::sum_tolerance(c.cols)));
}

TEMPLATE_TEST_CASE("gemm_int8 on 128-bit vectors (SSE4.1, WebAssembly SIMD128) equals dot_int8 for every token and row", "[gemm][int8]", Q8_0, Q4_0) {
  using W = TestType;
  const Int8Case<W> c{.rows = 45, .cols = 288, .tokens = 11};  // rows not a multiple of the 4 read side by side
  ThreadPool pool(2);
  std::vector<float> y(c.tokens * c.rows);
  gemm_int8<W, xsimd::sse4_1>(c.w.data(), c.x, y.data(), c.rows, pool);
  for (size_t t = 0; t < c.tokens; ++t) {
    for (size_t r = 0; r < c.rows; ++r) REQUIRE(y[t * c.rows + r] == dot_int8<W, xsimd::sse4_1>(c.w.data() + r * c.cols / 32, c.x, t));
  }
}
