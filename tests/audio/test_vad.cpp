// Energy VAD: segments of synthetic audio whose speech positions are known, streaming equal to
// batch for any chunking, the options' effects, and refusals of bad input.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <numbers>
#include <random>
#include <vector>

#include "apr/audio/audio_file.hpp"
#include "apr/audio/vad.hpp"
#include "test_support.hpp"

using namespace apr;
using namespace apr::audio;

namespace {

constexpr size_t kRate = 16000;

/// Appends `seconds` of a 220 Hz tone of `amplitude` (silence when 0), plus noise at -70 dBFS.
void append(std::vector<float>& audio, double seconds, float amplitude, std::mt19937& rng) {
  std::normal_distribution<float> noise(0.0f, 3e-4f);
  const auto n = static_cast<size_t>(seconds * kRate);
  for (size_t i = 0; i < n; ++i) {
    const double t = static_cast<double>(audio.size()) / kRate;
    audio.push_back(amplitude * static_cast<float>(std::sin(2.0 * std::numbers::pi * 220.0 * t)) + noise(rng));
  }
}

/// Feeds `audio` in chunks of the sizes `sizes` cycles through, then finishes.
std::vector<SpeechSegment> streamed(const std::vector<float>& audio, const std::vector<size_t>& sizes, const VadOptions& options = {}) {
  auto stream = VadStream::create(options);
  REQUIRE(stream);
  std::vector<SpeechSegment> segments;
  size_t at = 0;
  for (size_t k = 0; at < audio.size(); ++k) {
    const size_t n = std::min(sizes[k % sizes.size()], audio.size() - at);
    auto done = stream->feed(std::span<const float>(audio).subspan(at, n));
    REQUIRE(done);
    for (const auto& s : *done) CHECK(s.end <= at + n);  // never released past the audio fed
    segments.insert(segments.end(), done->begin(), done->end());
    at += n;
  }
  auto rest = stream->finish();
  REQUIRE(rest);
  segments.insert(segments.end(), rest->begin(), rest->end());
  return segments;
}

bool same(const std::vector<SpeechSegment>& a, const std::vector<SpeechSegment>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].start != b[i].start || a[i].end != b[i].end || a[i].confidence != b[i].confidence || a[i].frames != b[i].frames) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("VAD finds tone bursts where they are, padded, and drops clicks", "[audio][vad]") {
  std::mt19937 rng(1);
  std::vector<float> audio;
  append(audio, 1.0, 0.0f, rng);
  append(audio, 1.0, 0.3f, rng);  // speech 1.0 - 2.0 s
  append(audio, 1.0, 0.0f, rng);
  append(audio, 0.1, 0.3f, rng);  // a click shorter than min_speech_ms
  append(audio, 1.0, 0.0f, rng);
  append(audio, 0.8, 0.3f, rng);  // speech 4.1 - 4.9 s
  append(audio, 0.5, 0.0f, rng);
  auto segments = detect_speech(audio);
  REQUIRE(segments);
  REQUIRE(segments->size() == 2);
  // frame edges are 20 ms apart, so starts are exact and padding is 200 ms (3200 samples)
  CHECK((*segments)[0].start == 16000 - 3200);
  CHECK((*segments)[0].end == 32000 + 3200);
  CHECK((*segments)[1].start == 65600 - 3200);
  CHECK((*segments)[1].end == 78400 + 3200);
  for (const auto& s : *segments) {
    CHECK(s.start < s.end);
    CHECK(s.confidence > 0.99);
    CHECK(s.confidence <= 1.0);
  }
}

TEST_CASE("VAD segments are clamped to the audio and short gaps merge", "[audio][vad]") {
  std::mt19937 rng(2);
  std::vector<float> audio;
  append(audio, 0.5, 0.2f, rng);
  append(audio, 0.2, 0.0f, rng);  // shorter than min_silence_ms: one run
  append(audio, 0.5, 0.2f, rng);
  append(audio, 0.35, 0.0f, rng);  // ends the run, but the 200 ms paddings overlap: merged
  append(audio, 0.5, 0.2f, rng);
  auto segments = detect_speech(audio);
  REQUIRE(segments);
  REQUIRE(segments->size() == 1);
  CHECK((*segments)[0].start == 0);
  CHECK((*segments)[0].end == audio.size());
  CHECK((*segments)[0].confidence > 0.5);
  CHECK((*segments)[0].confidence < 1.0);  // the silent frames inside lower it

  VadOptions no_padding;
  no_padding.speech_pad_ms = 0;
  auto separate = detect_speech(audio, no_padding);
  REQUIRE(separate);
  CHECK(separate->size() == 2);
}

TEST_CASE("VAD threshold decides what is speech", "[audio][vad]") {
  std::mt19937 rng(3);
  std::vector<float> audio;
  append(audio, 0.5, 0.0f, rng);
  append(audio, 1.0, 0.005f, rng);  // about -49 dBFS: quiet
  append(audio, 0.5, 0.0f, rng);
  auto default_threshold = detect_speech(audio);
  REQUIRE(default_threshold);
  CHECK(default_threshold->empty());
  VadOptions sensitive;
  sensitive.threshold_db = -55.0;
  auto found = detect_speech(audio, sensitive);
  REQUIRE(found);
  CHECK(found->size() == 1);
}

TEST_CASE("streaming VAD equals batch for any chunking", "[audio][vad]") {
  std::mt19937 rng(4);
  std::vector<float> audio;
  for (int i = 0; i < 12; ++i) {
    append(audio, 0.05 + 0.1 * (i % 5), 0.0f, rng);
    append(audio, 0.1 + 0.13 * (i % 4), 0.1f + 0.05f * static_cast<float>(i % 3), rng);
  }
  append(audio, 0.013, 0.2f, rng);  // ends inside a frame
  auto batch = detect_speech(audio);
  REQUIRE(batch);
  CHECK(batch->size() >= 3);
  for (const auto& sizes : std::vector<std::vector<size_t>>{{1}, {7}, {160}, {319, 321}, {4000}, {16000}, {1, 50000, 3}}) {
    INFO("chunk sizes starting " << sizes[0]);
    CHECK(same(streamed(audio, sizes), *batch));
  }
  VadOptions tight{.threshold_db = -30.0, .frame_ms = 30, .min_speech_ms = 0, .min_silence_ms = 0, .speech_pad_ms = 500};
  auto batch_tight = detect_speech(audio, tight);
  REQUIRE(batch_tight);
  CHECK(same(streamed(audio, {333, 17}, tight), *batch_tight));
}

TEST_CASE("VAD on recorded speech and silence", "[audio][vad]") {
  auto speech = read_audio(test::fixture("whisper/audio/b_sentence.wav"));
  REQUIRE(speech);
  auto segments = detect_speech(speech->samples);
  REQUIRE(segments);
  REQUIRE_FALSE(segments->empty());
  size_t covered = 0;
  for (const auto& s : *segments) covered += s.end - s.start;
  CHECK(covered > speech->samples.size() / 2);

  auto silence = read_audio(test::fixture("whisper/audio/e_silence.wav"));
  REQUIRE(silence);
  auto none = detect_speech(silence->samples);
  REQUIRE(none);
  CHECK(none->empty());
}

TEST_CASE("VAD refuses bad audio and options", "[audio][vad]") {
  std::vector<float> audio(1000, 0.1f);
  audio[700] = std::numeric_limits<float>::quiet_NaN();
  auto nan = detect_speech(audio);
  REQUIRE_FALSE(nan);
  CHECK_THAT(nan.error().message, Catch::Contains("sample 700"));

  auto stream = VadStream::create({});
  REQUIRE(stream);
  REQUIRE(stream->feed(std::vector<float>(500, 0.0f)));
  const float inf[] = {0.0f, std::numeric_limits<float>::infinity()};
  auto refused = stream->feed(inf);
  REQUIRE_FALSE(refused);
  CHECK_THAT(refused.error().message, Catch::Contains("sample 501"));
  CHECK(stream->samples() == 500);  // nothing of the refused chunk was kept
  REQUIRE(stream->finish());
  CHECK_FALSE(stream->feed(std::vector<float>(10, 0.0f)));
  CHECK_FALSE(stream->finish());

  CHECK_FALSE(VadStream::create({.frame_ms = 0}));
  CHECK_FALSE(VadStream::create({.threshold_db = std::numeric_limits<double>::infinity()}));
  auto empty = detect_speech({});
  REQUIRE(empty);
  CHECK(empty->empty());
}
