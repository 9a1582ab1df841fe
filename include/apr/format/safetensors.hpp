/// @file safetensors.hpp
/// @brief SafeTensors reader: a memory-mapped .safetensors file, or a sharded set through its
/// model.safetensors.index.json, as a TensorFile (zero copy).
///
/// Layout: u64 little-endian header length N, N bytes of JSON {name: {dtype, shape,
/// data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the data; offsets are relative
/// to the end of the header. Every length, offset and shape is checked before use.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/core/byte_reader.hpp"
#include "apr/core/dtype.hpp"
#include "apr/core/mapped_file.hpp"
#include "apr/core/result.hpp"
#include "apr/core/tensor.hpp"
#include "apr/format/tensor_file.hpp"

namespace apr::format {

/// Largest SafeTensors JSON header accepted (the format's own limit is 100 MB).
inline constexpr uint64_t kMaxSafeTensorsHeader = 100'000'000;

/// The DType of a SafeTensors dtype name ("F32", "BF16", ...), or nullopt.
constexpr std::optional<DType> safetensors_dtype(std::string_view name) {
  if (name == "F64") return DType::f64;
  if (name == "F32") return DType::f32;
  if (name == "F16") return DType::f16;
  if (name == "BF16") return DType::bf16;
  if (name == "I64") return DType::i64;
  if (name == "I32") return DType::i32;
  if (name == "I16") return DType::i16;
  if (name == "I8") return DType::i8;
  if (name == "U8") return DType::u8;
  if (name == "BOOL") return DType::boolean;
  return std::nullopt;
}

/// The SafeTensors dtype name of `dtype`, or nullopt when SafeTensors has none (quantized types).
constexpr std::optional<std::string_view> safetensors_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f64: return "F64";
    case DType::f32: return "F32";
    case DType::f16: return "F16";
    case DType::bf16: return "BF16";
    case DType::i64: return "I64";
    case DType::i32: return "I32";
    case DType::i16: return "I16";
    case DType::i8: return "I8";
    case DType::u8: return "U8";
    case DType::boolean: return "BOOL";
    default: return std::nullopt;
  }
}

/// Parsed SafeTensors tensors over bytes owned elsewhere (a MappedFile, or a fuzzer's buffer).
struct SafeTensorsContents {
  std::vector<std::string> names;     ///< tensor names, in data order
  std::vector<TensorView> tensors;    ///< views into the bytes (names point into `names`)
  std::vector<uint64_t> offsets;      ///< absolute byte offset of each tensor's data
  nlohmann::json metadata = nlohmann::json::object();  ///< the __metadata__ object (string values)
};

/// Parses SafeTensors `bytes`; `source` (a file name) prefixes every error.
inline Result<SafeTensorsContents> parse_safetensors(std::span<const std::byte> bytes, std::string_view source) {
  ByteReader reader(bytes, source);
  auto header_length = reader.read<uint64_t>("header length");
  if (!header_length) return std::move(header_length).error();
  if (*header_length > kMaxSafeTensorsHeader || *header_length > reader.remaining()) {
    return make_error(ErrorCode::format, "{}: header length {} at offset 0x0 exceeds the file ({} bytes after it) or the 100 MB limit",
                      source, *header_length, reader.remaining());
  }
  auto header_text = reader.take_string(*header_length, "header");
  if (!header_text) return std::move(header_text).error();
  const auto header = nlohmann::json::parse(*header_text, nullptr, false);
  if (header.is_discarded() || !header.is_object()) {
    return make_error(ErrorCode::format, "{}: header at offset 0x8 ({} bytes) is not a JSON object", source, *header_length);
  }
  const uint64_t data_start = 8 + *header_length;
  const uint64_t data_size = bytes.size() - data_start;

  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    uint64_t begin, end;
  };
  std::vector<Entry> entries;
  SafeTensorsContents contents;
  for (const auto& item : header.items()) {
    const std::string name = item.key();
    const auto& info = item.value();
    if (name == "__metadata__") {
      if (!info.is_object()) return make_error(ErrorCode::format, "{}: __metadata__ must be an object of strings", source);
      for (const auto& [key, value] : info.items()) {
        if (!value.is_string()) return make_error(ErrorCode::format, "{}: __metadata__.{} must be a string", source, key);
      }
      contents.metadata = info;
      continue;
    }
    auto bad = [&](std::string_view what) { return make_error(ErrorCode::format, "{}: tensor '{}': {}", source, name, what); };
    if (!info.is_object()) return bad("entry must be an object");
    if (!info.contains("dtype") || !info["dtype"].is_string()) return bad("'dtype' must be a string");
    const auto dtype = safetensors_dtype(info["dtype"].get<std::string>());
    if (!dtype) return bad(fmt::format("unsupported dtype '{}'", info["dtype"].get<std::string>()));
    if (!info.contains("shape") || !info["shape"].is_array()) return bad("'shape' must be an array");
    if (info["shape"].size() > Shape::kMaxDims) return bad(fmt::format("{} dims (at most {})", info["shape"].size(), Shape::kMaxDims));
    std::vector<uint64_t> dims;
    for (const auto& d : info["shape"]) {
      if (!d.is_number_unsigned()) return bad("shape entries must be non-negative integers");
      dims.push_back(d.get<uint64_t>());
    }
    const Shape shape = Shape::from(dims);
    uint64_t numel = 0;
    if (!shape.checked_numel(numel)) return bad(fmt::format("shape {} overflows", to_string(shape)));
    const auto expected = dtype_bytes(*dtype, numel);
    if (!expected) return bad(fmt::format("shape {} overflows", to_string(shape)));
    if (!info.contains("data_offsets") || !info["data_offsets"].is_array() || info["data_offsets"].size() != 2 ||
        !info["data_offsets"][0].is_number_unsigned() || !info["data_offsets"][1].is_number_unsigned()) {
      return bad("'data_offsets' must be [begin, end]");
    }
    const uint64_t begin = info["data_offsets"][0].get<uint64_t>();
    const uint64_t end = info["data_offsets"][1].get<uint64_t>();
    if (begin > end || end > data_size) {
      return bad(fmt::format("data_offsets [{}, {}] outside the data section of {} bytes (starting at offset {:#x})", begin, end, data_size, data_start));
    }
    if (end - begin != *expected) {
      return bad(fmt::format("data_offsets span {} bytes, but {} {} values need {}", end - begin, to_string(shape), info["dtype"].get<std::string>(), *expected));
    }
    entries.push_back({name, *dtype, shape, begin, end});
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
  for (size_t i = 1; i < entries.size(); ++i) {
    if (entries[i].begin < entries[i - 1].end) {
      return make_error(ErrorCode::format, "{}: tensors '{}' and '{}' overlap (data [{}, {}) and [{}, {}))", source, entries[i - 1].name,
                        entries[i].name, entries[i - 1].begin, entries[i - 1].end, entries[i].begin, entries[i].end);
    }
  }
  contents.names.reserve(entries.size());
  for (const Entry& e : entries) contents.names.push_back(e.name);
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    contents.tensors.push_back(TensorView{contents.names[i], e.dtype, e.shape, bytes.subspan(data_start + e.begin, e.end - e.begin)});
    contents.offsets.push_back(data_start + e.begin);
  }
  return contents;
}

/// A .safetensors file (memory-mapped) or a sharded set of them, as one TensorFile.
class SafeTensorsFile final : public TensorFile {
 public:
  /// Opens a .safetensors file, or a model.safetensors.index.json and every shard it names.
  static Result<std::unique_ptr<SafeTensorsFile>> open(const std::string& path) {
    std::unique_ptr<SafeTensorsFile> file(new SafeTensorsFile(path));
    if (path.size() >= 5 && path.ends_with(".json")) {
      auto status = file->open_index(path);
      if (!status) return std::move(status).error();
    } else {
      auto status = file->add_shard(path);
      if (!status) return std::move(status).error();
    }
    return file;
  }

  [[nodiscard]] std::string_view format() const override { return "safetensors"; }
  [[nodiscard]] const std::string& path() const override { return path_; }
  [[nodiscard]] std::span<const TensorView> tensors() const override { return views_; }
  [[nodiscard]] const nlohmann::json& metadata() const override { return metadata_; }
  [[nodiscard]] std::optional<uint64_t> data_offset(const TensorView& tensor) const override {
    for (const auto& shard : shards_) {
      for (size_t i = 0; i < shard.contents.tensors.size(); ++i) {
        if (shard.contents.tensors[i].bytes.data() == tensor.bytes.data()) return shard.contents.offsets[i];
      }
    }
    return std::nullopt;
  }

 private:
  struct Shard {
    MappedFile file;
    SafeTensorsContents contents;
  };

  explicit SafeTensorsFile(std::string path) : path_(std::move(path)) {}

  Result<void> add_shard(const std::string& path) {
    auto mapped = MappedFile::open(path);
    if (!mapped) return std::move(mapped).error();
    auto contents = parse_safetensors(mapped->bytes(), path);
    if (!contents) return std::move(contents).error();
    // views stay valid: the mapping's address does not change when the MappedFile moves
    shards_.push_back(Shard{std::move(mapped).value(), std::move(contents).value()});
    for (const auto& [key, value] : shards_.back().contents.metadata.items()) metadata_[key] = value;
    for (const TensorView& view : shards_.back().contents.tensors) {
      if (find(view.name) != nullptr) return make_error(ErrorCode::format, "{}: tensor '{}' appears in more than one shard", path, view.name);
      views_.push_back(view);
    }
    return ok();
  }

  Result<void> open_index(const std::string& index_path) {
    auto mapped = MappedFile::open(index_path);
    if (!mapped) return std::move(mapped).error();
    const auto index = nlohmann::json::parse(std::string_view(reinterpret_cast<const char*>(mapped->data()), mapped->size()), nullptr, false);
    if (index.is_discarded() || !index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
      return make_error(ErrorCode::format, "{}: not a SafeTensors index (expected a JSON object with a 'weight_map' object)", index_path);
    }
    const std::filesystem::path directory = std::filesystem::path(index_path).parent_path();
    std::map<std::string, std::vector<std::string>> by_file;
    for (const auto& [name, file] : index["weight_map"].items()) {
      if (!file.is_string()) return make_error(ErrorCode::format, "{}: weight_map.{} must be a file name", index_path, name);
      const std::string shard = file.get<std::string>();
      if (shard.find('/') != std::string::npos || shard == "..") {
        return make_error(ErrorCode::format, "{}: weight_map.{} names '{}', which is not a file beside the index", index_path, name, shard);
      }
      by_file[shard].push_back(name);
    }
    for (const auto& [shard, names] : by_file) {
      auto status = add_shard((directory / shard).string());
      if (!status) return status;
      for (const auto& name : names) {
        const TensorView* view = find(name);
        if (view == nullptr) return make_error(ErrorCode::format, "{}: tensor '{}' is mapped to {} but is not in it", index_path, name, shard);
      }
    }
    if (index.contains("metadata") && index["metadata"].is_object()) metadata_["index_metadata"] = index["metadata"];
    return ok();
  }

  std::string path_;
  std::vector<Shard> shards_;
  std::vector<TensorView> views_;
  nlohmann::json metadata_ = nlohmann::json::object();
};

}  // namespace apr::format
