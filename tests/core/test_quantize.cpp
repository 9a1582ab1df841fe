// Row quantization: exact ggml block bytes on known input, round-trip error within stated bounds.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "apr/core/quantize.hpp"
#include "test_support.hpp"

using namespace apr;

namespace {

template <WeightDtype W>
std::vector<float> round_trip(const std::vector<float>& x) {
  std::vector<typename W::Block> blocks(x.size() / W::block_size);
  quantize_row<W>(x.data(), blocks.data(), x.size());
  std::vector<float> y(x.size());
  dequantize_row<W>(blocks.data(), y.data(), x.size());
  return y;
}

/// Largest |x| in the 32-value block holding element i.
float block_amax(const std::vector<float>& x, size_t i) {
  float amax = 0.0f;
  for (size_t j = i / 32 * 32; j < i / 32 * 32 + 32; ++j) amax = std::max(amax, std::fabs(x[j]));
  return amax;
}

}  // namespace

TEST_CASE("Q8_0 and Q4_0 blocks have ggml's bytes for a known block", "[quantize]") {
  std::vector<float> x(32);
  for (int i = 0; i < 32; ++i) x[i] = static_cast<float>(i) - 16.0f;  // -16 .. 15
  BlockQ8_0 q8{};
  quantize_row<Q8_0>(x.data(), &q8, 32);
  REQUIRE(q8.d == fp32_to_fp16(16.0f / 127.0f));
  REQUIRE(q8.qs[0] == -127);
  REQUIRE(q8.qs[16] == 0);
  REQUIRE(q8.qs[31] == static_cast<int8_t>(std::round(15.0f * 127.0f / 16.0f)));

  BlockQ4_0 q4{};
  quantize_row<Q4_0>(x.data(), &q4, 32);
  // max-magnitude value is -16, so d = -16 / -8 = 2 and -16 maps to nibble 0.
  REQUIRE(q4.d == fp32_to_fp16(2.0f));
  REQUIRE((q4.qs[0] & 0x0f) == 0);
  REQUIRE((q4.qs[0] >> 4) == 8);                        // element 16 = 0 -> 8
  REQUIRE((q4.qs[15] >> 4) == 15);                       // element 31 = 15 -> trunc(7.5+8.5)=16 clamped to 15
  REQUIRE((q4.qs[1] & 0x0f) == static_cast<int>(-15.0f / 2.0f + 8.5f));  // element 1 = -15
}

TEST_CASE("all-zero blocks quantize to zero scale and dequantize to zero", "[quantize]") {
  std::vector<float> zeros(64, 0.0f);
  for (float v : round_trip<Q8_0>(zeros)) REQUIRE(v == 0.0f);
  for (float v : round_trip<Q4_0>(zeros)) REQUIRE(v == 0.0f);
}

TEST_CASE("round-trip error bounds per dtype", "[quantize]") {
  const auto x = test::random_floats(32 * 64, 42, -3.0f, 3.0f);
  SECTION("F32 is exact") {
    REQUIRE(round_trip<F32>(x) == x);
  }
  SECTION("F16: relative error <= 2^-11") {
    const auto y = round_trip<F16>(x);
    for (size_t i = 0; i < x.size(); ++i) REQUIRE(std::fabs(y[i] - x[i]) <= std::fabs(x[i]) * 0x1p-11f);
  }
  SECTION("BF16: relative error <= 2^-8") {
    const auto y = round_trip<BF16>(x);
    for (size_t i = 0; i < x.size(); ++i) REQUIRE(std::fabs(y[i] - x[i]) <= std::fabs(x[i]) * 0x1p-8f);
  }
  SECTION("Q8_0: error <= 0.0045 * block max (half a step of amax/127 plus the f16 scale's rounding)") {
    const auto y = round_trip<Q8_0>(x);
    for (size_t i = 0; i < x.size(); ++i) REQUIRE(std::fabs(y[i] - x[i]) <= 0.0045f * block_amax(x, i));
  }
  SECTION("Q4_0: error <= 0.126 * block max (one step of amax/8 at the clamped end)") {
    const auto y = round_trip<Q4_0>(x);
    for (size_t i = 0; i < x.size(); ++i) REQUIRE(std::fabs(y[i] - x[i]) <= 0.126f * block_amax(x, i));
    // and on average much less than that
    double total = 0.0;
    for (size_t i = 0; i < x.size(); ++i) total += std::fabs(y[i] - x[i]) / block_amax(x, i);
    REQUIRE(total / static_cast<double>(x.size()) < 0.05);
  }
}
