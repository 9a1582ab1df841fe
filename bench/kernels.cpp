// bench/kernels: gemv GB/s and gemm GFLOP/s per weight dtype at Qwen2-0.5B shapes, 1 and 2 threads,
// each with its fraction of the memory bandwidth and FP32 peak measured in the same run. Prints JSON.
#include <cstdio>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/core/quantize.hpp"
#include "apr/simd/gemm.hpp"
#include "apr/simd/gemm_int8.hpp"
#include "apr/simd/gemv.hpp"
#include "bench_support.hpp"

using namespace apr;
using nlohmann::json;

namespace {

struct MatrixShape {
  size_t rows;
  size_t cols;
};

constexpr MatrixShape kShapes[] = {{896, 896}, {4864, 896}, {896, 4864}, {151936, 896}};
constexpr size_t kPrefillTokens = 128;
constexpr size_t kInt8PrefillTokens[] = {128, 512};

template <WeightDtype W>
std::vector<typename W::Block> random_weights(size_t rows, size_t cols) {
  std::vector<float> row(cols);
  std::vector<typename W::Block> blocks(rows * cols / W::block_size);
  uint32_t state = 12345;
  for (size_t r = 0; r < rows; ++r) {
    for (auto& v : row) {
      state = state * 1664525u + 1013904223u;
      v = static_cast<float>(state >> 8) / 16777216.0f - 0.5f;
    }
    quantize_row<W>(row.data(), blocks.data() + r * cols / W::block_size, cols);
  }
  return blocks;
}

template <WeightDtype W>
void bench_dtype(json& results, ThreadPool& pool, double bandwidth, double peak, bool quick) {
  for (const MatrixShape shape : kShapes) {
    if (quick && shape.rows > 10000) continue;
    const auto w = random_weights<W>(shape.rows, shape.cols);
    const double weight_bytes = static_cast<double>(w.size() * sizeof(typename W::Block));
    std::vector<float> x(shape.cols * kPrefillTokens, 0.25f);
    std::vector<float> y(shape.rows * kPrefillTokens);
    const int runs = shape.rows > 10000 ? 9 : 51;

    const double gemv_s = bench::median_seconds([&] { simd::gemv<W>(w.data(), x.data(), y.data(), shape.rows, shape.cols, pool); }, runs);
    const double gemv_gbs = weight_bytes / gemv_s / 1e9;
    json entry = {{"kernel", "gemv"}, {"dtype", std::string(to_string(W::dtype))}, {"rows", shape.rows},
                  {"cols", shape.cols}, {"threads", pool.size()}, {"ms", gemv_s * 1e3}, {"gb_per_s", gemv_gbs},
                  {"fraction_of_bandwidth", gemv_gbs / bandwidth}};
    results.push_back(entry);

    if constexpr (simd::Int8DotWeight<W>) {
      simd::QuantizedActivations q;
      q.quantize(x.data(), kPrefillTokens, shape.cols);
      const double int8_s = bench::median_seconds([&] { simd::gemv_int8<W>(w.data(), q, 0, y.data(), shape.rows, pool); }, runs);
      const double int8_gbs = weight_bytes / int8_s / 1e9;
      results.push_back({{"kernel", "gemv_int8"}, {"dtype", std::string(to_string(W::dtype))}, {"rows", shape.rows},
                         {"cols", shape.cols}, {"threads", pool.size()}, {"ms", int8_s * 1e3}, {"gb_per_s", int8_gbs},
                         {"fraction_of_bandwidth", int8_gbs / bandwidth}});
      for (const size_t tokens : kInt8PrefillTokens) {
        if (shape.rows > 10000) break;
        std::vector<float> xs(shape.cols * tokens, 0.25f), ys(shape.rows * tokens);
        simd::QuantizedActivations qs;
        qs.quantize(xs.data(), tokens, shape.cols);
        const double g_s = bench::median_seconds([&] { simd::gemm_int8<W>(w.data(), qs, ys.data(), shape.rows, pool); }, 5);
        const double gops = 2.0 * static_cast<double>(shape.rows * shape.cols * tokens) / g_s / 1e9;
        results.push_back({{"kernel", "gemm_int8"}, {"dtype", std::string(to_string(W::dtype))}, {"rows", shape.rows},
                           {"cols", shape.cols}, {"tokens", tokens}, {"threads", pool.size()},
                           {"ms", g_s * 1e3}, {"gop_per_s", gops}});
      }
    }
    if (shape.rows > 10000) continue;
    const double gemm_s = bench::median_seconds(
        [&] { simd::gemm<W>(w.data(), x.data(), y.data(), shape.rows, shape.cols, kPrefillTokens, pool); }, 5);
    const double gflops = 2.0 * static_cast<double>(shape.rows * shape.cols * kPrefillTokens) / gemm_s / 1e9;
    results.push_back({{"kernel", "gemm"}, {"dtype", std::string(to_string(W::dtype))}, {"rows", shape.rows},
                       {"cols", shape.cols}, {"tokens", kPrefillTokens}, {"threads", pool.size()}, {"ms", gemm_s * 1e3},
                       {"gflop_per_s", gflops}, {"fraction_of_peak", gflops / peak}});
  }
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  json report;
  report["results"] = json::array();
  for (size_t threads : {size_t{1}, size_t{2}}) {
    ThreadPool pool(threads);
    const double bandwidth = bench::copy_bandwidth_gbs(pool);
    const double peak = bench::fma_peak_gflops(pool);
    report["machine"][std::to_string(threads)] = {{"copy_gb_per_s", bandwidth}, {"fma_gflop_per_s", peak}};
    fmt::print(stderr, "threads {}: copy {:.1f} GB/s, FMA peak {:.0f} GFLOP/s\n", threads, bandwidth, peak);
    bench_dtype<F32>(report["results"], pool, bandwidth, peak, quick);
    bench_dtype<F16>(report["results"], pool, bandwidth, peak, quick);
    bench_dtype<BF16>(report["results"], pool, bandwidth, peak, quick);
    bench_dtype<Q8_0>(report["results"], pool, bandwidth, peak, quick);
    bench_dtype<Q4_0>(report["results"], pool, bandwidth, peak, quick);
  }
  std::puts(report.dump(1).c_str());
  return 0;
}
