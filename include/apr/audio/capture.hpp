/// @file capture.hpp
/// @brief Microphone capture through ALSA (libasound2): the optional target apr::capture. Lists
/// capture devices, opens one at 16 kHz mono (ALSA resamples and downmixes when the hardware
/// cannot), and reads float samples normalised to [-1, 1].
#pragma once

#include <alsa/asoundlib.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "apr/core/result.hpp"

namespace apr::audio {

/// A capture device ALSA offers.
struct CaptureDevice {
  std::string name;         ///< what Microphone::open takes ("default", "hw:CARD=PCH,DEV=0", …)
  std::string description;  ///< ALSA's human-readable description
};

/// 16-bit PCM samples as floats in [-1, 1) (divided by 32768, as libsndfile and whisper do).
inline void pcm16_to_float(std::span<const int16_t> pcm, std::span<float> out) {
  for (size_t i = 0; i < pcm.size() && i < out.size(); ++i) out[i] = static_cast<float>(pcm[i]) / 32768.0f;
}

/// The PCM devices ALSA's configuration lists that can capture (empty when there are none, as
/// on a machine without a sound card); an error only when ALSA itself cannot be queried.
inline Result<std::vector<CaptureDevice>> list_capture_devices() {
  void** hints = nullptr;
  if (const int status = snd_device_name_hint(-1, "pcm", &hints); status < 0) {
    return make_error(ErrorCode::io, "ALSA: cannot list PCM devices: {}", snd_strerror(status));
  }
  std::vector<CaptureDevice> devices;
  for (void** hint = hints; *hint != nullptr; ++hint) {
    auto text = [&](const char* id) {
      std::unique_ptr<char, decltype(&std::free)> value(snd_device_name_get_hint(*hint, id), &std::free);
      return value ? std::string(value.get()) : std::string();
    };
    const std::string direction = text("IOID");  // absent: both directions
    if (direction == "Output") continue;
    std::string name = text("NAME");
    if (name.empty() || name == "null") continue;
    std::string description = text("DESC");
    for (char& c : description) {
      if (c == '\n') c = ' ';
    }
    devices.push_back({std::move(name), std::move(description)});
  }
  snd_device_name_free_hint(hints);
  return devices;
}

/// An open capture stream: 16 kHz (or the rate asked for) mono, signed 16-bit from ALSA,
/// delivered as floats.
class Microphone {
 public:
  /// Opens `device` for capture at `sample_rate` mono with about `latency_ms` of buffering.
  static Result<Microphone> open(const std::string& device = "default", unsigned sample_rate = 16000, unsigned latency_ms = 100) {
    if (sample_rate == 0) return make_error(ErrorCode::invalid_argument, "capture: sample rate 0");
    snd_pcm_t* raw = nullptr;
    snd_lib_error_set_handler(quiet);  // the failure comes back in the Result, not as ALSA's own stderr line
    const int opened = snd_pcm_open(&raw, device.c_str(), SND_PCM_STREAM_CAPTURE, 0);
    snd_lib_error_set_handler(nullptr);
    if (const int status = opened; status < 0) {
      return make_error(ErrorCode::io, "capture device '{}': cannot open: {} (list devices with `apr transcribe --list-devices`)", device,
                        snd_strerror(status));
    }
    Microphone microphone(raw, device, sample_rate);
    if (const int status = snd_pcm_set_params(raw, SND_PCM_FORMAT_S16_LE, SND_PCM_ACCESS_RW_INTERLEAVED, 1, sample_rate, 1, latency_ms * 1000);
        status < 0) {
      return make_error(ErrorCode::io, "capture device '{}': cannot capture 16-bit mono at {} Hz: {}", device, sample_rate, snd_strerror(status));
    }
    return microphone;
  }

  /// Reads up to `out.size()` samples, blocking until at least one is there; returns how many.
  /// An overrun (samples lost because reading lagged) is recovered from and reading goes on.
  Result<size_t> read(std::span<float> out) {
    pcm_.resize(out.size());
    for (;;) {
      const snd_pcm_sframes_t got = snd_pcm_readi(pcm_handle_.get(), pcm_.data(), pcm_.size());
      if (got >= 0) {
        pcm16_to_float(std::span<const int16_t>(pcm_.data(), static_cast<size_t>(got)), out);
        return static_cast<size_t>(got);
      }
      if (const int status = snd_pcm_recover(pcm_handle_.get(), static_cast<int>(got), 1); status < 0) {
        return make_error(ErrorCode::io, "capture device '{}': read failed: {}", device_, snd_strerror(status));
      }
    }
  }

  /// The device name it was opened with.
  [[nodiscard]] const std::string& device() const noexcept { return device_; }
  /// Samples per second.
  [[nodiscard]] unsigned sample_rate() const noexcept { return sample_rate_; }

 private:
  /// Closes the PCM handle.
  struct Close {
    /// Closes `pcm`.
    void operator()(snd_pcm_t* pcm) const { snd_pcm_close(pcm); }
  };

  /// An ALSA error handler that prints nothing.
  static void quiet(const char*, int, const char*, int, const char*, ...) {}

  Microphone(snd_pcm_t* pcm, std::string device, unsigned sample_rate) : pcm_handle_(pcm), device_(std::move(device)), sample_rate_(sample_rate) {}

  std::unique_ptr<snd_pcm_t, Close> pcm_handle_;
  std::string device_;
  unsigned sample_rate_;
  std::vector<int16_t> pcm_;
};

}  // namespace apr::audio
