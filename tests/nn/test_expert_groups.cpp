// ExpertGroups: grouping routed rows by expert equals the plain loop over every (expert, row,
// choice), and gather + expert + weighted scatter equals the per-row weighted sum of experts.
#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include "apr/nn/expert_groups.hpp"
#include "apr/nn/moe_router.hpp"

using namespace apr;

TEST_CASE("expert groups hold every routed row once, by expert, in row order", "[nn][moe]") {
  constexpr size_t rows = 37, experts = 8, top_k = 2;
  std::mt19937 rng(7);
  std::normal_distribution<float> normal;
  std::vector<float> logits(rows * experts), probabilities(rows * experts), weights(rows * top_k);
  std::vector<int32_t> ids(rows * top_k);
  for (float& v : logits) v = normal(rng);
  nn::route_tokens(logits.data(), rows, experts, top_k, true, probabilities.data(), ids.data(), weights.data());
  nn::ExpertGroups groups;
  groups.build(ids.data(), weights.data(), rows, top_k, experts);
  REQUIRE(groups.experts() == experts);
  size_t total = 0;
  for (size_t e = 0; e < experts; ++e) {
    std::vector<uint32_t> expected_rows;
    std::vector<float> expected_weights;
    for (size_t r = 0; r < rows; ++r) {
      for (size_t k = 0; k < top_k; ++k) {
        if (ids[r * top_k + k] == static_cast<int32_t>(e)) {
          expected_rows.push_back(static_cast<uint32_t>(r));
          expected_weights.push_back(weights[r * top_k + k]);
        }
      }
    }
    const auto got_rows = groups.rows(e);
    const auto got_weights = groups.weights(e);
    CHECK(std::vector<uint32_t>(got_rows.begin(), got_rows.end()) == expected_rows);
    CHECK(std::vector<float>(got_weights.begin(), got_weights.end()) == expected_weights);
    total += got_rows.size();
  }
  CHECK(total == rows * top_k);

  // expert e scales its input by (e + 1): the grouped result is Σ_k w_k (id_k + 1) x
  constexpr size_t width = 5;
  std::vector<float> input(rows * width), output(rows * width, 0.0f), gathered(groups.largest() * width);
  for (float& v : input) v = normal(rng);
  for (size_t e = 0; e < experts; ++e) {
    groups.gather(e, input.data(), width, gathered.data());
    for (size_t i = 0; i < groups.rows(e).size() * width; ++i) gathered[i] *= static_cast<float>(e + 1);
    groups.scatter_add(e, gathered.data(), width, output.data());
  }
  for (size_t r = 0; r < rows; ++r) {
    for (size_t c = 0; c < width; ++c) {
      float expected = 0.0f;
      for (size_t k = 0; k < top_k; ++k) expected += weights[r * top_k + k] * static_cast<float>(ids[r * top_k + k] + 1) * input[r * width + c];
      CHECK(output[r * width + c] == Approx(expected).margin(1e-6));
    }
  }
}
