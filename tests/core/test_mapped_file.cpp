// MappedFile: maps real files, refuses missing, empty and non-regular ones with clear messages.
#include <catch2/catch.hpp>

#include <fstream>

#include "apr/core/mapped_file.hpp"
#include "test_support.hpp"

using namespace apr;

TEST_CASE("maps a file and exposes its bytes", "[mmap]") {
  const auto path = test::temp_path("mapped.bin");
  { std::ofstream(path, std::ios::binary) << "hello apr"; }
  auto file = MappedFile::open(path);
  REQUIRE(file);
  REQUIRE(file->size() == 9);
  REQUIRE(static_cast<char>(file->bytes()[6]) == 'a');
  MappedFile moved = std::move(file).value();
  REQUIRE(moved.size() == 9);
  REQUIRE(moved.path() == path);
}

TEST_CASE("missing, empty and directory paths give errors naming the file", "[mmap]") {
  const auto missing = MappedFile::open(test::temp_path("does-not-exist.apr"));
  REQUIRE_FALSE(missing);
  REQUIRE(missing.error().code == ErrorCode::not_found);
  REQUIRE(missing.error().message.find("does-not-exist.apr: cannot open") != std::string::npos);

  const auto empty_path = test::temp_path("empty.apr");
  { std::ofstream(empty_path, std::ios::binary); }
  const auto empty = MappedFile::open(empty_path);
  REQUIRE_FALSE(empty);
  REQUIRE(empty.error().message == empty_path + ": file is empty");

  const auto directory = MappedFile::open(APR_TEST_TMP_DIR);
  REQUIRE_FALSE(directory);
  REQUIRE(directory.error().message.find("not a regular file") != std::string::npos);
}
