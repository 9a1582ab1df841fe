// Random-weight Voxtral models for benchmarks: VoxtralConfig::to_params_json() reads back to the
// same config; synthesize_voxtral() writes the very tensor names, shapes and dtype (BF16) of
// Mistral's checkpoint (the voxtral-micro fixture's layout); the result loads in any weight
// dtype, opens through open_voxtral() without loading, and transcribes to finite ids.
#include <catch2/catch.hpp>

#include <cmath>
#include <map>

#include "apr/format/convert.hpp"
#include "apr/models/synth.hpp"
#include "apr/models/voxtral_load.hpp"
#include "test_support.hpp"

using namespace apr;

namespace {

models::VoxtralConfig micro_config() {
  auto params = models::read_json_file(test::fixture("voxtral/voxtral-micro/params.json"));
  REQUIRE(params);
  auto config = models::VoxtralConfig::from_params_json(*params);
  REQUIRE(config);
  return *config;
}

}  // namespace

TEST_CASE("params.json written from a config reads back to it", "[voxtral][synth]") {
  for (const auto& config : {micro_config(), models::voxtral_realtime_dims()}) {
    const auto params = config.to_params_json();
    auto back = models::VoxtralConfig::from_params_json(params);
    REQUIRE(back);
    CHECK(back->to_params_json() == params);
    CHECK(back->decoder.dim == config.decoder.dim);
    CHECK(back->encoder.window == config.encoder.window);
    CHECK(back->samples_per_token == 1280);
    CHECK(back->delay_ms() == 480);
  }
  const auto real = models::voxtral_realtime_dims();
  CHECK(real.decoder.n_layers == 26);
  CHECK(real.decoder.n_kv_heads == 8);
  CHECK(real.encoder.hidden_dim == 5120);
  CHECK(real.vocab_size == 131072);
}

TEST_CASE("a synthesized Voxtral has the checkpoint's tensors and runs", "[voxtral][synth]") {
  const auto config = micro_config();
  auto synthesized = models::synthesize_voxtral(config, 3);
  REQUIRE(synthesized);
  auto reference = format::open_tensor_file(test::fixture("voxtral/voxtral-micro/consolidated.safetensors"));
  REQUIRE(reference);
  std::map<std::string, std::string> expected, made;  // name → dtype and shape
  for (const auto& t : (*reference)->tensors()) expected[std::string(t.name)] = fmt::format("{} {}", to_string(t.dtype), to_string(t.shape));
  for (const auto& t : (*synthesized)->tensors()) made[std::string(t.name)] = fmt::format("{} {}", to_string(t.dtype), to_string(t.shape));
  CHECK(made == expected);

  std::vector<float> samples(16000);
  for (size_t i = 0; i < samples.size(); ++i) samples[i] = 0.3f * std::sin(0.05f * static_cast<float>(i));
  ThreadPool pool(2);
  auto front_end = audio::LogMel::create(config.num_mel_bins);
  REQUIRE(front_end);
  for (DType dtype : {DType::bf16, DType::q8_0, DType::q4_0}) {
    INFO(to_string(dtype));
    std::shared_ptr<const format::TensorFile> file = *synthesized;
    if (dtype != DType::bf16) {
      auto converted = format::convert_file(**synthesized, dtype);
      REQUIRE(converted);
      file = *converted;
    }
    auto status = visit_dtype(dtype, [&](auto tag) -> Result<void> {
      using W = decltype(tag);
      auto model = models::VoxtralRealtime<W>::load(file, config, &pool);
      if (!model) return std::move(model).error();
      auto ids = models::voxtral_transcribe(**model, *front_end, samples, pool);
      if (!ids) return std::move(ids).error();
      // one id per audio position after the prompt (or fewer when EOS came first), all in the vocabulary
      const size_t positions = config.n_left_pad_tokens + (samples.size() + 1279) / 1280 + config.n_right_pad_tokens;
      CHECK_FALSE(ids->empty());
      CHECK(ids->size() <= positions - (**model).prompt_length() + 1);
      for (int32_t id : *ids) CHECK((id >= 0 && static_cast<size_t>(id) < config.vocab_size));
      return ok();
    });
    REQUIRE(status);
  }
}

TEST_CASE("open_voxtral reads the config of a folder without loading it", "[voxtral][synth]") {
  auto opened = models::open_voxtral(test::fixture("voxtral/voxtral-micro"), size_t{160});
  REQUIRE(opened);
  CHECK(opened->config.decoder.dim == 64);
  CHECK(opened->config.delay_ms() == 160);
  CHECK(opened->file->format() == "safetensors");
  auto missing = models::open_voxtral(test::fixture("voxtral"));
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error().message, Catch::Contains("consolidated.safetensors"));
}

TEST_CASE("params.json with wrong types or absurd values is refused by name", "[voxtral][synth]") {
  const auto good = micro_config().to_params_json();
  auto refused = [&](const nlohmann::json::json_pointer& where, const nlohmann::json& value, const std::string& named) {
    auto bad = good;
    bad[where] = value;
    auto config = models::VoxtralConfig::from_params_json(bad);
    INFO(where.to_string() << " = " << value.dump());
    REQUIRE_FALSE(config);
    CHECK(config.error().code == ErrorCode::format);
    CHECK_THAT(config.error().message, Catch::Contains(named));
  };
  refused("/multimodal"_json_pointer, 5, "'multimodal' must be an object");
  refused("/multimodal/whisper_model_args/encoder_args/audio_encoding_args/num_mel_bins"_json_pointer, "128", "'num_mel_bins'");
  refused("/sliding_window"_json_pointer, 1e15, "'sliding_window'");
  refused("/sliding_window"_json_pointer, int64_t{1} << 40, "'sliding_window'");
  refused("/streaming/n_left_pad_tokens"_json_pointer, -3, "'n_left_pad_tokens'");
  refused("/special_tokens/eos"_json_pointer, 5000, "'eos'");
  refused("/multimodal/whisper_model_args/encoder_args/audio_encoding_args/frame_rate"_json_pointer, 0, "'frame_rate'");
  refused("/multimodal/whisper_model_args/encoder_args/audio_encoding_args/frame_rate"_json_pointer, 13.0, "160-sample hops");
  refused("/norm_eps"_json_pointer, "tiny", "'norm_eps'");
  CHECK_FALSE(models::VoxtralConfig::from_params_json(nlohmann::json::array()));
}

TEST_CASE("a default special id outside a small vocabulary is refused", "[voxtral][synth]") {
  auto params = micro_config().to_params_json();
  params["vocab_size"] = 5;
  params["special_tokens"].erase("streaming_pad");  // its default, 32, is no id of 5
  auto config = models::VoxtralConfig::from_params_json(params);
  REQUIRE_FALSE(config);
  CHECK_THAT(config.error().message, Catch::Contains("'streaming_pad' is missing and its default 32 is outside 0 to 4"));
}
