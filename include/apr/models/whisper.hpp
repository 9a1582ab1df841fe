/// @file whisper.hpp
/// @brief Whisper<W>: openai/whisper's encoder-decoder transformer with matmul weights in dtype W.
///
/// Encoder: x = gelu(conv2(gelu(conv1(mel)))) (kernel 3, padding 1, stride 1 then 2) plus the
/// stored sinusoidal positions; per block x += attn(ln(x)), x += fc2(gelu(fc1(ln(x)))); then a
/// final LayerNorm. Decoder: x = token embedding + learned position; per block x += causal
/// self-attention(ln(x)) over a KV cache, x += cross-attention(ln(x)) to the encoder output,
/// x += MLP(ln(x)); a final LayerNorm and logits = x · embeddingᵀ (tied head). Queries and values
/// have biases, keys do not; GELU is the erf form. Cross-attention keys and values are computed
/// once per audio window, in encode().
#pragma once

#include <algorithm>
#include <cmath>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/core/aligned_buffer.hpp"
#include "apr/core/thread_pool.hpp"
#include "apr/models/weight_store.hpp"
#include "apr/models/whisper_config.hpp"
#include "apr/nn/attention.hpp"
#include "apr/nn/conv1d.hpp"
#include "apr/nn/dynamic_linear.hpp"
#include "apr/nn/embedding.hpp"
#include "apr/nn/full_attention.hpp"
#include "apr/nn/kv_cache.hpp"
#include "apr/nn/linear.hpp"
#include "apr/nn/norm.hpp"
#include "apr/simd/activation.hpp"
#include "apr/simd/elementwise.hpp"

namespace apr::models {

/// How a Whisper model is loaded and run.
struct WhisperOptions {
  ThreadPool* pool = nullptr;   ///< threads to run on (null: ThreadPool::global())
  DType kv_dtype = DType::f32;  ///< storage of the decoder's self-attention cache and cross-attention keys/values: f32 or f16
};

/// One encoded 30 s window: the encoder output, the cross-attention keys and values of every
/// decoder layer, and the encoder's scratch (reused by the next encode()).
class WhisperAudio {
 public:
  /// Encoder output, [audio positions][d_model].
  [[nodiscard]] std::span<const float> features() const noexcept { return features_.span(); }
  /// Audio positions (1500 for 30 s).
  [[nodiscard]] size_t positions() const noexcept { return positions_; }
  /// Cross-attention keys and values of decoder layer `layer`.
  [[nodiscard]] const nn::FullAttentionKv& cross(size_t layer) const noexcept { return cross_[layer]; }
  /// True once encode() has filled it.
  [[nodiscard]] bool ready() const noexcept { return ready_; }

 private:
  template <WeightDtype W>
  friend class Whisper;
  WhisperAudio(const WhisperConfig& c, size_t threads, DType kv_dtype)
      : positions_(c.max_source_positions), features_(c.max_source_positions * c.d_model),
        conv1_out_(c.input_frames() * c.d_model),
        columns_(std::max(c.input_frames() * c.num_mel_bins, c.max_source_positions * c.d_model) * 3),
        normed_(positions_ * c.d_model), q_(positions_ * c.d_model), k_(positions_ * c.d_model),
        v_(positions_ * c.d_model), attention_(positions_ * c.d_model),
        hidden_(std::max(positions_ * c.encoder_ffn_dim, c.input_frames() * c.num_mel_bins)),
        self_(c.encoder_attention_heads, c.encoder_head_dim(), positions_),
        scratch_(threads, positions_, c.encoder_head_dim()) {
    for (size_t l = 0; l < c.decoder_layers; ++l) cross_.emplace_back(c.decoder_attention_heads, c.decoder_head_dim(), positions_, kv_dtype);
  }

  size_t positions_;
  bool ready_ = false;
  AlignedArray<float> features_, conv1_out_, columns_, normed_, q_, k_, v_, attention_, hidden_;
  nn::FullAttentionKv self_;
  std::vector<nn::FullAttentionKv> cross_;
  nn::FullAttentionScratch scratch_;
  simd::QuantizedActivations quantized_;
};

/// Decoder state for `sequences` token sequences that share one audio window (beams, best-of
/// samples): a self-attention KV cache each, all the same length, plus scratch.
class WhisperDecoderState {
 public:
  /// Tokens every sequence holds so far.
  [[nodiscard]] size_t length() const noexcept { return length_; }
  /// Sequences it holds.
  [[nodiscard]] size_t sequences() const noexcept { return caches_.size(); }
  /// Most tokens a sequence may hold (the text context).
  [[nodiscard]] size_t capacity() const noexcept { return capacity_; }
  /// Forgets every token (the next forward starts at position 0).
  void reset() noexcept { length_ = 0; }
  /// Cuts every sequence back to `length` tokens (no-op when longer).
  void truncate(size_t length) noexcept { length_ = std::min(length_, length); }

  /// Sequence i continues from what sequence source[i] held (beam search): copies only moved caches.
  Result<void> reorder(std::span<const size_t> source) {
    if (source.size() != caches_.size()) {
      return make_error(ErrorCode::invalid_argument, "whisper decoder: reorder needs {} sources, got {}", caches_.size(), source.size());
    }
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] >= caches_.size()) return make_error(ErrorCode::invalid_argument, "whisper decoder: source {} out of range", source[i]);
      if (source[i] == i) continue;
      for (size_t l = 0; l < spare_[i].size(); ++l) spare_[i][l].copy_from(caches_[source[i]][l], length_);
    }
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] != i) std::swap(caches_[i], spare_[i]);
    }
    return ok();
  }

 private:
  template <WeightDtype W>
  friend class Whisper;
  WhisperDecoderState(const WhisperConfig& c, size_t sequences, DType kv_dtype, size_t threads)
      : capacity_(c.max_target_positions), rows_(std::max(sequences, c.max_target_positions)),
        x_(rows_ * c.d_model), normed_(rows_ * c.d_model), q_(rows_ * c.d_model), k_(rows_ * c.d_model),
        v_(rows_ * c.d_model), attention_(rows_ * c.d_model), hidden_(rows_ * c.decoder_ffn_dim),
        self_scratch_(threads, c.max_target_positions, 1, c.decoder_head_dim()),
        cross_scratch_(threads, c.max_source_positions, c.decoder_head_dim()) {
    for (auto* set : {&caches_, &spare_}) {
      set->resize(sequences);
      for (auto& layers : *set) {
        for (size_t l = 0; l < c.decoder_layers; ++l) layers.emplace_back(capacity_, c.decoder_attention_heads, c.decoder_head_dim(), kv_dtype);
      }
    }
  }

  size_t capacity_;
  size_t rows_;
  size_t length_ = 0;
  std::vector<std::vector<nn::KvCacheLayer>> caches_, spare_;  // [sequence][layer]
  AlignedArray<float> x_, normed_, q_, k_, v_, attention_, hidden_;
  std::vector<float> picked_, cross_weights_;
  nn::AttentionScratch self_scratch_;
  nn::FullAttentionScratch cross_scratch_;
  simd::QuantizedActivations quantized_;
};

/// What a decoder pass produces besides logits of the last token of each sequence.
struct WhisperForwardOptions {
  /// Token rows (indices into the [sequences][count] tokens) to produce logits for, in order;
  /// empty: the last row of each sequence.
  std::span<const size_t> logit_rows;
  /// When set, receives sequence 0's cross-attention probabilities, [layer][head][count][audio positions].
  std::vector<float>* cross_attention = nullptr;
};

/// A Whisper model of any weight dtype: what decoding code needs.
class WhisperModel {
 public:
  virtual ~WhisperModel() = default;
  /// The dims.
  [[nodiscard]] virtual const WhisperConfig& config() const noexcept = 0;
  /// The matmul dtype it runs in.
  [[nodiscard]] virtual DType weight_dtype() const noexcept = 0;
  /// A fresh window holder (encoder scratch included) for encode().
  [[nodiscard]] virtual std::unique_ptr<WhisperAudio> new_audio() const = 0;
  /// A decoder state for `sequences` parallel sequences.
  [[nodiscard]] virtual std::unique_ptr<WhisperDecoderState> new_decoder_state(size_t sequences) const = 0;
  /// Encodes a log-mel window `mel` ([num_mel_bins][input_frames], row-major) into `audio`.
  virtual Result<void> encode(std::span<const float> mel, WhisperAudio& audio) const = 0;
  /// Appends `tokens` ([sequences][count], count = tokens.size() / sequences) to the first
  /// `sequences` sequences of `state` and writes logits (vocab_size floats per requested row).
  virtual Result<void> decode(WhisperDecoderState& state, const WhisperAudio& audio, std::span<const int32_t> tokens,
                              size_t sequences, std::span<float> logits, const WhisperForwardOptions& options = {}) const = 0;
};

/// The Whisper model with matmul weights in dtype W (converted at load when the file differs).
template <WeightDtype W>
class Whisper final : public WhisperModel {
 public:
  /// One encoder or decoder block's attention weights.
  struct Attention {
    nn::LayerNorm norm;   ///< before the attention
    nn::Linear<W> query;  ///< with bias
    nn::Linear<W> key;    ///< no bias
    nn::Linear<W> value;  ///< with bias
    nn::Linear<W> out;    ///< with bias
  };
  /// One block: self-attention, cross-attention (decoder only) and the MLP.
  struct Block {
    Attention self_attention;   ///< self-attention
    Attention cross_attention;  ///< decoder only: queries from the text, keys/values from the audio
    nn::LayerNorm mlp_norm;     ///< before the MLP
    nn::Linear<W> fc1;          ///< d_model → ffn, with bias
    nn::Linear<W> fc2;          ///< ffn → d_model, with bias
  };

  /// Loads the weights of `config` from `file` (Hugging Face names, through `translate`).
  static Result<std::unique_ptr<Whisper>> load(std::shared_ptr<const format::TensorFile> file, const WhisperConfig& config,
                                               NameTranslator translate = {}, WhisperOptions options = {}) {
    auto valid = config.validate();
    if (!valid) return std::move(valid).error();
    if (options.kv_dtype != DType::f32 && options.kv_dtype != DType::f16) {
      return make_error(ErrorCode::invalid_argument, "whisper: KV cache dtype must be f32 or f16, not {}", to_string(options.kv_dtype));
    }
    std::unique_ptr<Whisper> model(new Whisper(std::move(file), config, std::move(translate), options));
    auto loaded = model->load_weights();
    if (!loaded) return std::move(loaded).error();
    return model;
  }

  [[nodiscard]] const WhisperConfig& config() const noexcept override { return config_; }
  [[nodiscard]] DType weight_dtype() const noexcept override { return W::dtype; }
  [[nodiscard]] std::unique_ptr<WhisperAudio> new_audio() const override {
    return std::unique_ptr<WhisperAudio>(new WhisperAudio(config_, pool().size(), options_.kv_dtype));
  }
  [[nodiscard]] std::unique_ptr<WhisperDecoderState> new_decoder_state(size_t sequences) const override {
    return std::unique_ptr<WhisperDecoderState>(new WhisperDecoderState(config_, std::max<size_t>(sequences, 1), options_.kv_dtype, pool().size()));
  }

  /// A summary of the dims and dtype as JSON.
  [[nodiscard]] nlohmann::json describe() const {
    return {{"architecture", "whisper"}, {"weight_dtype", std::string(to_string(W::dtype))}, {"d_model", config_.d_model},
            {"encoder_layers", config_.encoder_layers}, {"encoder_attention_heads", config_.encoder_attention_heads},
            {"decoder_layers", config_.decoder_layers}, {"decoder_attention_heads", config_.decoder_attention_heads},
            {"num_mel_bins", config_.num_mel_bins}, {"vocab_size", config_.vocab_size},
            {"max_source_positions", config_.max_source_positions}, {"max_target_positions", config_.max_target_positions}};
  }

  Result<void> encode(std::span<const float> mel, WhisperAudio& a) const override {
    const size_t frames = config_.input_frames();
    const size_t bins = config_.num_mel_bins;
    if (mel.size() != bins * frames) {
      return make_error(ErrorCode::invalid_argument, "whisper: log-mel input has {} values, expected [{}, {}] = {}", mel.size(), bins,
                        frames, bins * frames);
    }
    for (size_t i = 0; i < mel.size(); ++i) {
      if (!std::isfinite(mel[i])) {
        return make_error(ErrorCode::invalid_argument, "whisper: log-mel value at bin {} frame {} is {}", i / frames, i % frames, mel[i]);
      }
    }
    if (a.positions_ != config_.max_source_positions || a.cross_.size() != config_.decoder_layers) {
      return make_error(ErrorCode::invalid_argument, "whisper: audio holder was made by a model of other dims");
    }
    ThreadPool& threads = pool();
    const size_t d = config_.d_model;
    const size_t positions = config_.max_source_positions;
    // conv1 reads time-major input: transpose [bins][frames] into hidden_ as [frames][bins]
    float* mel_t = a.hidden_.data();
    threads.parallel_for(frames, [&](size_t begin, size_t end) {
      for (size_t t = begin; t < end; ++t) {
        for (size_t b = 0; b < bins; ++b) mel_t[t * bins + b] = mel[b * frames + t];
      }
    });
    conv1_.forward(mel_t, frames, a.conv1_out_.data(), a.columns_.data(), a.quantized_, threads);
    gelu_rows(a.conv1_out_.data(), frames, d);
    float* x = a.features_.data();
    conv2_.forward(a.conv1_out_.data(), frames, x, a.columns_.data(), a.quantized_, threads);
    gelu_rows(x, positions, d);
    simd::add(x, encoder_positions_, x, positions * d);

    for (const Block& block : encoder_) {
      block.self_attention.norm.forward(x, a.normed_.data(), positions);
      project(a.normed_.data(), positions, a.quantized_, {&block.self_attention.query, &block.self_attention.key, &block.self_attention.value},
              {a.q_.data(), a.k_.data(), a.v_.data()});
      a.self_.assign(a.k_.data(), a.v_.data(), positions, threads);
      nn::attend_full(a.q_.data(), positions, a.self_, a.attention_.data(), a.scratch_, threads);
      project(a.attention_.data(), positions, a.quantized_, {&block.self_attention.out}, {a.normed_.data()});
      simd::add(x, a.normed_.data(), x, positions * d);
      mlp(block, x, positions, a.normed_.data(), a.hidden_.data(), a.quantized_);
    }
    encoder_norm_.forward(x, x, positions);
    for (size_t l = 0; l < decoder_.size(); ++l) {
      const Attention& cross = decoder_[l].cross_attention;
      project(x, positions, a.quantized_, {&cross.key, &cross.value}, {a.k_.data(), a.v_.data()});
      a.cross_[l].assign(a.k_.data(), a.v_.data(), positions, threads);
    }
    a.ready_ = true;
    return ok();
  }

  Result<void> decode(WhisperDecoderState& s, const WhisperAudio& a, std::span<const int32_t> tokens, size_t sequences,
                      std::span<float> logits, const WhisperForwardOptions& options = {}) const override {
    if (!a.ready()) return make_error(ErrorCode::invalid_argument, "whisper: decode before encode");
    if (sequences == 0 || sequences > s.sequences() || tokens.empty() || tokens.size() % sequences != 0) {
      return make_error(ErrorCode::invalid_argument, "whisper: {} tokens cannot be split over {} sequences (state holds {})",
                        tokens.size(), sequences, s.sequences());
    }
    const size_t count = tokens.size() / sequences;
    const size_t rows = tokens.size();
    if (s.length_ + count > s.capacity_) {
      return make_error(ErrorCode::invalid_argument, "whisper: {} + {} tokens exceed the text context of {}", s.length_, count, s.capacity_);
    }
    if (rows > s.rows_) return make_error(ErrorCode::invalid_argument, "whisper: {} token rows exceed the state's {}", rows, s.rows_);
    for (size_t i = 0; i < rows; ++i) {
      if (tokens[i] < 0 || static_cast<size_t>(tokens[i]) >= config_.vocab_size) {
        return make_error(ErrorCode::invalid_argument, "whisper: token {} at index {} is outside the vocabulary (0..{})", tokens[i], i,
                          config_.vocab_size - 1);
      }
    }
    std::vector<size_t> last_rows;
    std::span<const size_t> wanted = options.logit_rows;
    if (wanted.empty()) {
      for (size_t q = 0; q < sequences; ++q) last_rows.push_back(q * count + count - 1);
      wanted = last_rows;
    }
    for (size_t row : wanted) {
      if (row >= rows) return make_error(ErrorCode::invalid_argument, "whisper: logit row {} of {} rows", row, rows);
    }
    if (logits.size() < wanted.size() * config_.vocab_size) {
      return make_error(ErrorCode::invalid_argument, "whisper: logits buffer holds {} floats, needs {}", logits.size(),
                        wanted.size() * config_.vocab_size);
    }

    ThreadPool& threads = pool();
    const size_t d = config_.d_model;
    const size_t audio_positions = a.positions();
    const size_t first_position = s.length_;
    float* x = s.x_.data();
    float* normed = s.normed_.data();
    for (size_t r = 0; r < rows; ++r) {
      embed_.lookup(static_cast<size_t>(tokens[r]), x + r * d);
      simd::add(x + r * d, decoder_positions_ + (first_position + r % count) * d, x + r * d, d);
    }
    if (options.cross_attention != nullptr) options.cross_attention->assign(decoder_.size() * heads() * count * audio_positions, 0.0f);
    const nn::AttentionShape self_shape{heads(), heads(), config_.decoder_head_dim(), 0};

    for (size_t l = 0; l < decoder_.size(); ++l) {
      const Block& block = decoder_[l];
      const Attention& self = block.self_attention;
      self.norm.forward(x, normed, rows);
      project(normed, rows, s.quantized_, {&self.query, &self.key, &self.value}, {s.q_.data(), s.k_.data(), s.v_.data()});
      for (size_t q = 0; q < sequences; ++q) {
        nn::KvCacheLayer& cache = s.caches_[q][l];
        for (size_t t = 0; t < count; ++t) cache.store(first_position + t, s.k_.data() + (q * count + t) * d, s.v_.data() + (q * count + t) * d);
        nn::attend(s.q_.data() + q * count * d, count, first_position, cache, self_shape, s.attention_.data() + q * count * d,
                   s.self_scratch_, threads);
      }
      project(s.attention_.data(), rows, s.quantized_, {&self.out}, {normed});
      simd::add(x, normed, x, rows * d);

      const Attention& cross = block.cross_attention;
      cross.norm.forward(x, normed, rows);
      project(normed, rows, s.quantized_, {&cross.query}, {s.q_.data()});
      float* weights = nullptr;
      if (options.cross_attention != nullptr) {
        s.cross_weights_.resize(heads() * rows * audio_positions);
        weights = s.cross_weights_.data();
      }
      nn::attend_full(s.q_.data(), rows, a.cross(l), s.attention_.data(), s.cross_scratch_, threads, weights);
      if (weights != nullptr) {
        for (size_t h = 0; h < heads(); ++h) {
          std::copy_n(weights + h * rows * audio_positions, count * audio_positions,
                      options.cross_attention->data() + (l * heads() + h) * count * audio_positions);
        }
      }
      project(s.attention_.data(), rows, s.quantized_, {&cross.out}, {normed});
      simd::add(x, normed, x, rows * d);
      mlp(block, x, rows, normed, s.hidden_.data(), s.quantized_);
    }
    s.length_ += count;

    s.picked_.resize(wanted.size() * d);
    for (size_t i = 0; i < wanted.size(); ++i) decoder_norm_.forward(x + wanted[i] * d, s.picked_.data() + i * d);
    head_.forward_batch(s.picked_.data(), wanted.size(), logits.data(), s.quantized_, threads);
    return ok();
  }

 private:
  Whisper(std::shared_ptr<const format::TensorFile> file, const WhisperConfig& config, NameTranslator translate, WhisperOptions options)
      : config_(config), options_(options), weights_(std::move(file), std::move(translate)) {}

  ThreadPool& pool() const { return options_.pool != nullptr ? *options_.pool : ThreadPool::global(); }
  [[nodiscard]] size_t heads() const noexcept { return config_.decoder_attention_heads; }

  Result<void> load_weights() {
    const size_t d = config_.d_model;
    Result<void> status = ok();
    auto vector = [&](const std::string& name, size_t n) -> const float* {
      if (!status) return nullptr;
      auto values = weights_.f32(name, Shape{n});
      if (!values) {
        status = std::move(values).error();
        return nullptr;
      }
      return *values;
    };
    auto table = [&](const std::string& name, size_t rows, size_t cols) -> const float* {
      if (!status) return nullptr;
      auto values = weights_.f32(name, Shape{rows, cols});
      if (!values) {
        status = std::move(values).error();
        return nullptr;
      }
      return *values;
    };
    auto linear = [&](const std::string& name, size_t rows, size_t cols, bool bias) {
      nn::Linear<W> out{nullptr, nullptr, cols, rows};
      if (!status) return out;
      auto weight = weights_.template matrix<W>(name + ".weight", rows, cols);
      if (!weight) {
        status = std::move(weight).error();
        return out;
      }
      out.weight = *weight;
      if (bias) out.bias = vector(name + ".bias", rows);
      return out;
    };
    auto norm = [&](const std::string& name) { return nn::LayerNorm{vector(name + ".weight", d), vector(name + ".bias", d), d, config_.layer_norm_eps}; };
    auto conv = [&](const std::string& name, size_t in, size_t stride) {
      nn::Conv1d<F32> out{nullptr, nullptr, in, d, 3, stride, 1};
      if (!status) return out;
      auto values = weights_.f32(name + ".weight", Shape{d, in, 3});
      if (!values) {
        status = std::move(values).error();
        return out;
      }
      out.weight = *values;
      out.bias = vector(name + ".bias", d);
      return out;
    };
    auto attention = [&](const std::string& prefix) {
      return Attention{norm(prefix + "_layer_norm"), linear(prefix + ".q_proj", d, d, true), linear(prefix + ".k_proj", d, d, false),
                       linear(prefix + ".v_proj", d, d, true), linear(prefix + ".out_proj", d, d, true)};
    };

    conv1_ = conv("model.encoder.conv1", config_.num_mel_bins, 1);
    conv2_ = conv("model.encoder.conv2", d, 2);
    encoder_positions_ = table("model.encoder.embed_positions.weight", config_.max_source_positions, d);
    for (size_t l = 0; l < config_.encoder_layers && status; ++l) {
      const std::string p = fmt::format("model.encoder.layers.{}.", l);
      Block block;
      block.self_attention = attention(p + "self_attn");
      block.mlp_norm = norm(p + "final_layer_norm");
      block.fc1 = linear(p + "fc1", config_.encoder_ffn_dim, d, true);
      block.fc2 = linear(p + "fc2", d, config_.encoder_ffn_dim, true);
      encoder_.push_back(block);
    }
    encoder_norm_ = norm("model.encoder.layer_norm");

    decoder_positions_ = table("model.decoder.embed_positions.weight", config_.max_target_positions, d);
    for (size_t l = 0; l < config_.decoder_layers && status; ++l) {
      const std::string p = fmt::format("model.decoder.layers.{}.", l);
      Block block;
      block.self_attention = attention(p + "self_attn");
      block.cross_attention = attention(p + "encoder_attn");
      block.mlp_norm = norm(p + "final_layer_norm");
      block.fc1 = linear(p + "fc1", config_.decoder_ffn_dim, d, true);
      block.fc2 = linear(p + "fc2", d, config_.decoder_ffn_dim, true);
      decoder_.push_back(block);
    }
    decoder_norm_ = norm("model.decoder.layer_norm");
    if (!status) return status;

    const char* embedding_name = "model.decoder.embed_tokens.weight";
    auto embedding = weights_.get(embedding_name, Shape{config_.vocab_size, d});
    if (!embedding) return std::move(embedding).error();
    const TensorView& tensor = **embedding;
    if (is_weight_dtype(tensor.dtype) && d % dtype_info(tensor.dtype).block_size == 0) {
      embed_ = {tensor.dtype, tensor.bytes.data(), config_.vocab_size, d};
    } else {
      const float* values = table(embedding_name, config_.vocab_size, d);
      if (!status) return status;
      embed_ = {DType::f32, reinterpret_cast<const std::byte*>(values), config_.vocab_size, d};
    }
    head_ = {embed_.dtype, embed_.data, d, config_.vocab_size};
    return ok();
  }

  /// x ← gelu(x) for `rows` rows of `width` values, rows split between threads.
  void gelu_rows(float* x, size_t rows, size_t width) const {
    pool().parallel_for(rows, [&](size_t begin, size_t end) { simd::gelu_erf(x + begin * width, (end - begin) * width); });
  }

  /// x += fc2(gelu(fc1(mlp_norm(x)))) for `rows` rows.
  void mlp(const Block& block, float* x, size_t rows, float* normed, float* hidden, simd::QuantizedActivations& quantized) const {
    block.mlp_norm.forward(x, normed, rows);
    project(normed, rows, quantized, {&block.fc1}, {hidden});
    gelu_rows(hidden, rows, block.fc1.out_features);
    project(hidden, rows, quantized, {&block.fc2}, {normed});
    simd::add(x, normed, x, rows * config_.d_model);
  }

  /// outputs[i] = linears[i](input) for layers sharing one input, quantizing it once for int8 dtypes.
  void project(const float* input, size_t n, simd::QuantizedActivations& quantized, std::initializer_list<const nn::Linear<W>*> linears,
               std::initializer_list<float*> outputs) const {
    ThreadPool& threads = pool();
    auto output = outputs.begin();
    if constexpr (nn::Linear<W>::kInt8Activations) {
      quantized.quantize(input, n, (*linears.begin())->in_features);
      for (const auto* linear : linears) linear->forward_batch_quantized(quantized, *output++, threads);
    } else {
      for (const auto* linear : linears) linear->forward_batch(input, n, *output++, quantized, threads);
    }
  }

  WhisperConfig config_;
  WhisperOptions options_;
  WeightStore weights_;
  nn::Conv1d<F32> conv1_, conv2_;
  const float* encoder_positions_ = nullptr;
  const float* decoder_positions_ = nullptr;
  std::vector<Block> encoder_, decoder_;
  nn::LayerNorm encoder_norm_, decoder_norm_;
  nn::Embedding embed_;
  nn::DynamicLinear head_;
};

}  // namespace apr::models
