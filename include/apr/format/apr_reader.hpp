/// @file apr_reader.hpp
/// @brief APR v2 reader: every header field, offset, size and dim checked before use; tensors are
/// zero-copy views into the mapped file; the footer CRC is checked on request.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/core/byte_reader.hpp"
#include "apr/core/mapped_file.hpp"
#include "apr/core/result.hpp"
#include "apr/core/tensor.hpp"
#include "apr/core/utf8.hpp"
#include "apr/format/apr_layout.hpp"
#include "apr/format/crc32.hpp"
#include "apr/format/tensor_file.hpp"

namespace apr::format {

/// One tensor index entry as stored.
struct AprTensorEntry {
  std::string name;   ///< tensor name
  uint8_t code = 0;   ///< dtype code as written in the file
  DType dtype{};      ///< what the code means for this entry
  Shape shape;        ///< dims, outermost first
  uint64_t offset = 0;  ///< data offset relative to data_offset
  uint64_t size = 0;    ///< bytes
};

/// Everything in an APR v2 file's header, metadata and index.
struct AprContents {
  uint8_t version_major = 2;      ///< header byte 4
  uint8_t version_minor = 0;      ///< header byte 5
  uint16_t flags = 0;             ///< header flags
  uint64_t metadata_offset = 0;   ///< always 64 as written
  uint32_t metadata_size = 0;     ///< unpadded JSON length
  uint64_t index_offset = 0;      ///< tensor index start
  uint64_t data_offset = 0;       ///< tensor data start
  uint32_t header_checksum = 0;   ///< CRC-32 of bytes 0..40 and 44..64
  uint32_t footer_checksum = 0;   ///< CRC-32 stored in the last 4 bytes
  std::string metadata_text;      ///< the JSON exactly as stored
  nlohmann::json metadata;        ///< parsed metadata
  std::vector<AprTensorEntry> entries;  ///< index entries in file order (sorted by name)
  std::vector<TensorView> views;  ///< one per entry, into the parsed bytes
};

namespace detail {

/// Names what a file starting with `magic` is, for files that are not APR v2.
inline std::string describe_foreign_magic(std::span<const std::byte> bytes) {
  const std::string_view head(reinterpret_cast<const char*>(bytes.data()), std::min<size_t>(bytes.size(), 4));
  if (head == "APRN") return "an APR v1 file (magic APRN); open it with the v1 reader";
  if (head == "APR1" || head == "APR2") return fmt::format("magic '{}' comes from older APR docs and other readers; aprender writes 'APR\\0' — not supported", head);
  if (head == "GGUF") return "a GGUF file, not APR";
  return fmt::format("not an APR file (magic {:02x} {:02x} {:02x} {:02x} at offset 0x0, expected 41 50 52 00)",
                     bytes.size() > 0 ? static_cast<int>(bytes[0]) : 0, bytes.size() > 1 ? static_cast<int>(bytes[1]) : 0,
                     bytes.size() > 2 ? static_cast<int>(bytes[2]) : 0, bytes.size() > 3 ? static_cast<int>(bytes[3]) : 0);
}

/// True when `bytes` [begin, end) are all zero.
inline bool all_zero(std::span<const std::byte> bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == std::byte{0}; });
}

}  // namespace detail

/// Parses an APR v2 file held in `bytes`; `source` (the file name) prefixes every error.
inline Result<AprContents> parse_apr(std::span<const std::byte> bytes, std::string_view source) {
  using namespace apr_v2;
  auto fail = [&](std::string message) { return Error{ErrorCode::format, fmt::format("{}: {}", source, message)}; };
  if (bytes.size() < 4 || load_unaligned<uint32_t>(bytes.data()) != kMagic) return fail(detail::describe_foreign_magic(bytes));
  if (bytes.size() < kHeaderSize) return fail(fmt::format("file is {} bytes; an APR header needs {}", bytes.size(), kHeaderSize));
  AprContents c;
  c.version_major = static_cast<uint8_t>(bytes[4]);
  c.version_minor = static_cast<uint8_t>(bytes[5]);
  if (c.version_major == 1 && load_unaligned<uint32_t>(bytes.data() + 8) == 0x54535000u) {
    return fail("an aprender-tsp model (APR\\0, version 1, type 0x54535000), not an APR v2 model file");
  }
  c.flags = load_unaligned<uint16_t>(bytes.data() + 6);
  const uint32_t tensor_count = load_unaligned<uint32_t>(bytes.data() + 8);
  c.metadata_offset = load_unaligned<uint64_t>(bytes.data() + 12);
  c.metadata_size = load_unaligned<uint32_t>(bytes.data() + 20);
  c.index_offset = load_unaligned<uint64_t>(bytes.data() + 24);
  c.data_offset = load_unaligned<uint64_t>(bytes.data() + 32);
  c.header_checksum = load_unaligned<uint32_t>(bytes.data() + kChecksumOffset);
  const uint32_t computed = crc32_update(crc32(bytes.first(kChecksumOffset)), bytes.subspan(kChecksumOffset + 4, kHeaderSize - kChecksumOffset - 4));
  if (computed != c.header_checksum) {
    return Error{ErrorCode::checksum, fmt::format("{}: header checksum at offset 0x28 is {:#010x}, the header's CRC-32 is {:#010x}", source, c.header_checksum, computed)};
  }
  if (c.version_major != 2) return fail(fmt::format("version {}.{} at offset 0x4: expected 2.x", c.version_major, c.version_minor));
  if (!detail::all_zero(bytes.subspan(44, 20))) return fail("reserved header bytes 0x2c..0x40 are not zero");
  if (c.flags & kLayoutColumnMajor) return fail("flags at offset 0x6 mark a column-major layout, which apr (like aprender) refuses");
  if (c.flags & (kLz4Compressed | kZstdCompressed | kEncrypted)) {
    return Error{ErrorCode::unsupported, fmt::format("{}: flags {:#06x} at offset 0x6: compressed or encrypted tensor data needs apr's extension reader", source, c.flags)};
  }
  const uint64_t file_size = bytes.size();
  if (file_size < kHeaderSize + kFooterSize) return fail("file ends before the footer");
  const uint64_t data_end = file_size - kFooterSize;
  if (c.metadata_offset != kHeaderSize) return fail(fmt::format("metadata_offset at 0xc is {:#x}, expected 0x40", c.metadata_offset));
  if (c.metadata_offset + c.metadata_size > data_end) {
    return fail(fmt::format("metadata 0x40+{:#x} at offset 0x14 runs past the data end ({:#x})", c.metadata_size, data_end));
  }
  if (c.index_offset % kAlignment != 0 || c.index_offset < c.metadata_offset + c.metadata_size || c.index_offset > data_end) {
    return fail(fmt::format("tensor_index_offset at 0x18 is {:#x}: expected a multiple of 64 after the metadata (ending at {:#x}) and before {:#x}",
                            c.index_offset, c.metadata_offset + c.metadata_size, data_end));
  }
  if (c.data_offset % kAlignment != 0 || c.data_offset < c.index_offset || c.data_offset > data_end) {
    return fail(fmt::format("data_offset at 0x20 is {:#x}: expected a multiple of 64 between the index ({:#x}) and {:#x}", c.data_offset, c.index_offset, data_end));
  }
  if (!detail::all_zero(bytes.subspan(c.metadata_offset + c.metadata_size, c.index_offset - c.metadata_offset - c.metadata_size))) {
    return fail(fmt::format("padding after the metadata (offset {:#x}) is not zero", c.metadata_offset + c.metadata_size));
  }
  c.metadata_text.assign(reinterpret_cast<const char*>(bytes.data() + c.metadata_offset), c.metadata_size);
  if (c.metadata_size > 0) {
    c.metadata = nlohmann::json::parse(c.metadata_text, nullptr, false);
    if (c.metadata.is_discarded()) {
      return fail(fmt::format("metadata at offset 0x40 ({} bytes) is {}", c.metadata_size,
                              is_valid_utf8(c.metadata_text) ? "not valid JSON" : "not valid UTF-8"));
    }
    if (!c.metadata.is_object()) return fail("metadata at offset 0x40 is not a JSON object");
  } else {
    c.metadata = nlohmann::json::object();
  }

  // index: tensor_count entries, each at least 2 + 1 + 1 + 16 bytes
  const uint64_t index_limit = c.data_offset;
  if (tensor_count > (index_limit - c.index_offset) / 20) {
    return fail(fmt::format("tensor_count {} at offset 0x8 cannot fit in the {}-byte index", tensor_count, index_limit - c.index_offset));
  }
  ByteReader reader(bytes.first(static_cast<size_t>(index_limit)), source);
  (void)reader.seek(c.index_offset);
  c.entries.reserve(tensor_count);
  for (uint32_t i = 0; i < tensor_count; ++i) {
    const size_t entry_offset = reader.offset();
    auto bad = [&](std::string_view what) { return fail(fmt::format("tensor {} (index entry at {:#x}): {}", i, entry_offset, what)); };
    auto name_length = reader.read<uint16_t>("name length");
    if (!name_length) return bad("truncated name length");
    if (*name_length > kMaxNameLength) return bad(fmt::format("name length {} exceeds {}", *name_length, kMaxNameLength));
    auto name = reader.take_string(*name_length, "name");
    if (!name) return bad(fmt::format("name length {} runs past the index end ({:#x})", *name_length, index_limit));
    AprTensorEntry entry;
    entry.name = std::string(*name);
    if (!is_valid_utf8(entry.name)) return bad("name is not valid UTF-8");
    auto named = [&](std::string_view what) { return fail(fmt::format("tensor {} '{}': {}", i, entry.name, what)); };
    auto code = reader.read<uint8_t>("dtype");
    auto ndim = reader.read<uint8_t>("ndim");
    if (!code || !ndim) return named("index entry truncated");
    if (*ndim > kMaxDims) return named(fmt::format("{} dims (at most {})", *ndim, kMaxDims));
    std::vector<uint64_t> dims;
    for (uint8_t d = 0; d < *ndim; ++d) {
      auto dim = reader.read<uint64_t>("dim");
      if (!dim) return named("index entry truncated in its dims");
      dims.push_back(*dim);
    }
    auto offset = reader.read<uint64_t>("offset");
    auto size = reader.read<uint64_t>("size");
    if (!offset || !size) return named("index entry truncated before offset/size");
    entry.code = *code;
    entry.shape = Shape::from(dims);
    entry.offset = *offset;
    entry.size = *size;
    uint64_t numel = 0;
    if (!entry.shape.checked_numel(numel)) return named(fmt::format("dims {} overflow", to_string(entry.shape)));
    const auto dtype = apr_v2::dtype_of_code(entry.code, numel, entry.size);
    if (!dtype) return named(fmt::format("unknown dtype code {}", entry.code));
    entry.dtype = *dtype;
    const auto expected = dtype_bytes(entry.dtype, numel);
    if (!expected) return named(fmt::format("dims {} overflow for {}", to_string(entry.shape), to_string(entry.dtype)));
    if (*expected != entry.size) return named(fmt::format("size {} bytes, but {} {} values need {}", entry.size, to_string(entry.shape), to_string(entry.dtype), *expected));
    uint64_t begin = 0, end = 0;
    if (!checked_add(c.data_offset, entry.offset, begin) || !checked_add(begin, entry.size, end) || end > data_end) {
      return named(fmt::format("data {:#x}+{:#x} past end of file ({:#x})", begin, entry.size, data_end));
    }
    if (entry.offset % kAlignment != 0) return named(fmt::format("data offset {:#x} is not a multiple of 64", entry.offset));
    if (!c.entries.empty() && entry.name < c.entries.back().name) {
      return named(fmt::format("index is not sorted: '{}' comes after '{}'", entry.name, c.entries.back().name));
    }
    c.entries.push_back(std::move(entry));
  }
  if (!detail::all_zero(bytes.subspan(reader.offset(), c.data_offset - reader.offset()))) {
    return fail(fmt::format("padding after the tensor index (offset {:#x}) is not zero", reader.offset()));
  }
  std::vector<size_t> by_offset(c.entries.size());
  for (size_t i = 0; i < by_offset.size(); ++i) by_offset[i] = i;
  std::sort(by_offset.begin(), by_offset.end(), [&](size_t a, size_t b) { return c.entries[a].offset < c.entries[b].offset; });
  for (size_t k = 1; k < by_offset.size(); ++k) {
    const auto& previous = c.entries[by_offset[k - 1]];
    const auto& current = c.entries[by_offset[k]];
    if (current.offset < previous.offset + previous.size) {
      return fail(fmt::format("tensors '{}' and '{}' overlap (data {:#x}+{:#x} and {:#x}+{:#x})", previous.name, current.name,
                              previous.offset, previous.size, current.offset, current.size));
    }
  }
  c.footer_checksum = load_unaligned<uint32_t>(bytes.data() + data_end);
  for (const auto& entry : c.entries) {
    c.views.push_back(TensorView{entry.name, entry.dtype, entry.shape, bytes.subspan(c.data_offset + entry.offset, entry.size)});
  }
  return c;
}

/// An APR v2 file, memory-mapped, as a TensorFile.
class AprFile final : public TensorFile {
 public:
  /// Opens and validates `path` (all structural checks; the footer CRC with verify_checksum()).
  static Result<std::unique_ptr<AprFile>> open(const std::string& path) {
    auto mapped = MappedFile::open(path);
    if (!mapped) return std::move(mapped).error();
    auto contents = parse_apr(mapped->bytes(), path);
    if (!contents) return std::move(contents).error();
    return std::unique_ptr<AprFile>(new AprFile(path, std::move(mapped).value(), std::move(contents).value()));
  }

  /// Checks the footer: CRC-32 of every byte before it.
  [[nodiscard]] Result<void> verify_checksum() const {
    const auto bytes = file_.bytes();
    const uint32_t computed = crc32(bytes.first(bytes.size() - apr_v2::kFooterSize));
    if (computed != contents_.footer_checksum) {
      return make_error(ErrorCode::checksum, "{}: footer checksum at offset {:#x} is {:#010x}, the file's CRC-32 is {:#010x}", path_,
                        bytes.size() - apr_v2::kFooterSize, contents_.footer_checksum, computed);
    }
    return ok();
  }

  /// Header, metadata text and index as parsed.
  [[nodiscard]] const AprContents& contents() const noexcept { return contents_; }
  /// The mapped bytes.
  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return file_.bytes(); }

  [[nodiscard]] std::string_view format() const override { return "apr"; }
  [[nodiscard]] const std::string& path() const override { return path_; }
  [[nodiscard]] std::span<const TensorView> tensors() const override { return contents_.views; }
  [[nodiscard]] const nlohmann::json& metadata() const override { return contents_.metadata; }
  [[nodiscard]] std::optional<uint64_t> data_offset(const TensorView& tensor) const override {
    return static_cast<uint64_t>(tensor.bytes.data() - file_.data());
  }

 private:
  AprFile(std::string path, MappedFile file, AprContents contents)
      : path_(std::move(path)), file_(std::move(file)), contents_(std::move(contents)) {}
  std::string path_;
  MappedFile file_;
  AprContents contents_;
};

}  // namespace apr::format
