// gemm (float activations, packed micro-kernel) against its reference.
#include <catch2/catch.hpp>

#include "apr/core/thread_pool.hpp"
#include "apr/simd/gemm.hpp"
#include "kernel_support.hpp"

using namespace apr;
using namespace apr::simd;

TEMPLATE_TEST_CASE("gemm matches gemm_reference for ragged shapes", "[gemm]", F32, F16, BF16, Q8_0, Q4_0) {
  using W = TestType;
  ThreadPool pool(2);
  struct Shape {
    size_t rows, cols, tokens;
  };
  for (const Shape s : {Shape{33, 64, 3}, Shape{64, 288, 13}, Shape{100, 544, 25}, Shape{7, 32, 1}, Shape{40, 96, 2}}) {
    const auto w = test::random_matrix<W>(s.rows, s.cols, 11);
    const auto x = test::random_floats(s.tokens * s.cols, 12);
    std::vector<float> y(s.tokens * s.rows, -1.0f), reference(s.tokens * s.rows);
    gemm<W>(w.data(), x.data(), y.data(), s.rows, s.cols, s.tokens, pool);
    gemm_reference<W>(w.data(), x.data(), reference.data(), s.rows, s.cols, s.tokens);
    for (size_t i = 0; i < y.size(); ++i) REQUIRE(y[i] == Approx(reference[i]).margin(test::sum_tolerance(s.cols)));
  }
}

TEST_CASE("gemm is bit-identical for 1, 2 and 3 threads", "[gemm]") {
  const size_t rows = 200, cols = 512, tokens = 17;
  const auto w = test::random_matrix<F16>(rows, cols, 3);
  const auto x = test::random_floats(tokens * cols, 4);
  auto run = [&](size_t threads) {
    ThreadPool pool(threads);
    std::vector<float> y(tokens * rows);
    gemm<F16>(w.data(), x.data(), y.data(), rows, cols, tokens, pool);
    return y;
  };
  const auto one = run(1);
  REQUIRE(one == run(2));
  REQUIRE(one == run(3));
}
