// Shared by the benchmarks: timing with medians, machine roofline probes (copy bandwidth, FMA
// peak), and the comma-separated lists of their flags.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include <xsimd/xsimd.hpp>

#include "apr/core/aligned_buffer.hpp"
#include "apr/core/thread_pool.hpp"

namespace apr::bench {

/// Seconds from `start` to now.
inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// The median of `values` (the upper one of the middle two for an even count); `values` is not empty.
inline double median(std::vector<double> values) {
  std::nth_element(values.begin(), values.begin() + static_cast<long>(values.size() / 2), values.end());
  return values[values.size() / 2];
}

/// Median wall time in seconds of `runs` calls of `f` after one warm-up call.
template <class F>
double median_seconds(F&& f, int runs) {
  f();
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    f();
    times.push_back(seconds_since(start));
  }
  return median(std::move(times));
}

/// STREAM-style copy bandwidth in GB/s (bytes read + written) over 2 × 256 MiB with `pool`.
inline double copy_bandwidth_gbs(ThreadPool& pool) {
  const size_t n = size_t{256} << 20 >> 2;
  AlignedArray<float> a(n), b(n);
  for (size_t i = 0; i < n; ++i) a[i] = static_cast<float>(i);
  const double seconds = median_seconds(
      [&] {
        pool.parallel_for(n, [&](size_t begin, size_t end) {
          using Batch = xsimd::batch<float>;
          for (size_t i = begin; i < end; i += Batch::size) Batch::load_aligned(&a[i]).store_aligned(&b[i]);
        }, 1024);
      },
      7);
  return 2.0 * static_cast<double>(n * sizeof(float)) / seconds / 1e9;
}

/// FP32 FMA peak in GFLOP/s with `pool`: independent register-resident FMA chains.
inline double fma_peak_gflops(ThreadPool& pool) {
  using Batch = xsimd::batch<float>;
  constexpr int kChains = 12;
  constexpr long kIterations = 20'000'000;
  std::vector<float> sink(pool.size());
  const double seconds = median_seconds(
      [&] {
        pool.run([&](size_t index, size_t) {
          Batch acc[kChains];
          for (int c = 0; c < kChains; ++c) acc[c] = Batch(static_cast<float>(c) * 1e-3f);
          const Batch m(0.999999f), add(1e-7f);
          for (long i = 0; i < kIterations; ++i) {
#pragma GCC unroll 12
            for (int c = 0; c < kChains; ++c) acc[c] = xsimd::fma(acc[c], m, add);
          }
          Batch total(0.0f);
          for (int c = 0; c < kChains; ++c) total += acc[c];
          sink[index] = xsimd::hadd(total);
        });
      },
      3);
  return 2.0 * Batch::size * kChains * static_cast<double>(kIterations) * static_cast<double>(pool.size()) / seconds / 1e9;
}

/// The items of a comma-separated flag value ("f16,q8_0" → {"f16", "q8_0"}).
inline std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    out.push_back(text.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace apr::bench
