// DType facts, byte sizes with overflow checks, parsing and visit_dtype dispatch.
#include <catch2/catch.hpp>

#include <limits>

#include "apr/core/dtype.hpp"

using namespace apr;

TEST_CASE("dtype_bytes follows block geometry and refuses partial blocks and overflow", "[dtype]") {
  REQUIRE(dtype_bytes(DType::f32, 10) == 40u);
  REQUIRE(dtype_bytes(DType::q4_0, 64) == 36u);
  REQUIRE(dtype_bytes(DType::q8_0, 64) == 68u);
  REQUIRE_FALSE(dtype_bytes(DType::q8_0, 33).has_value());
  REQUIRE(dtype_bytes(DType::apr_q4, 33) == 36u);  // last block padded
  REQUIRE(dtype_bytes(DType::apr_q8, 10) == 14u);  // f32 scale + 10 bytes
  REQUIRE(dtype_bytes(DType::q6_k, 512) == 420u);
  REQUIRE_FALSE(dtype_bytes(DType::f64, std::numeric_limits<uint64_t>::max() / 4).has_value());
}

TEST_CASE("parse_dtype inverts to_string", "[dtype]") {
  for (int code = 0; code <= static_cast<int>(DType::boolean); ++code) {
    const auto dtype = static_cast<DType>(code);
    REQUIRE(parse_dtype(to_string(dtype)) == dtype);
  }
  REQUIRE(parse_dtype("Q4_0") == DType::q4_0);
  REQUIRE_FALSE(parse_dtype("q3_k").has_value());
}

TEST_CASE("visit_dtype turns a runtime code into the matching tag", "[dtype]") {
  auto name_of = [](DType dtype) {
    return visit_dtype(dtype, [](auto tag) -> Result<size_t> { return decltype(tag)::block_bytes; });
  };
  REQUIRE(name_of(DType::f32).value() == 4);
  REQUIRE(name_of(DType::bf16).value() == 2);
  REQUIRE(name_of(DType::q8_0).value() == 34);
  REQUIRE(name_of(DType::q4_0).value() == 18);
  const auto refused = name_of(DType::q6_k);
  REQUIRE_FALSE(refused.has_value());
  REQUIRE(refused.error().code == ErrorCode::unsupported);
  REQUIRE(refused.error().message.find("q6_k") != std::string::npos);
  STATIC_REQUIRE(WeightDtype<Q4_0>);
  STATIC_REQUIRE_FALSE(WeightDtype<int>);
}
