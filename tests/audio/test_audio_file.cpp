// Audio loading: every fixture WAV variant (16 kHz s16, 44.1 kHz stereo, IEEE float), WAV of
// every PCM depth (u8, 16, 24, 32 bit) and float32/64 within one quantisation step, mixing
// down, resampling with the duration kept within one sample, and the errors for missing,
// empty, non-finite and truncated input.
#include <catch2/catch.hpp>

#include <sndfile.h>

#include <cmath>
#include <fstream>
#include <limits>

#include "apr/audio/audio_file.hpp"
#include "test_support.hpp"

using namespace apr;

namespace {

/// Writes `samples` (interleaved) as a WAV with the sample encoding `subtype` (float by default).
void write_wav(const std::string& path, const std::vector<float>& samples, int channels, int rate, int subtype = SF_FORMAT_FLOAT) {
  SF_INFO info{};
  info.channels = channels;
  info.samplerate = rate;
  info.format = SF_FORMAT_WAV | subtype;
  SNDFILE* file = sf_open(path.c_str(), SFM_WRITE, &info);
  REQUIRE(file != nullptr);
  sf_writef_float(file, samples.data(), static_cast<sf_count_t>(samples.size() / static_cast<size_t>(channels)));
  sf_close(file);
}

}  // namespace

TEST_CASE("fixture WAVs load as 16 kHz mono", "[audio]") {
  auto hello = audio::read_audio(test::fixture("whisper/audio/a_hello.wav"));
  REQUIRE(hello);
  CHECK(hello->source_rate == 16000);
  CHECK(hello->source_channels == 1);
  CHECK(hello->samples.size() == 16454);

  auto stereo = audio::read_audio(test::fixture("whisper/audio/c_sentence_44k_stereo.wav"));
  REQUIRE(stereo);
  CHECK(stereo->source_rate == 44100);
  CHECK(stereo->source_channels == 2);
  SF_INFO info{};
  SNDFILE* raw = sf_open(test::fixture("whisper/audio/c_sentence_44k_stereo.wav").c_str(), SFM_READ, &info);
  REQUIRE(raw != nullptr);
  sf_close(raw);
  const double expected = static_cast<double>(info.frames) * 16000.0 / 44100.0;
  CHECK(std::abs(static_cast<double>(stereo->samples.size()) - expected) <= 1.0);  // duration within one sample

  auto as_float = audio::read_audio(test::fixture("whisper/audio/f_sentence_f32.wav"));
  REQUIRE(as_float);
  CHECK(as_float->seconds() > 1.0);
  auto silence = audio::read_audio(test::fixture("whisper/audio/e_silence.wav"));
  REQUIRE(silence);
  CHECK(silence->seconds() == Approx(1.0).margin(0.01));
}

TEST_CASE("WAV of every PCM depth and of float32/64 loads with the depth's precision", "[audio]") {
  // a 16 kHz mono ramp of tones within [-0.9, 0.9]: no resampling, so the error is the encoding's own.
  // The integer files get 32-bit samples, which libsndfile truncates to the file's depth: the file
  // holds floor(x · 2^(bits-1)), read back as that over 2^(bits-1), less than one step below x.
  std::vector<float> tone(8000);
  std::vector<int> full_scale(tone.size());
  for (size_t i = 0; i < tone.size(); ++i) {
    tone[i] = 0.9f * std::sin(2.0f * 3.14159265f * 440.0f * static_cast<float>(i) / 16000.0f) * static_cast<float>(i) / 8000.0f;
    full_scale[i] = static_cast<int>(std::lround(double{tone[i]} * 2147483648.0));
  }
  struct Depth {
    int subtype;
    const char* name;
    double step;  // one quantisation step of the encoding, or float32's rounding where that is coarser
  };
  for (const Depth depth : {Depth{SF_FORMAT_PCM_U8, "u8", 1.0 / 128}, Depth{SF_FORMAT_PCM_16, "s16", 1.0 / 32768},
                            Depth{SF_FORMAT_PCM_24, "s24", 1.0 / 8388608}, Depth{SF_FORMAT_PCM_32, "s32", 1.2e-7},
                            Depth{SF_FORMAT_FLOAT, "f32", 1e-7}, Depth{SF_FORMAT_DOUBLE, "f64", 1e-7}}) {
    INFO(depth.name);
    const std::string path = test::temp_path(std::string("depth_") + depth.name + ".wav");
    SF_INFO info{};
    info.channels = 1;
    info.samplerate = 16000;
    info.format = SF_FORMAT_WAV | depth.subtype;
    SNDFILE* file = sf_open(path.c_str(), SFM_WRITE, &info);
    REQUIRE(file != nullptr);
    const bool integer = depth.subtype != SF_FORMAT_FLOAT && depth.subtype != SF_FORMAT_DOUBLE;
    const sf_count_t written = integer ? sf_write_int(file, full_scale.data(), static_cast<sf_count_t>(full_scale.size()))
                                       : sf_write_float(file, tone.data(), static_cast<sf_count_t>(tone.size()));
    sf_close(file);
    REQUIRE(written == static_cast<sf_count_t>(tone.size()));
    auto read = audio::read_audio(path);
    REQUIRE(read);
    CHECK(read->source_rate == 16000);
    REQUIRE(read->samples.size() == tone.size());
    double error = 0.0;
    for (size_t i = 0; i < tone.size(); ++i) error = std::max(error, std::abs(double{read->samples[i]} - double{tone[i]}));
    CHECK(error <= depth.step);
    CHECK(read->clipped == 0);
  }
  // five channels at 8 kHz in 24-bit: mixed down and resampled, the duration kept within one sample
  std::vector<float> five;
  for (size_t i = 0; i < 4000; ++i) {
    for (int c = 0; c < 5; ++c) five.push_back(0.1f * static_cast<float>(c - 2) + 0.3f * tone[i]);
  }
  const std::string path = test::temp_path("five_channels.wav");
  write_wav(path, five, 5, 8000, SF_FORMAT_PCM_24);
  auto mixed = audio::read_audio(path);
  REQUIRE(mixed);
  CHECK(mixed->source_channels == 5);
  CHECK(mixed->source_rate == 8000);
  CHECK(std::abs(static_cast<double>(mixed->samples.size()) - 8000.0) <= 1.0);
}

TEST_CASE("mixing down averages channels and resampling keeps a tone's frequency", "[audio]") {
  std::vector<float> interleaved;
  for (int i = 0; i < 48000; ++i) {
    const float tone = 0.5f * std::sin(2.0f * 3.14159265f * 440.0f * static_cast<float>(i) / 48000.0f);
    interleaved.push_back(tone + 0.25f);
    interleaved.push_back(tone - 0.25f);
  }
  auto mono = audio::prepare_audio(interleaved, 2, 48000, "tone");
  REQUIRE(mono);
  REQUIRE(mono->samples.size() == 16000);
  // 440 Hz at 16 kHz: the sample 1000 steps later has the phase advanced by 440/16 turns
  double error = 0.0;
  for (size_t i = 1000; i < 15000; ++i) {
    const double expected = 0.5 * std::sin(2.0 * 3.14159265358979 * 440.0 * static_cast<double>(i) / 16000.0);
    error = std::max(error, std::abs(mono->samples[i] - expected));
  }
  CHECK(error < 0.01);
}

TEST_CASE("bad audio gets errors that name the file and the sample", "[audio]") {
  auto missing = audio::read_audio(test::temp_path("nope.wav"));
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.find("nope.wav") != std::string::npos);

  const std::string nan_path = test::temp_path("nan.wav");
  std::vector<float> samples(1000, 0.1f);
  samples[321] = std::numeric_limits<float>::infinity();
  write_wav(nan_path, samples, 1, 16000);
  auto nan = audio::read_audio(nan_path);
  REQUIRE_FALSE(nan);
  CHECK(nan.error().message.find("sample 321") != std::string::npos);

  const std::string empty_path = test::temp_path("empty.wav");
  write_wav(empty_path, {}, 1, 16000);
  auto empty = audio::read_audio(empty_path);
  REQUIRE_FALSE(empty);
  CHECK(empty.error().message.find("no audio") != std::string::npos);

  const std::string clip_path = test::temp_path("clip.wav");
  std::vector<float> loud(1000, 0.2f);
  for (size_t i = 0; i < 7; ++i) loud[i * 100] = 1.5f;
  write_wav(clip_path, loud, 1, 16000);
  auto clipped = audio::read_audio(clip_path);
  REQUIRE(clipped);
  CHECK(clipped->clipped == 7);

  const std::string raw_path = test::temp_path("odd.f32");
  std::ofstream(raw_path, std::ios::binary) << "abcde";
  auto raw = audio::read_audio(raw_path);
  REQUIRE_FALSE(raw);
  CHECK(raw.error().message.find("float32") != std::string::npos);

  const std::string text_path = test::temp_path("text.wav");
  std::ofstream(text_path) << "RIFF but not really";
  CHECK_FALSE(audio::read_audio(text_path));
}

TEST_CASE("audio decodes from memory as from the file", "[audio]") {
  const std::string path = test::fixture("whisper/audio/c_sentence_44k_stereo.wav");
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto from_memory = audio::decode_audio(std::as_bytes(std::span(bytes)), "upload.wav");
  auto from_file = audio::read_audio(path);
  REQUIRE(from_memory);
  REQUIRE(from_file);
  CHECK(from_memory->samples == from_file->samples);
  auto truncated = audio::decode_audio(std::as_bytes(std::span(bytes).first(30)), "cut.wav");
  CHECK_FALSE(truncated);
  CHECK_FALSE(audio::decode_audio({}, "nothing.wav"));
}
