// apr bench: prompt processing (pp N: N tokens in one forward pass) and text generation (tg N:
// N tokens one at a time) speeds of a language model, as llama-bench reports them: tok/s as the
// median of --repetitions runs, after --warmup runs that are not counted.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "cli.hpp"
#include "model_support.hpp"

namespace apr::cli {
namespace {

/// Median and sample standard deviation of `values`.
std::pair<double, double> median_and_std(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  const double median = n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  double mean = 0, squares = 0;
  for (double v : values) mean += v / static_cast<double>(n);
  for (double v : values) squares += (v - mean) * (v - mean);
  return {median, n > 1 ? std::sqrt(squares / static_cast<double>(n - 1)) : 0.0};
}

/// Seconds one run of a test takes: `prompt` tokens in one pass when `generate` is 0, else
/// `generate` single-token steps on a fresh sequence.
Result<double> time_run(const models::LanguageModel& model, const std::vector<int32_t>& tokens, size_t generate) {
  auto sequence = model.new_sequence(tokens.size());
  std::vector<float> logits(model.vocab_size());
  const auto start = std::chrono::steady_clock::now();
  if (generate == 0) {
    if (auto status = model.forward(*sequence, tokens, logits); !status) return std::move(status).error();
  } else {
    for (size_t i = 0; i < generate; ++i) {
      if (auto status = model.forward(*sequence, std::span(&tokens[i], 1), logits); !status) return std::move(status).error();
    }
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

void register_bench_commands(CLI::App& app, Registry& registry) {
  struct Flags : ModelFlags {
    size_t prompt = 128, generate = 32, repetitions = 5, warmup = 1;
    uint32_t seed = 42;
    bool json = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* bench = app.add_subcommand("bench", "Measure prompt processing (pp N) and generation (tg N) speed in tok/s, medians of repetitions");
  add_model_flags(bench, *flags);
  bench->add_option("-p,--n-prompt", flags->prompt, "prompt tokens of the pp test (0 skips it)");
  bench->add_option("-n,--n-gen", flags->generate, "generated tokens of the tg test (0 skips it)");
  bench->add_option("-r,--repetitions", flags->repetitions, "timed runs per test (the median is reported)")->check(CLI::PositiveNumber);
  bench->add_option("--warmup", flags->warmup, "untimed runs before each test");
  bench->add_option("--seed", flags->seed, "seed of the random token ids");
  bench->add_flag("--json", flags->json, "print JSON");
  registry.add(bench, [flags] {
    if (flags->prompt == 0 && flags->generate == 0) return report(make_error(ErrorCode::invalid_argument, "nothing to measure: -p and -n are both 0"));
    std::unique_ptr<ThreadPool> pool;
    auto loaded = load_model(*flags, pool);
    if (!loaded) return report(loaded.error());
    const auto& model = *loaded->model;
    if (std::max(flags->prompt, flags->generate) > model.max_context()) {
      return report(make_error(ErrorCode::invalid_argument, "{} tokens exceed the model's context of {}", std::max(flags->prompt, flags->generate), model.max_context()));
    }
    std::mt19937 random(flags->seed);
    std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(model.vocab_size() - 1));
    nlohmann::json tests = nlohmann::json::array();
    for (const auto& [name, count, generate] : {std::tuple{"pp", flags->prompt, size_t{0}}, std::tuple{"tg", flags->generate, flags->generate}}) {
      if (count == 0) continue;
      std::vector<int32_t> tokens(count);
      for (auto& token : tokens) token = pick(random);
      std::vector<double> speeds;
      Progress progress(fmt::format("{}{}", name, count), flags->warmup + flags->repetitions);
      for (size_t run = 0; run < flags->warmup + flags->repetitions; ++run) {
        auto seconds = time_run(model, tokens, generate);
        if (!seconds) return report(seconds.error());
        if (run >= flags->warmup) speeds.push_back(static_cast<double>(count) / std::max(*seconds, 1e-9));
        progress.update(run + 1);
      }
      progress.finish();
      const auto [median, deviation] = median_and_std(speeds);
      tests.push_back({{"test", fmt::format("{}{}", name, count)}, {"tokens", count}, {"tok_per_s", median}, {"std", deviation}, {"runs", speeds}});
    }
    const nlohmann::json out = {{"model", flags->model}, {"architecture", std::string(model.architecture())}, {"dtype", std::string(to_string(loaded->weight_dtype))},
                                {"threads", flags->threads}, {"repetitions", flags->repetitions}, {"tests", tests}};
    if (flags->json) {
      print_json(out);
      return int{kOk};
    }
    fmt::print("| {:40} | {:8} | {:7} | {:>20} |\n", "model", "dtype", "test", "t/s");
    fmt::print("| {:-<40} | {:-<8} | {:-<7} | {:->20} |\n", "", "", "", "");
    for (const auto& t : tests) {
      fmt::print("| {:40} | {:8} | {:7} | {:>20} |\n", flags->model.size() > 40 ? "..." + flags->model.substr(flags->model.size() - 37) : flags->model,
                 to_string(loaded->weight_dtype), t["test"].get<std::string>(), fmt::format("{:.2f} ± {:.2f}", t["tok_per_s"].get<double>(), t["std"].get<double>()));
    }
    return int{kOk};
  });
}

}  // namespace apr::cli
