/// @file voxtral_stream.hpp
/// @brief VoxtralStream<W>: streaming transcription with a VoxtralRealtime<W> model: 16 kHz
/// audio in chunks of any size, ids out as soon as the transcription delay allows; at the end
/// the ids equal the offline run's (voxtral_transcribe()).
///
/// The stream is the offline pipeline cut at its causal seams: the padded signal (left pad
/// first, the right pad at finish()), log-mel frames once every sample their window reads is
/// known (the fixed clamp makes each frame final), the causal encoder over the new frames
/// (encode_more()), and a decoder step for each new audio embedding. Decoder position p needs
/// the audio up to about (p − left pad + 1) × 80 ms, so an id follows its audio by the delay.
#pragma once

#include <algorithm>
#include <cmath>
#include <span>
#include <vector>

#include "apr/audio/mel.hpp"
#include "apr/core/thread_pool.hpp"
#include "apr/models/voxtral.hpp"

namespace apr::models {

/// How a VoxtralStream schedules its work.
struct VoxtralStreamOptions {
  /// The encoder runs once this many tokens' worth of new audio (80 ms each) is known (0 counts
  /// as 1). 1 decides every id as soon as the delay allows; more read the encoder's weights
  /// once for more positions (80 ms of audio is only 4 encoder positions), which lowers the
  /// real-time factor, while an id may wait up to that much audio longer. The ids are the same
  /// up to float rounding (the encoder's kernels depend on how many rows it runs at once).
  size_t encoder_batch_tokens = 1;
};

template <WeightDtype W>
class VoxtralStreamStart;

/// Streaming greedy transcription: feed() audio, take the ids it decides, finish() at the end.
///
/// Every stream first runs the left pad (silence) alone through the log-mel and the encoder;
/// a stream built from a VoxtralStreamStart copies that work instead of doing it.
template <WeightDtype W>
class VoxtralStream {
 public:
  /// A stream over `model` and the log-mel `front_end` (both kept by reference: they must
  /// outlive it); it runs the left pad at its first feed() or finish().
  VoxtralStream(const VoxtralRealtime<W>& model, const audio::LogMel& front_end, ThreadPool& pool, const VoxtralStreamOptions& options = {})
      : model_(&model), front_end_(&front_end), pool_(&pool), encoder_(model.start_encoder()), decoder_(model.start_decoder()),
        signal_(model.config().n_left_pad_tokens * model.config().samples_per_token, 0.0f), known_(signal_.size()),
        batch_tokens_(std::max<size_t>(options.encoder_batch_tokens, 1)) {}

  /// A stream that starts from `start` (its model and front end must outlive the stream): the
  /// same ids as a stream that runs the left pad itself, without that work.
  VoxtralStream(const VoxtralStreamStart<W>& start, ThreadPool& pool, const VoxtralStreamOptions& options = {})
      : VoxtralStream(*start.model_, *start.front_end_, pool, options) {
    encoder_.mel_tail = start.encoder_.mel_tail;
    encoder_.conv_tail = start.encoder_.conv_tail;
    encoder_.pending = start.encoder_.pending;
    encoder_.position = start.encoder_.position;
    for (size_t l = 0; l < encoder_.caches.size(); ++l) encoder_.caches[l].copy_from(start.encoder_.caches[l], start.encoder_.position);
    signal_ = start.signal_;
    signal_offset_ = start.signal_offset_;
    frames_ = start.frames_;
    audio_ = start.audio_;
    padded_ = true;
  }

  /// Adds `samples` (16 kHz mono); returns the ids decided because of them (none once EOS was decided).
  Result<std::vector<int32_t>> feed(std::span<const float> samples) {
    if (finished_) return make_error(ErrorCode::invalid_argument, "voxtral stream: feed() after finish()");
    if (auto padded = run_left_pad(); !padded) return std::move(padded).error();
    for (size_t i = 0; i < samples.size(); ++i) {
      if (!std::isfinite(samples[i])) return make_error(ErrorCode::invalid_argument, "voxtral stream: sample {} is not finite", audio_samples_ + i);
    }
    signal_.insert(signal_.end(), samples.begin(), samples.end());
    known_ += samples.size();
    audio_samples_ += samples.size();
    // frame f reads samples f·160 − 200 … f·160 + 199
    const size_t half = audio::kFftSize / 2;
    const size_t end = known_ < half ? 0 : (known_ - half) / audio::kHopLength + 1;
    // token t (of the padded signal) is complete once its last frame's window is: samples up to
    // (t + 1)·samples_per_token + half − hop
    const size_t lookahead = half - audio::kHopLength, unit = model_->config().samples_per_token;
    const size_t tokens = known_ < lookahead ? 0 : (known_ - lookahead) / unit;
    if (tokens < tokens_run_ + batch_tokens_) return std::vector<int32_t>{};  // less than a batch is new
    tokens_run_ = tokens;
    return advance(end);
  }

  /// Ends the audio: adds the right padding, runs the frames and positions left; returns the last ids.
  Result<std::vector<int32_t>> finish() {
    if (finished_) return make_error(ErrorCode::invalid_argument, "voxtral stream: finish() called twice");
    if (auto padded = run_left_pad(); !padded) return std::move(padded).error();
    finished_ = true;
    const VoxtralConfig& c = model_->config();
    const size_t unit = c.samples_per_token;
    const size_t total = known_ + (unit - audio_samples_ % unit) % unit + c.n_right_pad_tokens * unit;
    // past the end torch.stft reflects the right padding, which is zeros too
    signal_.resize(signal_.size() + total + audio::kFftSize / 2 - known_, 0.0f);
    known_ = total;
    return advance(total / audio::kHopLength);
  }

  /// Every id decided so far (with EOS last once decided).
  [[nodiscard]] const std::vector<int32_t>& ids() const noexcept { return ids_; }
  /// True once EOS was decided: later audio changes nothing.
  [[nodiscard]] bool ended() const noexcept { return !ids_.empty() && ids_.back() == model_->config().eos_id; }
  /// Audio samples fed so far.
  [[nodiscard]] size_t samples() const noexcept { return audio_samples_; }

 private:
  friend class VoxtralStreamStart<W>;

  /// Runs the frames that read only the left pad (once): every stream's first encoder call,
  /// whatever audio follows, so a copy of its result (VoxtralStreamStart) is exact.
  Result<void> run_left_pad() {
    if (padded_) return ok();
    padded_ = true;
    const size_t half = audio::kFftSize / 2;
    if (known_ < half) return ok();
    auto ids = advance((known_ - half) / audio::kHopLength + 1);  // the prompt needs more positions than the pad gives: no ids
    if (!ids) return std::move(ids).error();
    return ok();
  }

  /// Computes log-mel frames up to `end`, encodes them and decodes every position they complete.
  Result<std::vector<int32_t>> advance(size_t end) {
    const size_t before = ids_.size();
    if (end <= frames_ || ended()) return std::vector<int32_t>{};
    const VoxtralConfig& c = model_->config();
    const size_t hop = audio::kHopLength, bins = c.num_mel_bins;
    // frames [frames_, end) from a span starting two hops before the first (or at 0) and ending
    // with the last one's window, so the frames taken never read the span's reflected edges and
    // are bit for bit the batch ones
    const size_t first_sample = (frames_ >= 2 ? frames_ - 2 : 0) * hop;
    const size_t last_sample = (end - 1) * hop + audio::kFftSize / 2;
    std::span<const float> span(signal_.data() + (first_sample - signal_offset_), last_sample - first_sample);
    auto mel = front_end_->log10_mel(span, 0, *pool_);
    if (!mel) return std::move(mel).error();
    audio::LogMel::normalize(mel->values, c.global_log_mel_max);
    const size_t skip = frames_ - first_sample / hop, count = end - frames_;
    std::vector<float> frames(count * bins);
    for (size_t f = 0; f < count; ++f) {
      for (size_t b = 0; b < bins; ++b) frames[f * bins + b] = mel->values[b * mel->frames + skip + f];
    }
    frames_ = end;
    const size_t keep_from = (frames_ - 2) * hop;  // the next span's first sample (frames_ ≥ 2 from here on)
    signal_.erase(signal_.begin(), signal_.begin() + static_cast<ptrdiff_t>(keep_from - signal_offset_));
    signal_offset_ = keep_from;

    const std::vector<float> embeddings = model_->encode_more(encoder_, frames);
    audio_.insert(audio_.end(), embeddings.begin(), embeddings.end());
    const size_t d = c.decoder.dim, available = audio_offset_ + audio_.size() / d;
    if (decoder_.position == 0 && available >= model_->prompt_length()) ids_.push_back(model_->decode_prompt(decoder_, audio_));
    while (decoder_.position > 0 && decoder_.position < available && !ended()) {
      const auto row = std::span<const float>(audio_).subspan((decoder_.position - audio_offset_) * d, d);
      ids_.push_back(model_->decode_step(decoder_, row));
    }
    if (decoder_.position > 0) {  // each embedding is read once
      audio_.erase(audio_.begin(), audio_.begin() + static_cast<ptrdiff_t>(std::min((decoder_.position - audio_offset_) * d, audio_.size())));
      audio_offset_ = decoder_.position;
    }
    return std::vector<int32_t>(ids_.begin() + static_cast<ptrdiff_t>(before), ids_.end());
  }

  const VoxtralRealtime<W>* model_;
  const audio::LogMel* front_end_;
  ThreadPool* pool_;
  typename VoxtralRealtime<W>::EncoderState encoder_;
  typename VoxtralRealtime<W>::DecoderState decoder_;
  std::vector<float> signal_;  ///< padded-signal samples from signal_offset_ on
  size_t signal_offset_ = 0;
  size_t known_ = 0;           ///< padded-signal samples known (left pad and audio; at the end also the right pad)
  size_t audio_samples_ = 0;
  size_t batch_tokens_;        ///< new complete tokens of audio that make the encoder run (VoxtralStreamOptions)
  size_t tokens_run_ = 0;      ///< complete tokens of audio when the encoder last ran
  size_t frames_ = 0;          ///< log-mel frames computed
  std::vector<float> audio_;   ///< audio embeddings from position audio_offset_ on, not yet decoded
  size_t audio_offset_ = 0;
  std::vector<int32_t> ids_;
  bool padded_ = false;        ///< the left pad ran (run_left_pad())
  bool finished_ = false;
};

/// What every VoxtralStream over one model starts with: the left pad (silence) through the
/// log-mel and the encoder, the same work for every stream (at the real dims 32 tokens of
/// audio, about 0.8 s of Q4_0 encoder time on 2 threads). A caller that streams more than once
/// computes it once and builds each stream from it (VoxtralTranscriberOf does).
template <WeightDtype W>
class VoxtralStreamStart {
 public:
  /// Runs the left pad over `model` and `front_end` (both kept by reference: they must outlive
  /// the start and the streams built from it) on `pool`.
  static Result<VoxtralStreamStart> compute(const VoxtralRealtime<W>& model, const audio::LogMel& front_end, ThreadPool& pool) {
    VoxtralStream<W> stream(model, front_end, pool);
    if (auto padded = stream.run_left_pad(); !padded) return std::move(padded).error();
    VoxtralStreamStart start(model, front_end);
    auto& encoder = stream.encoder_;
    start.encoder_.mel_tail = std::move(encoder.mel_tail);
    start.encoder_.conv_tail = std::move(encoder.conv_tail);
    start.encoder_.pending = std::move(encoder.pending);
    start.encoder_.position = encoder.position;
    for (const nn::KvCacheLayer& cache : encoder.caches) {  // only the pad's positions: a compact copy
      start.encoder_.caches.emplace_back(std::max<size_t>(encoder.position, 1), cache.kv_heads(), cache.head_dim(), cache.dtype());
      start.encoder_.caches.back().copy_from(cache, encoder.position);
    }
    start.signal_ = std::move(stream.signal_);
    start.signal_offset_ = stream.signal_offset_;
    start.frames_ = stream.frames_;
    start.audio_ = std::move(stream.audio_);
    return start;
  }

 private:
  friend class VoxtralStream<W>;

  VoxtralStreamStart(const VoxtralRealtime<W>& model, const audio::LogMel& front_end) : model_(&model), front_end_(&front_end) {}

  const VoxtralRealtime<W>* model_;
  const audio::LogMel* front_end_;
  typename VoxtralRealtime<W>::EncoderState encoder_;  ///< after the pad; caches of the pad's positions only
  std::vector<float> signal_;                          ///< the stream's padded-signal tail from signal_offset_ on
  size_t signal_offset_ = 0;
  size_t frames_ = 0;                                  ///< log-mel frames the pad completes
  std::vector<float> audio_;                           ///< audio embeddings the pad completes
};

/// Greedy offline transcription of 16 kHz `samples`: the ids a VoxtralStream fed all at once gives.
template <WeightDtype W>
Result<std::vector<int32_t>> voxtral_transcribe(const VoxtralRealtime<W>& model, const audio::LogMel& front_end, std::span<const float> samples,
                                                ThreadPool& pool) {
  VoxtralStream<W> stream(model, front_end, pool);
  if (auto fed = stream.feed(samples); !fed) return std::move(fed).error();
  if (auto rest = stream.finish(); !rest) return std::move(rest).error();
  return stream.ids();
}

}  // namespace apr::models
