// Generates text with a Qwen2 model using the library directly: load, tokenize, generate with
// streamed output, report speed.
//
// usage: qwen2_generate MODEL PROMPT [MAX_TOKENS]
//   MODEL: a Hugging Face folder (config.json + *.safetensors + tokenizer.json) or an .apr file
#include <apr/apr.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL PROMPT [MAX_TOKENS]\n", argv[0]);
    return 2;
  }
  auto loaded = apr::models::load_language_model(argv[1]);
  if (!loaded) {
    std::fprintf(stderr, "error: %s\n", loaded.error().message.c_str());
    return 3;
  }
  // the tokenizer travels in an APR file's metadata, or sits beside the weights in a folder
  auto tokenizer = loaded->tokenizer_json.empty() ? apr::text::load_tokenizer(loaded->directory)
                                                  : apr::text::Tokenizer::from_tokenizer_json(loaded->tokenizer_json, argv[1]);
  if (!tokenizer) {
    std::fprintf(stderr, "error: %s\n", tokenizer.error().message.c_str());
    return 3;
  }
  const auto prompt = tokenizer->encode(argv[2]);

  apr::runtime::GenerationOptions options;
  options.max_tokens = argc > 3 ? std::stoul(argv[3]) : 32;
  options.sampling = apr::runtime::SamplingOptions::greedy();
  auto sequence = loaded->model->new_sequence(prompt.size() + options.max_tokens);
  auto stream = tokenizer->stream();
  std::printf("%s", argv[2]);
  auto result = apr::runtime::generate(
      *loaded->model, *sequence, prompt, options, [&](int32_t id) { return stream.push(id); },
      [](std::string_view piece, int32_t) {
        std::printf("%.*s", static_cast<int>(piece.size()), piece.data());
        std::fflush(stdout);
        return true;
      });
  if (!result) {
    std::fprintf(stderr, "\nerror: %s\n", result.error().message.c_str());
    return 1;
  }
  std::printf("%s\n", stream.flush().c_str());
  std::fprintf(stderr, "%zu prompt tokens, %zu generated, %.1f tokens/s\n", prompt.size(), result->tokens.size(),
               result->tokens_per_second());
  return 0;
}
