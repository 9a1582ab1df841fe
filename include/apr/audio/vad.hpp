/// @file vad.hpp
/// @brief Energy-based voice activity detection: speech segments of 16 kHz mono audio, batch
/// (detect_speech) or as audio arrives (VadStream), with identical results.
///
/// The audio is cut into frames of `frame_ms`; a frame is speech when its RMS level is at least
/// `threshold_db` dBFS. A run of speech frames ends once `min_silence_ms` of silence follows it;
/// runs shorter than `min_speech_ms` are dropped; each kept run is widened by `speech_pad_ms` on
/// both sides (clamped to the audio) and runs that then touch are merged. A segment's confidence
/// is the mean over its speech-run frames of sigmoid((level − threshold) / 3 dB), in [0, 1].
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <optional>
#include <span>
#include <vector>

#include "apr/core/result.hpp"

namespace apr::audio {

/// Settings of the energy detector (defaults suit speech recorded at normal levels).
struct VadOptions {
  double threshold_db = -40.0;   ///< frames at or above this RMS level (dBFS, full scale = 0) are speech
  size_t frame_ms = 20;          ///< analysis frame length
  size_t min_speech_ms = 250;    ///< shorter speech runs are dropped
  size_t min_silence_ms = 300;   ///< silence that ends a speech run
  size_t speech_pad_ms = 200;    ///< margin kept on each side of a segment
  size_t sample_rate = 16000;    ///< samples per second of the audio
};

/// A stretch of speech in samples, [start, end), with the detector's confidence.
struct SpeechSegment {
  size_t start = 0;         ///< first sample
  size_t end = 0;           ///< one past the last sample
  double confidence = 0.0;  ///< mean per-frame speech probability, in [0, 1]
  size_t frames = 0;        ///< speech-run frames the confidence averages

  /// Start in seconds at `sample_rate`.
  [[nodiscard]] double start_seconds(size_t sample_rate) const { return static_cast<double>(start) / static_cast<double>(sample_rate); }
  /// End in seconds at `sample_rate`.
  [[nodiscard]] double end_seconds(size_t sample_rate) const { return static_cast<double>(end) / static_cast<double>(sample_rate); }
};

/// Voice activity detection as audio arrives: feed() returns the segments that no later audio
/// can change; finish() the rest. The segments are exactly those of detect_speech() over all the
/// audio fed, whatever the chunk sizes.
class VadStream {
 public:
  /// Checks `options`: positive frame length and sample rate, a finite threshold.
  static Result<VadStream> create(const VadOptions& options) {
    if (options.sample_rate == 0 || options.frame_ms == 0 || options.frame_ms * options.sample_rate / 1000 == 0) {
      return make_error(ErrorCode::invalid_argument, "VAD: frame_ms {} at {} Hz gives no samples per frame", options.frame_ms, options.sample_rate);
    }
    if (!std::isfinite(options.threshold_db)) return make_error(ErrorCode::invalid_argument, "VAD: threshold_db must be finite");
    return VadStream(options);
  }

  /// Adds `samples`; returns the segments that became final. Non-finite samples are refused (by
  /// index in the stream) before any is used, so the stream stays usable.
  Result<std::vector<SpeechSegment>> feed(std::span<const float> samples) {
    if (finished_) return make_error(ErrorCode::invalid_argument, "VAD: feed() after finish()");
    for (size_t i = 0; i < samples.size(); ++i) {
      if (!std::isfinite(samples[i])) return make_error(ErrorCode::invalid_argument, "VAD: sample {} is {} (audio must be finite)", fed_ + i, samples[i]);
    }
    std::vector<SpeechSegment> done;
    for (float sample : samples) {
      frame_energy_ += static_cast<double>(sample) * sample;
      ++frame_fill_;
      ++fed_;
      if (frame_fill_ == frame_samples_) close_frame(done);
    }
    release_before(fed_, done);
    return done;
  }

  /// Ends the stream (a last, shorter frame counts as a frame) and returns the remaining segments.
  Result<std::vector<SpeechSegment>> finish() {
    if (finished_) return make_error(ErrorCode::invalid_argument, "VAD: finish() called twice");
    finished_ = true;
    std::vector<SpeechSegment> done;
    if (frame_fill_ > 0) close_frame(done);
    end_run(done);
    if (held_) {
      held_->end = std::min(held_->end, fed_);
      release(done);
    }
    return done;
  }

  /// Samples fed so far.
  [[nodiscard]] size_t samples() const noexcept { return fed_; }

 private:
  explicit VadStream(const VadOptions& options)
      : options_(options),
        frame_samples_(options.frame_ms * options.sample_rate / 1000),
        min_speech_frames_((options.min_speech_ms + options.frame_ms - 1) / options.frame_ms),
        min_silence_frames_(std::max<size_t>(1, (options.min_silence_ms + options.frame_ms - 1) / options.frame_ms)),
        pad_samples_(options.speech_pad_ms * options.sample_rate / 1000) {}

  /// Frames and the sum of their speech probabilities.
  struct Tally {
    size_t frames = 0;             ///< frames counted
    double probability_sum = 0.0;  ///< their probabilities added

    /// Adds `other`'s frames.
    void add(const Tally& other) {
      frames += other.frames;
      probability_sum += other.probability_sum;
    }
  };

  /// A run of speech frames being grown.
  struct Run {
    size_t start = 0;  ///< start of its first speech frame
    size_t end = 0;    ///< end of its last speech frame
    Tally speech;      ///< frames from its first to its last speech frame
    Tally silence;     ///< silent frames since its last speech frame
  };

  /// A padded segment not yet released, which a later run may still extend.
  struct Held {
    size_t start = 0;  ///< first sample
    size_t end = 0;    ///< one past the last sample
    Tally tally;       ///< the frames of the runs merged into it
  };

  /// Classifies the frame just filled and advances the run state machine.
  void close_frame(std::vector<SpeechSegment>& done) {
    const double level_db = 10.0 * std::log10(frame_energy_ / static_cast<double>(frame_fill_) + 1e-12);
    const size_t frame_end = fed_, frame_start = fed_ - frame_fill_;
    const Tally frame{1, 1.0 / (1.0 + std::exp(-(level_db - options_.threshold_db) / 3.0))};
    frame_energy_ = 0.0;
    frame_fill_ = 0;
    if (level_db >= options_.threshold_db) {
      if (!run_) run_ = Run{frame_start, frame_end, {}, {}};
      run_->speech.add(run_->silence);  // silence inside a run belongs to it
      run_->speech.add(frame);
      run_->silence = {};
      run_->end = frame_end;
    } else if (run_) {
      run_->silence.add(frame);
      if (run_->silence.frames >= min_silence_frames_) end_run(done);
    }
  }

  /// Closes the current run: drops it when too short, else pads it and merges it into the held
  /// segment when they touch, or releases the held one and holds this.
  void end_run(std::vector<SpeechSegment>& done) {
    if (!run_) return;
    const Run run = *run_;
    run_.reset();
    if (run.speech.frames < min_speech_frames_) return;
    const Held padded{run.start > pad_samples_ ? run.start - pad_samples_ : 0, run.end + pad_samples_, run.speech};
    if (held_ && padded.start <= held_->end) {
      held_->end = padded.end;
      held_->tally.add(padded.tally);
      return;
    }
    if (held_) release(done);
    held_ = padded;
  }

  /// Releases the held segment once no run to come can start close enough to merge with it.
  void release_before(size_t position, std::vector<SpeechSegment>& done) {
    if (!held_) return;
    const size_t next_start = run_ ? run_->start : position - frame_fill_;
    const size_t next_padded = next_start > pad_samples_ ? next_start - pad_samples_ : 0;
    if (next_padded > held_->end) release(done);
  }

  /// Moves the held segment to `done`, its confidence the mean frame probability.
  void release(std::vector<SpeechSegment>& done) {
    done.push_back({held_->start, held_->end, held_->tally.probability_sum / static_cast<double>(held_->tally.frames), held_->tally.frames});
    held_.reset();
  }

  VadOptions options_;
  size_t frame_samples_;
  size_t min_speech_frames_;
  size_t min_silence_frames_;
  size_t pad_samples_;
  size_t fed_ = 0;
  size_t frame_fill_ = 0;
  double frame_energy_ = 0.0;
  std::optional<Run> run_;
  std::optional<Held> held_;
  bool finished_ = false;
};

/// The speech segments of `samples` (the same as a VadStream fed all of them).
inline Result<std::vector<SpeechSegment>> detect_speech(std::span<const float> samples, const VadOptions& options = {}) {
  auto stream = VadStream::create(options);
  if (!stream) return std::move(stream).error();
  auto early = stream->feed(samples);
  if (!early) return std::move(early).error();
  auto rest = stream->finish();
  if (!rest) return std::move(rest).error();
  early->insert(early->end(), rest->begin(), rest->end());
  return early;
}

}  // namespace apr::audio
