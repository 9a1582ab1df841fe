// Norms, activations, softmax, RoPE and element-wise ops: SIMD against the Scalar twin and closed forms.
#include <catch2/catch.hpp>

#include <cmath>
#include <numeric>

#include "apr/simd/activation.hpp"
#include "apr/simd/elementwise.hpp"
#include "apr/simd/norm.hpp"
#include "apr/simd/rope.hpp"
#include "apr/simd/softmax.hpp"
#include "test_support.hpp"

using namespace apr;
using namespace apr::simd;

namespace {
constexpr float kTolerance = 2e-6f;  // relative; SIMD exp/erf/tanh are within a few ulp of libm

void require_close(const std::vector<float>& a, const std::vector<float>& b, float relative = kTolerance) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) REQUIRE(a[i] == Approx(b[i]).epsilon(relative).margin(1e-6));
}
}  // namespace

TEST_CASE("activations match their scalar twins and closed forms", "[ops]") {
  for (size_t n : {1u, 15u, 16u, 37u, 1000u}) {
    const auto x = test::random_floats(n, static_cast<uint32_t>(n), -8.0f, 8.0f);
    auto a = x, b = x;
    silu(a.data(), n);
    silu<Scalar>(b.data(), n);
    require_close(a, b);
    REQUIRE(b[0] == Approx(x[0] / (1.0f + std::exp(-x[0]))));

    a = x, b = x;
    gelu_erf(a.data(), n);
    gelu_erf<Scalar>(b.data(), n);
    require_close(a, b, 1e-5f);

    a = x, b = x;
    gelu_tanh(a.data(), n);
    gelu_tanh<Scalar>(b.data(), n);
    require_close(a, b, 1e-5f);

    a = x, b = x;
    const auto up = test::random_floats(n, 99);
    swiglu(a.data(), up.data(), n);
    swiglu<Scalar>(b.data(), up.data(), n);
    require_close(a, b);
  }
  std::vector<float> g{0.0f, 1.0f, -1.0f};
  gelu_erf<Scalar>(g.data(), 3);
  REQUIRE(g[0] == 0.0f);
  REQUIRE(g[1] == Approx(0.8413447f));
  REQUIRE(g[2] == Approx(-0.1586553f));
}

TEST_CASE("rmsnorm and layernorm", "[ops]") {
  for (size_t n : {7u, 64u, 896u}) {
    const auto x = test::random_floats(n, 3, -2.0f, 2.0f);
    const auto w = test::random_floats(n, 4, 0.5f, 1.5f);
    const auto bias = test::random_floats(n, 5);
    std::vector<float> a(n), b(n);
    rmsnorm(x.data(), w.data(), a.data(), n, 1e-6f);
    rmsnorm<Scalar>(x.data(), w.data(), b.data(), n, 1e-6f);
    require_close(a, b, 1e-5f);
    double ms = 0;
    for (float v : x) ms += static_cast<double>(v) * v;
    REQUIRE(b[0] == Approx(x[0] / std::sqrt(ms / n + 1e-6) * w[0]).epsilon(1e-5));

    layernorm(x.data(), w.data(), bias.data(), a.data(), n, 1e-5f);
    layernorm<Scalar>(x.data(), w.data(), bias.data(), b.data(), n, 1e-5f);
    require_close(a, b, 1e-5f);
    // with unit weight and no bias the output has mean 0 and variance ~1
    std::vector<float> ones(n, 1.0f);
    layernorm(x.data(), ones.data(), nullptr, a.data(), n, 0.0f);
    const double mean = std::accumulate(a.begin(), a.end(), 0.0) / n;
    REQUIRE(std::fabs(mean) < 1e-5);
  }
}

TEST_CASE("softmax sums to one, is shift invariant, handles -inf", "[ops]") {
  for (size_t n : {1u, 5u, 16u, 51865u}) {
    const auto x = test::random_floats(n, 8, -30.0f, 30.0f);
    auto a = x, b = x;
    softmax(a.data(), n);
    softmax<Scalar>(b.data(), n);
    require_close(a, b, 1e-5f);
    REQUIRE(std::accumulate(a.begin(), a.end(), 0.0) == Approx(1.0).epsilon(1e-5));
  }
  std::vector<float> masked{1.0f, -INFINITY, 1.0f};
  softmax(masked.data(), 3);
  REQUIRE(masked == std::vector<float>{0.5f, 0.0f, 0.5f});
}

TEST_CASE("rope rotates pairs by the given angles", "[ops]") {
  const size_t head_dim = 64;
  const auto x = test::random_floats(head_dim, 9);
  std::vector<float> cos(head_dim / 2), sin(head_dim / 2);
  for (size_t i = 0; i < head_dim / 2; ++i) {
    const float angle = 5.0f * std::pow(10000.0f, -2.0f * i / head_dim);
    cos[i] = std::cos(angle);
    sin[i] = std::sin(angle);
  }
  for (RopeStyle style : {RopeStyle::split_halves, RopeStyle::interleaved}) {
    auto a = x, b = x;
    rope(a.data(), cos.data(), sin.data(), head_dim, style);
    rope<Scalar>(b.data(), cos.data(), sin.data(), head_dim, style);
    require_close(a, b, 1e-6f);
    // rotation preserves each pair's norm
    const size_t i = 3;
    const size_t j = style == RopeStyle::split_halves ? i + head_dim / 2 : i;
    const size_t first = style == RopeStyle::split_halves ? i : 2 * i;
    const size_t second = style == RopeStyle::split_halves ? j : 2 * i + 1;
    REQUIRE(a[first] * a[first] + a[second] * a[second] ==
            Approx(x[first] * x[first] + x[second] * x[second]).epsilon(1e-5));
  }
  std::vector<float> v{1.0f, 0.0f};
  const float c = 0.0f, s = 1.0f;  // 90 degrees
  rope(v.data(), &c, &s, 2, RopeStyle::interleaved);
  REQUIRE(v[0] == Approx(0.0f).margin(1e-7));
  REQUIRE(v[1] == 1.0f);
}

TEST_CASE("element-wise ops", "[ops]") {
  const size_t n = 37;
  const auto a = test::random_floats(n, 1), b = test::random_floats(n, 2);
  std::vector<float> out(n);
  add(a.data(), b.data(), out.data(), n);
  for (size_t i = 0; i < n; ++i) REQUIRE(out[i] == a[i] + b[i]);
  mul(a.data(), b.data(), out.data(), n);
  for (size_t i = 0; i < n; ++i) REQUIRE(out[i] == a[i] * b[i]);
  out = a;
  scale(out.data(), 3.0f, n);
  for (size_t i = 0; i < n; ++i) REQUIRE(out[i] == a[i] * 3.0f);
  out = b;
  add_scaled(a.data(), 2.0f, out.data(), n);
  for (size_t i = 0; i < n; ++i) REQUIRE(out[i] == Approx(b[i] + 2.0f * a[i]));
  out = b;
  const float* rows[4] = {a.data(), b.data(), a.data(), b.data()};
  const float factors[4] = {0.5f, -1.0f, 2.0f, 0.25f};
  add_scaled4(rows, factors, out.data(), n);  // the vector body and the scalar tail
  for (size_t i = 0; i < n; ++i) REQUIRE(out[i] == Approx(b[i] + 2.5f * a[i] - 0.75f * b[i]).margin(1e-6));
  REQUIRE(dot_f32(a.data(), b.data(), n) == Approx(std::inner_product(a.begin(), a.end(), b.begin(), 0.0f)).margin(1e-5));
}
