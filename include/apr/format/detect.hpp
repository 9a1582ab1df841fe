/// @file detect.hpp
/// @brief Format detection by content (magic bytes, not extension) and open_tensor_file().
#pragma once

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <string_view>

#include "apr/core/result.hpp"
#include "apr/format/apr_reader.hpp"
#include "apr/format/apr_shards.hpp"
#include "apr/format/gguf.hpp"
#include "apr/format/safetensors.hpp"
#include "apr/format/tensor_file.hpp"

namespace apr::format {

/// What a file is, judged by its first bytes.
enum class FileFormat {
  apr_v2,       ///< "APR\0" + version 2
  apr_v1,       ///< "APRN"
  apr_other,    ///< APR1 / APR2 magics or aprender-tsp files (refused)
  gguf,         ///< "GGUF"
  safetensors,  ///< u64 header length, then '{'
  json,         ///< a JSON document (e.g. model.safetensors.index.json)
  pytorch_zip,  ///< a zip archive (torch.save) — refused
  pickle,       ///< a raw pickle (protocol 2–5) — refused, never executed
  directory,    ///< a folder (Hugging Face model directory)
  unknown,      ///< none of the above
};

/// Detects the format of `path` from its content.
inline Result<FileFormat> detect_format(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return FileFormat::directory;
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(std::filesystem::exists(path, ec) ? ErrorCode::io : ErrorCode::not_found, "{}: cannot open", path);
  char head[16] = {};
  in.read(head, sizeof head);
  const auto got = static_cast<size_t>(in.gcount());
  const std::string_view magic(head, got);
  if (magic.starts_with(std::string_view("APR\0", 4))) {
    return got >= 5 && head[4] == 2 ? FileFormat::apr_v2 : FileFormat::apr_other;
  }
  if (magic.starts_with("APRN")) return FileFormat::apr_v1;
  if (magic.starts_with("APR1") || magic.starts_with("APR2")) return FileFormat::apr_other;
  if (magic.starts_with("GGUF")) return FileFormat::gguf;
  if (magic.starts_with("PK\x03\x04")) return FileFormat::pytorch_zip;
  if (got >= 2 && static_cast<uint8_t>(head[0]) == 0x80 && head[1] >= 2 && head[1] <= 5) return FileFormat::pickle;
  if (got >= 9 && head[8] == '{') return FileFormat::safetensors;
  const size_t first = magic.find_first_not_of(" \t\r\n");
  if (first != std::string_view::npos && (magic[first] == '{' || magic[first] == '[')) return FileFormat::json;
  return FileFormat::unknown;
}

/// Opens an APR v2, SafeTensors (file or index) or GGUF file as a TensorFile; PyTorch checkpoints
/// and pickles are refused without being read further.
inline Result<std::unique_ptr<TensorFile>> open_tensor_file(const std::string& path) {
  auto format = detect_format(path);
  if (!format) return std::move(format).error();
  switch (*format) {
    case FileFormat::apr_v2: {
      auto file = AprFile::open(path);
      if (!file) return std::move(file).error();
      return std::unique_ptr<TensorFile>(std::move(file).value());
    }
    case FileFormat::json: {
      auto mapped = MappedFile::open(path);
      if (!mapped) return std::move(mapped).error();
      if (is_apr_manifest_text(std::string_view(reinterpret_cast<const char*>(mapped->data()), mapped->size()))) {
        auto file = AprShardedFile::open(path);
        if (!file) return std::move(file).error();
        return std::unique_ptr<TensorFile>(std::move(file).value());
      }
      auto file = SafeTensorsFile::open(path);
      if (!file) return std::move(file).error();
      return std::unique_ptr<TensorFile>(std::move(file).value());
    }
    case FileFormat::safetensors: {
      auto file = SafeTensorsFile::open(path);
      if (!file) return std::move(file).error();
      return std::unique_ptr<TensorFile>(std::move(file).value());
    }
    case FileFormat::pytorch_zip:
    case FileFormat::pickle:
      return make_error(ErrorCode::unsupported,
                        "{}: a PyTorch checkpoint (pickle); apr never unpickles files, which can run arbitrary code — convert it to SafeTensors", path);
    case FileFormat::apr_v1:
      return make_error(ErrorCode::unsupported, "{}: an APR v1 (APRN) file holds a classic ML model, not tensors a model can load", path);
    case FileFormat::apr_other: {
      auto parsed = AprFile::open(path);  // its error says what the file is
      if (!parsed) return std::move(parsed).error();
      return std::unique_ptr<TensorFile>(std::move(parsed).value());
    }
    case FileFormat::gguf: {
      auto file = GgufFile::open(path);
      if (!file) return std::move(file).error();
      return std::unique_ptr<TensorFile>(std::move(file).value());
    }
    case FileFormat::directory:
      return make_error(ErrorCode::invalid_argument, "{}: is a folder; open its model.safetensors or use the model loader", path);
    case FileFormat::unknown: break;
  }
  return make_error(ErrorCode::format, "{}: unknown format (not APR, SafeTensors, GGUF or JSON)", path);
}

}  // namespace apr::format
