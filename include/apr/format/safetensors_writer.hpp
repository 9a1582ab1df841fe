/// @file safetensors_writer.hpp
/// @brief SafeTensors writer: JSON header padded with spaces so the data starts 8-byte aligned,
/// `__metadata__` (string values), tensors streamed in name order, atomic (temp + rename).
#pragma once

#include <algorithm>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/core/result.hpp"
#include "apr/format/apr_writer.hpp"
#include "apr/format/safetensors.hpp"

namespace apr::format {

/// Writes `tensors` (F64/F32/F16/BF16/integer dtypes) and string `metadata` to `path`.
inline Result<void> write_safetensors(const std::string& path, std::vector<AprWriteTensor> tensors,
                                      const std::map<std::string, std::string>& metadata = {}) {
  std::sort(tensors.begin(), tensors.end(), [](const AprWriteTensor& a, const AprWriteTensor& b) { return a.name < b.name; });
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    const auto name = safetensors_dtype_name(t.dtype);
    if (!name) return make_error(ErrorCode::unsupported, "{}: tensor '{}': SafeTensors has no {} dtype (convert to f16/bf16/f32 first)", path, t.name, to_string(t.dtype));
    if (header.contains(t.name)) return make_error(ErrorCode::invalid_argument, "{}: tensor '{}' given twice", path, t.name);
    header[t.name] = {{"dtype", std::string(*name)}, {"shape", std::vector<uint64_t>(t.shape.dims().begin(), t.shape.dims().end())},
                      {"data_offsets", {offset, offset + t.size}}};
    offset += t.size;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  auto file = AtomicFile::create(path);
  if (!file) return std::move(file).error();
  ByteSink& sink = (*file)->sink();
  const uint64_t length = text.size();
  Result<void> status = sink.write(std::as_bytes(std::span(&length, 1)));
  if (status) status = sink.write(std::as_bytes(std::span(text.data(), text.size())));
  for (const auto& t : tensors) {
    if (!status) break;
    const uint64_t before = sink.written();
    status = t.write(sink);
    if (status && sink.written() - before != t.size) {
      status = make_error(ErrorCode::internal, "{}: tensor '{}' produced {} bytes, expected {}", path, t.name, sink.written() - before, t.size);
    }
  }
  if (!status) return status;
  return (*file)->commit();
}

}  // namespace apr::format
