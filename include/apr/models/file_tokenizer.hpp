/// @file file_tokenizer.hpp
/// @brief load_model_tokenizer(): the tokenizer a model file carries (APR metadata, GGUF
/// tokenizer.ggml.* keys) or has beside it, found without loading the model's weights.
#pragma once

#include <filesystem>
#include <string>

#include "apr/format/detect.hpp"
#include "apr/text/gguf_tokenizer.hpp"
#include "apr/text/load_tokenizer.hpp"

namespace apr::models {

/// The tokenizer of the model at `path`: a folder's tokenizer files (or its model.apr's), an APR
/// file's metadata tokenizer.json, a GGUF file's tokenizer.ggml.* keys, the folder of a
/// .safetensors file, or `path` itself when it is a tokenizer.json or .tiktoken file.
inline Result<text::Tokenizer> load_model_tokenizer(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) return make_error(ErrorCode::not_found, "{}: no such file or directory", path);
  if (fs::is_directory(path, ec)) {
    auto in_folder = text::load_tokenizer(path);
    if (in_folder || !fs::exists(fs::path(path) / "model.apr", ec)) return in_folder;
    return load_model_tokenizer((fs::path(path) / "model.apr").string());
  }
  auto format = format::detect_format(path);
  if (!format) return std::move(format).error();
  const std::string folder = fs::path(path).parent_path().string();
  auto beside = [&](std::string_view what) -> Result<text::Tokenizer> {
    auto tokenizer = text::load_tokenizer(folder.empty() ? "." : folder);
    if (!tokenizer) return make_error(ErrorCode::not_found, "{}: {} and no tokenizer files are beside it", path, what);
    return tokenizer;
  };
  switch (*format) {
    case format::FileFormat::apr_v2: {
      auto file = format::AprFile::open(path);
      if (!file) return std::move(file).error();
      const auto& metadata = (*file)->metadata();
      if (metadata.contains("tokenizer.json") && metadata["tokenizer.json"].is_string()) {
        return text::Tokenizer::from_tokenizer_json(metadata["tokenizer.json"].get<std::string>(), path + " (metadata tokenizer.json)");
      }
      return beside("its metadata carries no tokenizer.json");
    }
    case format::FileFormat::gguf: {
      auto file = format::GgufFile::open(path);
      if (!file) return std::move(file).error();
      if (!(*file)->metadata().contains("tokenizer.ggml.model")) return beside("it has no tokenizer.ggml.* keys");
      auto json = text::tokenizer_json_from_gguf((*file)->metadata(), path);
      if (!json) return std::move(json).error();
      return text::Tokenizer::from_tokenizer_json(json->dump(), path + " (tokenizer.ggml.*)");
    }
    case format::FileFormat::safetensors: return beside("a SafeTensors file holds no tokenizer");
    case format::FileFormat::json: {
      if (fs::path(path).filename().string().find("tokenizer") != std::string::npos) return text::load_tokenizer(path);
      return beside("a JSON file that is not a tokenizer.json");
    }
    case format::FileFormat::unknown: return text::load_tokenizer(path);  // a .tiktoken rank file
    default: break;
  }
  auto opened = format::open_tensor_file(path);  // its error says why the file is refused
  if (!opened) return std::move(opened).error();
  return make_error(ErrorCode::unsupported, "{}: no tokenizer in a file of this format", path);
}

}  // namespace apr::models
