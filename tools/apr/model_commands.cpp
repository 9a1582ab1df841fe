// apr run / apr bench: generation and speed measurement on a language model.
#include <chrono>
#include <filesystem>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "apr/models/load.hpp"
#include "apr/runtime/generator.hpp"
#include "apr/text/chat_template.hpp"
#include "apr/text/load_tokenizer.hpp"
#include "cli.hpp"
#include "model_support.hpp"

namespace apr::cli {
namespace {

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
    std::string prompt;
    std::string prompt_ids;
    std::string tokenizer;
    bool chat = false;
    size_t max_tokens = 64;
    bool greedy = false;
    bool json = false;
    runtime::SamplingOptions sampling;
  };
  auto flags = std::make_shared<RunFlags>();
  auto* run = app.add_subcommand("run", "Generate a continuation of a prompt");
  add_model_flags(run, *flags);
  auto* prompt_option = run->add_option("-p,--prompt", flags->prompt, "prompt text (tokenized with the model's tokenizer)");
  auto* ids_option = run->add_option("--prompt-ids", flags->prompt_ids, "prompt as comma-separated token ids");
  prompt_option->excludes(ids_option);
  run->add_option("--tokenizer", flags->tokenizer, "tokenizer.json, GPT-2 folder or .tiktoken (default: the model's folder)");
  run->add_flag("--chat", flags->chat, "wrap the prompt in the model's chat template as a user message");
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
  run->add_flag("--json", flags->json, "print JSON: ids, text, prompt_tokens, tok_per_s (and router statistics of MoE models)");
  registry.add(run, [flags] {
    if (flags->prompt.empty() == flags->prompt_ids.empty()) {
      return report(make_error(ErrorCode::invalid_argument, "give either --prompt TEXT or --prompt-ids 1,2,3"));
    }
    std::unique_ptr<ThreadPool> owned;
    auto loaded = load_model(*flags, owned);
    if (!loaded) return report(loaded.error());
    std::optional<text::Tokenizer> tokenizer;
    if (!flags->prompt.empty() || !flags->tokenizer.empty()) {
      auto loaded_tokenizer = tokenizer_for(*loaded, flags->tokenizer);
      if (!loaded_tokenizer) return report(loaded_tokenizer.error());
      tokenizer = std::move(loaded_tokenizer).value();
    } else if (auto found = tokenizer_for(*loaded, "")) {
      tokenizer = std::move(found).value();  // optional: only to print text
    }
    Result<std::vector<int32_t>> ids = std::vector<int32_t>{};
    if (!flags->prompt.empty()) {
      std::string prompt = flags->prompt;
      if (flags->chat) {
        auto chat = chat_template_for(*loaded);
        if (!chat) return report(chat.error());
        prompt = chat->render(std::vector<text::ChatMessage>{{"user", flags->prompt}}, true);
      }
      ids = tokenizer->encode(prompt);
    } else {
      ids = parse_ids(flags->prompt_ids);
    }
    if (!ids) return report(ids.error());
    runtime::GenerationOptions options;
    options.max_tokens = flags->max_tokens;
    options.sampling = flags->sampling;
    if (flags->greedy) options.sampling.temperature = 0.0f;
    options.stop_ids = stop_ids_for(*loaded, tokenizer ? &*tokenizer : nullptr);
    auto sequence = loaded->model->new_sequence(ids->size() + flags->max_tokens);
    std::optional<text::StreamDecoder> stream;
    if (tokenizer) stream.emplace(tokenizer->stream());
    runtime::TokenText token_text;
    if (stream) token_text = [&](int32_t id) { return stream->push(id); };
    const bool streaming = !flags->json && stream.has_value();
    auto result = runtime::generate(*loaded->model, *sequence, *ids, options, token_text, [&](std::string_view piece, int32_t) {
      if (streaming) {
        fmt::print("{}", piece);
        std::fflush(stdout);
      }
      return true;
    });
    if (!result) return report(result.error());
    if (flags->json) {
      nlohmann::json out = {{"ids", result->tokens}, {"text", result->text}, {"prompt_tokens", result->prompt_tokens},
                            {"tok_per_s", result->tokens_per_second()}, {"finish_reason", std::string(runtime::finish_reason(result->stop_reason))}};
      if (auto experts = loaded->model->expert_statistics(); !experts.is_null()) out["experts"] = std::move(experts);  // routing of this run
      print_json(out);
    } else {
      if (streaming) fmt::print("\n");
      else fmt::print("{}\n", fmt::join(result->tokens, ","));
      std::fflush(stdout);  // the text's last line before the statistics on stderr
      fmt::print(stderr, "{} prompt tokens, {} generated, {:.1f} tok/s\n", result->prompt_tokens, result->tokens.size(), result->tokens_per_second());
    }
    return int{kOk};
  });
}

}  // namespace apr::cli
