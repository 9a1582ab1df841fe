// apr chat: an interactive conversation with a chat model (ChatML), streaming the replies.
#include <unistd.h>

#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "apr/models/load.hpp"
#include "apr/runtime/generator.hpp"
#include "apr/text/chat_template.hpp"
#include "apr/text/load_tokenizer.hpp"
#include "cli.hpp"
#include "model_support.hpp"

namespace apr::cli {

void register_chat_commands(CLI::App& app, Registry& registry) {
  struct ChatFlags : ModelFlags {
    std::string system;
    std::string tokenizer;
    size_t max_tokens = 512;
    size_t context = 4096;
    runtime::SamplingOptions sampling;
  };
  auto flags = std::make_shared<ChatFlags>();
  flags->sampling.temperature = 0.7f;
  flags->sampling.top_p = 0.8f;
  flags->sampling.top_k = 20;
  flags->sampling.repetition_penalty = 1.05f;
  auto* chat = app.add_subcommand("chat", "Chat with a model: one user message per line on stdin, replies streamed on stdout");
  add_model_flags(chat, *flags);
  chat->add_option("--system", flags->system, "system message (default: the template's)");
  chat->add_option("--tokenizer", flags->tokenizer, "tokenizer (default: the model's folder)");
  chat->add_option("-n,--max-tokens", flags->max_tokens, "most tokens per reply");
  chat->add_option("-c,--context", flags->context, "context length in tokens");
  chat->add_option("--temperature", flags->sampling.temperature, "sampling temperature (0 = greedy)");
  chat->add_option("--top-k", flags->sampling.top_k, "keep the k most likely tokens (0 = all)");
  chat->add_option("--top-p", flags->sampling.top_p, "nucleus sampling threshold");
  chat->add_option("--repeat-penalty", flags->sampling.repetition_penalty, "repetition penalty (1 = off)");
  chat->add_option("--seed", flags->sampling.seed, "random seed");
  registry.add(chat, [flags] {
    std::unique_ptr<ThreadPool> owned;
    auto loaded = load_model(*flags, owned);
    if (!loaded) return report(loaded.error());
    auto tokenizer = tokenizer_for(*loaded, flags->tokenizer);
    if (!tokenizer) return report(tokenizer.error());
    auto chat_template = chat_template_for(*loaded);
    if (!chat_template) return report(chat_template.error());
    const bool interactive = ::isatty(STDIN_FILENO) == 1;
    std::vector<text::ChatMessage> history;
    if (!flags->system.empty()) history.push_back({"system", flags->system});
    runtime::GenerationOptions options;
    options.max_tokens = flags->max_tokens;
    options.sampling = flags->sampling;
    options.stop_ids = stop_ids_for(*loaded, &*tokenizer);
    auto sequence = loaded->model->new_sequence(flags->context);
    std::vector<int32_t> cached;  // tokens already in the sequence's KV cache
    if (interactive) fmt::print(stderr, "apr chat: type a message, /reset to start over, /exit or Ctrl-D to quit\n");
    std::string line;
    for (;;) {
      if (interactive) fmt::print(stderr, "> ");
      if (!std::getline(std::cin, line) || line == "/exit") break;
      if (line == "/reset") {
        history.erase(history.begin() + (flags->system.empty() ? 0 : 1), history.end());
        (void)sequence->truncate(0);
        cached.clear();
        continue;
      }
      if (line.empty()) continue;
      history.push_back({"user", line});
      const auto prompt = tokenizer->encode(chat_template->render(history, true));
      // reuse the cached prefix; feed only what is new
      size_t common = 0;
      while (common < cached.size() && common < prompt.size() && cached[common] == prompt[common]) ++common;
      if (common == prompt.size()) --common;  // the last prompt token must be fed to get logits
      if (!sequence->truncate(common)) {
        (void)sequence->truncate(0);
        common = 0;
      }
      if (prompt.size() + options.max_tokens > sequence->capacity()) {
        return report(make_error(ErrorCode::invalid_argument, "the conversation ({} tokens) no longer fits the context of {}; /reset or raise --context",
                                 prompt.size(), sequence->capacity()));
      }
      auto stream = tokenizer->stream();
      auto result = runtime::generate(*loaded->model, *sequence, std::span(prompt).subspan(common), options,
                                      [&](int32_t id) { return stream.push(id); },
                                      [](std::string_view piece, int32_t) {
                                        fmt::print("{}", piece);
                                        std::fflush(stdout);
                                        return true;
                                      });
      if (!result) return report(result.error());
      fmt::print("{}\n", stream.flush());
      std::fflush(stdout);
      history.push_back({"assistant", result->text});
      cached.assign(prompt.begin(), prompt.end());
      cached.insert(cached.end(), result->tokens.begin(), result->tokens.end());
      // the last sampled token was never fed to the model
      if (!result->tokens.empty() && sequence->length() < cached.size()) cached.resize(sequence->length());
      if (interactive) fmt::print(stderr, "[{} tokens, {:.1f} tok/s]\n", result->tokens.size(), result->tokens_per_second());
    }
    return int{kOk};
  });
}

}  // namespace apr::cli
