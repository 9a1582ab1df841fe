// Compressed APR payloads (apr extension): every dtype round-trips through lz4 and zstd into
// 64-byte-aligned buffers, incompressible tensors stay plain, and each kind of damage to a
// compressed payload gives its own error naming the file, tensor and offset.
#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "apr/format/apr_reader.hpp"
#include "apr/format/apr_writer.hpp"
#include "apr/format/compression.hpp"
#include "test_support.hpp"

using namespace apr;
using namespace apr::format;

using apr::test::read_bytes;

namespace {

/// Every dtype APR has a code for.
const std::vector<DType> kDtypes{DType::f32, DType::f16,  DType::bf16, DType::q4_0,   DType::q8_0,  DType::f64, DType::i32,
                                 DType::i64, DType::i8,   DType::u8,   DType::apr_q4, DType::apr_q8, DType::q4_k, DType::q6_k};

/// `size` bytes repeating a short random motif (compressible) or fully random (not).
std::vector<std::byte> pattern(size_t size, uint32_t seed, bool compressible) {
  std::mt19937 rng(seed);
  std::vector<std::byte> motif(compressible ? 97 : size);
  for (auto& b : motif) b = static_cast<std::byte>(rng());
  std::vector<std::byte> out(size);
  for (size_t i = 0; i < size; ++i) out[i] = motif[i % motif.size()];
  return out;
}

struct Model {
  std::vector<std::vector<std::byte>> storage;
  std::vector<AprWriteTensor> tensors;

  void add(std::string name, DType dtype, Shape shape, std::vector<std::byte> bytes) {
    storage.push_back(std::move(bytes));
    tensors.push_back(AprWriteTensor::from_view(TensorView{"", dtype, shape, storage.back()}));
    tensors.back().name = std::move(name);
  }
  size_t index_of(std::string_view name) const {
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (tensors[i].name == name) return i;
    }
    FAIL("no tensor " << name);
    return 0;
  }
};

/// One compressible tensor of every dtype (4096 values), a random one and an empty one.
Model every_dtype() {
  Model model;
  uint32_t seed = 1;
  for (DType dtype : kDtypes) {
    model.add(fmt::format("t.{}", to_string(dtype)), dtype, Shape{16, 256}, pattern(*dtype_bytes(dtype, 4096), seed++, true));
  }
  model.add("u.random", DType::f32, Shape{1024}, pattern(4096, 99, false));
  model.add("v.empty", DType::f32, Shape{0}, {});
  return model;
}

/// The error opening `bytes` as a file gives (structure and decoding), or "(opened)".
std::string open_error(const std::vector<std::byte>& bytes) {
  auto contents = parse_apr(bytes, "model.apr");
  if (!contents) return contents.error().message;
  auto decoded = decode_apr_payloads(*contents, bytes, nullptr, "model.apr");
  return decoded ? "(opened)" : decoded.error().message;
}

}  // namespace

TEST_CASE("codec wrappers: levels, exact sizes, corrupt input", "[apr][compression]") {
  const auto data = pattern(10000, 7, true);
  for (Codec codec : {Codec::lz4, Codec::zstd}) {
    INFO(codec_name(codec));
    auto packed = compress(codec, default_level(codec), data);
    REQUIRE(packed);
    CHECK(packed->size() < data.size() / 10);
    std::vector<std::byte> out(data.size());
    REQUIRE(decompress(codec, *packed, out));
    CHECK(out == data);
    std::vector<std::byte> shorter(data.size() - 1);
    CHECK_FALSE(decompress(codec, *packed, shorter));
    auto broken = *packed;
    broken.resize(broken.size() / 2);
    CHECK_FALSE(decompress(codec, broken, out));
  }
  CHECK(compress(Codec::lz4, 9, data));  // LZ4 HC
  CHECK(compress(Codec::zstd, 19, data));
  CHECK_THAT(compress(Codec::zstd, 23, data).error().message, Catch::Contains("level 23 is not valid for zstd"));
  CHECK_THAT(compress(Codec::lz4, -1, data).error().message, Catch::Contains("level -1 is not valid for lz4"));
  CHECK(parse_codec("zstd") == Codec::zstd);
  CHECK_FALSE(parse_codec("gzip"));
}

TEST_CASE("every dtype round-trips through lz4 and zstd into aligned buffers", "[apr][compression]") {
  const Model model = every_dtype();
  for (Codec codec : {Codec::lz4, Codec::zstd}) {
    for (int level : {default_level(codec), codec == Codec::zstd ? 19 : 9}) {
      INFO(codec_name(codec) << " level " << level);
      const std::string path = test::temp_path(fmt::format("compressed-{}-{}.apr", codec_name(codec), level));
      AprEncoding encoding{codec, level, nullptr};
      REQUIRE(write_apr(path, apr_metadata_text({{"name", "compressed"}}), model.tensors, 0, &encoding));
      auto file = AprFile::open(path);
      REQUIRE(file);
      REQUIRE((*file)->verify_checksum());  // the footer covers the rewritten index
      const auto& c = (*file)->contents();
      CHECK((c.flags & (codec == Codec::lz4 ? apr_v2::kLz4Compressed : apr_v2::kZstdCompressed)));
      REQUIRE((*file)->tensors().size() == model.tensors.size());
      for (size_t i = 0; i < c.entries.size(); ++i) {
        const auto& entry = c.entries[i];
        const TensorView& view = (*file)->tensors()[i];
        INFO(entry.name);
        const size_t source = model.index_of(entry.name);
        const auto& original = model.storage[source];
        CHECK(view.dtype == model.tensors[source].dtype);
        REQUIRE(view.bytes.size() == original.size());
        CHECK(std::equal(view.bytes.begin(), view.bytes.end(), original.begin()));
        const bool plain = entry.name == "u.random" || entry.name == "v.empty";
        CHECK(entry.payload.has_value() == !plain);
        if (plain) continue;
        CHECK(entry.code == apr_v2::kEncodedCode);
        CHECK(entry.payload->codec == codec);
        CHECK(entry.size < original.size());
        CHECK(reinterpret_cast<uintptr_t>(view.bytes.data()) % 64 == 0);
        CHECK_FALSE((*file)->data_offset(view));  // decoded, not in the file
      }
    }
  }
}

TEST_CASE("a file written without an encoding is unchanged; one with only incompressible tensors has only plain entries", "[apr][compression]") {
  Model model;
  model.add("x", DType::f32, Shape{1024}, pattern(4096, 5, false));
  const std::string plain = test::temp_path("plain.apr"), encoded = test::temp_path("incompressible.apr");
  REQUIRE(write_apr(plain, "{}", model.tensors));
  AprEncoding encoding{Codec::zstd, 3, nullptr};
  REQUIRE(write_apr(encoded, "{}", model.tensors, 0, &encoding));
  auto a = read_bytes(plain), b = read_bytes(encoded);
  REQUIRE(a.size() == b.size());
  auto file = AprFile::open(encoded);
  REQUIRE(file);
  CHECK_FALSE((*file)->contents().entries[0].payload);
  CHECK((*file)->contents().flags == (apr_v2::kLayoutRowMajor | apr_v2::kZstdCompressed));
  REQUIRE((*file)->verify_checksum());
}

TEST_CASE("damage to compressed payloads: each gives a named error", "[apr][compression]") {
  Model model;
  model.add("a.weight", DType::f32, Shape{64, 64}, pattern(64 * 64 * 4, 3, true));
  for (Codec codec : {Codec::lz4, Codec::zstd}) {
    INFO(codec_name(codec));
    const std::string path = test::temp_path(fmt::format("damage-{}.apr", codec_name(codec)));
    AprEncoding encoding{codec, default_level(codec), nullptr};
    REQUIRE(write_apr(path, "{}", model.tensors, 0, &encoding));
    const auto good = read_bytes(path);
    REQUIRE(open_error(good) == "(opened)");
    const auto c = *parse_apr(good, "model.apr");
    const size_t at = c.data_offset + c.entries[0].offset;  // payload header
    const std::string where = fmt::format("model.apr: tensor 0 'a.weight' (payload at {:#x})", at);
    struct Case {
      const char* what;
      std::function<void(std::vector<std::byte>&)> damage;
      std::string expected;
    };
    auto put_u64 = [](std::vector<std::byte>& b, size_t offset, uint64_t v) { std::memcpy(b.data() + offset, &v, 8); };
    const std::vector<Case> cases{
        {"payload magic", [&](auto& b) { b[at] = std::byte{'X'}; }, "magic at +0x0 is not 'APRE'"},
        {"payload version", [&](auto& b) { b[at + 4] = std::byte{9}; }, "version 9 at +0x4"},
        {"unknown codec", [&](auto& b) { b[at + 5] = std::byte{7}; }, "unknown codec 7 at +0x5"},
        {"unknown cipher", [&](auto& b) { b[at + 6] = std::byte{5}; }, "unknown cipher 5 at +0x6"},
        {"decoded size disagrees with dtype × shape", [&](auto& b) { put_u64(b, at + 8, 100); }, "decodes to 100 bytes, but [64, 64] f32 values need 16384"},
        {"stored size disagrees with the entry", [&](auto& b) { put_u64(b, at + 16, 3); }, "stored size 3 at +0x10"},
        {"dtype code inside", [&](auto& b) { b[at + 7] = std::byte{77}; }, "unknown dtype code 77"},
        {"codec flag cleared", [&](auto& b) { b[6] = std::byte{0}; uint32_t crc = crc32_update(crc32(std::span(b).first(40)), std::span(b).subspan(44, 20)); std::memcpy(b.data() + 40, &crc, 4); },
         "do not say so"},
        {"flipped CRC", [&](auto& b) { b[at + 24] ^= std::byte{1}; }, where + ": decoded bytes have CRC-32"},
        {"corrupt compressed bytes", [&](auto& b) { for (size_t k = 0; k < 16; ++k) b[at + 48 + k] = std::byte{0xff}; }, where + ":"},
        {"nonce on a plain payload", [&](auto& b) { b[at + 32] = std::byte{1}; }, "nonce at +0x20 is set"},
    };
    for (const auto& test : cases) {
      INFO(test.what);
      auto bytes = good;
      test.damage(bytes);
      CHECK_THAT(open_error(bytes), Catch::Contains(test.expected));
    }
  }
}
