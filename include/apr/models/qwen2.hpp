/// @file qwen2.hpp
/// @brief Qwen2<W>: the Qwen2 decoder-only transformer with matmul weights in dtype W.
///
/// Per layer: x += o_proj(attention(rope(q_proj(n)), rope(k_proj(n)), v_proj(n))) with
/// n = rms_norm(x); then x += down_proj(silu(gate_proj(n)) · up_proj(n)) with n = rms_norm(x).
/// q/k/v have biases; attention is grouped-query, causal, windowed on layers ≥ max_window_layers
/// when use_sliding_window is set; the head is tied to the embeddings or separate.
///
/// Qwen2-MoE (config.num_experts > 0) replaces the MLP of its sparse layers: the router picks
/// the top-k of the experts per token from softmax(router(n)) (renormalised with
/// norm_topk_prob), each expert is a SwiGLU MLP run once over the tokens routed to it (gathered,
/// one matrix product per expert, scattered back weighted), and a shared SwiGLU expert scaled by
/// sigmoid(shared_expert_gate(n)) is added for every token.
#pragma once

#include <algorithm>
#include <memory>
#include <mutex>
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
#include "apr/nn/expert_groups.hpp"
#include "apr/nn/kv_cache.hpp"
#include "apr/nn/linear.hpp"
#include "apr/nn/moe_router.hpp"
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
        gate_(chunk_ * widest_mlp(config)), up_(chunk_ * widest_mlp(config)),
        scores_(threads, max_length, config.num_attention_heads / config.num_key_value_heads, config.head_dim) {
    if (config.num_experts > 0) {
      router_logits_.resize(chunk_ * config.num_experts);
      probabilities_.resize(chunk_ * config.num_experts);
      expert_ids_.resize(chunk_ * config.num_experts_per_tok);
      expert_weights_.resize(chunk_ * config.num_experts_per_tok);
      gathered_ = AlignedArray<float>(chunk_ * config.hidden_size);
      expert_out_ = AlignedArray<float>(chunk_ * config.hidden_size);
      moe_out_ = AlignedArray<float>(chunk_ * config.hidden_size);
      shared_gate_.resize(chunk_);
    }
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
  /// The widest MLP of `config` (dense, routed expert or shared expert).
  static size_t widest_mlp(const Qwen2Config& config) {
    return std::max({config.intermediate_size, config.moe_intermediate_size, config.shared_expert_intermediate_size});
  }

  /// Where a row of a step goes: its sequence and position.
  struct RowPlace {
    Qwen2Sequence* sequence;  ///< whose cache receives the row's keys and values
    size_t position;          ///< the row's position in that sequence
  };

  size_t chunk_;
  nn::KvCache cache_;
  std::vector<RowPlace> places_;  ///< the rows of the step being run with this scratch
  AlignedArray<float> x_, normed_, q_, k_, v_, attention_, gate_, up_;
  nn::AttentionScratch scores_;
  simd::QuantizedActivations quantized_;
  // mixture-of-experts scratch
  std::vector<float> router_logits_, probabilities_, expert_weights_, shared_gate_;
  std::vector<int32_t> expert_ids_;
  nn::ExpertGroups groups_;
  AlignedArray<float> gathered_, expert_out_, moe_out_;
};

/// The Qwen2 model with matmul weights in dtype W (converted at load when the file differs).
template <WeightDtype W>
class Qwen2 final : public LanguageModel {
 public:
  /// One SwiGLU MLP: down(silu(gate(x)) · up(x)).
  struct Mlp {
    nn::Linear<W> gate_proj;  ///< hidden → width
    nn::Linear<W> up_proj;    ///< hidden → width
    nn::Linear<W> down_proj;  ///< width → hidden
  };

  /// One transformer layer's weights.
  struct Layer {
    nn::RmsNorm input_norm;           ///< before attention
    nn::RmsNorm post_attention_norm;  ///< before the MLP
    nn::Linear<W> q_proj;             ///< hidden → heads × head_dim, with bias
    nn::Linear<W> k_proj;             ///< hidden → kv heads × head_dim, with bias
    nn::Linear<W> v_proj;             ///< hidden → kv heads × head_dim, with bias
    nn::Linear<W> o_proj;             ///< heads × head_dim → hidden
    Mlp mlp;                          ///< dense layers: the MLP
    nn::AttentionShape attention;     ///< heads and window
    bool sparse = false;              ///< routes tokens to experts instead of the dense MLP
    nn::Linear<F32> router;           ///< sparse: hidden → experts (kept in f32: it decides the routing)
    std::vector<Mlp> experts;         ///< sparse: the routed experts
    std::optional<Mlp> shared_expert; ///< sparse: the expert every token also goes through
    nn::Linear<F32> shared_expert_gate;  ///< sparse: hidden → 1, its sigmoid scales the shared expert
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

  [[nodiscard]] std::string_view architecture() const noexcept override { return config_.num_experts > 0 ? "qwen2_moe" : "qwen2"; }
  [[nodiscard]] size_t vocab_size() const noexcept override { return config_.vocab_size; }
  [[nodiscard]] size_t max_context() const noexcept override { return config_.max_position_embeddings; }
  /// The dims.
  [[nodiscard]] const Qwen2Config& config() const noexcept { return config_; }
  [[nodiscard]] nlohmann::json describe() const override {
    nlohmann::json description = {{"architecture", std::string(architecture())}, {"weight_dtype", std::string(to_string(W::dtype))},
            {"vocab_size", config_.vocab_size}, {"hidden_size", config_.hidden_size},
            {"intermediate_size", config_.intermediate_size}, {"num_hidden_layers", config_.num_hidden_layers},
            {"num_attention_heads", config_.num_attention_heads}, {"num_key_value_heads", config_.num_key_value_heads},
            {"head_dim", config_.head_dim}, {"rope_theta", config_.rope_theta}, {"rms_norm_eps", config_.rms_norm_eps},
            {"tie_word_embeddings", config_.tie_word_embeddings}, {"use_sliding_window", config_.use_sliding_window},
            {"sliding_window", config_.sliding_window}, {"max_window_layers", config_.max_window_layers},
            {"max_position_embeddings", config_.max_position_embeddings}};
    if (config_.num_experts > 0) {
      description.update({{"num_experts", config_.num_experts}, {"num_experts_per_tok", config_.num_experts_per_tok},
                          {"moe_intermediate_size", config_.moe_intermediate_size},
                          {"shared_expert_intermediate_size", config_.shared_expert_intermediate_size},
                          {"norm_topk_prob", config_.norm_topk_prob}, {"decoder_sparse_step", config_.decoder_sparse_step},
                          {"mlp_only_layers", config_.mlp_only_layers}});
    }
    return description;
  }

  [[nodiscard]] nlohmann::json expert_statistics() const override {
    if (config_.num_experts == 0) return nullptr;
    std::lock_guard lock(statistics_mutex_);
    nlohmann::json layers = nlohmann::json::array();
    nn::RouterStatistics total(config_.num_experts, config_.num_experts_per_tok);
    for (size_t l = 0; l < statistics_.size(); ++l) {
      const auto& stats = statistics_[l];
      if (!layers_[l].sparse) continue;
      layers.push_back({{"layer", l}, {"tokens", stats.tokens}, {"tokens_per_expert", stats.assignments},
                        {"load_balance_loss", stats.load_balance_loss()}, {"routing_entropy", stats.mean_entropy()},
                        {"capacity_overflow", stats.capacity_overflow(1.0)}});
      for (size_t e = 0; e < total.experts; ++e) {
        total.assignments[e] += stats.assignments[e];
        total.probability_sum[e] += stats.probability_sum[e];
      }
      total.tokens += stats.tokens;
      total.entropy_sum += stats.entropy_sum;
    }
    return {{"num_experts", config_.num_experts}, {"top_k", config_.num_experts_per_tok}, {"layers", layers},
            {"tokens_per_expert", total.assignments}, {"load_balance_loss", total.load_balance_loss()},
            {"routing_entropy", total.mean_entropy()}, {"capacity_overflow", total.capacity_overflow(1.0)}};
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
    if (options.router_trace != nullptr) {
      *options.router_trace = RouterTrace{};
      options.router_trace->logits.resize(config_.num_hidden_layers);
      options.router_trace->experts.resize(config_.num_hidden_layers);
      options.router_trace->weights.resize(config_.num_hidden_layers);
    }
    for (size_t start = 0; start < tokens.size(); start += sequence->chunk_) {
      const size_t count = std::min(sequence->chunk_, tokens.size() - start);
      const bool last = start + count == tokens.size();
      float* out = nullptr;
      if (options.all_logits) out = logits.data() + start * config_.vocab_size;
      else if (last) out = logits.data();
      places_of_chunk(*sequence, count);
      run_rows(*sequence, tokens.subspan(start, count), out, options.all_logits, options.hidden_states, options.router_trace);
    }
    return ok();
  }

  /// One decode step for several sequences: the rows share every matrix product (each weight is
  /// read once for all of them); each row attends to its own sequence's cache.
  Result<void> forward_batch(std::span<Sequence* const> sequences, std::span<const int32_t> tokens,
                             std::span<float* const> logits) const override {
    if (sequences.size() != tokens.size() || sequences.size() != logits.size()) {
      return make_error(ErrorCode::invalid_argument, "qwen2: forward_batch got {} sequences, {} tokens and {} logits buffers",
                        sequences.size(), tokens.size(), logits.size());
    }
    std::vector<Qwen2Sequence*> batch;
    for (size_t i = 0; i < sequences.size(); ++i) {
      auto* sequence = dynamic_cast<Qwen2Sequence*>(sequences[i]);
      if (sequence == nullptr) return make_error(ErrorCode::invalid_argument, "qwen2: sequence {} of the batch was made by another model", i);
      if (sequence->length() >= sequence->capacity()) {
        return make_error(ErrorCode::invalid_argument, "qwen2: sequence {} of the batch is full ({} tokens)", i, sequence->capacity());
      }
      if (tokens[i] < 0 || static_cast<size_t>(tokens[i]) >= config_.vocab_size) {
        return make_error(ErrorCode::invalid_argument, "qwen2: token {} of the batch ({}) is outside the vocabulary (0..{})", i, tokens[i],
                          config_.vocab_size - 1);
      }
      if (std::find(batch.begin(), batch.end(), sequence) != batch.end()) {
        return make_error(ErrorCode::invalid_argument, "qwen2: sequence {} appears twice in the batch", i);
      }
      batch.push_back(sequence);
    }
    // the widest sequence's scratch holds the batch's rows; larger batches go in groups
    Qwen2Sequence* work = *std::max_element(batch.begin(), batch.end(), [](auto* a, auto* b) { return a->chunk_ < b->chunk_; });
    std::vector<float> rows_logits(std::min(work->chunk_, batch.size()) * config_.vocab_size);
    for (size_t start = 0; start < batch.size(); start += work->chunk_) {
      const size_t count = std::min(work->chunk_, batch.size() - start);
      work->places_.clear();
      for (size_t i = start; i < start + count; ++i) work->places_.push_back({batch[i], batch[i]->cache_.length});
      run_rows(*work, tokens.subspan(start, count), rows_logits.data(), true, nullptr, nullptr);
      for (size_t i = 0; i < count; ++i) {
        std::copy_n(rows_logits.data() + i * config_.vocab_size, config_.vocab_size, logits[start + i]);
      }
    }
    return ok();
  }

 private:
  Qwen2(std::shared_ptr<const format::TensorFile> file, const Qwen2Config& config, NameTranslator translate, ModelOptions options)
      : config_(config), options_(options), weights_(std::move(file), std::move(translate)),
        rope_(config.head_dim, config.rope_theta, simd::RopeStyle::split_halves),
        statistics_(config.num_hidden_layers, nn::RouterStatistics(config.num_experts, config.num_experts_per_tok)) {}

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
      auto mlp = [&](const std::string& name, size_t width, Mlp& out) {
        matrix((name + ".gate_proj").c_str(), width, hidden, out.gate_proj);
        matrix((name + ".up_proj").c_str(), width, hidden, out.up_proj);
        matrix((name + ".down_proj").c_str(), hidden, width, out.down_proj);
      };
      auto f32_matrix = [&](const std::string& name, size_t rows, nn::Linear<F32>& out) {
        if (!status) return;
        auto values = weights_.f32(prefix + name, Shape{rows, hidden});
        if (!values) {
          status = std::move(values).error();
          return;
        }
        out = {*values, nullptr, hidden, rows};
      };
      layer.sparse = config_.is_sparse_layer(l);
      if (layer.sparse) {
        f32_matrix("mlp.gate.weight", config_.num_experts, layer.router);
        layer.experts.resize(config_.num_experts);
        for (size_t e = 0; e < config_.num_experts; ++e) mlp(fmt::format("mlp.experts.{}", e), config_.moe_intermediate_size, layer.experts[e]);
        if (config_.shared_expert_intermediate_size > 0) {
          layer.shared_expert.emplace();
          mlp("mlp.shared_expert", config_.shared_expert_intermediate_size, *layer.shared_expert);
          f32_matrix("mlp.shared_expert_gate.weight", 1, layer.shared_expert_gate);
        }
      } else {
        mlp("mlp", inter, layer.mlp);
      }
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

  /// Places the next `count` tokens of `s` in its own cache, one after another.
  static void places_of_chunk(Qwen2Sequence& s, size_t count) {
    s.places_.clear();
    for (size_t t = 0; t < count; ++t) s.places_.push_back({&s, s.cache_.length + t});
  }

  /// Runs `tokens` (at most one chunk) through the model with `s`'s scratch: row t goes to the
  /// sequence and position s.places_[t] names (rows of one sequence are consecutive and in order)
  /// and is appended to that sequence's cache.
  void run_rows(Qwen2Sequence& s, std::span<const int32_t> tokens, float* logits, bool all_logits,
                std::vector<std::vector<float>>* hidden_states, RouterTrace* trace) const {
    ThreadPool& threads = pool();
    const size_t n = tokens.size();
    const size_t hidden = config_.hidden_size;
    const size_t q_width = config_.num_attention_heads * config_.head_dim;
    const size_t kv_width = config_.num_key_value_heads * config_.head_dim;
    const size_t inter = config_.intermediate_size;
    const auto& places = s.places_;
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
        rope_.apply(s.q_.data() + t * q_width, config_.num_attention_heads, places[t].position);
        rope_.apply(s.k_.data() + t * kv_width, config_.num_key_value_heads, places[t].position);
        places[t].sequence->cache_.layers[l].store(places[t].position, s.k_.data() + t * kv_width, s.v_.data() + t * kv_width);
      }
      for (size_t t = 0, rows = 0; t < n; t += rows) {  // each sequence's rows attend to its own cache
        rows = 1;
        while (t + rows < n && places[t + rows].sequence == places[t].sequence) ++rows;
        Qwen2Sequence& owner = *places[t].sequence;
        nn::attend(s.q_.data() + t * q_width, rows, places[t].position, owner.cache_.layers[l], layer.attention, s.attention_.data() + t * q_width,
                   owner.scores_, threads);
      }
      project(s.attention_.data(), n, s, {&layer.o_proj}, {normed});
      simd::add(x, normed, x, n * hidden);

      layer.post_attention_norm.forward(x, normed, n);
      if (layer.sparse) {
        sparse_mlp(layer, l, normed, n, s, trace);
        simd::add(x, s.moe_out_.data(), x, n * hidden);
      } else {
        run_mlp(layer.mlp, inter, normed, n, s, normed);
        simd::add(x, normed, x, n * hidden);
      }
      if (l + 1 < layers_.size()) record(l + 1, x);
    }
    for (size_t t = 0; t < n; ++t) places[t].sequence->cache_.length = places[t].position + 1;

    final_norm_.forward(x, x, n);
    record(layers_.size(), x);
    if (logits == nullptr) return;
    if (all_logits) {
      lm_head_.forward_batch(x, n, logits, s.quantized_, threads);
    } else {
      lm_head_.forward_batch(x + (n - 1) * hidden, 1, logits, s.quantized_, threads);
    }
  }

  /// out = mlp(input) for `n` rows of `input` (out may alias input).
  void run_mlp(const Mlp& mlp, size_t width, const float* input, size_t n, Qwen2Sequence& s, float* out) const {
    project(input, n, s, {&mlp.gate_proj, &mlp.up_proj}, {s.gate_.data(), s.up_.data()});
    pool().parallel_for(n, [&](size_t begin, size_t end) {
      for (size_t t = begin; t < end; ++t) simd::swiglu(s.gate_.data() + t * width, s.up_.data() + t * width, width);
    });
    project(s.gate_.data(), n, s, {&mlp.down_proj}, {out});
  }

  /// s.moe_out_ = Σ_k weight_k · expert_k(n) + sigmoid(shared_gate(n)) · shared(n) for `n` rows
  /// of `normed`: experts run once each over the rows routed to them; experts nobody chose are not touched.
  void sparse_mlp(const Layer& layer, size_t l, const float* normed, size_t n, Qwen2Sequence& s, RouterTrace* trace) const {
    const size_t hidden = config_.hidden_size, experts = config_.num_experts, top_k = config_.num_experts_per_tok;
    layer.router.forward_batch(normed, n, s.router_logits_.data(), s.quantized_, pool());
    nn::route_tokens(s.router_logits_.data(), n, experts, top_k, config_.norm_topk_prob, s.probabilities_.data(), s.expert_ids_.data(),
                     s.expert_weights_.data());
    {
      std::lock_guard lock(statistics_mutex_);
      statistics_[l].add(s.probabilities_.data(), s.expert_ids_.data(), n);
    }
    if (trace != nullptr) {
      trace->logits[l].insert(trace->logits[l].end(), s.router_logits_.begin(), s.router_logits_.begin() + static_cast<ptrdiff_t>(n * experts));
      trace->experts[l].insert(trace->experts[l].end(), s.expert_ids_.begin(), s.expert_ids_.begin() + static_cast<ptrdiff_t>(n * top_k));
      trace->weights[l].insert(trace->weights[l].end(), s.expert_weights_.begin(), s.expert_weights_.begin() + static_cast<ptrdiff_t>(n * top_k));
    }
    float* out = s.moe_out_.data();
    std::fill(out, out + n * hidden, 0.0f);
    s.groups_.build(s.expert_ids_.data(), s.expert_weights_.data(), n, top_k, experts);
    for (size_t e = 0; e < experts; ++e) {
      const size_t rows = s.groups_.rows(e).size();
      if (rows == 0) continue;
      s.groups_.gather(e, normed, hidden, s.gathered_.data());
      run_mlp(layer.experts[e], config_.moe_intermediate_size, s.gathered_.data(), rows, s, s.expert_out_.data());
      s.groups_.scatter_add(e, s.expert_out_.data(), hidden, out);
    }
    if (layer.shared_expert) {
      run_mlp(*layer.shared_expert, config_.shared_expert_intermediate_size, normed, n, s, s.expert_out_.data());
      layer.shared_expert_gate.forward_batch(normed, n, s.shared_gate_.data(), s.quantized_, pool());
      for (size_t t = 0; t < n; ++t) {
        const float gate = 1.0f / (1.0f + std::exp(-s.shared_gate_[t]));
        simd::add_scaled(s.expert_out_.data() + t * hidden, gate, out + t * hidden, hidden);
      }
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
  mutable std::mutex statistics_mutex_;                  ///< guards statistics_ (forward runs from many threads)
  mutable std::vector<nn::RouterStatistics> statistics_; ///< per layer: routing since load
};

/// Qwen2-MoE: the same model type, with sparse layers when its config has experts.
template <WeightDtype W>
using Qwen2Moe = Qwen2<W>;

}  // namespace apr::models
