// APR v1 ("APRN") reader: realizar's real v1 file, compressed, signed and encrypted variants
// built to aprender's layout, and a corruption table where each defect has its own error.
#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <lz4.h>
#include <sodium.h>
#include <zstd.h>

#include "apr/format/apr_v1.hpp"
#include "apr/format/apr_v1_security.hpp"
#include "apr/format/crc32.hpp"
#include "test_support.hpp"

namespace test_apr_v1 {  // own namespace: this file compiles in one unity source with its area's others

using namespace apr;
using namespace apr::format;

using apr::test::read_bytes;

namespace {

template <class T>
void put(std::vector<std::byte>& out, T value) {
  const auto* p = reinterpret_cast<const std::byte*>(&value);
  out.insert(out.end(), p, p + sizeof value);
}

/// The fields of a v1 file to build; `extra` (signature ‖ key) goes between payload and CRC.
struct V1Parts {
  uint16_t model_type = 0x02;
  uint8_t compression = 0;
  uint8_t flags = 0;
  std::vector<std::byte> metadata;
  std::vector<std::byte> payload;
  uint32_t uncompressed_size = 0;
  std::vector<std::byte> extra;
};

/// header ‖ metadata ‖ payload (the bytes a signature covers).
std::vector<std::byte> signed_part(const V1Parts& p) {
  std::vector<std::byte> out;
  for (char c : std::string("APRN")) out.push_back(std::byte(c));
  out.push_back(std::byte{1});
  out.push_back(std::byte{0});
  put<uint16_t>(out, p.model_type);
  put<uint32_t>(out, static_cast<uint32_t>(p.metadata.size()));
  put<uint32_t>(out, static_cast<uint32_t>(p.payload.size()));
  put<uint32_t>(out, p.uncompressed_size);
  out.push_back(std::byte{p.compression});
  out.push_back(std::byte{p.flags});
  out.push_back(std::byte{0});
  out.resize(32, std::byte{0});
  out.insert(out.end(), p.metadata.begin(), p.metadata.end());
  out.insert(out.end(), p.payload.begin(), p.payload.end());
  return out;
}

std::vector<std::byte> with_crc(std::vector<std::byte> bytes) {
  put<uint32_t>(bytes, crc32(bytes));
  return bytes;
}

std::vector<std::byte> build(const V1Parts& p) {
  auto out = signed_part(p);
  out.insert(out.end(), p.extra.begin(), p.extra.end());
  return with_crc(std::move(out));
}

std::vector<std::byte> msgpack(const nlohmann::json& j) {
  const auto bytes = nlohmann::json::to_msgpack(j);
  const auto* p = reinterpret_cast<const std::byte*>(bytes.data());
  return {p, p + bytes.size()};
}

std::string error_of(const std::vector<std::byte>& bytes) {
  auto parsed = parse_apr_v1(bytes, "m.apr");
  return parsed ? std::string("(parsed)") : parsed.error().message;
}

const std::string kFixture = apr::test::fixture("apr/real/v1_logistic_regression_mnist.apr");

}  // namespace

TEST_CASE("reads realizar's v1 LogisticRegression file", "[apr_v1]") {
  auto file = AprV1File::open(kFixture);
  REQUIRE(file);
  const AprV1Header& h = file->header();
  CHECK(h.version_major == 1);
  CHECK(file->model_type() == "LogisticRegression");
  CHECK(h.metadata_size == 47);
  CHECK(h.payload_size == 3165);
  CHECK(h.compression == apr_v1::Compression::none);
  CHECK(file->metadata()["aprender_version"] == "0.11.0");
  CHECK(file->metadata()["created_at"] == "1764278947");
  auto payload = file->payload();
  REQUIRE(payload);
  REQUIRE(payload->size() == 3165);
  // bincode of LogisticRegression: Some(coefficients) as tag 1 and a u64 length of 784 (28x28 pixels)
  CHECK((*payload)[0] == std::byte{1});
  uint64_t count = 0;
  std::memcpy(&count, payload->data() + 1, 8);
  CHECK(count == 784);
  const auto summary = file->summary();
  CHECK(summary["format"] == "apr-v1");
  CHECK(summary["checksum"] == fmt::format("{:#010x}", file->contents().checksum));
}

TEST_CASE("zstd and lz4 payloads decompress to the stored one", "[apr_v1]") {
  const auto original = read_bytes(kFixture);
  const auto fixture = parse_apr_v1(original, "fixture");
  REQUIRE(fixture);
  const std::vector<std::byte> plain(fixture->payload.begin(), fixture->payload.end());
  V1Parts parts{.metadata = msgpack({{"model_name", "mnist"}}), .uncompressed_size = static_cast<uint32_t>(plain.size())};

  // builds the file with `compression` and `payload`, reads it back and decompresses the payload
  const auto decoded = [&](uint8_t compression, const std::vector<std::byte>& payload) {
    parts.compression = compression;
    parts.payload = payload;
    auto parsed = parse_apr_v1(build(parts), "c.apr");
    REQUIRE(parsed);
    auto out = decompress_apr_v1_payload(parsed->header, parsed->payload, "c.apr");
    REQUIRE(out);
    return *out;
  };
  std::vector<std::byte> zstd(ZSTD_compressBound(plain.size()));
  zstd.resize(ZSTD_compress(zstd.data(), zstd.size(), plain.data(), plain.size(), 19));
  CHECK(decoded(2, zstd) == plain);

  std::vector<std::byte> lz4(4 + LZ4_compressBound(static_cast<int>(plain.size())));
  const uint32_t size = static_cast<uint32_t>(plain.size());
  std::memcpy(lz4.data(), &size, 4);
  lz4.resize(4 + LZ4_compress_default(reinterpret_cast<const char*>(plain.data()), reinterpret_cast<char*>(lz4.data() + 4), static_cast<int>(plain.size()),
                                      static_cast<int>(lz4.size() - 4)));
  CHECK(decoded(3, lz4) == plain);

  // a size prefix that disagrees with the header, and corrupt zstd, are errors
  parts.uncompressed_size = size + 1;
  auto wrong = parse_apr_v1(build(parts), "l.apr");
  REQUIRE(wrong);
  CHECK(decompress_apr_v1_payload(wrong->header, wrong->payload, "l.apr").error().message.find("size prefix says") != std::string::npos);
  parts.compression = 1;
  parts.uncompressed_size = size;
  parts.payload = std::vector<std::byte>(40, std::byte{0x55});
  auto bad = parse_apr_v1(build(parts), "z.apr");
  REQUIRE(bad);
  CHECK(decompress_apr_v1_payload(bad->header, bad->payload, "z.apr").error().message.find("z.apr: payload: zstd") == 0);
}

TEST_CASE("a signed v1 file verifies, and tampering or another key is refused", "[apr_v1][crypto]") {
  REQUIRE(sodium_init() >= 0);
  unsigned char pk[crypto_sign_PUBLICKEYBYTES], sk[crypto_sign_SECRETKEYBYTES];
  crypto_sign_keypair(pk, sk);
  V1Parts parts{.flags = apr_v1::kSigned, .metadata = msgpack({{"model_name", "signed"}}), .payload = std::vector<std::byte>(100, std::byte{7}),
                .uncompressed_size = 100};
  const auto covered = signed_part(parts);
  std::vector<std::byte> signature(64);
  crypto_sign_detached(reinterpret_cast<unsigned char*>(signature.data()), nullptr, reinterpret_cast<const unsigned char*>(covered.data()), covered.size(), sk);
  parts.extra = signature;
  for (unsigned char b : pk) parts.extra.push_back(std::byte{b});
  const auto bytes = build(parts);
  auto parsed = parse_apr_v1(bytes, "s.apr");
  REQUIRE(parsed);
  REQUIRE(parsed->is_signed());
  CHECK(verify_apr_v1_signature(*parsed, "s.apr"));
  const std::array<std::byte, 32> trusted = [&] {
    std::array<std::byte, 32> k{};
    std::memcpy(k.data(), pk, 32);
    return k;
  }();
  CHECK(verify_apr_v1_signature(*parsed, "s.apr", std::span<const std::byte, 32>(trusted)));
  std::array<std::byte, 32> other{};
  other[0] = std::byte{1};
  CHECK(verify_apr_v1_signature(*parsed, "s.apr", std::span<const std::byte, 32>(other)).error().message.find("not by the trusted key") != std::string::npos);
  // one payload byte changed, CRC recomputed so only the signature can tell
  auto tampered = std::vector<std::byte>(bytes.begin(), bytes.end() - 4);
  tampered[32 + parts.metadata.size() + 10] ^= std::byte{1};
  tampered = with_crc(std::move(tampered));
  auto reparsed = parse_apr_v1(tampered, "s.apr");
  REQUIRE(reparsed);
  CHECK(verify_apr_v1_signature(*reparsed, "s.apr").error().message.find("does not match the header, metadata and payload") != std::string::npos);
}

TEST_CASE("a password-encrypted v1 file opens with its passphrase only", "[apr_v1][crypto]") {
  REQUIRE(sodium_init() >= 0);
  if (crypto_aead_aes256gcm_is_available() == 0) {
    WARN("AES-256-GCM unavailable on this CPU (no AES-NI): not tested");
    return;
  }
  const std::string plain_text = "bincode of a model";
  std::vector<std::byte> plain(reinterpret_cast<const std::byte*>(plain_text.data()), reinterpret_cast<const std::byte*>(plain_text.data()) + plain_text.size());
  std::vector<std::byte> salt(16, std::byte{3}), nonce(12, std::byte{9});
  unsigned char key[32];
  REQUIRE(crypto_pwhash(key, 32, "hunter2", 7, reinterpret_cast<const unsigned char*>(salt.data()), 2, 19456 * 1024, crypto_pwhash_ALG_ARGON2ID13) == 0);
  std::vector<std::byte> sealed(plain.size() + 16);
  unsigned long long length = 0;
  crypto_aead_aes256gcm_encrypt(reinterpret_cast<unsigned char*>(sealed.data()), &length, reinterpret_cast<const unsigned char*>(plain.data()), plain.size(),
                                nullptr, 0, nullptr, reinterpret_cast<const unsigned char*>(nonce.data()), key);
  V1Parts parts{.flags = apr_v1::kEncrypted, .metadata = msgpack({{"model_name", "secret"}}), .uncompressed_size = static_cast<uint32_t>(plain.size())};
  parts.payload = salt;
  parts.payload.insert(parts.payload.end(), nonce.begin(), nonce.end());
  parts.payload.insert(parts.payload.end(), sealed.begin(), sealed.end());
  const auto bytes = build(parts);
  auto parsed = parse_apr_v1(bytes, "e.apr");
  REQUIRE(parsed);
  auto opened = decrypt_apr_v1_payload(*parsed, "hunter2", "e.apr");
  REQUIRE(opened);
  CHECK(*opened == plain);
  auto wrong = decrypt_apr_v1_payload(*parsed, "hunter3", "e.apr");
  REQUIRE_FALSE(wrong);
  CHECK(wrong.error().message.find("e.apr: wrong passphrase") == 0);
  // the reader without a passphrase says what it needs
  const std::string path = apr::test::temp_path("encrypted_v1.apr");
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  auto file = AprV1File::open(path);
  REQUIRE(file);
  CHECK(file->payload().error().message.find("a passphrase is needed") != std::string::npos);
}

TEST_CASE("v1 corruption table: each defect has its own error", "[apr_v1]") {
  const auto good = read_bytes(kFixture);
  REQUIRE(error_of(good) == "(parsed)");
  const auto patched = [&](size_t offset, std::byte value, bool fix_crc = true) {
    auto bytes = std::vector<std::byte>(good.begin(), good.end() - 4);
    bytes[offset] = value;
    if (fix_crc) return with_crc(std::move(bytes));
    put<uint32_t>(bytes, 0);
    return bytes;
  };
  CHECK(error_of(std::vector<std::byte>(good.begin(), good.begin() + 20)) == "m.apr: file is 20 bytes; an APR v1 file needs at least 36");
  CHECK(error_of(std::vector<std::byte>(good.begin(), good.end() - 1)).find("make a 3248-byte file, but it has 3247 bytes") != std::string::npos);
  CHECK(error_of(patched(0, std::byte{'X'})) == "m.apr: magic at offset 0x0 is not 'APRN' (not an APR v1 file)");
  CHECK(error_of(patched(4, std::byte{2})) == "m.apr: version 2.0 at offset 0x4: expected 1.x");
  CHECK(error_of(patched(6, std::byte{0x0B})) == "m.apr: model type 0x000b at offset 0x6 is not one aprender defines");
  CHECK(error_of(patched(20, std::byte{4})) == "m.apr: compression 4 at offset 0x14: expected 0 (none), 1-2 (zstd) or 3 (lz4)");
  CHECK(error_of(patched(19, std::byte{0x40})) == "m.apr: uncompressed_size 1073744989 at offset 0x10 exceeds aprender's limit of 1 GiB");
  CHECK(error_of(patched(16, std::byte{0x5c})) == "m.apr: stored payload is 3165 bytes, but uncompressed_size at 0x10 says 3164");
  CHECK(error_of(patched(200, std::byte{0}, false)).find("m.apr: checksum at offset 0xcac is 0x00000000, the CRC-32 of the preceding bytes is") == 0);
  CHECK(error_of(patched(32, std::byte{0xc1})) == "m.apr: metadata at offset 0x20 (47 bytes) is not valid MessagePack");
  // a metadata size that swallows the payload leaves the total consistent only by luck: sizes are checked as a sum
  CHECK(error_of(patched(8, std::byte{0xff})).find("make a") != std::string::npos);
  // the aprender-tsp file is not v1
  CHECK(error_of(read_bytes(apr::test::fixture("apr/real/tsp_att48_not_v2.apr"))).find("not 'APRN'") != std::string::npos);
  // a signed flag on an unsigned file: the sizes no longer add up
  CHECK(error_of(patched(21, std::byte{apr_v1::kSigned})).find(", signed) make a 3344-byte file") != std::string::npos);
}

}  // namespace test_apr_v1
