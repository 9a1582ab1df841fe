/// @file whisper_config.hpp
/// @brief WhisperConfig: the dims of a Whisper model (tiny … large-v3 differ only in these), from a
/// Hugging Face config.json or APR metadata.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

#include "apr/core/result.hpp"

namespace apr::models {

/// Whisper hyper-parameters (Hugging Face names).
struct WhisperConfig {
  size_t d_model = 0;                  ///< width of encoder and decoder
  size_t encoder_layers = 0;           ///< encoder blocks
  size_t encoder_attention_heads = 0;  ///< encoder heads
  size_t decoder_layers = 0;           ///< decoder blocks
  size_t decoder_attention_heads = 0;  ///< decoder heads
  size_t encoder_ffn_dim = 0;          ///< encoder MLP width (4 × d_model in every release)
  size_t decoder_ffn_dim = 0;          ///< decoder MLP width
  size_t num_mel_bins = 80;            ///< mel bands of the input (128 for large-v3)
  size_t max_source_positions = 1500;  ///< encoder positions: 30 s of audio after the stride-2 conv
  size_t max_target_positions = 448;   ///< decoder positions (text context)
  size_t vocab_size = 0;               ///< tokens (51865 multilingual, 51864 English-only, 51866 large-v3)
  float layer_norm_eps = 1e-5f;        ///< LayerNorm epsilon (PyTorch's default)

  /// Mel frames the encoder takes: two per encoder position (3000 for 30 s).
  [[nodiscard]] size_t input_frames() const noexcept { return 2 * max_source_positions; }
  /// Values per encoder head.
  [[nodiscard]] size_t encoder_head_dim() const noexcept { return d_model / encoder_attention_heads; }
  /// Values per decoder head.
  [[nodiscard]] size_t decoder_head_dim() const noexcept { return d_model / decoder_attention_heads; }
  /// True for models with language tokens (vocabulary ≥ 51865).
  [[nodiscard]] bool is_multilingual() const noexcept { return vocab_size >= 51865; }
  /// Language tokens in the vocabulary: 100 for large-v3's 51866 ids, else 99.
  [[nodiscard]] size_t num_languages() const noexcept { return vocab_size >= 51866 ? 100 : 99; }

  /// Checks that the dims are positive, consistent and not absurd; names the offending field.
  [[nodiscard]] Result<void> validate() const {
    auto bad = [](std::string_view field, size_t value, std::string_view expected) {
      return make_error(ErrorCode::format, "whisper config: {} = {} ({})", field, value, expected);
    };
    if (d_model == 0 || d_model > 16384) return bad("d_model", d_model, "expected 1..16384");
    if (encoder_layers == 0 || encoder_layers > 256) return bad("encoder_layers", encoder_layers, "expected 1..256");
    if (decoder_layers == 0 || decoder_layers > 256) return bad("decoder_layers", decoder_layers, "expected 1..256");
    if (encoder_attention_heads == 0 || d_model % encoder_attention_heads != 0) {
      return bad("encoder_attention_heads", encoder_attention_heads, "expected a divisor of d_model");
    }
    if (decoder_attention_heads == 0 || d_model % decoder_attention_heads != 0) {
      return bad("decoder_attention_heads", decoder_attention_heads, "expected a divisor of d_model");
    }
    if (encoder_ffn_dim == 0 || encoder_ffn_dim > 65536) return bad("encoder_ffn_dim", encoder_ffn_dim, "expected 1..65536");
    if (decoder_ffn_dim == 0 || decoder_ffn_dim > 65536) return bad("decoder_ffn_dim", decoder_ffn_dim, "expected 1..65536");
    if (num_mel_bins == 0 || num_mel_bins > 1024) return bad("num_mel_bins", num_mel_bins, "expected 1..1024");
    if (max_source_positions == 0 || max_source_positions > 65536) return bad("max_source_positions", max_source_positions, "expected 1..65536");
    if (max_target_positions < 4 || max_target_positions > 65536) return bad("max_target_positions", max_target_positions, "expected 4..65536");
    if (vocab_size == 0 || vocab_size > (size_t{1} << 24)) return bad("vocab_size", vocab_size, "expected 1..16777216");
    return ok();
  }

  /// Reads a Hugging Face config.json (model_type whisper).
  static Result<WhisperConfig> from_hf_json(const nlohmann::json& json) {
    WhisperConfig config;
    const std::pair<const char*, size_t*> required[] = {
        {"d_model", &config.d_model},
        {"encoder_layers", &config.encoder_layers},
        {"encoder_attention_heads", &config.encoder_attention_heads},
        {"decoder_layers", &config.decoder_layers},
        {"decoder_attention_heads", &config.decoder_attention_heads},
        {"vocab_size", &config.vocab_size},
    };
    for (const auto& [key, target] : required) {
      const auto value = get_size(json, key);
      if (!value) return make_error(ErrorCode::format, "whisper config: field '{}' is missing or not a non-negative integer", key);
      *target = *value;
    }
    config.encoder_ffn_dim = get_size(json, "encoder_ffn_dim").value_or(4 * config.d_model);
    config.decoder_ffn_dim = get_size(json, "decoder_ffn_dim").value_or(4 * config.d_model);
    config.num_mel_bins = get_size(json, "num_mel_bins").value_or(config.num_mel_bins);
    config.max_source_positions = get_size(json, "max_source_positions").value_or(config.max_source_positions);
    config.max_target_positions = get_size(json, "max_target_positions").value_or(config.max_target_positions);
    auto valid = config.validate();
    if (!valid) return std::move(valid).error();
    return config;
  }

  /// Reads APR metadata: the Hugging Face keys when present, else aprender's generic ones
  /// (hidden_size, num_layers and num_heads for both stacks, intermediate_size, vocab_size).
  static Result<WhisperConfig> from_apr_metadata(const nlohmann::json& metadata) {
    auto pick = [&](const char* hf_key, const char* apr_key) {
      if (metadata.contains(hf_key) && !metadata[hf_key].is_null()) return metadata[hf_key];
      return metadata.value(apr_key, nlohmann::json());
    };
    nlohmann::json hf = {
        {"d_model", pick("d_model", "hidden_size")},
        {"encoder_layers", pick("encoder_layers", "num_layers")},
        {"encoder_attention_heads", pick("encoder_attention_heads", "num_heads")},
        {"decoder_layers", pick("decoder_layers", "num_layers")},
        {"decoder_attention_heads", pick("decoder_attention_heads", "num_heads")},
        {"vocab_size", pick("vocab_size", "vocab_size")},
        {"encoder_ffn_dim", pick("encoder_ffn_dim", "intermediate_size")},
        {"decoder_ffn_dim", pick("decoder_ffn_dim", "intermediate_size")},
    };
    for (const char* key : {"num_mel_bins", "max_source_positions", "max_target_positions"}) {
      if (metadata.contains(key) && !metadata[key].is_null()) hf[key] = metadata[key];
    }
    for (auto it = hf.begin(); it != hf.end();) it = it->is_null() ? hf.erase(it) : std::next(it);
    return from_hf_json(hf);
  }

 private:
  static std::optional<size_t> get_size(const nlohmann::json& json, const char* key) {
    if (!json.contains(key) || !json[key].is_number_integer() || json[key].get<int64_t>() < 0) return std::nullopt;
    return json[key].get<size_t>();
  }
};

}  // namespace apr::models
