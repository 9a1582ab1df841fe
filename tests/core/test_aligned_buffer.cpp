#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "apr/core/aligned_buffer.hpp"

using apr::AlignedBuffer;

namespace {

bool all_zero(const AlignedBuffer& buffer) {
  return std::all_of(buffer.bytes().begin(), buffer.bytes().end(), [](std::byte b) { return b == std::byte{0}; });
}

/// Pages of `buffer` the kernel has backed with memory.
size_t resident_pages(const AlignedBuffer& buffer) {
  const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> residency((buffer.size() + page - 1) / page);
  REQUIRE(::mincore(const_cast<std::byte*>(buffer.data()), buffer.size(), residency.data()) == 0);
  return static_cast<size_t>(std::count_if(residency.begin(), residency.end(), [](unsigned char r) { return (r & 1) != 0; }));
}

}  // namespace

TEST_CASE("AlignedBuffer: small buffers are zeroed and 64-byte aligned") {
  AlignedBuffer buffer(1000);
  REQUIRE(buffer.size() == 1000);
  CHECK(reinterpret_cast<uintptr_t>(buffer.data()) % apr::kAlignment == 0);
  CHECK(all_zero(buffer));
  AlignedBuffer empty;
  CHECK(empty.empty());
  CHECK(empty.data() == nullptr);
}

TEST_CASE("AlignedBuffer: large buffers are zeroed, 2 MiB aligned and backed only where touched") {
  const size_t bytes = size_t{64} << 20;
  AlignedBuffer buffer(bytes + 3);
  REQUIRE(buffer.size() == bytes + 3);
  CHECK(reinterpret_cast<uintptr_t>(buffer.data()) % apr::kHugePage == 0);
  // nothing is resident before the first write (a 2.2 GB KV cache costs nothing until filled)
  CHECK(resident_pages(buffer) == 0);
  buffer.data()[bytes / 2] = std::byte{7};
  const size_t touched = resident_pages(buffer);
  CHECK(touched >= 1);
  CHECK(touched <= apr::kHugePage / static_cast<size_t>(::sysconf(_SC_PAGESIZE)));
  buffer.data()[bytes / 2] = std::byte{0};
  CHECK(all_zero(buffer));
}

TEST_CASE("AlignedBuffer: moves hand over the bytes and leave the source empty") {
  for (const size_t bytes : {size_t{256}, apr::kHugePage * 2}) {
    AlignedBuffer a(bytes);
    a.data()[1] = std::byte{42};
    const std::byte* first = a.data();
    AlignedBuffer b(std::move(a));
    CHECK(b.data() == first);
    CHECK(b.data()[1] == std::byte{42});
    CHECK(a.empty());  // NOLINT(bugprone-use-after-move): the moved-from state is specified
    CHECK(a.data() == nullptr);
    AlignedBuffer c(64);
    c = std::move(b);
    CHECK(c.data() == first);
    CHECK(c.size() == bytes);
    CHECK(b.empty());  // NOLINT(bugprone-use-after-move)
  }
}
