// Perplexity: a uniform model scores exactly vocab_size; windows cover every token once.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "apr/eval/perplexity.hpp"
#include "apr/models/qwen2.hpp"
#include "apr/models/synth.hpp"
#include "fake_models.hpp"

using namespace apr;



TEST_CASE("uniform model has perplexity equal to the vocabulary size", "[perplexity]") {
  test::ScriptedModel model({}, 50);
  std::vector<int32_t> tokens(100);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(i % 50);
  const auto result = eval::perplexity(model, tokens, {.context = 32, .stride = 16});
  REQUIRE(result);
  REQUIRE(result->tokens == 99);  // every token but the first, once
  REQUIRE(result->perplexity == Approx(50.0));
  REQUIRE(result->ppl_low == Approx(50.0));
  REQUIRE(result->windows == 6);
  REQUIRE(model.forward_calls == 6);  // windows start at 0, 16, ..., 80 (the one at 80 reaches the end)
}

TEST_CASE("perplexity of a real model is finite and above 1; bad inputs are refused", "[perplexity]") {
  models::Qwen2Config config;
  config.vocab_size = 64;
  config.hidden_size = 32;
  config.intermediate_size = 64;
  config.num_hidden_layers = 1;
  config.num_attention_heads = 2;
  config.num_key_value_heads = 1;
  config.head_dim = 16;
  auto file = models::synthesize_qwen2(config, DType::f32, 5);
  REQUIRE(file);
  auto model = models::Qwen2<F32>::load(*file, config);
  REQUIRE(model);
  std::vector<int32_t> tokens(40);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 13) % 64);
  const auto whole = eval::perplexity(**model, tokens, {.context = 40, .stride = 40});
  REQUIRE(whole);
  REQUIRE(whole->tokens == 39);
  REQUIRE(whole->perplexity > 1.0);
  REQUIRE(std::isfinite(whole->perplexity));
  REQUIRE_FALSE(eval::perplexity(**model, std::span(tokens).first(1), {}));
  REQUIRE_FALSE(eval::perplexity(**model, tokens, {.context = 8, .stride = 9}));
}

TEST_CASE("summarize_nll: mean, perplexity and the 95% interval from known values", "[perplexity]") {
  const std::vector<double> nll{1.0, 2.0, 3.0, 4.0};
  const auto result = eval::summarize_nll(nll, 2);
  CHECK(result.tokens == 4);
  CHECK(result.windows == 2);
  CHECK(result.mean_nll == Approx(2.5));
  CHECK(result.perplexity == Approx(std::exp(2.5)));
  // sample sd sqrt(5/3), se = sd / 2 = 0.645497; 1.959964 * se = 1.265151
  CHECK(result.ppl_low == Approx(std::exp(2.5 - 1.265151)).epsilon(1e-5));
  CHECK(result.ppl_high == Approx(std::exp(2.5 + 1.265151)).epsilon(1e-5));
  CHECK(eval::summarize_nll({}, 0).tokens == 0);
}
