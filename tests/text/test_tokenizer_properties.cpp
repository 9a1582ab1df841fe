// Tokenizer properties: decode(encode(s)) == s on random valid UTF-8, streaming decode equals
// batch decode, and bad or huge inputs finish without crashing.
#include <catch2/catch.hpp>

#include <random>
#include <string>

#include "apr/text/load_tokenizer.hpp"
#include "test_support.hpp"

namespace test_tokenizer_properties {  // own namespace: this file compiles in one unity source with its area's others

using namespace apr;
using namespace apr::text;

namespace {

const Tokenizer& qwen() {
  static const Tokenizer tokenizer = load_tokenizer(test::fixture("tokenizer/qwen/tokenizer.json")).value();
  return tokenizer;
}

/// Random valid UTF-8 mixing ASCII, whitespace, Latin, CJK, emoji, Cyrillic and Hiragana, without
/// combining marks, so it is already NFC (the Qwen tokenizer normalises to NFC).
std::string random_text(std::mt19937& rng, size_t length) {
  const char32_t ranges[][2] = {{0x20, 0x7E}, {0x09, 0x0A}, {0xC0, 0xFF}, {0x4E00, 0x4FFF}, {0x1F600, 0x1F64F}, {0x0400, 0x0482}, {0x3041, 0x3096}};
  std::string out;
  for (size_t i = 0; i < length; ++i) {
    const auto& r = ranges[rng() % std::size(ranges)];
    append_utf8(out, r[0] + rng() % (r[1] - r[0] + 1));
  }
  return out;
}

}  // namespace

TEST_CASE("decode(encode(s)) == s for random valid UTF-8", "[tokenizer][property]") {
  std::mt19937 rng(1234);
  for (int i = 0; i < 300; ++i) {
    const std::string text = random_text(rng, 1 + rng() % 60);
    INFO(text);
    REQUIRE(qwen().decode(qwen().encode(text, false)) == text);
  }
}

TEST_CASE("streaming decode emits only complete UTF-8 and equals the batch decode", "[tokenizer][stream]") {
  const std::string text = "Grüße 你好 😀 done";
  const auto ids = qwen().encode(text);
  auto stream = qwen().stream();
  std::string streamed;
  for (int32_t id : ids) {
    const std::string piece = stream.push(id);
    REQUIRE(is_valid_utf8(piece));
    streamed += piece;
  }
  streamed += stream.flush();
  REQUIRE(streamed == text);
  // a lone lead byte is held back, then flushed as U+FFFD
  auto partial = qwen().stream();
  REQUIRE(partial.push(160).empty());  // byte 0xE4
  REQUIRE(partial.flush() == "\xEF\xBF\xBD");
}

TEST_CASE("invalid UTF-8, NUL bytes, 1 MB inputs and 100k repeats finish", "[tokenizer][property]") {
  const std::string invalid("\xFF\xFE a \xC0\xAF b \xE4", 10);
  const auto ids = qwen().encode(invalid);
  REQUIRE(qwen().decode(ids) == utf8_lossy(invalid));
  REQUIRE(qwen().decode(qwen().encode(std::string("a\0b", 3))) == std::string("a\0b", 3));
  std::mt19937 rng(5);
  std::string big;
  while (big.size() < (1u << 20)) big += random_text(rng, 200) + " ";
  REQUIRE(qwen().decode(qwen().encode(big)) == big);
  const std::string repeated(100000, 'a');
  REQUIRE(qwen().decode(qwen().encode(repeated)) == repeated);
  const std::string spaces(100000, ' ');
  REQUIRE(qwen().decode(qwen().encode(spaces)) == spaces);
}

TEST_CASE("malformed tokenizer files are refused with the field named", "[tokenizer]") {
  REQUIRE(Tokenizer::from_tokenizer_json("{", "t.json").error().message == "t.json: not a JSON object");
  REQUIRE(Tokenizer::from_tokenizer_json(R"({"model":{"type":"Unigram"}})", "t.json").error().message == "t.json: model type 'Unigram' is not BPE");
  REQUIRE(Tokenizer::from_tokenizer_json(R"({"model":{"vocab":{"a":-1},"merges":[]}})", "t.json").error().message.find("model.vocab['a']") != std::string::npos);
  REQUIRE(Tokenizer::from_tokenizer_json(R"({"model":{"vocab":{"a":0},"merges":["a b"]}})", "t.json").error().message.find("merge 0") != std::string::npos);
  REQUIRE(Tokenizer::from_tiktoken("!!! 0\n", {}, kGpt2Pattern, "r.tiktoken").error().message == "r.tiktoken:1: invalid base64 '!!!'");
  REQUIRE(Tokenizer::from_tiktoken("QQ== x\n", {}, kGpt2Pattern, "r.tiktoken").error().message == "r.tiktoken:1: invalid rank 'x'");
  REQUIRE_FALSE(load_tokenizer(test::temp_path("no-such-tokenizer.json")));
}

}  // namespace test_tokenizer_properties
