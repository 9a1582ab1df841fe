/// @file whisper_stream.hpp
/// @brief Live transcription: audio arrives in chunks; each encoder window (30 s for Whisper)
/// that the audio so far covers completely is decoded once and its segments are committed, and
/// the audio after them is transcribed tentatively (text that may still change). At the end of
/// the stream the result is exactly the batch transcription of the same audio.
///
/// Why it is exact: a window's log-mel frames depend only on the samples around them and on the
/// spectrogram's global maximum (the clamp at max − 8), so a committed window is decoded again at
/// the end only if the final spectrogram differs in it (a louder passage arrived later and moved
/// the clamp). Each committed window keeps a hash of its frames and the transcription state
/// before it; finish() resumes from the last window whose frames are unchanged.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "apr/audio/mel.hpp"
#include "apr/core/result.hpp"
#include "apr/core/thread_pool.hpp"
#include "apr/runtime/whisper_transcribe.hpp"

namespace apr::runtime {

/// What feed() reports.
struct StreamUpdate {
  std::vector<TranscriptSegment> committed;  ///< segments that became final with this chunk
  std::string tentative;                     ///< text of the audio after the committed segments (may change)
};

/// Transcribes a stream of 16 kHz mono samples with whisper's long-form algorithm.
class WhisperStream {
 public:
  /// A stream over `decoder` and `front_end` (both kept by reference) with `options`; the
  /// tentative text is refreshed after every `tentative_seconds` of new audio (0: never).
  static Result<WhisperStream> create(WhisperDecoder& decoder, const audio::LogMel& front_end, TranscribeOptions options, ThreadPool& pool,
                                      double tentative_seconds = 1.0) {
    if (!options.clip_timestamps.empty()) return make_error(ErrorCode::invalid_argument, "whisper stream: clip_timestamps need the whole audio");
    if (options.hallucination_silence_threshold) {
      return make_error(ErrorCode::invalid_argument, "whisper stream: hallucination_silence_threshold needs the whole audio");
    }
    if (front_end.n_mels() != decoder.model().config().num_mel_bins) {
      return make_error(ErrorCode::invalid_argument, "whisper stream: the front end makes {} mel bands, the model takes {}", front_end.n_mels(),
                        decoder.model().config().num_mel_bins);
    }
    return WhisperStream(decoder, front_end, std::move(options), pool, tentative_seconds);
  }

  /// Adds `samples`; decodes every window the audio now covers and, when due, the tentative tail.
  Result<StreamUpdate> feed(std::span<const float> samples) {
    for (size_t i = 0; i < samples.size(); ++i) {  // refused before anything is kept: the stream stays usable
      if (!std::isfinite(samples[i])) {
        return make_error(ErrorCode::invalid_argument, "whisper stream: sample {} is {} (audio must be finite)", samples_.size() + i, samples[i]);
      }
    }
    samples_.insert(samples_.end(), samples.begin(), samples.end());
    StreamUpdate update;
    auto mel = spectrogram();
    if (!mel) return std::move(mel).error();
    const size_t window = transcriber_.decoder().model().config().input_frames();
    // frames whose samples have all arrived: frame f reads samples up to f·160 + 199
    const size_t settled = samples_.size() < audio::kFftSize / 2 ? 0 : (samples_.size() - audio::kFftSize / 2) / audio::kHopLength + 1;
    if (!progress_ && (!options_.decode.language.empty() || settled >= window)) {
      auto started = transcriber_.start(mel->values, mel->frames, options_);
      if (!started) return std::move(started).error();
      progress_ = std::move(started).value();
      language_hash_ = hash_frames(*mel, 0);
    }
    if (progress_) {
      while (!progress_->done && static_cast<size_t>(progress_->seek) + window <= settled) {
        Snapshot snapshot{*progress_, hash_frames(*mel, static_cast<size_t>(progress_->seek))};
        const size_t before = progress_->transcript.segments.size();
        auto status = transcriber_.step(*progress_, mel->values, mel->frames, options_);
        if (!status) return std::move(status).error();
        snapshots_.push_back(std::move(snapshot));
        for (size_t i = before; i < progress_->transcript.segments.size(); ++i) update.committed.push_back(progress_->transcript.segments[i]);
      }
    }
    if (tentative_samples_ > 0 && samples_.size() >= last_tentative_ + tentative_samples_) {
      last_tentative_ = samples_.size();
      auto tail = tentative(*mel);
      if (!tail) return std::move(tail).error();
      update.tentative = std::move(tail).value();
    }
    return update;
  }

  /// Ends the stream: the batch transcription of all the audio fed, reusing every committed
  /// window whose frames the final spectrogram leaves unchanged.
  Result<Transcript> finish() {
    if (samples_.empty()) return make_error(ErrorCode::invalid_argument, "whisper stream: no audio was fed");
    auto mel = spectrogram();
    if (!mel) return std::move(mel).error();
    if (progress_ && options_.decode.language.empty() && hash_frames(*mel, 0) != language_hash_) progress_.reset();
    if (progress_) {
      for (size_t i = 0; i < snapshots_.size(); ++i) {
        if (hash_frames(*mel, static_cast<size_t>(snapshots_[i].before.seek)) == snapshots_[i].frames_hash) continue;
        progress_ = snapshots_[i].before;  // resume before the first window that changed
        break;
      }
    }
    if (!progress_) {
      auto started = transcriber_.start(mel->values, mel->frames, options_);
      if (!started) return std::move(started).error();
      progress_ = std::move(started).value();
    }
    while (!progress_->done) {
      auto status = transcriber_.step(*progress_, mel->values, mel->frames, options_);
      if (!status) return std::move(status).error();
    }
    return transcriber_.finish(*progress_);
  }

  /// Samples fed so far.
  [[nodiscard]] size_t samples() const noexcept { return samples_.size(); }

 private:
  /// The transcription state before a committed window and the hash of that window's frames.
  struct Snapshot {
    WhisperTranscriber::Progress before;
    uint64_t frames_hash = 0;
  };

  WhisperStream(WhisperDecoder& decoder, const audio::LogMel& front_end, TranscribeOptions options, ThreadPool& pool, double tentative_seconds)
      : transcriber_(decoder), front_end_(&front_end), options_(std::move(options)), pool_(&pool),
        tentative_samples_(static_cast<size_t>(std::max(0.0, tentative_seconds) * static_cast<double>(audio::kSampleRate))) {}

  /// The log-mel of all samples so far, followed by a window of silence, as batch computes it.
  Result<audio::MelSpectrogram> spectrogram() const {
    return front_end_->compute(samples_, window_samples(transcriber_.decoder().model().config()), *pool_);
  }

  /// FNV-1a of the bits of the window of frames from `seek` (zero beyond the spectrogram).
  uint64_t hash_frames(const audio::MelSpectrogram& mel, size_t seek) const {
    const size_t window = transcriber_.decoder().model().config().input_frames();
    uint64_t hash = 1469598103934665603ull;
    for (size_t m = 0; m < mel.n_mels; ++m) {
      for (size_t f = seek; f < seek + window; ++f) {
        const float value = f < mel.frames ? mel.values[m * mel.frames + f] : 0.0f;
        uint32_t bits = 0;
        std::memcpy(&bits, &value, sizeof bits);
        for (int byte = 0; byte < 4; ++byte) {
          hash ^= (bits >> (8 * byte)) & 0xFF;
          hash *= 1099511628211ull;
        }
      }
    }
    return hash;
  }

  /// Text of the audio after the committed windows, transcribed as if the stream ended now.
  Result<std::string> tentative(const audio::MelSpectrogram& mel) {
    WhisperTranscriber::Progress trial;
    if (progress_) {
      trial = *progress_;
    } else {
      auto started = transcriber_.start(mel.values, mel.frames, options_);
      if (!started) return std::move(started).error();
      trial = std::move(started).value();
    }
    const size_t committed = trial.transcript.segments.size();
    while (!trial.done) {
      auto status = transcriber_.step(trial, mel.values, mel.frames, options_);
      if (!status) return std::move(status).error();
    }
    std::vector<int32_t> tokens;
    for (size_t i = committed; i < trial.transcript.segments.size(); ++i) {
      const auto& segment_tokens = trial.transcript.segments[i].tokens;
      tokens.insert(tokens.end(), segment_tokens.begin(), segment_tokens.end());
    }
    return strip_text(transcriber_.decoder().decode_text(tokens));
  }

  WhisperTranscriber transcriber_;
  const audio::LogMel* front_end_;
  TranscribeOptions options_;
  ThreadPool* pool_;
  size_t tentative_samples_;
  size_t last_tentative_ = 0;
  std::vector<float> samples_;
  std::optional<WhisperTranscriber::Progress> progress_;
  uint64_t language_hash_ = 0;
  std::vector<Snapshot> snapshots_;
};

}  // namespace apr::runtime
