/// @file apr_payload.hpp
/// @brief Encoded tensor payloads (apr extension): a tensor stored compressed (lz4, zstd) and/or
/// encrypted (AES-256-GCM) behind a 48-byte payload header; docs/apr-format.md has the layout.
///
/// An index entry whose dtype code is kEncodedCode points at such a payload. aprender rejects
/// the code ("invalid dtype"), so it refuses these files instead of misreading them; entries
/// stored plainly keep their ordinary code, so a file nobody asked to encode stays aprender's.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "apr/core/byte_reader.hpp"
#include "apr/core/result.hpp"
#include "apr/format/apr_layout.hpp"
#include "apr/format/compression.hpp"
#include "apr/format/crc32.hpp"

namespace apr::format {

namespace apr_v2 {
inline constexpr uint8_t kEncodedCode = 0xE0;           ///< index dtype code of an encoded payload
inline constexpr uint32_t kPayloadMagic = 0x45525041;   ///< "APRE" little-endian
inline constexpr uint8_t kPayloadVersion = 1;           ///< payload header version
inline constexpr size_t kPayloadHeaderSize = 48;        ///< payload header bytes
inline constexpr size_t kNonceSize = 12;                ///< AES-256-GCM nonce bytes
inline constexpr size_t kTagSize = 16;                  ///< AES-256-GCM tag bytes
}  // namespace apr_v2

/// How a payload is encrypted; the values are the cipher byte of the payload header.
enum class Cipher : uint8_t {
  none = 0,       ///< plain
  aes256gcm = 1,  ///< AES-256-GCM, the 16-byte tag after the ciphertext
};

/// The 48-byte header in front of an encoded payload.
struct PayloadHeader {
  Codec codec = Codec::none;                          ///< compression of the (plain) payload
  Cipher cipher = Cipher::none;                       ///< encryption of the compressed bytes
  uint8_t code = 0;                                   ///< dtype code the tensor has when stored plainly
  uint64_t decoded_size = 0;                          ///< bytes of the tensor once decoded (= dtype × dims)
  uint64_t stored_size = 0;                           ///< bytes of payload after this header
  uint32_t crc = 0;                                   ///< CRC-32 of the decoded bytes (0 when encrypted: the tag authenticates)
  std::array<std::byte, apr_v2::kNonceSize> nonce{};  ///< AES-256-GCM nonce (zero when plain)

  /// The header as stored.
  [[nodiscard]] std::array<std::byte, apr_v2::kPayloadHeaderSize> bytes() const {
    std::array<std::byte, apr_v2::kPayloadHeaderSize> out{};
    auto set = [&](size_t at, const auto& value) { std::memcpy(out.data() + at, &value, sizeof value); };
    set(0, apr_v2::kPayloadMagic);
    out[4] = std::byte{apr_v2::kPayloadVersion};
    out[5] = static_cast<std::byte>(codec);
    out[6] = static_cast<std::byte>(cipher);
    out[7] = std::byte{code};
    set(8, decoded_size);
    set(16, stored_size);
    set(24, crc);
    std::memcpy(out.data() + 32, nonce.data(), nonce.size());
    return out;
  }
};

/// Parses and checks the payload header at the start of `payload` (an entry's stored bytes);
/// errors name the field and its offset inside the payload.
inline Result<PayloadHeader> parse_payload_header(std::span<const std::byte> payload) {
  using namespace apr_v2;
  auto fail = [](std::string message) { return Error{ErrorCode::format, fmt::format("payload header: {}", message)}; };
  if (payload.size() < kPayloadHeaderSize) return fail(fmt::format("entry holds {} bytes, a payload header needs {}", payload.size(), kPayloadHeaderSize));
  if (load_unaligned<uint32_t>(payload.data()) != kPayloadMagic) return fail("magic at +0x0 is not 'APRE'");
  if (static_cast<uint8_t>(payload[4]) != kPayloadVersion) return fail(fmt::format("version {} at +0x4, expected {}", static_cast<int>(payload[4]), kPayloadVersion));
  PayloadHeader h;
  const auto codec = static_cast<uint8_t>(payload[5]);
  const auto cipher = static_cast<uint8_t>(payload[6]);
  if (codec > static_cast<uint8_t>(Codec::zstd)) return fail(fmt::format("unknown codec {} at +0x5 (apr knows 0 none, 1 lz4, 2 zstd)", codec));
  if (cipher > static_cast<uint8_t>(Cipher::aes256gcm)) return fail(fmt::format("unknown cipher {} at +0x6 (apr knows 0 none, 1 AES-256-GCM)", cipher));
  h.codec = static_cast<Codec>(codec);
  h.cipher = static_cast<Cipher>(cipher);
  h.code = static_cast<uint8_t>(payload[7]);
  h.decoded_size = load_unaligned<uint64_t>(payload.data() + 8);
  h.stored_size = load_unaligned<uint64_t>(payload.data() + 16);
  h.crc = load_unaligned<uint32_t>(payload.data() + 24);
  std::memcpy(h.nonce.data(), payload.data() + 32, kNonceSize);
  if (load_unaligned<uint32_t>(payload.data() + 28) != 0 || load_unaligned<uint32_t>(payload.data() + 44) != 0) return fail("reserved bytes +0x1c and +0x2c are not zero");
  if (h.code == kEncodedCode) return fail("dtype code at +0x7 is the encoded-payload code itself");
  if (h.stored_size != payload.size() - kPayloadHeaderSize) {
    return fail(fmt::format("stored size {} at +0x10, but the entry holds {} bytes after the header", h.stored_size, payload.size() - kPayloadHeaderSize));
  }
  if (h.codec == Codec::none && h.cipher == Cipher::none) return fail("neither compressed nor encrypted (such a tensor is stored plainly)");
  const uint64_t tag = h.cipher == Cipher::none ? 0 : kTagSize;
  if (h.stored_size < tag) return fail(fmt::format("stored size {} at +0x10 is shorter than the {}-byte tag", h.stored_size, tag));
  if (h.codec == Codec::none && h.stored_size - tag != h.decoded_size) {
    return fail(fmt::format("uncompressed payload of {} bytes at +0x10 for a decoded size of {}", h.stored_size - tag, h.decoded_size));
  }
  if (h.cipher == Cipher::none && std::any_of(h.nonce.begin(), h.nonce.end(), [](std::byte b) { return b != std::byte{0}; })) {
    return fail("nonce at +0x20 is set on a payload that is not encrypted");
  }
  if (h.cipher != Cipher::none && h.crc != 0) return fail("CRC at +0x18 is set on an encrypted payload (its tag authenticates it)");
  return h;
}

/// An AEAD cipher for payloads (apr/format/crypto.hpp has AES-256-GCM with an Argon2id key).
class PayloadCipher {
 public:
  virtual ~PayloadCipher() = default;
  /// The cipher byte written into payload headers.
  [[nodiscard]] virtual Cipher kind() const = 0;
  /// Fills `nonce` with a fresh random nonce.
  virtual void fill_nonce(std::span<std::byte, apr_v2::kNonceSize> nonce) const = 0;
  /// Encrypts `plain` into `sealed` (plain.size() + tag bytes), authenticating `associated` too.
  virtual Result<void> seal(std::span<const std::byte> plain, std::span<const std::byte> associated,
                            std::span<const std::byte, apr_v2::kNonceSize> nonce, std::span<std::byte> sealed) const = 0;
  /// Decrypts `sealed` into `plain` (sealed.size() - tag bytes); a wrong key or changed bytes are an error.
  virtual Result<void> open(std::span<const std::byte> sealed, std::span<const std::byte> associated,
                            std::span<const std::byte, apr_v2::kNonceSize> nonce, std::span<std::byte> plain) const = 0;
};

/// How the writer stores tensors: compression (per tensor, kept only where it shrinks the
/// tensor) and optional encryption of every tensor.
struct AprEncoding {
  Codec codec = Codec::none;               ///< lz4, zstd or none
  int level = 0;                           ///< codec level (see valid_level())
  const PayloadCipher* cipher = nullptr;   ///< encrypts every payload when set

  /// The header flags a file written with this encoding carries.
  [[nodiscard]] uint16_t flags() const {
    uint16_t flags = 0;
    if (codec == Codec::lz4) flags |= apr_v2::kLz4Compressed;
    if (codec == Codec::zstd) flags |= apr_v2::kZstdCompressed;
    if (cipher != nullptr) flags |= apr_v2::kEncrypted;
    return flags;
  }
};

namespace detail {

/// The bytes an AEAD authenticates besides the ciphertext: the payload header, then the name.
inline std::vector<std::byte> payload_associated_data(const PayloadHeader& header, std::string_view name) {
  const auto head = header.bytes();
  std::vector<std::byte> out(head.begin(), head.end());
  const auto* p = reinterpret_cast<const std::byte*>(name.data());
  out.insert(out.end(), p, p + name.size());
  return out;
}

}  // namespace detail

/// The stored bytes (header + payload) of tensor `name` (dtype code `code`, bytes `raw`) under
/// `encoding`, or nullopt when the tensor is best stored plainly (nothing to encrypt and
/// compression does not make it smaller, or it is larger than one LZ4 block).
inline Result<std::optional<std::vector<std::byte>>> encode_payload(const AprEncoding& encoding, std::string_view name, uint8_t code,
                                                                   std::span<const std::byte> raw) {
  using namespace apr_v2;
  PayloadHeader header;
  header.code = code;
  header.decoded_size = raw.size();
  std::vector<std::byte> compressed;
  if (encoding.codec != Codec::none && !raw.empty() && !(encoding.codec == Codec::lz4 && raw.size() > kMaxLz4Input)) {
    auto packed = compress(encoding.codec, encoding.level, raw);
    if (!packed) return std::move(packed).error().with_context(fmt::format("tensor '{}'", name));
    if (packed->size() < raw.size()) {
      compressed = std::move(packed).value();
      header.codec = encoding.codec;
    }
  }
  if (header.codec == Codec::none && encoding.cipher == nullptr) return std::optional<std::vector<std::byte>>();
  const std::span<const std::byte> plain = header.codec == Codec::none ? raw : std::span<const std::byte>(compressed);
  std::vector<std::byte> out(kPayloadHeaderSize + plain.size() + (encoding.cipher != nullptr ? kTagSize : 0));
  header.stored_size = out.size() - kPayloadHeaderSize;
  if (encoding.cipher != nullptr) {
    header.cipher = encoding.cipher->kind();
    encoding.cipher->fill_nonce(header.nonce);
    const auto associated = detail::payload_associated_data(header, name);
    auto sealed = encoding.cipher->seal(plain, associated, header.nonce, std::span(out).subspan(kPayloadHeaderSize));
    if (!sealed) return std::move(sealed).error().with_context(fmt::format("tensor '{}'", name));
  } else {
    header.crc = crc32(raw);
    std::copy(plain.begin(), plain.end(), out.begin() + kPayloadHeaderSize);
  }
  const auto head = header.bytes();
  std::copy(head.begin(), head.end(), out.begin());
  return std::optional<std::vector<std::byte>>(std::move(out));
}

/// Decodes the payload `stored` (header + payload, header parsed as `header`) of tensor `name`
/// into `out` (header.decoded_size bytes): decrypts with `cipher`, decompresses, checks the CRC.
inline Result<void> decode_payload(const PayloadHeader& header, std::string_view name, std::span<const std::byte> stored,
                                   const PayloadCipher* cipher, std::span<std::byte> out) {
  using namespace apr_v2;
  if (out.size() != header.decoded_size) return make_error(ErrorCode::internal, "decode_payload: {} output bytes for {}", out.size(), header.decoded_size);
  const auto payload = stored.subspan(kPayloadHeaderSize);
  std::vector<std::byte> plain_buffer;
  std::span<const std::byte> plain = payload;
  if (header.cipher != Cipher::none) {
    if (cipher == nullptr) return make_error(ErrorCode::crypto, "the payload is encrypted (AES-256-GCM): a passphrase is needed to read it");
    if (cipher->kind() != header.cipher) return make_error(ErrorCode::crypto, "the payload's cipher {} is not the one given", static_cast<int>(header.cipher));
    std::span<std::byte> target = out;
    if (header.codec != Codec::none) {
      plain_buffer.resize(payload.size() - kTagSize);
      target = plain_buffer;
    }
    auto opened = cipher->open(payload, detail::payload_associated_data(header, name), header.nonce, target);
    if (!opened) return opened;
    if (header.codec == Codec::none) return ok();
    plain = plain_buffer;
  }
  if (auto status = decompress(header.codec, plain, out); !status) return status;
  if (header.cipher == Cipher::none) {
    const uint32_t computed = crc32(out);
    if (computed != header.crc) {
      return make_error(ErrorCode::checksum, "decoded bytes have CRC-32 {:#010x}, the payload header (+0x18) says {:#010x}", computed, header.crc);
    }
  }
  return ok();
}

}  // namespace apr::format
