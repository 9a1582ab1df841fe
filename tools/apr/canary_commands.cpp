// apr canary create / check: a language model's outputs for fixed token inputs (top logits of the
// next token and a short greedy continuation) recorded in a JSON file, then checked against a
// model later (after a conversion, a new build, another machine): exit 1 when they differ.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "apr/eval/logit_metrics.hpp"
#include "apr/format/apr_writer.hpp"
#include "cli.hpp"
#include "model_support.hpp"

namespace apr::cli {
namespace {

/// What a model produces for one input.
struct CanaryOutput {
  std::vector<int32_t> top_ids;
  std::vector<float> logits;      ///< full next-token logits
  std::vector<int32_t> greedy;    ///< argmax continuation
};

/// Runs `input` through `model`: next-token logits, then `steps` greedy tokens.
Result<CanaryOutput> run_case(const models::LanguageModel& model, const std::vector<int32_t>& input, size_t top_k, size_t steps) {
  for (int32_t id : input) {
    if (id < 0 || static_cast<size_t>(id) >= model.vocab_size()) {
      return make_error(ErrorCode::invalid_argument, "input id {} is outside the vocabulary of {}", id, model.vocab_size());
    }
  }
  CanaryOutput out;
  auto sequence = model.new_sequence(input.size() + steps);
  out.logits.resize(model.vocab_size());
  if (auto status = model.forward(*sequence, input, out.logits); !status) return std::move(status).error();
  out.top_ids = eval::top_k_ids(out.logits, top_k);
  std::vector<float> logits = out.logits;
  for (size_t step = 0; step < steps; ++step) {
    const int32_t next = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.greedy.push_back(next);
    if (step + 1 == steps) break;
    if (auto status = model.forward(*sequence, std::span(&next, 1), logits); !status) return std::move(status).error();
  }
  return out;
}

/// Default inputs: fixed ids spread over the vocabulary, the same for every model of that size.
std::vector<std::vector<int32_t>> default_inputs(size_t vocab) {
  const auto id = [&](size_t k) { return static_cast<int32_t>(k % vocab); };
  return {{id(1)}, {id(1), id(2), id(3), id(4), id(5), id(6), id(7), id(8)}, {id(vocab / 2), id(vocab / 3), id(vocab / 5), id(vocab / 7), id(vocab - 1)}};
}

}  // namespace

void register_canary_commands(CLI::App& app, Registry& registry) {
  auto* canary = app.add_subcommand("canary", "Record a model's outputs for fixed inputs (create), or check a model reproduces them (check)");
  canary->require_subcommand(1);
  {
    struct Flags : ModelFlags {
      std::string output;
      std::vector<std::vector<int32_t>> inputs;
      size_t top_k = 8, steps = 4;
      double tolerance = 1e-3;
      bool json = false;
    };
    auto flags = std::make_shared<Flags>();
    auto* create = canary->add_subcommand("create", "Run fixed token inputs through a model and record its top logits and greedy tokens in a JSON file");
    add_model_flags(create, *flags);
    create->add_option("-o,--output", flags->output, "canary JSON file to write")->required();
    create->add_option("--input", flags->inputs, "an input as comma-separated token ids (repeatable; default: three fixed inputs)")->delimiter(',');
    create->add_option("--top-k", flags->top_k, "logits recorded per input")->check(CLI::PositiveNumber);
    create->add_option("--steps", flags->steps, "greedy tokens recorded per input")->check(CLI::PositiveNumber);
    create->add_option("--tolerance", flags->tolerance, "max-abs logit difference `check` allows by default")->check(CLI::NonNegativeNumber);
    create->add_flag("--json", flags->json, "print the canary on stdout too");
    registry.add(create, [flags] {
      std::unique_ptr<ThreadPool> pool;
      auto loaded = load_model(*flags, pool);
      if (!loaded) return report(loaded.error());
      const auto& model = *loaded->model;
      std::vector<std::vector<int32_t>> inputs = flags->inputs;
      if (inputs.empty()) inputs = default_inputs(model.vocab_size());
      nlohmann::json cases = nlohmann::json::array();
      for (const auto& input : inputs) {
        auto out = run_case(model, input, std::min(flags->top_k, model.vocab_size()), flags->steps);
        if (!out) return report(out.error());
        std::vector<float> top_logits;
        for (int32_t id : out->top_ids) top_logits.push_back(out->logits[static_cast<size_t>(id)]);
        cases.push_back({{"input", input}, {"top_ids", out->top_ids}, {"top_logits", top_logits}, {"greedy", out->greedy}});
      }
      const nlohmann::json canary_json = {{"format", "apr-canary"}, {"version", 1}, {"model", flags->model},
                                          {"architecture", std::string(model.architecture())}, {"vocab_size", model.vocab_size()},
                                          {"dtype", std::string(to_string(loaded->weight_dtype))}, {"tolerance", flags->tolerance},
                                          {"created_at", std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count()},
                                          {"cases", cases}};
      const std::string text = canary_json.dump(2) + "\n";
      auto out_file = format::AtomicFile::create(flags->output);
      if (!out_file) return report(out_file.error());
      auto status = (*out_file)->sink().write(std::as_bytes(std::span(text.data(), text.size())));
      if (status) status = (*out_file)->commit();
      if (!status) return report(status.error());
      if (flags->json) print_json(canary_json);
      else fmt::print("{}: {} cases recorded ({} logits, {} greedy tokens each)\n", flags->output, cases.size(), flags->top_k, flags->steps);
      return int{kOk};
    });
  }
  {
    struct Flags : ModelFlags {
      std::string canary_path;
      double tolerance = -1;
      bool json = false;
    };
    auto flags = std::make_shared<Flags>();
    auto* check = canary->add_subcommand("check", "Check that a model reproduces a canary file's logits (within --tolerance) and greedy tokens");
    add_model_flags(check, *flags);
    check->add_option("canary", flags->canary_path, "canary JSON file written by `apr canary create`")->required();
    check->add_option("--tolerance", flags->tolerance, "max-abs logit difference allowed (default: the canary's)");
    check->add_flag("--json", flags->json, "print JSON");
    registry.add(check, [flags] {
      std::ifstream in(flags->canary_path);
      if (!in) return report(make_error(ErrorCode::not_found, "{}: cannot open", flags->canary_path));
      const auto canary_json = nlohmann::json::parse(in, nullptr, false);
      if (canary_json.is_discarded() || !canary_json.is_object() || canary_json.value("format", "") != "apr-canary" || !canary_json.contains("cases")) {
        return report(make_error(ErrorCode::format, "{}: not a canary file (apr canary create writes them)", flags->canary_path));
      }
      const double tolerance = flags->tolerance >= 0 ? flags->tolerance : canary_json.value("tolerance", 1e-3);
      std::unique_ptr<ThreadPool> pool;
      auto loaded = load_model(*flags, pool);
      if (!loaded) return report(loaded.error());
      const auto& model = *loaded->model;
      if (canary_json.value("vocab_size", size_t{0}) != model.vocab_size()) {
        return report(make_error(ErrorCode::validation, "{}: vocabulary of {}, the canary's model had {}", flags->model, model.vocab_size(),
                                 canary_json.value("vocab_size", size_t{0})));
      }
      nlohmann::json results = nlohmann::json::array();
      bool passed = true;
      double worst = 0;
      try {
        for (const auto& c : canary_json["cases"]) {
          const auto input = c.at("input").get<std::vector<int32_t>>();
          const auto top_ids = c.at("top_ids").get<std::vector<int32_t>>();
          const auto top_logits = c.at("top_logits").get<std::vector<float>>();
          const auto greedy = c.at("greedy").get<std::vector<int32_t>>();
          auto out = run_case(model, input, top_ids.size(), std::max<size_t>(greedy.size(), 1));
          if (!out) return report(out.error());
          double max_abs = 0;
          for (size_t i = 0; i < top_ids.size() && i < top_logits.size(); ++i) {
            if (top_ids[i] < 0 || static_cast<size_t>(top_ids[i]) >= model.vocab_size()) return report(make_error(ErrorCode::format, "{}: id {} outside the vocabulary", flags->canary_path, top_ids[i]));
            max_abs = std::max(max_abs, static_cast<double>(std::fabs(out->logits[static_cast<size_t>(top_ids[i])] - top_logits[i])));
          }
          const bool top1 = !top_ids.empty() && !out->top_ids.empty() && out->top_ids[0] == top_ids[0];
          const bool same_greedy = out->greedy == greedy;
          const bool ok = max_abs <= tolerance && top1 && same_greedy;
          passed = passed && ok;
          worst = std::max(worst, max_abs);
          results.push_back({{"input", input}, {"max_abs", max_abs}, {"top1_match", top1}, {"greedy_match", same_greedy}, {"greedy", out->greedy}, {"passed", ok}});
        }
      } catch (const nlohmann::json::exception& error) {
        return report(make_error(ErrorCode::format, "{}: malformed case: {}", flags->canary_path, error.what()));
      }
      if (flags->json) {
        print_json({{"model", flags->model}, {"canary", flags->canary_path}, {"tolerance", tolerance}, {"max_abs", worst}, {"passed", passed}, {"cases", results}});
      } else {
        for (const auto& r : results) {
          fmt::print("{} input {}: max-abs {:.3e}, top-1 {}, greedy {}\n", r["passed"].get<bool>() ? "ok  " : "FAIL", r["input"].dump(), r["max_abs"].get<double>(),
                     r["top1_match"].get<bool>() ? "same" : "DIFFERENT", r["greedy_match"].get<bool>() ? "same" : "DIFFERENT");
        }
        fmt::print("{}: {} (tolerance {:g}, max-abs {:.3e})\n", flags->canary_path, passed ? "passed" : "FAILED", tolerance, worst);
      }
      return passed ? int{kOk} : int{kValidationFailed};
    });
  }
}

}  // namespace apr::cli
