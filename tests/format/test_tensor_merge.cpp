// merge_values(): average, weighted average and task arithmetic element by element; bad inputs refused.
#include <catch2/catch.hpp>

#include <span>
#include <vector>

#include "apr/format/tensor_merge.hpp"

using namespace apr::format;

namespace {
const std::vector<float> kA{1.0f, 2.0f, -3.0f};
const std::vector<float> kB{3.0f, 0.0f, 1.0f};
const std::vector<std::span<const float>> kModels{kA, kB};
}  // namespace

TEST_CASE("strategy names") {
  CHECK(parse_merge_strategy("average") == MergeStrategy::average);
  CHECK(parse_merge_strategy("task-arithmetic") == MergeStrategy::task_arithmetic);
  CHECK_FALSE(parse_merge_strategy("ties").has_value());
}

TEST_CASE("average is the mean") {
  auto merged = merge_values(MergeStrategy::average, kModels, {});
  REQUIRE(merged);
  CHECK(*merged == std::vector<float>{2.0f, 1.0f, -1.0f});
}

TEST_CASE("weighted average divides by the sum of the weights") {
  const std::vector<float> weights{3.0f, 1.0f};
  auto merged = merge_values(MergeStrategy::weighted, kModels, weights);
  REQUIRE(merged);
  CHECK((*merged)[0] == Approx((3 * 1.0 + 3.0) / 4));
  CHECK((*merged)[2] == Approx((3 * -3.0 + 1.0) / 4));
  CHECK(*merge_values(MergeStrategy::weighted, kModels, std::vector<float>{1.0f, 0.0f}) == kA);
}

TEST_CASE("task arithmetic adds the scaled task vectors to the base") {
  const std::vector<float> base{1.0f, 1.0f, 1.0f};
  auto merged = merge_values(MergeStrategy::task_arithmetic, kModels, {}, base, 0.5f);
  REQUIRE(merged);
  // base + 0.5 * ((a - base) + (b - base))
  CHECK(*merged == std::vector<float>{1.0f + 0.5f * (0.0f + 2.0f), 1.0f + 0.5f * (1.0f - 1.0f), 1.0f + 0.5f * (-4.0f + 0.0f)});
  CHECK(*merge_values(MergeStrategy::task_arithmetic, kModels, {}, base, 0.0f) == base);
}

TEST_CASE("mismatched inputs are refused") {
  const std::vector<float> shorter{1.0f};
  const std::vector<std::span<const float>> uneven{kA, shorter};
  CHECK_FALSE(merge_values(MergeStrategy::average, uneven, {}));
  CHECK_FALSE(merge_values(MergeStrategy::weighted, kModels, std::vector<float>{1.0f}));
  CHECK_FALSE(merge_values(MergeStrategy::weighted, kModels, std::vector<float>{1.0f, -1.0f}));
  CHECK_FALSE(merge_values(MergeStrategy::task_arithmetic, kModels, {}, shorter));
  CHECK_FALSE(merge_values(MergeStrategy::average, {}, {}));
}
