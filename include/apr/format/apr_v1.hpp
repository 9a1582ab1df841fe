/// @file apr_v1.hpp
/// @brief Reader of aprender's APR v1 files (magic "APRN"): the 32-byte header, MessagePack
/// metadata, the bincode payload (stored, zstd or lz4) and the CRC-32 trailer. v1 holds classic
/// ML models (regressions, trees, ...), not tensors: apr reads and validates them, and hands
/// the payload to whoever decodes that model type. Signed and encrypted v1 files are checked
/// and opened by apr_v1_security.hpp (libsodium).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <zstd.h>

#include "apr/core/byte_reader.hpp"
#include "apr/core/mapped_file.hpp"
#include "apr/core/result.hpp"
#include "apr/format/compression.hpp"
#include "apr/format/crc32.hpp"

namespace apr::format {

/// Constants of the v1 layout (aprender `src/format/mod.rs`, `types.rs`).
namespace apr_v1 {
inline constexpr std::string_view kMagic = "APRN";                  ///< bytes 0..4
inline constexpr size_t kHeaderSize = 32;                          ///< fixed header
inline constexpr uint32_t kMaxUncompressedSize = uint32_t{1} << 30;  ///< aprender refuses more (1 GiB)
inline constexpr size_t kSignatureSize = 64;                       ///< Ed25519 signature
inline constexpr size_t kPublicKeySize = 32;                       ///< Ed25519 public key
inline constexpr size_t kSaltSize = 16;                            ///< Argon2id salt
inline constexpr size_t kNonceSize = 12;                           ///< AES-256-GCM nonce
inline constexpr size_t kTagSize = 16;                             ///< AES-256-GCM tag

/// Header flag bits (byte 21; bit 7 is ignored on read, as aprender does).
enum Flag : uint8_t {
  kEncrypted = 0x01,     ///< payload is salt ‖ nonce ‖ AES-256-GCM ciphertext
  kSigned = 0x02,        ///< an Ed25519 signature and public key follow the payload
  kStreaming = 0x04,     ///< streaming layout (declared by aprender, never written)
  kLicensed = 0x08,      ///< metadata carries a license
  kTruenoNative = 0x10,  ///< trueno-native layout
  kQuantized = 0x20,     ///< quantized weights
  kHasModelCard = 0x40,  ///< metadata carries a model card
};

/// Payload compression (byte 20).
enum class Compression : uint8_t {
  none = 0,      ///< stored
  zstd_3 = 1,    ///< zstd, level 3
  zstd_19 = 2,   ///< zstd, level 19
  lz4 = 3,       ///< lz4 block prefixed with its u32 decoded size (lz4_flex `compress_prepend_size`)
};

/// aprender's v1 model-type name for `code`; empty when the code is unknown.
constexpr std::string_view model_type_name(uint16_t code) {
  switch (code) {
    case 0x01: return "LinearRegression";
    case 0x02: return "LogisticRegression";
    case 0x03: return "DecisionTree";
    case 0x04: return "RandomForest";
    case 0x05: return "GradientBoosting";
    case 0x06: return "KMeans";
    case 0x07: return "Pca";
    case 0x08: return "NaiveBayes";
    case 0x09: return "Knn";
    case 0x0A: return "Svm";
    case 0x10: return "NgramLm";
    case 0x11: return "Tfidf";
    case 0x12: return "CountVectorizer";
    case 0x20: return "NeuralSequential";
    case 0x21: return "NeuralCustom";
    case 0x30: return "ContentRecommender";
    case 0x40: return "MixtureOfExperts";
    case 0xFF: return "Custom";
    default: return {};
  }
}

/// Name of a compression code ("none", "zstd-3", "zstd-19", "lz4").
constexpr std::string_view compression_name(Compression c) {
  switch (c) {
    case Compression::none: return "none";
    case Compression::zstd_3: return "zstd-3";
    case Compression::zstd_19: return "zstd-19";
    case Compression::lz4: return "lz4";
  }
  return "?";
}
}  // namespace apr_v1

/// The fields of a v1 header.
struct AprV1Header {
  uint8_t version_major = 1;       ///< byte 4
  uint8_t version_minor = 0;       ///< byte 5
  uint16_t model_type = 0;         ///< bytes 6..8 (see apr_v1::model_type_name)
  uint32_t metadata_size = 0;      ///< bytes 8..12: MessagePack bytes after the header
  uint32_t payload_size = 0;       ///< bytes 12..16: stored payload bytes
  uint32_t uncompressed_size = 0;  ///< bytes 16..20: payload bytes once decompressed
  apr_v1::Compression compression = apr_v1::Compression::none;  ///< byte 20
  uint8_t flags = 0;               ///< byte 21, bit 7 masked off
  uint8_t quality_score = 0;       ///< byte 22 (0: not validated)
};

/// A parsed v1 file: views into bytes owned elsewhere.
struct AprV1Contents {
  AprV1Header header;                         ///< the header fields
  nlohmann::json metadata;                    ///< the MessagePack metadata as JSON
  std::span<const std::byte> signed_bytes;    ///< header ‖ metadata ‖ payload (what a signature covers)
  std::span<const std::byte> payload;         ///< the stored payload (compressed and/or encrypted)
  std::span<const std::byte> signature;       ///< 64 bytes when signed, else empty
  std::span<const std::byte> public_key;      ///< 32 bytes when signed, else empty
  uint32_t checksum = 0;                      ///< the CRC-32 trailer (verified)

  /// Whether the payload is encrypted (it then needs the passphrase, apr_v1_security.hpp).
  [[nodiscard]] bool encrypted() const { return (header.flags & apr_v1::kEncrypted) != 0; }
  /// Whether a signature block follows the payload.
  [[nodiscard]] bool is_signed() const { return (header.flags & apr_v1::kSigned) != 0; }
};

/// Parses and validates a v1 file held in `bytes` (header, sizes, metadata, CRC-32 of everything
/// before the trailer); `source` (the file name) prefixes every error.
inline Result<AprV1Contents> parse_apr_v1(std::span<const std::byte> bytes, std::string_view source) {
  using namespace apr_v1;
  const auto fail = [&](std::string message) { return Error{ErrorCode::format, fmt::format("{}: {}", source, message)}; };
  if (bytes.size() < 4 || std::string_view(reinterpret_cast<const char*>(bytes.data()), 4) != kMagic) {
    return fail("magic at offset 0x0 is not 'APRN' (not an APR v1 file)");
  }
  if (bytes.size() < kHeaderSize + 4) return fail(fmt::format("file is {} bytes; an APR v1 file needs at least {}", bytes.size(), kHeaderSize + 4));
  AprV1Contents c;
  AprV1Header& h = c.header;
  h.version_major = static_cast<uint8_t>(bytes[4]);
  h.version_minor = static_cast<uint8_t>(bytes[5]);
  h.model_type = load_unaligned<uint16_t>(bytes.data() + 6);
  h.metadata_size = load_unaligned<uint32_t>(bytes.data() + 8);
  h.payload_size = load_unaligned<uint32_t>(bytes.data() + 12);
  h.uncompressed_size = load_unaligned<uint32_t>(bytes.data() + 16);
  const auto compression = static_cast<uint8_t>(bytes[20]);
  h.flags = static_cast<uint8_t>(bytes[21]) & 0x7F;
  h.quality_score = static_cast<uint8_t>(bytes[22]);
  if (h.version_major != 1) return fail(fmt::format("version {}.{} at offset 0x4: expected 1.x", h.version_major, h.version_minor));
  if (model_type_name(h.model_type).empty()) return fail(fmt::format("model type {:#06x} at offset 0x6 is not one aprender defines", h.model_type));
  if (compression > 3) return fail(fmt::format("compression {} at offset 0x14: expected 0 (none), 1-2 (zstd) or 3 (lz4)", compression));
  h.compression = static_cast<Compression>(compression);
  if (h.uncompressed_size > kMaxUncompressedSize) {
    return fail(fmt::format("uncompressed_size {} at offset 0x10 exceeds aprender's limit of 1 GiB", h.uncompressed_size));
  }
  // header ‖ metadata ‖ payload [‖ signature ‖ public key] ‖ crc32, all sizes in 64 bits
  const uint64_t trailer = 4 + (c.is_signed() ? kSignatureSize + kPublicKeySize : 0);
  const uint64_t expected = uint64_t{kHeaderSize} + h.metadata_size + h.payload_size + trailer;
  if (expected != bytes.size()) {
    return fail(fmt::format("header sizes (metadata {} at 0x8, payload {} at 0xc{}) make a {}-byte file, but it has {} bytes", h.metadata_size,
                            h.payload_size, c.is_signed() ? ", signed" : "", expected, bytes.size()));
  }
  const size_t crc_at = bytes.size() - 4;
  c.checksum = load_unaligned<uint32_t>(bytes.data() + crc_at);
  if (const uint32_t computed = crc32(bytes.first(crc_at)); computed != c.checksum) {
    return Error{ErrorCode::checksum, fmt::format("{}: checksum at offset {:#x} is {:#010x}, the CRC-32 of the preceding bytes is {:#010x}", source, crc_at,
                                                  c.checksum, computed)};
  }
  const size_t payload_at = kHeaderSize + h.metadata_size;
  c.payload = bytes.subspan(payload_at, h.payload_size);
  c.signed_bytes = bytes.first(payload_at + h.payload_size);
  if (c.is_signed()) {
    c.signature = bytes.subspan(payload_at + h.payload_size, kSignatureSize);
    c.public_key = bytes.subspan(payload_at + h.payload_size + kSignatureSize, kPublicKeySize);
  }
  if (c.encrypted() && h.payload_size < kSaltSize + kNonceSize + kTagSize) {
    return fail(fmt::format("encrypted payload of {} bytes is shorter than salt, nonce and tag ({} bytes)", h.payload_size, kSaltSize + kNonceSize + kTagSize));
  }
  if (!c.encrypted() && h.compression == Compression::none && h.payload_size != h.uncompressed_size) {
    return fail(fmt::format("stored payload is {} bytes, but uncompressed_size at 0x10 says {}", h.payload_size, h.uncompressed_size));
  }
  c.metadata = nlohmann::json::from_msgpack(bytes.subspan(kHeaderSize, h.metadata_size), true, false);
  if (c.metadata.is_discarded()) return fail(fmt::format("metadata at offset 0x20 ({} bytes) is not valid MessagePack", h.metadata_size));
  if (!c.metadata.is_object()) return fail("metadata at offset 0x20 is not a MessagePack map");
  return c;
}

/// Decompresses a (decrypted) v1 payload `stored` to the header's uncompressed_size into a new buffer.
inline Result<std::vector<std::byte>> decompress_apr_v1_payload(const AprV1Header& header, std::span<const std::byte> stored, std::string_view source) {
  using apr_v1::Compression;
  std::vector<std::byte> out(header.uncompressed_size);
  Result<void> status = ok();
  switch (header.compression) {
    case Compression::none:
      if (stored.size() != out.size()) {
        return make_error(ErrorCode::format, "{}: payload is {} bytes, but uncompressed_size says {}", source, stored.size(), out.size());
      }
      std::copy(stored.begin(), stored.end(), out.begin());
      return out;
    case Compression::zstd_3:
    case Compression::zstd_19: status = decompress(Codec::zstd, stored, out); break;
    case Compression::lz4: {
      if (stored.size() < 4) return make_error(ErrorCode::format, "{}: lz4 payload of {} bytes has no size prefix", source, stored.size());
      const uint32_t prefix = load_unaligned<uint32_t>(stored.data());
      if (prefix != header.uncompressed_size) {
        return make_error(ErrorCode::format, "{}: lz4 payload's size prefix says {} bytes, but uncompressed_size says {}", source, prefix, header.uncompressed_size);
      }
      status = decompress(Codec::lz4, stored.subspan(4), out);
      break;
    }
  }
  if (!status) return std::move(status).error().with_context(fmt::format("{}: payload", source));
  return out;
}

/// An APR v1 file mapped read-only and validated.
class AprV1File {
 public:
  /// Maps and validates `path`.
  static Result<AprV1File> open(const std::string& path) {
    auto mapped = MappedFile::open(path);
    if (!mapped) return std::move(mapped).error();
    auto contents = parse_apr_v1(mapped->bytes(), path);
    if (!contents) return std::move(contents).error();
    return AprV1File(std::move(mapped).value(), std::move(contents).value());
  }

  /// The parsed views (valid while this object lives).
  [[nodiscard]] const AprV1Contents& contents() const { return contents_; }
  /// The header fields.
  [[nodiscard]] const AprV1Header& header() const { return contents_.header; }
  /// The metadata (MessagePack map as JSON).
  [[nodiscard]] const nlohmann::json& metadata() const { return contents_.metadata; }
  /// The model type's name, e.g. "LogisticRegression".
  [[nodiscard]] std::string_view model_type() const { return apr_v1::model_type_name(contents_.header.model_type); }
  /// Path the file was opened with.
  [[nodiscard]] const std::string& path() const { return file_.path(); }

  /// The payload (bincode of the model) decompressed; encrypted files need apr_v1_security.hpp's
  /// decrypt_apr_v1_payload instead.
  [[nodiscard]] Result<std::vector<std::byte>> payload() const {
    if (contents_.encrypted()) return make_error(ErrorCode::crypto, "{}: the payload is encrypted; a passphrase is needed to read it", path());
    return decompress_apr_v1_payload(contents_.header, contents_.payload, path());
  }

  /// A JSON summary: header fields, metadata, sizes and the verified checksum.
  [[nodiscard]] nlohmann::json summary() const {
    const AprV1Header& h = contents_.header;
    nlohmann::json flags = nlohmann::json::array();
    for (const auto& [bit, name] : {std::pair{apr_v1::kEncrypted, "encrypted"}, std::pair{apr_v1::kSigned, "signed"}, std::pair{apr_v1::kStreaming, "streaming"},
                                    std::pair{apr_v1::kLicensed, "licensed"}, std::pair{apr_v1::kTruenoNative, "trueno_native"},
                                    std::pair{apr_v1::kQuantized, "quantized"}, std::pair{apr_v1::kHasModelCard, "has_model_card"}}) {
      if (h.flags & bit) flags.push_back(name);
    }
    return {{"format", "apr-v1"}, {"version", fmt::format("{}.{}", h.version_major, h.version_minor)}, {"model_type", std::string(model_type())},
            {"model_type_code", h.model_type}, {"compression", std::string(apr_v1::compression_name(h.compression))}, {"flags", flags},
            {"quality_score", h.quality_score}, {"metadata_size", h.metadata_size}, {"payload_size", h.payload_size},
            {"uncompressed_size", h.uncompressed_size}, {"checksum", fmt::format("{:#010x}", contents_.checksum)}, {"metadata", contents_.metadata}};
  }

 private:
  AprV1File(MappedFile file, AprV1Contents contents) : file_(std::move(file)), contents_(std::move(contents)) {}
  MappedFile file_;
  AprV1Contents contents_;
};

}  // namespace apr::format
