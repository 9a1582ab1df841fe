// F16 / BF16 conversion: hardware paths against the portable reference twins, exhaustively for F16.
#include <catch2/catch.hpp>

#include <bit>
#include <cmath>
#include <limits>
#include <vector>

#include "apr/core/half.hpp"
#include "test_support.hpp"

using namespace apr;

TEST_CASE("fp16_to_fp32 matches the reference for all 65536 patterns", "[half]") {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float hw = fp16_to_fp32(static_cast<uint16_t>(h));
    const float ref = fp16_to_fp32_scalar(static_cast<uint16_t>(h));
    if (std::isnan(ref)) {
      REQUIRE(std::isnan(hw));
    } else {
      REQUIRE(std::bit_cast<uint32_t>(hw) == std::bit_cast<uint32_t>(ref));
    }
  }
}

TEST_CASE("fp32_to_fp16 rounds to nearest even like the reference", "[half]") {
  // Every F16 value and the midpoints between neighbours (ties must go to even).
  for (uint32_t h = 0; h < 0x7c00; ++h) {
    const float value = fp16_to_fp32_scalar(static_cast<uint16_t>(h));
    REQUIRE(fp32_to_fp16(value) == h);
    REQUIRE(fp32_to_fp16_scalar(value) == h);
    const float next = fp16_to_fp32_scalar(static_cast<uint16_t>(h + 1));
    const float mid = (value + next) / 2;  // exact in f32
    const uint16_t even = (h & 1u) == 0 ? static_cast<uint16_t>(h) : static_cast<uint16_t>(h + 1);
    REQUIRE(fp32_to_fp16_scalar(mid) == even);
    REQUIRE(fp32_to_fp16(mid) == even);
  }
  auto values = test::random_floats(100000, 7, -70000.0f, 70000.0f);
  const auto small = test::random_floats(100000, 8, -1e-4f, 1e-4f);
  values.insert(values.end(), small.begin(), small.end());
  values.push_back(std::numeric_limits<float>::infinity());
  values.push_back(-0.0f);
  values.push_back(65519.0f);
  values.push_back(65520.0f);
  for (float v : values) REQUIRE(fp32_to_fp16(v) == fp32_to_fp16_scalar(v));
  REQUIRE(fp32_to_fp16(65520.0f) == 0x7c00);
  REQUIRE((fp32_to_fp16_scalar(std::numeric_limits<float>::quiet_NaN()) & 0x7fff) > 0x7c00);
}

TEST_CASE("row conversions equal element conversions, including tails", "[half]") {
  for (size_t n : {0u, 1u, 7u, 16u, 31u, 100u}) {
    const auto x = test::random_floats(n, static_cast<uint32_t>(n) + 1, -10.0f, 10.0f);
    std::vector<uint16_t> h(n), b(n);
    fp32_to_fp16_row(x.data(), h.data(), n);
    fp32_to_bf16_row(x.data(), b.data(), n);
    std::vector<float> back(n), back_b(n);
    fp16_to_fp32_row(h.data(), back.data(), n);
    bf16_to_fp32_row(b.data(), back_b.data(), n);
    for (size_t i = 0; i < n; ++i) {
      REQUIRE(h[i] == fp32_to_fp16_scalar(x[i]));
      REQUIRE(back[i] == fp16_to_fp32_scalar(h[i]));
      REQUIRE(std::fabs(back[i] - x[i]) <= std::fabs(x[i]) * 0x1p-11f);
      REQUIRE(std::fabs(back_b[i] - x[i]) <= std::fabs(x[i]) * 0x1p-8f);
    }
  }
}

TEST_CASE("bf16 rounding: ties to even, NaN stays NaN", "[half]") {
  REQUIRE(fp32_to_bf16(1.0f) == 0x3f80);
  REQUIRE(fp32_to_bf16(std::bit_cast<float>(0x3f808000u)) == 0x3f80);  // tie, even stays
  REQUIRE(fp32_to_bf16(std::bit_cast<float>(0x3f818000u)) == 0x3f82);  // tie, odd rounds up
  REQUIRE(fp32_to_bf16(std::bit_cast<float>(0x3f808001u)) == 0x3f81);
  REQUIRE(std::isnan(bf16_to_fp32(fp32_to_bf16(std::numeric_limits<float>::quiet_NaN()))));
  REQUIRE(bf16_to_fp32(0xc000) == -2.0f);
}
