// Signing and encryption of APR files (libsodium): a signed file verifies with its key and is
// refused after any change or with another key; an encrypted file opens only with its
// passphrase (a wrong one says so), tampered ciphertext is refused, and the license block reads back.
#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "apr/format/apr_license.hpp"
#include "apr/format/crypto.hpp"
#include "test_support.hpp"

using namespace apr;
using namespace apr::format;

using apr::test::read_bytes;

namespace {

void write_bytes(const std::string& path, const std::vector<std::byte>& bytes) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

/// Cheapest Argon2id cost, so the tests run fast (files in use take the interactive default).
const Argon2Params kFast{crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN};

Result<void> verify_file(const std::string& path, const PublicKey& key) {
  auto mapped = MappedFile::open(path);
  if (!mapped) return std::move(mapped).error();
  auto contents = parse_apr(mapped->bytes(), path);
  if (!contents) return std::move(contents).error();
  return verify_apr_signature(*contents, mapped->bytes(), key, path);
}

}  // namespace

TEST_CASE("sign, verify, tamper, other key, re-sign", "[apr][security]") {
  const std::string source = test::fixture("apr/small_v2.apr");
  const std::string signed_path = test::temp_path("signed.apr");
  auto keys = generate_signing_keys();
  auto other = generate_signing_keys();
  REQUIRE((keys && other));
  REQUIRE(sign_apr(source, signed_path, keys->secret_key));

  auto file = AprFile::open(signed_path);
  REQUIRE(file);
  REQUIRE((*file)->verify_checksum());
  REQUIRE((*file)->contents().signature);
  CHECK((*file)->contents().signature->public_key == keys->public_key);
  CHECK(((*file)->contents().flags & apr_v2::kSigned));
  const auto plain_bytes = read_bytes(source), signed_bytes = read_bytes(signed_path);
  REQUIRE(signed_bytes.size() == plain_bytes.size() + apr_v2::kSignatureBlockSize);
  // tensors are the same bytes as the unsigned file's
  auto original = AprFile::open(source);
  for (size_t i = 0; i < (*file)->tensors().size(); ++i) {
    const auto& a = (*file)->tensors()[i].bytes;
    const auto& b = (*original)->tensors()[i].bytes;
    CHECK(std::equal(a.begin(), a.end(), b.begin(), b.end()));
  }

  REQUIRE(verify_file(signed_path, keys->public_key));
  const auto wrong_key = verify_file(signed_path, other->public_key);
  REQUIRE_FALSE(wrong_key);
  CHECK(wrong_key.error().code == ErrorCode::checksum);
  CHECK_THAT(wrong_key.error().message, Catch::Contains("signed by key"));

  const auto unsigned_file = verify_file(source, keys->public_key);
  REQUIRE_FALSE(unsigned_file);
  CHECK_THAT(unsigned_file.error().message, Catch::Contains("not signed"));

  // one changed bit in the data, footer CRC fixed up so only the signature can tell
  auto tampered = signed_bytes;
  const auto c = *parse_apr(signed_bytes, "x");
  tampered[c.data_offset + 5] ^= std::byte{0x01};
  const uint32_t crc = crc32(std::span(tampered).first(c.footer_offset));
  std::memcpy(tampered.data() + c.footer_offset, &crc, 4);
  const std::string tampered_path = test::temp_path("tampered.apr");
  write_bytes(tampered_path, tampered);
  REQUIRE(AprFile::open(tampered_path));  // structurally fine
  const auto refused = verify_file(tampered_path, keys->public_key);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == ErrorCode::checksum);
  CHECK_THAT(refused.error().message, Catch::Contains("signature (at 0x") && Catch::Contains("does not match"));
  AprOpenOptions options;
  options.check = signature_check(keys->public_key, tampered_path);
  CHECK_FALSE(AprFile::open(tampered_path, options));
  options.check = signature_check(keys->public_key, signed_path);
  CHECK(AprFile::open(signed_path, options));

  // a damaged signature block is a format error; re-signing replaces the old signature
  auto broken = signed_bytes;
  broken[broken.size() - apr_v2::kSignatureBlockSize] = std::byte{'X'};
  CHECK_THAT(parse_apr(broken, "b.apr").error().message, Catch::Contains("not a signature block"));
  const std::string resigned = test::temp_path("resigned.apr");
  REQUIRE(sign_apr(signed_path, resigned, other->secret_key));
  CHECK(read_bytes(resigned).size() == signed_bytes.size());
  CHECK(verify_file(resigned, other->public_key));

  // key files round-trip; a malformed one is refused
  const std::string stem = test::temp_path("signer");
  REQUIRE(write_signing_keys(*keys, stem));
  CHECK(*read_public_key(stem + ".pub") == keys->public_key);
  CHECK(*read_secret_key(stem + ".key") == keys->secret_key);
  CHECK_THAT(read_public_key(stem + ".key").error().message, Catch::Contains("expected 64 hex digits"));
}

TEST_CASE("encrypt, decrypt, wrong passphrase, tampered ciphertext", "[apr][security]") {
  const std::string source = test::fixture("apr/small_v2.apr");
  const std::string encrypted = test::temp_path("encrypted.apr");
  for (Codec codec : {Codec::none, Codec::zstd, Codec::lz4}) {
    INFO(codec_name(codec));
    REQUIRE(encrypt_apr(source, encrypted, "correct horse", codec, default_level(codec), kFast));
    auto without = AprFile::open(encrypted);
    REQUIRE_FALSE(without);
    CHECK(without.error().code == ErrorCode::crypto);
    CHECK_THAT(without.error().message, Catch::Contains("a passphrase is needed"));

    auto wrong = AprFile::open(encrypted, passphrase_options("correct horse!", encrypted));
    REQUIRE_FALSE(wrong);
    CHECK(wrong.error().code == ErrorCode::crypto);
    CHECK_THAT(wrong.error().message, Catch::Contains("wrong passphrase"));

    auto file = AprFile::open(encrypted, passphrase_options("correct horse", encrypted));
    REQUIRE(file);
    REQUIRE((*file)->verify_checksum());
    auto original = AprFile::open(source);
    REQUIRE((*file)->tensors().size() == (*original)->tensors().size());
    for (size_t i = 0; i < (*file)->tensors().size(); ++i) {
      const auto& a = (*file)->tensors()[i];
      const auto& b = (*original)->tensors()[i];
      CHECK(a.name == b.name);
      CHECK(a.dtype == b.dtype);
      CHECK(std::equal(a.bytes.begin(), a.bytes.end(), b.bytes.begin(), b.bytes.end()));
      CHECK((*file)->contents().entries[i].payload->cipher == Cipher::aes256gcm);
    }
    const auto& block = (*file)->metadata()["encryption"];
    CHECK(block["kdf"] == "argon2id13");
    CHECK(block["salt"].get<std::string>().size() == 32);
    // plaintext appears nowhere in the file
    const auto& first = (*original)->tensors()[0].bytes;
    const auto bytes = read_bytes(encrypted);
    CHECK(std::search(bytes.begin(), bytes.end(), first.begin(), first.begin() + 16) == bytes.end());

    const std::string decrypted = test::temp_path("decrypted.apr");
    REQUIRE(decrypt_apr(encrypted, decrypted, "correct horse"));
    CHECK(read_bytes(decrypted) == read_bytes(source));  // back to aprender's bytes exactly
  }

  // a flipped ciphertext bit: the right passphrase, and still refused, naming the tensor
  auto bytes = read_bytes(encrypted);
  const auto c = *parse_apr(bytes, "x");
  bytes[c.data_offset + c.entries[0].offset + apr_v2::kPayloadHeaderSize + 1] ^= std::byte{0x10};
  const std::string tampered = test::temp_path("encrypted-tampered.apr");
  write_bytes(tampered, bytes);
  auto refused = AprFile::open(tampered, passphrase_options("correct horse", tampered));
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == ErrorCode::crypto);
  CHECK_THAT(refused.error().message, Catch::Contains("tensor 0 '" + c.entries[0].name + "'") && Catch::Contains("authentication failed"));

  CHECK_THAT(encrypt_apr(source, encrypted, "", Codec::none, 0, kFast).error().message, Catch::Contains("passphrase is empty"));
}

TEST_CASE("the encryption block's parameters are checked before any key derivation", "[apr][security]") {
  auto made = new_encryption("pw", kFast);
  REQUIRE(made);
  nlohmann::json metadata = {{"encryption", made->block}};
  CHECK(passphrase_cipher(metadata, "pw", "m.apr"));
  metadata["encryption"]["memlimit"] = uint64_t{1} << 40;
  CHECK_THAT(passphrase_cipher(metadata, "pw", "m.apr").error().message, Catch::Contains("outside"));
  metadata["encryption"] = made->block;
  metadata["encryption"]["salt"] = "00";
  CHECK_THAT(passphrase_cipher(metadata, "pw", "m.apr").error().message, Catch::Contains("salt must be 32 hex digits"));
  metadata["encryption"] = made->block;
  metadata["encryption"]["cipher"] = "chacha20";
  CHECK(passphrase_cipher(metadata, "pw", "m.apr").error().code == ErrorCode::unsupported);
  CHECK_THAT(passphrase_cipher(nlohmann::json::object(), "pw", "m.apr").error().message, Catch::Contains("missing"));
}

TEST_CASE("license block: typed accessor, validation, expiry", "[apr][license]") {
  nlohmann::json metadata = nlohmann::json::object();
  REQUIRE(license_block(metadata));
  CHECK_FALSE(*license_block(metadata));
  set_license_block(metadata, {"Apache-2.0", "Licensed under the Apache License, Version 2.0", "2030-01-31"});
  CHECK(metadata["license"] == "Apache-2.0");  // aprender's own field keeps the SPDX id
  auto read = license_block(metadata);
  REQUIRE(read);
  REQUIRE(*read);
  CHECK((*read)->spdx_id == "Apache-2.0");
  CHECK((*read)->text.starts_with("Licensed"));
  CHECK((*read)->expires == "2030-01-31");
  CHECK_FALSE((*read)->expired_on("2030-01-31"));
  CHECK((*read)->expired_on("2030-02-01"));
  metadata["license_block"]["expires"] = "31/01/2030";
  CHECK_THAT(license_block(metadata).error().message, Catch::Contains("YYYY-MM-DD"));
  metadata["license_block"]["expires"] = nullptr;
  metadata["license_block"]["spdx_id"] = "not an id!";
  CHECK_THAT(license_block(metadata).error().message, Catch::Contains("SPDX"));
  metadata["license_block"] = "MIT";
  CHECK_THAT(license_block(metadata).error().message, Catch::Contains("object"));
}
