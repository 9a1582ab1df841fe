/// @file gguf_tokenizer.hpp
/// @brief tokenizer_json_from_gguf(): the tokenizer.json a GGUF file's tokenizer.ggml.* keys
/// describe (llama.cpp's "gpt2" byte-level BPE: tokens by id, token types, merges, pre-tokenizer
/// name), so the same Tokenizer loads from GGUF files and Hugging Face folders.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "apr/core/result.hpp"
#include "apr/text/pretokenizer.hpp"

namespace apr::text {

/// llama.cpp's token types (tokenizer.ggml.token_type, llama_token_type).
enum class GgufTokenType : int32_t {
  normal = 1,        ///< an ordinary vocabulary entry
  unknown = 2,       ///< the unknown token
  control = 3,       ///< a special token (parsed only on request, dropped by skip_special)
  user_defined = 4,  ///< an added token matched in raw text, not special
  unused = 5,        ///< padding up to the embedding's row count
  byte = 6,          ///< a byte fallback token
};

/// The split pattern of llama.cpp's tokenizer.ggml.pre name ("qwen2", or "gpt-2"/"default"),
/// or nothing for pre-tokenizers apr does not know.
constexpr std::optional<std::string_view> gguf_pre_tokenizer_pattern(std::string_view pre) {
  if (pre == "qwen2") return kQwen2Pattern;
  if (pre == "gpt-2" || pre == "default") return kGpt2Pattern;
  return std::nullopt;
}

/// The tokenizer.json (BPE model, added tokens, normaliser, Split pre-tokenizer) equivalent to
/// the tokenizer.ggml.* keys of GGUF `metadata` (as GgufFile::metadata() gives them); `source`
/// names the file in errors. Control tokens become special added tokens, user-defined ones
/// plain added tokens, unused (padding) ids are left out.
inline Result<nlohmann::json> tokenizer_json_from_gguf(const nlohmann::json& metadata, std::string_view source) {
  auto fail = [&](std::string_view what) { return make_error(ErrorCode::format, "{}: {}", source, what); };
  const std::string model = metadata.value("tokenizer.ggml.model", std::string());
  if (model.empty()) return make_error(ErrorCode::not_found, "{}: no tokenizer.ggml.model key (the file carries no tokenizer)", source);
  if (model != "gpt2") {
    return make_error(ErrorCode::unsupported, "{}: tokenizer.ggml.model '{}' (apr reads byte-level BPE, 'gpt2')", source, model);
  }
  const std::string pre = metadata.value("tokenizer.ggml.pre", std::string("default"));
  const auto pattern = gguf_pre_tokenizer_pattern(pre);
  if (!pattern) return make_error(ErrorCode::unsupported, "{}: tokenizer.ggml.pre '{}' (apr knows qwen2, gpt-2 and default)", source, pre);
  const auto string_array = [&](const char* key) { return metadata.contains(key) && metadata[key].is_array() ? &metadata[key] : nullptr; };
  const nlohmann::json* tokens = string_array("tokenizer.ggml.tokens");
  const nlohmann::json* merges = string_array("tokenizer.ggml.merges");
  const nlohmann::json* types = string_array("tokenizer.ggml.token_type");
  if (tokens == nullptr) return fail("tokenizer.ggml.tokens must be an array of strings");
  if (merges == nullptr) return fail("tokenizer.ggml.merges must be an array of strings");
  if (types != nullptr && types->size() != tokens->size()) {
    return fail(fmt::format("tokenizer.ggml.token_type has {} entries for {} tokens", types->size(), tokens->size()));
  }
  nlohmann::json vocab = nlohmann::json::object();
  nlohmann::json added = nlohmann::json::array();
  for (size_t id = 0; id < tokens->size(); ++id) {
    const auto& token = (*tokens)[id];
    if (!token.is_string()) return fail(fmt::format("tokenizer.ggml.tokens[{}] is not a string", id));
    auto type = GgufTokenType::normal;
    if (types != nullptr) {
      if (!(*types)[id].is_number_integer()) return fail(fmt::format("tokenizer.ggml.token_type[{}] is not an integer", id));
      type = static_cast<GgufTokenType>((*types)[id].get<int32_t>());
    }
    if (type == GgufTokenType::unused) continue;
    if (type == GgufTokenType::control || type == GgufTokenType::user_defined) {
      added.push_back({{"id", id}, {"content", token}, {"special", type == GgufTokenType::control}});
    } else {
      vocab[token.get<std::string>()] = id;
    }
  }
  for (size_t rank = 0; rank < merges->size(); ++rank) {
    if (!(*merges)[rank].is_string()) return fail(fmt::format("tokenizer.ggml.merges[{}] is not a string", rank));
  }
  nlohmann::json json = {{"model", {{"type", "BPE"}, {"vocab", std::move(vocab)}, {"merges", *merges}}},
                         {"added_tokens", std::move(added)},
                         {"pre_tokenizer", {{"type", "Split"}, {"pattern", {{"Regex", std::string(*pattern)}}}, {"behavior", "Isolated"}}},
                         {"decoder", {{"type", "ByteLevel"}}}};
  // Qwen2's own tokenizer.json composes text to NFC first; llama.cpp's "qwen2" names that tokenizer
  if (pre == "qwen2") json["normalizer"] = {{"type", "NFC"}};
  return json;
}

}  // namespace apr::text
