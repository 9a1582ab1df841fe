// The tokenizer carried in GGUF metadata (tokenizer.ggml.*): qwen2-micro (Qwen's tokenizer.json)
// exported as GGUF and loaded back tokenizes every line of qwen_public.jsonl (transformers.js /
// HF tokenizers ids) exactly as the tokenizer.json does; token types, padding, special ids and
// the chat template survive; GGUF tokenizers apr cannot run are refused by name.
#include <catch2/catch.hpp>

#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apr/format/gguf.hpp"
#include "apr/format/safetensors.hpp"
#include "apr/models/apr_metadata.hpp"
#include "apr/models/load.hpp"
#include "apr/models/qwen2_gguf.hpp"
#include "apr/text/gguf_tokenizer.hpp"
#include "apr/text/tokenizer.hpp"
#include "test_support.hpp"

using namespace apr;

namespace {

/// qwen2-micro written as GGUF (F16 matrices) with its tokenizer and chat template, once.
const std::string& micro_gguf() {
  static const std::string path = [] {
    const std::string folder = test::fixture("qwen2/qwen2-micro");
    auto sources = models::read_import_sources(folder);
    REQUIRE(sources);
    auto config = models::Qwen2Config::from_hf_json(sources->config);
    REQUIRE(config);
    auto tokenizer = models::gguf_tokenizer_from_json(sources->tokenizer_json, *config, sources->tokenizer_config["chat_template"].get<std::string>(),
                                                          folder);
    REQUIRE(tokenizer);
    auto weights = format::open_tensor_file(folder + "/model.safetensors");
    REQUIRE(weights);
    const std::string out = test::temp_path("qwen2-micro-tokenizer.gguf");
    REQUIRE(models::write_qwen2_gguf(**weights, *config, out, DType::f16, "qwen2-micro", *tokenizer));
    return out;
  }();
  return path;
}

}  // namespace

TEST_CASE("GGUF tokenizer: every qwen_public.jsonl line encodes and decodes as the reference", "[gguf][tokenizer]") {
  auto loaded = models::load_language_model(micro_gguf());
  REQUIRE(loaded);
  REQUIRE_FALSE(loaded->tokenizer_json.empty());
  auto tokenizer = text::Tokenizer::from_tokenizer_json(loaded->tokenizer_json, micro_gguf());
  REQUIRE(tokenizer);
  std::ifstream lines(test::fixture("tokenizer/qwen_public.jsonl"));
  REQUIRE(lines);
  size_t checked = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    const auto expected = nlohmann::json::parse(line);
    const std::string text = expected["text"];
    INFO(expected["category"].get<std::string>() << ": " << text);
    const auto ids = tokenizer->encode(text);
    CHECK(ids == expected["ids"].get<std::vector<int32_t>>());
    CHECK(tokenizer->decode(ids) == expected["decoded"].get<std::string>());
    CHECK(tokenizer->decode(ids, true) == expected["decoded_skip_special"].get<std::string>());
    ++checked;
  }
  CHECK(checked == 133);
  CHECK(tokenizer->vocab_size() == 151665);
  CHECK(tokenizer->is_special(151645));
  CHECK_FALSE(tokenizer->is_special(151657));  // <tool_call>: an added token, not special
  CHECK(tokenizer->token_to_id("<tool_call>") == 151657);
  CHECK(loaded->chat_template.find("<|im_start|>") != std::string::npos);
  CHECK(loaded->config["eos_token_id"] == 151645);
}

TEST_CASE("GGUF tokenizer keys as llama.cpp writes them: padded to the embedding rows, typed", "[gguf][tokenizer]") {
  auto file = format::GgufFile::open(micro_gguf());
  REQUIRE(file);
  const auto& m = (*file)->metadata();
  CHECK(m["tokenizer.ggml.model"] == "gpt2");
  CHECK(m["tokenizer.ggml.pre"] == "qwen2");
  REQUIRE(m["tokenizer.ggml.tokens"].size() == 151936);
  CHECK(m["tokenizer.ggml.tokens"][9707] == "Hello");
  CHECK(m["tokenizer.ggml.tokens"][151700] == "[PAD151700]");
  CHECK(m["tokenizer.ggml.token_type"][9707] == 1);
  CHECK(m["tokenizer.ggml.token_type"][151643] == 3);
  CHECK(m["tokenizer.ggml.token_type"][151657] == 4);
  CHECK(m["tokenizer.ggml.token_type"][151700] == 5);
  CHECK(m["tokenizer.ggml.merges"].size() == 151387);
  CHECK(m["tokenizer.ggml.merges"][0] == "Ġ Ġ");
  CHECK(m["tokenizer.ggml.bos_token_id"] == 151643);
  CHECK(m["tokenizer.ggml.eos_token_id"] == 151645);
}

TEST_CASE("GGUF tokenizer: pre-tokenizer names choose the split pattern; unknown ones are refused", "[gguf][tokenizer]") {
  // a byte-level vocabulary of the 256 bytes and one merge, as llama.cpp lays it out
  nlohmann::json tokens = nlohmann::json::array();
  for (int b = 0; b < 256; ++b) tokens.push_back(text::byte_level_encode(std::string(1, static_cast<char>(b))));
  tokens.push_back("ab");
  tokens.push_back("12");
  tokens.push_back("<|end|>");
  nlohmann::json types = nlohmann::json::array();
  for (size_t i = 0; i + 1 < tokens.size(); ++i) types.push_back(1);
  types.push_back(3);
  nlohmann::json metadata = {{"tokenizer.ggml.model", "gpt2"}, {"tokenizer.ggml.tokens", tokens},
                             {"tokenizer.ggml.token_type", types}, {"tokenizer.ggml.merges", {"a b", "1 2"}}};
  auto load = [&] {
    auto json = text::tokenizer_json_from_gguf(metadata, "t.gguf");
    REQUIRE(json);
    return text::Tokenizer::from_tokenizer_json(json->dump(), "t.gguf").value();
  };
  // GPT-2's pattern (the default) keeps digits together; Qwen2's splits them one by one
  CHECK(load().encode("ab 123<|end|>") == std::vector<int32_t>{256, 32, 257, 51, 258});
  CHECK(load().encode("<|end|>", false) != std::vector<int32_t>{258});
  metadata["tokenizer.ggml.pre"] = "qwen2";
  CHECK(load().encode("ab 123") == std::vector<int32_t>{256, 32, 49, 50, 51});
  CHECK(text::tokenizer_json_from_gguf(metadata, "t.gguf")->contains("normalizer"));
  metadata["tokenizer.ggml.pre"] = "llama-bpe";
  auto unknown_pre = text::tokenizer_json_from_gguf(metadata, "t.gguf");
  REQUIRE_FALSE(unknown_pre);
  CHECK(unknown_pre.error().message == "t.gguf: tokenizer.ggml.pre 'llama-bpe' (apr knows qwen2, gpt-2 and default)");
  metadata["tokenizer.ggml.pre"] = "gpt-2";
  metadata["tokenizer.ggml.model"] = "llama";
  auto sentencepiece = text::tokenizer_json_from_gguf(metadata, "t.gguf");
  REQUIRE_FALSE(sentencepiece);
  CHECK(sentencepiece.error().code == ErrorCode::unsupported);
  metadata["tokenizer.ggml.model"] = "gpt2";
  metadata["tokenizer.ggml.token_type"].erase(0);
  auto short_types = text::tokenizer_json_from_gguf(metadata, "t.gguf");
  REQUIRE_FALSE(short_types);
  CHECK(short_types.error().message == "t.gguf: tokenizer.ggml.token_type has 258 entries for 259 tokens");
}
