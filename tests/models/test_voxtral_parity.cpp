// Voxtral-Realtime (voxtral-micro: Voxtral Mini 4B Realtime's layout at small dims, BF16 weights)
// against the PyTorch reference reconstructed from vLLM (antirez/voxtral.c's
// python_simple_implementation.py, float32): filterbank (1e-6), log-mel with streaming padding,
// encoder output, adapter output, time embedding and the decoder's first logits within 1e-4;
// greedy ids identical (the reference's smallest top-1/top-2 margin is 0.022).
#include <catch2/catch.hpp>

#include <fstream>

#include <nlohmann/json.hpp>

#include "apr/audio/audio_file.hpp"
#include "apr/format/apr_writer.hpp"
#include "apr/format/safetensors.hpp"
#include "apr/models/voxtral.hpp"
#include "apr/models/voxtral_load.hpp"
#include "apr/models/voxtral_stream.hpp"
#include "test_support.hpp"

namespace test_voxtral_parity {  // own namespace: this file compiles in one unity source with its area's others

using namespace apr;

namespace {

std::vector<float> reference(const format::TensorFile& refs, const std::string& name) {
  const TensorView* view = refs.find(name);
  REQUIRE(view != nullptr);
  const auto* data = reinterpret_cast<const float*>(view->bytes.data());
  return {data, data + view->numel()};
}

float max_abs_diff(std::span<const float> a, std::span<const float> b) {
  REQUIRE(a.size() == b.size());
  float worst = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

}  // namespace

TEST_CASE("voxtral-micro matches the reference stage by stage", "[voxtral][parity]") {
  std::ifstream params_in(test::fixture("voxtral/voxtral-micro/params.json"));
  auto config = models::VoxtralConfig::from_params_json(nlohmann::json::parse(params_in));
  REQUIRE(config);
  CHECK(config->n_delay_tokens == 6);
  auto file = format::SafeTensorsFile::open(test::fixture("voxtral/voxtral-micro/consolidated.safetensors"));
  REQUIRE(file);
  auto model = models::VoxtralRealtime<F32>::load(std::move(file).value(), *config);
  REQUIRE(model);
  auto refs = format::SafeTensorsFile::open(test::fixture("voxtral/refs.safetensors"));
  REQUIRE(refs);
  std::ifstream json_in(test::fixture("voxtral/refs.json"));
  const auto expected = nlohmann::json::parse(json_in);
  auto front_end = audio::LogMel::create(config->num_mel_bins);
  REQUIRE(front_end);

  for (const std::string clip : {"a_hello", "b_sentence"}) {
    INFO(clip);
    // the filterbank, stored [201][128] by the reference
    const auto filters = reference(**refs, clip + ".mel_filters");
    float worst = 0.0f;
    for (size_t m = 0; m < 128; ++m) {
      for (size_t b = 0; b < 201; ++b) worst = std::max(worst, std::abs(front_end->filters()[m * 201 + b] - filters[b * 128 + m]));
    }
    CHECK(worst < 1e-6f);
    auto speech = audio::read_audio(test::fixture("whisper/audio/" + clip + ".wav"));
    REQUIRE(speech);
    auto mel = models::voxtral_log_mel(speech->samples, *config, *front_end, ThreadPool::global());
    REQUIRE(mel);
    CHECK(max_abs_diff(mel->values, reference(**refs, clip + ".log_mel")) < 1e-4f);
    auto encoded = (*model)->encode(mel->values, mel->frames);
    REQUIRE(encoded);
    CHECK(max_abs_diff(*encoded, reference(**refs, clip + ".encoder_out")) < 1e-4f);
    auto adapted = (*model)->adapt(*encoded);
    REQUIRE(adapted);
    CHECK(max_abs_diff(*adapted, reference(**refs, clip + ".adapter_out")) < 1e-4f);
    CHECK(adapted->size() / config->decoder.dim == expected[clip]["n_audio_tokens"].get<size_t>());
    CHECK(max_abs_diff(models::voxtral_time_embedding(6.0f, config->decoder.dim), reference(**refs, clip + ".t_cond")) < 1e-4f);
    std::vector<float> first_logits;
    auto ids = (*model)->generate(*adapted, &first_logits);
    REQUIRE(ids);
    CHECK(first_logits.size() == config->vocab_size);
    CHECK(max_abs_diff(first_logits, reference(**refs, clip + ".first_logits")) < 1e-4f);  // measured 3.6e-5, 5.2e-5
    CHECK(nlohmann::json(*ids) == expected[clip]["generated_ids"]);
  }
}

TEST_CASE("voxtral-micro streams the reference's greedy ids in chunks of any size", "[voxtral][stream]") {
  std::ifstream params_in(test::fixture("voxtral/voxtral-micro/params.json"));
  auto config = models::VoxtralConfig::from_params_json(nlohmann::json::parse(params_in));
  REQUIRE(config);
  auto file = format::SafeTensorsFile::open(test::fixture("voxtral/voxtral-micro/consolidated.safetensors"));
  REQUIRE(file);
  auto model = models::VoxtralRealtime<F32>::load(std::move(file).value(), *config);
  REQUIRE(model);
  auto front_end = audio::LogMel::create(config->num_mel_bins);
  REQUIRE(front_end);
  std::ifstream json_in(test::fixture("voxtral/refs.json"));
  const auto expected = nlohmann::json::parse(json_in);

  for (const std::string clip : {"a_hello", "b_sentence"}) {
    INFO(clip);
    auto speech = audio::read_audio(test::fixture("whisper/audio/" + clip + ".wav"));
    REQUIRE(speech);
    const std::span<const float> samples(speech->samples);
    auto offline = models::voxtral_transcribe(**model, *front_end, samples, ThreadPool::global());
    REQUIRE(offline);
    CHECK(nlohmann::json(*offline) == expected[clip]["generated_ids"]);
    // chunk sizes, and the encoder batched over 1 or 6 tokens (480 ms) of new audio
    for (const auto& [chunk, batch] : {std::pair<size_t, size_t>{1280, 1}, {777, 1}, {4000, 1}, {1280, 6}}) {
      INFO("chunk " << chunk << ", encoder batch " << batch);
      models::VoxtralStream<F32> stream(**model, *front_end, ThreadPool::global(), {.encoder_batch_tokens = batch});
      std::vector<int32_t> ids;
      bool waited = false;  // a batched stream held back ids an unbatched one had decided
      for (size_t first = 0; first < samples.size(); first += chunk) {
        auto decided = stream.feed(samples.subspan(first, std::min(chunk, samples.size() - first)));
        REQUIRE(decided);
        ids.insert(ids.end(), decided->begin(), decided->end());
        // decoder position p needs the audio up to (p − left pad + 1) tokens and 40 samples (the
        // last mel window), and the stream decides it as soon as that has arrived (batched: at
        // most `batch` − 1 tokens of audio later)
        const size_t fed = std::min(first + chunk, samples.size());
        const size_t ready = fed < 40 ? 0 : (fed - 40) / config->samples_per_token + config->n_left_pad_tokens;
        const size_t unbatched = ready >= (*model)->prompt_length() ? ready - (*model)->prompt_length() + 1 : 0;
        CHECK(ids.size() <= unbatched);
        CHECK(ids.size() + batch - 1 >= unbatched);
        waited = waited || ids.size() < unbatched;
      }
      CHECK(waited == (batch > 1));
      const size_t before_finish = ids.size();
      auto rest = stream.finish();
      REQUIRE(rest);
      ids.insert(ids.end(), rest->begin(), rest->end());
      CHECK(before_finish > 0);  // ids came out while audio was still arriving
      CHECK(ids == stream.ids());
      CHECK(ids == *offline);
      CHECK_FALSE(stream.feed(samples.subspan(0, 10)));
    }
    // streams built from one VoxtralStreamStart (the left pad run once) decide the same ids, every time
    auto start = models::VoxtralStreamStart<F32>::compute(**model, *front_end, ThreadPool::global());
    REQUIRE(start);
    for (int run = 0; run < 2; ++run) {
      models::VoxtralStream<F32> stream(*start, ThreadPool::global());
      for (size_t first = 0; first < samples.size(); first += 1280) REQUIRE(stream.feed(samples.subspan(first, std::min<size_t>(1280, samples.size() - first))));
      REQUIRE(stream.finish());
      CHECK(stream.ids() == *offline);
    }
  }
}

TEST_CASE("load_voxtral opens Mistral's folder and an APR file with the params in its metadata", "[voxtral][load]") {
  std::ifstream json_in(test::fixture("voxtral/refs.json"));
  const auto expected = nlohmann::json::parse(json_in);
  auto speech = audio::read_audio(test::fixture("whisper/audio/a_hello.wav"));
  REQUIRE(speech);
  auto transcribe = [&](models::VoxtralTranscriber& model) {
    REQUIRE(model.start({}));
    auto ids = model.feed(speech->samples);
    REQUIRE(ids);
    auto rest = model.finish();
    REQUIRE(rest);
    ids->insert(ids->end(), rest->begin(), rest->end());
    return *ids;
  };
  const std::string folder = test::fixture("voxtral/voxtral-micro");
  CHECK(models::is_voxtral_model(folder));
  CHECK_FALSE(models::is_voxtral_model(test::fixture("whisper/whisper-micro")));
  auto loaded = models::load_voxtral(folder, std::nullopt, ThreadPool::global());
  REQUIRE(loaded);
  CHECK((*loaded)->weight_dtype() == DType::bf16);  // as stored: exactly the reference's float32 values
  CHECK(nlohmann::json(transcribe(**loaded)) == expected["a_hello"]["generated_ids"]);

  // the same tensors in an APR file, params.json under voxtral.params
  auto file = format::SafeTensorsFile::open(folder + "/consolidated.safetensors");
  REQUIRE(file);
  std::vector<format::AprWriteTensor> tensors;
  for (const TensorView& view : (*file)->tensors()) tensors.push_back(format::AprWriteTensor::from_view(view));
  std::ifstream params_in(folder + "/params.json");
  const std::string apr_path = test::temp_path("voxtral-micro.apr");
  REQUIRE(format::write_apr(apr_path, format::apr_metadata_text({{"model_type", "voxtral_realtime"}, {"voxtral.params", nlohmann::json::parse(params_in)}}),
                            std::move(tensors)));
  CHECK(models::is_voxtral_model(apr_path));
  auto from_apr = models::load_voxtral(apr_path, std::nullopt, ThreadPool::global());
  REQUIRE(from_apr);
  CHECK(nlohmann::json(transcribe(**from_apr)) == expected["a_hello"]["generated_ids"]);

  // another weight dtype runs the same schedule (one id per position after the prompt, or EOS)
  auto quantized = models::load_voxtral(folder, DType::q8_0, ThreadPool::global());
  REQUIRE(quantized);
  CHECK((*quantized)->weight_dtype() == DType::q8_0);
  const auto ids = transcribe(**quantized);
  CHECK((ids.size() == expected["a_hello"]["generated_ids"].size() || (!ids.empty() && ids.back() == 2)));
}

}  // namespace test_voxtral_parity
