// load_model_tokenizer(): the same Qwen tokenizer found in a folder, its tokenizer.json, and an
// APR file's metadata; GGUF files without tokenizer keys and pickles refused with reasons.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "apr/models/file_tokenizer.hpp"
#include "test_support.hpp"

using apr::models::load_model_tokenizer;
using apr::test::fixture;
using apr::test::temp_path;

TEST_CASE("a model folder's tokenizer encodes as the reference") {
  auto tokenizer = load_model_tokenizer(fixture("qwen2/qwen2-micro"));
  REQUIRE(tokenizer);
  CHECK(tokenizer->encode("Hello world") == std::vector<int32_t>{9707, 1879});  // tokenizer/qwen_public.jsonl
  auto direct = load_model_tokenizer(fixture("qwen2/qwen2-micro/tokenizer.json"));
  REQUIRE(direct);
  CHECK(direct->encode("snake_case_identifier") == std::vector<int32_t>{72139, 19096, 33176});
}

TEST_CASE("a .safetensors file finds the tokenizer beside it") {
  auto tokenizer = load_model_tokenizer(fixture("qwen2/qwen2-micro/model.safetensors"));
  REQUIRE(tokenizer);
  CHECK(tokenizer->vocab_size() >= 151643);
}

TEST_CASE("files without a tokenizer are refused with the reason") {
  auto gguf = load_model_tokenizer(fixture("qwen2/formats/qwen2-v512-f32.gguf"));
  REQUIRE_FALSE(gguf);
  CHECK(gguf.error().message.find("no tokenizer.ggml") != std::string::npos);
  auto pickle = load_model_tokenizer(fixture("qwen2/formats/malicious.pkl"));
  REQUIRE_FALSE(pickle);
  CHECK(pickle.error().message.find("never unpickles") != std::string::npos);
  CHECK(load_model_tokenizer(temp_path("no-such-model")).error().code == apr::ErrorCode::not_found);
}
