// bench/synth_qwen2_gguf: writes the synthetic Qwen2-0.5B weights bench_qwen2 runs (same dims, same
// seed) as a GGUF file llama.cpp loads (models::write_qwen2_gguf), so both are timed on the very
// same weights. The tokenizer is a stand-in llama.cpp accepts: the 256 byte-level GPT-2 tokens,
// <|endoftext|> and padding tokens up to the vocab size; llama-bench prompts are random ids.
// usage: synth_qwen2_gguf --dtype f32|f16|q8_0|q4_0 -o FILE.gguf
#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "apr/models/qwen2_gguf.hpp"
#include "apr/models/synth.hpp"
#include "qwen2_05b.hpp"

using namespace apr;

namespace {

/// GPT-2's byte-level alphabet: byte b as the UTF-8 of the code point GPT-2 maps it to.
std::vector<std::string> byte_level_tokens() {
  auto utf8 = [](uint32_t cp) {
    std::string out;
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else {
      out += static_cast<char>(0xc0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3f));
    }
    return out;
  };
  std::vector<std::string> tokens;
  uint32_t next_unprintable = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    tokens.push_back(utf8(printable ? b : next_unprintable++));
  }
  return tokens;
}

/// The stand-in tokenizer for a vocabulary of `vocab_size` ids.
models::GgufTokenizer stand_in_tokenizer(size_t vocab_size) {
  models::GgufTokenizer tokenizer;
  tokenizer.tokens = byte_level_tokens();
  const auto end_of_text = static_cast<int32_t>(tokenizer.tokens.size());
  tokenizer.tokens.emplace_back("<|endoftext|>");
  while (tokenizer.tokens.size() < vocab_size) tokenizer.tokens.push_back(fmt::format("<|pad_{}|>", tokenizer.tokens.size()));
  tokenizer.token_types.assign(tokenizer.tokens.size(), 1);  // normal
  tokenizer.token_types[static_cast<size_t>(end_of_text)] = 3;  // control
  tokenizer.merges = {"\u0120 \u0120"};
  tokenizer.bos_id = end_of_text;
  tokenizer.eos_id = end_of_text;
  return tokenizer;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dtype_name, path;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--dtype") dtype_name = argv[i + 1];
    else if (flag == "-o") path = argv[i + 1];
  }
  const auto dtype = parse_dtype(dtype_name);
  if (!dtype || path.empty()) {
    fmt::print(stderr, "usage: synth_qwen2_gguf --dtype f32|f16|q8_0|q4_0 -o FILE.gguf\n");
    return 2;
  }
  const auto config = bench::qwen2_05b();
  auto file = models::synthesize_qwen2(config, *dtype, bench::kQwen2WeightSeed);
  if (!file) {
    fmt::print(stderr, "{}\n", file.error().message);
    return 1;
  }
  auto written = models::write_qwen2_gguf(**file, config, path, *dtype, fmt::format("apr synthetic qwen2-0.5b {}", to_string(*dtype)),
                                          stand_in_tokenizer(config.vocab_size));
  if (!written) {
    fmt::print(stderr, "{}\n", written.error().message);
    return 1;
  }
  return 0;
}
