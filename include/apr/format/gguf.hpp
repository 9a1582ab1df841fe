/// @file gguf.hpp
/// @brief GGUF v3 (llama.cpp's model files): reader over an mmap, tensors as zero-copy views.
///
/// Layout (little-endian): "GGUF", u32 version (2 or 3), u64 tensor count, u64 metadata count;
/// metadata entries (string key, u32 type, value); tensor infos (string name, u32 dims, u64 dims
/// innermost first, u32 ggml type, u64 offset from the data start); then, at the next multiple
/// of general.alignment (32 unless given), the data. Strings are u64 length + UTF-8 bytes;
/// arrays are u32 element type, u64 count, elements (arrays may nest).
#pragma once

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "apr/core/byte_reader.hpp"
#include "apr/core/dtype.hpp"
#include "apr/core/mapped_file.hpp"
#include "apr/core/result.hpp"
#include "apr/core/tensor.hpp"
#include "apr/format/tensor_file.hpp"

namespace apr::format {

/// GGUF metadata value types.
enum class GgufType : uint32_t {
  u8 = 0, i8 = 1, u16 = 2, i16 = 3, u32 = 4, i32 = 5, f32 = 6, boolean = 7, string = 8, array = 9, u64 = 10, i64 = 11, f64 = 12,
};

/// A typed GGUF metadata value: a scalar or string in `value`, or an array of `elements`.
struct GgufValue {
  GgufType type = GgufType::u32;      ///< the value's type
  nlohmann::json value;                ///< scalar or string (null for arrays)
  GgufType element_type = GgufType::u8;  ///< arrays: type of every element
  std::vector<GgufValue> elements;     ///< arrays: the elements

  /// A scalar or string of `type`.
  static GgufValue scalar(GgufType type, nlohmann::json value) { return {type, std::move(value), GgufType::u8, {}}; }
  /// A string.
  static GgufValue text(std::string value) { return scalar(GgufType::string, std::move(value)); }
  /// An array of `element_type` values.
  static GgufValue array(GgufType element_type, std::vector<GgufValue> elements) {
    return {GgufType::array, nullptr, element_type, std::move(elements)};
  }
  /// The value as JSON (arrays as JSON arrays).
  [[nodiscard]] nlohmann::json to_json() const {
    if (type != GgufType::array) return value;
    nlohmann::json out = nlohmann::json::array();
    for (const auto& element : elements) out.push_back(element.to_json());
    return out;
  }
};

/// One metadata entry.
struct GgufEntry {
  std::string key;  ///< e.g. "qwen2.block_count"
  GgufValue value;  ///< its value
};

/// ggml's type code of `dtype` in GGUF files, or nothing when GGUF has no such type.
constexpr std::optional<uint32_t> ggml_type_of(DType dtype) {
  switch (dtype) {
    case DType::f32: return 0;
    case DType::f16: return 1;
    case DType::q4_0: return 2;
    case DType::q4_1: return 3;
    case DType::q5_0: return 6;
    case DType::q5_1: return 7;
    case DType::q8_0: return 8;
    case DType::q4_k: return 12;
    case DType::q6_k: return 14;
    case DType::i8: return 24;
    case DType::i16: return 25;
    case DType::i32: return 26;
    case DType::i64: return 27;
    case DType::f64: return 28;
    case DType::bf16: return 30;
    default: return std::nullopt;
  }
}

/// The apr dtype of ggml type `code`, or nothing for types apr does not read.
constexpr std::optional<DType> dtype_of_ggml_type(uint32_t code) {
  for (DType dtype : {DType::f32, DType::f16, DType::q4_0, DType::q4_1, DType::q5_0, DType::q5_1, DType::q8_0, DType::q4_k, DType::q6_k,
                      DType::i8, DType::i16, DType::i32, DType::i64, DType::f64, DType::bf16}) {
    if (ggml_type_of(dtype) == code) return dtype;
  }
  return std::nullopt;
}

/// Most dims a GGUF tensor has (ggml's GGML_MAX_DIMS).
inline constexpr uint32_t kGgufMaxDims = 4;
/// Deepest nesting of arrays apr accepts.
inline constexpr int kGgufMaxArrayDepth = 8;

/// The parsed structure of a GGUF file: metadata and tensors (views into the parsed bytes).
struct GgufContents {
  uint32_t version = 3;                 ///< format version
  std::vector<GgufEntry> entries;       ///< metadata in file order
  std::vector<std::string> names;       ///< tensor names in file order
  std::vector<TensorView> tensors;      ///< views into the bytes (names point into `names`)
  std::vector<uint64_t> offsets;        ///< absolute byte offset of each tensor's data
  uint64_t alignment = 32;              ///< general.alignment
  uint64_t data_start = 0;              ///< offset of the data section

  /// The entry named `key`, or nullptr.
  [[nodiscard]] const GgufValue* find(std::string_view key) const {
    for (const auto& entry : entries) {
      if (entry.key == key) return &entry.value;
    }
    return nullptr;
  }
};

namespace detail {

/// Reads a GGUF string (u64 length + bytes) named `field`.
inline Result<std::string> read_gguf_string(ByteReader& reader, std::string_view field) {
  auto length = reader.read<uint64_t>(field);
  if (!length) return std::move(length).error();
  auto text = reader.take_string(*length, field);
  if (!text) return std::move(text).error();
  return std::string(*text);
}

/// Reads a value of `type` for metadata key `key`.
inline Result<GgufValue> read_gguf_value(ByteReader& reader, GgufType type, const std::string& key, int depth) {
  auto scalar = [&]<class T>(T) -> Result<GgufValue> {
    auto value = reader.read<T>(key);
    if (!value) return std::move(value).error();
    if constexpr (std::is_floating_point_v<T>) {
      return GgufValue::scalar(type, std::isfinite(*value) ? nlohmann::json(*value) : nlohmann::json(nullptr));
    } else {
      return GgufValue::scalar(type, *value);
    }
  };
  switch (type) {
    case GgufType::u8: return scalar(uint8_t{});
    case GgufType::i8: return scalar(int8_t{});
    case GgufType::u16: return scalar(uint16_t{});
    case GgufType::i16: return scalar(int16_t{});
    case GgufType::u32: return scalar(uint32_t{});
    case GgufType::i32: return scalar(int32_t{});
    case GgufType::u64: return scalar(uint64_t{});
    case GgufType::i64: return scalar(int64_t{});
    case GgufType::f32: return scalar(float{});
    case GgufType::f64: return scalar(double{});
    case GgufType::boolean: {
      const size_t at = reader.offset();
      auto value = reader.read<uint8_t>(key);
      if (!value) return std::move(value).error();
      if (*value > 1) return make_error(ErrorCode::format, "metadata '{}' at offset {:#x}: bool byte {} is not 0 or 1", key, at, *value);
      return GgufValue::scalar(type, *value == 1);
    }
    case GgufType::string: {
      auto text = read_gguf_string(reader, key);
      if (!text) return std::move(text).error();
      return GgufValue::text(std::move(text).value());
    }
    case GgufType::array: {
      if (depth >= kGgufMaxArrayDepth) return make_error(ErrorCode::format, "metadata '{}': arrays nested deeper than {}", key, kGgufMaxArrayDepth);
      const size_t at = reader.offset();
      auto element_type = reader.read<uint32_t>(key);
      if (!element_type) return std::move(element_type).error();
      if (*element_type > static_cast<uint32_t>(GgufType::f64)) {
        return make_error(ErrorCode::format, "metadata '{}' at offset {:#x}: array element type {} is not a GGUF type (0..12)", key, at, *element_type);
      }
      auto count = reader.read<uint64_t>(key);
      if (!count) return std::move(count).error();
      // every element takes at least one byte: a count beyond the bytes left is corrupt
      if (*count > reader.remaining()) {
        return make_error(ErrorCode::format, "metadata '{}' at offset {:#x}: array of {} elements in {} remaining bytes", key, at, *count,
                          reader.remaining());
      }
      std::vector<GgufValue> elements;
      elements.reserve(static_cast<size_t>(*count));
      for (uint64_t i = 0; i < *count; ++i) {
        auto element = read_gguf_value(reader, static_cast<GgufType>(*element_type), key, depth + 1);
        if (!element) return std::move(element).error();
        elements.push_back(std::move(element).value());
      }
      return GgufValue::array(static_cast<GgufType>(*element_type), std::move(elements));
    }
  }
  return make_error(ErrorCode::format, "metadata '{}': value type {} is not a GGUF type (0..12)", key, static_cast<uint32_t>(type));
}

}  // namespace detail

/// Parses GGUF `bytes`; `source` (a file name) prefixes every error. Every count, length,
/// dim and offset is checked against the bytes before use.
inline Result<GgufContents> parse_gguf(std::span<const std::byte> bytes, std::string_view source) {
  ByteReader reader(bytes, source);
  auto magic = reader.take_string(4, "magic");
  if (!magic) return std::move(magic).error();
  if (*magic != "GGUF") return make_error(ErrorCode::format, "{}: magic at offset 0x0 is not 'GGUF'", source);
  GgufContents contents;
  auto version = reader.read<uint32_t>("version");
  if (!version) return std::move(version).error();
  if (*version != 2 && *version != 3) return make_error(ErrorCode::format, "{}: GGUF version {} at offset 0x4 (apr reads 2 and 3)", source, *version);
  contents.version = *version;
  auto tensor_count = reader.read<uint64_t>("tensor count");
  if (!tensor_count) return std::move(tensor_count).error();
  auto entry_count = reader.read<uint64_t>("metadata count");
  if (!entry_count) return std::move(entry_count).error();
  // a metadata entry takes at least 12 bytes, a tensor info at least 24
  if (*entry_count > reader.remaining() / 12 || *tensor_count > reader.remaining() / 24) {
    return make_error(ErrorCode::format, "{}: {} metadata entries and {} tensors cannot fit in {} bytes", source, *entry_count, *tensor_count,
                      bytes.size());
  }
  for (uint64_t i = 0; i < *entry_count; ++i) {
    const size_t at = reader.offset();
    auto key = detail::read_gguf_string(reader, "metadata key");
    if (!key) return std::move(key).error();
    auto type = reader.read<uint32_t>("metadata type");
    if (!type) return std::move(type).error();
    if (*type > static_cast<uint32_t>(GgufType::f64)) {
      return make_error(ErrorCode::format, "{}: metadata '{}' at offset {:#x}: type {} is not a GGUF type (0..12)", source, *key, at, *type);
    }
    auto value = detail::read_gguf_value(reader, static_cast<GgufType>(*type), *key, 0);
    if (!value) return std::move(value).error().with_context(std::string(source));
    contents.entries.push_back({std::move(key).value(), std::move(value).value()});
  }
  if (const GgufValue* alignment = contents.find("general.alignment")) {
    const bool integral = alignment->type == GgufType::u32 || alignment->type == GgufType::u64 || alignment->type == GgufType::i32;
    const int64_t value = integral ? alignment->value.get<int64_t>() : 0;
    if (value <= 0 || value > (1 << 20) || (value & (value - 1)) != 0) {
      return make_error(ErrorCode::format, "{}: general.alignment {} is not a power of two up to 1 MiB", source, alignment->value.dump());
    }
    contents.alignment = static_cast<uint64_t>(value);
  }

  struct Info {
    std::vector<uint64_t> dims;
    DType dtype;
    uint64_t offset;
    uint64_t size;
  };
  std::vector<Info> infos;
  for (uint64_t i = 0; i < *tensor_count; ++i) {
    const size_t at = reader.offset();
    auto name = detail::read_gguf_string(reader, "tensor name");
    if (!name) return std::move(name).error();
    auto n_dims = reader.read<uint32_t>("tensor dims");
    if (!n_dims) return std::move(n_dims).error();
    if (*n_dims == 0 || *n_dims > kGgufMaxDims) {
      return make_error(ErrorCode::format, "{}: tensor '{}' at offset {:#x}: {} dims (expected 1..{})", source, *name, at, *n_dims, kGgufMaxDims);
    }
    Info info{};
    uint64_t numel = 1;
    for (uint32_t d = 0; d < *n_dims; ++d) {
      auto dim = reader.read<uint64_t>("tensor dim");
      if (!dim) return std::move(dim).error();
      if (*dim == 0 || !checked_mul(numel, *dim, numel) || numel > (uint64_t{1} << 48)) {
        return make_error(ErrorCode::format, "{}: tensor '{}' at offset {:#x}: dim {} = {} gives an absurd size", source, *name, at, d, *dim);
      }
      info.dims.push_back(*dim);
    }
    auto type = reader.read<uint32_t>("tensor type");
    if (!type) return std::move(type).error();
    const auto dtype = dtype_of_ggml_type(*type);
    if (!dtype) return make_error(ErrorCode::unsupported, "{}: tensor '{}': ggml type {} is not one apr reads", source, *name, *type);
    info.dtype = *dtype;
    const auto size = dtype_bytes(*dtype, numel);
    if (!size || info.dims[0] % dtype_info(*dtype).block_size != 0) {
      return make_error(ErrorCode::format, "{}: tensor '{}': rows of {} values are not whole {} blocks", source, *name, info.dims[0], to_string(*dtype));
    }
    info.size = *size;
    auto offset = reader.read<uint64_t>("tensor offset");
    if (!offset) return std::move(offset).error();
    if (*offset % contents.alignment != 0) {
      return make_error(ErrorCode::format, "{}: tensor '{}': data offset {} is not a multiple of the alignment {}", source, *name, *offset,
                        contents.alignment);
    }
    info.offset = *offset;
    for (const auto& existing : contents.names) {
      if (existing == *name) return make_error(ErrorCode::format, "{}: tensor '{}' appears twice", source, *name);
    }
    contents.names.push_back(std::move(name).value());
    infos.push_back(std::move(info));
  }
  contents.data_start = (reader.offset() + contents.alignment - 1) / contents.alignment * contents.alignment;
  if (contents.data_start > bytes.size() && !infos.empty()) {
    return make_error(ErrorCode::format, "{}: data section at offset {:#x} starts past the end of the file ({} bytes)", source, contents.data_start,
                      bytes.size());
  }
  for (size_t i = 0; i < infos.size(); ++i) {
    uint64_t begin = 0, end = 0;
    if (!checked_add(contents.data_start, infos[i].offset, begin) || !checked_add(begin, infos[i].size, end) || end > bytes.size()) {
      return make_error(ErrorCode::format, "{}: tensor '{}': {} bytes at data offset {} run past the end of the file ({} bytes)", source,
                        contents.names[i], infos[i].size, infos[i].offset, bytes.size());
    }
    // apr reads elements and blocks in place: their natural alignment must hold
    const uint64_t natural = std::min<uint64_t>(8, dtype_info(infos[i].dtype).block_size == 1 ? dtype_info(infos[i].dtype).block_bytes : 2);
    if (begin % natural != 0) {
      return make_error(ErrorCode::format, "{}: tensor '{}': data at offset {:#x} is not {}-byte aligned for {}", source, contents.names[i], begin,
                        natural, to_string(infos[i].dtype));
    }
    std::vector<uint64_t> shape(infos[i].dims.rbegin(), infos[i].dims.rend());  // apr: outermost first
    contents.tensors.push_back({contents.names[i], infos[i].dtype, Shape::from(shape),
                                bytes.subspan(static_cast<size_t>(begin), static_cast<size_t>(infos[i].size))});
    contents.offsets.push_back(begin);
  }
  return contents;
}

/// A GGUF file opened as a TensorFile: memory-mapped, tensors viewed in place.
class GgufFile final : public TensorFile {
 public:
  /// Opens and parses `path`.
  static Result<std::unique_ptr<GgufFile>> open(const std::string& path) {
    auto mapped = MappedFile::open(path);
    if (!mapped) return std::move(mapped).error();
    auto contents = parse_gguf(mapped->bytes(), path);
    if (!contents) return std::move(contents).error();
    std::unique_ptr<GgufFile> file(new GgufFile(path, std::move(mapped).value(), std::move(contents).value()));
    return file;
  }

  [[nodiscard]] std::string_view format() const override { return "gguf"; }
  [[nodiscard]] const std::string& path() const override { return path_; }
  [[nodiscard]] std::span<const TensorView> tensors() const override { return contents_.tensors; }
  [[nodiscard]] const nlohmann::json& metadata() const override { return metadata_; }
  [[nodiscard]] std::optional<uint64_t> data_offset(const TensorView& tensor) const override {
    for (size_t i = 0; i < contents_.tensors.size(); ++i) {
      if (contents_.tensors[i].bytes.data() == tensor.bytes.data()) return contents_.offsets[i];
    }
    return std::nullopt;
  }
  /// The typed metadata and layout facts.
  [[nodiscard]] const GgufContents& contents() const noexcept { return contents_; }

 private:
  GgufFile(std::string path, MappedFile mapped, GgufContents contents)
      : path_(std::move(path)), mapped_(std::move(mapped)), contents_(std::move(contents)) {
    metadata_ = nlohmann::json::object();
    for (const auto& entry : contents_.entries) metadata_[entry.key] = entry.value.to_json();
  }

  std::string path_;
  MappedFile mapped_;  // the views point into this mapping (stable when moved)
  GgufContents contents_;
  nlohmann::json metadata_;
};

}  // namespace apr::format
