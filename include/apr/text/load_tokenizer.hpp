/// @file load_tokenizer.hpp
/// @brief load_tokenizer(): a tokenizer from a tokenizer.json, a model folder (tokenizer.json or
/// encoder.json + vocab.bpe), or a .tiktoken rank file (Whisper's special tokens appended).
#pragma once

#include <filesystem>
#include <string>

#include "apr/core/result.hpp"
#include "apr/text/tokenizer.hpp"
#include "apr/text/whisper_tokens.hpp"

namespace apr::text {

/// Loads the tokenizer at `path` (detected by content and file names).
inline Result<Tokenizer> load_tokenizer(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) return make_error(ErrorCode::not_found, "{}: no such file or directory", path);
  if (fs::is_directory(path, ec)) {
    const fs::path dir(path);
    if (fs::exists(dir / "tokenizer.json", ec)) return load_tokenizer((dir / "tokenizer.json").string());
    if (fs::exists(dir / "encoder.json", ec) && fs::exists(dir / "vocab.bpe", ec)) {
      return Tokenizer::from_gpt2_files((dir / "encoder.json").string(), (dir / "vocab.bpe").string());
    }
    for (const char* name : {"multilingual.tiktoken", "gpt2.tiktoken"}) {
      if (fs::exists(dir / name, ec)) return load_tokenizer((dir / name).string());
    }
    return make_error(ErrorCode::not_found, "{}: no tokenizer.json, encoder.json + vocab.bpe, or .tiktoken file in this folder", path);
  }
  auto text = read_text_file(path);
  if (!text) return std::move(text).error();
  const size_t first = text->find_first_not_of(" \t\r\n");
  if (first != std::string::npos && (*text)[first] == '{') return Tokenizer::from_tokenizer_json(*text, path);
  // a tiktoken rank file: "base64 rank" lines; Whisper's specials follow the last rank
  size_t ranks = 0;
  for (char c : *text) ranks += c == '\n' ? 1 : 0;
  if (!text->empty() && text->back() != '\n') ++ranks;
  const size_t languages = fs::path(path).filename().string().find("v3") != std::string::npos ? 100 : 99;
  return Tokenizer::from_tiktoken(*text, whisper_special_tokens(static_cast<int32_t>(ranks), languages), kGpt2Pattern, path);
}

}  // namespace apr::text
