// Precision gate: a faithful conversion passes, a deliberately broken one is refused.
#include <catch2/catch.hpp>

#include "apr/eval/precision_gate.hpp"
#include "apr/models/qwen2.hpp"
#include "apr/models/synth.hpp"

using namespace apr;
using namespace apr::models;

namespace {
Qwen2Config small_config() {
  Qwen2Config c;
  c.vocab_size = 128;
  c.hidden_size = 64;
  c.intermediate_size = 128;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;
  c.head_dim = 16;
  return c;
}
}  // namespace

TEST_CASE("f16 and q8_0 conversions of the same weights pass their gates", "[gate]") {
  const auto config = small_config();
  auto file = synthesize_qwen2(config, DType::f32, 77);
  REQUIRE(file);
  auto source = Qwen2<F32>::load(*file, config);
  auto f16 = Qwen2<F16>::load(*file, config);
  auto q8 = Qwen2<Q8_0>::load(*file, config);
  REQUIRE((source && f16 && q8));
  const auto tokens = eval::gate_tokens(config.vocab_size, 32);
  auto report = eval::precision_gate(**source, **f16, tokens, eval::default_thresholds(DType::f16));
  REQUIRE(report);
  INFO(report->to_json().dump());
  REQUIRE(report->passed());
  report = eval::precision_gate(**source, **q8, tokens, eval::default_thresholds(DType::q8_0));
  INFO(report->to_json().dump());
  REQUIRE(report->passed());
}

TEST_CASE("a broken conversion (wrong weights) fails the gate with the reasons", "[gate]") {
  const auto config = small_config();
  auto good = synthesize_qwen2(config, DType::f32, 77);
  auto broken = synthesize_qwen2(config, DType::f32, 78);  // different weights: a mangled conversion
  auto source = Qwen2<F32>::load(*good, config);
  auto converted = Qwen2<Q8_0>::load(*broken, config);
  const auto tokens = eval::gate_tokens(config.vocab_size, 32);
  auto report = eval::precision_gate(**source, **converted, tokens, eval::default_thresholds(DType::q8_0));
  REQUIRE(report);
  REQUIRE_FALSE(report->passed());
  REQUIRE(report->failures.front().find("mean KL") == 0);
}
