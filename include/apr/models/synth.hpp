/// @file synth.hpp
/// @brief Random-weight models at any dims (benchmark models at real sizes, tests).
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "apr/core/quantize.hpp"
#include "apr/format/memory_tensor_file.hpp"
#include "apr/models/qwen2_config.hpp"
#include "apr/models/voxtral_config.hpp"
#include "apr/models/whisper_config.hpp"

namespace apr::models {

/// Adds a [rows][cols] tensor of N(0, stddev²) values (seeded) stored as `dtype`
/// (norm weights use mean 1 via `mean`).
inline Result<void> add_random_tensor(format::MemoryTensorFile& file, const std::string& name, const Shape& shape,
                                      DType dtype, std::mt19937_64& rng, float stddev, float mean = 0.0f) {
  const size_t cols = static_cast<size_t>(shape.back());
  const size_t rows = static_cast<size_t>(shape.numel() / cols);
  std::normal_distribution<float> normal(mean, stddev);
  std::vector<float> row(cols);
  const auto row_bytes = dtype_bytes(dtype, cols);
  if (!row_bytes) {
    return make_error(ErrorCode::invalid_argument, "tensor '{}': rows of {} values do not fill {} blocks", name, cols, to_string(dtype));
  }
  std::vector<std::byte> bytes(rows * *row_bytes);
  for (size_t r = 0; r < rows; ++r) {
    for (float& v : row) v = normal(rng);
    std::byte* out = bytes.data() + r * *row_bytes;
    auto status = visit_dtype(dtype, [&](auto tag) -> Result<void> {
      using W = decltype(tag);
      quantize_row<W>(row.data(), reinterpret_cast<typename W::Block*>(out), cols);
      return ok();
    });
    if (!status) return status;
  }
  return file.add(name, dtype, shape, bytes);
}

/// A Qwen2 (or, with experts in `config`, Qwen2-MoE) model of `config` with random weights:
/// matrices (and embeddings) in `dtype`, routers, norms and biases in f32, Hugging Face names,
/// metadata in APR style.
inline Result<std::shared_ptr<format::MemoryTensorFile>> synthesize_qwen2(const Qwen2Config& config, DType dtype, uint64_t seed) {
  auto valid = config.validate();
  if (!valid) return std::move(valid).error();
  auto file = std::make_shared<format::MemoryTensorFile>(fmt::format("<synthetic qwen2 {}>", to_string(dtype)));
  std::mt19937_64 rng(seed);
  const size_t hidden = config.hidden_size;
  const size_t q_width = config.num_attention_heads * config.head_dim;
  const size_t kv_width = config.num_key_value_heads * config.head_dim;
  const float matrix_std = 0.02f * std::sqrt(1024.0f / static_cast<float>(hidden));
  auto add = [&](const std::string& name, const Shape& shape, DType type, float stddev, float mean = 0.0f) {
    return add_random_tensor(*file, name, shape, type, rng, stddev, mean);
  };
  Result<void> status = add("model.embed_tokens.weight", Shape{config.vocab_size, hidden}, dtype, 1.0f);
  if (status && !config.tie_word_embeddings) status = add("lm_head.weight", Shape{config.vocab_size, hidden}, dtype, matrix_std);
  if (status) status = add("model.norm.weight", Shape{hidden}, DType::f32, 0.1f, 1.0f);
  for (size_t l = 0; l < config.num_hidden_layers && status; ++l) {
    const std::string p = fmt::format("model.layers.{}.", l);
    std::vector<std::pair<std::string, Shape>> matrices = {
        {"self_attn.q_proj.weight", Shape{q_width, hidden}},   {"self_attn.k_proj.weight", Shape{kv_width, hidden}},
        {"self_attn.v_proj.weight", Shape{kv_width, hidden}},  {"self_attn.o_proj.weight", Shape{hidden, q_width}}};
    auto mlp = [&](const std::string& prefix, size_t width) {
      matrices.push_back({prefix + "gate_proj.weight", Shape{width, hidden}});
      matrices.push_back({prefix + "up_proj.weight", Shape{width, hidden}});
      matrices.push_back({prefix + "down_proj.weight", Shape{hidden, width}});
    };
    if (config.is_sparse_layer(l)) {
      for (size_t e = 0; e < config.num_experts; ++e) mlp(fmt::format("mlp.experts.{}.", e), config.moe_intermediate_size);
      if (config.shared_expert_intermediate_size > 0) {
        mlp("mlp.shared_expert.", config.shared_expert_intermediate_size);
        if (status) status = add(p + "mlp.shared_expert_gate.weight", Shape{1, hidden}, DType::f32, matrix_std);
      }
      if (status) status = add(p + "mlp.gate.weight", Shape{config.num_experts, hidden}, DType::f32, matrix_std);
    } else {
      mlp("mlp.", config.intermediate_size);
    }
    for (const auto& [name, shape] : matrices) {
      if (status) status = add(p + name, shape, dtype, matrix_std);
    }
    if (status) status = add(p + "self_attn.q_proj.bias", Shape{q_width}, DType::f32, 0.1f);
    if (status) status = add(p + "self_attn.k_proj.bias", Shape{kv_width}, DType::f32, 0.1f);
    if (status) status = add(p + "self_attn.v_proj.bias", Shape{kv_width}, DType::f32, 0.1f);
    if (status) status = add(p + "input_layernorm.weight", Shape{hidden}, DType::f32, 0.1f, 1.0f);
    if (status) status = add(p + "post_attention_layernorm.weight", Shape{hidden}, DType::f32, 0.1f, 1.0f);
  }
  if (!status) return std::move(status).error();
  file->mutable_metadata() = {
      {"model_type", "qwen2"}, {"architecture", "qwen2"}, {"hidden_size", hidden},
      {"num_layers", config.num_hidden_layers}, {"num_heads", config.num_attention_heads},
      {"num_kv_heads", config.num_key_value_heads}, {"vocab_size", config.vocab_size},
      {"intermediate_size", config.intermediate_size}, {"max_position_embeddings", config.max_position_embeddings},
      {"rope_theta", config.rope_theta}, {"rope_type", 2}, {"rms_norm_eps", config.rms_norm_eps},
      {"head_dim", config.head_dim}, {"tie_word_embeddings", config.tie_word_embeddings},
      {"use_sliding_window", config.use_sliding_window}, {"sliding_window", config.sliding_window},
      {"max_window_layers", config.max_window_layers}};
  if (config.num_experts > 0) {
    file->mutable_metadata().update({{"model_type", "qwen2_moe"}, {"architecture", "qwen2_moe"}, {"num_experts", config.num_experts},
                                     {"num_experts_per_tok", config.num_experts_per_tok}, {"moe_intermediate_size", config.moe_intermediate_size},
                                     {"shared_expert_intermediate_size", config.shared_expert_intermediate_size},
                                     {"norm_topk_prob", config.norm_topk_prob}, {"decoder_sparse_step", config.decoder_sparse_step},
                                     {"mlp_only_layers", config.mlp_only_layers}});
  }
  return file;
}

/// Dims of the released Whisper models by name ("tiny", "base", "small", "medium", "large-v3").
inline Result<WhisperConfig> whisper_dims(std::string_view name) {
  struct Dims {
    std::string_view name;
    size_t d_model, layers, heads, mel_bins, vocab;
  };
  constexpr Dims kDims[] = {{"tiny", 384, 4, 6, 80, 51865},     {"base", 512, 6, 8, 80, 51865},
                            {"small", 768, 12, 12, 80, 51865},  {"medium", 1024, 24, 16, 80, 51865},
                            {"large-v3", 1280, 32, 20, 128, 51866}};
  for (const Dims& d : kDims) {
    if (d.name != name) continue;
    WhisperConfig c;
    c.d_model = d.d_model;
    c.encoder_layers = c.decoder_layers = d.layers;
    c.encoder_attention_heads = c.decoder_attention_heads = d.heads;
    c.encoder_ffn_dim = c.decoder_ffn_dim = 4 * d.d_model;
    c.num_mel_bins = d.mel_bins;
    c.vocab_size = d.vocab;
    return c;
  }
  return make_error(ErrorCode::invalid_argument, "unknown Whisper size '{}' (expected tiny, base, small, medium or large-v3)", name);
}

/// A Whisper model of `config` with random weights stored in F16 (as released checkpoints are),
/// Hugging Face names; a model loads them into any weight dtype.
inline Result<std::shared_ptr<format::MemoryTensorFile>> synthesize_whisper(const WhisperConfig& config, uint64_t seed) {
  auto valid = config.validate();
  if (!valid) return std::move(valid).error();
  auto file = std::make_shared<format::MemoryTensorFile>("<synthetic whisper>");
  std::mt19937_64 rng(seed);
  const size_t d = config.d_model;
  const float matrix_std = 1.0f / std::sqrt(static_cast<float>(d));
  auto add = [&](const std::string& name, const Shape& shape, float stddev, float mean = 0.0f) {
    return add_random_tensor(*file, name, shape, DType::f16, rng, stddev, mean);
  };
  auto add_norm = [&](const std::string& name) {
    auto status = add(name + ".weight", Shape{d}, 0.05f, 1.0f);
    return status ? add(name + ".bias", Shape{d}, 0.05f) : status;
  };
  auto add_linear = [&](const std::string& name, size_t rows, size_t cols, bool bias) {
    auto status = add(name + ".weight", Shape{rows, cols}, 1.0f / std::sqrt(static_cast<float>(cols)));
    return status && bias ? add(name + ".bias", Shape{rows}, 0.02f) : status;
  };
  auto add_attention = [&](const std::string& prefix) {
    Result<void> status = add_linear(prefix + ".q_proj", d, d, true);
    if (status) status = add_linear(prefix + ".k_proj", d, d, false);
    if (status) status = add_linear(prefix + ".v_proj", d, d, true);
    if (status) status = add_linear(prefix + ".out_proj", d, d, true);
    return status;
  };
  Result<void> status = add("model.encoder.conv1.weight", Shape{d, config.num_mel_bins, 3}, matrix_std);
  if (status) status = add("model.encoder.conv1.bias", Shape{d}, 0.02f);
  if (status) status = add("model.encoder.conv2.weight", Shape{d, d, 3}, matrix_std / std::sqrt(3.0f));
  if (status) status = add("model.encoder.conv2.bias", Shape{d}, 0.02f);
  if (status) status = add("model.encoder.embed_positions.weight", Shape{config.max_source_positions, d}, 0.5f);
  if (status) status = add("model.decoder.embed_tokens.weight", Shape{config.vocab_size, d}, 0.5f);
  if (status) status = add("model.decoder.embed_positions.weight", Shape{config.max_target_positions, d}, 0.1f);
  for (const char* stack : {"encoder", "decoder"}) {
    const bool decoder = std::string_view(stack) == "decoder";
    const size_t layers = decoder ? config.decoder_layers : config.encoder_layers;
    const size_t ffn = decoder ? config.decoder_ffn_dim : config.encoder_ffn_dim;
    for (size_t l = 0; l < layers && status; ++l) {
      const std::string p = fmt::format("model.{}.layers.{}.", stack, l);
      status = add_attention(p + "self_attn");
      if (status) status = add_norm(p + "self_attn_layer_norm");
      if (status && decoder) status = add_attention(p + "encoder_attn");
      if (status && decoder) status = add_norm(p + "encoder_attn_layer_norm");
      if (status) status = add_linear(p + "fc1", ffn, d, true);
      if (status) status = add_linear(p + "fc2", d, ffn, true);
      if (status) status = add_norm(p + "final_layer_norm");
    }
    if (status) status = add_norm(fmt::format("model.{}.layer_norm", stack));
  }
  if (!status) return std::move(status).error();
  file->mutable_metadata() = {{"model_type", "whisper"}, {"architecture", "whisper"}, {"d_model", d},
                              {"encoder_layers", config.encoder_layers}, {"decoder_layers", config.decoder_layers},
                              {"encoder_attention_heads", config.encoder_attention_heads},
                              {"decoder_attention_heads", config.decoder_attention_heads}, {"encoder_ffn_dim", config.encoder_ffn_dim},
                              {"decoder_ffn_dim", config.decoder_ffn_dim}, {"num_mel_bins", config.num_mel_bins},
                              {"vocab_size", config.vocab_size}, {"max_source_positions", config.max_source_positions},
                              {"max_target_positions", config.max_target_positions}};
  return file;
}

/// Dims and streaming settings of Mistral's Voxtral Mini 4B Realtime (its params.json).
inline VoxtralConfig voxtral_realtime_dims() {
  VoxtralConfig c;
  c.encoder = {.dim = 1280, .n_layers = 32, .n_heads = 32, .n_kv_heads = 32, .head_dim = 64, .hidden_dim = 5120, .window = 750};
  c.decoder = {.dim = 3072, .n_layers = 26, .n_heads = 32, .n_kv_heads = 8, .head_dim = 128, .hidden_dim = 9216, .window = 8192};
  c.vocab_size = 131072;
  c.ada_dim = 32;
  return c;
}

/// A Voxtral-Realtime model of `config` with random weights, every tensor BF16 under Mistral's
/// consolidated.safetensors names (as the released checkpoint is stored).
inline Result<std::shared_ptr<format::MemoryTensorFile>> synthesize_voxtral(const VoxtralConfig& config, uint64_t seed) {
  auto file = std::make_shared<format::MemoryTensorFile>("<synthetic voxtral>");
  std::mt19937_64 rng(seed);
  Result<void> status = ok();
  auto add = [&](const std::string& name, const Shape& shape, float stddev, float mean = 0.0f) {
    if (status) status = add_random_tensor(*file, name, shape, DType::bf16, rng, stddev, mean);
  };
  auto matrix = [&](const std::string& name, size_t rows, size_t cols) {
    add(name, Shape{rows, cols}, 1.0f / std::sqrt(static_cast<float>(cols)));
  };
  auto stack = [&](const std::string& prefix, const VoxtralStack& st, bool encoder) {
    const size_t q = st.n_heads * st.head_dim, kv = st.n_kv_heads * st.head_dim;
    for (size_t l = 0; l < st.n_layers && status; ++l) {
      const std::string p = fmt::format("{}layers.{}.", prefix, l);
      matrix(p + "attention.wq.weight", q, st.dim);
      matrix(p + "attention.wk.weight", kv, st.dim);
      matrix(p + "attention.wv.weight", kv, st.dim);
      matrix(p + "attention.wo.weight", st.dim, q);
      matrix(p + "feed_forward.w1.weight", st.hidden_dim, st.dim);
      matrix(p + "feed_forward.w2.weight", st.dim, st.hidden_dim);
      matrix(p + "feed_forward.w3.weight", st.hidden_dim, st.dim);
      add(p + "attention_norm.weight", Shape{st.dim}, 0.05f, 1.0f);
      add(p + "ffn_norm.weight", Shape{st.dim}, 0.05f, 1.0f);
      if (encoder) {
        add(p + "attention.wq.bias", Shape{q}, 0.02f);
        add(p + "attention.wv.bias", Shape{kv}, 0.02f);
        add(p + "attention.wo.bias", Shape{st.dim}, 0.02f);
        add(p + "feed_forward.w2.bias", Shape{st.dim}, 0.02f);
      } else {
        add(p + "ada_rms_norm_t_cond.0.weight", Shape{config.ada_dim, st.dim}, 1.0f / std::sqrt(static_cast<float>(st.dim)));
        add(p + "ada_rms_norm_t_cond.2.weight", Shape{st.dim, config.ada_dim}, 0.02f);
      }
    }
  };
  const std::string module = "mm_streams_embeddings.embedding_module.";
  const std::string encoder = module + "whisper_encoder.";
  const size_t d = config.encoder.dim;
  add(encoder + "conv_layers.0.conv.weight", Shape{d, config.num_mel_bins, 3}, 1.0f / std::sqrt(3.0f * static_cast<float>(config.num_mel_bins)));
  add(encoder + "conv_layers.0.conv.bias", Shape{d}, 0.02f);
  add(encoder + "conv_layers.1.conv.weight", Shape{d, d, 3}, 1.0f / std::sqrt(3.0f * static_cast<float>(d)));
  add(encoder + "conv_layers.1.conv.bias", Shape{d}, 0.02f);
  stack(encoder + "transformer.", config.encoder, true);
  add(encoder + "transformer.norm.weight", Shape{d}, 0.05f, 1.0f);
  matrix(module + "audio_language_projection.0.weight", config.decoder.dim, d * config.downsample_factor);
  matrix(module + "audio_language_projection.2.weight", config.decoder.dim, config.decoder.dim);
  add(module + "tok_embeddings.weight", Shape{config.vocab_size, config.decoder.dim}, 1.0f / std::sqrt(static_cast<float>(config.decoder.dim)));
  stack("", config.decoder, false);
  add("norm.weight", Shape{config.decoder.dim}, 0.05f, 1.0f);
  if (!status) return std::move(status).error();
  return file;
}

}  // namespace apr::models
