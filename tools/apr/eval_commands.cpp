// apr eval: perplexity over a text file, logit consistency between two models, golden prompt
// suites, and a Pareto report (size, perplexity, KL, speed) over variants of a model.
#include <algorithm>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "apr/eval/golden.hpp"
#include "apr/eval/logit_metrics.hpp"
#include "apr/eval/pareto.hpp"
#include "apr/eval/perplexity.hpp"
#include "apr/eval/precision_gate.hpp"
#include "apr/eval/word_error_rate.hpp"
#include "apr/runtime/generator.hpp"
#include "apr/text/chat_template.hpp"
#include "cli.hpp"
#include "model_support.hpp"
#include "yaml_json.hpp"

namespace apr::cli {
namespace {

namespace fs = std::filesystem;

/// The first `limit` (0: all) token ids of the text file `path` under `loaded`'s tokenizer;
/// special tokens written in the text (e.g. <|endoftext|>) become their ids.
Result<std::vector<int32_t>> text_tokens(const models::LoadedModel& loaded, const std::string& path, size_t limit) {
  auto tokenizer = tokenizer_for(loaded);
  if (!tokenizer) return std::move(tokenizer).error();
  auto text = text::read_text_file(path);
  if (!text) return std::move(text).error();
  auto ids = tokenizer->encode(*text);
  if (limit > 0 && ids.size() > limit) ids.resize(limit);
  if (ids.size() < 2) return make_error(ErrorCode::invalid_argument, "{}: {} tokens, need at least 2", path, ids.size());
  return ids;
}

/// Bytes on disk of a model: the file, or a folder's weight files.
uint64_t model_bytes(const std::string& path) {
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return fs::file_size(path, ec);
  uint64_t total = 0;
  for (const auto& entry : fs::directory_iterator(path, ec)) {
    const auto extension = entry.path().extension();
    if (entry.is_regular_file() && (extension == ".safetensors" || extension == ".apr" || extension == ".gguf")) total += entry.file_size(ec);
  }
  return total;
}

/// Loads each of `paths` with the shared dtype/threads of `flags`.
Result<std::vector<models::LoadedModel>> load_models(const std::vector<std::string>& paths, const ModelFlags& flags,
                                                     std::unique_ptr<ThreadPool>& pool) {
  std::vector<models::LoadedModel> loaded;
  for (const auto& path : paths) {
    ModelFlags one = flags;
    one.model = path;
    auto model = load_model(one, pool);
    if (!model) return std::move(model).error();
    loaded.push_back(std::move(model).value());
  }
  return loaded;
}

nlohmann::json perplexity_json(const eval::PerplexityResult& r) {
  return {{"tokens", r.tokens}, {"windows", r.windows}, {"mean_nll", r.mean_nll}, {"perplexity", r.perplexity},
          {"ppl_low", r.ppl_low}, {"ppl_high", r.ppl_high}};
}

/// The window length for a model: `asked`, capped by its context (0: min(512, context)).
size_t window_for(const models::LanguageModel& model, size_t asked) {
  const size_t limit = model.max_context();
  return asked == 0 ? std::min<size_t>(512, limit) : std::min(asked, limit);
}

struct PerplexityFlags : ModelFlags {
  std::string text;
  size_t context = 0;
  size_t stride = 0;
  size_t max_tokens = 0;
  bool json = false;
};

int run_perplexity(const PerplexityFlags& flags) {
  std::unique_ptr<ThreadPool> pool;
  auto loaded = load_model(flags, pool);
  if (!loaded) return report(loaded.error());
  auto ids = text_tokens(*loaded, flags.text, flags.max_tokens);
  if (!ids) return report(ids.error());
  const size_t context = window_for(*loaded->model, flags.context);
  const size_t stride = flags.stride == 0 ? std::max<size_t>(1, context / 2) : flags.stride;
  auto result = eval::perplexity(*loaded->model, *ids, {.context = context, .stride = stride});
  if (!result) return report(result.error());
  if (flags.json) {
    auto out = perplexity_json(*result);
    out["context"] = context;
    out["stride"] = stride;
    print_json(out);
  } else {
    fmt::print("{} tokens in {} windows (context {}, stride {}): NLL {:.4f} nats, perplexity {:.3f} (95% CI {:.3f}-{:.3f})\n",
               result->tokens, result->windows, context, stride, result->mean_nll, result->perplexity, result->ppl_low, result->ppl_high);
  }
  return kOk;
}

struct ConsistencyFlags : ModelFlags {
  std::string other;
  std::string text;
  size_t positions = 128;
  size_t k = 10;
  float tolerance = 0.1f;
  double threshold = 0.9;
  bool json = false;
};

int run_consistency(const ConsistencyFlags& flags) {
  std::unique_ptr<ThreadPool> pool;
  auto models = load_models({flags.model, flags.other}, flags, pool);
  if (!models) return report(models.error());
  const auto& a = *(*models)[0].model;
  const auto& b = *(*models)[1].model;
  if (a.vocab_size() != b.vocab_size()) {
    return report(make_error(ErrorCode::validation, "the models' vocabularies differ ({} vs {} logits)", a.vocab_size(), b.vocab_size()));
  }
  const size_t count = std::min({flags.positions, a.max_context(), b.max_context()});
  Result<std::vector<int32_t>> ids = eval::gate_tokens(a.vocab_size(), count);
  if (!flags.text.empty()) ids = text_tokens((*models)[0], flags.text, count);
  if (!ids) return report(ids.error());
  const size_t vocab = a.vocab_size(), n = ids->size();
  std::vector<float> la(n * vocab), lb(n * vocab);
  auto sa = a.new_sequence(n);
  auto sb = b.new_sequence(n);
  if (auto status = a.forward(*sa, *ids, la, {.all_logits = true}); !status) return report(status.error());
  if (auto status = b.forward(*sb, *ids, lb, {.all_logits = true}); !status) return report(status.error());
  size_t agree = 0, top1 = 0;
  double overlap = 0.0, kl = 0.0;
  for (size_t t = 0; t < n; ++t) {
    const std::span<const float> ra(la.data() + t * vocab, vocab), rb(lb.data() + t * vocab, vocab);
    agree += eval::top_k_agree(ra, rb, flags.k, flags.tolerance) ? 1 : 0;
    top1 += eval::top_k_ids(ra, 1) == eval::top_k_ids(rb, 1) ? 1 : 0;
    overlap += eval::top_k_overlap(ra, rb, flags.k);
    kl += eval::kl_divergence(ra, rb);
  }
  const double rate = static_cast<double>(agree) / static_cast<double>(n);
  const bool passed = rate >= flags.threshold;
  const nlohmann::json out = {{"positions", n}, {"k", flags.k}, {"tolerance", flags.tolerance}, {"agreement_rate", rate},
                              {"threshold", flags.threshold}, {"passed", passed}, {"top1_agreement", static_cast<double>(top1) / static_cast<double>(n)},
                              {"top_k_overlap", overlap / static_cast<double>(n)}, {"mean_kl", kl / static_cast<double>(n)}};
  if (flags.json) {
    print_json(out);
  } else {
    fmt::print("top-{} agreement (tolerance {}) {:.1f}% over {} positions (threshold {:.1f}%): {}\n", flags.k, flags.tolerance, 100.0 * rate, n,
               100.0 * flags.threshold, passed ? "PASS" : "FAIL");
    fmt::print("top-1 agreement {:.1f}%, top-{} overlap {:.1f}%, mean KL {:.6f}\n", 100.0 * out["top1_agreement"].get<double>(), flags.k,
               100.0 * out["top_k_overlap"].get<double>(), out["mean_kl"].get<double>());
  }
  return passed ? kOk : kValidationFailed;
}

struct GoldenFlags : ModelFlags {
  std::string suite;
  size_t runs = 0;
  double min_pass_rate = 0.0;
  bool json = false;
};

int run_golden(const GoldenFlags& flags) {
  auto text = read_json_or_yaml(flags.suite);
  if (!text) return report(text.error());
  auto suite = eval::parse_golden_suite(*text, flags.suite);
  if (!suite) return report(suite.error());
  if (flags.runs > 0) suite->runs = flags.runs;
  std::unique_ptr<ThreadPool> pool;
  auto loaded = load_model(flags, pool);
  if (!loaded) return report(loaded.error());
  auto tokenizer = tokenizer_for(*loaded);
  if (!tokenizer) return report(tokenizer.error());
  auto chat = chat_template_for(*loaded);
  const auto encode = [&](const eval::GoldenCase& golden) -> Result<std::vector<int32_t>> {
    if (!golden.chat) return tokenizer->encode(golden.prompt);
    if (!chat) return chat.error().with_context(golden.name);
    return tokenizer->encode(chat->render(std::vector<text::ChatMessage>{{"user", golden.prompt}}, true));
  };
  const auto token_text = [&] {
    auto stream = std::make_shared<text::StreamDecoder>(tokenizer->stream());
    return runtime::TokenText([stream](int32_t id) { return stream->push(id); });
  };
  auto result = eval::run_golden_suite(*loaded->model, *suite, encode, token_text, stop_ids_for(*loaded, &*tokenizer));
  if (!result) return report(result.error());
  const bool passed = result->pass_rate.estimate >= flags.min_pass_rate;
  if (flags.json) {
    auto out = result->to_json();
    out["passed"] = passed;
    print_json(out);
  } else {
    for (const auto& c : result->cases) {
      fmt::print("{:<24} {}/{} passed (95% CI {:.0f}-{:.0f}%)\n", c.name, c.passed, c.runs, 100.0 * c.pass_rate.low, 100.0 * c.pass_rate.high);
    }
    const auto& r = *result;
    fmt::print("pass rate {:.1f}% (95% CI {:.1f}-{:.1f}%), latency {:.3f} s ({:.3f}-{:.3f}), {:.1f} tok/s ({:.1f}-{:.1f})\n",
               100.0 * r.pass_rate.estimate, 100.0 * r.pass_rate.low, 100.0 * r.pass_rate.high, r.latency_seconds.estimate,
               r.latency_seconds.low, r.latency_seconds.high, r.tokens_per_second.estimate, r.tokens_per_second.low, r.tokens_per_second.high);
  }
  return passed ? kOk : kValidationFailed;
}

struct ParetoFlags : ModelFlags {
  std::vector<std::string> variants;
  std::string text;
  size_t context = 256;
  size_t max_tokens = 2048;
  size_t decode_tokens = 32;
  size_t repetitions = 3;
  std::string markdown;
  std::string svg;
  bool json = false;
};

/// Median decode speed of `model` over `repetitions` greedy generations of `count` tokens after
/// `prompt`, after one generation that is not counted (warm caches and thread pool).
Result<double> decode_speed(const models::LanguageModel& model, std::span<const int32_t> prompt, size_t count, size_t repetitions) {
  std::vector<double> speeds;
  for (size_t run = 0; run <= repetitions; ++run) {
    runtime::GenerationOptions options;
    options.max_tokens = count;
    options.sampling.temperature = 0.0f;
    auto sequence = model.new_sequence(prompt.size() + count + 1);
    auto generated = runtime::generate(model, *sequence, prompt, options);
    if (!generated) return std::move(generated).error();
    if (run > 0) speeds.push_back(generated->tokens_per_second());
  }
  std::sort(speeds.begin(), speeds.end());
  return speeds[speeds.size() / 2];
}

int run_pareto(const ParetoFlags& flags) {
  std::unique_ptr<ThreadPool> pool;
  std::vector<std::string> paths{flags.model};
  paths.insert(paths.end(), flags.variants.begin(), flags.variants.end());
  auto models = load_models(paths, flags, pool);
  if (!models) return report(models.error());
  const auto& reference = *(*models)[0].model;
  for (size_t m = 1; m < models->size(); ++m) {
    if ((*models)[m].model->vocab_size() != reference.vocab_size()) {
      return report(make_error(ErrorCode::validation, "{}: {} logits, the reference {} has {}", paths[m], (*models)[m].model->vocab_size(),
                               paths[0], reference.vocab_size()));
    }
  }
  auto ids = text_tokens((*models)[0], flags.text, flags.max_tokens);
  if (!ids) return report(ids.error());
  const size_t vocab = reference.vocab_size(), context = window_for(reference, flags.context);
  const size_t n_models = models->size();
  std::vector<std::vector<double>> nll(n_models);
  std::vector<double> kl_sum(n_models, 0.0);
  std::vector<std::vector<float>> logits(n_models);
  size_t windows = 0, kl_rows = 0;
  // non-overlapping windows: every model sees the same inputs, KL compares the same rows
  for (size_t begin = 0; begin + 1 < ids->size(); begin += context) {
    const size_t end = std::min(begin + context, ids->size());
    const std::span<const int32_t> window(ids->data() + begin, end - begin);
    for (size_t m = 0; m < n_models; ++m) {
      logits[m].resize(window.size() * vocab);
      auto sequence = (*models)[m].model->new_sequence(window.size());
      if (auto status = (*models)[m].model->forward(*sequence, window, logits[m], {.all_logits = true}); !status) {
        return report(status.error().with_context(paths[m]));
      }
    }
    ++windows;
    for (size_t t = 0; t + 1 < window.size(); ++t) {
      const std::span<const float> ref(logits[0].data() + t * vocab, vocab);
      for (size_t m = 0; m < n_models; ++m) {
        const std::span<const float> row(logits[m].data() + t * vocab, vocab);
        nll[m].push_back(-eval::log_softmax(row)[static_cast<size_t>(window[t + 1])]);
        if (m > 0) kl_sum[m] += eval::kl_divergence(ref, row);
      }
      ++kl_rows;
    }
  }
  std::vector<eval::Variant> variants;
  nlohmann::json out = {{"reference", paths[0]}, {"tokens", nll[0].size()}, {"context", context}, {"variants", nlohmann::json::array()}};
  const std::span<const int32_t> prompt(ids->data(), std::min<size_t>(16, ids->size()));
  const double reference_ppl = eval::summarize_nll(nll[0], windows).perplexity;
  for (size_t m = 0; m < n_models; ++m) {
    const auto ppl = eval::summarize_nll(nll[m], windows);
    auto speed = decode_speed(*(*models)[m].model, prompt, flags.decode_tokens, std::max<size_t>(1, flags.repetitions));
    if (!speed) return report(speed.error().with_context(paths[m]));
    eval::Variant variant{fs::path(paths[m]).filename().string(), static_cast<double>(model_bytes(paths[m])), ppl.perplexity,
                          kl_rows > 0 ? kl_sum[m] / static_cast<double>(kl_rows) : 0.0, *speed};
    variants.push_back(variant);
    auto item = perplexity_json(ppl);
    item.update({{"name", variant.name}, {"path", paths[m]}, {"dtype", to_string((*models)[m].weight_dtype)}, {"size_bytes", variant.size_bytes},
                 {"kl_divergence", variant.kl_divergence}, {"decode_tok_per_s", variant.tokens_per_second},
                 {"perplexity_change", ppl.perplexity / reference_ppl - 1.0}});
    out["variants"].push_back(item);
  }
  eval::mark_pareto_frontier(variants);
  for (size_t m = 0; m < n_models; ++m) out["variants"][m]["pareto"] = variants[m].on_frontier;
  const std::string table = eval::pareto_markdown(variants);
  if (!flags.markdown.empty()) {
    const std::string document = fmt::format("# Pareto report\n\nReference `{}`; {} tokens of `{}` in windows of {}; decode speed: median of {} runs of {} tokens.\n\n{}",
                                             paths[0], nll[0].size(), flags.text, context, flags.repetitions, flags.decode_tokens, table);
    if (auto written = write_text_atomically(flags.markdown, document); !written) return report(written.error());
  }
  if (!flags.svg.empty()) {
    if (auto written = write_text_atomically(flags.svg, eval::pareto_svg(variants)); !written) return report(written.error());
  }
  if (flags.json) print_json(out);
  else fmt::print("{}", table);
  return kOk;
}

struct WerFlags {
  std::string references;
  std::string hypotheses;
  double max_wer = -1.0;
  bool json = false;
};

/// The utterances of a transcript file: "id<TAB>text" lines, or plain lines keyed by their line number.
Result<std::vector<std::pair<std::string, std::string>>> read_utterances(const std::string& path) {
  auto text = text::read_text_file(path);
  if (!text) return std::move(text).error();
  std::vector<std::pair<std::string, std::string>> utterances;
  size_t line_number = 0;
  for (size_t start = 0; start < text->size();) {
    size_t end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    std::string line = text->substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const size_t tab = line.find('\t');
    if (tab == std::string::npos) utterances.emplace_back(fmt::format("line {}", line_number), line);
    else utterances.emplace_back(line.substr(0, tab), line.substr(tab + 1));
  }
  return utterances;
}

/// `apr eval wer`: the word error rate of hypotheses against references, utterance by utterance.
int run_wer(const WerFlags& flags) {
  auto references = read_utterances(flags.references);
  if (!references) return report(references.error());
  auto hypotheses = read_utterances(flags.hypotheses);
  if (!hypotheses) return report(hypotheses.error());
  std::map<std::string, std::string> heard(hypotheses->begin(), hypotheses->end());
  if (heard.size() != hypotheses->size()) return report(make_error(ErrorCode::format, "{}: an utterance id appears twice", flags.hypotheses));
  size_t errors = 0, words = 0;
  nlohmann::json utterances = nlohmann::json::array();
  for (const auto& [id, reference] : *references) {
    const auto it = heard.find(id);
    if (it == heard.end()) return report(make_error(ErrorCode::format, "{}: no hypothesis for '{}' of {}", flags.hypotheses, id, flags.references));
    const auto counted = eval::word_errors(reference, it->second);
    errors += counted.errors;
    words += counted.words;
    utterances.push_back({{"id", id}, {"reference", reference}, {"hypothesis", it->second}, {"errors", counted.errors}, {"words", counted.words}});
  }
  if (references->size() != heard.size()) {
    return report(make_error(ErrorCode::format, "{}: {} hypotheses for {} references", flags.hypotheses, heard.size(), references->size()));
  }
  const double wer = words == 0 ? (errors == 0 ? 0.0 : 1.0) : static_cast<double>(errors) / static_cast<double>(words);
  const bool passed = flags.max_wer < 0.0 || wer <= flags.max_wer;
  if (flags.json) {
    print_json({{"wer", wer}, {"errors", errors}, {"words", words}, {"utterances", utterances}, {"passed", passed}});
  } else {
    fmt::print("WER {:.2f}% ({} word errors in {} words, {} utterances)\n", 100.0 * wer, errors, words, references->size());
  }
  if (!passed) {
    fmt::print(stderr, "error: WER {:.2f}% is above --max-wer {:.2f}%\n", 100.0 * wer, 100.0 * flags.max_wer);
    return kValidationFailed;
  }
  return kOk;
}

}  // namespace

void register_eval_commands(CLI::App& app, Registry& registry) {
  auto* eval = app.add_subcommand("eval", "Evaluate models: perplexity, logit consistency, golden prompts, Pareto report, word error rate");
  eval->require_subcommand(1);

  auto perplexity = std::make_shared<PerplexityFlags>();
  auto* ppl = eval->add_subcommand("perplexity", "Perplexity of a model over a text file (sliding window), with a 95% confidence interval");
  add_model_flags(ppl, *perplexity);
  ppl->add_option("--text", perplexity->text, "text file (special tokens such as <|endoftext|> in it are parsed)")->required();
  ppl->add_option("-c,--context", perplexity->context, "tokens per window (default: min(512, the model's context))");
  ppl->add_option("--stride", perplexity->stride, "window advance; only new tokens are scored (default: context / 2)");
  ppl->add_option("--max-tokens", perplexity->max_tokens, "score only the first N tokens of the text (0 = all)");
  ppl->add_flag("--json", perplexity->json, "print JSON: tokens, windows, mean_nll, perplexity, ppl_low, ppl_high");
  registry.add(ppl, [perplexity] { return run_perplexity(*perplexity); });

  auto consistency = std::make_shared<ConsistencyFlags>();
  auto* logits = eval->add_subcommand("consistency", "Top-k logit agreement between two models (any formats); exit 1 below the threshold");
  add_model_flags(logits, *consistency);
  logits->add_option("other", consistency->other, "the model to compare with (same vocabulary)")->required();
  logits->add_option("--text", consistency->text, "text file for the inputs (default: apr's fixed gate tokens)");
  logits->add_option("--positions", consistency->positions, "positions compared");
  logits->add_option("-k,--top-k", consistency->k, "size of the top-k sets");
  logits->add_option("--tolerance", consistency->tolerance, "logit distance from the k-th logit within which set differences are ties");
  logits->add_option("--threshold", consistency->threshold, "agreement rate needed to pass (0-1)")->check(CLI::Range(0.0, 1.0));
  logits->add_flag("--json", consistency->json, "print JSON: agreement_rate, passed, top1_agreement, top_k_overlap, mean_kl");
  registry.add(logits, [consistency] { return run_consistency(*consistency); });

  auto golden = std::make_shared<GoldenFlags>();
  auto* suite = eval->add_subcommand("golden", "Run a golden prompt suite (JSON or YAML) N times per prompt: pass rate, latency and tok/s with 95% intervals");
  add_model_flags(suite, *golden);
  suite->add_option("--suite", golden->suite, "suite file, JSON or YAML (.yaml/.yml): {runs, seed, temperature, cases: [{name, prompt, mode, expect, max_tokens}]}")->required();
  suite->add_option("--runs", golden->runs, "runs per prompt (default: the suite's, else 5)");
  suite->add_option("--min-pass-rate", golden->min_pass_rate, "exit 1 when the overall pass rate is below this (0-1)")->check(CLI::Range(0.0, 1.0));
  suite->add_flag("--json", golden->json, "print the report as JSON");
  registry.add(suite, [golden] { return run_golden(*golden); });

  auto pareto = std::make_shared<ParetoFlags>();
  auto* report_command = eval->add_subcommand("pareto", "Pareto report of variants of a model: size, perplexity, KL vs the first, decode tok/s");
  add_model_flags(report_command, *pareto);
  report_command->add_option("variants", pareto->variants, "the other variants (e.g. the same model converted to other dtypes)");
  report_command->add_option("--text", pareto->text, "text file the perplexities and KL are measured on")->required();
  report_command->add_option("-c,--context", pareto->context, "tokens per window");
  report_command->add_option("--max-tokens", pareto->max_tokens, "use the first N tokens of the text");
  report_command->add_option("--decode-tokens", pareto->decode_tokens, "tokens generated to measure decode speed");
  report_command->add_option("--repetitions", pareto->repetitions, "speed runs per variant (the median is reported)");
  report_command->add_option("-o,--markdown", pareto->markdown, "write the Markdown report here (atomically)");
  report_command->add_option("--svg", pareto->svg, "write an SVG scatter plot of perplexity against size here");
  report_command->add_flag("--json", pareto->json, "print JSON: per variant size, perplexity with CI, KL, tok/s, frontier");
  registry.add(report_command, [pareto] { return run_pareto(*pareto); });

  auto wer = std::make_shared<WerFlags>();
  auto* wer_command = eval->add_subcommand("wer", "Word error rate of transcripts against references (\"id<TAB>text\" lines, or plain lines in order)");
  wer_command->add_option("references", wer->references, "reference transcripts")->required();
  wer_command->add_option("hypotheses", wer->hypotheses, "transcripts to score, with the same ids")->required();
  wer_command->add_option("--max-wer", wer->max_wer, "exit 1 when the WER is above this (0-1)")->check(CLI::Range(0.0, 1.0));
  wer_command->add_flag("--json", wer->json, "print JSON: wer, errors, words, per-utterance errors, passed");
  registry.add(wer_command, [wer] { return run_wer(*wer); });
}

}  // namespace apr::cli
