// Result<T>: value and error states, context prefixes.
#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "apr/core/result.hpp"

using namespace apr;

namespace {
Result<int> parse_positive(int v) {
  if (v <= 0) return make_error(ErrorCode::invalid_argument, "value {} is not positive", v);
  return v;
}
}  // namespace

TEST_CASE("Result holds a value or an error", "[result]") {
  const auto good = parse_positive(3);
  REQUIRE(good.has_value());
  REQUIRE(*good == 3);
  const auto bad = parse_positive(-1);
  REQUIRE_FALSE(bad);
  REQUIRE(bad.error().code == ErrorCode::invalid_argument);
  REQUIRE(bad.error().message == "value -1 is not positive");
  REQUIRE(bad.error().with_context("config.json").message == "config.json: value -1 is not positive");
  REQUIRE(bad.value_or(7) == 7);
}

TEST_CASE("Result works with move-only values and void", "[result]") {
  Result<std::unique_ptr<int>> owned(std::make_unique<int>(5));
  REQUIRE(**owned == 5);
  auto taken = std::move(owned).value();
  REQUIRE(*taken == 5);
  Result<void> fine = ok();
  REQUIRE(fine);
  Result<void> failed = make_error(ErrorCode::io, "disk full");
  REQUIRE_FALSE(failed);
  REQUIRE(to_string(failed.error().code) == "io");
}
