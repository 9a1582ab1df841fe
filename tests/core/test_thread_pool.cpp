// ThreadPool: exact contiguous splitting, every row once, nested calls inline, many small jobs.
#include <catch2/catch.hpp>

#include <atomic>
#include <numeric>
#include <vector>

#include "apr/core/thread_pool.hpp"

using namespace apr;

TEST_CASE("split_rows covers [0, n) contiguously in grain multiples", "[threads]") {
  for (size_t n : {0u, 1u, 5u, 16u, 17u, 1000u}) {
    for (size_t count : {1u, 2u, 3u, 8u}) {
      for (size_t grain : {1u, 4u, 16u}) {
        size_t next = 0;
        for (size_t t = 0; t < count; ++t) {
          const RowRange range = split_rows(n, t, count, grain);
          REQUIRE(range.begin == next);
          REQUIRE(range.end >= range.begin);
          if (range.end < n) REQUIRE(range.end % grain == 0);
          next = range.end;
        }
        REQUIRE(next == n);
      }
    }
  }
}

TEST_CASE("parallel_for visits every row exactly once for any pool size", "[threads]") {
  for (size_t threads : {1u, 2u, 3u, 5u}) {
    ThreadPool pool(threads);
    REQUIRE(pool.size() == threads);
    std::vector<std::atomic<int>> visits(1003);
    for (int repeat = 0; repeat < 200; ++repeat) {
      pool.parallel_for(visits.size(), [&](size_t begin, size_t end) {
        for (size_t i = begin; i < end; ++i) visits[i].fetch_add(1);
      });
    }
    for (auto& v : visits) REQUIRE(v.load() == 200);
  }
}

TEST_CASE("run gives each thread its index; nested calls run inline", "[threads]") {
  ThreadPool pool(3);
  std::vector<int> seen(3, 0);
  std::atomic<int> nested_total{0};
  pool.run([&](size_t index, size_t count) {
    seen[index] = static_cast<int>(count);
    pool.parallel_for(10, [&](size_t begin, size_t end) { nested_total += static_cast<int>(end - begin); });
  });
  REQUIRE(seen == std::vector<int>{3, 3, 3});
  REQUIRE(nested_total.load() == 30);
}

TEST_CASE("per-thread partial sums combine to the same total for 1 and N threads", "[threads]") {
  std::vector<double> data(10000);
  std::iota(data.begin(), data.end(), 0.5);
  auto row_sums = [&](size_t threads) {
    ThreadPool pool(threads);
    std::vector<double> out(100);
    pool.parallel_for(100, [&](size_t begin, size_t end) {
      for (size_t r = begin; r < end; ++r) out[r] = std::accumulate(data.begin() + r * 100, data.begin() + r * 100 + 100, 0.0);
    });
    return out;
  };
  REQUIRE(row_sums(1) == row_sums(2));
  REQUIRE(row_sums(1) == row_sums(7));
}
