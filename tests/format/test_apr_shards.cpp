// Sharded APR: writing shards + manifest from the qwen2-v512 fixture, opening the manifest as one
// file, and each inconsistency between manifest and shards giving its own error.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "apr/format/apr_shards.hpp"
#include "apr/format/detect.hpp"
#include "test_support.hpp"

using namespace apr;
using namespace apr::format;
namespace fs = std::filesystem;

namespace {

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

void spit(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

/// Writes the v512 fixture as shards of at most `limit` bytes into a fresh folder; returns the output path.
std::string write_fixture_shards(const std::string& folder, uint64_t limit) {
  const fs::path dir = apr::test::temp_path(folder);
  fs::remove_all(dir);
  fs::create_directories(dir);
  auto source = AprFile::open(apr::test::fixture("apr/qwen2-v512.apr"));
  REQUIRE(source);
  std::vector<AprWriteTensor> tensors;
  for (const auto& t : (*source)->tensors()) tensors.push_back(AprWriteTensor::from_view(t));
  const std::string output = (dir / "model.apr").string();
  nlohmann::json metadata = (*source)->metadata();
  metadata["tokenizer.json"] = R"({"model": {"type": "BPE"}})";
  auto manifest = write_apr_sharded(output, metadata, std::move(tensors), limit);
  REQUIRE(manifest);
  return output;
}

std::string open_error(const std::string& manifest) {
  auto file = AprShardedFile::open(manifest);
  return file ? std::string("(opened)") : file.error().message;
}

}  // namespace

TEST_CASE("shards written from a model open through the manifest as the same tensors", "[apr][shards]") {
  const std::string output = write_fixture_shards("shards", 40'000);
  const std::string manifest_path = apr_manifest_path(output);
  auto source = AprFile::open(apr::test::fixture("apr/qwen2-v512.apr"));
  REQUIRE(source);
  auto opened = open_tensor_file(manifest_path);  // the generic opener recognises the manifest
  REQUIRE(opened);
  CHECK((*opened)->format() == "apr");
  REQUIRE((*opened)->tensors().size() == (*source)->tensors().size());
  for (const auto& t : (*source)->tensors()) {
    const TensorView* u = (*opened)->find(t.name);
    REQUIRE(u != nullptr);
    CHECK(u->dtype == t.dtype);
    CHECK(u->shape == t.shape);
    REQUIRE(u->bytes.size() == t.bytes.size());
    CHECK(std::memcmp(u->bytes.data(), t.bytes.data(), t.bytes.size()) == 0);
  }
  auto sharded = AprShardedFile::open(manifest_path);
  REQUIRE(sharded);
  CHECK((*sharded)->metadata()["tokenizer.json"] == R"({"model": {"type": "BPE"}})");
  const AprShardManifest& m = (*sharded)->manifest();
  REQUIRE(m.shards.size() > 2);
  uint64_t total = 0;
  for (const auto& t : (*source)->tensors()) total += t.bytes.size();
  CHECK(m.total_size == total);
  CHECK(m.weight_map.size() == (*source)->tensors().size());
  const size_t n = m.shards.size();
  for (size_t i = 0; i < n; ++i) {
    CHECK(m.shards[i].filename == fmt::format("model-{:05d}-of-{:05d}.apr", i + 1, n));
    const AprFile& shard = *(*sharded)->shards()[i];
    CHECK((shard.contents().flags & apr_v2::kSharded) != 0);
    CHECK(shard.metadata()["sharding"]["shard_index"] == i);
    CHECK(shard.metadata()["sharding"]["shard_count"] == n);
    CHECK(shard.metadata()["sharding"]["pattern"] == "model-{:05d}-of-{:05d}.apr");
    CHECK(shard.metadata()["name"] == (*source)->metadata()["name"]);
    CHECK(shard.metadata().contains("tokenizer.json") == (i == 0));  // the artefacts once, in the first shard
    uint64_t stored = 0;
    for (const auto& t : shard.tensors()) stored += apr_v2::align64(t.bytes.size());
    CHECK((stored <= 40'000 || shard.tensors().size() == 1));  // a bigger tensor gets a shard of its own
  }
  // the manifest is aprender's ShardManifest, pretty-printed, and parses back to itself
  const std::string text = slurp(manifest_path);
  CHECK(text.starts_with("{\n  \"version\": \"2.0\",\n  \"shard_count\": "));
  auto reparsed = parse_apr_manifest(text, "m");
  REQUIRE(reparsed);
  CHECK(reparsed->to_json_text() == text);
}

TEST_CASE("each manifest/shard inconsistency has its own error", "[apr][shards]") {
  const std::string output = write_fixture_shards("shards_bad", 40'000);
  const fs::path dir = fs::path(output).parent_path();
  const std::string manifest_path = apr_manifest_path(output);
  const std::string good = slurp(manifest_path);
  REQUIRE(open_error(manifest_path) == "(opened)");
  auto json = nlohmann::json::parse(good);
  const size_t n = json["shards"].size();
  const std::string first = json["shards"][0]["filename"], second = json["shards"][1]["filename"];
  const auto with = [&](const nlohmann::json& j) {
    spit(manifest_path, j.dump(2));
    return open_error(manifest_path);
  };

  SECTION("a missing shard") {
    fs::remove(dir / second);
    CHECK(open_error(manifest_path) == fmt::format("{}: shard 1 '{}' is missing", manifest_path, (dir / second).string()));
  }
  SECTION("two shards swapped") {
    fs::rename(dir / first, dir / "tmp.apr");
    fs::rename(dir / second, dir / first);
    fs::rename(dir / "tmp.apr", dir / second);
    auto j = json;
    // sizes follow the files so that the shard's own metadata is what disagrees
    std::swap(j["shards"][0]["size"], j["shards"][1]["size"]);
    CHECK(with(j).find("says it is shard 1 of " + std::to_string(n) + ", the manifest lists it as shard 0") != std::string::npos);
  }
  SECTION("a tensor missing from the weight map") {
    auto j = json;
    j["weight_map"].erase(j["shards"][0]["tensors"][0].get<std::string>());
    CHECK(with(j).find("is missing from weight_map") != std::string::npos);
  }
  SECTION("a tensor listed in two shards") {
    auto j = json;
    j["shards"][1]["tensors"].push_back(j["shards"][0]["tensors"][0]);
    CHECK(with(j).find("is listed in shards 0 and 1") != std::string::npos);
  }
  SECTION("a tensor the manifest does not list for its shard") {
    auto j = json;
    const std::string name = j["shards"][0]["tensors"].back();
    j["shards"][0]["tensors"].erase(j["shards"][0]["tensors"].size() - 1);
    j["weight_map"].erase(name);
    j["tensor_count"] = j["tensor_count"].get<int>() - 1;
    CHECK(with(j) == fmt::format("{}: shard 0 holds tensor '{}', which the manifest does not list for it", manifest_path, name));
  }
  SECTION("a file name outside the folder") {
    auto j = json;
    j["shards"][0]["filename"] = "../model.apr";
    CHECK(with(j).find("shards[0].filename '../model.apr' is not a file name beside the manifest") != std::string::npos);
  }
  SECTION("a wrong shard size, count or total") {
    auto j = json;
    j["shards"][0]["size"] = j["shards"][0]["size"].get<uint64_t>() + 1;
    CHECK(with(j).find("bytes, the manifest says") != std::string::npos);
    j = json;
    j["shard_count"] = n + 1;
    CHECK(with(j).find("shard_count is " + std::to_string(n + 1)) != std::string::npos);
    j = json;
    j["total_size"] = 1;
    CHECK(with(j).find("total_size is 1, but the shards hold") != std::string::npos);
    j = json;
    j["version"] = "1.0";
    CHECK(with(j).find("version must be \"2.0\"") != std::string::npos);
  }
  SECTION("a corrupt shard names the manifest and shard") {
    std::string bytes = slurp(dir / second);
    uint64_t data_offset = 0;  // header field at 0x20: flip a byte of the first tensor's data
    std::memcpy(&data_offset, bytes.data() + 32, 8);
    bytes[data_offset + 10] ^= 1;
    spit(dir / second, bytes);
    auto file = AprShardedFile::open(manifest_path);
    REQUIRE(file);  // structure intact: only the full-data checksum can tell
    auto verified = (*file)->verify_checksums();
    REQUIRE_FALSE(verified);
    CHECK(verified.error().message.find(manifest_path + ": shard 1: ") == 0);
    CHECK(verified.error().message.find("footer checksum") != std::string::npos);
  }
}

TEST_CASE("the shard writer refuses a zero limit and duplicate names and writes no manifest", "[apr][shards]") {
  const fs::path dir = apr::test::temp_path("shards_refused");
  fs::remove_all(dir);
  fs::create_directories(dir);
  const auto empty = [](ByteSink& sink) { return sink.write(std::span<const std::byte>()); };
  std::vector<AprWriteTensor> twice = {{"a", DType::u8, Shape{0}, 0, std::nullopt, empty}, {"a", DType::u8, Shape{0}, 0, std::nullopt, empty}};
  const std::string output = (dir / "m.apr").string();
  CHECK(write_apr_sharded(output, nlohmann::json::object(), twice, 1000).error().message == output + ": tensor 'a' given twice");
  CHECK(write_apr_sharded(output, nlohmann::json::object(), twice, 0).error().message.find("must be positive") != std::string::npos);
  CHECK(fs::is_empty(dir));
}
