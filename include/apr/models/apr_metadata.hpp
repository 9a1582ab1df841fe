/// @file apr_metadata.hpp
/// @brief APR metadata for a model imported from a Hugging Face folder: aprender's fields from
/// config.json, and the artefacts the model needs (tokenizer, chat template, generation config).
#pragma once

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "apr/format/tensor_file.hpp"
#include "apr/models/load.hpp"
#include "apr/text/tokenizer.hpp"

namespace apr::models {

/// What an imported model carries besides its tensors.
struct ImportSources {
  nlohmann::json config;            ///< config.json
  nlohmann::json tokenizer_config;  ///< tokenizer_config.json (may be null)
  nlohmann::json generation_config; ///< generation_config.json (may be null)
  std::string tokenizer_json;       ///< tokenizer.json text (may be empty)
  std::string model_card;           ///< README.md: the model card (may be empty)
};

/// The `license:` scalar of a model card's YAML front matter (`---` lines around `key: value`
/// lines at the top, as the Hugging Face hub writes them); empty when there is none.
inline std::string model_card_license(std::string_view card) {
  const auto trim = [](std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
  };
  size_t position = 0;
  const auto next_line = [&]() -> std::optional<std::string_view> {
    if (position >= card.size()) return std::nullopt;
    const size_t end = std::min(card.find('\n', position), card.size());
    const std::string_view line = card.substr(position, end - position);
    position = end + 1;
    return trim(line);
  };
  if (next_line() != std::optional<std::string_view>("---")) return {};
  while (auto line = next_line()) {
    if (*line == "---") break;
    if (!line->starts_with("license:")) continue;
    std::string_view value = trim(line->substr(8));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) value = value.substr(1, value.size() - 2);
    return std::string(value);
  }
  return {};
}

/// Reads config.json, tokenizer_config.json, generation_config.json, tokenizer.json and the
/// model card README.md from `folder` (all but config.json optional).
inline Result<ImportSources> read_import_sources(const std::filesystem::path& folder) {
  ImportSources sources;
  auto config = read_json_file(folder / "config.json");
  if (!config) return std::move(config).error();
  sources.config = std::move(config).value();
  std::error_code ec;
  if (std::filesystem::exists(folder / "tokenizer_config.json", ec)) {
    auto json = read_json_file(folder / "tokenizer_config.json");
    if (!json) return std::move(json).error();
    sources.tokenizer_config = std::move(json).value();
  }
  if (std::filesystem::exists(folder / "generation_config.json", ec)) {
    auto json = read_json_file(folder / "generation_config.json");
    if (!json) return std::move(json).error();
    sources.generation_config = std::move(json).value();
  }
  for (auto [name, text] : {std::pair{"tokenizer.json", &sources.tokenizer_json}, std::pair{"README.md", &sources.model_card}}) {
    if (!std::filesystem::exists(folder / name, ec)) continue;
    auto contents = text::read_text_file((folder / name).string());
    if (!contents) return std::move(contents).error();
    *text = std::move(contents).value();
  }
  return sources;
}

/// APR metadata (aprender's fields plus apr's custom keys) for `file` imported from `sources`.
inline nlohmann::json apr_metadata_for_import(const format::TensorFile& file, const ImportSources& sources, const std::string& name,
                                              const std::string& source) {
  const auto& c = sources.config;
  auto get = [&](const char* key) { return c.contains(key) ? c[key] : nlohmann::json(nullptr); };
  uint64_t params = 0, bytes = 0;
  for (const auto& t : file.tensors()) {
    params += t.numel();
    bytes += t.bytes.size();
  }
  const std::string architecture = c.value("model_type", std::string());
  nlohmann::json m = {
      {"model_type", architecture}, {"name", name}, {"source", source}, {"original_format", std::string(file.format())},
      {"total_size", bytes}, {"param_count", params}, {"architecture", architecture},
      {"hidden_size", get("hidden_size")}, {"num_layers", get("num_hidden_layers")}, {"num_heads", get("num_attention_heads")},
      {"num_kv_heads", get("num_key_value_heads")}, {"vocab_size", get("vocab_size")}, {"intermediate_size", get("intermediate_size")},
      {"max_position_embeddings", get("max_position_embeddings")}, {"rope_theta", get("rope_theta")},
      {"rms_norm_eps", get("rms_norm_eps")}, {"head_dim", get("head_dim")}, {"num_experts", get("num_experts")},
      {"num_experts_per_tok", get("num_experts_per_tok")}, {"moe_intermediate_size", get("moe_intermediate_size")}};
  if (architecture == "qwen2" || architecture == "qwen2_moe") m["rope_type"] = 2;
  if (architecture == "whisper") {  // WhisperConfig::from_apr_metadata reads these names first
    for (const char* key : {"d_model", "encoder_layers", "encoder_attention_heads", "decoder_layers", "decoder_attention_heads",
                            "encoder_ffn_dim", "decoder_ffn_dim", "num_mel_bins", "max_source_positions", "max_target_positions"}) {
      if (c.contains(key) && !c[key].is_null()) m[key] = c[key];
    }
  }
  for (const char* key : {"tie_word_embeddings", "use_sliding_window", "sliding_window", "max_window_layers", "bos_token_id", "eos_token_id",
                          "shared_expert_intermediate_size", "norm_topk_prob", "decoder_sparse_step", "mlp_only_layers"}) {
    if (c.contains(key) && !c[key].is_null()) m[key] = c[key];
  }
  const auto& t = sources.tokenizer_config;
  if (t.is_object()) {
    if (t.contains("chat_template") && t["chat_template"].is_string()) {
      m["chat_template"] = t["chat_template"];
      if (t["chat_template"].get<std::string>().find("<|im_start|>") != std::string::npos) m["chat_format"] = "chatml";
    }
    nlohmann::json special = nlohmann::json::object();
    for (const auto& [key, field] : {std::pair{"bos_token", "bos_token"}, std::pair{"eos_token", "eos_token"},
                                     std::pair{"unk_token", "unk_token"}, std::pair{"pad_token", "pad_token"}}) {
      special[field] = t.contains(key) && t[key].is_string() ? t[key] : nlohmann::json(nullptr);
    }
    special["im_start_token"] = m.value("chat_format", std::string()) == "chatml" ? nlohmann::json("<|im_start|>") : nlohmann::json(nullptr);
    special["im_end_token"] = m.value("chat_format", std::string()) == "chatml" ? nlohmann::json("<|im_end|>") : nlohmann::json(nullptr);
    m["special_tokens"] = special;
  }
  if (!sources.tokenizer_json.empty()) m["tokenizer.json"] = sources.tokenizer_json;
  if (!sources.generation_config.is_null()) m["generation_config"] = sources.generation_config;
  if (!sources.model_card.empty()) {
    m["model_card"] = sources.model_card;
    if (auto license = model_card_license(sources.model_card); !license.empty()) m["license"] = license;
  }
  return m;
}

}  // namespace apr::models
