// SafeTensors reader and writer: fixture files, sharded index, every malformed-header error, and
// write/read round trips.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "apr/format/safetensors.hpp"
#include "apr/format/safetensors_writer.hpp"
#include "test_support.hpp"

using namespace apr;
using namespace apr::format;

namespace {

/// A SafeTensors byte string with the given header JSON and `data` bytes after it.
std::vector<std::byte> make_file(const std::string& header, size_t data = 0) {
  std::vector<std::byte> bytes(8 + header.size() + data, std::byte{0});
  const uint64_t length = header.size();
  std::memcpy(bytes.data(), &length, 8);
  std::memcpy(bytes.data() + 8, header.data(), header.size());
  return bytes;
}

std::string error_of(const std::string& header, size_t data = 0) {
  const auto bytes = make_file(header, data);
  auto parsed = parse_safetensors(bytes, "x.safetensors");
  return parsed ? std::string("(parsed)") : parsed.error().message;
}

}  // namespace

TEST_CASE("reads the qwen2-v512 fixture", "[safetensors]") {
  auto file = SafeTensorsFile::open(test::fixture("qwen2/qwen2-v512/model.safetensors"));
  REQUIRE(file);
  REQUIRE((*file)->format() == "safetensors");
  REQUIRE((*file)->tensors().size() == 27);
  const TensorView* embed = (*file)->find("model.embed_tokens.weight");
  REQUIRE(embed != nullptr);
  REQUIRE(embed->dtype == DType::f32);
  REQUIRE(embed->shape == Shape{512, 64});
  REQUIRE(embed->bytes.size() == 512 * 64 * 4);
  REQUIRE((*file)->data_offset(*embed).has_value());
  auto micro = SafeTensorsFile::open(test::fixture("qwen2/qwen2-micro/model.safetensors"));
  REQUIRE(micro);
  REQUIRE((*micro)->find("model.norm.weight")->dtype == DType::bf16);
}

TEST_CASE("malformed headers give errors naming the tensor and field", "[safetensors]") {
  REQUIRE(error_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8) == "(parsed)");
  REQUIRE(error_of("not json") == "x.safetensors: header at offset 0x8 (8 bytes) is not a JSON object");
  REQUIRE(error_of(R"({"a":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", 2) == "x.safetensors: tensor 'a': unsupported dtype 'F8_E4M3'");
  REQUIRE(error_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", 8).find("outside the data section of 8 bytes") != std::string::npos);
  REQUIRE(error_of(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8) == "x.safetensors: tensor 'a': data_offsets span 8 bytes, but [3] F32 values need 12");
  REQUIRE(error_of(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]}})", 8).find("overflows") != std::string::npos);
  REQUIRE(error_of(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,8]}})", 8) == "x.safetensors: tensor 'a': shape entries must be non-negative integers");
  REQUIRE(error_of(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12).find("overlap") != std::string::npos);
  REQUIRE(error_of(R"({"__metadata__":{"k":1}})") == "x.safetensors: __metadata__.k must be a string");
  std::vector<std::byte> short_file(5);
  REQUIRE(parse_safetensors(short_file, "x.safetensors").error().message.find("header length at offset 0x0: needs 8 bytes") != std::string::npos);
  auto huge = make_file("{}");
  const uint64_t absurd = uint64_t{1} << 62;
  std::memcpy(huge.data(), &absurd, 8);
  REQUIRE(parse_safetensors(huge, "x.safetensors").error().message.find("exceeds the file") != std::string::npos);
}

TEST_CASE("a sharded index opens as one file; missing and duplicate tensors are refused", "[safetensors]") {
  auto write = [](const std::string& name, const std::string& content) {
    std::ofstream(test::temp_path(name), std::ios::binary).write(content.data(), static_cast<std::streamsize>(content.size()));
  };
  auto shard = [&](const std::string& name, const std::string& tensor) {
    const auto bytes = make_file(R"({")" + tensor + R"(":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"__metadata__":{"format":"pt"}})", 4);
    write(name, std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  };
  shard("shard-1.safetensors", "a");
  shard("shard-2.safetensors", "b");
  write("sharded.index.json", R"({"metadata":{"total_size":8},"weight_map":{"a":"shard-1.safetensors","b":"shard-2.safetensors"}})");
  auto file = SafeTensorsFile::open(test::temp_path("sharded.index.json"));
  REQUIRE(file);
  REQUIRE((*file)->tensors().size() == 2);
  REQUIRE((*file)->find("b") != nullptr);
  REQUIRE((*file)->metadata()["format"] == "pt");

  write("missing.index.json", R"({"weight_map":{"a":"shard-1.safetensors","c":"shard-1.safetensors"}})");
  REQUIRE(SafeTensorsFile::open(test::temp_path("missing.index.json")).error().message.find("tensor 'c' is mapped to shard-1.safetensors but is not in it") != std::string::npos);
  shard("shard-3.safetensors", "a");
  write("duplicate.index.json", R"({"weight_map":{"a":"shard-1.safetensors","x":"shard-3.safetensors"}})");
  REQUIRE(SafeTensorsFile::open(test::temp_path("duplicate.index.json")).error().message.find("appears in more than one shard") != std::string::npos);
  write("escape.index.json", R"({"weight_map":{"a":"../etc/passwd"}})");
  REQUIRE(SafeTensorsFile::open(test::temp_path("escape.index.json")).error().message.find("not a file beside the index") != std::string::npos);
}

TEST_CASE("the writer round-trips every dtype and __metadata__ with 8-byte aligned data", "[safetensors][writer]") {
  // one tensor per dtype, with sizes that leave the header and each tensor at odd lengths
  const std::vector<std::pair<DType, size_t>> kinds = {{DType::f64, 3}, {DType::f32, 5}, {DType::f16, 7}, {DType::bf16, 1}, {DType::i64, 2},
                                                       {DType::i32, 3}, {DType::i16, 5}, {DType::i8, 9}, {DType::u8, 11}, {DType::boolean, 13}};
  std::vector<std::vector<std::byte>> payloads;
  std::vector<AprWriteTensor> tensors;
  uint8_t next = 1;
  for (const auto& [dtype, count] : kinds) {
    const std::string name = "t." + std::string(*safetensors_dtype_name(dtype));
    std::vector<std::byte> bytes(count * dtype_info(dtype).block_bytes);
    for (auto& b : bytes) b = std::byte{dtype == DType::boolean ? uint8_t(next++ % 2) : next++};
    payloads.push_back(bytes);
    tensors.push_back({name, dtype, Shape{count}, bytes.size(), std::nullopt,
                       [data = payloads.back()](ByteSink& sink) { return sink.write(data); }});
  }
  const std::string path = test::temp_path("writer_dtypes.safetensors");
  REQUIRE(write_safetensors(path, tensors, {{"format", "pt"}, {"note", "ünïcode \"quoted\""}}));
  auto file = SafeTensorsFile::open(path);
  REQUIRE(file);
  REQUIRE((*file)->metadata() == nlohmann::json{{"format", "pt"}, {"note", "ünïcode \"quoted\""}});
  REQUIRE((*file)->tensors().size() == kinds.size());
  for (size_t i = 0; i < kinds.size(); ++i) {
    const TensorView* t = (*file)->find(tensors[i].name);
    REQUIRE(t != nullptr);
    CHECK(t->dtype == kinds[i].first);
    CHECK(t->shape == Shape{kinds[i].second});
    REQUIRE(t->bytes.size() == payloads[i].size());
    CHECK(std::memcmp(t->bytes.data(), payloads[i].data(), payloads[i].size()) == 0);
  }
  // the 8-byte length, then the header padded so the data section starts on an 8-byte boundary
  std::ifstream in(path, std::ios::binary);
  uint64_t header_length = 0;
  in.read(reinterpret_cast<char*>(&header_length), 8);
  CHECK((8 + header_length) % 8 == 0);
}

TEST_CASE("rewriting the qwen2-v512 fixture keeps every tensor's bytes", "[safetensors][writer]") {
  auto source = SafeTensorsFile::open(test::fixture("qwen2/qwen2-v512/model.safetensors"));
  REQUIRE(source);
  std::vector<AprWriteTensor> tensors;
  for (const auto& t : (*source)->tensors()) tensors.push_back(AprWriteTensor::from_view(t));
  const std::string path = test::temp_path("qwen2-v512-rewritten.safetensors");
  REQUIRE(write_safetensors(path, tensors));
  auto copy = SafeTensorsFile::open(path);
  REQUIRE(copy);
  REQUIRE((*copy)->tensors().size() == (*source)->tensors().size());
  for (const auto& t : (*source)->tensors()) {
    const TensorView* u = (*copy)->find(t.name);
    REQUIRE(u != nullptr);
    CHECK(u->dtype == t.dtype);
    CHECK(u->shape == t.shape);
    REQUIRE(u->bytes.size() == t.bytes.size());
    CHECK(std::memcmp(u->bytes.data(), t.bytes.data(), t.bytes.size()) == 0);
    CHECK((*copy)->data_offset(*u).value() % 8 == 0);
  }
  // a second rewrite of the rewrite is byte-identical: the writer's output is canonical
  std::vector<AprWriteTensor> again;
  for (const auto& t : (*copy)->tensors()) again.push_back(AprWriteTensor::from_view(t));
  const std::string path2 = test::temp_path("qwen2-v512-rewritten2.safetensors");
  REQUIRE(write_safetensors(path2, again));
  std::ifstream a(path, std::ios::binary), b(path2, std::ios::binary);
  const std::string bytes_a((std::istreambuf_iterator<char>(a)), {}), bytes_b((std::istreambuf_iterator<char>(b)), {});
  CHECK(bytes_a == bytes_b);
}

TEST_CASE("the writer refuses dtypes SafeTensors lacks and duplicate names, leaving no file", "[safetensors][writer]") {
  const std::string path = test::temp_path("writer_refused.safetensors");
  std::filesystem::remove(path);
  std::vector<AprWriteTensor> q4 = {{"w", DType::q4_0, Shape{32}, 18, std::nullopt, [](ByteSink&) { return Result<void>{}; }}};
  auto status = write_safetensors(path, q4);
  REQUIRE_FALSE(status);
  CHECK(status.error().message.find("tensor 'w': SafeTensors has no") != std::string::npos);
  const auto empty = [](ByteSink& sink) { return sink.write(std::span<const std::byte>()); };
  std::vector<AprWriteTensor> twice = {{"a", DType::u8, Shape{0}, 0, std::nullopt, empty}, {"a", DType::u8, Shape{0}, 0, std::nullopt, empty}};
  status = write_safetensors(path, twice);
  REQUIRE_FALSE(status);
  CHECK(status.error().message == path + ": tensor 'a' given twice");
  CHECK_FALSE(std::filesystem::exists(path));
}
