/// @file whisper_transcribe.hpp
/// @brief Long-form transcription as openai/whisper's transcribe() does it: 30 s windows over
/// the log-mel, each decoded with temperature fallback (compression ratio and average
/// log-probability thresholds, no-speech skip), segments cut at timestamp pairs, the next window
/// seeking to the last timestamp, earlier text as the prompt, optional word timestamps (which
/// also move the seek to the last word) and hallucination skipping around long silences.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "apr/audio/mel.hpp"
#include "apr/core/result.hpp"
#include "apr/runtime/whisper_alignment.hpp"
#include "apr/runtime/whisper_decode.hpp"

namespace apr::runtime {

/// One transcribed segment.
struct TranscriptSegment {
  size_t id = 0;                   ///< index in the transcript
  size_t seek = 0;                 ///< mel frame where its window started
  double start = 0.0;              ///< start, seconds
  double end = 0.0;                ///< end, seconds
  std::string text;                ///< its text (leading space kept, as whisper returns it)
  std::vector<int32_t> tokens;     ///< its tokens, timestamps included
  float temperature = 0.0f;        ///< temperature of the window's accepted decoding
  double avg_logprob = 0.0;        ///< the window's average log-probability
  double compression_ratio = 0.0;  ///< the window's compression ratio
  double no_speech_prob = 0.0;     ///< the window's no-speech probability
  std::vector<WordTiming> words;   ///< word timings (with word_timestamps)
};

/// Options of a transcription (openai/whisper's transcribe() arguments).
struct TranscribeOptions {
  /// Per-window decoding: task, language (empty: detect from the first 30 s), beam_size,
  /// best_of, patience, suppression, timestamps, seed. Its temperature is ignored.
  WhisperDecodeOptions decode;
  std::vector<float> temperatures{0.0f, 0.2f, 0.4f, 0.6f, 0.8f, 1.0f};  ///< tried in turn while a window fails the thresholds
  std::optional<double> compression_ratio_threshold = 2.4;             ///< above it a window failed (too repetitive)
  std::optional<double> logprob_threshold = -1.0;                      ///< below it a window failed (too unlikely)
  std::optional<double> no_speech_threshold = 0.6;                     ///< above it, with a failed log-probability, the window is silence
  bool condition_on_previous_text = true;                              ///< earlier text is the next window's prompt
  std::optional<std::string> initial_prompt;                           ///< text before the first window
  bool carry_initial_prompt = false;                                   ///< put the initial prompt before every window's prompt
  bool word_timestamps = false;                                        ///< align words to times (cross-attention + DTW)
  std::string prepend_punctuations = "\"'\u201c\u00bf([{-";             ///< joined to the following word
  std::string append_punctuations = "\"'.\u3002,\uff0c!\uff01?\uff1f:\uff1a\u201d)]}\u3001";  ///< joined to the previous word
  std::vector<double> clip_timestamps;                                 ///< start,end,… seconds to transcribe (empty: all)
  std::optional<double> hallucination_silence_threshold;               ///< with word timestamps: skip silences longer than this around anomalies
  std::vector<std::pair<size_t, size_t>> alignment_heads;              ///< (layer, head); empty: every head of the last half of the decoder layers
  std::function<void(const TranscriptSegment&)> on_segment;     ///< called as each segment is final
  std::function<bool()> cancelled;                               ///< asked before each 30 s window: true stops with ErrorCode::cancelled
};

/// A transcription.
struct Transcript {
  std::string text;                                  ///< the whole text
  std::vector<TranscriptSegment> segments;           ///< segments in time order
  std::string language;                              ///< language code used
  std::vector<LanguageProbability> language_probs;   ///< when the language was detected
};

namespace detail {

/// Python's round() to an integer: nearest, ties to even.
inline int64_t round_half_even(double value) { return static_cast<int64_t>(std::nearbyint(value)); }

/// The end of the last word of `segments`, else the last segment's end (whisper's get_end()).
inline std::optional<double> last_end(std::span<const TranscriptSegment> segments) {
  for (auto s = segments.rbegin(); s != segments.rend(); ++s) {
    if (!s->words.empty()) return s->words.back().end;
  }
  if (segments.empty()) return std::nullopt;
  return segments.back().end;
}

/// Whisper's heuristic score of how unlikely a word timing is (short, long or improbable).
inline double word_anomaly_score(const WordTiming& word) {
  const double duration = word.end - word.start;
  double score = 0.0;
  if (word.probability < 0.15) score += 1.0;
  if (duration < 0.133) score += (0.133 - duration) * 15.0;
  if (duration > 2.0) score += duration - 2.0;
  return score;
}

/// True when the first eight non-punctuation words of `segment` look hallucinated.
inline bool is_segment_anomaly(const TranscriptSegment* segment) {
  if (segment == nullptr || segment->words.empty()) return false;
  constexpr std::string_view punctuation = "\"'\u201c\u00bf([{-\"'.\u3002,\uff0c!\uff01?\uff1f:\uff1a\u201d)]}\u3001";
  double score = 0.0;
  size_t counted = 0;
  for (const WordTiming& word : segment->words) {
    if (counted == 8) break;
    if (punctuation.find(word.word) != std::string_view::npos) continue;
    score += word_anomaly_score(word);
    ++counted;
  }
  return score >= 3.0 || score + 0.01 >= static_cast<double>(counted);
}

/// The first segment of `segments` with words.
inline const TranscriptSegment* next_words_segment(std::span<const TranscriptSegment> segments) {
  for (const auto& s : segments) {
    if (!s.words.empty()) return &s;
  }
  return nullptr;
}

}  // namespace detail

/// Samples of one encoder window of a model: 480000 (30 s) for Whisper's 1500 positions; models
/// with fewer positions (a shorter audio context) take shorter windows.
[[nodiscard]] inline size_t window_samples(const models::WhisperConfig& config) noexcept { return config.input_frames() * audio::kHopLength; }

/// Transcribes with whisper's long-form algorithm. `mel` is the log-mel of the whole audio
/// followed by one window of silence ([num_mel_bins][frames], row-major; what whisper's
/// log_mel_spectrogram(audio, padding=N_SAMPLES) returns for 30 s windows), so
/// frames − input_frames() hold audio.
class WhisperTranscriber {
 public:
  /// A transcriber over `decoder` (kept by reference).
  explicit WhisperTranscriber(WhisperDecoder& decoder) : decoder_(&decoder) {}

  /// The window decoder it runs.
  [[nodiscard]] WhisperDecoder& decoder() const noexcept { return *decoder_; }

  /// Transcribes 16 kHz mono `samples`: their log-mel with one window of padding (as whisper's
  /// transcribe() computes it, frames split over `pool`), then transcribe().
  Result<Transcript> transcribe_samples(std::span<const float> samples, const audio::LogMel& front_end, const TranscribeOptions& options,
                                        ThreadPool& pool) {
    if (front_end.n_mels() != decoder_->model().config().num_mel_bins) {
      return make_error(ErrorCode::invalid_argument, "whisper: the front end makes {} mel bands, the model takes {}", front_end.n_mels(),
                        decoder_->model().config().num_mel_bins);
    }
    auto mel = front_end.compute(samples, window_samples(decoder_->model().config()), pool);
    if (!mel) return std::move(mel).error();
    return transcribe(mel->values, mel->frames, options);
  }

  /// Where a transcription stands between two windows: enough to continue it (the streaming
  /// transcriber keeps one per committed window).
  struct Progress {
    WhisperDecodeOptions decode;                  ///< per-window options, language settled
    Transcript transcript;                        ///< segments so far
    std::vector<int64_t> clip_points;             ///< clip starts and ends in frames (odd count: the last clip runs to the end)
    size_t clip = 0;                              ///< current clip
    int64_t seek = 0;                             ///< first mel frame of the next window
    std::vector<int32_t> all_tokens;              ///< every token so far (initial prompt first)
    size_t prompt_reset_since = 0;                ///< tokens before this index are not used as prompt
    size_t remaining_prompt_length = 0;           ///< room for carried prompt tokens
    std::vector<int32_t> initial_prompt_tokens;   ///< the initial prompt's tokens
    double last_speech_timestamp = 0.0;           ///< end of the last word (word timestamps)
    bool done = false;                            ///< every clip is transcribed
  };

  /// Transcribes `mel` ([num_mel_bins][frames]) with `options`.
  Result<Transcript> transcribe(std::span<const float> mel, size_t frames, const TranscribeOptions& options) {
    auto progress = start(mel, frames, options);
    if (!progress) return std::move(progress).error();
    while (!progress->done) {
      if (options.cancelled && options.cancelled()) return make_error(ErrorCode::cancelled, "transcription cancelled");
      auto status = step(*progress, mel, frames, options);
      if (!status) return std::move(status).error();
    }
    return finish(std::move(progress).value());
  }

  /// Begins a transcription of `mel`: checks, language detection on its first 30 s (unless the
  /// options name the language), clips and the initial prompt.
  Result<Progress> start(std::span<const float> mel, size_t frames, const TranscribeOptions& options) {
    const models::WhisperConfig& config = decoder_->model().config();
    const size_t n_mels = config.num_mel_bins, window_frames = config.input_frames();
    if (frames < window_frames || mel.size() != n_mels * frames) {
      return make_error(ErrorCode::invalid_argument, "whisper: log-mel of {} values is not [{}][{} ≥ {}]", mel.size(), n_mels, frames,
                        window_frames);
    }
    if (options.temperatures.empty()) return make_error(ErrorCode::invalid_argument, "whisper: no temperature to decode with");
    mel_ = mel;
    frames_ = frames;
    const text::WhisperTokens& specials = decoder_->specials();
    Progress p;
    p.decode = options.decode;
    if (p.decode.language.empty()) {
      if (specials.language_ids.empty()) {
        p.decode.language = "en";
      } else {
        auto status = decoder_->encode(window(0, window_frames));
        if (!status) return std::move(status).error();
        auto probs = decoder_->detect_language();
        if (!probs) return std::move(probs).error();
        const auto best = std::max_element(probs->begin(), probs->end(), [](const auto& a, const auto& b) { return a.probability < b.probability; });
        p.decode.language = best->code;
        p.transcript.language_probs = std::move(probs).value();
      }
    }
    p.transcript.language = p.decode.language;
    for (double t : options.clip_timestamps) p.clip_points.push_back(detail::round_half_even(t * kFramesPerSecond));
    if (p.clip_points.empty()) p.clip_points.push_back(0);
    p.seek = p.clip_points[0];
    p.remaining_prompt_length = config.max_target_positions / 2 - 1;
    if (options.initial_prompt) {
      p.initial_prompt_tokens = decoder_->encode_text(*options.initial_prompt);
      p.all_tokens = p.initial_prompt_tokens;
      p.remaining_prompt_length -= std::min(p.remaining_prompt_length, p.initial_prompt_tokens.size());
    }
    return p;
  }

  /// The (start, end) frames of the clip the next window of `p` falls in, for audio of
  /// `content_frames` frames; moves past finished clips and marks `p` done after the last.
  static std::optional<std::pair<int64_t, int64_t>> current_clip(Progress& p, size_t content_frames) {
    const size_t clips = (p.clip_points.size() + 1) / 2;
    while (p.clip < clips) {
      const int64_t clip_start = p.clip_points[2 * p.clip];
      const int64_t clip_end = 2 * p.clip + 1 < p.clip_points.size() ? p.clip_points[2 * p.clip + 1] : static_cast<int64_t>(content_frames);
      p.seek = std::max(p.seek, clip_start);
      if (p.seek < clip_end) return std::pair{clip_start, clip_end};
      if (++p.clip < clips) p.seek = p.clip_points[2 * p.clip];
    }
    p.done = true;
    return std::nullopt;
  }

  /// Transcribes the next window of `mel` ([num_mel_bins][frames]) and moves `p` past it.
  Result<void> step(Progress& p, std::span<const float> mel, size_t frames, const TranscribeOptions& options) {
    const models::WhisperConfig& config = decoder_->model().config();
    const size_t window_frames = config.input_frames();
    if (frames < window_frames || mel.size() != config.num_mel_bins * frames) {
      return make_error(ErrorCode::invalid_argument, "whisper: log-mel of {} values is not [{}][{} ≥ {}]", mel.size(), config.num_mel_bins,
                        frames, window_frames);
    }
    mel_ = mel;
    frames_ = frames;
    const size_t content_frames = frames - window_frames;
    const double content_duration = static_cast<double>(content_frames) * kHop / kSampleRate;
    const text::WhisperTokens& specials = decoder_->specials();
    const AlignmentSettings alignment = alignment_settings(options);
    const int64_t input_stride = static_cast<int64_t>(window_frames / config.max_source_positions);
    const double time_precision = static_cast<double>(input_stride) * kHop / kSampleRate;
    WhisperDecodeOptions& decode = p.decode;
    Transcript& transcript = p.transcript;
    std::vector<int32_t>& all_tokens = p.all_tokens;
    size_t& prompt_reset_since = p.prompt_reset_since;
    const std::vector<int32_t>& initial_prompt_tokens = p.initial_prompt_tokens;
    const size_t remaining_prompt_length = p.remaining_prompt_length;
    int64_t& seek = p.seek;
    double& last_speech_timestamp = p.last_speech_timestamp;
    {
      const auto clip = current_clip(p, content_frames);
      if (!clip) return ok();
      const int64_t clip_end = clip->second;
      const double time_offset = static_cast<double>(seek) * kHop / kSampleRate;
      const double window_end_time = static_cast<double>(seek + static_cast<int64_t>(window_frames)) * kHop / kSampleRate;
      const int64_t segment_size = std::min({static_cast<int64_t>(window_frames), static_cast<int64_t>(content_frames) - seek, clip_end - seek});
      const double segment_duration = static_cast<double>(segment_size) * kHop / kSampleRate;
      auto status = decoder_->encode(window(static_cast<size_t>(seek), static_cast<size_t>(segment_size)));
      if (!status) return std::move(status).error();

      if (options.carry_initial_prompt) {
        const size_t ignored = std::max(initial_prompt_tokens.size(), prompt_reset_since);
        std::vector<int32_t> prompt = initial_prompt_tokens;
        const size_t available = all_tokens.size() - std::min(ignored, all_tokens.size());
        const size_t keep = std::min(available, remaining_prompt_length);
        prompt.insert(prompt.end(), all_tokens.end() - static_cast<ptrdiff_t>(keep), all_tokens.end());
        decode.prompt = std::move(prompt);
      } else {
        decode.prompt.assign(all_tokens.begin() + static_cast<ptrdiff_t>(prompt_reset_since), all_tokens.end());
      }

      auto decoded = decode_with_fallback(decode, options, static_cast<uint64_t>(seek));
      if (!decoded) return std::move(decoded).error();
      const WhisperDecodeResult& result = *decoded;
      const std::vector<int32_t>& tokens = result.tokens;

      if (options.no_speech_threshold) {
        bool should_skip = result.no_speech_prob > *options.no_speech_threshold;
        if (options.logprob_threshold && result.avg_logprob > *options.logprob_threshold) should_skip = false;
        if (should_skip) {
          seek += segment_size;
          return ok();
        }
      }

      const int64_t previous_seek = seek;
      std::vector<TranscriptSegment> current;
      auto new_segment = [&](double start, double end, std::span<const int32_t> slice) {
        TranscriptSegment segment;
        segment.seek = static_cast<size_t>(seek);
        segment.start = start;
        segment.end = end;
        std::vector<int32_t> text_tokens;
        for (int32_t t : slice) {
          if (t < specials.end_of_text) text_tokens.push_back(t);
        }
        segment.text = decoder_->tokenizer().decode(text_tokens);
        segment.tokens.assign(slice.begin(), slice.end());
        segment.temperature = result.temperature;
        segment.avg_logprob = result.avg_logprob;
        segment.compression_ratio = result.compression_ratio;
        segment.no_speech_prob = result.no_speech_prob;
        current.push_back(std::move(segment));
      };

      const auto is_timestamp = [&](size_t i) { return tokens[i] >= specials.timestamp_begin; };
      const bool single_timestamp_ending = tokens.size() >= 2 && !is_timestamp(tokens.size() - 2) && is_timestamp(tokens.size() - 1);
      std::vector<size_t> slices;
      for (size_t i = 0; i + 1 < tokens.size(); ++i) {
        if (is_timestamp(i) && is_timestamp(i + 1)) slices.push_back(i + 1);
      }
      if (!slices.empty()) {
        if (single_timestamp_ending) slices.push_back(tokens.size());
        size_t last_slice = 0;
        for (size_t current_slice : slices) {
          const auto slice = std::span(tokens).subspan(last_slice, current_slice - last_slice);
          const double start = time_offset + static_cast<double>(slice.front() - specials.timestamp_begin) * time_precision;
          const double end = time_offset + static_cast<double>(slice.back() - specials.timestamp_begin) * time_precision;
          new_segment(start, end, slice);
          last_slice = current_slice;
        }
        if (single_timestamp_ending) {
          seek += segment_size;
        } else {
          seek += static_cast<int64_t>(tokens[last_slice - 1] - specials.timestamp_begin) * input_stride;
        }
      } else {
        double duration = segment_duration;
        std::optional<int32_t> last_timestamp;
        for (size_t i = 0; i < tokens.size(); ++i) {
          if (is_timestamp(i)) last_timestamp = tokens[i];
        }
        if (last_timestamp && *last_timestamp != specials.timestamp_begin) {
          duration = static_cast<double>(*last_timestamp - specials.timestamp_begin) * time_precision;
        }
        new_segment(time_offset, time_offset + duration, tokens);
        seek += segment_size;
      }

      if (options.word_timestamps) {
        auto aligned = add_word_timestamps(current, decode.language, decode.task, static_cast<size_t>(segment_size), options, alignment,
                                           last_speech_timestamp);
        if (!aligned) return std::move(aligned).error();
        if (!single_timestamp_ending) {
          const auto last_word_end = detail::last_end(current);
          if (last_word_end && *last_word_end > time_offset) seek = detail::round_half_even(*last_word_end * kFramesPerSecond);
        }
        if (options.hallucination_silence_threshold) {
          const double threshold = *options.hallucination_silence_threshold;
          if (!single_timestamp_ending) {
            const auto last_word_end = detail::last_end(current);
            if (last_word_end && *last_word_end > time_offset) {
              seek = window_end_time - *last_word_end > threshold ? detail::round_half_even(*last_word_end * kFramesPerSecond)
                                                                  : previous_seek + segment_size;
            }
          }
          const TranscriptSegment* first = detail::next_words_segment(current);
          if (first != nullptr && detail::is_segment_anomaly(first)) {
            const double gap = first->start - time_offset;
            if (gap > threshold) {
              seek = previous_seek + detail::round_half_even(gap * kFramesPerSecond);
              return ok();
            }
          }
          double hal_last_end = last_speech_timestamp;
          for (size_t si = 0; si < current.size(); ++si) {
            const TranscriptSegment& segment = current[si];
            if (segment.words.empty()) continue;
            if (detail::is_segment_anomaly(&segment)) {
              const TranscriptSegment* next = detail::next_words_segment(std::span(current).subspan(si + 1));
              const double hal_next_start = next != nullptr ? next->words.front().start : time_offset + segment_duration;
              const bool silence_before = segment.start - hal_last_end > threshold || segment.start < threshold || segment.start - time_offset < 2.0;
              const bool silence_after =
                  hal_next_start - segment.end > threshold || detail::is_segment_anomaly(next) || window_end_time - segment.end < 2.0;
              if (silence_before && silence_after) {
                seek = detail::round_half_even(std::max(time_offset + 1.0, segment.start) * kFramesPerSecond);
                if (content_duration - segment.end < threshold) seek = static_cast<int64_t>(content_frames);
                current.resize(si);
                break;
              }
            }
            hal_last_end = segment.end;
          }
        }
        const auto last_word_end = detail::last_end(current);
        if (last_word_end) last_speech_timestamp = *last_word_end;
      }

      for (TranscriptSegment& segment : current) {
        if (segment.start == segment.end || strip_text(segment.text).empty()) {
          segment.text.clear();
          segment.tokens.clear();
          segment.words.clear();
        }
      }
      for (TranscriptSegment& segment : current) {
        segment.id = transcript.segments.size();
        all_tokens.insert(all_tokens.end(), segment.tokens.begin(), segment.tokens.end());
        if (options.on_segment) options.on_segment(segment);
        transcript.segments.push_back(std::move(segment));
      }
      if (!options.condition_on_previous_text || result.temperature > 0.5f) prompt_reset_since = all_tokens.size();
    }
    return ok();
  }

  /// The finished transcript of `p` (its whole text).
  Transcript finish(Progress p) const {
    p.transcript.text = decoder_->decode_text(std::span(p.all_tokens).subspan(p.initial_prompt_tokens.size()));
    return std::move(p.transcript);
  }

 private:
  static constexpr double kHop = 160.0;             ///< samples per mel frame
  static constexpr double kSampleRate = 16000.0;    ///< samples per second
  static constexpr double kFramesPerSecond = 100.0; ///< mel frames per second

  /// The window of `size` frames from `seek`, zero-padded to the encoder's input frames.
  std::span<const float> window(size_t seek, size_t size) {
    const size_t n_mels = decoder_->model().config().num_mel_bins, window_frames = decoder_->model().config().input_frames();
    window_.assign(n_mels * window_frames, 0.0f);
    size = std::min({size, window_frames, frames_ - seek});
    for (size_t m = 0; m < n_mels; ++m) std::copy_n(mel_.data() + m * frames_ + seek, size, window_.data() + m * window_frames);
    return window_;
  }

  /// The alignment heads of `options`, or every head of the last half of the decoder layers.
  AlignmentSettings alignment_settings(const TranscribeOptions& options) const {
    const models::WhisperConfig& config = decoder_->model().config();
    AlignmentSettings settings;
    settings.heads = options.alignment_heads;
    if (settings.heads.empty()) {
      for (size_t l = config.decoder_layers / 2; l < config.decoder_layers; ++l) {
        for (size_t h = 0; h < config.decoder_attention_heads; ++h) settings.heads.emplace_back(l, h);
      }
    }
    settings.tokens_per_second = static_cast<double>(config.max_source_positions) / 30.0;
    return settings;
  }

  /// Decodes the encoded window at each temperature in turn until one passes the thresholds;
  /// sampling is seeded by the options' seed, the window's first frame and the attempt, so a
  /// window decodes the same however the transcription got there.
  Result<WhisperDecodeResult> decode_with_fallback(WhisperDecodeOptions decode, const TranscribeOptions& options, uint64_t window_seek) {
    std::optional<WhisperDecodeResult> result;
    const size_t beam_size = decode.beam_size, best_of = decode.best_of;
    const float patience = decode.patience;
    for (size_t attempt = 0; attempt < options.temperatures.size(); ++attempt) {
      const float t = options.temperatures[attempt];
      decode.temperature = t;
      decode.beam_size = t > 0.0f ? 0 : beam_size;
      decode.patience = t > 0.0f ? 0.0f : patience;
      decode.best_of = t > 0.0f ? best_of : 0;
      decode.seed = options.decode.seed + window_seek * options.temperatures.size() + attempt;
      auto decoded = decoder_->decode(decode);
      if (!decoded) return std::move(decoded).error();
      result = std::move(decoded).value();
      bool needs_fallback = false;
      if (options.compression_ratio_threshold && result->compression_ratio > *options.compression_ratio_threshold) needs_fallback = true;
      if (options.logprob_threshold && result->avg_logprob < *options.logprob_threshold) needs_fallback = true;
      if (options.no_speech_threshold && result->no_speech_prob > *options.no_speech_threshold && options.logprob_threshold &&
          result->avg_logprob < *options.logprob_threshold) {
        needs_fallback = false;  // silence
      }
      if (!needs_fallback) break;
    }
    return std::move(result).value();
  }

  /// Adds word timings to `segments` (one window's) and adjusts their ends as whisper does.
  Result<void> add_word_timestamps(std::vector<TranscriptSegment>& segments, const std::string& language, WhisperTask task, size_t num_frames,
                                   const TranscribeOptions& options, const AlignmentSettings& settings, double last_speech_timestamp) {
    if (segments.empty()) return ok();
    const text::WhisperTokens& specials = decoder_->specials();
    std::vector<std::vector<int32_t>> per_segment;
    std::vector<int32_t> text_tokens;
    for (const auto& segment : segments) {
      auto& tokens = per_segment.emplace_back();
      for (int32_t t : segment.tokens) {
        if (t < specials.end_of_text) tokens.push_back(t);
      }
      text_tokens.insert(text_tokens.end(), tokens.begin(), tokens.end());
    }
    std::vector<WordTiming> alignment;
    if (!text_tokens.empty()) {
      auto found = find_alignment(text_tokens, language, task, num_frames, settings);
      if (!found) return std::move(found).error();
      alignment = std::move(found).value();
    }

    std::vector<double> durations;
    for (const auto& w : alignment) {
      if (w.end - w.start != 0.0) durations.push_back(w.end - w.start);
    }
    double median_duration = 0.0;
    if (!durations.empty()) {
      std::sort(durations.begin(), durations.end());
      const size_t n = durations.size();
      median_duration = n % 2 == 1 ? durations[n / 2] : (durations[n / 2 - 1] + durations[n / 2]) / 2.0;
    }
    median_duration = std::min(0.7, median_duration);
    const double max_duration = median_duration * 2.0;
    if (!durations.empty()) {
      // clip long words at sentence boundaries
      constexpr std::string_view sentence_end_marks = ".\u3002!\uff01?\uff1f";
      for (size_t i = 1; i < alignment.size(); ++i) {
        if (alignment[i].end - alignment[i].start > max_duration) {
          if (sentence_end_marks.find(alignment[i].word) != std::string_view::npos) {
            alignment[i].end = alignment[i].start + max_duration;
          } else if (sentence_end_marks.find(alignment[i - 1].word) != std::string_view::npos) {
            alignment[i].start = alignment[i].end - max_duration;
          }
        }
      }
    }
    merge_punctuations(alignment, options.prepend_punctuations, options.append_punctuations);

    const double time_offset = static_cast<double>(segments.front().seek) * kHop / kSampleRate;
    size_t word_index = 0;
    for (size_t s = 0; s < segments.size(); ++s) {
      TranscriptSegment& segment = segments[s];
      size_t saved_tokens = 0;
      std::vector<WordTiming> words;
      while (word_index < alignment.size() && saved_tokens < per_segment[s].size()) {
        const WordTiming& timing = alignment[word_index];
        if (!timing.word.empty()) {
          words.push_back({timing.word, timing.tokens, round_centiseconds(time_offset + timing.start),
                           round_centiseconds(time_offset + timing.end), timing.probability});
        }
        saved_tokens += timing.tokens.size();
        ++word_index;
      }
      if (!words.empty()) {
        // clip the first and second word after a pause to twice the median word duration
        if (words[0].end - last_speech_timestamp > median_duration * 4.0 &&
            (words[0].end - words[0].start > max_duration || (words.size() > 1 && words[1].end - words[0].start > max_duration * 2.0))) {
          if (words.size() > 1 && words[1].end - words[1].start > max_duration) {
            const double boundary = std::max(words[1].end / 2.0, words[1].end - max_duration);
            words[0].end = words[1].start = boundary;
          }
          words[0].start = std::max(0.0, words[0].end - max_duration);
        }
        // prefer the segment's start when the first word is too long, else the word's
        if (segment.start < words[0].end && segment.start - 0.5 > words[0].start) {
          words[0].start = std::max(0.0, std::min(words[0].end - median_duration, segment.start));
        } else {
          segment.start = words[0].start;
        }
        // likewise at the end
        if (segment.end > words.back().start && segment.end + 0.5 < words.back().end) {
          words.back().end = std::max(words.back().start + median_duration, segment.end);
        } else {
          segment.end = words.back().end;
        }
        last_speech_timestamp = segment.end;
      }
      segment.words = std::move(words);
    }
    return ok();
  }

  /// Word timings of `text_tokens` in the encoded window (whisper's find_alignment()).
  Result<std::vector<WordTiming>> find_alignment(const std::vector<int32_t>& text_tokens, const std::string& language, WhisperTask task,
                                                 size_t num_frames, const AlignmentSettings& settings) {
    const text::WhisperTokens& specials = decoder_->specials();
    const models::WhisperConfig& config = decoder_->model().config();
    std::vector<int32_t> tokens = decoder_->sot_sequence(specials.language(language).value_or(-1), task, false);
    const size_t sot_length = tokens.size();
    tokens.push_back(specials.no_timestamps);
    tokens.insert(tokens.end(), text_tokens.begin(), text_tokens.end());
    tokens.push_back(specials.end_of_text);
    std::vector<size_t> rows(text_tokens.size());
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = sot_length + i;
    std::vector<float> cross;
    auto logits = decoder_->force(tokens, rows, cross);
    if (!logits) return std::move(logits).error();
    // probability of each text token among the text tokens (ids below <|endoftext|>)
    std::vector<double> text_probs(text_tokens.size());
    const size_t vocab = config.vocab_size, text_vocab = static_cast<size_t>(specials.end_of_text);
    for (size_t i = 0; i < text_tokens.size(); ++i) {
      const float* row = logits->data() + i * vocab;
      const double max = *std::max_element(row, row + text_vocab);
      double sum = 0.0;
      for (size_t v = 0; v < text_vocab; ++v) sum += std::exp(static_cast<double>(row[v]) - max);
      text_probs[i] = std::exp(static_cast<double>(row[static_cast<size_t>(text_tokens[i])]) - max) / sum;
    }
    std::vector<int32_t> with_end = text_tokens;
    with_end.push_back(specials.end_of_text);
    static constexpr std::string_view kUnspacedLanguages[] = {"zh", "ja", "th", "lo", "my", "yue"};
    const bool by_code_points = std::find(std::begin(kUnspacedLanguages), std::end(kUnspacedLanguages), language) != std::end(kUnspacedLanguages);
    auto [words, word_tokens] = split_to_word_tokens(decoder_->tokenizer(), with_end, specials.end_of_text, by_code_points);
    return align_words(cross, config.decoder_layers,
                       config.decoder_attention_heads, tokens.size(), config.max_source_positions, sot_length, num_frames, text_probs,
                       std::move(words), std::move(word_tokens), settings);
  }

  WhisperDecoder* decoder_;
  std::span<const float> mel_;
  size_t frames_ = 0;
  std::vector<float> window_;
};

}  // namespace apr::runtime
