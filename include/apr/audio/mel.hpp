/// @file mel.hpp
/// @brief Whisper's log-mel spectrogram: 16 kHz audio, 400-point FFT (FFTW) every 160 samples
/// with a periodic Hann window and reflect padding (torch.stft with center=True), power
/// spectrum, a Slaney-normalised mel filterbank over 0–8 kHz (librosa's, which whisper's
/// mel_filters.npz holds), log10 with a floor of 1e-10, clamp at (max − 8), then (x + 4) / 4.
/// The last STFT frame is dropped, as whisper does, so N samples give N / 160 frames. The FFT
/// and the mel sums run in double: whisper's float32 FFT loses precision in quiet bins of
/// frames that also hold loud ones, so double is the closer of the two to the exact values.
#pragma once

#include <fftw3.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <memory>
#include <mutex>
#include <numbers>
#include <span>
#include <vector>

#include "apr/core/result.hpp"
#include "apr/core/thread_pool.hpp"

namespace apr::audio {

inline constexpr size_t kSampleRate = 16000;                   ///< Whisper's sample rate
inline constexpr size_t kFftSize = 400;                        ///< samples per STFT window (25 ms)
inline constexpr size_t kHopLength = 160;                      ///< samples between frames (10 ms)
inline constexpr size_t kFrequencyBins = kFftSize / 2 + 1;    ///< bins of the real FFT
inline constexpr size_t kWindowSeconds = 30;                   ///< seconds the model sees at once
inline constexpr size_t kWindowSamples = kWindowSeconds * kSampleRate;  ///< 480000
inline constexpr size_t kWindowFrames = kWindowSamples / kHopLength;    ///< 3000

/// Hertz to mel on the Slaney scale (linear below 1 kHz, logarithmic above), as librosa.
constexpr double hz_to_mel_slaney(double hz) {
  constexpr double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
  if (hz < min_log_hz) return hz / f_sp;
  return min_log_mel + std::log(hz / min_log_hz) / (std::log(6.4) / 27.0);
}

/// Mel on the Slaney scale to hertz.
constexpr double mel_to_hz_slaney(double mel) {
  constexpr double f_sp = 200.0 / 3.0, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp;
  if (mel < min_log_mel) return f_sp * mel;
  return min_log_hz * std::exp((std::log(6.4) / 27.0) * (mel - min_log_mel));
}

/// The Slaney-normalised triangular mel filterbank [n_mels][n_fft / 2 + 1] over 0 … rate / 2
/// (librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=n_mels), computed in double).
inline std::vector<float> mel_filterbank(size_t n_mels, size_t sample_rate = kSampleRate, size_t n_fft = kFftSize) {
  const size_t bins = n_fft / 2 + 1;
  const double nyquist = static_cast<double>(sample_rate) / 2.0;
  std::vector<double> mel_hz(n_mels + 2);
  const double top = hz_to_mel_slaney(nyquist);
  for (size_t i = 0; i < mel_hz.size(); ++i) {
    mel_hz[i] = mel_to_hz_slaney(top * static_cast<double>(i) / static_cast<double>(n_mels + 1));
  }
  std::vector<float> filters(n_mels * bins);
  for (size_t m = 0; m < n_mels; ++m) {
    const double lower_width = mel_hz[m + 1] - mel_hz[m], upper_width = mel_hz[m + 2] - mel_hz[m + 1];
    const double norm = 2.0 / (mel_hz[m + 2] - mel_hz[m]);
    for (size_t b = 0; b < bins; ++b) {
      const double hz = nyquist * static_cast<double>(b) / static_cast<double>(bins - 1);
      const double rising = (hz - mel_hz[m]) / lower_width, falling = (mel_hz[m + 2] - hz) / upper_width;
      filters[m * bins + b] = static_cast<float>(std::max(0.0, std::min(rising, falling)) * norm);
    }
  }
  return filters;
}

/// A log-mel spectrogram, [n_mels][frames] row-major.
struct MelSpectrogram {
  size_t n_mels = 0;          ///< mel bands
  size_t frames = 0;          ///< 10 ms frames
  std::vector<float> values;  ///< n_mels × frames values

  /// Band `m` (frames values).
  [[nodiscard]] std::span<const float> band(size_t m) const { return std::span(values).subspan(m * frames, frames); }
};

/// Computes Whisper's log-mel spectrogram; holds the FFT plan, window and filterbank (build once,
/// use from one thread at a time — the work inside is split over a thread pool).
class LogMel {
 public:
  /// A front end with `n_mels` bands (80, or 128 for large-v3) and the filterbank computed here.
  static Result<LogMel> create(size_t n_mels) { return create(n_mels, mel_filterbank(n_mels)); }

  /// A front end with the filterbank `filters` ([n_mels][201], e.g. an APR file's audio.mel_filters).
  static Result<LogMel> create(size_t n_mels, std::vector<float> filters) {
    if (n_mels == 0 || n_mels > 1024) return make_error(ErrorCode::invalid_argument, "log-mel: {} mel bands (expected 1..1024)", n_mels);
    if (filters.size() != n_mels * kFrequencyBins) {
      return make_error(ErrorCode::invalid_argument, "log-mel: filterbank has {} values, expected {} × {} = {}", filters.size(), n_mels,
                        kFrequencyBins, n_mels * kFrequencyBins);
    }
    for (size_t i = 0; i < filters.size(); ++i) {
      if (!std::isfinite(filters[i])) return make_error(ErrorCode::invalid_argument, "log-mel: filterbank value {} is {}", i, filters[i]);
    }
    return LogMel(n_mels, std::move(filters));
  }

  /// Bands per frame.
  [[nodiscard]] size_t n_mels() const noexcept { return n_mels_; }
  /// The filterbank, [n_mels][201].
  [[nodiscard]] std::span<const float> filters() const noexcept { return filters_; }

  /// log10 of the mel power of `samples` (16 kHz mono) followed by `padding` zero samples,
  /// before the clamp: [n_mels][(samples + padding) / 160]. Frames are split over `pool`.
  Result<MelSpectrogram> log10_mel(std::span<const float> samples, size_t padding, ThreadPool& pool) const {
    for (size_t i = 0; i < samples.size(); ++i) {
      if (!std::isfinite(samples[i])) {
        return make_error(ErrorCode::invalid_argument, "log-mel: sample {} is {} (audio must be finite)", i, samples[i]);
      }
    }
    const size_t total = samples.size() + padding;
    MelSpectrogram mel{n_mels_, total / kHopLength, {}};
    mel.values.resize(n_mels_ * mel.frames);
    if (mel.frames == 0) return mel;
    if (total < kFftSize / 2 + 1) {
      return make_error(ErrorCode::invalid_argument, "log-mel: {} samples are too few for reflect padding (need at least {})", total,
                        kFftSize / 2 + 1);
    }
    const auto sample_at = [&](ptrdiff_t i) -> float {  // reflect padding of the padded signal
      const ptrdiff_t last = static_cast<ptrdiff_t>(total) - 1;
      if (i < 0) i = -i;
      if (i > last) i = 2 * last - i;
      return static_cast<size_t>(i) < samples.size() ? samples[static_cast<size_t>(i)] : 0.0f;
    };
    pool.parallel_for(
        mel.frames,
        [&](size_t begin, size_t end) {
          std::vector<double> frame(kFftSize), power(kFrequencyBins);
          std::vector<fftw_complex> spectrum(kFrequencyBins);
          for (size_t f = begin; f < end; ++f) {
            const ptrdiff_t start = static_cast<ptrdiff_t>(f * kHopLength) - static_cast<ptrdiff_t>(kFftSize / 2);
            for (size_t k = 0; k < kFftSize; ++k) frame[k] = static_cast<double>(sample_at(start + static_cast<ptrdiff_t>(k))) * window_[k];
            fftw_execute_dft_r2c(plan_->get(), frame.data(), spectrum.data());
            for (size_t b = 0; b < kFrequencyBins; ++b) power[b] = spectrum[b][0] * spectrum[b][0] + spectrum[b][1] * spectrum[b][1];
            for (size_t m = 0; m < n_mels_; ++m) {
              const float* filter = filters_.data() + m * kFrequencyBins;
              double sum = 0.0;
              for (size_t b = 0; b < kFrequencyBins; ++b) sum += filter[b] * power[b];
              mel.values[m * mel.frames + f] = static_cast<float>(std::log10(std::max(sum, 1e-10)));
            }
          }
        },
        16);
    return mel;
  }

  /// Whisper's log-mel of `samples` followed by `padding` zero samples: log10 mel power clamped
  /// at its maximum − 8, then (x + 4) / 4. whisper's transcribe() pads with 30 s of zeros.
  Result<MelSpectrogram> compute(std::span<const float> samples, size_t padding, ThreadPool& pool) const {
    auto mel = log10_mel(samples, padding, pool);
    if (!mel) return mel;
    if (!mel->values.empty()) normalize(mel->values, *std::max_element(mel->values.begin(), mel->values.end()));
    return mel;
  }

  /// Clamps log10 mel values at `max` − 8 and maps them to (x + 4) / 4 in place.
  static void normalize(std::span<float> log10_values, float max) {
    const float floor = max - 8.0f;
    for (float& v : log10_values) v = (std::max(v, floor) + 4.0f) / 4.0f;
  }

 private:
  /// An FFTW plan for 400-point real double transforms on unaligned arrays; plans are made under a
  /// lock (FFTW's planner is not thread-safe), executing them is.
  class Plan {
   public:
    Plan() {
      std::lock_guard lock(planner_mutex());
      std::vector<double> in(kFftSize);
      std::vector<fftw_complex> out(kFrequencyBins);
      plan_ = fftw_plan_dft_r2c_1d(static_cast<int>(kFftSize), in.data(), out.data(), FFTW_ESTIMATE | FFTW_UNALIGNED);
    }
    ~Plan() {
      std::lock_guard lock(planner_mutex());
      fftw_destroy_plan(plan_);
    }
    Plan(const Plan&) = delete;
    Plan& operator=(const Plan&) = delete;
    [[nodiscard]] fftw_plan get() const noexcept { return plan_; }

   private:
    static std::mutex& planner_mutex() {
      static std::mutex mutex;
      return mutex;
    }
    fftw_plan plan_ = nullptr;
  };

  LogMel(size_t n_mels, std::vector<float> filters) : n_mels_(n_mels), filters_(std::move(filters)), plan_(std::make_shared<Plan>()) {
    window_.resize(kFftSize);
    for (size_t k = 0; k < kFftSize; ++k) {  // periodic Hann, as torch.hann_window(400)
      window_[k] = static_cast<float>(0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * static_cast<double>(k) / static_cast<double>(kFftSize)));
    }
  }

  size_t n_mels_;
  std::vector<float> filters_;
  std::vector<float> window_;
  std::shared_ptr<const Plan> plan_;
};

/// The first `frames` frames of `mel`, zero-padded when it is shorter (whisper's pad_or_trim).
inline std::vector<float> pad_or_trim(const MelSpectrogram& mel, size_t frames = kWindowFrames) {
  std::vector<float> out(mel.n_mels * frames, 0.0f);
  const size_t keep = std::min(frames, mel.frames);
  for (size_t m = 0; m < mel.n_mels; ++m) std::copy_n(mel.values.data() + m * mel.frames, keep, out.data() + m * frames);
  return out;
}

}  // namespace apr::audio
