// APR v2: every fixture read and checked against its JSON dump, rewritten byte-identically,
// APR_Q4/APR_Q8 dequantized within their bounds, round trips of every dtype, and a corruption
// table where each kind of damage gives its own error.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apr/core/apr_quant.hpp"
#include "apr/core/quantize.hpp"
#include "apr/format/apr_reader.hpp"
#include "apr/format/apr_writer.hpp"
#include "apr/format/tensor_values.hpp"
#include "test_support.hpp"

using namespace apr;
using namespace apr::format;

using apr::test::read_bytes;

namespace {

/// Rewrites `file` with apr's writer: same metadata text, same dtype codes, same tensor bytes.
Result<void> rewrite(const AprFile& file, const std::string& path) {
  std::vector<AprWriteTensor> tensors;
  for (size_t i = 0; i < file.contents().entries.size(); ++i) {
    tensors.push_back(AprWriteTensor::from_view(file.tensors()[i], file.contents().entries[i].code));
  }
  return write_apr(path, file.contents().metadata_text, std::move(tensors), file.contents().flags);
}

std::string error_of(std::vector<std::byte> bytes) {
  auto parsed = parse_apr(bytes, "model.apr");
  return parsed ? "(parsed)" : parsed.error().message;
}

/// Recomputes the header CRC after an edit, so the damage under test is the only one.
void fix_header_crc(std::vector<std::byte>& bytes) {
  const uint32_t crc = crc32_update(crc32(std::span(bytes).first(40)), std::span(bytes).subspan(44, 20));
  std::memcpy(bytes.data() + 40, &crc, 4);
}

}  // namespace

TEST_CASE("every APR v2 fixture reads, matches its JSON dump and rewrites byte-identically", "[apr]") {
  for (const std::string name : {"small_v2", "qwen2-v512", "qwen2-v512-aprq4", "legacy_bf16_code2"}) {
    INFO(name);
    auto file = AprFile::open(test::fixture("apr/" + name + ".apr"));
    REQUIRE(file);
    REQUIRE((*file)->verify_checksum());
    std::ifstream dump_in(test::fixture("apr/" + name + ".json"));
    const auto dump = nlohmann::json::parse(dump_in)["info"];
    const auto& c = (*file)->contents();
    CHECK(c.flags == dump["flags"].get<uint16_t>());
    CHECK(c.metadata_size == dump["metadata_size"].get<uint32_t>());
    CHECK(c.index_offset == dump["tensor_index_offset"].get<uint64_t>());
    CHECK(c.data_offset == dump["data_offset"].get<uint64_t>());
    CHECK(c.metadata == dump["metadata"]);
    REQUIRE(c.entries.size() == dump["tensors"].size());
    for (size_t i = 0; i < c.entries.size(); ++i) {
      const auto& expected = dump["tensors"][i];
      CHECK(c.entries[i].name == expected["name"].get<std::string>());
      CHECK(c.entries[i].code == expected["dtype"].get<int>());
      CHECK(c.entries[i].offset == expected["offset"].get<uint64_t>());
      CHECK(c.entries[i].size == expected["size"].get<uint64_t>());
      CHECK(std::vector<uint64_t>(c.entries[i].shape.dims().begin(), c.entries[i].shape.dims().end()) == expected["shape"].get<std::vector<uint64_t>>());
    }
    const std::string out = test::temp_path(name + ".rewritten.apr");
    REQUIRE(rewrite(**file, out));
    CHECK(read_bytes(out) == read_bytes(test::fixture("apr/" + name + ".apr")));
  }
}

TEST_CASE("legacy code 2 is BF16 by size; APR_Q4 matrices dequantize close to the F32 file", "[apr]") {
  auto legacy = AprFile::open(test::fixture("apr/legacy_bf16_code2.apr"));
  REQUIRE(legacy);
  bool saw_bf16 = false;
  for (const auto& entry : (*legacy)->contents().entries) saw_bf16 |= entry.code == 2 && entry.dtype == DType::bf16;
  REQUIRE(saw_bf16);

  auto f32 = AprFile::open(test::fixture("apr/qwen2-v512.apr"));
  auto q4 = AprFile::open(test::fixture("apr/qwen2-v512-aprq4.apr"));
  REQUIRE((f32 && q4));
  size_t checked = 0;
  for (const TensorView& quantized : (*q4)->tensors()) {
    if (quantized.dtype != DType::apr_q4) continue;
    const auto values = tensor_to_f32(quantized);
    const auto reference = tensor_to_f32(*(*f32)->find(quantized.name));
    REQUIRE((values && reference));
    for (size_t block = 0; block * 32 < values->size(); ++block) {
      float amax = 0.0f;
      for (size_t j = block * 32; j < std::min(values->size(), block * 32 + 32); ++j) amax = std::max(amax, std::fabs((*reference)[j]));
      // half a step of scale = amax/7, plus the f16 rounding of the scale (8 steps × 2^-11)
      const float bound = amax / 7.0f * (0.5f + 8.0f * 0x1p-11f) + 1e-7f;
      for (size_t j = block * 32; j < std::min(values->size(), block * 32 + 32); ++j) REQUIRE(std::fabs((*values)[j] - (*reference)[j]) <= bound);
    }
    ++checked;
  }
  REQUIRE(checked >= 10);
}

TEST_CASE("round trip of every dtype apr writes, via streaming views", "[apr]") {
  const auto values = test::random_floats(64, 3);
  std::vector<std::vector<std::byte>> storage;
  std::vector<AprWriteTensor> tensors;
  auto add = [&](std::string name, DType dtype, std::vector<std::byte> bytes, Shape shape) {
    storage.push_back(std::move(bytes));
    tensors.push_back(AprWriteTensor::from_view(TensorView{"", dtype, shape, storage.back()}));
    tensors.back().name = std::move(name);
  };
  auto as_bytes = [](const auto& v) {
    std::vector<std::byte> b(v.size() * sizeof(v[0]));
    std::memcpy(b.data(), v.data(), b.size());
    return b;
  };
  std::vector<uint16_t> f16(64), bf16(64);
  fp32_to_fp16_row(values.data(), f16.data(), 64);
  fp32_to_bf16_row(values.data(), bf16.data(), 64);
  std::vector<BlockQ8_0> q8(2);
  std::vector<BlockQ4_0> q4(2);
  quantize_row<Q8_0>(values.data(), q8.data(), 64);
  quantize_row<Q4_0>(values.data(), q4.data(), 64);
  std::vector<uint8_t> aq4(apr_q4_bytes(64)), aq8(apr_q8_bytes(64));
  quantize_apr_q4(values.data(), 64, aq4.data());
  quantize_apr_q8(values.data(), 64, aq8.data());
  std::vector<int32_t> ints{1, -2, 3};
  add("t.f32", DType::f32, as_bytes(values), Shape{2, 32});
  add("t.f16", DType::f16, as_bytes(f16), Shape{64});
  add("t.bf16", DType::bf16, as_bytes(bf16), Shape{8, 8});
  add("t.q8_0", DType::q8_0, as_bytes(q8), Shape{2, 32});
  add("t.q4_0", DType::q4_0, as_bytes(q4), Shape{2, 32});
  add("t.apr_q4", DType::apr_q4, as_bytes(aq4), Shape{64});
  add("t.apr_q8", DType::apr_q8, as_bytes(aq8), Shape{64});
  add("t.i32", DType::i32, as_bytes(ints), Shape{3});
  add("a.empty", DType::f32, {}, Shape{0});
  const std::string path = test::temp_path("roundtrip.apr");
  REQUIRE(write_apr(path, apr_metadata_text({{"model_type", "custom"}, {"name", "roundtrip"}, {"tokenizer.json", "{}"}}), tensors));
  auto file = AprFile::open(path);
  REQUIRE(file);
  REQUIRE((*file)->verify_checksum());
  REQUIRE((*file)->metadata()["name"] == "roundtrip");
  REQUIRE((*file)->metadata()["architecture"].is_null());
  REQUIRE((*file)->metadata()["tokenizer.json"] == "{}");
  REQUIRE((*file)->tensors().front().name == "a.empty");  // sorted by name
  for (const auto& source : tensors) {
    const TensorView* read = (*file)->find(source.name);
    REQUIRE(read != nullptr);
    CHECK(read->dtype == source.dtype);
    CHECK(read->shape == source.shape);
    CHECK(std::equal(read->bytes.begin(), read->bytes.end(), storage[static_cast<size_t>(&source - tensors.data())].begin()));
    CHECK(reinterpret_cast<uintptr_t>(read->bytes.data()) % 64 == 0);
  }
  const auto decoded = tensor_to_f32(*(*file)->find("t.apr_q8"));
  for (size_t i = 0; i < 64; ++i) CHECK(std::fabs((*decoded)[i] - values[i]) <= 1.0f / 127.0f * 0.5f + 1e-6f);
  REQUIRE(tensor_to_f32(*(*file)->find("t.i32"))->at(1) == -2.0f);
}

TEST_CASE("a failed write leaves no file and no temporary", "[apr]") {
  const std::string path = test::temp_path("failed.apr");
  std::remove(path.c_str());
  AprWriteTensor broken{"x", DType::f32, Shape{4}, 16, std::nullopt, [](ByteSink&) -> Result<void> { return make_error(ErrorCode::io, "source went away"); }};
  const auto status = write_apr(path, "{}", {broken});
  REQUIRE_FALSE(status);
  REQUIRE(status.error().message == "source went away");
  REQUIRE_FALSE(std::ifstream(path).good());
  REQUIRE_FALSE(std::ifstream(fmt::format("{}.tmp.{}", path, ::getpid())).good());
  AprWriteTensor short_data{"x", DType::f32, Shape{4}, 16, std::nullopt, [](ByteSink& sink) { return sink.write(std::vector<std::byte>(8)); }};
  REQUIRE(write_apr(path, "{}", {short_data}).error().message.find("produced 8 bytes, its index entry says 16") != std::string::npos);
}

TEST_CASE("corruption table: each kind of damage has its own error", "[apr]") {
  const auto good = read_bytes(test::fixture("apr/small_v2.apr"));
  REQUIRE(error_of(good) == "(parsed)");
  const auto c = *parse_apr(good, "model.apr");
  struct Case {
    const char* what;
    std::function<void(std::vector<std::byte>&)> damage;
    std::string expected;  // substring of the error
  };
  auto put_u64 = [](std::vector<std::byte>& b, size_t at, uint64_t v) { std::memcpy(b.data() + at, &v, 8); };
  const size_t first_entry = c.index_offset;  // small_v2: "a.f32", name_len 5, dtype, ndim 2, dims, offset, size
  const std::vector<Case> cases{
      {"wrong magic", [](auto& b) { b[0] = std::byte{'X'}; }, "not an APR file (magic 58 50 52 00"},
      {"APR v1 magic", [](auto& b) { std::memcpy(b.data(), "APRN", 4); }, "an APR v1 file"},
      {"APR2 magic", [](auto& b) { std::memcpy(b.data(), "APR2", 4); }, "magic 'APR2' comes from older APR docs"},
      {"truncated header", [](auto& b) { b.resize(40); }, "file is 40 bytes; an APR header needs 64"},
      {"flipped header CRC", [](auto& b) { b[40] ^= std::byte{1}; }, "header checksum at offset 0x28"},
      {"version", [](auto& b) { b[4] = std::byte{3}; fix_header_crc(b); }, "version 3.0 at offset 0x4"},
      {"reserved bytes", [](auto& b) { b[50] = std::byte{1}; fix_header_crc(b); }, "reserved header bytes"},
      {"column major", [](auto& b) { b[7] |= std::byte{0x08}; fix_header_crc(b); }, "column-major"},
      {"metadata past end", [&](auto& b) { uint32_t m = 1 << 30; std::memcpy(b.data() + 20, &m, 4); fix_header_crc(b); }, "runs past the data end"},
      {"invalid JSON metadata", [](auto& b) { b[64] = std::byte{'X'}; }, "is not valid JSON"},
      {"invalid UTF-8 metadata", [](auto& b) { b[70] = std::byte{0xFF}; }, "is not valid UTF-8"},
      {"name length past end", [&](auto& b) { uint16_t n = 256; std::memcpy(b.data() + first_entry, &n, 2); }, "name length 256 runs past the index end"},
      {"name too long", [&](auto& b) { uint16_t n = 300; std::memcpy(b.data() + first_entry, &n, 2); }, "name length 300 exceeds 256"},
      {"unknown dtype", [&](auto& b) { b[first_entry + 7] = std::byte{77}; }, "unknown dtype code 77"},
      {"too many dims", [&](auto& b) { b[first_entry + 8] = std::byte{9}; }, "9 dims (at most 8)"},
      {"dims overflow", [&](auto& b) { put_u64(b, first_entry + 9, uint64_t{1} << 40); put_u64(b, first_entry + 17, uint64_t{1} << 40); }, "overflow"},
      {"misaligned tensor", [&](auto& b) { put_u64(b, first_entry + 25, 8); }, "data offset 0x8 is not a multiple of 64"},
      // the second entry ("b.f16", 1 dim) starts 41 bytes in; its offset field 17 bytes after its name
      {"overlapping tensors", [&](auto& b) { put_u64(b, first_entry + 41 + 2 + 5 + 2 + 8, 0); }, "overlap"},
      {"data past end", [&](auto& b) { put_u64(b, first_entry + 25, 1 << 20); }, "past end of file"},
      {"unsorted index", [&](auto& b) { b[first_entry + 2] = std::byte{'z'}; }, "index is not sorted"},
      {"tensor count absurd", [](auto& b) { uint32_t n = 1u << 31; std::memcpy(b.data() + 8, &n, 4); fix_header_crc(b); }, "cannot fit in the"},
      {"truncated data", [](auto& b) { b.resize(b.size() - 300); }, "past end of file"},
      {"non-zero metadata padding", [&](auto& b) { b[64 + c.metadata_size] = std::byte{1}; }, "padding after the metadata"},
  };
  for (const auto& test : cases) {
    INFO(test.what);
    auto bytes = good;
    test.damage(bytes);
    CHECK_THAT(error_of(bytes), Catch::Contains(test.expected));
  }
  auto flipped = good;
  flipped[c.data_offset + 3] ^= std::byte{0x40};
  const std::string path = test::temp_path("flipped-data.apr");
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(flipped.data()), static_cast<std::streamsize>(flipped.size()));
  auto file = AprFile::open(path);
  REQUIRE(file);  // structure is fine
  const auto checksum = (*file)->verify_checksum();
  REQUIRE_FALSE(checksum);
  REQUIRE(checksum.error().code == ErrorCode::checksum);
  REQUIRE_THAT(checksum.error().message, Catch::Contains("footer checksum at offset"));
  REQUIRE_THAT(AprFile::open(test::fixture("apr/real/tsp_att48_not_v2.apr")).error().message, Catch::Contains("aprender-tsp"));
}
