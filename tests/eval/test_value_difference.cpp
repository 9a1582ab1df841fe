// compare_values(): max/mean absolute difference, RMS, relative difference, NaN handling.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "apr/eval/value_difference.hpp"

using apr::eval::compare_values;

TEST_CASE("equal arrays have no difference") {
  const std::vector<float> a{1.0f, -2.0f, 3.5f};
  const auto d = compare_values(a, a);
  CHECK(d.max_abs == 0.0);
  CHECK(d.differing == 0);
  CHECK(d.relative == 0.0);
  CHECK(d.cosine == Approx(1.0));
}

TEST_CASE("statistics of a known difference") {
  const std::vector<float> a{1.0f, -4.0f, 2.0f, 0.0f};
  const std::vector<float> b{1.5f, -4.0f, 1.0f, 0.0f};  // differences 0.5, 0, 1, 0
  const auto d = compare_values(a, b);
  CHECK(d.max_abs == Approx(1.0));
  CHECK(d.worst_index == 2);
  CHECK(d.mean_abs == Approx(0.375));
  CHECK(d.rms == Approx(std::sqrt(1.25 / 4)));
  CHECK(d.relative == Approx(0.25));  // 1 / max|a| = 1 / 4
  CHECK(d.differing == 2);
}

TEST_CASE("NaN in the same place is equal, in one array only is a mismatch") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> a{nan, 1.0f, 2.0f};
  CHECK(compare_values(a, std::vector<float>{nan, 1.0f, 2.0f}).differing == 0);
  const auto d = compare_values(a, std::vector<float>{0.0f, 1.0f, nan});
  CHECK(d.nan_mismatch == 2);
  CHECK(d.max_abs == 0.0);  // the finite positions agree
}

TEST_CASE("a zero reference makes any difference infinitely relative") {
  const std::vector<float> zeros(3, 0.0f);
  CHECK(std::isinf(compare_values(zeros, std::vector<float>{0.0f, 1e-3f, 0.0f}).relative));
  CHECK(compare_values(zeros, zeros).relative == 0.0);
}
