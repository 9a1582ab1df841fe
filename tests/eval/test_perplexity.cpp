// Perplexity: a uniform model scores exactly vocab_size; windows cover every token once.
#include <catch2/catch.hpp>

#include <cmath>
#include <vector>

#include "apr/eval/perplexity.hpp"
#include "apr/models/qwen2.hpp"
#include "apr/models/synth.hpp"

using namespace apr;

namespace {

/// A model whose logits are all zero: every token has probability 1/vocab.
class UniformModel final : public models::LanguageModel {
 public:
  struct State final : models::Sequence {
    size_t used = 0, cap = 0;
    size_t length() const noexcept override { return used; }
    size_t capacity() const noexcept override { return cap; }
    Result<void> truncate(size_t n) override { used = n; return ok(); }
  };
  std::string_view architecture() const noexcept override { return "uniform"; }
  size_t vocab_size() const noexcept override { return 50; }
  size_t max_context() const noexcept override { return 1000; }
  nlohmann::json describe() const override { return {}; }
  std::unique_ptr<models::Sequence> new_sequence(size_t n) const override {
    auto s = std::make_unique<State>();
    s->cap = n;
    return s;
  }
  Result<void> forward(models::Sequence& s, std::span<const int32_t> tokens, std::span<float> logits,
                       const models::ForwardOptions& options) const override {
    static_cast<State&>(s).used += tokens.size();
    std::fill(logits.begin(), logits.begin() + static_cast<std::ptrdiff_t>((options.all_logits ? tokens.size() : 1) * 50), 0.0f);
    ++calls;
    return ok();
  }
  mutable int calls = 0;
};

}  // namespace

TEST_CASE("uniform model has perplexity equal to the vocabulary size", "[perplexity]") {
  UniformModel model;
  std::vector<int32_t> tokens(100);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>(i % 50);
  const auto result = eval::perplexity(model, tokens, {.context = 32, .stride = 16});
  REQUIRE(result);
  REQUIRE(result->tokens == 99);  // every token but the first, once
  REQUIRE(result->perplexity == Approx(50.0));
  REQUIRE(result->ppl_low == Approx(50.0));
  REQUIRE(result->windows == 6);  // windows start at 0, 16, ..., 80 (the one at 80 reaches the end)
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
