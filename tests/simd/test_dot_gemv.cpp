// dot and gemv for every weight dtype and arch against the scalar reference twins, odd lengths included.
#include <catch2/catch.hpp>

#include "apr/core/thread_pool.hpp"
#include "apr/simd/dot.hpp"
#include "apr/simd/gemv.hpp"
#include "kernel_support.hpp"

using namespace apr;
using namespace apr::simd;

TEMPLATE_PRODUCT_TEST_CASE("dot matches dot_reference", "[dot]", std::pair,
                           ((F32, DefaultArch), (F16, DefaultArch), (BF16, DefaultArch), (Q8_0, DefaultArch),
                            (Q4_0, DefaultArch), (F32, xsimd::fma3<xsimd::avx2>), (F16, xsimd::fma3<xsimd::avx2>),
                            (BF16, xsimd::fma3<xsimd::avx2>), (F16, xsimd::sse4_2), (BF16, xsimd::sse4_2),
                            (Q4_0, xsimd::sse4_2), (F32, Scalar))) {
  using W = typename TestType::first_type;
  using Arch = typename TestType::second_type;
  for (size_t n : {32u, 64u, 96u, 896u, 4864u}) {
    const size_t length = W::block_size == 1 ? n + 3 : n;  // plain dtypes also get a ragged tail
    const auto row = test::random_matrix<W>(1, W::block_size == 1 ? length : n, static_cast<uint32_t>(n));
    const auto x = test::random_floats(length, static_cast<uint32_t>(n) + 100);
    const float expected = dot_reference<W>(row.data(), x.data(), length);
    REQUIRE(dot<W, Arch>(row.data(), x.data(), length) == Approx(expected).margin(test::sum_tolerance(length)));
  }
}

TEMPLATE_TEST_CASE("gemv matches per-row dot_reference and is identical for 1 and 2 threads", "[gemv]", F32, F16, BF16,
                   Q8_0, Q4_0) {
  using W = TestType;
  const size_t rows = 67;
  const size_t cols = 320;
  const auto w = test::random_matrix<W>(rows, cols, 5);
  const auto x = test::random_floats(cols, 6);
  std::vector<float> y1(rows), y2(rows);
  ThreadPool one(1), two(2);
  gemv<W>(w.data(), x.data(), y1.data(), rows, cols, one);
  gemv<W>(w.data(), x.data(), y2.data(), rows, cols, two);
  REQUIRE(y1 == y2);
  for (size_t r = 0; r < rows; ++r) {
    REQUIRE(y1[r] == Approx(dot_reference<W>(w.data() + r * cols / W::block_size, x.data(), cols)).margin(test::sum_tolerance(cols)));
  }
}

TEMPLATE_TEST_CASE("int8 dot and gemv match the exact-integer reference", "[int8]", Q8_0, Q4_0) {
  using W = TestType;
  for (size_t cols : {32u, 64u, 96u, 896u, 4864u}) {
    const size_t rows = 19;
    const auto w = test::random_matrix<W>(rows, cols, static_cast<uint32_t>(cols));
    const auto x = test::random_floats(2 * cols, static_cast<uint32_t>(cols) + 1, -4.0f, 4.0f);
    QuantizedActivations q;
    q.quantize(x.data(), 2, cols);
    for (size_t t = 0; t < 2; ++t) {
      std::vector<float> y(rows);
      ThreadPool pool(2);
      gemv_int8<W>(w.data(), q, t, y.data(), rows, pool);
      for (size_t r = 0; r < rows; ++r) {
        const auto* row = w.data() + r * cols / 32;
        const float reference = dot_int8_reference<W>(row, q, t);
        REQUIRE(dot_int8<W>(row, q, t) == Approx(reference).margin(1e-4f * cols / 32).epsilon(1e-5));
        REQUIRE(y[r] == dot_int8<W>(row, q, t));
        // against float activations: int8 quantization of x adds at most ~0.4% of |x| per element
        const float exact = dot_reference<W>(row, x.data() + t * cols, cols);
        REQUIRE(std::fabs(reference - exact) <= 0.01f * std::sqrt(static_cast<float>(cols)) * 4.0f);
      }
    }
  }
}

TEMPLATE_TEST_CASE("float gemv_rows equals gemv row by row, exactly", "[gemv]", F32, F16, BF16) {
  using W = TestType;
  ThreadPool pool(2);
  const size_t rows = 37, cols = 136;  // 2 full 4-vector steps, then single vectors and a scalar tail
  const auto w = test::random_matrix<W>(rows, cols, 23);
  for (size_t tokens : {2u, 4u, 7u}) {
    const auto x = test::random_floats(tokens * cols, static_cast<uint32_t>(tokens));
    std::vector<float> batched(tokens * rows), single(rows);
    gemv_rows<W>(w.data(), x.data(), batched.data(), rows, cols, tokens, pool);
    for (size_t t = 0; t < tokens; ++t) {
      gemv<W>(w.data(), x.data() + t * cols, single.data(), rows, cols, pool);
      for (size_t r = 0; r < rows; ++r) REQUIRE(batched[t * rows + r] == single[r]);
    }
  }
}

TEMPLATE_TEST_CASE("gemv_int8_rows equals gemv_int8 row by row, exactly", "[int8]", Q8_0, Q4_0) {
  using W = TestType;
  ThreadPool pool(2);
  const size_t rows = 37, cols = 96;  // 3 blocks: a pair plus the tail path
  const auto w = test::random_matrix<W>(rows, cols, 17);
  for (size_t tokens : {2u, 3u, 8u, 11u}) {
    const auto x = test::random_floats(tokens * cols, static_cast<uint32_t>(tokens), -4.0f, 4.0f);
    QuantizedActivations q;
    q.quantize(x.data(), tokens, cols);
    std::vector<float> batched(tokens * rows), single(rows);
    gemv_int8_rows<W>(w.data(), q, batched.data(), rows, pool);
    for (size_t t = 0; t < tokens; ++t) {
      gemv_int8<W>(w.data(), q, t, single.data(), rows, pool);
      for (size_t r = 0; r < rows; ++r) REQUIRE(batched[t * rows + r] == single[r]);
    }
  }
}

TEST_CASE("activation quantization: scales, sums and rounding", "[int8]") {
  std::vector<float> x(64);
  for (size_t i = 0; i < 64; ++i) x[i] = static_cast<float>(i) - 31.5f;
  QuantizedActivations q;
  q.quantize(x.data(), 1, 64);
  REQUIRE(q.scales()[0] == Approx(31.5f / 127.0f));
  REQUIRE(q.values()[0] == -127);
  REQUIRE(q.values()[63] == 127);
  int sum = 0;
  for (size_t j = 0; j < 32; ++j) sum += q.values()[j];
  REQUIRE(q.sums()[0] == sum);
  REQUIRE(q.pair_scales()[7] == q.scales()[0]);
  REQUIRE(q.pair_scales()[8] == q.scales()[1]);
  REQUIRE(q.lane_offsets<8>()[9] == -8 * (q.values()[36] + q.values()[37] + q.values()[38] + q.values()[39]));
  REQUIRE(q.lane_offsets<128>()[15] == -128 * (q.values()[60] + q.values()[61] + q.values()[62] + q.values()[63]));
  std::vector<float> zeros(32, 0.0f);
  q.quantize(zeros.data(), 1, 32);
  REQUIRE(q.scales()[0] == 0.0f);
  REQUIRE(q.values()[5] == 0);
}

TEMPLATE_PRODUCT_TEST_CASE("int8 dot on 128-bit (SSE4.1, WebAssembly SIMD128) and 256-bit (AVX2) vectors matches the exact-integer reference",
                           "[int8]", std::pair,
                           ((Q8_0, xsimd::sse4_1), (Q4_0, xsimd::sse4_1), (Q8_0, xsimd::fma3<xsimd::avx2>), (Q4_0, xsimd::fma3<xsimd::avx2>))) {
  using W = typename TestType::first_type;
  using Arch = typename TestType::second_type;
  for (size_t cols : {32u, 64u, 96u, 160u, 896u, 4864u}) {  // 1, 2, 3 and 5 blocks reach the loops' tails
    const auto w = test::random_matrix<W>(3, cols, static_cast<uint32_t>(cols) + 7);
    const auto x = test::random_floats(cols, static_cast<uint32_t>(cols) + 8, -4.0f, 4.0f);
    QuantizedActivations q;
    q.quantize(x.data(), 1, cols);
    for (size_t r = 0; r < 3; ++r) {
      const auto* row = w.data() + r * cols / 32;
      // block sums are exact integers in both; only the float additions are ordered differently
      REQUIRE(dot_int8<W, Arch>(row, q, 0) == Approx(dot_int8_reference<W>(row, q, 0)).margin(1e-4f * cols / 32).epsilon(1e-5));
    }
  }
}

TEMPLATE_PRODUCT_TEST_CASE("dot_int8_weight_rows equals dot_int8 row by row, exactly", "[int8]", std::pair,
                           ((Q8_0, DefaultArch), (Q4_0, DefaultArch), (Q8_0, xsimd::sse4_1), (Q4_0, xsimd::sse4_1), (Q4_0, Scalar))) {
  using W = typename TestType::first_type;
  using Arch = typename TestType::second_type;
  const size_t cols = 896, row_blocks = cols / 32;
  const auto w = test::random_matrix<W>(kInt8WeightRows, cols, 11);
  const auto x = test::random_floats(cols, 12, -4.0f, 4.0f);
  QuantizedActivations q;
  q.quantize(x.data(), 1, cols);
  float out[kInt8WeightRows];
  dot_int8_weight_rows<W, kInt8WeightRows, Arch>(w.data(), row_blocks, q, 0, out);
  for (size_t i = 0; i < kInt8WeightRows; ++i) REQUIRE(out[i] == dot_int8<W, Arch>(w.data() + i * row_blocks, q, 0));
}

#if defined(__AVX2__) && defined(__F16C__)
using Avx2 = xsimd::fma3<xsimd::avx2>;

TEST_CASE("int8 dot on AVX2: Q8_0 values of -128 against activations of ±127 do not saturate", "[int8]") {
  std::vector<Q8_0::Block> row(4);
  for (auto& block : row) {
    block.d = fp32_to_fp16(1.0f);
    for (auto& value : block.qs) value = -128;
  }
  for (const float sign : {1.0f, -1.0f}) {
    const std::vector<float> x(128, sign);  // every value quantizes to ±127
    QuantizedActivations q;
    q.quantize(x.data(), 1, 128);
    REQUIRE(q.values()[0] == static_cast<int8_t>(sign * 127));
    // 128 products of −128·(±127), each block's sum exact in int32, scaled by 1/127
    REQUIRE(dot_int8<Q8_0, Avx2>(row.data(), q, 0) == Approx(-sign * 128.0f * 128.0f).epsilon(1e-6));
    REQUIRE(dot_int8<Q8_0, Avx2>(row.data(), q, 0) == Approx(dot_int8_reference<Q8_0>(row.data(), q, 0)).epsilon(1e-6));
  }
}

TEMPLATE_TEST_CASE("dot_int8_rows on AVX2 equals dot_int8 for every activation row, exactly", "[int8]", Q8_0, Q4_0) {
  using W = TestType;
  const size_t cols = 224;  // 7 blocks: a step of four, then three single ones
  const auto w = test::random_matrix<W>(1, cols, 31);
  const auto x = test::random_floats(kGemvMaxRows * cols, 32, -4.0f, 4.0f);
  QuantizedActivations q;
  q.quantize(x.data(), kGemvMaxRows, cols);
  float out[kGemvMaxRows];
  dot_int8_rows<W, kGemvMaxRows, Avx2>(w.data(), q, 0, out);
  for (size_t t = 0; t < kGemvMaxRows; ++t) REQUIRE(out[t] == dot_int8<W, Avx2>(w.data(), q, t));
  dot_int8_rows<W, 3, Avx2>(w.data(), q, 5, out);
  for (size_t t = 0; t < 3; ++t) REQUIRE(out[t] == dot_int8<W, Avx2>(w.data(), q, 5 + t));
}
#endif

#if defined(__SSE4_1__)
TEST_CASE("the 128-bit kernels' f16 scale conversion is exact for every f16 value", "[int8]") {
  for (uint32_t h = 0; h < 65536; h += 4) {
    alignas(16) float got[4];
    _mm_store_ps(got, detail::f16_to_f32(_mm_setr_epi32(static_cast<int>(h), static_cast<int>(h + 1), static_cast<int>(h + 2), static_cast<int>(h + 3))));
    for (uint32_t i = 0; i < 4; ++i) {
      const float expected = fp16_to_fp32_scalar(static_cast<uint16_t>(h + i));
      INFO(h + i);
      if (std::isnan(expected)) REQUIRE(std::isnan(got[i]));
      else REQUIRE(apr::bit_cast<uint32_t>(got[i]) == apr::bit_cast<uint32_t>(expected));
    }
  }
}
#endif
