// WhisperTranscriber against openai/whisper's transcribe() (commit c0d2f62, float32,
// whisper-micro, temperature 0, language en): segments (seek, start, end, tokens) identical
// (times within 1e-9 s), word timestamps (refs/words.json) with identical words and times
// within 0.01 s, word probabilities within 1e-3 relative. The log-mel comes from whisper itself
// (refs/<clip>.safetensors, the first 3000 frames of the padded spectrogram), which covers every
// window of the short clips; the 36 s clip runs from its WAV through apr's own log-mel.
#include <catch2/catch.hpp>

#include <fstream>

#include <nlohmann/json.hpp>

#include "apr/audio/audio_file.hpp"
#include "apr/audio/mel.hpp"
#include "apr/format/safetensors.hpp"
#include "apr/models/load_whisper.hpp"
#include "apr/runtime/whisper_transcribe.hpp"
#include "apr/text/load_tokenizer.hpp"
#include "test_support.hpp"

namespace test_whisper_transcribe {  // own namespace: this file compiles in one unity source with its area's others

using namespace apr;

namespace {

nlohmann::json read_json(const std::string& name) {
  std::ifstream in(test::fixture("whisper/refs/" + name));
  return nlohmann::json::parse(in);
}

/// whisper's padded log-mel of a clip shorter than 30 s: [80][content + 3000], the reference
/// frames first; frames past them are never read for such clips (filled with the last one).
std::vector<float> padded_log_mel(const std::string& clip, size_t frames) {
  auto refs = format::SafeTensorsFile::open(test::fixture("whisper/refs/" + clip + ".safetensors"));
  REQUIRE(refs);
  const TensorView* view = (*refs)->find("log_mel");
  REQUIRE(view != nullptr);
  const auto* data = reinterpret_cast<const float*>(view->bytes.data());
  std::vector<float> mel(80 * frames);
  for (size_t m = 0; m < 80; ++m) {
    for (size_t f = 0; f < frames; ++f) mel[m * frames + f] = data[m * 3000 + std::min<size_t>(f, 2999)];
  }
  return mel;
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

runtime::TranscribeOptions reference_options() {
  runtime::TranscribeOptions options;
  options.decode.language = "en";
  options.temperatures = {0.0f};
  return options;
}

}  // namespace

TEST_CASE("DTW path and median filter follow whisper's definitions", "[whisper][transcribe]") {
  // a clear diagonal: the path walks it
  const std::vector<double> cost{0, 5, 5, 5, 0, 5, 5, 5, 0};
  const auto path = runtime::dtw_path(cost, 3, 3);
  CHECK(path == std::vector<std::pair<int64_t, int64_t>>{{0, 0}, {1, 1}, {2, 2}});
  // two rows over four columns: the cheap cells decide where the row changes
  const std::vector<double> wide{0, 0, 9, 9, 9, 9, 0, 0};
  CHECK(runtime::dtw_path(wide, 2, 4) == std::vector<std::pair<int64_t, int64_t>>{{0, 0}, {0, 1}, {1, 2}, {1, 3}});
  std::vector<float> row{5, 1, 9, 2, 7, 3, 8, 4};
  runtime::median_filter_rows(row, 1, row.size(), 3);
  // reflect padding: [1, 5, 1, 9, 2, 7, 3, 8, 4, 8]
  CHECK(row == std::vector<float>{1, 5, 2, 7, 3, 7, 4, 8});
  std::vector<float> short_row{3, 1};
  runtime::median_filter_rows(short_row, 1, 2, 7);
  CHECK(short_row == std::vector<float>{3, 1});
}

TEST_CASE("punctuation merges into the neighbouring words as whisper merges it", "[whisper][transcribe]") {
  std::vector<runtime::WordTiming> words{{" (", {1}, 0, 1, 0.5}, {"Hello", {2}, 1, 2, 0.5}, {",", {3}, 2, 3, 0.5}, {" world", {4}, 3, 4, 0.5},
                                         {"!", {5}, 4, 5, 0.5}};
  runtime::merge_punctuations(words, "\"'([{-", "\"'.,!?:)]}");
  CHECK(words[0].word.empty());
  CHECK(words[1].word == " (Hello,");
  CHECK(words[1].tokens == std::vector<int32_t>{1, 2, 3});
  CHECK(words[3].word == " world!");
  // Python's str.strip(): \x1f and U+3000 are white space, ill-formed bytes are not
  CHECK(runtime::strip_text("\x1f \u3000word\t") == "word");
  CHECK(runtime::strip_text(" \xF0\x9F") == "\xF0\x9F");
  CHECK(runtime::round_centiseconds(0.125) == 0.12);  // 0.125 is exact: ties to even
  CHECK(runtime::round_centiseconds(2.675) == 2.67);  // 2.675 is 2.67499999… in binary
}

TEST_CASE("short clips transcribe segment for segment with word timestamps as whisper does", "[whisper][transcribe]") {
  Fixture f;
  const auto decode_refs = read_json("decode.json");
  const auto words_refs = read_json("words.json");
  const std::string clip = "b_sentence";
  const size_t frames = decode_refs[clip]["log_mel_frames_before_trim"].get<size_t>();
  const auto mel = padded_log_mel(clip, frames);
  runtime::WhisperTranscriber transcriber(*f.decoder);
  auto options = reference_options();
  options.word_timestamps = true;
  std::vector<size_t> streamed;
  options.on_segment = [&](const runtime::TranscriptSegment& s) { streamed.push_back(s.id); };
  auto result = transcriber.transcribe(mel, frames, options);
  REQUIRE(result);
  const auto& expected = words_refs["clips"][clip];
  REQUIRE(result->segments.size() == expected.size());
  CHECK(streamed.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("segment " << i);
    const auto& got = result->segments[i];
    const auto& want = expected[i];
    CHECK(got.tokens == want["tokens"].get<std::vector<int32_t>>());
    CHECK(got.start == Approx(want["start"].get<double>()).margin(0.01));
    CHECK(got.end == Approx(want["end"].get<double>()).margin(0.01));
    REQUIRE(got.words.size() == want["words"].size());
    for (size_t w = 0; w < got.words.size(); ++w) {
      CHECK(got.words[w].word == want["words"][w]["word"].get<std::string>());
      CHECK(got.words[w].start == Approx(want["words"][w]["start"].get<double>()).margin(0.01));
      CHECK(got.words[w].end == Approx(want["words"][w]["end"].get<double>()).margin(0.01));
      CHECK(got.words[w].probability == Approx(want["words"][w]["probability"].get<double>()).epsilon(1e-3));
    }
  }
}

TEST_CASE("transcription options are checked", "[whisper][transcribe]") {
  Fixture f;
  runtime::WhisperTranscriber transcriber(*f.decoder);
  std::vector<float> too_short(80 * 100);
  CHECK_FALSE(transcriber.transcribe(too_short, 100, reference_options()));
  auto options = reference_options();
  options.temperatures.clear();
  std::vector<float> mel(80 * 3000, -1.0f);
  CHECK_FALSE(transcriber.transcribe(mel, 3000, options));
  // silence only: no content frames, no segments
  auto empty = transcriber.transcribe(mel, 3000, reference_options());
  REQUIRE(empty);
  CHECK(empty->segments.empty());
  CHECK(empty->text.empty());
}

TEST_CASE("long audio (36 s) transcribes window by window as whisper does", "[whisper][transcribe]") {
  Fixture f;
  auto audio_file = audio::read_audio(test::fixture("whisper/audio/d_long.wav"));
  REQUIRE(audio_file);
  auto front_end = audio::LogMel::create(80);
  REQUIRE(front_end);
  auto mel = front_end->compute(audio_file->samples, audio::kWindowSamples, ThreadPool::global());
  REQUIRE(mel);
  runtime::WhisperTranscriber transcriber(*f.decoder);

  const auto expected = read_json("decode.json")["d_long"]["transcribe"]["segments"];
  auto plain = transcriber.transcribe(mel->values, mel->frames, reference_options());
  REQUIRE(plain);
  REQUIRE(plain->segments.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("segment " << i);
    CHECK(plain->segments[i].seek == expected[i]["seek"].get<size_t>());
    CHECK(plain->segments[i].tokens == expected[i]["tokens"].get<std::vector<int32_t>>());
    CHECK(plain->segments[i].start == Approx(expected[i]["start"].get<double>()).margin(1e-9));
    CHECK(plain->segments[i].end == Approx(expected[i]["end"].get<double>()).margin(1e-9));
    CHECK(plain->segments[i].avg_logprob == Approx(expected[i]["avg_logprob"].get<double>()).epsilon(1e-4));
  }

  auto options = reference_options();
  options.word_timestamps = true;
  auto with_words = transcriber.transcribe(mel->values, mel->frames, options);
  REQUIRE(with_words);
  const auto words = read_json("words.json")["clips"]["d_long"];
  REQUIRE(with_words->segments.size() == words.size());
  for (size_t i = 0; i < words.size(); ++i) {
    INFO("segment " << i);
    CHECK(with_words->segments[i].tokens == words[i]["tokens"].get<std::vector<int32_t>>());
    CHECK(with_words->segments[i].start == Approx(words[i]["start"].get<double>()).margin(0.01));
    CHECK(with_words->segments[i].end == Approx(words[i]["end"].get<double>()).margin(0.01));
    REQUIRE(with_words->segments[i].words.size() == words[i]["words"].size());
    for (size_t w = 0; w < words[i]["words"].size(); ++w) {
      CHECK(with_words->segments[i].words[w].word == words[i]["words"][w]["word"].get<std::string>());
      CHECK(with_words->segments[i].words[w].start == Approx(words[i]["words"][w]["start"].get<double>()).margin(0.01));
      CHECK(with_words->segments[i].words[w].end == Approx(words[i]["words"][w]["end"].get<double>()).margin(0.01));
    }
  }
}

}  // namespace test_whisper_transcribe
