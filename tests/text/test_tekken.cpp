// Mistral's Tekken tokenizer (tekken.json) on tests/text/data/tekken-micro.json, a file in
// Tekken's layout written by data/make_tekken.py: ids are ranks + 100 after the special tokens,
// encodings equal the rank-BPE reference's in data/tekken-micro.jsonl exactly, decoding drops the
// control tokens, and malformed files get errors that name the field.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apr/models/voxtral_load.hpp"
#include "apr/text/tekken.hpp"
#include "test_support.hpp"

using namespace apr;

namespace {

const std::string kData = (std::filesystem::path(__FILE__).parent_path() / "data").string();

nlohmann::json micro_json() {
  std::ifstream in(kData + "/tekken-micro.json");
  REQUIRE(in);
  return nlohmann::json::parse(in);
}

/// The error message of loading `json` as a tekken.json.
std::string error_of(const nlohmann::json& json) {
  auto tokenizer = text::tekken_from_json(json.dump(), "bad-tekken.json");
  REQUIRE_FALSE(tokenizer);
  return tokenizer.error().message;
}

}  // namespace

TEST_CASE("tekken.json: ids after the special tokens, encodings equal the reference", "[text][tekken]") {
  auto tokenizer = text::load_tekken(kData + "/tekken-micro.json");
  REQUIRE(tokenizer);
  CHECK(tokenizer->vocab_size() == 1024);
  CHECK(tokenizer->token_to_id("<s>") == 1);
  CHECK(tokenizer->token_to_id("</s>") == 2);
  CHECK(tokenizer->token_to_id("[STREAMING_PAD]") == 32);
  CHECK(tokenizer->token_to_id("<SPECIAL_99>") == 99);  // undeclared special ids are filled as mistral-common does
  for (int32_t id : {0, 1, 2, 32, 99}) CHECK(tokenizer->is_special(id));
  CHECK_FALSE(tokenizer->is_special(100));
  // rank r has id r + 100: the first 256 ranks are the single bytes
  const std::vector<int32_t> h{100 + 'H'};
  CHECK(tokenizer->decode(h) == "H");

  std::ifstream lines(kData + "/tekken-micro.jsonl");
  REQUIRE(lines);
  std::string line;
  size_t checked = 0;
  while (std::getline(lines, line)) {
    const auto item = nlohmann::json::parse(line);
    const auto text = item["text"].get<std::string>();
    INFO(text);
    const auto ids = tokenizer->encode(text, false);
    CHECK(ids == item["ids"].get<std::vector<int32_t>>());
    CHECK(tokenizer->decode(ids) == text);
    ++checked;
  }
  CHECK(checked == 5);

  // control tokens are dropped from the text (Tekken's default policy), kept on request
  const std::vector<int32_t> framed{1, 32, 32, 172, 466, 211, 548, 2};
  CHECK(tokenizer->decode(framed, true) == "Hello world");
  CHECK(tokenizer->decode(framed, false) == "<s>[STREAMING_PAD][STREAMING_PAD]Hello world</s>");
  // and so does the streaming decoder the transcriber prints through
  auto stream = tokenizer->stream(true);
  std::string streamed;
  for (int32_t id : framed) streamed += stream.push(id);
  streamed += stream.flush();
  CHECK(streamed == "Hello world");
}

TEST_CASE("tekken.json: only the first default_vocab_size ids are used", "[text][tekken]") {
  auto json = micro_json();
  json["config"]["default_vocab_size"] = 400;  // 300 ranks: the bytes and the first 44 merges
  auto tokenizer = text::tekken_from_json(json.dump(), "tekken-400.json");
  REQUIRE(tokenizer);
  CHECK(tokenizer->vocab_size() == 400);
  for (int32_t id : tokenizer->encode("the quick brown fox jumps over the lazy dog", false)) CHECK(id < 400);
}

TEST_CASE("tekken.json without special_tokens gets the legacy control tokens", "[text][tekken]") {
  auto json = micro_json();
  json.erase("special_tokens");
  auto tokenizer = text::tekken_from_json(json.dump(), "tekken-v3.json");
  REQUIRE(tokenizer);
  CHECK(tokenizer->token_to_id("[INST]") == 3);
  CHECK(tokenizer->token_to_id("[TOOL_CONTENT]") == 19);
  CHECK(tokenizer->token_to_id("<SPECIAL_20>") == 20);
}

TEST_CASE("malformed tekken.json files get errors naming the field", "[text][tekken]") {
  CHECK(text::tekken_from_json("[1, 2", "x.json").error().message.find("not a JSON object") != std::string::npos);
  auto json = micro_json();
  CHECK(error_of(nlohmann::json{{"vocab", json["vocab"]}}).find("no 'config' object") != std::string::npos);
  auto bad = json;
  bad["config"].erase("pattern");
  CHECK(error_of(bad).find("config.pattern") != std::string::npos);
  bad = json;
  bad["config"]["default_num_special_tokens"] = -1;
  CHECK(error_of(bad).find("config.default_num_special_tokens") != std::string::npos);
  bad = json;
  bad["config"]["default_vocab_size"] = 5000;
  CHECK(error_of(bad).find("needs 4900 vocab entries; the file has 924") != std::string::npos);
  bad = json;
  bad["vocab"][7]["rank"] = 3;
  CHECK(error_of(bad).find("vocab[7].rank 3 is repeated") != std::string::npos);
  bad = json;
  bad["vocab"][8]["rank"] = 924;
  CHECK(error_of(bad).find("vocab[8].rank 924 is out of range") != std::string::npos);
  bad = json;
  bad["vocab"][9]["token_bytes"] = "!!not base64";
  CHECK(error_of(bad).find("invalid base64") != std::string::npos);
  bad = json;
  bad["vocab"][10].erase("token_bytes");
  CHECK(error_of(bad).find("vocab[10] must be an object") != std::string::npos);
  bad = json;
  bad["special_tokens"][3]["rank"] = 1;
  CHECK(error_of(bad).find("special_tokens[3].rank 1 is repeated") != std::string::npos);
  bad = json;
  bad["special_tokens"][0]["rank"] = 100;
  CHECK(error_of(bad).find("special_tokens[0].rank 100 is out of range") != std::string::npos);
  bad = json;
  bad["vocab"].erase(bad["vocab"].begin() + 65, bad["vocab"].begin() + 66);  // the byte 'A' (rank 65) missing
  bad["config"]["default_vocab_size"] = 1023;
  CHECK_FALSE(text::tekken_from_json(bad.dump(), "x.json"));
}

TEST_CASE("a Voxtral model finds the tekken.json beside it, or the one named", "[text][tekken][voxtral]") {
  namespace fs = std::filesystem;
  const fs::path folder = test::temp_path("voxtral-with-tekken");
  fs::create_directories(folder);
  fs::copy_file(kData + "/tekken-micro.json", folder / "tekken.json", fs::copy_options::overwrite_existing);
  auto beside = models::voxtral_tokenizer(folder.string());
  REQUIRE(beside);
  CHECK(beside->vocab_size() == 1024);
  auto named = models::voxtral_tokenizer(test::fixture("voxtral/voxtral-micro"), kData + "/tekken-micro.json");
  REQUIRE(named);
  auto none = models::voxtral_tokenizer(test::fixture("voxtral/voxtral-micro"));
  REQUIRE_FALSE(none);
  CHECK(none.error().code == ErrorCode::not_found);
  auto wrong = models::voxtral_tokenizer(test::fixture("voxtral/voxtral-micro"), test::fixture("qwen2/qwen2-micro/tokenizer.json"));
  REQUIRE_FALSE(wrong);
  CHECK(wrong.error().message.find("Tekken file") != std::string::npos);
}
