// bench/qwen2: prefill (pp) and decode (tg) tokens/s of Qwen2<W> at Qwen2-0.5B dims with random
// weights (the very ones synth_qwen2_gguf exports for llama.cpp), per weight dtype, plus the
// decode bound of the measured memory bandwidth, and with --clients N the aggregate decode rate of
// N concurrent generations, each calling forward() alone vs merged by runtime::BatchingModel.
// Prints JSON.
// usage: bench_qwen2 [--dtypes f32,f16,q8_0,q4_0] [--pp 128,512] [--tg 128] [--runs 3] [--threads 2] [--clients 4]
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/models/qwen2.hpp"
#include "apr/models/synth.hpp"
#include "apr/runtime/batching_model.hpp"
#include "bench_support.hpp"
#include "qwen2_05b.hpp"

using namespace apr;
using namespace apr::models;
using nlohmann::json;

namespace {

std::vector<size_t> parse_list(const std::string& text) {
  std::vector<size_t> out;
  size_t start = 0;
  while (start < text.size()) {
    const size_t comma = text.find(',', start);
    out.push_back(std::stoul(text.substr(start, comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

/// Aggregate tokens/s of `clients` threads each decoding `tg` tokens on its own sequence of `model`.
double concurrent_decode_rate(const LanguageModel& model, size_t clients, size_t tg) {
  std::vector<std::thread> threads;
  const auto start = std::chrono::steady_clock::now();
  for (size_t c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto sequence = model.new_sequence(tg + 1);
      std::vector<float> logits(model.vocab_size());
      auto token = static_cast<int32_t>(c + 1);
      for (size_t i = 0; i < tg; ++i) {
        (void)model.forward(*sequence, std::span(&token, 1), logits);
        token = static_cast<int32_t>((token * 31 + 7) % static_cast<int32_t>(model.vocab_size()));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  return static_cast<double>(clients * tg) / bench::seconds_since(start);
}

template <WeightDtype W>
json bench_dtype(const Qwen2Config& config, const std::vector<size_t>& pp, size_t tg, int runs, ThreadPool& pool,
                 double bandwidth, size_t clients) {
  auto file = synthesize_qwen2(config, W::dtype, bench::kQwen2WeightSeed);
  if (!file) throw std::runtime_error(file.error().message);
  auto model = Qwen2<W>::load(*file, config, {}, {.pool = &pool});
  if (!model) throw std::runtime_error(model.error().message);
  double weight_bytes = 0;
  for (const auto& tensor : (*file)->tensors()) weight_bytes += static_cast<double>(tensor.bytes.size());
  // decode reads every matrix once per token; the embedding table only one row (but the tied head all of it)
  json result = {{"dtype", std::string(to_string(W::dtype))}, {"weight_bytes", weight_bytes}};
  std::vector<float> logits(config.vocab_size);
  for (size_t n : pp) {
    std::vector<int32_t> ids(n);
    for (size_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((i * 7919) % config.vocab_size);
    const double s = bench::median_seconds([&] {
      auto sequence = (*model)->new_sequence(n);
      (void)(*model)->forward(*sequence, ids, logits);
    }, runs);
    result[fmt::format("pp{}_tok_per_s", n)] = static_cast<double>(n) / s;
  }
  std::vector<double> rates;
  for (int r = 0; r < runs; ++r) {
    auto sequence = (*model)->new_sequence(tg + 1);
    int32_t token = 1;
    (void)(*model)->forward(*sequence, std::span(&token, 1), logits);
    const auto start = std::chrono::steady_clock::now();
    for (size_t i = 0; i < tg; ++i) {
      token = static_cast<int32_t>((token * 31 + 7) % config.vocab_size);
      (void)(*model)->forward(*sequence, std::span(&token, 1), logits);
    }
    rates.push_back(static_cast<double>(tg) / bench::seconds_since(start));
  }
  const double tg_rate = bench::median(rates);
  result[fmt::format("tg{}_tok_per_s", tg)] = tg_rate;
  const double bound = bandwidth * 1e9 / weight_bytes;
  result["decode_bound_tok_per_s"] = bound;
  result["decode_fraction_of_bound"] = tg_rate / bound;
  if (clients > 1) {
    std::shared_ptr<const LanguageModel> shared = std::move(*model);
    runtime::BatchingModel batching(shared);
    std::vector<double> alone, batched;
    for (int r = 0; r < runs; ++r) {
      alone.push_back(concurrent_decode_rate(*shared, clients, tg));
      batched.push_back(concurrent_decode_rate(batching, clients, tg));
    }
    const auto [steps, rows] = batching.steps_and_rows();
    result["clients"] = clients;
    result["concurrent_unbatched_tok_per_s"] = bench::median(alone);
    result["concurrent_batched_tok_per_s"] = bench::median(batched);
    result["batched_over_unbatched"] = bench::median(batched) / bench::median(alone);
    result["mean_batch"] = steps == 0 ? 0.0 : static_cast<double>(rows) / static_cast<double>(steps);
  }
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> dtypes{"f32", "f16", "q8_0", "q4_0"};
  std::vector<size_t> pp{128, 512};
  size_t tg = 128;
  int runs = 3;
  size_t threads = 2;
  size_t clients = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--dtypes") {
      dtypes = bench::split_list(value);
    } else if (flag == "--pp") {
      pp = parse_list(value);
    } else if (flag == "--tg") {
      tg = std::stoul(value);
    } else if (flag == "--runs") {
      runs = std::stoi(value);
    } else if (flag == "--threads") {
      threads = std::stoul(value);
    } else if (flag == "--clients") {
      clients = std::stoul(value);
    }
  }
  ThreadPool pool(threads);
  const double bandwidth = bench::copy_bandwidth_gbs(pool);
  const auto config = bench::qwen2_05b();
  json report = {{"model", "qwen2-0.5b dims, random weights"}, {"threads", threads}, {"copy_gb_per_s", bandwidth},
                 {"results", json::array()}};
  for (const auto& name : dtypes) {
    const auto dtype = parse_dtype(name);
    if (!dtype) {
      fmt::print(stderr, "unknown dtype {}\n", name);
      return 2;
    }
    (void)visit_dtype(*dtype, [&](auto tag) -> Result<void> {
      report["results"].push_back(bench_dtype<decltype(tag)>(config, pp, tg, runs, pool, bandwidth, clients));
      fmt::print(stderr, "{}\n", report["results"].back().dump());
      return ok();
    });
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  report["peak_rss_mb"] = static_cast<double>(usage.ru_maxrss) / 1024.0;
  std::puts(report.dump(1).c_str());
  return 0;
}
