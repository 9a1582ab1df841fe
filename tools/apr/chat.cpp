// apr chat: an interactive conversation with a chat model (ChatML), streaming the replies.
#include <unistd.h>

#include <iostream>
#include <memory>
#include <string>

#include "apr/runtime/chat_session.hpp"
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
    runtime::ChatOptions options;
    options.generation.max_tokens = flags->max_tokens;
    options.generation.sampling = flags->sampling;
    options.generation.stop_ids = stop_ids_for(*loaded, &*tokenizer);
    options.context = flags->context;
    options.system = flags->system;
    auto session = runtime::ChatSession::create(*loaded->model, std::move(tokenizer).value(), std::move(chat_template).value(), options);
    if (!session) return report(session.error());
    const bool interactive = ::isatty(STDIN_FILENO) == 1;
    if (interactive) fmt::print(stderr, "apr chat: type a message, /reset to start over, /exit or Ctrl-D to quit\n");
    std::string line;
    for (;;) {
      if (interactive) fmt::print(stderr, "> ");
      if (!std::getline(std::cin, line) || line == "/exit") break;
      if (line == "/reset") {
        session->reset();
        continue;
      }
      if (line.empty()) continue;
      auto result = session->reply(line, [](std::string_view piece, int32_t) {
        fmt::print("{}", piece);
        std::fflush(stdout);
        return true;
      });
      if (!result) return report(result.error());
      fmt::print("\n");
      std::fflush(stdout);
      if (interactive) fmt::print(stderr, "[{} tokens, {:.1f} tok/s]\n", result->tokens.size(), result->tokens_per_second());
    }
    return int{kOk};
  });
}

}  // namespace apr::cli
