/// @file apr_reader.hpp
/// @brief APR v2 reader: every header field, offset, size and dim checked before use; tensors are
/// zero-copy views into the mapped file (encoded payloads are decoded into aligned buffers); the
/// footer CRC is checked on request.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/core/aligned_buffer.hpp"
#include "apr/core/byte_reader.hpp"
#include "apr/core/mapped_file.hpp"
#include "apr/core/result.hpp"
#include "apr/core/tensor.hpp"
#include "apr/core/utf8.hpp"
#include "apr/format/apr_layout.hpp"
#include "apr/format/apr_payload.hpp"
#include "apr/format/apr_signature_block.hpp"
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
  std::optional<PayloadHeader> payload;  ///< set for an encoded (compressed/encrypted) payload
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
  uint32_t footer_checksum = 0;   ///< CRC-32 stored in the footer
  uint64_t footer_offset = 0;     ///< where the footer is (the data end)
  std::optional<SignatureBlock> signature;  ///< the block after the footer of a signed file
  std::string metadata_text;      ///< the JSON exactly as stored
  nlohmann::json metadata;        ///< parsed metadata
  std::vector<AprTensorEntry> entries;  ///< index entries in file order (sorted by name)
  std::vector<TensorView> views;  ///< one per entry, into the parsed bytes (empty bytes for encoded payloads until decoded)
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
  const uint64_t file_size = bytes.size();
  const uint64_t trailer = kFooterSize + ((c.flags & kSigned) ? kSignatureBlockSize : 0);
  if (file_size < kHeaderSize + trailer) return fail((c.flags & kSigned) ? "file ends before the footer and signature block" : "file ends before the footer");
  const uint64_t data_end = file_size - trailer;
  if (c.flags & kSigned) {
    auto block = parse_signature_block(bytes.subspan(data_end + kFooterSize), data_end + kFooterSize);
    if (!block) return std::move(block).error().with_context(source);
    c.signature = *block;
  }
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
    uint64_t begin = 0, end = 0;
    const bool in_file = checked_add(c.data_offset, entry.offset, begin) && checked_add(begin, entry.size, end) && end <= data_end;
    uint64_t plain_size = entry.size;
    uint8_t plain_code = entry.code;
    if (entry.code == kEncodedCode) {
      if (!in_file) return named(fmt::format("data {:#x}+{:#x} past end of file ({:#x})", begin, entry.size, data_end));
      auto header = parse_payload_header(bytes.subspan(begin, entry.size));
      if (!header) return named(fmt::format("{} (payload at {:#x})", header.error().message, begin));
      const uint16_t needed = header->codec == Codec::lz4 ? kLz4Compressed : header->codec == Codec::zstd ? kZstdCompressed : 0;
      if ((c.flags & needed) != needed) return named(fmt::format("payload at {:#x} is {}-compressed but the header flags ({:#06x}) do not say so", begin, codec_name(header->codec), c.flags));
      if (header->cipher != Cipher::none && !(c.flags & kEncrypted)) return named(fmt::format("payload at {:#x} is encrypted but the ENCRYPTED flag is clear", begin));
      plain_size = header->decoded_size;
      plain_code = header->code;
      entry.payload = *header;
    }
    const auto dtype = apr_v2::dtype_of_code(plain_code, numel, plain_size);
    if (!dtype) return named(fmt::format("unknown dtype code {}", plain_code));
    entry.dtype = *dtype;
    const auto expected = dtype_bytes(entry.dtype, numel);
    if (!expected) return named(fmt::format("dims {} overflow for {}", to_string(entry.shape), to_string(entry.dtype)));
    if (entry.payload && *expected != plain_size) {
      return named(fmt::format("payload at {:#x} decodes to {} bytes, but {} {} values need {}", begin, plain_size, to_string(entry.shape), to_string(entry.dtype), *expected));
    }
    if (*expected != plain_size) return named(fmt::format("size {} bytes, but {} {} values need {}", entry.size, to_string(entry.shape), to_string(entry.dtype), *expected));
    if (!in_file) return named(fmt::format("data {:#x}+{:#x} past end of file ({:#x})", begin, entry.size, data_end));
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
  c.footer_offset = data_end;
  c.footer_checksum = load_unaligned<uint32_t>(bytes.data() + data_end);
  for (const auto& entry : c.entries) {
    c.views.push_back(TensorView{entry.name, entry.dtype, entry.shape, entry.payload ? std::span<const std::byte>() : bytes.subspan(c.data_offset + entry.offset, entry.size)});
  }
  return c;
}

/// How AprFile::open reads encoded payloads.
struct AprOpenOptions {
  /// Gives the cipher of an encrypted file from its parsed contents (e.g. a key from a passphrase
  /// and the metadata's salt: format::passphrase_cipher() in apr/format/crypto.hpp).
  std::function<Result<std::shared_ptr<const PayloadCipher>>(const AprContents&)> cipher;
  /// Checks the parsed file before anything is decoded (e.g. its signature against a public key:
  /// format::signature_check() in apr/format/crypto.hpp).
  std::function<Result<void>(const AprContents&, std::span<const std::byte> bytes)> check;
};

/// Decodes every encoded payload of `contents` (parsed from `bytes`) into one aligned buffer per
/// tensor and points its view there; `cipher` decrypts (nullptr: encrypted payloads are an error).
inline Result<std::vector<AlignedBuffer>> decode_apr_payloads(AprContents& contents, std::span<const std::byte> bytes, const PayloadCipher* cipher,
                                                              std::string_view source) {
  std::vector<AlignedBuffer> buffers;
  for (size_t i = 0; i < contents.entries.size(); ++i) {
    const AprTensorEntry& entry = contents.entries[i];
    if (!entry.payload) continue;
    const uint64_t begin = contents.data_offset + entry.offset;
    auto context = [&] { return fmt::format("{}: tensor {} '{}' (payload at {:#x})", source, i, entry.name, begin); };
    try {
      buffers.emplace_back(static_cast<size_t>(entry.payload->decoded_size));
    } catch (const std::bad_alloc&) {
      return make_error(ErrorCode::io, "{}: cannot allocate {} bytes to decode it", context(), entry.payload->decoded_size);
    }
    auto status = decode_payload(*entry.payload, entry.name, bytes.subspan(begin, entry.size), cipher, buffers.back().bytes());
    if (!status) return std::move(status).error().with_context(context());
    contents.views[i].bytes = buffers.back().bytes();
  }
  return buffers;
}

/// An APR v2 file, memory-mapped, as a TensorFile.
class AprFile final : public TensorFile {
 public:
  /// Opens and validates `path` (all structural checks; the footer CRC with verify_checksum());
  /// compressed payloads are decoded here, encrypted ones with the cipher `options` give.
  static Result<std::unique_ptr<AprFile>> open(const std::string& path, const AprOpenOptions& options = {}) {
    auto mapped = MappedFile::open(path);
    if (!mapped) return std::move(mapped).error();
    auto contents = parse_apr(mapped->bytes(), path);
    if (!contents) return std::move(contents).error();
    if (options.check) {
      if (auto checked = options.check(*contents, mapped->bytes()); !checked) return std::move(checked).error();
    }
    std::shared_ptr<const PayloadCipher> cipher;
    if ((contents->flags & apr_v2::kEncrypted) && options.cipher) {
      auto made = options.cipher(*contents);
      if (!made) return std::move(made).error();
      cipher = std::move(made).value();
    }
    auto decoded = decode_apr_payloads(*contents, mapped->bytes(), cipher.get(), path);
    if (!decoded) return std::move(decoded).error();
    return std::unique_ptr<AprFile>(new AprFile(path, std::move(mapped).value(), std::move(contents).value(), std::move(decoded).value()));
  }

  /// Checks the footer: CRC-32 of every byte before it.
  [[nodiscard]] Result<void> verify_checksum() const {
    const auto bytes = file_.bytes();
    const uint32_t computed = crc32(bytes.first(contents_.footer_offset));
    if (computed != contents_.footer_checksum) {
      return make_error(ErrorCode::checksum, "{}: footer checksum at offset {:#x} is {:#010x}, the file's CRC-32 is {:#010x}", path_,
                        contents_.footer_offset, contents_.footer_checksum, computed);
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
    const std::byte* p = tensor.bytes.data();
    if (p < file_.data() || p >= file_.data() + file_.size()) return std::nullopt;  // decoded into a buffer
    return static_cast<uint64_t>(p - file_.data());
  }

 private:
  AprFile(std::string path, MappedFile file, AprContents contents, std::vector<AlignedBuffer> decoded)
      : path_(std::move(path)), file_(std::move(file)), contents_(std::move(contents)), decoded_(std::move(decoded)) {}
  std::string path_;
  MappedFile file_;
  AprContents contents_;
  std::vector<AlignedBuffer> decoded_;
};

}  // namespace apr::format
