// map_apr_layout(): header fields and index entries where the fixture's JSON dump says they are,
// also in files the strict reader refuses, and a clean stop on truncated files.
#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apr/format/apr_layout_map.hpp"
#include "apr/format/apr_reader.hpp"
#include "test_support.hpp"

using namespace apr;
using namespace apr::format;
using apr::test::fixture;

namespace {
std::vector<std::byte> read_fixture(const std::string& relative) {
  std::ifstream in(fixture(relative), std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> bytes(chars.size());
  std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}
}  // namespace

TEST_CASE("small_v2.apr maps as its JSON dump describes it") {
  const auto bytes = read_fixture("apr/small_v2.apr");
  std::ifstream dump_file(fixture("apr/small_v2.json"));
  const auto info = nlohmann::json::parse(dump_file)["info"];
  const AprLayoutMap map = map_apr_layout(bytes);
  CHECK(map.problem.empty());
  CHECK(map.tensor_count == info["tensor_count"].get<uint32_t>());
  CHECK(map.index_offset == info["tensor_index_offset"].get<uint64_t>());
  CHECK(map.data_offset == info["data_offset"].get<uint64_t>());
  CHECK(map.footer_offset == bytes.size() - 4);
  REQUIRE(map.header.size() == 11);
  CHECK(map.header[0].label == "magic");
  CHECK(map.header[0].value == "\"APR\\x00\"");
  REQUIRE(map.entries.size() == info["tensors"].size());
  uint64_t offset = map.index_offset;
  for (size_t i = 0; i < map.entries.size(); ++i) {
    const auto& entry = map.entries[i];
    const auto& expected = info["tensors"][i];
    CHECK(entry.entry_offset == offset);
    CHECK(entry.name == expected["name"].get<std::string>());
    CHECK(entry.code == expected["dtype"].get<int>());
    CHECK(entry.dims == expected["shape"].get<std::vector<uint64_t>>());
    CHECK(entry.data_offset == expected["offset"].get<uint64_t>());
    CHECK(entry.size == expected["size"].get<uint64_t>());
    CHECK(entry.entry_size == 2 + entry.name.size() + 2 + 8 * entry.dims.size() + 16);
    REQUIRE(entry.fields.size() == 6 + entry.dims.size());
    CHECK(entry.fields.front().offset == offset);
    CHECK(entry.fields.back().label == "size");
    CHECK(entry.fields.back().offset + 8 == offset + entry.entry_size);
    offset += entry.entry_size;
  }
}

TEST_CASE("a file the strict reader refuses still maps") {
  auto bytes = read_fixture("apr/small_v2.apr");
  const AprLayoutMap clean = map_apr_layout(bytes);
  REQUIRE(clean.entries.size() >= 2);
  bytes[clean.entries[0].fields[1].offset] = std::byte{'z'};  // unsorted index
  CHECK_FALSE(parse_apr(bytes, "unsorted"));
  const AprLayoutMap map = map_apr_layout(bytes);
  CHECK(map.problem.empty());
  CHECK(map.entries[0].name.front() == 'z');
}

TEST_CASE("truncated files stop with a problem, not a crash") {
  const auto bytes = read_fixture("apr/small_v2.apr");
  CHECK_FALSE(map_apr_layout(std::span(bytes).first(20)).problem.empty());
  auto cut = bytes;
  const AprLayoutMap clean = map_apr_layout(bytes);
  cut.resize(clean.index_offset + 8 + 4);  // the data section now starts past the end
  CHECK_FALSE(map_apr_layout(cut).problem.empty());
}
