// Statistics and logit metrics against known values (scipy / closed forms quoted in comments).
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "apr/eval/logit_metrics.hpp"
#include "apr/eval/statistics.hpp"

using namespace apr::eval;

TEST_CASE("Wilson interval matches published values", "[stats]") {
  // 8 of 10 at 95%: (0.4902, 0.9433) (Wilson 1927; e.g. statsmodels proportion_confint method='wilson')
  const auto i = wilson_interval(8, 10);
  REQUIRE(i.estimate == Approx(0.8));
  REQUIRE(i.low == Approx(0.4902).margin(1e-4));
  REQUIRE(i.high == Approx(0.9433).margin(1e-4));
  const auto all = wilson_interval(5, 5);
  REQUIRE(all.high == 1.0);
  REQUIRE(all.low == Approx(0.5655).margin(1e-4));
  REQUIRE(wilson_interval(0, 0).high == 1.0);
}

TEST_CASE("Student t quantiles and mean interval", "[stats]") {
  // scipy.stats.t.ppf(0.975, df): df=1 12.7062, df=4 2.7764, df=29 2.0452, df=1000 1.9623
  REQUIRE(student_t_quantile(0.975, 1) == Approx(12.7062).margin(1e-3));
  REQUIRE(student_t_quantile(0.975, 4) == Approx(2.7764).margin(1e-4));
  REQUIRE(student_t_quantile(0.975, 29) == Approx(2.0452).margin(1e-4));
  REQUIRE(student_t_quantile(0.975, 1000) == Approx(1.9623).margin(1e-4));
  REQUIRE(student_t_cdf(0.0, 7) == Approx(0.5));
  const std::vector<double> values{1, 2, 3, 4, 5};  // mean 3, sd 1.5811, half = 2.7764 * 0.7071 = 1.9632
  const auto i = mean_t_interval(values);
  REQUIRE(i.estimate == 3.0);
  REQUIRE(i.low == Approx(3.0 - 1.9632).margin(1e-3));
  REQUIRE(i.high == Approx(3.0 + 1.9632).margin(1e-3));
}

TEST_CASE("KL divergence and cosine similarity", "[metrics]") {
  const std::vector<float> p{0.0f, 0.0f};            // uniform
  const std::vector<float> q{std::log(3.0f), 0.0f};  // 0.75 / 0.25
  // KL(0.5,0.5 ‖ 0.75,0.25) = 0.5 ln(0.5/0.75) + 0.5 ln(0.5/0.25) = 0.143841
  REQUIRE(kl_divergence(p, q) == Approx(0.143841).margin(1e-6));
  REQUIRE(kl_divergence(q, q) == Approx(0.0).margin(1e-12));
  const std::vector<float> shifted{5.0f, 5.0f};  // same distribution as p
  REQUIRE(kl_divergence(p, shifted) == Approx(0.0).margin(1e-12));
  REQUIRE(cosine_similarity(std::vector<float>{1, 0}, std::vector<float>{0, 1}) == 0.0);
  REQUIRE(cosine_similarity(std::vector<float>{1, 2}, std::vector<float>{2, 4}) == Approx(1.0));
}

TEST_CASE("top-k overlap and near-tie agreement", "[metrics]") {
  const std::vector<float> a{5, 4, 3, 2.00f, 1.95f, 0};
  const std::vector<float> b{5, 4, 3, 1.95f, 2.00f, 0};
  REQUIRE(top_k_ids(a, 3) == std::vector<int32_t>{0, 1, 2});
  REQUIRE(top_k_overlap(a, b, 4) == Approx(0.75));
  REQUIRE(top_k_agree(a, b, 4, 0.1f));   // ids 3 and 4 swap within 0.05 of the boundary
  REQUIRE_FALSE(top_k_agree(a, b, 4, 0.01f));
  const std::vector<float> c{0, 4, 3, 2, 1.95f, 5};
  REQUIRE_FALSE(top_k_agree(a, c, 2, 0.1f));
}
