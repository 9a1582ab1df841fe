/// @file qwen2_config.hpp
/// @brief Qwen2Config: the hyper-parameters of a Qwen2 model, from config.json, APR metadata or GGUF keys.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "apr/core/result.hpp"

namespace apr::models {

/// Qwen2 hyper-parameters (Hugging Face names).
struct Qwen2Config {
  size_t vocab_size = 0;               ///< tokens in the vocabulary
  size_t hidden_size = 0;              ///< model width
  size_t intermediate_size = 0;        ///< MLP width
  size_t num_hidden_layers = 0;        ///< transformer layers
  size_t num_attention_heads = 0;      ///< query heads
  size_t num_key_value_heads = 0;      ///< key/value heads (grouped-query attention)
  size_t head_dim = 0;                 ///< values per head (hidden_size / heads unless given)
  float rope_theta = 10000.0f;         ///< RoPE base
  float rms_norm_eps = 1e-6f;          ///< RMSNorm epsilon
  bool tie_word_embeddings = false;    ///< lm_head shares the embedding table
  bool use_sliding_window = false;     ///< some layers attend only to a window
  size_t sliding_window = 0;           ///< window length in positions
  size_t max_window_layers = 0;        ///< layers with index ≥ this use the window
  size_t max_position_embeddings = 32768;  ///< longest context the model was trained for
  std::optional<int32_t> bos_token_id;     ///< beginning-of-sequence id, if any
  std::optional<int32_t> eos_token_id;     ///< end-of-sequence id, if any
  // Qwen2-MoE (zero experts: every layer is a dense MLP)
  size_t num_experts = 0;                  ///< routed experts per sparse layer
  size_t num_experts_per_tok = 0;          ///< experts each token is routed to (top-k)
  size_t moe_intermediate_size = 0;        ///< MLP width of one routed expert
  size_t shared_expert_intermediate_size = 0;  ///< MLP width of the shared expert (0: none)
  bool norm_topk_prob = false;             ///< renormalise the top-k routing weights to sum 1
  size_t decoder_sparse_step = 1;          ///< every this-many-th layer is sparse
  std::vector<size_t> mlp_only_layers;     ///< layers that stay dense

  /// True when layer `layer` routes tokens to experts (Qwen2-MoE's rule).
  [[nodiscard]] bool is_sparse_layer(size_t layer) const noexcept {
    if (num_experts == 0 || decoder_sparse_step == 0) return false;
    if (std::find(mlp_only_layers.begin(), mlp_only_layers.end(), layer) != mlp_only_layers.end()) return false;
    return (layer + 1) % decoder_sparse_step == 0;
  }

  /// Window of layer `layer` (0 = full causal attention), per Qwen2's rule.
  [[nodiscard]] size_t window_of_layer(size_t layer) const noexcept {
    return use_sliding_window && sliding_window > 0 && layer >= max_window_layers ? sliding_window : 0;
  }

  /// Checks that the dims are positive, consistent and not absurd; names the offending field.
  [[nodiscard]] Result<void> validate() const {
    auto bad = [](std::string_view field, size_t value, std::string_view expected) {
      return make_error(ErrorCode::format, "qwen2 config: {} = {} ({})", field, value, expected);
    };
    if (vocab_size == 0 || vocab_size > (size_t{1} << 24)) return bad("vocab_size", vocab_size, "expected 1..16777216");
    if (hidden_size == 0 || hidden_size > 65536) return bad("hidden_size", hidden_size, "expected 1..65536");
    if (intermediate_size == 0 || intermediate_size > 262144) return bad("intermediate_size", intermediate_size, "expected 1..262144");
    if (num_hidden_layers == 0 || num_hidden_layers > 1024) return bad("num_hidden_layers", num_hidden_layers, "expected 1..1024");
    if (num_attention_heads == 0 || num_attention_heads > 1024) return bad("num_attention_heads", num_attention_heads, "expected 1..1024");
    if (num_key_value_heads == 0 || num_attention_heads % num_key_value_heads != 0 ||
        num_attention_heads / num_key_value_heads > 64) {
      return bad("num_key_value_heads", num_key_value_heads, "expected a divisor of num_attention_heads, at least 1/64 of it");
    }
    if (head_dim == 0 || head_dim % 2 != 0 || head_dim > 1024) return bad("head_dim", head_dim, "expected an even number up to 1024");
    if (!(rope_theta > 0.0f)) return make_error(ErrorCode::format, "qwen2 config: rope_theta = {} (expected > 0)", rope_theta);
    if (!(rms_norm_eps >= 0.0f)) return make_error(ErrorCode::format, "qwen2 config: rms_norm_eps = {} (expected >= 0)", rms_norm_eps);
    if (num_experts > 0) {
      if (num_experts > 1024) return bad("num_experts", num_experts, "expected 0..1024");
      if (num_experts_per_tok == 0 || num_experts_per_tok > num_experts) return bad("num_experts_per_tok", num_experts_per_tok, "expected 1..num_experts");
      if (moe_intermediate_size == 0 || moe_intermediate_size > 262144) return bad("moe_intermediate_size", moe_intermediate_size, "expected 1..262144");
      if (shared_expert_intermediate_size > 262144) return bad("shared_expert_intermediate_size", shared_expert_intermediate_size, "expected 0..262144");
    }
    return ok();
  }

  /// Reads a Hugging Face config.json (model_type qwen2 or qwen2_moe).
  static Result<Qwen2Config> from_hf_json(const nlohmann::json& json) {
    Qwen2Config config;
    const std::pair<const char*, size_t*> required[] = {
        {"vocab_size", &config.vocab_size},
        {"hidden_size", &config.hidden_size},
        {"intermediate_size", &config.intermediate_size},
        {"num_hidden_layers", &config.num_hidden_layers},
        {"num_attention_heads", &config.num_attention_heads},
        {"num_key_value_heads", &config.num_key_value_heads},
    };
    for (const auto& [key, target] : required) {
      const auto value = get_size(json, key);
      if (!value) return make_error(ErrorCode::format, "qwen2 config: field '{}' is missing or not a non-negative integer", key);
      *target = *value;
    }
    config.head_dim = get_size(json, "head_dim").value_or(config.num_attention_heads ? config.hidden_size / config.num_attention_heads : 0);
    config.rope_theta = get_float(json, "rope_theta").value_or(config.rope_theta);
    config.rms_norm_eps = get_float(json, "rms_norm_eps").value_or(config.rms_norm_eps);
    config.tie_word_embeddings = get_bool(json, "tie_word_embeddings").value_or(false);
    config.use_sliding_window = get_bool(json, "use_sliding_window").value_or(false);
    config.sliding_window = get_size(json, "sliding_window").value_or(0);
    config.max_window_layers = get_size(json, "max_window_layers").value_or(config.num_hidden_layers);
    config.max_position_embeddings = get_size(json, "max_position_embeddings").value_or(config.max_position_embeddings);
    config.bos_token_id = get_id(json, "bos_token_id");
    config.eos_token_id = get_id(json, "eos_token_id");
    config.num_experts = get_size(json, "num_experts").value_or(0);
    config.num_experts_per_tok = get_size(json, "num_experts_per_tok").value_or(0);
    config.moe_intermediate_size = get_size(json, "moe_intermediate_size").value_or(0);
    config.shared_expert_intermediate_size = get_size(json, "shared_expert_intermediate_size").value_or(0);
    config.norm_topk_prob = get_bool(json, "norm_topk_prob").value_or(false);
    config.decoder_sparse_step = get_size(json, "decoder_sparse_step").value_or(1);
    if (json.contains("mlp_only_layers") && json["mlp_only_layers"].is_array()) {
      for (const auto& layer : json["mlp_only_layers"]) {
        if (!layer.is_number_integer() || layer.get<int64_t>() < 0) return make_error(ErrorCode::format, "qwen2 config: mlp_only_layers holds {}", layer.dump());
        config.mlp_only_layers.push_back(layer.get<size_t>());
      }
    }
    auto valid = config.validate();
    if (!valid) return std::move(valid).error();
    return config;
  }

  /// Reads APR metadata (aprender's keys: hidden_size, num_layers, num_heads, ...; apr adds
  /// tie_word_embeddings, use_sliding_window, sliding_window, max_window_layers, token ids).
  static Result<Qwen2Config> from_apr_metadata(const nlohmann::json& metadata) {
    nlohmann::json hf = {
        {"vocab_size", metadata.value("vocab_size", nlohmann::json())},
        {"hidden_size", metadata.value("hidden_size", nlohmann::json())},
        {"intermediate_size", metadata.value("intermediate_size", nlohmann::json())},
        {"num_hidden_layers", metadata.value("num_layers", nlohmann::json())},
        {"num_attention_heads", metadata.value("num_heads", nlohmann::json())},
        {"num_key_value_heads", metadata.value("num_kv_heads", nlohmann::json())},
    };
    for (const char* key : {"head_dim", "rope_theta", "rms_norm_eps", "max_position_embeddings", "tie_word_embeddings",
                            "use_sliding_window", "sliding_window", "max_window_layers", "bos_token_id", "eos_token_id", "num_experts",
                            "num_experts_per_tok", "moe_intermediate_size", "shared_expert_intermediate_size", "norm_topk_prob",
                            "decoder_sparse_step", "mlp_only_layers"}) {
      if (metadata.contains(key) && !metadata[key].is_null()) hf[key] = metadata[key];
    }
    if (!hf.contains("tie_word_embeddings") && metadata.value("tied_embeddings", false)) hf["tie_word_embeddings"] = true;
    return from_hf_json(hf);
  }

 private:
  static std::optional<size_t> get_size(const nlohmann::json& json, const char* key) {
    if (!json.contains(key) || !json[key].is_number_integer() || json[key].get<int64_t>() < 0) return std::nullopt;
    return json[key].get<size_t>();
  }
  static std::optional<float> get_float(const nlohmann::json& json, const char* key) {
    if (!json.contains(key) || !json[key].is_number()) return std::nullopt;
    return json[key].get<float>();
  }
  static std::optional<bool> get_bool(const nlohmann::json& json, const char* key) {
    if (!json.contains(key) || !json[key].is_boolean()) return std::nullopt;
    return json[key].get<bool>();
  }
  static std::optional<int32_t> get_id(const nlohmann::json& json, const char* key) {
    if (!json.contains(key)) return std::nullopt;
    const auto& value = json[key];
    if (value.is_number_integer()) return value.get<int32_t>();
    if (value.is_array() && !value.empty() && value[0].is_number_integer()) return value[0].get<int32_t>();
    return std::nullopt;
  }
};

}  // namespace apr::models
