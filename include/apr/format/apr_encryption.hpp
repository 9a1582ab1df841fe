/// @file apr_encryption.hpp
/// @brief AES-256-GCM encryption of APR tensor payloads (libsodium) with the key derived by
/// Argon2id from a passphrase; salt and parameters live in the metadata's "encryption" block,
/// with a key check so that a wrong passphrase is reported as such, never decoded into garbage.
#pragma once

#include <sodium.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/core/result.hpp"
#include "apr/format/apr_payload.hpp"
#include "apr/format/apr_reader.hpp"
#include "apr/format/apr_writer.hpp"
#include "apr/format/sodium_support.hpp"

namespace apr::format {

/// Argon2id cost: libsodium's opslimit and memlimit (bytes).
struct Argon2Params {
  uint64_t opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;  ///< passes over memory
  uint64_t memlimit = crypto_pwhash_MEMLIMIT_INTERACTIVE;  ///< bytes of memory (64 MiB)
};

/// Most memory an encryption block may ask Argon2id for (a hostile file must not exhaust RAM).
inline constexpr uint64_t kMaxArgon2Memory = uint64_t{4} << 30;

/// AES-256-GCM with one key (a payload cipher for the APR writer and reader).
class AesGcmCipher final : public PayloadCipher {
 public:
  /// A cipher with the 32-byte `key`; fails when the CPU lacks AES-NI/PCLMUL (libsodium's AES-GCM needs them).
  static Result<std::shared_ptr<const AesGcmCipher>> create(std::span<const std::byte, crypto_aead_aes256gcm_KEYBYTES> key) {
    if (auto ready = sodium_ready(); !ready) return std::move(ready).error();
    if (::crypto_aead_aes256gcm_is_available() == 0) {
      return make_error(ErrorCode::unsupported, "AES-256-GCM needs a CPU with AES-NI and PCLMUL (libsodium has no portable fallback); this one has none");
    }
    auto cipher = std::shared_ptr<AesGcmCipher>(new AesGcmCipher());
    ::crypto_aead_aes256gcm_beforenm(&cipher->state_, reinterpret_cast<const unsigned char*>(key.data()));
    return std::shared_ptr<const AesGcmCipher>(std::move(cipher));
  }
  ~AesGcmCipher() override { ::sodium_memzero(&state_, sizeof state_); }

  [[nodiscard]] Cipher kind() const override { return Cipher::aes256gcm; }
  void fill_nonce(std::span<std::byte, apr_v2::kNonceSize> nonce) const override { ::randombytes_buf(nonce.data(), nonce.size()); }
  Result<void> seal(std::span<const std::byte> plain, std::span<const std::byte> associated, std::span<const std::byte, apr_v2::kNonceSize> nonce,
                    std::span<std::byte> sealed) const override {
    if (sealed.size() != plain.size() + apr_v2::kTagSize) return make_error(ErrorCode::internal, "seal: {} bytes for {} + tag", sealed.size(), plain.size());
    unsigned long long length = 0;
    ::crypto_aead_aes256gcm_encrypt_afternm(u8(sealed.data()), &length, u8(plain.data()), plain.size(), u8(associated.data()), associated.size(), nullptr,
                                            u8(nonce.data()), &state_);
    return ok();
  }
  Result<void> open(std::span<const std::byte> sealed, std::span<const std::byte> associated, std::span<const std::byte, apr_v2::kNonceSize> nonce,
                    std::span<std::byte> plain) const override {
    if (sealed.size() != plain.size() + apr_v2::kTagSize) return make_error(ErrorCode::internal, "open: {} bytes for {} + tag", sealed.size(), plain.size());
    unsigned long long length = 0;
    if (::crypto_aead_aes256gcm_decrypt_afternm(u8(plain.data()), &length, nullptr, u8(sealed.data()), sealed.size(), u8(associated.data()),
                                                associated.size(), u8(nonce.data()), &state_) != 0) {
      return make_error(ErrorCode::crypto, "AES-256-GCM authentication failed: the payload, its header or its name changed after encryption");
    }
    return ok();
  }

 private:
  AesGcmCipher() = default;
  template <class T>
  static unsigned char* u8(T* p) {
    return reinterpret_cast<unsigned char*>(const_cast<std::remove_const_t<T>*>(p));
  }
  alignas(16) crypto_aead_aes256gcm_state state_{};
};

namespace detail {

/// The key check stored beside the salt: BLAKE2b-256 of a fixed label keyed with the derived key.
inline std::array<std::byte, 32> key_check(std::span<const std::byte, 32> key) {
  static constexpr std::string_view kLabel = "apr key check v1";
  std::array<std::byte, 32> out{};
  ::crypto_generichash(reinterpret_cast<unsigned char*>(out.data()), out.size(), reinterpret_cast<const unsigned char*>(kLabel.data()), kLabel.size(),
                       reinterpret_cast<const unsigned char*>(key.data()), key.size());
  return out;
}

/// Argon2id(passphrase, salt) as a 32-byte key.
inline Result<std::array<std::byte, 32>> derive_key(std::string_view passphrase, std::span<const std::byte, crypto_pwhash_SALTBYTES> salt, const Argon2Params& params) {
  std::array<std::byte, 32> key{};
  if (::crypto_pwhash(reinterpret_cast<unsigned char*>(key.data()), key.size(), passphrase.data(), passphrase.size(),
                      reinterpret_cast<const unsigned char*>(salt.data()), params.opslimit, static_cast<size_t>(params.memlimit),
                      crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return make_error(ErrorCode::crypto, "Argon2id key derivation failed (out of memory for {} bytes?)", params.memlimit);
  }
  return key;
}

}  // namespace detail

/// A new key from `passphrase` with a fresh salt: the cipher and the metadata block describing it.
struct NewEncryption {
  std::shared_ptr<const AesGcmCipher> cipher;  ///< encrypts the payloads
  nlohmann::json block;                        ///< goes into the metadata as "encryption"
};

/// Derives a key from `passphrase` with a fresh random salt and `params`.
inline Result<NewEncryption> new_encryption(std::string_view passphrase, const Argon2Params& params = {}) {
  if (auto ready = sodium_ready(); !ready) return std::move(ready).error();
  if (passphrase.empty()) return make_error(ErrorCode::invalid_argument, "the passphrase is empty");
  std::array<std::byte, crypto_pwhash_SALTBYTES> salt{};
  ::randombytes_buf(salt.data(), salt.size());
  auto key = detail::derive_key(passphrase, salt, params);
  if (!key) return std::move(key).error();
  auto cipher = AesGcmCipher::create(*key);
  const auto check = detail::key_check(*key);
  ::sodium_memzero(key->data(), key->size());
  if (!cipher) return std::move(cipher).error();
  return NewEncryption{*cipher, {{"cipher", "aes-256-gcm"}, {"kdf", "argon2id13"}, {"salt", to_hex(salt)}, {"opslimit", params.opslimit},
                                 {"memlimit", params.memlimit}, {"key_check", to_hex(check)}}};
}

/// The cipher for `metadata`'s "encryption" block and `passphrase`; a wrong passphrase is an
/// ErrorCode::crypto error saying so (checked against the block's key check before any tensor).
inline Result<std::shared_ptr<const AesGcmCipher>> passphrase_cipher(const nlohmann::json& metadata, std::string_view passphrase, std::string_view source) {
  if (auto ready = sodium_ready(); !ready) return std::move(ready).error();
  auto bad = [&](std::string_view what) { return make_error(ErrorCode::format, "{}: metadata 'encryption': {}", source, what); };
  if (!metadata.contains("encryption") || !metadata["encryption"].is_object()) return bad("missing (the ENCRYPTED flag is set)");
  const auto& block = metadata["encryption"];
  if (block.value("cipher", "") != "aes-256-gcm" || block.value("kdf", "") != "argon2id13") {
    return make_error(ErrorCode::unsupported, "{}: metadata 'encryption': cipher '{}' with kdf '{}' (apr reads aes-256-gcm with argon2id13)", source,
                      block.value("cipher", "?"), block.value("kdf", "?"));
  }
  if (!block.contains("opslimit") || !block["opslimit"].is_number_unsigned() || !block.contains("memlimit") || !block["memlimit"].is_number_unsigned()) {
    return bad("opslimit and memlimit must be unsigned integers");
  }
  const Argon2Params params{block["opslimit"].get<uint64_t>(), block["memlimit"].get<uint64_t>()};
  if (params.opslimit < crypto_pwhash_OPSLIMIT_MIN || params.opslimit > 64 || params.memlimit < crypto_pwhash_MEMLIMIT_MIN || params.memlimit > kMaxArgon2Memory) {
    return bad(fmt::format("Argon2id opslimit {} / memlimit {} outside [{}, 64] / [{}, {}]", params.opslimit, params.memlimit, crypto_pwhash_OPSLIMIT_MIN,
                           crypto_pwhash_MEMLIMIT_MIN, kMaxArgon2Memory));
  }
  std::array<std::byte, crypto_pwhash_SALTBYTES> salt{};
  std::array<std::byte, 32> expected{};
  if (!block.contains("salt") || !block["salt"].is_string() || !from_hex(block["salt"].get<std::string>(), salt, "salt")) return bad("salt must be 32 hex digits");
  if (!block.contains("key_check") || !block["key_check"].is_string() || !from_hex(block["key_check"].get<std::string>(), expected, "key_check")) {
    return bad("key_check must be 64 hex digits");
  }
  auto key = detail::derive_key(passphrase, salt, params);
  if (!key) return std::move(key).error();
  const auto check = detail::key_check(*key);
  if (::sodium_memcmp(check.data(), expected.data(), check.size()) != 0) {
    ::sodium_memzero(key->data(), key->size());
    return make_error(ErrorCode::crypto, "{}: wrong passphrase (the key it gives does not match the file's key check)", source);
  }
  auto cipher = AesGcmCipher::create(*key);
  ::sodium_memzero(key->data(), key->size());
  return cipher;
}

/// AprOpenOptions that decrypt with a key from `passphrase` (`source` names the file in errors).
inline AprOpenOptions passphrase_options(std::string passphrase, std::string source) {
  AprOpenOptions options;
  options.cipher = [passphrase = std::move(passphrase), source = std::move(source)](const AprContents& contents) -> Result<std::shared_ptr<const PayloadCipher>> {
    auto cipher = passphrase_cipher(contents.metadata, passphrase, source);
    if (!cipher) return std::move(cipher).error();
    return std::shared_ptr<const PayloadCipher>(std::move(cipher).value());
  };
  return options;
}

/// Rewrites `file` at `output` with `metadata` and `encoding` (nullptr: plain), keeping its
/// informational flags and dropping the encoding and signature flags of the source.
inline Result<void> rewrite_apr(const AprFile& file, const nlohmann::json& metadata, const std::string& output, const AprEncoding* encoding) {
  std::vector<AprWriteTensor> tensors;
  for (size_t i = 0; i < file.tensors().size(); ++i) {
    const auto& entry = file.contents().entries[i];
    tensors.push_back(AprWriteTensor::from_view(file.tensors()[i], entry.payload ? entry.payload->code : entry.code));
  }
  const auto flags = static_cast<uint16_t>(file.contents().flags & ~(apr_v2::kLz4Compressed | apr_v2::kZstdCompressed | apr_v2::kEncrypted | apr_v2::kSigned));
  return write_apr(output, apr_metadata_text(metadata), std::move(tensors), flags, encoding);
}

/// Writes `input` encrypted under `passphrase` at `output` (tensors optionally compressed first
/// with `codec`/`level`); an already encrypted input is refused.
inline Result<void> encrypt_apr(const std::string& input, const std::string& output, std::string_view passphrase, Codec codec = Codec::none,
                                int level = 0, const Argon2Params& params = {}) {
  auto file = AprFile::open(input);
  if (!file) return std::move(file).error();
  if ((*file)->contents().flags & apr_v2::kEncrypted) return make_error(ErrorCode::invalid_argument, "{}: already encrypted", input);
  auto encryption = new_encryption(passphrase, params);
  if (!encryption) return std::move(encryption).error();
  nlohmann::json metadata = (*file)->metadata();
  metadata["encryption"] = encryption->block;
  const AprEncoding encoding{codec, level, encryption->cipher.get()};
  return rewrite_apr(**file, metadata, output, &encoding);
}

/// Writes the plain (unencrypted, uncompressed, unsigned) form of encrypted `input` at `output`.
inline Result<void> decrypt_apr(const std::string& input, const std::string& output, std::string passphrase) {
  auto file = AprFile::open(input, passphrase_options(std::move(passphrase), input));
  if (!file) return std::move(file).error();
  if (!((*file)->contents().flags & apr_v2::kEncrypted)) return make_error(ErrorCode::invalid_argument, "{}: not encrypted", input);
  nlohmann::json metadata = (*file)->metadata();
  metadata.erase("encryption");
  return rewrite_apr(**file, metadata, output, nullptr);
}

}  // namespace apr::format
