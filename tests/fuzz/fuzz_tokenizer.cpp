// seeds: tokenizer/*.jsonl
// libFuzzer target: tokenizer.json parsing, then encode/decode of the input with a small
// byte-level tokenizer (invalid UTF-8, NULs, special tokens).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "apr/text/tokenizer.hpp"

namespace {
const apr::text::Tokenizer& small_tokenizer() {
  static const apr::text::Tokenizer tokenizer = [] {
    nlohmann::json vocab = nlohmann::json::object();
    int id = 0;
    for (int b = 0; b < 256; ++b) vocab[apr::text::byte_level_encode(std::string(1, static_cast<char>(b)))] = id++;
    vocab["he"] = id++;
    vocab["hel"] = id++;
    const nlohmann::json json = {
        {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"h e", "he l"}}}},
        {"added_tokens", {{{"id", id}, {"content", "<|end|>"}, {"special", true}}}},
        {"normalizer", {{"type", "NFC"}}},
        {"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"Regex", std::string(apr::text::kQwen2Pattern)}}}}}};
    return apr::text::Tokenizer::from_tokenizer_json(json.dump()).value();
  }();
  return tokenizer;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  (void)apr::text::Tokenizer::from_tokenizer_json(text, "fuzz.json");
  const auto& tokenizer = small_tokenizer();
  const auto ids = tokenizer.encode(text);
  (void)tokenizer.decode(ids, size % 2 == 0);
  auto stream = tokenizer.stream();
  for (int32_t id : ids) (void)stream.push(id);
  (void)stream.flush();
  return 0;
}
