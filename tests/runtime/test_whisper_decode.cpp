// WhisperDecoder against openai/whisper (commit c0d2f62, float32, whisper-micro): decode() with
// language en, temperature 0, sample_len 32 — greedy without timestamps, with timestamps, beam 5 —
// and plain argmax for 16 tokens, from whisper's own log-mel (refs/<clip>.safetensors). Token
// sequences must be identical; avg_logprob, no_speech_prob and compression_ratio within 1e-4
// (relative for the log-probability), language probabilities within 1e-4 absolute.
#include <catch2/catch.hpp>

#include <fstream>

#include <nlohmann/json.hpp>

#include "apr/format/safetensors.hpp"
#include "apr/models/load_whisper.hpp"
#include "apr/runtime/whisper_decode.hpp"
#include "apr/text/load_tokenizer.hpp"
#include "test_support.hpp"

namespace test_whisper_decode {  // own namespace: this file compiles in one unity source with its area's others

using namespace apr;

namespace {

nlohmann::json decode_refs() {
  std::ifstream in(test::fixture("whisper/refs/decode.json"));
  return nlohmann::json::parse(in);
}

std::vector<float> log_mel(const std::string& clip) {
  auto refs = format::SafeTensorsFile::open(test::fixture("whisper/refs/" + clip + ".safetensors"));
  REQUIRE(refs);
  const TensorView* view = (*refs)->find("log_mel");
  REQUIRE(view != nullptr);
  const auto* data = reinterpret_cast<const float*>(view->bytes.data());
  return {data, data + view->numel()};
}

struct Fixture {
  models::LoadedWhisper loaded;
  std::optional<runtime::WhisperDecoder> decoder;
  Fixture() {
    auto model = models::load_whisper(test::fixture("whisper/whisper-micro"), DType::f32);
    REQUIRE(model);
    loaded = std::move(model).value();
    auto tokenizer = text::load_tokenizer(test::fixture("whisper/whisper-micro"));
    REQUIRE(tokenizer);
    auto made = runtime::WhisperDecoder::create(*loaded.model, std::move(tokenizer).value());
    REQUIRE(made);
    decoder.emplace(std::move(made).value());
  }
};

}  // namespace

TEST_CASE("non-speech tokens are whisper's list", "[whisper][decode]") {
  Fixture f;
  std::ifstream in(test::fixture("whisper/whisper-micro/multilingual_specials.json"));
  const auto specials = nlohmann::json::parse(in);
  CHECK(runtime::whisper_non_speech_tokens(f.decoder->tokenizer()) == specials["non_speech_tokens"].get<std::vector<int32_t>>());
}

TEST_CASE("compression ratio is zlib's, as whisper computes it", "[whisper][decode]") {
  const auto refs = decode_refs();
  for (const char* clip : {"a_hello", "b_sentence"}) {
    for (const char* mode : {"greedy", "timestamps", "beam5"}) {
      const auto& r = refs[clip][mode];
      CHECK(runtime::compression_ratio(r["text"].get<std::string>()) == Approx(r["compression_ratio"].get<double>()).epsilon(1e-12));
    }
  }
}

TEST_CASE("whisper-micro decoding matches openai/whisper token for token", "[whisper][decode]") {
  Fixture f;
  const auto refs = decode_refs();
  for (const char* clip : {"a_hello", "b_sentence"}) {
    INFO(clip);
    REQUIRE(f.decoder->encode(log_mel(clip)));

    auto detected = f.decoder->detect_language();
    REQUIRE(detected);
    for (const auto& [code, p] : *detected) {
      INFO(code);
      CHECK(std::abs(p - refs[clip]["language_probs"][code].get<float>()) < 1e-4f);
    }

    runtime::WhisperDecodeOptions plain;
    plain.language = "en";
    plain.without_timestamps = true;
    plain.suppress_blank = false;
    plain.suppress_tokens = "";
    plain.sample_len = 16;
    auto argmax = f.decoder->decode(plain);
    REQUIRE(argmax);
    CHECK(argmax->tokens == refs[clip]["argmax16_no_suppression"].get<std::vector<int32_t>>());

    for (const char* mode : {"greedy", "timestamps", "beam5"}) {
      INFO(mode);
      const auto& r = refs[clip][mode];
      runtime::WhisperDecodeOptions options;
      options.language = "en";
      options.sample_len = 32;
      options.without_timestamps = r["options"]["without_timestamps"].get<bool>();
      if (r["options"].contains("beam_size")) options.beam_size = r["options"]["beam_size"].get<size_t>();
      auto result = f.decoder->decode(options);
      REQUIRE(result);
      CHECK(result->tokens == r["tokens"].get<std::vector<int32_t>>());
      CHECK(result->text == r["text"].get<std::string>());
      CHECK(result->avg_logprob == Approx(r["avg_logprob"].get<double>()).epsilon(1e-4));
      CHECK(result->no_speech_prob == Approx(r["no_speech_prob"].get<double>()).epsilon(1e-4));
      CHECK(result->compression_ratio == Approx(r["compression_ratio"].get<double>()).epsilon(1e-9));
      REQUIRE(result->token_probs.size() == result->tokens.size());
      for (float p : result->token_probs) CHECK((p >= 0.0f && p <= 1.0f));
    }
  }
}

TEST_CASE("whisper decode options are checked", "[whisper][decode]") {
  Fixture f;
  REQUIRE(f.decoder->encode(log_mel("a_hello")));
  runtime::WhisperDecodeOptions options;
  options.language = "xx";
  CHECK_FALSE(f.decoder->decode(options));
  options.language = "en";
  options.beam_size = 2;
  options.best_of = 2;
  CHECK_FALSE(f.decoder->decode(options));
  options.best_of = 0;
  options.suppress_tokens = "1,abc";
  CHECK_FALSE(f.decoder->decode(options));
}

TEST_CASE("whisper detects the language when none is given and samples deterministically", "[whisper][decode]") {
  Fixture f;
  REQUIRE(f.decoder->encode(log_mel("a_hello")));
  runtime::WhisperDecodeOptions options;
  options.sample_len = 8;
  auto detected = f.decoder->decode(options);
  REQUIRE(detected);
  CHECK(detected->language == decode_refs()["a_hello"]["language_probs_top5"][0][0].get<std::string>());
  CHECK(detected->language_probs.size() == 99);
  options.language = "en";
  options.temperature = 0.7f;
  options.best_of = 3;
  options.seed = 7;
  auto first = f.decoder->decode(options);
  auto second = f.decoder->decode(options);
  REQUIRE(first);
  REQUIRE(second);
  CHECK(first->tokens == second->tokens);
  CHECK(first->temperature == 0.7f);
}

}  // namespace test_whisper_decode
