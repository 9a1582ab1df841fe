// Whisper's log-mel against openai/whisper (refs/<clip>.safetensors: log_mel_spectrogram of the
// WAV with 30 s of padding, then pad_or_trim to 3000 frames). Measured: max difference 1.8e-5
// (a_hello), 1.7e-5 (b_sentence), 5.2e-5 (d_long); 0.1% of d_long's values and fewer of the
// others are beyond 1e-5, all in bands 7–8 orders of magnitude below their frame's loudest,
// where whisper's float32 FFT rounds (apr's runs in double). Asserted: mean difference < 1e-6,
// at most 0.2% beyond 1e-5, max < 1e-4. The filterbank against whisper's mel_filters (refs and
// tokenizer/mel_filters.npz, 80 and 128 bands: librosa's) within 1e-6. Streaming: bit-identical
// to batch.
#include <catch2/catch.hpp>

#include <zlib.h>

#include <nlohmann/json.hpp>

#include <cstring>
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

/// The float32 array `name`.npy of whisper's mel_filters.npz (a zip of deflated .npy files
/// whose local headers carry the sizes, as numpy writes it).
std::vector<float> npz_array(const std::string& name) {
  std::ifstream in(test::fixture("whisper/tokenizer/mel_filters.npz"), std::ios::binary);
  std::string zip((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto u16 = [&](size_t at) { return size_t(uint8_t(zip.at(at))) | size_t(uint8_t(zip.at(at + 1))) << 8; };
  const auto u32 = [&](size_t at) { return u16(at) | u16(at + 2) << 16; };
  for (size_t at = 0; at + 30 <= zip.size() && zip.compare(at, 4, "PK\x03\x04") == 0;) {
    const size_t packed = u32(at + 18), unpacked = u32(at + 22), name_length = u16(at + 26), extra = u16(at + 28);
    const size_t data = at + 30 + name_length + extra;
    if (zip.substr(at + 30, name_length) == name + ".npy") {
      REQUIRE(u16(at + 8) == 8);  // deflate
      std::string npy(unpacked, '\0');
      z_stream stream{};
      REQUIRE(inflateInit2(&stream, -MAX_WBITS) == Z_OK);
      stream.next_in = reinterpret_cast<Bytef*>(zip.data() + data);
      stream.avail_in = static_cast<uInt>(packed);
      stream.next_out = reinterpret_cast<Bytef*>(npy.data());
      stream.avail_out = static_cast<uInt>(unpacked);
      const int status = inflate(&stream, Z_FINISH);
      inflateEnd(&stream);
      REQUIRE(status == Z_STREAM_END);
      REQUIRE(npy.compare(0, 6, "\x93NUMPY") == 0);
      const size_t header_end = 10 + (size_t(uint8_t(npy[8])) | size_t(uint8_t(npy[9])) << 8);
      REQUIRE(npy.substr(10, header_end - 10).find("'<f4'") != std::string::npos);
      std::vector<float> values((npy.size() - header_end) / sizeof(float));
      std::memcpy(values.data(), npy.data() + header_end, values.size() * sizeof(float));
      return values;
    }
    at = data + packed;
  }
  FAIL("no " << name << ".npy in mel_filters.npz");
  return {};
}

float max_abs_difference(std::span<const float> a, std::span<const float> b) {
  REQUIRE(a.size() == b.size());
  float worst = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

std::vector<float> clip_samples(const std::string& clip) {
  auto loaded = audio::read_audio(test::fixture("whisper/audio/" + clip + ".wav"));
  REQUIRE(loaded);
  return std::move(loaded).value().samples;
}

}  // namespace

TEST_CASE("the Slaney mel filterbank is librosa's", "[audio][mel]") {
  const auto filters = audio::mel_filterbank(80);
  CHECK(max_abs_difference(filters, reference("a_hello", "mel_filters")) < 1e-6f);
  CHECK(max_abs_difference(filters, npz_array("mel_80")) < 1e-6f);
  CHECK(max_abs_difference(audio::mel_filterbank(128), npz_array("mel_128")) < 1e-6f);
}

TEST_CASE("log-mel of every clip matches whisper's", "[audio][mel]") {
  std::ifstream in(test::fixture("whisper/refs/decode.json"));
  const auto decode = nlohmann::json::parse(in);
  auto computed = audio::LogMel::create(80);
  auto from_file = audio::LogMel::create(80, reference("a_hello", "mel_filters"));  // as an APR file's audio.mel_filters
  REQUIRE(computed);
  REQUIRE(from_file);
  ThreadPool pool(2);
  for (const char* clip : {"a_hello", "b_sentence", "d_long"}) {
    const auto samples = clip_samples(clip);
    CHECK(samples.size() == decode[clip]["n_samples"].get<size_t>());
    const auto theirs = reference(clip, "log_mel");
    for (const audio::LogMel* front_end : {&*computed, &*from_file}) {
      INFO(clip << (front_end == &*computed ? " computed filterbank" : " whisper's filterbank"));
      auto spectrogram = front_end->compute(samples, audio::kWindowSamples, pool);
      REQUIRE(spectrogram);
      CHECK(spectrogram->frames == decode[clip]["log_mel_frames_before_trim"].get<size_t>());
      const auto ours = audio::pad_or_trim(*spectrogram);
      double total = 0.0;
      size_t outside = 0;
      for (size_t i = 0; i < ours.size(); ++i) {
        total += std::abs(ours[i] - theirs[i]);
        outside += std::abs(ours[i] - theirs[i]) > 1e-5f;
      }
      CHECK(total / static_cast<double>(ours.size()) < 1e-6);
      CHECK(outside <= ours.size() / 500);
      CHECK(max_abs_difference(ours, theirs) < 1e-4f);
    }
  }
}

TEST_CASE("log-mel frames do not depend on the thread count", "[audio][mel]") {
  auto mel = audio::LogMel::create(128);
  REQUIRE(mel);
  const auto samples = clip_samples("b_sentence");
  ThreadPool one(1), two(2);
  auto a = mel->compute(samples, 1000, one);
  auto b = mel->compute(samples, 1000, two);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->n_mels == 128);
  CHECK(a->values == b->values);
}

TEST_CASE("streamed log-mel equals batch bit for bit", "[audio][mel]") {
  auto mel = audio::LogMel::create(80);
  REQUIRE(mel);
  ThreadPool pool(2);
  const auto samples = clip_samples("d_long");
  for (const size_t padding : {audio::kWindowSamples, size_t{0}, size_t{37}}) {
    INFO("padding " << padding);
    audio::LogMelStream stream(*mel);
    const std::array<size_t, 7> chunk_sizes = {1, 0, 159, 160, 4000, 7, 16000};
    size_t at = 0;
    for (size_t i = 0; at < samples.size(); ++i) {
      const size_t n = std::min(chunk_sizes[i % chunk_sizes.size()], samples.size() - at);
      auto added = stream.feed(std::span(samples).subspan(at, n), pool);
      REQUIRE(added);
      at += n;
      // every frame whose window has been fed, and no other (frame 0 reflects up to sample 200)
      CHECK(stream.frames() == (at < 201 ? 0 : (at - 200) / 160 + 1));
    }
    auto before_end = stream.log10_mel();
    REQUIRE(stream.finish(padding, pool));
    auto batch_log10 = mel->log10_mel(samples, padding, pool);
    auto batch = mel->compute(samples, padding, pool);
    REQUIRE(batch_log10);
    REQUIRE(batch);
    CHECK(stream.frames() == batch->frames);
    CHECK(stream.log10_mel().values == batch_log10->values);
    CHECK(stream.spectrogram().values == batch->values);
    for (size_t m = 0; m < before_end.n_mels; ++m) {  // frames given before the end never change
      const auto early = before_end.band(m);
      CHECK(std::equal(early.begin(), early.end(), batch_log10->band(m).begin()));
    }
  }
}

TEST_CASE("a streamed log-mel with a fixed clamp gives final frames at once", "[audio][mel]") {
  auto mel = audio::LogMel::create(80);
  REQUIRE(mel);
  ThreadPool pool(2);
  auto quiet = test::random_floats(8000, 1, -0.001f, 0.001f);
  auto loud = test::random_floats(8000, 2, -0.9f, 0.9f);
  audio::LogMelStream stream(*mel);
  REQUIRE(stream.feed(quiet, pool));
  const auto fixed_early = stream.spectrogram(1.5f);
  const auto running_early = stream.spectrogram();
  const float quiet_max = stream.max_log10();
  REQUIRE(stream.feed(loud, pool));
  REQUIRE(stream.finish(0, pool));
  CHECK(stream.max_log10() > quiet_max + 1.0f);
  const auto fixed_late = stream.spectrogram(1.5f);
  const auto running_late = stream.spectrogram();
  bool fixed_changed = false, running_changed = false;
  for (size_t m = 0; m < 80; ++m) {
    for (size_t f = 0; f < fixed_early.frames; ++f) {
      fixed_changed |= fixed_early.values[m * fixed_early.frames + f] != fixed_late.values[m * fixed_late.frames + f];
      running_changed |= running_early.values[m * running_early.frames + f] != running_late.values[m * running_late.frames + f];
    }
  }
  CHECK_FALSE(fixed_changed);
  CHECK(running_changed);  // the louder passage moved the running clamp over the quiet frames
}

TEST_CASE("log-mel refuses non-finite audio and bad filterbanks", "[audio][mel]") {
  auto mel = audio::LogMel::create(80);
  REQUIRE(mel);
  std::vector<float> samples(16000, 0.1f);
  samples[1234] = std::numeric_limits<float>::quiet_NaN();
  auto result = mel->compute(samples, 0, ThreadPool::global());
  REQUIRE_FALSE(result);
  CHECK(result.error().message.find("sample 1234") != std::string::npos);
  CHECK_FALSE(mel->compute(std::vector<float>(180, 0.1f), 0, ThreadPool::global()));  // too short to reflect
  CHECK_FALSE(audio::LogMel::create(80, std::vector<float>(10)));
  CHECK_FALSE(audio::LogMel::create(0));

  audio::LogMelStream stream(*mel);
  REQUIRE(stream.feed(std::vector<float>(1000, 0.1f), ThreadPool::global()));
  std::vector<float> bad(100, 0.2f);
  bad[7] = -std::numeric_limits<float>::infinity();
  auto refused = stream.feed(bad, ThreadPool::global());
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("sample 1007") != std::string::npos);
  CHECK(stream.samples() == 1000);  // nothing of the refused chunk was kept
  REQUIRE(stream.finish(0, ThreadPool::global()));
  CHECK_FALSE(stream.feed(samples, ThreadPool::global()));
  CHECK_FALSE(stream.finish(0, ThreadPool::global()));
}
