/// @file statistics.hpp
/// @brief Confidence intervals: Wilson score (proportions), Student t (means), and the t quantile.
#pragma once

#include <cmath>
#include <cstddef>
#include <limits>
#include <span>

namespace apr::eval {

/// A closed interval [low, high] around an estimate.
struct Interval {
  double estimate = 0.0;  ///< point estimate
  double low = 0.0;       ///< lower bound
  double high = 0.0;      ///< upper bound
};

/// z such that P(|Z| ≤ z) = 0.95 for a standard normal Z.
inline constexpr double kZ95 = 1.959963984540054;

/// Wilson score interval of a proportion `successes / trials` at 95% (estimate = the raw proportion).
inline Interval wilson_interval(size_t successes, size_t trials, double z = kZ95) {
  if (trials == 0) return {0.0, 0.0, 1.0};
  const double n = static_cast<double>(trials);
  const double p = static_cast<double>(successes) / n;
  const double z2 = z * z;
  const double center = (p + z2 / (2 * n)) / (1 + z2 / n);
  const double half = z / (1 + z2 / n) * std::sqrt(p * (1 - p) / n + z2 / (4 * n * n));
  return {p, std::max(0.0, center - half), std::min(1.0, center + half)};
}

/// Regularised incomplete beta function I_x(a, b) (Lentz's continued fraction).
inline double incomplete_beta(double a, double b, double x) {
  if (x <= 0.0) return 0.0;
  if (x >= 1.0) return 1.0;
  if (x > (a + 1) / (a + b + 2)) return 1.0 - incomplete_beta(b, a, 1.0 - x);
  const double log_front = std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) + a * std::log(x) + b * std::log1p(-x);
  constexpr double kTiny = 1e-300;
  double c = 1.0, d = 1.0 - (a + b) * x / (a + 1);
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1.0 / d;
  double fraction = d;
  for (int m = 1; m <= 300; ++m) {
    const double m2 = 2.0 * m;
    double numerator = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
    d = 1.0 + numerator * d;
    c = 1.0 + numerator / c;
    d = 1.0 / (std::fabs(d) < kTiny ? kTiny : d);
    c = std::fabs(c) < kTiny ? kTiny : c;
    fraction *= d * c;
    numerator = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
    d = 1.0 + numerator * d;
    c = 1.0 + numerator / c;
    d = 1.0 / (std::fabs(d) < kTiny ? kTiny : d);
    c = std::fabs(c) < kTiny ? kTiny : c;
    const double step = d * c;
    fraction *= step;
    if (std::fabs(step - 1.0) < 1e-15) break;
  }
  return std::exp(log_front) * fraction / a;
}

/// P(T ≤ t) for Student's t with `dof` degrees of freedom.
inline double student_t_cdf(double t, double dof) {
  const double x = dof / (dof + t * t);
  const double tail = 0.5 * incomplete_beta(dof / 2, 0.5, x);
  return t >= 0 ? 1.0 - tail : tail;
}

/// t such that P(T ≤ t) = p for Student's t with `dof` degrees of freedom (bisection).
inline double student_t_quantile(double p, double dof) {
  double low = -1e3, high = 1e3;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (low + high);
    (student_t_cdf(mid, dof) < p ? low : high) = mid;
  }
  return 0.5 * (low + high);
}

/// Mean of `values` with its 95% Student-t confidence interval (a single value gives ±infinity).
inline Interval mean_t_interval(std::span<const double> values, double confidence = 0.95) {
  const size_t n = values.size();
  if (n == 0) return {};
  double sum = 0.0;
  for (double v : values) sum += v;
  const double mean = sum / static_cast<double>(n);
  if (n == 1) return {mean, -std::numeric_limits<double>::infinity(), std::numeric_limits<double>::infinity()};
  double squares = 0.0;
  for (double v : values) squares += (v - mean) * (v - mean);
  const double sd = std::sqrt(squares / static_cast<double>(n - 1));
  const double half = student_t_quantile(0.5 + confidence / 2, static_cast<double>(n - 1)) * sd / std::sqrt(static_cast<double>(n));
  return {mean, mean - half, mean + half};
}

}  // namespace apr::eval
