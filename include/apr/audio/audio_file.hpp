/// @file audio_file.hpp
/// @brief Audio for speech models: any file libsndfile reads (WAV PCM 8/16/24/32-bit and float
/// 32/64 with any channel count and rate, FLAC, OGG, …) or raw little-endian float32, mixed down
/// to mono and resampled to 16 kHz with libsoxr. Part of the optional target apr::audio_io
/// (include apr/audio_io.hpp).
#pragma once

#include <sndfile.h>
#include <soxr.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "apr/audio/mel.hpp"
#include "apr/core/result.hpp"

namespace apr::audio {

/// Mono 16 kHz samples in [-1, 1] and what loading found.
struct Audio {
  std::vector<float> samples;     ///< mono, kSampleRate per second
  size_t source_rate = 0;         ///< the file's sample rate
  size_t source_channels = 0;     ///< the file's channels (mixed down by averaging)
  size_t clipped = 0;             ///< samples of the file at or beyond full scale (|x| >= 1)

  /// Seconds of audio.
  [[nodiscard]] double seconds() const noexcept { return static_cast<double>(samples.size()) / static_cast<double>(kSampleRate); }
};

/// `samples` (mono, `rate` Hz) resampled to `target` Hz with libsoxr's high quality; the length is
/// round(n × target / rate), so the duration is kept within one sample.
inline Result<std::vector<float>> resample(std::span<const float> samples, size_t rate, size_t target = kSampleRate) {
  if (rate == 0) return make_error(ErrorCode::invalid_argument, "resample: sample rate 0");
  if (rate == target || samples.empty()) return std::vector<float>(samples.begin(), samples.end());
  const auto out_length = static_cast<size_t>(std::llround(static_cast<double>(samples.size()) * static_cast<double>(target) / static_cast<double>(rate)));
  std::vector<float> out(out_length);
  size_t written = 0;
  const soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
  const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
  const soxr_error_t error = soxr_oneshot(static_cast<double>(rate), static_cast<double>(target), 1, samples.data(), samples.size(),
                                          nullptr, out.data(), out.size(), &written, &io, &quality, nullptr);
  if (error != nullptr) return make_error(ErrorCode::internal, "resample {} Hz -> {} Hz: {}", rate, target, error);
  out.resize(written);
  out.resize(out_length, 0.0f);  // soxr may stop a sample short at the end: pad with silence
  return out;
}

/// Checks that every sample is finite (naming the first that is not) and counts clipped ones.
inline Result<size_t> check_samples(std::span<const float> samples, const std::string& source) {
  size_t clipped = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    if (!std::isfinite(samples[i])) {
      return make_error(ErrorCode::format, "{}: sample {} is {} (audio must be finite)", source, i, samples[i]);
    }
    clipped += std::abs(samples[i]) >= 1.0f;
  }
  return clipped;
}

/// Mono 16 kHz audio from interleaved `samples` of `channels` channels at `rate` Hz.
inline Result<Audio> prepare_audio(std::span<const float> interleaved, size_t channels, size_t rate, const std::string& source) {
  if (channels == 0) return make_error(ErrorCode::format, "{}: 0 channels", source);
  if (interleaved.empty()) return make_error(ErrorCode::format, "{}: no audio samples", source);
  auto clipped = check_samples(interleaved, source);
  if (!clipped) return std::move(clipped).error();
  const size_t frames = interleaved.size() / channels;
  std::vector<float> mono(frames);
  for (size_t f = 0; f < frames; ++f) {
    float sum = 0.0f;
    for (size_t c = 0; c < channels; ++c) sum += interleaved[f * channels + c];
    mono[f] = sum / static_cast<float>(channels);
  }
  auto resampled = resample(mono, rate);
  if (!resampled) return std::move(resampled).error().with_context(source);
  return Audio{std::move(resampled).value(), rate, channels, *clipped};
}

/// Reads raw little-endian float32 mono samples at `rate` Hz.
inline Result<Audio> read_raw_f32(const std::string& path, size_t rate = kSampleRate) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return make_error(ErrorCode::not_found, "{}: cannot open", path);
  const auto bytes = static_cast<size_t>(in.tellg());
  if (bytes % sizeof(float) != 0) {
    return make_error(ErrorCode::format, "{}: {} bytes is not a whole number of float32 samples", path, bytes);
  }
  std::vector<float> samples(bytes / sizeof(float));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(samples.data()), static_cast<std::streamsize>(bytes));
  if (!in) return make_error(ErrorCode::io, "{}: read failed", path);
  return prepare_audio(samples, 1, rate, path);
}

/// Reads every frame of an open libsndfile handle (and closes it) as mono 16 kHz audio.
inline Result<Audio> read_open_file(SNDFILE* file, const SF_INFO& info, const std::string& source) {
  struct Closer {
    SNDFILE* file;
    ~Closer() { sf_close(file); }
  } closer{file};
  if (info.channels <= 0 || info.samplerate <= 0 || info.frames < 0) {
    return make_error(ErrorCode::format, "{}: {} channels at {} Hz", source, info.channels, info.samplerate);
  }
  constexpr int64_t kMaxSamples = int64_t{1} << 32;  // ~75 hours of 16 kHz mono: refuse absurd headers
  if (info.frames * info.channels > kMaxSamples) return make_error(ErrorCode::format, "{}: {} frames is too long", source, info.frames);
  std::vector<float> interleaved(static_cast<size_t>(info.frames * info.channels));
  const sf_count_t read = sf_readf_float(file, interleaved.data(), info.frames);
  if (read < 0) return make_error(ErrorCode::io, "{}: read failed: {}", source, sf_strerror(file));
  interleaved.resize(static_cast<size_t>(read * info.channels));
  return prepare_audio(interleaved, static_cast<size_t>(info.channels), static_cast<size_t>(info.samplerate), source);
}

/// Reads an audio file with libsndfile (any format it knows), or raw float32 for ".f32"/".raw"
/// names, as mono 16 kHz.
inline Result<Audio> read_audio(const std::string& path) {
  if (path.ends_with(".f32") || path.ends_with(".raw")) return read_raw_f32(path);
  SF_INFO info{};
  SNDFILE* file = sf_open(path.c_str(), SFM_READ, &info);
  if (file == nullptr) return make_error(ErrorCode::format, "{}: cannot read audio: {}", path, sf_strerror(nullptr));
  return read_open_file(file, info, path);
}

/// Decodes an audio file held in memory (`bytes`, e.g. an upload; `name` for messages) with
/// libsndfile, as mono 16 kHz.
inline Result<Audio> decode_audio(std::span<const std::byte> bytes, const std::string& name) {
  struct Cursor {
    std::span<const std::byte> bytes;
    sf_count_t at = 0;
  } cursor{bytes, 0};
  SF_VIRTUAL_IO io{};
  io.get_filelen = [](void* user) -> sf_count_t { return static_cast<sf_count_t>(static_cast<Cursor*>(user)->bytes.size()); };
  io.seek = [](sf_count_t offset, int whence, void* user) -> sf_count_t {
    auto* c = static_cast<Cursor*>(user);
    const auto size = static_cast<sf_count_t>(c->bytes.size());
    const sf_count_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? c->at : size;
    c->at = std::clamp<sf_count_t>(base + offset, 0, size);
    return c->at;
  };
  io.read = [](void* out, sf_count_t count, void* user) -> sf_count_t {
    auto* c = static_cast<Cursor*>(user);
    const sf_count_t n = std::clamp<sf_count_t>(count, 0, static_cast<sf_count_t>(c->bytes.size()) - c->at);
    std::memcpy(out, c->bytes.data() + c->at, static_cast<size_t>(n));
    c->at += n;
    return n;
  };
  io.write = [](const void*, sf_count_t, void*) -> sf_count_t { return 0; };
  io.tell = [](void* user) -> sf_count_t { return static_cast<Cursor*>(user)->at; };
  SF_INFO info{};
  SNDFILE* file = sf_open_virtual(&io, SFM_READ, &info, &cursor);
  if (file == nullptr) return make_error(ErrorCode::format, "{}: cannot read audio: {}", name, sf_strerror(nullptr));
  return read_open_file(file, info, name);
}

}  // namespace apr::audio
