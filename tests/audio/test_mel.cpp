// Whisper's log-mel against openai/whisper (refs/<clip>.safetensors: log_mel_spectrogram of the
// WAV with 30 s of padding, then pad_or_trim to 3000 frames): mean difference below 1e-6 and
// 99.8% of the values within 1e-5; the rest (quiet bins of frames that also hold loud ones,
// where whisper's float32 FFT rounds — apr's runs in double) within 1e-4. The filterbank
// against whisper's mel_filters (librosa's) within 1e-6.
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <fstream>

#include "apr/audio/audio_file.hpp"
#include "apr/audio/mel.hpp"
#include "apr/format/safetensors.hpp"
#include "test_support.hpp"

using namespace apr;

namespace {

std::vector<float> reference(const std::string& clip, const char* name) {
  auto refs = format::SafeTensorsFile::open(test::fixture("whisper/refs/" + clip + ".safetensors"));
  REQUIRE(refs);
  const TensorView* view = (*refs)->find(name);
  REQUIRE(view != nullptr);
  const auto* data = reinterpret_cast<const float*>(view->bytes.data());
  return {data, data + view->numel()};
}

float max_abs_difference(std::span<const float> a, std::span<const float> b) {
  REQUIRE(a.size() == b.size());
  float worst = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

}  // namespace

TEST_CASE("the Slaney mel filterbank is librosa's", "[audio][mel]") {
  const auto filters = audio::mel_filterbank(80);
  CHECK(max_abs_difference(filters, reference("a_hello", "mel_filters")) < 1e-6f);
  CHECK(audio::mel_filterbank(128).size() == 128 * audio::kFrequencyBins);
}

TEST_CASE("log-mel of every clip matches whisper's", "[audio][mel]") {
  std::ifstream in(test::fixture("whisper/refs/decode.json"));
  const auto decode = nlohmann::json::parse(in);
  auto mel = audio::LogMel::create(80);
  REQUIRE(mel);
  ThreadPool pool(2);
  for (const char* clip : {"a_hello", "b_sentence", "d_long"}) {
    INFO(clip);
    auto loaded = audio::read_audio(test::fixture(std::string("whisper/audio/") + clip + ".wav"));
    REQUIRE(loaded);
    CHECK(loaded->samples.size() == decode[clip]["n_samples"].get<size_t>());
    auto spectrogram = mel->compute(loaded->samples, audio::kWindowSamples, pool);
    REQUIRE(spectrogram);
    CHECK(spectrogram->frames == decode[clip]["log_mel_frames_before_trim"].get<size_t>());
    const auto ours = audio::pad_or_trim(*spectrogram);
    const auto theirs = reference(clip, "log_mel");
    double total = 0.0;
    size_t outside = 0;
    for (size_t i = 0; i < ours.size(); ++i) {
      total += std::abs(ours[i] - theirs[i]);
      outside += std::abs(ours[i] - theirs[i]) > 1e-5f;
    }
    CHECK(total / static_cast<double>(ours.size()) < 1e-6);
    CHECK(outside < ours.size() / 500);
    CHECK(max_abs_difference(ours, theirs) < 1e-4f);
  }
}

TEST_CASE("log-mel refuses non-finite audio and bad filterbanks", "[audio][mel]") {
  auto mel = audio::LogMel::create(80);
  REQUIRE(mel);
  std::vector<float> samples(16000, 0.1f);
  samples[1234] = std::numeric_limits<float>::quiet_NaN();
  auto result = mel->compute(samples, 0, ThreadPool::global());
  REQUIRE_FALSE(result);
  CHECK(result.error().message.find("sample 1234") != std::string::npos);
  CHECK_FALSE(audio::LogMel::create(80, std::vector<float>(10)));
  CHECK_FALSE(audio::LogMel::create(0));
}
