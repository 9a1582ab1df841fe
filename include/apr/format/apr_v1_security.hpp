/// @file apr_v1_security.hpp
/// @brief Signed and password-encrypted APR v1 files (libsodium): the Ed25519 signature over
/// header ‖ metadata ‖ payload, and the payload sealed as salt ‖ nonce ‖ AES-256-GCM ciphertext
/// under a key from Argon2id with the `argon2` crate's defaults, as aprender writes them.
#pragma once

#include <sodium.h>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "apr/core/result.hpp"
#include "apr/format/apr_v1.hpp"
#include "apr/format/sodium_support.hpp"

namespace apr::format {

/// Argon2id cost aprender uses for v1 (`Argon2::default()`: 2 passes, 19 MiB, 1 lane).
struct AprV1Argon2 {
  static constexpr uint64_t kOpslimit = 2;                  ///< passes over memory
  static constexpr size_t kMemlimit = size_t{19456} * 1024;  ///< bytes of memory
};

/// Checks a signed v1 file's Ed25519 signature against its embedded public key and, when
/// `trusted_key` is given, that this key is the trusted one.
inline Result<void> verify_apr_v1_signature(const AprV1Contents& contents, std::string_view source,
                                            std::optional<std::span<const std::byte, crypto_sign_PUBLICKEYBYTES>> trusted_key = std::nullopt) {
  if (auto ready = sodium_ready(); !ready) return ready;
  if (!contents.is_signed()) return make_error(ErrorCode::crypto, "{}: the file is not signed (flag 0x02 at offset 0x15 is clear)", source);
  const auto* signature = reinterpret_cast<const unsigned char*>(contents.signature.data());
  const auto* key = reinterpret_cast<const unsigned char*>(contents.public_key.data());
  if (trusted_key && ::sodium_memcmp(key, trusted_key->data(), crypto_sign_PUBLICKEYBYTES) != 0) {
    return make_error(ErrorCode::crypto, "{}: signed by key {}, not by the trusted key {}", source, to_hex(contents.public_key), to_hex(*trusted_key));
  }
  if (::crypto_sign_verify_detached(signature, reinterpret_cast<const unsigned char*>(contents.signed_bytes.data()), contents.signed_bytes.size(), key) != 0) {
    return make_error(ErrorCode::crypto, "{}: Ed25519 signature at offset {:#x} does not match the header, metadata and payload", source,
                      contents.signed_bytes.size());
  }
  return ok();
}

/// Decrypts (then decompresses) a password-encrypted v1 payload. A wrong passphrase fails
/// AES-GCM's authentication and says so; it never yields bytes.
inline Result<std::vector<std::byte>> decrypt_apr_v1_payload(const AprV1Contents& contents, std::string_view passphrase, std::string_view source) {
  using namespace apr_v1;
  if (auto ready = sodium_ready(); !ready) return std::move(ready).error();
  if (!contents.encrypted()) return make_error(ErrorCode::crypto, "{}: the payload is not encrypted (flag 0x01 at offset 0x15 is clear)", source);
  if (::crypto_aead_aes256gcm_is_available() == 0) {
    return make_error(ErrorCode::unsupported, "AES-256-GCM needs a CPU with AES-NI and PCLMUL (libsodium has no portable fallback); this one has none");
  }
  const auto salt = contents.payload.first(kSaltSize);
  const auto nonce = contents.payload.subspan(kSaltSize, kNonceSize);
  const auto sealed = contents.payload.subspan(kSaltSize + kNonceSize);
  std::array<unsigned char, crypto_aead_aes256gcm_KEYBYTES> key{};
  if (::crypto_pwhash(key.data(), key.size(), passphrase.data(), passphrase.size(), reinterpret_cast<const unsigned char*>(salt.data()),
                      AprV1Argon2::kOpslimit, AprV1Argon2::kMemlimit, crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return make_error(ErrorCode::crypto, "{}: Argon2id key derivation ran out of memory ({} bytes)", source, AprV1Argon2::kMemlimit);
  }
  std::vector<std::byte> plain(sealed.size() - kTagSize);
  unsigned long long length = 0;
  const int status = ::crypto_aead_aes256gcm_decrypt(reinterpret_cast<unsigned char*>(plain.data()), &length, nullptr,
                                                     reinterpret_cast<const unsigned char*>(sealed.data()), sealed.size(), nullptr, 0,
                                                     reinterpret_cast<const unsigned char*>(nonce.data()), key.data());
  ::sodium_memzero(key.data(), key.size());
  if (status != 0) {
    return make_error(ErrorCode::crypto, "{}: wrong passphrase, or the encrypted payload at offset {:#x} was changed (AES-256-GCM authentication failed)",
                      source, kHeaderSize + contents.header.metadata_size);
  }
  return decompress_apr_v1_payload(contents.header, plain, source);
}

}  // namespace apr::format
