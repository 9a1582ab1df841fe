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
#include <array>
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
    if (auto finite = check_finite(samples, 0); !finite) return std::move(finite).error();
    const size_t total = samples.size() + padding;
    MelSpectrogram mel{n_mels_, total / kHopLength, {}};
    mel.values.resize(n_mels_ * mel.frames);
    if (mel.frames == 0) return mel;
    if (total < kMinSamples) {
      return make_error(ErrorCode::invalid_argument, "log-mel: {} samples are too few for reflect padding (need at least {})", total,
                        kMinSamples);
    }
    log10_frames({samples, 0, total}, 0, mel.frames, mel.values.data(), 1, mel.frames, pool);
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

  /// Fewest samples (audio and padding) that reflect padding of the first frame can read.
  static constexpr size_t kMinSamples = kFftSize / 2 + 1;

 private:
  friend class LogMelStream;

  /// Samples [offset, offset + known.size()) of a signal of `total` samples whose others, past
  /// the known ones, are zero; indices outside [0, total) reflect as torch.stft's center=True.
  struct Signal {
    std::span<const float> known;  ///< the samples held
    size_t offset = 0;             ///< index of known[0] in the signal
    size_t total = 0;              ///< length of the signal (known samples, then zeros)

    /// Sample `i` (−200 ≤ i < total + 200), reflected at both ends.
    [[nodiscard]] float at(ptrdiff_t i) const {
      const auto last = static_cast<ptrdiff_t>(total) - 1;
      if (i < 0) i = -i;
      if (i > last) i = 2 * last - i;
      const size_t at = static_cast<size_t>(i) - offset;
      return at < known.size() ? known[at] : 0.0f;
    }
  };

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

  /// The bins [begin, end) where a band's filter is not zero (the rest adds nothing).
  struct BandSupport {
    size_t begin = 0;  ///< first non-zero bin
    size_t end = 0;    ///< one past the last non-zero bin
  };

  LogMel(size_t n_mels, std::vector<float> filters)
      : n_mels_(n_mels), filters_(std::move(filters)), support_(n_mels), plan_(std::make_shared<Plan>()) {
    window_.resize(kFftSize);
    for (size_t k = 0; k < kFftSize; ++k) {  // periodic Hann, as torch.hann_window(400)
      window_[k] = static_cast<float>(0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * static_cast<double>(k) / static_cast<double>(kFftSize)));
    }
    for (size_t m = 0; m < n_mels_; ++m) {
      const float* filter = filters_.data() + m * kFrequencyBins;
      size_t begin = 0, end = kFrequencyBins;
      while (begin < end && filter[begin] == 0.0f) ++begin;
      while (end > begin && filter[end - 1] == 0.0f) --end;
      support_[m] = {begin, end};
    }
  }

  /// Refuses the first non-finite sample, naming its index counted from `first_index`.
  static Result<void> check_finite(std::span<const float> samples, size_t first_index) {
    for (size_t i = 0; i < samples.size(); ++i) {
      if (!std::isfinite(samples[i])) {
        return make_error(ErrorCode::invalid_argument, "log-mel: sample {} is {} (audio must be finite)", first_index + i, samples[i]);
      }
    }
    return ok();
  }

  /// log10 mel power of frames [first, last) of `signal` into out[m × band_stride + (f − first) ×
  /// frame_stride]. A frame is computed the same way whichever thread or call computes it, so
  /// batch and streaming give identical bits. Blocks of frames are dealt round-robin so that the
  /// cheap all-zero frames of the padding do not leave one thread with all the work.
  void log10_frames(const Signal& signal, size_t first, size_t last, float* out, size_t frame_stride, size_t band_stride,
                    ThreadPool& pool) const {
    constexpr size_t kBlock = 16;
    const size_t blocks = (last - first + kBlock - 1) / kBlock;
    const float silent = std::log10(static_cast<float>(kPowerFloor));
    pool.run([&](size_t index, size_t count) {
      std::array<float, kFftSize> gathered;
      std::array<double, kFftSize> frame;
      std::array<fftw_complex, kFrequencyBins> spectrum;
      std::array<double, kFrequencyBins> power;
      for (size_t block = index; block < blocks; block += count) {
        const size_t block_end = std::min(last, first + (block + 1) * kBlock);
        for (size_t f = first + block * kBlock; f < block_end; ++f) {
          float* target = out + (f - first) * frame_stride;
          const ptrdiff_t start = static_cast<ptrdiff_t>(f * kHopLength) - static_cast<ptrdiff_t>(kFftSize / 2);
          const float* samples = gathered.data();
          const auto known_begin = static_cast<ptrdiff_t>(signal.offset);
          if (start >= known_begin && static_cast<size_t>(start) + kFftSize <= signal.offset + signal.known.size()) {
            samples = signal.known.data() + (start - known_begin);  // inside the known samples: no copy
          } else {
            for (size_t k = 0; k < kFftSize; ++k) gathered[k] = signal.at(start + static_cast<ptrdiff_t>(k));
          }
          if (std::all_of(samples, samples + kFftSize, [](float s) { return s == 0.0f; })) {
            for (size_t m = 0; m < n_mels_; ++m) target[m * band_stride] = silent;  // the FFT of zeros is exactly zero
            continue;
          }
          for (size_t k = 0; k < kFftSize; ++k) frame[k] = static_cast<double>(samples[k]) * window_[k];
          fftw_execute_dft_r2c(plan_->get(), frame.data(), spectrum.data());
          for (size_t b = 0; b < kFrequencyBins; ++b) power[b] = spectrum[b][0] * spectrum[b][0] + spectrum[b][1] * spectrum[b][1];
          for (size_t m = 0; m < n_mels_; ++m) {
            const float* filter = filters_.data() + m * kFrequencyBins;
            double sum = 0.0;
            for (size_t b = support_[m].begin; b < support_[m].end; ++b) sum += filter[b] * power[b];
            target[m * band_stride] = std::log10(static_cast<float>(std::max(sum, kPowerFloor)));
          }
        }
      }
    });
  }

  static constexpr double kPowerFloor = 1e-10;  ///< whisper's clamp before log10

  size_t n_mels_;
  std::vector<float> filters_;
  std::vector<BandSupport> support_;
  std::vector<float> window_;
  std::shared_ptr<const Plan> plan_;
};

/// Whisper's log-mel computed as audio arrives: each frame is computed once, as soon as every
/// sample its window reads has been fed, with the same code as LogMel::log10_mel, so the frames
/// are bit for bit those of the batch spectrogram. Frames reaching past the end of the audio
/// (its zero padding and the reflection at the end) wait for finish().
///
/// The clamp at (max − 8) needs the maximum of the whole spectrogram, which a stream does not
/// know until its end. The stream therefore keeps the log10 values unclamped and tracks their
/// running maximum: spectrogram() clamps at the maximum so far, and after finish() that is the
/// batch result exactly; earlier copies differ only in values below a later, louder passage's
/// max − 8, which rise to the new floor. Models trained with a fixed clamp (Voxtral Realtime's
/// global_log_mel_max) use spectrogram(max), whose frames never change.
class LogMelStream {
 public:
  /// A stream over `front_end` (kept by reference: it must outlive the stream).
  explicit LogMelStream(const LogMel& front_end) : front_end_(&front_end) {}

  /// Adds `samples` (16 kHz mono) and computes the frames they complete, over `pool`; returns
  /// how many frames were added. Non-finite samples are refused (by index in the stream) before
  /// anything is kept, so the stream stays usable.
  Result<size_t> feed(std::span<const float> samples, ThreadPool& pool) {
    if (finished_) return make_error(ErrorCode::invalid_argument, "log-mel stream: feed() after finish()");
    if (auto finite = LogMel::check_finite(samples, fed_); !finite) return std::move(finite).error();
    pending_.insert(pending_.end(), samples.begin(), samples.end());
    fed_ += samples.size();
    // frame f reads samples f·160 − 200 … f·160 + 199, and frame 0 reflects up to sample 200
    const size_t complete = fed_ < LogMel::kMinSamples ? 0 : (fed_ - kFftSize / 2) / kHopLength + 1;
    return compute_until(complete, fed_, pool);
  }

  /// Ends the stream as if `padding` zero samples followed the audio (whisper's transcribe()
  /// pads with 30 s): computes the remaining frames; returns how many were added.
  Result<size_t> finish(size_t padding, ThreadPool& pool) {
    if (finished_) return make_error(ErrorCode::invalid_argument, "log-mel stream: finish() called twice");
    const size_t total = fed_ + padding;
    if (total / kHopLength > 0 && total < LogMel::kMinSamples) {
      return make_error(ErrorCode::invalid_argument, "log-mel stream: {} samples are too few for reflect padding (need at least {})", total,
                        LogMel::kMinSamples);
    }
    finished_ = true;
    return compute_until(total / kHopLength, total, pool);
  }

  /// Frames computed so far.
  [[nodiscard]] size_t frames() const noexcept { return frames_; }
  /// Samples fed so far.
  [[nodiscard]] size_t samples() const noexcept { return fed_; }
  /// True once finish() has run.
  [[nodiscard]] bool finished() const noexcept { return finished_; }
  /// The largest log10 mel value so far (−∞ before the first frame).
  [[nodiscard]] float max_log10() const noexcept { return max_log10_; }

  /// The unclamped log10 mel values of the frames so far, [n_mels][frames].
  [[nodiscard]] MelSpectrogram log10_mel() const {
    const size_t n_mels = front_end_->n_mels();
    MelSpectrogram mel{n_mels, frames_, std::vector<float>(n_mels * frames_)};
    for (size_t f = 0; f < frames_; ++f) {
      for (size_t m = 0; m < n_mels; ++m) mel.values[m * frames_ + f] = log10_[f * n_mels + m];
    }
    return mel;
  }

  /// The frames so far clamped at the running maximum − 8 and scaled: after finish(), equal to
  /// LogMel::compute of the same audio and padding.
  [[nodiscard]] MelSpectrogram spectrogram() const { return spectrogram(max_log10_); }

  /// The frames so far clamped at `max` − 8 and scaled (a fixed clamp: frames never change).
  [[nodiscard]] MelSpectrogram spectrogram(float max) const {
    auto mel = log10_mel();
    LogMel::normalize(mel.values, max);
    return mel;
  }

 private:
  /// Computes frames up to `end` of the signal of `total` samples (the fed ones, then zeros),
  /// then drops the samples no later frame reads.
  Result<size_t> compute_until(size_t end, size_t total, ThreadPool& pool) {
    if (end <= frames_) return size_t{0};
    const size_t n_mels = front_end_->n_mels();
    const size_t added = end - frames_;
    log10_.resize(end * n_mels);
    front_end_->log10_frames({pending_, pending_offset_, total}, frames_, end, log10_.data() + frames_ * n_mels, n_mels, 1, pool);
    max_log10_ = std::max(max_log10_, *std::max_element(log10_.begin() + static_cast<ptrdiff_t>(frames_ * n_mels), log10_.end()));
    frames_ = end;
    const size_t keep_from = frames_ * kHopLength < kFftSize / 2 ? 0 : frames_ * kHopLength - kFftSize / 2;  // next frame's first sample
    if (keep_from > pending_offset_) {
      const size_t drop = std::min(keep_from - pending_offset_, pending_.size());
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<ptrdiff_t>(drop));
      pending_offset_ += drop;
    }
    return added;
  }

  const LogMel* front_end_;
  std::vector<float> pending_;  ///< samples from pending_offset_ on, still read by frames to come
  size_t pending_offset_ = 0;
  size_t fed_ = 0;
  size_t frames_ = 0;
  std::vector<float> log10_;  ///< [frames][n_mels], unclamped
  float max_log10_ = -std::numeric_limits<float>::infinity();
  bool finished_ = false;
};

/// The first `frames` frames of `mel`, zero-padded when it is shorter (whisper's pad_or_trim).
inline std::vector<float> pad_or_trim(const MelSpectrogram& mel, size_t frames = kWindowFrames) {
  std::vector<float> out(mel.n_mels * frames, 0.0f);
  const size_t keep = std::min(frames, mel.frames);
  for (size_t m = 0; m < mel.n_mels; ++m) std::copy_n(mel.values.data() + m * mel.frames, keep, out.data() + m * frames);
  return out;
}

}  // namespace apr::audio
