/// @file golden.hpp
/// @brief Golden prompts: a JSON suite of prompts with expected regexes, each run N times with
/// different seeds; pass rates with Wilson intervals, latency and speed with t intervals.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apr/core/result.hpp"
#include "apr/eval/statistics.hpp"
#include "apr/models/language_model.hpp"
#include "apr/runtime/generator.hpp"

namespace apr::eval {

/// One golden prompt.
struct GoldenCase {
  std::string name;         ///< label in reports
  std::string prompt;       ///< the user text (chat) or the raw prompt (completion)
  bool chat = true;         ///< render through the chat template
  std::string expect;       ///< ECMAScript regex the output must contain a match of
  size_t max_tokens = 64;   ///< generation budget
};

/// A suite: cases plus how often and how to sample them.
struct GoldenSuite {
  std::vector<GoldenCase> cases;  ///< the prompts
  size_t runs = 5;                ///< runs per case, seeds seed, seed+1, ...
  uint64_t seed = 1;              ///< first seed
  float temperature = 0.7f;       ///< sampling temperature (0 = greedy)
};

/// Reads a suite from JSON: {"runs": 5, "seed": 1, "temperature": 0.7, "cases": [{"name", "prompt",
/// "mode": "chat"|"completion", "expect", "max_tokens"}]}; `source` names it in errors.
inline Result<GoldenSuite> parse_golden_suite(std::string_view text, std::string_view source) {
  const auto json = nlohmann::json::parse(text, nullptr, false);
  if (json.is_discarded() || !json.is_object()) return make_error(ErrorCode::format, "{}: not a JSON object", source);
  GoldenSuite suite;
  if (json.contains("runs")) {
    if (!json["runs"].is_number_unsigned() || json["runs"].get<size_t>() == 0 || json["runs"].get<size_t>() > 1000) {
      return make_error(ErrorCode::format, "{}: 'runs' must be an integer from 1 to 1000", source);
    }
    suite.runs = json["runs"].get<size_t>();
  }
  if (json.contains("seed") && json["seed"].is_number_integer()) suite.seed = json["seed"].get<uint64_t>();
  if (json.contains("temperature") && json["temperature"].is_number()) suite.temperature = json["temperature"].get<float>();
  if (!json.contains("cases") || !json["cases"].is_array() || json["cases"].empty()) {
    return make_error(ErrorCode::format, "{}: 'cases' must be a non-empty array", source);
  }
  for (size_t i = 0; i < json["cases"].size(); ++i) {
    const auto& item = json["cases"][i];
    GoldenCase golden;
    if (!item.is_object() || !item.contains("prompt") || !item["prompt"].is_string()) {
      return make_error(ErrorCode::format, "{}: cases[{}].prompt must be a string", source, i);
    }
    golden.prompt = item["prompt"].get<std::string>();
    golden.name = item.value("name", fmt::format("case {}", i));
    const std::string mode = item.value("mode", "chat");
    if (mode != "chat" && mode != "completion") return make_error(ErrorCode::format, "{}: cases[{}].mode must be chat or completion", source, i);
    golden.chat = mode == "chat";
    if (!item.contains("expect") || !item["expect"].is_string()) return make_error(ErrorCode::format, "{}: cases[{}].expect must be a regex string", source, i);
    golden.expect = item["expect"].get<std::string>();
    try {
      std::regex check(golden.expect);
    } catch (const std::regex_error& error) {
      return make_error(ErrorCode::format, "{}: cases[{}].expect is not a valid regex: {}", source, i, error.what());
    }
    if (item.contains("max_tokens")) {
      if (!item["max_tokens"].is_number_unsigned() || item["max_tokens"].get<size_t>() == 0) {
        return make_error(ErrorCode::format, "{}: cases[{}].max_tokens must be a positive integer", source, i);
      }
      golden.max_tokens = item["max_tokens"].get<size_t>();
    }
    suite.cases.push_back(std::move(golden));
  }
  return suite;
}

/// Results of one case.
struct GoldenCaseResult {
  std::string name;             ///< the case's name
  size_t passed = 0;            ///< runs whose output matched
  size_t runs = 0;              ///< runs made
  Interval pass_rate;           ///< with 95% Wilson interval
  std::vector<std::string> outputs;  ///< every run's text
};

/// Results of a whole suite.
struct GoldenReport {
  std::vector<GoldenCaseResult> cases;  ///< per case
  Interval pass_rate;                   ///< all runs, 95% Wilson interval
  Interval latency_seconds;             ///< per run, mean with 95% t interval
  Interval tokens_per_second;           ///< per run, mean with 95% t interval

  /// The report as JSON.
  [[nodiscard]] nlohmann::json to_json() const {
    auto interval = [](const Interval& i) { return nlohmann::json{{"mean", i.estimate}, {"low", i.low}, {"high", i.high}}; };
    nlohmann::json out = {{"pass_rate", interval(pass_rate)}, {"latency_seconds", interval(latency_seconds)},
                          {"tokens_per_second", interval(tokens_per_second)}, {"cases", nlohmann::json::array()}};
    for (const auto& c : cases) {
      out["cases"].push_back({{"name", c.name}, {"passed", c.passed}, {"runs", c.runs}, {"pass_rate", interval(c.pass_rate)}, {"outputs", c.outputs}});
    }
    return out;
  }
};

/// Turns a case into prompt token ids (chat template or plain encoding), supplied by the caller.
using GoldenEncoder = std::function<Result<std::vector<int32_t>>(const GoldenCase&)>;

/// Runs every case suite.runs times with seeds suite.seed + run; `new_token_text` makes a fresh
/// incremental decoder per run, and `stop_ids` end a run (e.g. end-of-turn).
inline Result<GoldenReport> run_golden_suite(const models::LanguageModel& model, const GoldenSuite& suite,
                                             const GoldenEncoder& encode,
                                             const std::function<runtime::TokenText()>& new_token_text,
                                             const std::vector<int32_t>& stop_ids) {
  GoldenReport report;
  std::vector<double> latencies, speeds;
  size_t total_passed = 0, total_runs = 0;
  for (const auto& golden : suite.cases) {
    auto prompt = encode(golden);
    if (!prompt) return std::move(prompt).error();
    const std::regex expected(golden.expect);
    GoldenCaseResult result{golden.name, 0, 0, {}, {}};
    for (size_t run = 0; run < suite.runs; ++run) {
      runtime::GenerationOptions options;
      options.max_tokens = golden.max_tokens;
      options.sampling.temperature = suite.temperature;
      options.sampling.seed = suite.seed + run;
      options.stop_ids = stop_ids;
      auto sequence = model.new_sequence(prompt->size() + golden.max_tokens + 1);
      const auto start = std::chrono::steady_clock::now();
      auto generated = runtime::generate(model, *sequence, *prompt, options, new_token_text());
      if (!generated) return std::move(generated).error();
      latencies.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      speeds.push_back(generated->tokens_per_second());
      const bool passed = std::regex_search(generated->text, expected);
      result.passed += passed ? 1 : 0;
      result.outputs.push_back(generated->text);
    }
    result.runs = suite.runs;
    result.pass_rate = wilson_interval(result.passed, result.runs);
    total_passed += result.passed;
    total_runs += result.runs;
    report.cases.push_back(std::move(result));
  }
  report.pass_rate = wilson_interval(total_passed, total_runs);
  report.latency_seconds = mean_t_interval(latencies);
  report.tokens_per_second = mean_t_interval(speeds);
  return report;
}

}  // namespace apr::eval
