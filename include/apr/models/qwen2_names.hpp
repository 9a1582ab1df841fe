/// @file qwen2_names.hpp
/// @brief The Qwen2 family's tensor names in one table: Hugging Face (which APR files keep) and
/// llama.cpp's GGUF names (qwen2 and qwen2moe), and the GGUF metadata keys of a Qwen2 config.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/format/tensor_file.hpp"

namespace apr::models {

/// Hugging Face ↔ GGUF names of the tensors outside the layers.
inline constexpr std::array<std::pair<std::string_view, std::string_view>, 3> kQwen2GlobalNames{{
    {"model.embed_tokens.weight", "token_embd.weight"},
    {"model.norm.weight", "output_norm.weight"},
    {"lm_head.weight", "output.weight"},
}};

/// Hugging Face ↔ GGUF names inside layer N ("model.layers.N." ↔ "blk.N.").
inline constexpr std::array<std::pair<std::string_view, std::string_view>, 17> kQwen2LayerNames{{
    {"input_layernorm.weight", "attn_norm.weight"},
    {"self_attn.q_proj.weight", "attn_q.weight"},
    {"self_attn.q_proj.bias", "attn_q.bias"},
    {"self_attn.k_proj.weight", "attn_k.weight"},
    {"self_attn.k_proj.bias", "attn_k.bias"},
    {"self_attn.v_proj.weight", "attn_v.weight"},
    {"self_attn.v_proj.bias", "attn_v.bias"},
    {"self_attn.o_proj.weight", "attn_output.weight"},
    {"post_attention_layernorm.weight", "ffn_norm.weight"},
    {"mlp.gate_proj.weight", "ffn_gate.weight"},
    {"mlp.up_proj.weight", "ffn_up.weight"},
    {"mlp.down_proj.weight", "ffn_down.weight"},
    {"mlp.gate.weight", "ffn_gate_inp.weight"},
    {"mlp.shared_expert.gate_proj.weight", "ffn_gate_shexp.weight"},
    {"mlp.shared_expert.up_proj.weight", "ffn_up_shexp.weight"},
    {"mlp.shared_expert.down_proj.weight", "ffn_down_shexp.weight"},
    {"mlp.shared_expert_gate.weight", "ffn_gate_inp_shexp.weight"},
}};

/// Qwen2-MoE's routed experts: Hugging Face "mlp.experts.E.<name>" in layer N is slice E of
/// llama.cpp's stacked [experts, rows, cols] tensor "blk.N.<gguf name>".
inline constexpr std::array<std::pair<std::string_view, std::string_view>, 3> kQwen2ExpertNames{{
    {"gate_proj.weight", "ffn_gate_exps.weight"},
    {"up_proj.weight", "ffn_up_exps.weight"},
    {"down_proj.weight", "ffn_down_exps.weight"},
}};

/// Splits "<prefix>N.<rest>" into (N, rest); nothing when `name` does not have that form.
inline std::optional<std::pair<std::string, std::string_view>> split_layer_name(std::string_view name, std::string_view prefix) {
  if (!name.starts_with(prefix)) return std::nullopt;
  const std::string_view tail = name.substr(prefix.size());
  const size_t dot = tail.find('.');
  if (dot == 0 || dot == std::string_view::npos) return std::nullopt;
  for (char c : tail.substr(0, dot)) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  return std::pair{std::string(tail.substr(0, dot)), tail.substr(dot + 1)};
}

/// The GGUF name of Hugging Face tensor `hf_name`, or nothing when the table has no entry.
inline std::optional<std::string> qwen2_gguf_name(std::string_view hf_name) {
  for (const auto& [hf, gguf] : kQwen2GlobalNames) {
    if (hf == hf_name) return std::string(gguf);
  }
  if (auto layer = split_layer_name(hf_name, "model.layers.")) {
    for (const auto& [hf, gguf] : kQwen2LayerNames) {
      if (hf == layer->second) return fmt::format("blk.{}.{}", layer->first, gguf);
    }
  }
  return std::nullopt;
}

/// The Hugging Face name of GGUF tensor `gguf_name`, or nothing when the table has no entry.
inline std::optional<std::string> qwen2_hf_name(std::string_view gguf_name) {
  for (const auto& [hf, gguf] : kQwen2GlobalNames) {
    if (gguf == gguf_name) return std::string(hf);
  }
  if (auto layer = split_layer_name(gguf_name, "blk.")) {
    for (const auto& [hf, gguf] : kQwen2LayerNames) {
      if (gguf == layer->second) return fmt::format("model.layers.{}.{}", layer->first, hf);
    }
  }
  return std::nullopt;
}

/// A Hugging Face style config.json for the Qwen2 or Qwen2-MoE model in a GGUF file (llama.cpp's
/// qwen2.* / qwen2moe.* keys; the vocabulary from `<arch>.vocab_size` or token_embd's rows; tied when
/// there is no output.weight). llama.cpp's qwen2moe has no key for norm_topk_prob, decoder_sparse_step
/// or mlp_only_layers: every layer is sparse and the top-k weights are not renormalised, as in Qwen1.5-MoE.
inline Result<nlohmann::json> qwen2_config_from_gguf(const format::TensorFile& file) {
  const nlohmann::json& m = file.metadata();
  const std::string architecture = m.value("general.architecture", std::string());
  if (architecture != "qwen2" && architecture != "qwen2moe") {
    return make_error(ErrorCode::unsupported, "{}: GGUF architecture '{}' (apr reads qwen2 and qwen2moe GGUF files)", file.path(), architecture);
  }
  auto number = [&](std::string_view key) -> nlohmann::json {
    const std::string name = key.starts_with("tokenizer.") ? std::string(key) : architecture + "." + std::string(key);
    return m.contains(name) && m[name].is_number() ? m[name] : nlohmann::json();
  };
  nlohmann::json config = {{"model_type", architecture == "qwen2" ? "qwen2" : "qwen2_moe"},
                           {"hidden_size", number("embedding_length")},
                           {"num_hidden_layers", number("block_count")},
                           {"intermediate_size", number("feed_forward_length")},
                           {"num_attention_heads", number("attention.head_count")},
                           {"num_key_value_heads", number("attention.head_count_kv")},
                           {"tie_word_embeddings", file.find("output.weight") == nullptr}};
  if (config["num_key_value_heads"].is_null()) config["num_key_value_heads"] = config["num_attention_heads"];
  if (!number("rope.freq_base").is_null()) config["rope_theta"] = number("rope.freq_base");
  if (!number("attention.layer_norm_rms_epsilon").is_null()) config["rms_norm_eps"] = number("attention.layer_norm_rms_epsilon");
  if (!number("context_length").is_null()) config["max_position_embeddings"] = number("context_length");
  if (!number("attention.key_length").is_null()) config["head_dim"] = number("attention.key_length");
  if (architecture == "qwen2moe") {
    config["num_experts"] = number("expert_count");
    config["num_experts_per_tok"] = number("expert_used_count");
    config["moe_intermediate_size"] = number("expert_feed_forward_length");
    if (!number("expert_shared_feed_forward_length").is_null()) config["shared_expert_intermediate_size"] = number("expert_shared_feed_forward_length");
    if (config["intermediate_size"].is_null()) config["intermediate_size"] = config["moe_intermediate_size"];
  }
  config["vocab_size"] = number("vocab_size");
  if (config["vocab_size"].is_null()) {
    if (const TensorView* embedding = file.find("token_embd.weight"); embedding != nullptr && embedding->shape.ndim() == 2) {
      config["vocab_size"] = embedding->shape[0];
    }
  }
  for (std::string_view key : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id"}) {
    if (!number(key).is_null()) config[std::string_view(key).ends_with("bos_token_id") ? "bos_token_id" : "eos_token_id"] = number(key);
  }
  return config;
}

}  // namespace apr::models
