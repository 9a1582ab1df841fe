/// @file apr_signing.hpp
/// @brief Ed25519 signing of APR files (libsodium): keys, sign_apr() (sets the SIGNED flag and
/// appends the signature block), verify_apr_signature(); a changed byte anywhere before the
/// footer makes verification fail.
#pragma once

#include <sodium.h>
#include <sys/stat.h>

#include <array>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <tuple>

#include <fmt/format.h>

#include "apr/core/mapped_file.hpp"
#include "apr/core/result.hpp"
#include "apr/format/apr_reader.hpp"
#include "apr/format/apr_signature_block.hpp"
#include "apr/format/apr_writer.hpp"
#include "apr/format/sodium_support.hpp"

namespace apr::format {

/// An Ed25519 public key.
using PublicKey = std::array<std::byte, apr_v2::kPublicKeySize>;
/// An Ed25519 secret key (libsodium's 64-byte form: seed, then public key).
using SecretKey = std::array<std::byte, crypto_sign_SECRETKEYBYTES>;

/// A fresh signing key pair.
struct SigningKeys {
  PublicKey public_key{};  ///< give it to whoever verifies
  SecretKey secret_key{};  ///< keep it secret
};

/// Generates a key pair from the operating system's randomness.
inline Result<SigningKeys> generate_signing_keys() {
  if (auto ready = sodium_ready(); !ready) return std::move(ready).error();
  SigningKeys keys;
  ::crypto_sign_keypair(reinterpret_cast<unsigned char*>(keys.public_key.data()), reinterpret_cast<unsigned char*>(keys.secret_key.data()));
  return keys;
}

/// Writes `keys` as hex text: `stem.pub` (public) and `stem.key` (secret, mode 0600).
inline Result<void> write_signing_keys(const SigningKeys& keys, const std::string& stem) {
  for (const auto& [path, text, secret] : {std::tuple{stem + ".pub", to_hex(keys.public_key), false}, std::tuple{stem + ".key", to_hex(keys.secret_key), true}}) {
    auto file = AtomicFile::create(path);
    if (!file) return std::move(file).error();
    const std::string line = text + "\n";
    if (auto status = (*file)->sink().write(std::as_bytes(std::span(line.data(), line.size()))); !status) return status;
    if (auto status = (*file)->commit(); !status) return status;
    if (secret && ::chmod(path.c_str(), 0600) != 0) return make_error(ErrorCode::io, "{}: cannot make it private: {}", path, std::strerror(errno));
  }
  return ok();
}

/// Reads a public key file (64 hex digits).
inline Result<PublicKey> read_public_key(const std::string& path) {
  auto text = read_text_file(path);
  if (!text) return std::move(text).error();
  PublicKey key;
  if (auto status = from_hex(*text, key, path + ": public key"); !status) return std::move(status).error();
  return key;
}

/// Reads a secret key file (128 hex digits).
inline Result<SecretKey> read_secret_key(const std::string& path) {
  auto text = read_text_file(path);
  if (!text) return std::move(text).error();
  SecretKey key;
  if (auto status = from_hex(*text, key, path + ": secret key"); !status) return std::move(status).error();
  return key;
}

/// Checks that `contents` (parsed from `bytes`) carries a signature by `public_key` over every
/// byte before its footer; an unsigned file, another signer or any changed byte is an error.
inline Result<void> verify_apr_signature(const AprContents& contents, std::span<const std::byte> bytes, const PublicKey& public_key,
                                         std::string_view source) {
  if (auto ready = sodium_ready(); !ready) return std::move(ready).error();
  if (!contents.signature) return make_error(ErrorCode::validation, "{}: not signed (the SIGNED flag at offset 0x6 is clear)", source);
  if (contents.signature->public_key != public_key) {
    return make_error(ErrorCode::checksum, "{}: signed by key {}, not by the given key {}", source, to_hex(contents.signature->public_key), to_hex(public_key));
  }
  crypto_sign_state state;
  ::crypto_sign_init(&state);
  ::crypto_sign_update(&state, reinterpret_cast<const unsigned char*>(bytes.data()), contents.footer_offset);
  const auto* signature = reinterpret_cast<const unsigned char*>(contents.signature->signature.data());
  if (::crypto_sign_final_verify(&state, signature, reinterpret_cast<const unsigned char*>(public_key.data())) != 0) {
    return make_error(ErrorCode::checksum, "{}: the Ed25519 signature (at {:#x}) does not match: bytes 0x0..{:#x} changed after signing", source,
                      contents.footer_offset + apr_v2::kFooterSize, contents.footer_offset);
  }
  return ok();
}

/// An AprOpenOptions::check that refuses a file not signed by `public_key`.
inline std::function<Result<void>(const AprContents&, std::span<const std::byte>)> signature_check(const PublicKey& public_key, std::string source) {
  return [public_key, source](const AprContents& contents, std::span<const std::byte> bytes) {
    return verify_apr_signature(contents, bytes, public_key, source);
  };
}

/// Writes `input` to `output` signed with `secret_key`: the SIGNED flag set (header CRC and
/// footer recomputed), then the signature block; a signature `input` already has is replaced.
inline Result<void> sign_apr(const std::string& input, const std::string& output, const SecretKey& secret_key) {
  if (auto ready = sodium_ready(); !ready) return std::move(ready).error();
  auto mapped = MappedFile::open(input);
  if (!mapped) return std::move(mapped).error();
  const auto bytes = mapped->bytes();
  auto contents = parse_apr(bytes, input);
  if (!contents) return std::move(contents).error();
  std::array<std::byte, apr_v2::kHeaderSize> header;
  std::memcpy(header.data(), bytes.data(), header.size());
  const auto flags = static_cast<uint16_t>(contents->flags | apr_v2::kSigned);
  std::memcpy(header.data() + 6, &flags, 2);
  const uint32_t header_crc = crc32_update(crc32(std::span(header).first(apr_v2::kChecksumOffset)), std::span(header).subspan(apr_v2::kChecksumOffset + 4));
  std::memcpy(header.data() + apr_v2::kChecksumOffset, &header_crc, 4);
  const auto body = bytes.subspan(apr_v2::kHeaderSize, contents->footer_offset - apr_v2::kHeaderSize);

  SignatureBlock block;
  ::crypto_sign_ed25519_sk_to_pk(reinterpret_cast<unsigned char*>(block.public_key.data()), reinterpret_cast<const unsigned char*>(secret_key.data()));
  crypto_sign_state state;
  ::crypto_sign_init(&state);
  ::crypto_sign_update(&state, reinterpret_cast<const unsigned char*>(header.data()), header.size());
  ::crypto_sign_update(&state, reinterpret_cast<const unsigned char*>(body.data()), body.size());
  ::crypto_sign_final_create(&state, reinterpret_cast<unsigned char*>(block.signature.data()), nullptr, reinterpret_cast<const unsigned char*>(secret_key.data()));

  auto file = AtomicFile::create(output);
  if (!file) return std::move(file).error();
  ByteSink& sink = (*file)->sink();
  Result<void> status = sink.write(header);
  if (status) status = sink.write(body);
  const uint32_t footer = sink.crc();
  if (status) status = sink.write(std::as_bytes(std::span(&footer, 1)));
  if (status) status = sink.write(block.bytes());
  if (!status) return status;
  return (*file)->commit();
}

}  // namespace apr::format
