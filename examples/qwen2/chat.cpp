// A chat REPL on the library: ChatML conversation with a Qwen2 model, replies streamed as they
// are generated, the KV cache reused from turn to turn (each turn runs only its own tokens).
//
// usage: qwen2_chat MODEL [SYSTEM_MESSAGE]
//   MODEL: an .apr file (tokenizer and chat template inside), a Hugging Face folder or a GGUF file
//   Type a message per line; /reset starts over; Ctrl-D or /exit quits.
#include <apr/apr.hpp>

#include <cstdio>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL [SYSTEM_MESSAGE]\n", argv[0]);
    return 2;
  }
  auto loaded = apr::models::load_language_model(argv[1]);
  if (!loaded) {
    std::fprintf(stderr, "error: %s\n", loaded.error().message.c_str());
    return 3;
  }
  apr::runtime::ChatOptions options;
  options.generation.max_tokens = 256;
  options.generation.sampling.temperature = 0.7f;
  options.generation.sampling.top_p = 0.8f;
  options.generation.sampling.seed = 1;
  if (argc > 2) options.system = argv[2];
  auto session = apr::runtime::ChatSession::create(*loaded, options);
  if (!session) {
    std::fprintf(stderr, "error: %s\n", session.error().message.c_str());
    return 3;
  }
  std::string line;
  while (std::fprintf(stderr, "> "), std::getline(std::cin, line) && line != "/exit") {
    if (line == "/reset") {
      session->reset();
      continue;
    }
    if (line.empty()) continue;
    auto reply = session->reply(line, [](std::string_view piece, int32_t) {
      std::printf("%.*s", static_cast<int>(piece.size()), piece.data());
      std::fflush(stdout);
      return true;
    });
    if (!reply) {
      std::fprintf(stderr, "\nerror: %s\n", reply.error().message.c_str());
      return 1;
    }
    std::printf("\n");
    std::fprintf(stderr, "[%zu tokens at %.1f tokens/s, %zu in the cache]\n", reply->tokens.size(), reply->tokens_per_second(),
                 session->cached_tokens());
  }
  return 0;
}
