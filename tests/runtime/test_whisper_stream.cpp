// Streaming transcription: the 36 s clip fed in 1.5 s chunks commits its first window as soon as
// 30 s have arrived, offers tentative text, and ends with exactly the batch transcription
// (segments, tokens, times, text), with the language given and with it detected.
#include <catch2/catch.hpp>

#include "apr/audio/audio_file.hpp"
#include "apr/audio/mel.hpp"
#include "apr/models/load_whisper.hpp"
#include "apr/runtime/whisper_stream.hpp"
#include "apr/text/load_tokenizer.hpp"
#include "test_support.hpp"

namespace test_whisper_stream {  // own namespace: this file compiles in one unity source with its area's others

using namespace apr;

namespace {

struct Fixture {
  models::LoadedWhisper loaded;
  std::optional<runtime::WhisperDecoder> decoder;
  std::optional<audio::LogMel> front_end;
  audio::Audio speech;
  Fixture() {
    auto model = models::load_whisper(test::fixture("whisper/whisper-micro"), DType::f32);
    REQUIRE(model);
    loaded = std::move(model).value();
    auto tokenizer = text::load_tokenizer(test::fixture("whisper/whisper-micro"));
    REQUIRE(tokenizer);
    auto made = runtime::WhisperDecoder::create(*loaded.model, std::move(tokenizer).value());
    REQUIRE(made);
    decoder.emplace(std::move(made).value());
    auto mel = loaded.front_end();
    REQUIRE(mel);
    front_end.emplace(std::move(mel).value());
    auto file = audio::read_audio(test::fixture("whisper/audio/d_long.wav"));
    REQUIRE(file);
    speech = std::move(file).value();
  }
};

void check_same(const runtime::Transcript& a, const runtime::Transcript& b) {
  CHECK(a.text == b.text);
  CHECK(a.language == b.language);
  REQUIRE(a.segments.size() == b.segments.size());
  for (size_t i = 0; i < a.segments.size(); ++i) {
    CHECK(a.segments[i].tokens == b.segments[i].tokens);
    CHECK(a.segments[i].start == b.segments[i].start);
    CHECK(a.segments[i].end == b.segments[i].end);
    CHECK(a.segments[i].seek == b.segments[i].seek);
  }
}

}  // namespace

TEST_CASE("a stream ends with the batch transcription of the same audio", "[whisper][stream]") {
  Fixture f;
  const std::string language = GENERATE(std::string("en"), std::string());
  INFO("language '" << language << "'");
  runtime::TranscribeOptions options;
  options.decode.language = language;
  options.temperatures = {0.0f};
  runtime::WhisperTranscriber batch_transcriber(*f.decoder);
  auto batch = batch_transcriber.transcribe_samples(f.speech.samples, *f.front_end, options, ThreadPool::global());
  REQUIRE(batch);

  auto stream = runtime::WhisperStream::create(*f.decoder, *f.front_end, options, ThreadPool::global(), 5.0);
  REQUIRE(stream);
  const size_t chunk = 24000;  // 1.5 s
  size_t committed = 0, first_commit_at = 0, tentative_updates = 0;
  for (size_t at = 0; at < f.speech.samples.size(); at += chunk) {
    const size_t n = std::min(chunk, f.speech.samples.size() - at);
    auto update = stream->feed(std::span(f.speech.samples).subspan(at, n));
    REQUIRE(update);
    if (!update->committed.empty() && committed == 0) first_commit_at = at + n;
    committed += update->committed.size();
    tentative_updates += !update->tentative.empty();
  }
  CHECK(committed > 0);
  CHECK(first_commit_at >= audio::kWindowSamples);            // a window commits once 30 s are in
  CHECK(first_commit_at < audio::kWindowSamples + 2 * chunk);  // and not much later
  CHECK(tentative_updates > 0);
  auto streamed = stream->finish();
  REQUIRE(streamed);
  check_same(*streamed, *batch);
}

TEST_CASE("a short stream and bad streams", "[whisper][stream]") {
  Fixture f;
  runtime::TranscribeOptions options;
  options.decode.language = "en";
  options.temperatures = {0.0f};
  auto stream = runtime::WhisperStream::create(*f.decoder, *f.front_end, options, ThreadPool::global(), 0.0);
  REQUIRE(stream);
  auto nothing = stream->finish();
  CHECK_FALSE(nothing);
  const auto five_seconds = std::span(f.speech.samples).first(80000);
  REQUIRE(stream->feed(five_seconds.first(40000)));
  REQUIRE(stream->feed(five_seconds.subspan(40000)));
  auto streamed = stream->finish();
  REQUIRE(streamed);
  runtime::WhisperTranscriber transcriber(*f.decoder);
  auto batch = transcriber.transcribe_samples(five_seconds, *f.front_end, options, ThreadPool::global());
  REQUIRE(batch);
  check_same(*streamed, *batch);

  std::vector<float> bad(1000, 0.0f);
  bad[10] = std::numeric_limits<float>::quiet_NaN();
  auto fresh = runtime::WhisperStream::create(*f.decoder, *f.front_end, options, ThreadPool::global());
  REQUIRE(fresh);
  auto refused = fresh->feed(bad);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("sample 10") != std::string::npos);
  CHECK(fresh->samples() == 0);  // nothing of the refused chunk was kept
  options.clip_timestamps = {1.0, 2.0};
  CHECK_FALSE(runtime::WhisperStream::create(*f.decoder, *f.front_end, options, ThreadPool::global()));
}

}  // namespace test_whisper_stream
