/// @file apr_signature_block.hpp
/// @brief The signature block of a signed APR file (apr extension): 104 bytes after the footer
/// holding the signer's Ed25519 public key and an Ed25519ph signature of every byte before the
/// footer (header, metadata, index, data). Checking it needs libsodium: apr/format/crypto.hpp.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "apr/core/byte_reader.hpp"
#include "apr/core/result.hpp"

namespace apr::format {

namespace apr_v2 {
inline constexpr uint32_t kSignatureMagic = 0x53525041;  ///< "APRS" little-endian
inline constexpr uint32_t kSignatureVersion = 1;         ///< signature block version
inline constexpr size_t kPublicKeySize = 32;             ///< Ed25519 public key bytes
inline constexpr size_t kSignatureSize = 64;             ///< Ed25519 signature bytes
inline constexpr size_t kSignatureBlockSize = 8 + kPublicKeySize + kSignatureSize;  ///< the block, after the footer
}  // namespace apr_v2

/// A signed file's signature block.
struct SignatureBlock {
  std::array<std::byte, apr_v2::kPublicKeySize> public_key{};  ///< who signed
  std::array<std::byte, apr_v2::kSignatureSize> signature{};   ///< Ed25519ph of bytes [0, footer)

  /// The block as stored.
  [[nodiscard]] std::array<std::byte, apr_v2::kSignatureBlockSize> bytes() const {
    std::array<std::byte, apr_v2::kSignatureBlockSize> out{};
    std::memcpy(out.data(), &apr_v2::kSignatureMagic, 4);
    std::memcpy(out.data() + 4, &apr_v2::kSignatureVersion, 4);
    std::memcpy(out.data() + 8, public_key.data(), public_key.size());
    std::memcpy(out.data() + 8 + public_key.size(), signature.data(), signature.size());
    return out;
  }
};

/// Parses the signature block `block` (the last kSignatureBlockSize bytes of a signed file, which
/// start at file offset `offset`).
inline Result<SignatureBlock> parse_signature_block(std::span<const std::byte> block, uint64_t offset) {
  using namespace apr_v2;
  if (block.size() != kSignatureBlockSize) return make_error(ErrorCode::format, "signature block at {:#x} is {} bytes, expected {}", offset, block.size(), kSignatureBlockSize);
  if (load_unaligned<uint32_t>(block.data()) != kSignatureMagic) {
    return make_error(ErrorCode::format, "the SIGNED flag is set but the last {} bytes (from {:#x}) are not a signature block (magic 'APRS')", kSignatureBlockSize, offset);
  }
  const auto version = load_unaligned<uint32_t>(block.data() + 4);
  if (version != kSignatureVersion) return make_error(ErrorCode::format, "signature block at {:#x}: version {}, expected {}", offset, version, kSignatureVersion);
  SignatureBlock out;
  std::memcpy(out.public_key.data(), block.data() + 8, kPublicKeySize);
  std::memcpy(out.signature.data(), block.data() + 8 + kPublicKeySize, kSignatureSize);
  return out;
}

}  // namespace apr::format
