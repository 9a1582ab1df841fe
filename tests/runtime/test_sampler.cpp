// Sampler: greedy, determinism per seed, top-k / top-p / min-p support sets, penalties.
#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <vector>

#include "apr/runtime/sampler.hpp"

using namespace apr::runtime;

TEST_CASE("greedy picks the argmax, lowest id on ties", "[sampler]") {
  Sampler sampler(SamplingOptions::greedy());
  std::vector<float> logits{0.1f, 2.0f, 2.0f, -1.0f};
  REQUIRE(sampler.sample(logits, {}) == 1);
}

TEST_CASE("same seed gives the same draws; different seeds differ", "[sampler]") {
  std::vector<float> base(100);
  for (size_t i = 0; i < base.size(); ++i) base[i] = static_cast<float>(i % 7) * 0.3f;
  auto draws = [&](uint64_t seed) {
    SamplingOptions options;
    options.seed = seed;
    options.top_k = 0;
    options.top_p = 1.0f;
    Sampler sampler(options);
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) {
      auto logits = base;
      out.push_back(sampler.sample(logits, {}));
    }
    return out;
  };
  REQUIRE(draws(7) == draws(7));
  REQUIRE(draws(7) != draws(8));
}

TEST_CASE("top-k, top-p and min-p restrict the support", "[sampler]") {
  // probabilities at temperature 1 ∝ exp(logit): token 0 dominant, then 1, 2, ...
  const std::vector<float> base{5.0f, 4.0f, 3.0f, 2.0f, 1.0f, 0.0f};
  auto support = [&](SamplingOptions options) {
    std::set<int32_t> seen;
    for (uint64_t seed = 0; seed < 400; ++seed) {
      options.seed = seed;
      options.temperature = 1.0f;
      Sampler sampler(options);
      auto logits = base;
      seen.insert(sampler.sample(logits, {}));
    }
    return seen;
  };
  SamplingOptions top_k;
  top_k.top_k = 2;
  top_k.top_p = 1.0f;
  REQUIRE(support(top_k) == std::set<int32_t>{0, 1});
  SamplingOptions top_p;
  top_p.top_k = 0;
  top_p.top_p = 0.7f;  // p0 = 0.636, p0+p1 = 0.87 >= 0.7
  REQUIRE(support(top_p) == std::set<int32_t>{0, 1});
  SamplingOptions min_p;
  min_p.top_k = 0;
  min_p.top_p = 1.0f;
  min_p.min_p = 0.1f;  // keeps p >= 0.1·p0: tokens 0, 1, 2 (e^-2 = 0.135)
  REQUIRE(support(min_p) == std::set<int32_t>{0, 1, 2});
}

TEST_CASE("penalties change logits of seen tokens as documented", "[sampler]") {
  SamplingOptions options = SamplingOptions::greedy();
  options.repetition_penalty = 2.0f;
  options.presence_penalty = 0.5f;
  options.frequency_penalty = 0.25f;
  Sampler sampler(options);
  std::vector<float> logits{4.0f, -1.0f, 3.9f};
  const std::vector<int32_t> history{0, 0, 1};
  REQUIRE(sampler.sample(logits, history) == 2);
  REQUIRE(logits[0] == Approx(4.0f / 2.0f - 0.5f - 0.5f));
  REQUIRE(logits[1] == Approx(-1.0f * 2.0f - 0.5f - 0.25f));
  REQUIRE(logits[2] == 3.9f);
}

TEST_CASE("invalid options are refused with the field named", "[sampler]") {
  SamplingOptions options;
  options.top_p = 0.0f;
  REQUIRE_FALSE(options.validate());
  REQUIRE(options.validate().error().message.find("top_p") != std::string::npos);
  options = {};
  options.temperature = -1.0f;
  REQUIRE(options.validate().error().message.find("temperature") != std::string::npos);
}
