// A stand-in tokenizer llama.cpp accepts for benchmark GGUF files with random weights: the 256
// byte-level GPT-2 tokens, <|endoftext|> and padding tokens up to the vocab size (llama-bench
// prompts are random ids, so no real vocabulary is needed).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "apr/models/qwen2_gguf.hpp"

namespace apr::bench {

/// GPT-2's byte-level alphabet: byte b as the UTF-8 of the code point GPT-2 maps it to.
inline std::vector<std::string> byte_level_tokens() {
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
inline models::GgufTokenizer stand_in_tokenizer(size_t vocab_size) {
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


}  // namespace apr::bench
