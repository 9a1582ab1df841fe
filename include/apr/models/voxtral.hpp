/// @file voxtral.hpp
/// @brief VoxtralRealtime<W>: Mistral's streaming speech recogniser (Voxtral Mini Realtime
/// layout) built from apr's nn/ blocks, matmul weights in dtype W.
///
/// Audio: 16 kHz samples padded with n_left_pad_tokens × 1280 zeros before and, after, zeros to
/// a multiple of 1280 plus n_right_pad_tokens × 1280; a 128-band log-mel clamped at the fixed
/// global_log_mel_max − 8, then (x + 4) / 4. Encoder: two causal conv1d (kernel 3, left padding
/// only; stride 1 then 2) with GELU, left-truncated to a multiple of the downsample factor;
/// causal transformer layers (RMSNorm, interleaved RoPE, biases on q, v and o but not k, sliding
/// window, SwiGLU with a bias on w2) and a final RMSNorm. Adapter: 4 consecutive frames
/// concatenated, Linear → GELU → Linear into the decoder width. Decoder: Mistral layers (GQA,
/// interleaved RoPE, sliding window, no biases) whose normed FFN input is scaled by 1 + ada(t),
/// ada = Linear → GELU → Linear of a sinusoidal embedding of the delay in tokens; tied head.
/// Each decoder position's input is the audio embedding at that position plus the embedding of
/// the token there: the prompt [BOS, STREAMING_PAD × (left pad + delay)], then the model's own
/// previous output, one token per 80 ms of audio.
///
/// The prompt is prefilled in one chunk against a cache that keeps only the last `window`
/// positions before attending (as the reference does), so prompt rows more than a window before
/// the last one are never seen; with the real model's window (8192) that is none of them.
///
/// Verified against the reference: log-mel, encoder, adapter, time embedding and first logits
/// within 1e-4, greedy ids identical (tests/models/test_voxtral_parity.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "apr/audio/mel.hpp"
#include "apr/core/aligned_buffer.hpp"
#include "apr/core/thread_pool.hpp"
#include "apr/models/voxtral_config.hpp"
#include "apr/models/weight_store.hpp"
#include "apr/nn/attention.hpp"
#include "apr/nn/conv1d.hpp"
#include "apr/nn/embedding.hpp"
#include "apr/nn/kv_cache.hpp"
#include "apr/nn/linear.hpp"
#include "apr/nn/norm.hpp"
#include "apr/nn/rope_table.hpp"
#include "apr/simd/activation.hpp"
#include "apr/simd/elementwise.hpp"

namespace apr::models {

/// Voxtral's padded log-mel of 16 kHz `samples`: [num_mel_bins][frames] and the frame count.
inline Result<audio::MelSpectrogram> voxtral_log_mel(std::span<const float> samples, const VoxtralConfig& config, const audio::LogMel& front_end,
                                                    ThreadPool& pool) {
  const size_t unit = config.samples_per_token;
  const size_t left = config.n_left_pad_tokens * unit;
  const size_t right = (unit - samples.size() % unit) % unit + config.n_right_pad_tokens * unit;
  std::vector<float> padded(left + samples.size() + right, 0.0f);
  std::copy(samples.begin(), samples.end(), padded.begin() + static_cast<ptrdiff_t>(left));
  auto mel = front_end.log10_mel(padded, 0, pool);
  if (!mel) return mel;
  audio::LogMel::normalize(mel->values, config.global_log_mel_max);
  return mel;
}

/// The sinusoidal time embedding of `t` in `dim` values: cos of t·f_i, then sin, f_i = 10000^(−i/(dim/2)).
inline std::vector<float> voxtral_time_embedding(float t, size_t dim) {
  const size_t half = dim / 2;
  std::vector<float> out(dim);
  for (size_t i = 0; i < half; ++i) {
    const float frequency = std::exp(-std::log(10000.0f) * static_cast<float>(i) / static_cast<float>(half));
    out[i] = std::cos(t * frequency);
    out[half + i] = std::sin(t * frequency);
  }
  return out;
}

/// The Voxtral-Realtime model with matmul weights in dtype W (converted at load).
template <WeightDtype W>
class VoxtralRealtime {
 public:
  /// Most encoder positions run through the transformer at once when streaming.
  static constexpr size_t kEncoderChunk = 64;

  /// One transformer layer (encoder or decoder).
  struct Layer {
    nn::RmsNorm attention_norm;  ///< before attention
    nn::RmsNorm ffn_norm;        ///< before the FFN
    nn::Linear<W> wq;        ///< query projection (encoder: with bias)
    nn::Linear<W> wk;        ///< key projection
    nn::Linear<W> wv;        ///< value projection (encoder: with bias)
    nn::Linear<W> wo;        ///< output projection (encoder: with bias)
    nn::Linear<W> w1;        ///< SwiGLU gate: w2(silu(w1 x) · w3 x)
    nn::Linear<W> w2;        ///< SwiGLU down projection (encoder: with bias)
    nn::Linear<W> w3;        ///< SwiGLU up projection
    nn::Linear<F32> ada_down;  ///< decoder: time-conditioning MLP, first layer
    nn::Linear<F32> ada_up;    ///< decoder: time-conditioning MLP, second layer
  };

  /// Loads `config`'s weights from `file` (Mistral consolidated names).
  static Result<std::unique_ptr<VoxtralRealtime>> load(std::shared_ptr<const format::TensorFile> file, const VoxtralConfig& config,
                                                       ThreadPool* pool = nullptr) {
    std::unique_ptr<VoxtralRealtime> model(new VoxtralRealtime(std::move(file), config, pool));
    auto status = model->load_weights();
    if (!status) return std::move(status).error();
    return model;
  }

  /// The dims.
  [[nodiscard]] const VoxtralConfig& config() const noexcept { return config_; }

  /// Encoder output [positions][encoder dim] of a log-mel [num_mel_bins][frames]; an odd first
  /// frame is dropped so the stride-2 convolution sees whole pairs.
  Result<std::vector<float>> encode(std::span<const float> mel, size_t frames) const {
    const size_t bins = config_.num_mel_bins, d = config_.encoder.dim;
    if (mel.size() != bins * frames || frames < 2) {
      return make_error(ErrorCode::invalid_argument, "voxtral: log-mel of {} values is not [{}][{} ≥ 2]", mel.size(), bins, frames);
    }
    const size_t skip = frames % 2;
    ThreadPool& threads = pool();
    // conv0: kernel 3, stride 1, two zeros before (causal)
    const size_t total = frames;
    frames -= skip;
    std::vector<float> x((frames + 2) * bins, 0.0f);
    for (size_t t = 0; t < frames; ++t) {
      for (size_t b = 0; b < bins; ++b) x[(t + 2) * bins + b] = mel[b * total + skip + t];
    }
    std::vector<float> h0(frames * d), columns(frames * std::max(bins, d) * 3);
    conv0_.forward(x.data(), frames + 2, h0.data(), columns.data(), quantized_, threads);
    simd::gelu_erf(h0.data(), h0.size());
    // conv1: stride 2, one zero before, zeros after to fill the last stride
    const size_t steps = (frames - 1) / 2 + 1;
    const size_t padded = (steps - 1) * 2 + 3;
    std::vector<float> x1(padded * d, 0.0f);
    std::copy(h0.begin(), h0.end(), x1.begin() + static_cast<ptrdiff_t>(d));
    std::vector<float> h1(steps * d);
    conv1_.forward(x1.data(), padded, h1.data(), columns.data(), quantized_, threads);
    simd::gelu_erf(h1.data(), h1.size());
    const size_t cut = steps % config_.downsample_factor;  // left truncation
    std::vector<float> hidden(h1.begin() + static_cast<ptrdiff_t>(cut * d), h1.end());
    const size_t n = steps - cut;
    run_stack(encoder_, config_.encoder, encoder_rope_, hidden.data(), n, 0, nullptr, nullptr);
    encoder_norm_.forward(hidden.data(), hidden.data(), n);
    return hidden;
  }

  /// Adapter output [frames / downsample][decoder dim] of encoder output [frames][encoder dim].
  Result<std::vector<float>> adapt(std::span<const float> encoded) const {
    const size_t group = config_.downsample_factor * config_.encoder.dim;
    if (encoded.size() % group != 0) return make_error(ErrorCode::invalid_argument, "voxtral: {} encoder values are not whole groups of {}", encoded.size(), group);
    const size_t n = encoded.size() / group;
    std::vector<float> middle(n * config_.decoder.dim), out(n * config_.decoder.dim);
    adapter0_.forward_batch(encoded.data(), n, middle.data(), quantized_, pool());
    simd::gelu_erf(middle.data(), middle.size());
    adapter1_.forward_batch(middle.data(), n, out.data(), quantized_, pool());
    return out;
  }

  /// Decoder positions of the prompt [BOS, STREAMING_PAD × (left pad + delay)].
  [[nodiscard]] size_t prompt_length() const noexcept { return 1 + config_.n_left_pad_tokens + config_.n_delay_tokens; }

  /// The encoder's state between chunks of log-mel frames (see encode_more()).
  struct EncoderState {
    std::vector<float> mel_tail;               ///< the last 2 mel frames seen ([2][bins]; zeros at the start)
    std::vector<float> conv_tail;              ///< conv0 rows the stride-2 conv1 has still to read
    std::vector<float> pending;                ///< encoder rows not yet grouped by the adapter
    std::vector<nn::KvCacheLayer> caches;      ///< per layer, ring-buffered over the window
    size_t position = 0;                       ///< next encoder position
  };

  /// A fresh encoder state (ring caches of window + kEncoderChunk slots per layer).
  [[nodiscard]] EncoderState start_encoder() const {
    const VoxtralStack& s = config_.encoder;
    EncoderState state;
    state.mel_tail.assign(2 * config_.num_mel_bins, 0.0f);
    state.conv_tail.assign(s.dim, 0.0f);  // conv1's left padding
    for (size_t l = 0; l < s.n_layers; ++l) state.caches.emplace_back(s.window + kEncoderChunk, s.n_kv_heads, s.head_dim, DType::f32);
    return state;
  }

  /// Runs the next log-mel frames ([count][num_mel_bins], time-major, after the clamp) through
  /// the causal encoder and the adapter; returns the audio embeddings completed
  /// ([k][decoder dim]). Chunked or whole, the same frames give the same embeddings as
  /// encode() + adapt() up to float rounding (a frame count that is a multiple of 8, as the
  /// streaming padding makes it, leaves nothing for encode() to truncate).
  std::vector<float> encode_more(EncoderState& state, std::span<const float> frames) const {
    const size_t bins = config_.num_mel_bins, d = config_.encoder.dim, count = frames.size() / bins;
    if (count == 0) return {};
    ThreadPool& threads = pool();
    std::vector<float> x(state.mel_tail);
    x.insert(x.end(), frames.begin(), frames.end());
    std::copy(x.end() - static_cast<ptrdiff_t>(2 * bins), x.end(), state.mel_tail.begin());
    std::vector<float> h0(count * d), columns((count + 1) * std::max(bins, d) * 3);
    conv0_.forward(x.data(), count + 2, h0.data(), columns.data(), quantized_, threads);
    simd::gelu_erf(h0.data(), h0.size());
    state.conv_tail.insert(state.conv_tail.end(), h0.begin(), h0.end());
    const size_t rows = state.conv_tail.size() / d, steps = rows < 3 ? 0 : (rows - 1) / 2;
    std::vector<float> h1(steps * d);
    if (steps > 0) {
      conv1_.forward(state.conv_tail.data(), 2 * steps + 1, h1.data(), columns.data(), quantized_, threads);
      simd::gelu_erf(h1.data(), h1.size());
      state.conv_tail.erase(state.conv_tail.begin(), state.conv_tail.begin() + static_cast<ptrdiff_t>(2 * steps * d));
    }
    for (size_t first = 0; first < steps; first += kEncoderChunk) {
      const size_t n = std::min(kEncoderChunk, steps - first);
      float* rows_in = h1.data() + first * d;
      run_stack(encoder_, config_.encoder, encoder_rope_, rows_in, n, state.position, &state.caches, nullptr);
      encoder_norm_.forward(rows_in, rows_in, n);
      state.position += n;
    }
    state.pending.insert(state.pending.end(), h1.begin(), h1.end());
    const size_t group = config_.downsample_factor * d, groups = state.pending.size() / group;
    std::vector<float> embeddings(groups * config_.decoder.dim);
    if (groups > 0) {
      std::vector<float> middle(groups * config_.decoder.dim);
      adapter0_.forward_batch(state.pending.data(), groups, middle.data(), quantized_, threads);
      simd::gelu_erf(middle.data(), middle.size());
      adapter1_.forward_batch(middle.data(), groups, embeddings.data(), quantized_, threads);
      state.pending.erase(state.pending.begin(), state.pending.begin() + static_cast<ptrdiff_t>(groups * group));
    }
    return embeddings;
  }

  /// The decoder's state between steps (see decode_prompt() and decode_step()).
  struct DecoderState {
    std::vector<nn::KvCacheLayer> caches;      ///< per layer, ring-buffered over the window
    std::vector<std::vector<float>> scales;    ///< per layer, 1 + ada(time embedding of the delay)
    size_t offset = 0;                         ///< prompt rows skipped (outside the last prompt row's window)
    size_t position = 0;                       ///< absolute position of the next input
    int32_t token = 0;                         ///< the last id decided (the next input's token)
  };

  /// A fresh decoder state: the per-layer time-conditioning scales and ring caches.
  [[nodiscard]] DecoderState start_decoder() const {
    const size_t d = config_.decoder.dim, window = config_.decoder.window;
    DecoderState state;
    const std::vector<float> t = voxtral_time_embedding(static_cast<float>(config_.n_delay_tokens), d);
    for (const Layer& layer : decoder_) {
      std::vector<float> hidden(config_.ada_dim), scale(d);
      layer.ada_down.forward_batch(t.data(), 1, hidden.data(), quantized_, pool());
      simd::gelu_erf(hidden.data(), hidden.size());
      layer.ada_up.forward_batch(hidden.data(), 1, scale.data(), quantized_, pool());
      for (float& value : scale) value += 1.0f;
      state.scales.push_back(std::move(scale));
    }
    state.offset = prompt_length() - 1 > window ? prompt_length() - 1 - window : 0;
    const size_t rows = prompt_length() - state.offset;
    for (size_t l = 0; l < decoder_.size(); ++l) {
      state.caches.emplace_back(window + rows, config_.decoder.n_kv_heads, config_.decoder.head_dim, DType::f32);
    }
    return state;
  }

  /// Prefills the prompt over `audio` (its prompt_length() audio embeddings) and returns the
  /// first id; its logits go to `logits` when given. Prompt rows outside the window of the last
  /// prompt row are skipped, as the reference's prefill (which cuts its cache to the window
  /// before attending) never sees them, and positions count from the first row kept: RoPE
  /// scores depend only on position differences, so this equals the reference's absolute positions.
  int32_t decode_prompt(DecoderState& state, std::span<const float> audio, std::vector<float>* logits = nullptr) const {
    const size_t d = config_.decoder.dim, rows = prompt_length() - state.offset;
    std::vector<float> x(rows * d);
    for (size_t r = 0; r < rows; ++r) {
      const size_t p = state.offset + r;
      embeddings_.lookup(static_cast<size_t>(p == 0 ? config_.bos_id : config_.streaming_pad_id), x.data() + r * d);
      simd::add(x.data() + r * d, audio.data() + p * d, x.data() + r * d, d);
    }
    run_stack(decoder_, config_.decoder, decoder_rope_, x.data(), rows, 0, &state.caches, &state.scales);
    state.position = prompt_length();
    state.token = next_token(x.data() + (rows - 1) * d, logits);
    return state.token;
  }

  /// Feeds the last id decided (state.token: a caller may set it to force the input) with the
  /// audio embedding `audio` of the next position; returns the next id, its logits to `logits` when given.
  int32_t decode_step(DecoderState& state, std::span<const float> audio, std::vector<float>* logits = nullptr) const {
    const size_t d = config_.decoder.dim;
    std::vector<float> x(d);
    embeddings_.lookup(static_cast<size_t>(state.token), x.data());
    simd::add(x.data(), audio.data(), x.data(), d);
    run_stack(decoder_, config_.decoder, decoder_rope_, x.data(), 1, state.position - state.offset, &state.caches, &state.scales);
    ++state.position;
    state.token = next_token(x.data(), logits);
    return state.token;
  }

  /// Greedy transcription ids of `audio_embeddings` ([positions][decoder dim], from adapt()):
  /// the prompt, then one id per audio position until EOS (kept, as the reference keeps it) or
  /// the last position; the logits after the prompt go to `first_logits` when given.
  Result<std::vector<int32_t>> generate(std::span<const float> audio_embeddings, std::vector<float>* first_logits = nullptr) const {
    const size_t d = config_.decoder.dim, positions = audio_embeddings.size() / d;
    if (positions < prompt_length()) {
      return make_error(ErrorCode::invalid_argument, "voxtral: {} audio positions are fewer than the {} prompt positions", positions, prompt_length());
    }
    DecoderState state = start_decoder();
    std::vector<int32_t> ids{decode_prompt(state, audio_embeddings, first_logits)};
    while (ids.back() != config_.eos_id && state.position < positions) {
      ids.push_back(decode_step(state, audio_embeddings.subspan(state.position * d, d)));
    }
    return ids;
  }

 private:
  VoxtralRealtime(std::shared_ptr<const format::TensorFile> file, const VoxtralConfig& config, ThreadPool* pool)
      : config_(config), pool_(pool), weights_(std::move(file), {}),
        encoder_rope_(config.encoder.head_dim, config.encoder.rope_theta, simd::RopeStyle::interleaved),
        decoder_rope_(config.decoder.head_dim, config.decoder.rope_theta, simd::RopeStyle::interleaved) {}

  ThreadPool& pool() const { return pool_ != nullptr ? *pool_ : ThreadPool::global(); }

  /// The greedy id after decoder row `row` (final norm, tied head); its logits to `logits` when given.
  int32_t next_token(const float* row, std::vector<float>* logits) const {
    std::vector<float> normed(config_.decoder.dim), values(config_.vocab_size);
    final_norm_.forward(row, normed.data(), 1);
    lm_head_.forward_batch(normed.data(), 1, values.data(), quantized_, pool());
    const auto best = static_cast<int32_t>(std::max_element(values.begin(), values.end()) - values.begin());
    if (logits != nullptr) *logits = std::move(values);
    return best;
  }

  Result<void> load_weights() {
    Result<void> status = ok();
    auto matrix = [&](const std::string& name, size_t rows, size_t cols, nn::Linear<W>& out) {
      if (!status) return;
      auto weight = weights_.template matrix<W>(name, rows, cols);
      if (!weight) {
        status = std::move(weight).error();
        return;
      }
      out = {*weight, nullptr, cols, rows};
    };
    auto f32 = [&](const std::string& name, const Shape& shape) -> const float* {
      if (!status) return nullptr;
      auto values = weights_.f32(name, shape);
      if (!values) {
        status = std::move(values).error();
        return nullptr;
      }
      return *values;
    };
    auto stack = [&](const std::string& prefix, const VoxtralStack& s, bool encoder, std::vector<Layer>& layers) {
      for (size_t l = 0; l < s.n_layers; ++l) {
        const std::string p = fmt::format("{}layers.{}.", prefix, l);
        Layer layer;
        const size_t q = s.n_heads * s.head_dim, kv = s.n_kv_heads * s.head_dim;
        matrix(p + "attention.wq.weight", q, s.dim, layer.wq);
        matrix(p + "attention.wk.weight", kv, s.dim, layer.wk);
        matrix(p + "attention.wv.weight", kv, s.dim, layer.wv);
        matrix(p + "attention.wo.weight", s.dim, q, layer.wo);
        matrix(p + "feed_forward.w1.weight", s.hidden_dim, s.dim, layer.w1);
        matrix(p + "feed_forward.w2.weight", s.dim, s.hidden_dim, layer.w2);
        matrix(p + "feed_forward.w3.weight", s.hidden_dim, s.dim, layer.w3);
        layer.attention_norm = {f32(p + "attention_norm.weight", Shape{s.dim}), s.dim, s.norm_eps};
        layer.ffn_norm = {f32(p + "ffn_norm.weight", Shape{s.dim}), s.dim, s.norm_eps};
        if (encoder) {
          layer.wq.bias = f32(p + "attention.wq.bias", Shape{q});
          layer.wv.bias = f32(p + "attention.wv.bias", Shape{kv});
          layer.wo.bias = f32(p + "attention.wo.bias", Shape{s.dim});
          layer.w2.bias = f32(p + "feed_forward.w2.bias", Shape{s.dim});
        } else {
          layer.ada_down = {f32(p + "ada_rms_norm_t_cond.0.weight", Shape{config_.ada_dim, s.dim}), nullptr, s.dim, config_.ada_dim};
          layer.ada_up = {f32(p + "ada_rms_norm_t_cond.2.weight", Shape{s.dim, config_.ada_dim}), nullptr, config_.ada_dim, s.dim};
        }
        layers.push_back(layer);
      }
    };
    const std::string encoder_prefix = "mm_streams_embeddings.embedding_module.whisper_encoder.";
    const size_t bins = config_.num_mel_bins, d = config_.encoder.dim;
    // the convolutions stay in f32 (as Whisper<W>'s): they are a small share of the work
    auto conv = [&](const std::string& name, size_t in, size_t stride, nn::Conv1d<F32>& out) {
      out = {f32(name + ".weight", Shape{d, in, 3}), f32(name + ".bias", Shape{d}), in, d, 3, stride, 0};
    };
    conv(encoder_prefix + "conv_layers.0.conv", bins, 1, conv0_);
    conv(encoder_prefix + "conv_layers.1.conv", d, 2, conv1_);
    stack(encoder_prefix + "transformer.", config_.encoder, true, encoder_);
    encoder_norm_ = {f32(encoder_prefix + "transformer.norm.weight", Shape{d}), d, config_.encoder.norm_eps};
    matrix("mm_streams_embeddings.embedding_module.audio_language_projection.0.weight", config_.decoder.dim,
           d * config_.downsample_factor, adapter0_);
    matrix("mm_streams_embeddings.embedding_module.audio_language_projection.2.weight", config_.decoder.dim, config_.decoder.dim, adapter1_);
    stack("", config_.decoder, false, decoder_);
    final_norm_ = {f32("norm.weight", Shape{config_.decoder.dim}), config_.decoder.dim, config_.decoder.norm_eps};
    const std::string embedding_name = "mm_streams_embeddings.embedding_module.tok_embeddings.weight";
    if (status) {
      auto table = weights_.template matrix<W>(embedding_name, config_.vocab_size, config_.decoder.dim);
      if (!table) return std::move(table).error();
      embeddings_ = {W::dtype, reinterpret_cast<const std::byte*>(*table), config_.vocab_size, config_.decoder.dim};
      lm_head_ = {*table, nullptr, config_.decoder.dim, config_.vocab_size};
    }
    return status;
  }

  /// Runs `n` rows of `x` from `first_position` through `layers`: with `caches` against those
  /// (ring-buffered, kept across calls), else in one pass over a cache of the n rows; with
  /// `scales` (the decoder) the normed FFN input is scaled per layer.
  void run_stack(const std::vector<Layer>& layers, const VoxtralStack& s, const nn::RotaryEmbedding& rope, float* x, size_t n,
                 size_t first_position, std::vector<nn::KvCacheLayer>* caches, const std::vector<std::vector<float>>* scales) const {
    ThreadPool& threads = pool();
    const size_t q_width = s.n_heads * s.head_dim, kv_width = s.n_kv_heads * s.head_dim;
    std::vector<float> normed(n * s.dim), q(n * q_width), k(n * kv_width), v(n * kv_width), attention(n * q_width), gate(n * s.hidden_dim),
        up(n * s.hidden_dim), out(n * s.dim);
    nn::AttentionScratch scratch(threads.size(), std::min(first_position + n, s.window), s.n_heads / s.n_kv_heads, s.head_dim);
    const nn::AttentionShape shape{s.n_heads, s.n_kv_heads, s.head_dim, s.window};
    for (size_t l = 0; l < layers.size(); ++l) {
      const Layer& layer = layers[l];
      nn::KvCacheLayer encoder_cache = caches == nullptr ? nn::KvCacheLayer(n, s.n_kv_heads, s.head_dim, DType::f32) : nn::KvCacheLayer(1, 1, 2, DType::f32);
      nn::KvCacheLayer& cache = caches != nullptr ? (*caches)[l] : encoder_cache;
      layer.attention_norm.forward(x, normed.data(), n);
      layer.wq.forward_batch(normed.data(), n, q.data(), quantized_, threads);
      layer.wk.forward_batch(normed.data(), n, k.data(), quantized_, threads);
      layer.wv.forward_batch(normed.data(), n, v.data(), quantized_, threads);
      for (size_t t = 0; t < n; ++t) {
        rope.apply(q.data() + t * q_width, s.n_heads, first_position + t);
        rope.apply(k.data() + t * kv_width, s.n_kv_heads, first_position + t);
        cache.store(first_position + t, k.data() + t * kv_width, v.data() + t * kv_width);
      }
      nn::attend(q.data(), n, first_position, cache, shape, attention.data(), scratch, threads);
      layer.wo.forward_batch(attention.data(), n, out.data(), quantized_, threads);
      simd::add(x, out.data(), x, n * s.dim);
      layer.ffn_norm.forward(x, normed.data(), n);
      if (scales != nullptr) {
        for (size_t t = 0; t < n; ++t) simd::mul(normed.data() + t * s.dim, (*scales)[l].data(), normed.data() + t * s.dim, s.dim);
      }
      layer.w1.forward_batch(normed.data(), n, gate.data(), quantized_, threads);
      layer.w3.forward_batch(normed.data(), n, up.data(), quantized_, threads);
      for (size_t t = 0; t < n; ++t) simd::swiglu(gate.data() + t * s.hidden_dim, up.data() + t * s.hidden_dim, s.hidden_dim);
      layer.w2.forward_batch(gate.data(), n, out.data(), quantized_, threads);
      simd::add(x, out.data(), x, n * s.dim);
    }
  }

  VoxtralConfig config_;
  ThreadPool* pool_;
  WeightStore weights_;
  nn::RotaryEmbedding encoder_rope_, decoder_rope_;
  nn::Conv1d<F32> conv0_, conv1_;
  std::vector<Layer> encoder_, decoder_;
  nn::RmsNorm encoder_norm_, final_norm_;
  nn::Linear<W> adapter0_, adapter1_, lm_head_;
  nn::Embedding embeddings_;
  mutable simd::QuantizedActivations quantized_;
};

}  // namespace apr::models
