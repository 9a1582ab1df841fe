/// @file qwen2.hpp
/// @brief Qwen2<W>: the Qwen2 decoder-only transformer with matmul weights in dtype W.
///
/// Per layer: x += o_proj(attention(rope(q_proj(n)), rope(k_proj(n)), v_proj(n))) with
/// n = rms_norm(x); then x += down_proj(silu(gate_proj(n)) · up_proj(n)) with n = rms_norm(x).
/// q/k/v have biases; attention is grouped-query, causal, windowed on layers ≥ max_window_layers
/// when use_sliding_window is set; the head is tied to the embeddings or separate.
#pragma once

#include <algorithm>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "apr/core/aligned_buffer.hpp"
#include "apr/core/thread_pool.hpp"
#include "apr/models/language_model.hpp"
#include "apr/models/qwen2_config.hpp"
#include "apr/models/weight_store.hpp"
#include "apr/nn/attention.hpp"
#include "apr/nn/dynamic_linear.hpp"
#include "apr/nn/embedding.hpp"
#include "apr/nn/kv_cache.hpp"
#include "apr/nn/linear.hpp"
#include "apr/nn/norm.hpp"
#include "apr/nn/rope_table.hpp"
#include "apr/simd/activation.hpp"
#include "apr/simd/elementwise.hpp"

namespace apr::models {

/// How a model is loaded and run.
struct ModelOptions {
  ThreadPool* pool = nullptr;          ///< threads to run on (null: ThreadPool::global())
  DType kv_dtype = DType::f32;         ///< KV cache storage: f32 or f16
  size_t prefill_chunk = 512;          ///< most tokens processed per batched step
};

/// One Qwen2 sequence: KV cache plus scratch sized for one prefill chunk.
class Qwen2Sequence final : public Sequence {
 public:
  /// State for up to `max_length` tokens of `config`, processing at most `chunk` tokens per step.
  Qwen2Sequence(const Qwen2Config& config, size_t max_length, size_t chunk, DType kv_dtype, size_t threads)
      : chunk_(std::min(chunk, max_length)),
        x_(chunk_ * config.hidden_size), normed_(chunk_ * config.hidden_size),
        q_(chunk_ * config.num_attention_heads * config.head_dim),
        k_(chunk_ * config.num_key_value_heads * config.head_dim),
        v_(chunk_ * config.num_key_value_heads * config.head_dim),
        attention_(chunk_ * config.num_attention_heads * config.head_dim),
        gate_(chunk_ * config.intermediate_size), up_(chunk_ * config.intermediate_size),
        scores_(threads, max_length, config.num_attention_heads / config.num_key_value_heads, config.head_dim) {
    cache_.max_length = max_length;
    for (size_t layer = 0; layer < config.num_hidden_layers; ++layer) {
      const size_t window = config.window_of_layer(layer);
      const size_t slots = window == 0 ? max_length : std::min(max_length, window + chunk_);
      cache_.layers.emplace_back(slots, config.num_key_value_heads, config.head_dim, kv_dtype);
    }
  }

  [[nodiscard]] size_t length() const noexcept override { return cache_.length; }
  [[nodiscard]] size_t capacity() const noexcept override { return cache_.max_length; }
  Result<void> truncate(size_t length) override {
    if (length > cache_.length) {
      return make_error(ErrorCode::invalid_argument, "cannot truncate a sequence of {} tokens to {}", cache_.length, length);
    }
    // A ring-buffered (windowed) layer keeps `chunk` spare slots, so it can rewind at most that far.
    const bool has_ring = std::any_of(cache_.layers.begin(), cache_.layers.end(),
                                      [&](const nn::KvCacheLayer& layer) { return layer.capacity() < cache_.max_length; });
    if (has_ring && cache_.length - length > chunk_) {
      return make_error(ErrorCode::invalid_argument, "cannot rewind {} tokens: the sliding-window cache keeps only the last {}",
                        cache_.length - length, chunk_);
    }
    cache_.length = length;
    return ok();
  }

 private:
  template <WeightDtype W>
  friend class Qwen2;
  size_t chunk_;
  nn::KvCache cache_;
  AlignedArray<float> x_, normed_, q_, k_, v_, attention_, gate_, up_;
  nn::AttentionScratch scores_;
  simd::QuantizedActivations quantized_;
};

/// The Qwen2 model with matmul weights in dtype W (converted at load when the file differs).
template <WeightDtype W>
class Qwen2 final : public LanguageModel {
 public:
  /// One transformer layer's weights.
  struct Layer {
    nn::RmsNorm input_norm;           ///< before attention
    nn::RmsNorm post_attention_norm;  ///< before the MLP
    nn::Linear<W> q_proj;             ///< hidden → heads × head_dim, with bias
    nn::Linear<W> k_proj;             ///< hidden → kv heads × head_dim, with bias
    nn::Linear<W> v_proj;             ///< hidden → kv heads × head_dim, with bias
    nn::Linear<W> o_proj;             ///< heads × head_dim → hidden
    nn::Linear<W> gate_proj;          ///< hidden → intermediate
    nn::Linear<W> up_proj;            ///< hidden → intermediate
    nn::Linear<W> down_proj;          ///< intermediate → hidden
    nn::AttentionShape attention;     ///< heads and window
  };

  /// Loads the weights of `config` from `file` (Hugging Face names, through `translate`).
  static Result<std::unique_ptr<Qwen2>> load(std::shared_ptr<const format::TensorFile> file, const Qwen2Config& config,
                                             NameTranslator translate = {}, ModelOptions options = {}) {
    auto valid = config.validate();
    if (!valid) return std::move(valid).error();
    std::unique_ptr<Qwen2> model(new Qwen2(std::move(file), config, std::move(translate), options));
    auto loaded = model->load_weights();
    if (!loaded) return std::move(loaded).error();
    return model;
  }

  [[nodiscard]] std::string_view architecture() const noexcept override { return "qwen2"; }
  [[nodiscard]] size_t vocab_size() const noexcept override { return config_.vocab_size; }
  [[nodiscard]] size_t max_context() const noexcept override { return config_.max_position_embeddings; }
  /// The dims.
  [[nodiscard]] const Qwen2Config& config() const noexcept { return config_; }
  [[nodiscard]] nlohmann::json describe() const override {
    return {{"architecture", "qwen2"}, {"weight_dtype", std::string(to_string(W::dtype))},
            {"vocab_size", config_.vocab_size}, {"hidden_size", config_.hidden_size},
            {"intermediate_size", config_.intermediate_size}, {"num_hidden_layers", config_.num_hidden_layers},
            {"num_attention_heads", config_.num_attention_heads}, {"num_key_value_heads", config_.num_key_value_heads},
            {"head_dim", config_.head_dim}, {"rope_theta", config_.rope_theta}, {"rms_norm_eps", config_.rms_norm_eps},
            {"tie_word_embeddings", config_.tie_word_embeddings}, {"use_sliding_window", config_.use_sliding_window},
            {"sliding_window", config_.sliding_window}, {"max_window_layers", config_.max_window_layers},
            {"max_position_embeddings", config_.max_position_embeddings}};
  }

  [[nodiscard]] std::unique_ptr<Sequence> new_sequence(size_t max_length) const override {
    return std::make_unique<Qwen2Sequence>(config_, std::max<size_t>(max_length, 1), options_.prefill_chunk,
                                           options_.kv_dtype, pool().size());
  }

  Result<void> forward(Sequence& base, std::span<const int32_t> tokens, std::span<float> logits,
                       const ForwardOptions& options = {}) const override {
    auto* sequence = dynamic_cast<Qwen2Sequence*>(&base);
    if (sequence == nullptr) return make_error(ErrorCode::invalid_argument, "qwen2: sequence was made by another model");
    if (tokens.empty()) return make_error(ErrorCode::invalid_argument, "qwen2: forward needs at least one token");
    if (sequence->length() + tokens.size() > sequence->capacity()) {
      return make_error(ErrorCode::invalid_argument, "qwen2: {} + {} tokens exceed the sequence capacity of {}",
                        sequence->length(), tokens.size(), sequence->capacity());
    }
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (tokens[i] < 0 || static_cast<size_t>(tokens[i]) >= config_.vocab_size) {
        return make_error(ErrorCode::invalid_argument, "qwen2: token {} at index {} is outside the vocabulary (0..{})",
                          tokens[i], i, config_.vocab_size - 1);
      }
    }
    const size_t needed = (options.all_logits ? tokens.size() : 1) * config_.vocab_size;
    if (logits.size() < needed) {
      return make_error(ErrorCode::invalid_argument, "qwen2: logits buffer holds {} floats, needs {}", logits.size(), needed);
    }
    if (options.hidden_states != nullptr) options.hidden_states->assign(config_.num_hidden_layers + 1, {});
    for (size_t start = 0; start < tokens.size(); start += sequence->chunk_) {
      const size_t count = std::min(sequence->chunk_, tokens.size() - start);
      const bool last = start + count == tokens.size();
      float* out = nullptr;
      if (options.all_logits) out = logits.data() + start * config_.vocab_size;
      else if (last) out = logits.data();
      run_chunk(*sequence, tokens.subspan(start, count), out, options.all_logits, options.hidden_states);
    }
    return ok();
  }

 private:
  Qwen2(std::shared_ptr<const format::TensorFile> file, const Qwen2Config& config, NameTranslator translate, ModelOptions options)
      : config_(config), options_(options), weights_(std::move(file), std::move(translate)),
        rope_(config.head_dim, config.rope_theta, simd::RopeStyle::split_halves) {}

  ThreadPool& pool() const { return options_.pool != nullptr ? *options_.pool : ThreadPool::global(); }

  Result<void> load_weights() {
    const size_t hidden = config_.hidden_size;
    const size_t q_width = config_.num_attention_heads * config_.head_dim;
    const size_t kv_width = config_.num_key_value_heads * config_.head_dim;
    const size_t inter = config_.intermediate_size;

    auto embedding = weights_.get("model.embed_tokens.weight", Shape{config_.vocab_size, hidden});
    if (!embedding) return std::move(embedding).error();
    if (auto table = table_of(**embedding, "model.embed_tokens.weight"); !table) {
      return std::move(table).error();
    } else {
      embed_ = *table;
    }
    const bool tied = config_.tie_word_embeddings || !weights_.contains("lm_head.weight");
    if (tied) {
      lm_head_ = {embed_.dtype, embed_.data, hidden, config_.vocab_size};
    } else {
      auto head = weights_.get("lm_head.weight", Shape{config_.vocab_size, hidden});
      if (!head) return std::move(head).error();
      auto table = table_of(**head, "lm_head.weight");
      if (!table) return std::move(table).error();
      lm_head_ = {table->dtype, table->data, hidden, config_.vocab_size};
    }
    auto final_norm = weights_.f32("model.norm.weight", Shape{hidden});
    if (!final_norm) return std::move(final_norm).error();
    final_norm_ = {*final_norm, hidden, config_.rms_norm_eps};

    for (size_t l = 0; l < config_.num_hidden_layers; ++l) {
      const std::string prefix = fmt::format("model.layers.{}.", l);
      Layer layer;
      Result<void> status = ok();
      auto matrix = [&](const char* name, size_t rows, size_t cols, nn::Linear<W>& out) {
        if (!status) return;
        auto weight = weights_.template matrix<W>(prefix + name + ".weight", rows, cols);
        if (!weight) {
          status = std::move(weight).error();
          return;
        }
        out = {*weight, nullptr, cols, rows};
      };
      auto vector = [&](const std::string& name, size_t n) -> const float* {
        if (!status) return nullptr;
        auto values = weights_.f32(prefix + name, Shape{n});
        if (!values) {
          status = std::move(values).error();
          return nullptr;
        }
        return *values;
      };
      matrix("self_attn.q_proj", q_width, hidden, layer.q_proj);
      matrix("self_attn.k_proj", kv_width, hidden, layer.k_proj);
      matrix("self_attn.v_proj", kv_width, hidden, layer.v_proj);
      matrix("self_attn.o_proj", hidden, q_width, layer.o_proj);
      matrix("mlp.gate_proj", inter, hidden, layer.gate_proj);
      matrix("mlp.up_proj", inter, hidden, layer.up_proj);
      matrix("mlp.down_proj", hidden, inter, layer.down_proj);
      layer.q_proj.bias = vector("self_attn.q_proj.bias", q_width);
      layer.k_proj.bias = vector("self_attn.k_proj.bias", kv_width);
      layer.v_proj.bias = vector("self_attn.v_proj.bias", kv_width);
      layer.input_norm = {vector("input_layernorm.weight", hidden), hidden, config_.rms_norm_eps};
      layer.post_attention_norm = {vector("post_attention_layernorm.weight", hidden), hidden, config_.rms_norm_eps};
      if (!status) return status;
      layer.attention = {config_.num_attention_heads, config_.num_key_value_heads, config_.head_dim, config_.window_of_layer(l)};
      layers_.push_back(layer);
    }
    return ok();
  }

  /// An embedding-style table over a tensor, converting to f32 when its dtype is not a weight dtype.
  Result<nn::Embedding> table_of(const TensorView& tensor, std::string_view name) {
    const size_t rows = static_cast<size_t>(tensor.shape[0]);
    const size_t cols = static_cast<size_t>(tensor.shape[1]);
    if (is_weight_dtype(tensor.dtype) && cols % dtype_info(tensor.dtype).block_size == 0) {
      return nn::Embedding{tensor.dtype, tensor.bytes.data(), rows, cols};
    }
    auto values = weights_.f32(name, tensor.shape);
    if (!values) return std::move(values).error();
    return nn::Embedding{DType::f32, reinterpret_cast<const std::byte*>(*values), rows, cols};
  }

  /// Runs `tokens` (at most one chunk) through the model, appending them to the sequence.
  void run_chunk(Qwen2Sequence& s, std::span<const int32_t> tokens, float* logits, bool all_logits,
                 std::vector<std::vector<float>>* hidden_states) const {
    ThreadPool& threads = pool();
    const size_t n = tokens.size();
    const size_t hidden = config_.hidden_size;
    const size_t q_width = config_.num_attention_heads * config_.head_dim;
    const size_t kv_width = config_.num_key_value_heads * config_.head_dim;
    const size_t inter = config_.intermediate_size;
    const size_t first_position = s.cache_.length;
    float* x = s.x_.data();
    float* normed = s.normed_.data();
    auto record = [&](size_t slot, const float* values) {
      if (hidden_states != nullptr) (*hidden_states)[slot].insert((*hidden_states)[slot].end(), values, values + n * hidden);
    };

    for (size_t t = 0; t < n; ++t) embed_.lookup(static_cast<size_t>(tokens[t]), x + t * hidden);
    record(0, x);

    for (size_t l = 0; l < layers_.size(); ++l) {
      const Layer& layer = layers_[l];
      layer.input_norm.forward(x, normed, n);
      project(normed, n, s, {&layer.q_proj, &layer.k_proj, &layer.v_proj}, {s.q_.data(), s.k_.data(), s.v_.data()});
      for (size_t t = 0; t < n; ++t) {
        rope_.apply(s.q_.data() + t * q_width, config_.num_attention_heads, first_position + t);
        rope_.apply(s.k_.data() + t * kv_width, config_.num_key_value_heads, first_position + t);
        s.cache_.layers[l].store(first_position + t, s.k_.data() + t * kv_width, s.v_.data() + t * kv_width);
      }
      nn::attend(s.q_.data(), n, first_position, s.cache_.layers[l], layer.attention, s.attention_.data(), s.scores_, threads);
      project(s.attention_.data(), n, s, {&layer.o_proj}, {normed});
      simd::add(x, normed, x, n * hidden);

      layer.post_attention_norm.forward(x, normed, n);
      project(normed, n, s, {&layer.gate_proj, &layer.up_proj}, {s.gate_.data(), s.up_.data()});
      threads.parallel_for(n, [&](size_t begin, size_t end) {
        for (size_t t = begin; t < end; ++t) simd::swiglu(s.gate_.data() + t * inter, s.up_.data() + t * inter, inter);
      });
      project(s.gate_.data(), n, s, {&layer.down_proj}, {normed});
      simd::add(x, normed, x, n * hidden);
      if (l + 1 < layers_.size()) record(l + 1, x);
    }
    s.cache_.length += n;

    final_norm_.forward(x, x, n);
    record(layers_.size(), x);
    if (logits == nullptr) return;
    if (all_logits) {
      lm_head_.forward_batch(x, n, logits, s.quantized_, threads);
    } else {
      lm_head_.forward_batch(x + (n - 1) * hidden, 1, logits, s.quantized_, threads);
    }
  }

  /// outputs[i] = layers[i](input) for layers sharing one input, quantizing it once for int8 dtypes.
  void project(const float* input, size_t n, Qwen2Sequence& s, std::initializer_list<const nn::Linear<W>*> linears,
               std::initializer_list<float*> outputs) const {
    ThreadPool& threads = pool();
    auto output = outputs.begin();
    if constexpr (nn::Linear<W>::kInt8Activations) {
      s.quantized_.quantize(input, n, (*linears.begin())->in_features);
      for (const auto* linear : linears) linear->forward_batch_quantized(s.quantized_, *output++, threads);
    } else {
      for (const auto* linear : linears) linear->forward_batch(input, n, *output++, s.quantized_, threads);
    }
  }

  Qwen2Config config_;
  ModelOptions options_;
  WeightStore weights_;
  nn::RotaryEmbedding rope_;
  nn::Embedding embed_;
  nn::DynamicLinear lm_head_;
  nn::RmsNorm final_norm_;
  std::vector<Layer> layers_;
};

}  // namespace apr::models
