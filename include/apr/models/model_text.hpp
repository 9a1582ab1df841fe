/// @file model_text.hpp
/// @brief The text side of a loaded language model: its tokenizer (carried in the file's
/// metadata or beside it), its chat template and the token ids that end a reply.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "apr/models/load.hpp"
#include "apr/text/chat_template.hpp"
#include "apr/text/load_tokenizer.hpp"

namespace apr::models {

/// The tokenizer of `loaded`: `explicit_path` when given, else the tokenizer.json its file
/// carries, else the tokenizer files in its folder.
inline Result<text::Tokenizer> tokenizer_for(const LoadedModel& loaded, const std::string& explicit_path = {}) {
  if (explicit_path.empty() && !loaded.tokenizer_json.empty()) {
    return text::Tokenizer::from_tokenizer_json(loaded.tokenizer_json, loaded.source + " (metadata tokenizer.json)");
  }
  const std::string path = explicit_path.empty() ? loaded.directory : explicit_path;
  if (path.empty()) return make_error(ErrorCode::not_found, "{}: no tokenizer found; pass one explicitly", loaded.source);
  return text::load_tokenizer(path);
}

/// The chat template of `loaded`: the one its file carries, else tokenizer_config.json's
/// beside it, else plain ChatML.
inline Result<text::ChatTemplate> chat_template_for(const LoadedModel& loaded) {
  if (!loaded.chat_template.empty()) return text::ChatTemplate::from_jinja(loaded.chat_template);
  const auto config = read_json_file(std::filesystem::path(loaded.directory) / "tokenizer_config.json");
  if (config && config->contains("chat_template") && (*config)["chat_template"].is_string()) {
    return text::ChatTemplate::from_jinja((*config)["chat_template"].get<std::string>());
  }
  return text::ChatTemplate();
}

/// Ids that end generation: the config's eos_token_id (one or a list) plus, when `tokenizer` is
/// given, its end-of-turn and end-of-text tokens.
inline std::vector<int32_t> stop_ids_for(const LoadedModel& loaded, const text::Tokenizer* tokenizer) {
  std::vector<int32_t> ids;
  if (loaded.config.contains("eos_token_id")) {
    const auto& eos = loaded.config["eos_token_id"];
    if (eos.is_number_integer()) ids.push_back(eos.get<int32_t>());
    if (eos.is_array()) {
      for (const auto& id : eos) {
        if (id.is_number_integer()) ids.push_back(id.get<int32_t>());
      }
    }
  }
  if (tokenizer != nullptr) {
    for (const char* name : {"<|im_end|>", "<|endoftext|>"}) {
      if (auto id = tokenizer->token_to_id(name)) ids.push_back(*id);
    }
  }
  return ids;
}

}  // namespace apr::models
