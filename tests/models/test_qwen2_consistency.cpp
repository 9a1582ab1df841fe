// Qwen2 on random weights: incremental decode equals the full forward, chunked prefill equals one
// chunk, thread counts give identical logits, every weight dtype loads, bad calls are refused.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "apr/models/qwen2.hpp"
#include "apr/models/synth.hpp"

using namespace apr;
using namespace apr::models;

namespace {

Qwen2Config tiny_config(bool sliding) {
  Qwen2Config config;
  config.vocab_size = 96;
  config.hidden_size = 64;
  config.intermediate_size = 96;
  config.num_hidden_layers = 2;
  config.num_attention_heads = 4;
  config.num_key_value_heads = 2;
  config.head_dim = 16;
  config.rope_theta = 10000.0f;
  config.use_sliding_window = sliding;
  config.sliding_window = 5;
  config.max_window_layers = 1;
  return config;
}

std::vector<int32_t> prompt(size_t n) {
  std::vector<int32_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((i * 37 + 11) % 96);
  return ids;
}

template <WeightDtype W>
std::unique_ptr<Qwen2<W>> make_model(const Qwen2Config& config, ModelOptions options = {}) {
  auto file = synthesize_qwen2(config, DType::f32, 1234);
  REQUIRE(file);
  auto model = Qwen2<W>::load(*file, config, {}, options);
  REQUIRE(model);
  return std::move(model).value();
}

}  // namespace

TEST_CASE("incremental decode equals the full forward (tolerance 1e-4)", "[qwen2]") {
  for (bool sliding : {false, true}) {
    const auto config = tiny_config(sliding);
    ModelOptions options;
    options.prefill_chunk = 6;  // several chunks, and a ring buffer that wraps
    auto model = make_model<F32>(config, options);
    const auto ids = prompt(20);
    auto full = model->new_sequence(32);
    std::vector<float> all(ids.size() * config.vocab_size);
    REQUIRE(model->forward(*full, ids, all, {.all_logits = true}));
    auto step = model->new_sequence(32);
    std::vector<float> logits(config.vocab_size);
    for (size_t t = 0; t < ids.size(); ++t) {
      REQUIRE(model->forward(*step, std::span(&ids[t], 1), logits));
      for (size_t v = 0; v < config.vocab_size; ++v) REQUIRE(logits[v] == Approx(all[t * config.vocab_size + v]).margin(1e-4));
    }
    REQUIRE(step->length() == ids.size());
  }
}

TEST_CASE("logits are bit-identical for 1 and 2 threads", "[qwen2]") {
  const auto config = tiny_config(false);
  ThreadPool one(1), two(2);
  auto a = make_model<Q8_0>(config, {.pool = &one});
  auto b = make_model<Q8_0>(config, {.pool = &two});
  const auto ids = prompt(9);
  std::vector<float> la(config.vocab_size), lb(config.vocab_size);
  auto sa = a->new_sequence(16), sb = b->new_sequence(16);
  REQUIRE(a->forward(*sa, ids, la));
  REQUIRE(b->forward(*sb, ids, lb));
  REQUIRE(la == lb);
}

TEMPLATE_TEST_CASE("every weight dtype loads from f32 weights and stays close to f32", "[qwen2]", F16, BF16, Q8_0, Q4_0) {
  const auto config = tiny_config(false);
  auto reference = make_model<F32>(config);
  auto model = make_model<TestType>(config);
  const auto ids = prompt(7);
  std::vector<float> expected(config.vocab_size), got(config.vocab_size);
  auto s1 = reference->new_sequence(8), s2 = model->new_sequence(8);
  REQUIRE(reference->forward(*s1, ids, expected));
  REQUIRE(model->forward(*s2, ids, got));
  double error = 0, norm = 0;
  for (size_t v = 0; v < expected.size(); ++v) {
    error += std::pow(got[v] - expected[v], 2);
    norm += std::pow(expected[v], 2);
  }
  // relative L2 error of the logits: f16 ~1e-3, bf16 ~1e-2, q8_0 ~1e-2, q4_0 ~1e-1
  REQUIRE(std::sqrt(error / norm) < 0.25);
}

TEST_CASE("bad calls and bad weights are refused with clear errors", "[qwen2]") {
  const auto config = tiny_config(false);
  auto model = make_model<F32>(config);
  auto sequence = model->new_sequence(4);
  std::vector<float> logits(config.vocab_size);
  const std::vector<int32_t> out_of_vocab{1, 96};
  auto refused = model->forward(*sequence, out_of_vocab, logits);
  REQUIRE_FALSE(refused);
  REQUIRE(refused.error().message.find("token 96 at index 1") != std::string::npos);
  REQUIRE_FALSE(model->forward(*sequence, prompt(5), logits));  // capacity 4
  REQUIRE_FALSE(model->forward(*sequence, {}, logits));

  auto file = synthesize_qwen2(config, DType::f32, 1);
  REQUIRE(file);
  auto wrong = config;
  wrong.intermediate_size = 64;
  auto failed = Qwen2<F32>::load(*file, wrong);
  REQUIRE_FALSE(failed);
  REQUIRE(failed.error().message.find("mlp.gate_proj.weight' has shape [96, 64], expected [64, 64]") != std::string::npos);
  wrong = config;
  wrong.num_key_value_heads = 3;
  REQUIRE(Qwen2<F32>::load(*file, wrong).error().message.find("num_key_value_heads") != std::string::npos);
}

TEST_CASE("truncate rewinds a sequence and regenerates the same logits", "[qwen2]") {
  const auto config = tiny_config(true);
  auto model = make_model<F32>(config);
  auto sequence = model->new_sequence(32);
  const auto ids = prompt(12);
  std::vector<float> first(config.vocab_size), second(config.vocab_size);
  REQUIRE(model->forward(*sequence, ids, first));
  REQUIRE(sequence->truncate(10));
  REQUIRE(model->forward(*sequence, std::span(ids).subspan(10), second));
  for (size_t v = 0; v < first.size(); ++v) REQUIRE(second[v] == Approx(first[v]).margin(1e-4));
  REQUIRE_FALSE(sequence->truncate(13));
}
