// bench/qwen2_moe: routing time (softmax, top-k and grouping by expert) for a batch, and prefill
// (pp) / decode (tg) tokens/s of Qwen2-MoE with random weights shaped like Qwen1.5-MoE-A2.7B
// (60 experts, top-4, shared expert 4× an expert's width, heads of 128, its vocabulary) with the
// widths halved and 6 layers instead of 24, so the Q8_0 model is about 1 GB. Prints JSON.
// usage: bench_qwen2_moe [--dtypes q8_0,q4_0] [--pp 128,512] [--tg 64] [--runs 3] [--threads 2]
//                        [--route-experts 8] [--route-top-k 2] [--route-tokens 512]
//        bench_qwen2_moe --write-gguf DIR [--dtypes q8_0,q4_0]   (the very weights it times, as
//        llama.cpp qwen2moe GGUF files DIR/apr-qwen2moe-<dtype>.gguf, for bench/peers/llama_moe.sh)
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/models/qwen2.hpp"
#include "apr/models/qwen2_gguf.hpp"
#include "apr/models/synth.hpp"
#include "apr/nn/expert_groups.hpp"
#include "apr/nn/moe_router.hpp"
#include "bench_support.hpp"
#include "qwen2_05b.hpp"
#include "stand_in_tokenizer.hpp"

using namespace apr;
using namespace apr::models;
using nlohmann::json;

namespace {

/// Qwen1.5-MoE-A2.7B (hidden 2048, 16 heads of 128, 60 experts of width 1408, top-4, shared 5632,
/// 24 layers) with hidden and widths halved and 6 layers: 1.0 B parameters, 0.2 B active per token.
Qwen2Config qwen15_moe_scaled() {
  Qwen2Config c = bench::qwen2_05b();
  c.hidden_size = 1024;
  c.num_attention_heads = 8;
  c.num_key_value_heads = 8;
  c.head_dim = 128;
  c.num_hidden_layers = 6;
  c.intermediate_size = 2816;
  c.num_experts = 60;
  c.num_experts_per_tok = 4;
  c.moe_intermediate_size = 704;
  c.shared_expert_intermediate_size = 2816;
  return c;
}

/// Median µs to route `tokens` tokens among `experts` (softmax, top-k, statistics, grouping).
json bench_routing(size_t experts, size_t top_k, size_t tokens, int runs) {
  std::mt19937 rng(1);
  std::normal_distribution<float> normal;
  std::vector<float> logits(tokens * experts), probabilities(tokens * experts), weights(tokens * top_k);
  std::vector<int32_t> ids(tokens * top_k);
  for (float& v : logits) v = normal(rng);
  nn::ExpertGroups groups;
  nn::RouterStatistics statistics(experts, top_k);
  const double s = bench::median_seconds([&] {
    nn::route_tokens(logits.data(), tokens, experts, top_k, false, probabilities.data(), ids.data(), weights.data());
    statistics.add(probabilities.data(), ids.data(), tokens);
    groups.build(ids.data(), weights.data(), tokens, top_k, experts);
  }, runs);
  return {{"experts", experts}, {"top_k", top_k}, {"tokens", tokens}, {"batch_us", s * 1e6}, {"us_per_token", s * 1e6 / static_cast<double>(tokens)}};
}

template <WeightDtype W>
json bench_dtype(const Qwen2Config& config, const std::vector<size_t>& pp, size_t tg, int runs, ThreadPool& pool) {
  auto file = synthesize_qwen2(config, W::dtype, bench::kQwen2WeightSeed);
  if (!file) throw std::runtime_error(file.error().message);
  auto model = Qwen2Moe<W>::load(*file, config, {}, {.pool = &pool});
  if (!model) throw std::runtime_error(model.error().message);
  double weight_bytes = 0, active_bytes = 0;
  for (const auto& tensor : (*file)->tensors()) {
    weight_bytes += static_cast<double>(tensor.bytes.size());
    // a decoded token reads the top-k of the routed experts, everything else once
    const bool routed = tensor.name.find(".mlp.experts.") != std::string_view::npos;
    active_bytes += static_cast<double>(tensor.bytes.size()) * (routed ? static_cast<double>(config.num_experts_per_tok) / config.num_experts : 1.0);
  }
  json result = {{"dtype", std::string(to_string(W::dtype))}, {"weight_bytes", weight_bytes}, {"active_bytes_per_token", active_bytes}};
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
  result[fmt::format("tg{}_tok_per_s", tg)] = bench::median(rates);
  result["tokens_per_expert"] = (*model)->expert_statistics()["tokens_per_expert"];
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> dtypes{"q8_0", "q4_0"};
  std::vector<size_t> pp{128, 512};
  size_t tg = 64, threads = 2, route_experts = 8, route_top_k = 2, route_tokens = 512;
  int runs = 3;
  std::string gguf_dir;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--dtypes") dtypes = bench::split_list(value);
    else if (flag == "--write-gguf") gguf_dir = value;
    else if (flag == "--pp") {
      pp.clear();
      for (const auto& n : bench::split_list(value)) pp.push_back(std::stoul(n));
    } else if (flag == "--tg") tg = std::stoul(value);
    else if (flag == "--runs") runs = std::stoi(value);
    else if (flag == "--threads") threads = std::stoul(value);
    else if (flag == "--route-experts") route_experts = std::stoul(value);
    else if (flag == "--route-top-k") route_top_k = std::stoul(value);
    else if (flag == "--route-tokens") route_tokens = std::stoul(value);
  }
  ThreadPool pool(threads);
  const auto config = qwen15_moe_scaled();
  if (!gguf_dir.empty()) {
    for (const auto& name : dtypes) {
      const auto dtype = parse_dtype(name);
      auto file = dtype ? synthesize_qwen2(config, *dtype, bench::kQwen2WeightSeed) : Result<std::shared_ptr<format::MemoryTensorFile>>(
                                                                                         make_error(ErrorCode::invalid_argument, "unknown dtype {}", name));
      const std::string path = fmt::format("{}/apr-qwen2moe-{}.gguf", gguf_dir, name);
      auto written = file ? write_qwen2_gguf(**file, config, path, *dtype, "apr-qwen2moe-bench", bench::stand_in_tokenizer(config.vocab_size)) : Result<void>(file.error());
      if (!written) {
        fmt::print(stderr, "{}\n", written.error().message);
        return 1;
      }
      fmt::print(stderr, "wrote {}\n", path);
    }
    return 0;
  }
  json report = {{"model", "Qwen1.5-MoE-A2.7B shape, widths halved, 6 layers, random weights"}, {"threads", threads},
                 {"routing", bench_routing(route_experts, route_top_k, route_tokens, std::max(runs, 10))}, {"results", json::array()}};
  fmt::print(stderr, "{}\n", report["routing"].dump());
  for (const auto& name : dtypes) {
    const auto dtype = parse_dtype(name);
    if (!dtype) {
      fmt::print(stderr, "unknown dtype {}\n", name);
      return 2;
    }
    (void)visit_dtype(*dtype, [&](auto tag) -> Result<void> {
      report["results"].push_back(bench_dtype<decltype(tag)>(config, pp, tg, runs, pool));
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
