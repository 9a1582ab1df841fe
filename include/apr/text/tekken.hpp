/// @file tekken.hpp
/// @brief Mistral's Tekken tokenizer (`tekken.json`): tiktoken-style byte-level BPE ranks stored
/// as base64 bytes, with the special tokens first. Special token i has id i (i below
/// `default_num_special_tokens`; undeclared ones are `<SPECIAL_i>`), vocabulary rank r has id
/// r + default_num_special_tokens, and only the first `default_vocab_size -
/// default_num_special_tokens` ranks are used, as mistral-common's Tekkenizer does. Special
/// tokens are control tokens: decode them with skip_special to drop them (Tekken's default).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/core/result.hpp"
#include "apr/text/tokenizer.hpp"

namespace apr::text {

/// The special tokens of Tekken files that do not list theirs (versions up to v7), by id.
inline constexpr std::string_view kTekkenLegacySpecials[] = {
    "<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]",
    "[IMG]", "<pad>", "[IMG_BREAK]", "[IMG_END]", "[PREFIX]", "[MIDDLE]", "[SUFFIX]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]", "[TOOL_CONTENT]"};

/// A tokenizer from the text of a tekken.json (`source` names it in errors).
inline Result<Tokenizer> tekken_from_json(std::string_view json_text, const std::string& source) {
  const auto json = nlohmann::json::parse(json_text, nullptr, false);
  if (json.is_discarded() || !json.is_object()) return make_error(ErrorCode::format, "{}: not a JSON object", source);
  if (!json.contains("config") || !json["config"].is_object()) return make_error(ErrorCode::format, "{}: no 'config' object", source);
  if (!json.contains("vocab") || !json["vocab"].is_array()) return make_error(ErrorCode::format, "{}: no 'vocab' array", source);
  const auto& config = json["config"];
  for (const char* field : {"default_vocab_size", "default_num_special_tokens"}) {
    if (!config.contains(field) || !config[field].is_number_unsigned()) {
      return make_error(ErrorCode::format, "{}: config.{} must be a non-negative integer", source, field);
    }
  }
  if (!config.contains("pattern") || !config["pattern"].is_string()) return make_error(ErrorCode::format, "{}: config.pattern must be a string", source);
  const auto vocab_size = config["default_vocab_size"].get<uint64_t>();
  const auto num_special = config["default_num_special_tokens"].get<uint64_t>();
  const auto& vocab = json["vocab"];
  if (num_special > vocab_size || vocab_size > (uint64_t{1} << 24) || vocab_size - num_special > vocab.size()) {
    return make_error(ErrorCode::format, "{}: config.default_vocab_size {} with {} special tokens needs {} vocab entries; the file has {}", source,
                      vocab_size, num_special, vocab_size - std::min(num_special, vocab_size), vocab.size());
  }
  const size_t ranks = vocab_size - num_special;

  // the ranks as tiktoken lines, "base64 id", with ids after the special tokens
  std::string lines;
  std::vector<bool> seen(ranks, false);
  for (size_t i = 0; i < ranks; ++i) {
    const auto& entry = vocab[i];
    if (!entry.is_object() || !entry.contains("rank") || !entry["rank"].is_number_unsigned() || !entry.contains("token_bytes") ||
        !entry["token_bytes"].is_string()) {
      return make_error(ErrorCode::format, "{}: vocab[{}] must be an object with an integer 'rank' and base64 'token_bytes'", source, i);
    }
    const auto rank = entry["rank"].get<uint64_t>();
    if (rank >= ranks || seen[rank]) {
      return make_error(ErrorCode::format, "{}: vocab[{}].rank {} is {} (expected each of 0..{} once)", source, i, rank,
                        rank >= ranks ? "out of range" : "repeated", ranks - 1);
    }
    seen[rank] = true;
    lines += fmt::format("{} {}\n", entry["token_bytes"].get<std::string>(), rank + num_special);
  }

  std::vector<std::string> names(num_special);
  if (json.contains("special_tokens") && !json["special_tokens"].is_null()) {
    const auto& specials = json["special_tokens"];
    if (!specials.is_array()) return make_error(ErrorCode::format, "{}: 'special_tokens' must be an array", source);
    for (size_t i = 0; i < specials.size(); ++i) {
      const auto& special = specials[i];
      if (!special.is_object() || !special.contains("rank") || !special["rank"].is_number_unsigned() || !special.contains("token_str") ||
          !special["token_str"].is_string()) {
        return make_error(ErrorCode::format, "{}: special_tokens[{}] must be an object with an integer 'rank' and a 'token_str'", source, i);
      }
      const auto rank = special["rank"].get<uint64_t>();
      if (rank >= num_special || !names[rank].empty()) {
        return make_error(ErrorCode::format, "{}: special_tokens[{}].rank {} is {} (expected each below {} once)", source, i, rank,
                          rank >= num_special ? "out of range" : "repeated", num_special);
      }
      names[rank] = special["token_str"].get<std::string>();
    }
  } else {
    for (size_t i = 0; i < std::size(kTekkenLegacySpecials) && i < num_special; ++i) names[i] = std::string(kTekkenLegacySpecials[i]);
  }
  std::vector<AddedToken> added;
  added.reserve(num_special);
  for (size_t i = 0; i < num_special; ++i) {
    added.push_back({static_cast<int32_t>(i), names[i].empty() ? fmt::format("<SPECIAL_{}>", i) : names[i], true});
  }
  return Tokenizer::from_tiktoken(lines, std::move(added), config["pattern"].get<std::string>(), source);
}

/// A tokenizer from the tekken.json at `path`.
inline Result<Tokenizer> load_tekken(const std::string& path) {
  auto text = read_text_file(path);
  if (!text) return std::move(text).error();
  return tekken_from_json(*text, path);
}

/// True for a file name Mistral uses for Tekken tokenizers: it contains "tekken" and ends in ".json".
inline bool is_tekken_file_name(std::string_view name) {
  const size_t slash = name.find_last_of('/');
  const std::string_view file = slash == std::string_view::npos ? name : name.substr(slash + 1);
  return file.find("tekken") != std::string_view::npos && file.ends_with(".json");
}

}  // namespace apr::text
