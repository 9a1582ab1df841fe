/// @file model_metadata.hpp
/// @brief ModelMetadata: typed, null-safe accessors over an APR file's metadata JSON (aprender's
/// fields, apr's artefacts such as the model card), so callers never index raw JSON by hand.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace apr::format {

/// The `quantization` block of APR metadata.
struct QuantizationInfo {
  std::string quant_type;                 ///< e.g. "Q4_0", "Q8_0", "F16"
  std::optional<uint32_t> bits;           ///< bits per weight (null in the file: absent)
  std::optional<uint32_t> block_size;     ///< values per block; absent for unblocked dtypes
  bool symmetric = true;                  ///< whether the scales are zero-centred
};

/// A read-only typed view of APR metadata; every accessor is empty when the key is absent, null
/// or of another JSON type.
class ModelMetadata {
 public:
  /// Views `json` (which must outlive the view).
  explicit ModelMetadata(const nlohmann::json& json) noexcept : json_(&json) {}

  /// `model_type`, e.g. "qwen2", "whisper".
  [[nodiscard]] std::optional<std::string> model_type() const { return string("model_type"); }
  /// `architecture` (falls back to `model_type`, as aprender writes both).
  [[nodiscard]] std::optional<std::string> architecture() const {
    auto value = string("architecture");
    return value ? value : model_type();
  }
  /// `name`.
  [[nodiscard]] std::optional<std::string> name() const { return string("name"); }
  /// `description`.
  [[nodiscard]] std::optional<std::string> description() const { return string("description"); }
  /// `author` (the creator).
  [[nodiscard]] std::optional<std::string> author() const { return string("author"); }
  /// `version`.
  [[nodiscard]] std::optional<std::string> version() const { return string("version"); }
  /// `license`: the SPDX identifier (the full license block is `license_block`, apr_license.hpp).
  [[nodiscard]] std::optional<std::string> license() const { return string("license"); }
  /// `source`, e.g. "hf://Qwen/Qwen2-0.5B-Instruct".
  [[nodiscard]] std::optional<std::string> source() const { return string("source"); }
  /// `created_at` (ISO 8601).
  [[nodiscard]] std::optional<std::string> created_at() const { return string("created_at"); }
  /// `model_card`: the Markdown model card (a Hugging Face README.md, front matter included).
  [[nodiscard]] std::optional<std::string> model_card() const { return string("model_card"); }
  /// `chat_template` (Jinja text).
  [[nodiscard]] std::optional<std::string> chat_template() const { return string("chat_template"); }
  /// `param_count`.
  [[nodiscard]] std::optional<uint64_t> param_count() const { return unsigned_integer("param_count"); }
  /// `total_size`: bytes of tensor data.
  [[nodiscard]] std::optional<uint64_t> total_size() const { return unsigned_integer("total_size"); }

  /// `quantization`, when the block is present with a string `quant_type`.
  [[nodiscard]] std::optional<QuantizationInfo> quantization() const {
    const nlohmann::json* block = field("quantization");
    if (block == nullptr || !block->is_object()) return std::nullopt;
    const ModelMetadata inner(*block);
    auto type = inner.string("quant_type");
    if (!type) return std::nullopt;
    QuantizationInfo info{*type, {}, {}, true};
    if (auto bits = inner.unsigned_integer("bits"); bits && *bits <= UINT32_MAX) info.bits = static_cast<uint32_t>(*bits);
    if (auto block_size = inner.unsigned_integer("block_size"); block_size && *block_size <= UINT32_MAX) {
      info.block_size = static_cast<uint32_t>(*block_size);
    }
    if (const nlohmann::json* symmetric = inner.field("symmetric"); symmetric != nullptr && symmetric->is_boolean()) info.symmetric = symmetric->get<bool>();
    return info;
  }

  /// Any key's raw JSON (apr's free-form extras, e.g. "generation_config"); nullptr when absent or null.
  [[nodiscard]] const nlohmann::json* field(std::string_view key) const {
    if (!json_->is_object()) return nullptr;
    const auto it = json_->find(key);
    return it == json_->end() || it->is_null() ? nullptr : &*it;
  }

  /// The string at `key`, if it is one.
  [[nodiscard]] std::optional<std::string> string(std::string_view key) const {
    const nlohmann::json* value = field(key);
    if (value == nullptr || !value->is_string()) return std::nullopt;
    return value->get<std::string>();
  }

  /// The non-negative integer at `key`, if it is one.
  [[nodiscard]] std::optional<uint64_t> unsigned_integer(std::string_view key) const {
    const nlohmann::json* value = field(key);
    if (value == nullptr || !value->is_number_integer()) return std::nullopt;
    if (value->is_number_unsigned()) return value->get<uint64_t>();
    const int64_t signed_value = value->get<int64_t>();
    if (signed_value < 0) return std::nullopt;
    return static_cast<uint64_t>(signed_value);
  }

 private:
  const nlohmann::json* json_;
};

}  // namespace apr::format
