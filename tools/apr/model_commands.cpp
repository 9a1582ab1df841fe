// apr run / apr bench: generation and speed measurement on a language model.
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "apr/models/load.hpp"
#include "apr/runtime/generator.hpp"
#include "cli.hpp"

namespace apr::cli {
namespace {

/// Options every model command shares.
struct ModelFlags {
  std::string model;
  std::string dtype;
  std::string kv_dtype = "f32";
  size_t threads = 0;
};

void add_model_flags(CLI::App* command, ModelFlags& flags) {
  command->add_option("model", flags.model, "model: Hugging Face folder, .safetensors, or index")->required();
  command->add_option("--dtype", flags.dtype, "run the matmuls in this dtype (f32, f16, bf16, q8_0, q4_0; default: as stored)");
  command->add_option("--kv-dtype", flags.kv_dtype, "KV cache storage (f32 or f16)")->check(CLI::IsMember({"f32", "f16"}));
  command->add_option("-t,--threads", flags.threads, "threads (default: all cores)");
}

Result<models::LoadedModel> load(const ModelFlags& flags, ThreadPool*& pool_out, std::unique_ptr<ThreadPool>& owned_pool) {
  models::LoadOptions options;
  if (!flags.dtype.empty()) {
    const auto dtype = parse_dtype(flags.dtype);
    if (!dtype || !is_weight_dtype(*dtype)) return make_error(ErrorCode::invalid_argument, "--dtype {}: expected f32, f16, bf16, q8_0 or q4_0", flags.dtype);
    options.weight_dtype = dtype;
  }
  options.model.kv_dtype = flags.kv_dtype == "f16" ? DType::f16 : DType::f32;
  if (flags.threads > 0) {
    owned_pool = std::make_unique<ThreadPool>(flags.threads);
    options.model.pool = owned_pool.get();
  }
  pool_out = options.model.pool;
  return models::load_language_model(flags.model, options);
}

Result<std::vector<int32_t>> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  size_t start = 0;
  while (start < text.size()) {
    const size_t comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    char* end = nullptr;
    const long value = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || value < 0 || value > INT32_MAX) {
      return make_error(ErrorCode::invalid_argument, "--prompt-ids: '{}' is not a token id", item);
    }
    ids.push_back(static_cast<int32_t>(value));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  if (ids.empty()) return make_error(ErrorCode::invalid_argument, "--prompt-ids is empty");
  return ids;
}

}  // namespace

void register_model_commands(CLI::App& app, Registry& registry) {
  struct RunFlags : ModelFlags {
    std::string prompt_ids;
    size_t max_tokens = 64;
    bool greedy = false;
    bool json = false;
    runtime::SamplingOptions sampling;
  };
  auto flags = std::make_shared<RunFlags>();
  auto* run = app.add_subcommand("run", "Generate a continuation of a prompt");
  add_model_flags(run, *flags);
  run->add_option("--prompt-ids", flags->prompt_ids, "prompt as comma-separated token ids")->required();
  run->add_option("-n,--max-tokens", flags->max_tokens, "most tokens to generate");
  run->add_flag("--greedy", flags->greedy, "argmax decoding (same as --temperature 0)");
  run->add_option("--temperature", flags->sampling.temperature, "sampling temperature (0 = greedy)");
  run->add_option("--top-k", flags->sampling.top_k, "keep the k most likely tokens (0 = all)");
  run->add_option("--top-p", flags->sampling.top_p, "nucleus sampling threshold");
  run->add_option("--min-p", flags->sampling.min_p, "drop tokens below min-p times the top probability");
  run->add_option("--repeat-penalty", flags->sampling.repetition_penalty, "repetition penalty (1 = off)");
  run->add_option("--presence-penalty", flags->sampling.presence_penalty, "presence penalty");
  run->add_option("--frequency-penalty", flags->sampling.frequency_penalty, "frequency penalty");
  run->add_option("--seed", flags->sampling.seed, "random seed");
  run->add_flag("--json", flags->json, "print JSON: ids, text, prompt_tokens, tok_per_s");
  registry.add(run, [flags] {
    auto ids = parse_ids(flags->prompt_ids);
    if (!ids) return report(ids.error());
    ThreadPool* pool = nullptr;
    std::unique_ptr<ThreadPool> owned;
    auto loaded = load(*flags, pool, owned);
    if (!loaded) return report(loaded.error());
    runtime::GenerationOptions options;
    options.max_tokens = flags->max_tokens;
    options.sampling = flags->sampling;
    if (flags->greedy) options.sampling.temperature = 0.0f;
    if (loaded->config.contains("eos_token_id") && loaded->config["eos_token_id"].is_number_integer()) {
      options.stop_ids.push_back(loaded->config["eos_token_id"].get<int32_t>());
    }
    auto sequence = loaded->model->new_sequence(ids->size() + flags->max_tokens);
    auto result = runtime::generate(*loaded->model, *sequence, *ids, options);
    if (!result) return report(result.error());
    if (flags->json) {
      print_json({{"ids", result->tokens}, {"text", result->text}, {"prompt_tokens", result->prompt_tokens},
                  {"tok_per_s", result->tokens_per_second()}, {"finish_reason", std::string(runtime::finish_reason(result->stop_reason))}});
    } else {
      fmt::print("{}\n", fmt::join(result->tokens, ","));
      fmt::print(stderr, "{} prompt tokens, {} generated, {:.1f} tok/s\n", result->prompt_tokens, result->tokens.size(), result->tokens_per_second());
    }
    return int{kOk};
  });
}

}  // namespace apr::cli
