// generate(): stop ids, stop strings across token boundaries (never streamed), budgets,
// cancellation and a full context, on a scripted model.
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "apr/runtime/generator.hpp"
#include "fake_models.hpp"

using namespace apr;
using namespace apr::runtime;

namespace {

using test::ScriptedModel;

const std::map<int32_t, std::string> kPieces{{1, "Hel"}, {2, "lo"}, {3, " wor"}, {4, "ld"}, {5, "!"}, {6, "<"}, {7, "|end"}, {8, "|>"}, {9, "x"}};

TokenText pieces() {
  return [](int32_t id) { return kPieces.count(id) ? kPieces.at(id) : std::string(); };
}

}  // namespace

TEST_CASE("generation stops on a stop id and on the token budget", "[generate]") {
  ScriptedModel model({0, 1, 2, 3, 4, 5, 15, 9});
  auto sequence = model.new_sequence(32);
  GenerationOptions options;
  options.sampling = SamplingOptions::greedy();
  options.stop_ids = {15};
  const std::vector<int32_t> prompt{0};
  auto result = generate(model, *sequence, prompt, options, pieces());
  REQUIRE(result);
  REQUIRE(result->tokens == std::vector<int32_t>{1, 2, 3, 4, 5});
  REQUIRE(result->text == "Hello world!");
  REQUIRE(result->stop_reason == StopReason::stop_token);
  REQUIRE(finish_reason(result->stop_reason) == "stop");

  auto again = model.new_sequence(32);
  options.max_tokens = 2;
  result = generate(model, *again, prompt, options, pieces());
  REQUIRE(result->tokens == std::vector<int32_t>{1, 2});
  REQUIRE(result->stop_reason == StopReason::max_tokens);
  REQUIRE(again->length() == 2);  // prompt + first token fed; the last sampled token is not fed
}

TEST_CASE("a stop string split over tokens is cut and never streamed", "[generate]") {
  ScriptedModel model({0, 1, 2, 6, 7, 8, 9, 9});
  auto sequence = model.new_sequence(32);
  GenerationOptions options;
  options.sampling = SamplingOptions::greedy();
  options.stop_strings = {"<|end|>"};
  std::string streamed;
  const std::vector<int32_t> prompt{0};
  auto result = generate(model, *sequence, prompt, options, pieces(), [&](std::string_view piece, int32_t) {
    streamed += piece;
    return true;
  });
  REQUIRE(result);
  REQUIRE(result->text == "Hello");
  REQUIRE(streamed == "Hello");
  REQUIRE(result->stop_reason == StopReason::stop_string);
}

TEST_CASE("held-back text is released when it does not complete a stop string", "[generate]") {
  ScriptedModel model({0, 1, 6, 9, 9});
  auto sequence = model.new_sequence(32);
  GenerationOptions options;
  options.sampling = SamplingOptions::greedy();
  options.stop_strings = {"<|end|>"};
  options.max_tokens = 3;
  std::vector<std::string> streamed;
  const std::vector<int32_t> prompt{0};
  auto result = generate(model, *sequence, prompt, options, pieces(), [&](std::string_view piece, int32_t) {
    streamed.emplace_back(piece);
    return true;
  });
  REQUIRE(result->text == "Hel<x");
  REQUIRE(streamed == std::vector<std::string>{"Hel", "<x"});
}

TEST_CASE("cancellation and a full context end generation", "[generate]") {
  ScriptedModel model({0, 1, 2, 3, 4, 5, 9, 9, 9});
  GenerationOptions options;
  options.sampling = SamplingOptions::greedy();
  const std::vector<int32_t> prompt{0};
  auto sequence = model.new_sequence(32);
  int calls = 0;
  auto result = generate(model, *sequence, prompt, options, pieces(), [&](std::string_view, int32_t) { return ++calls < 2; });
  REQUIRE(result->stop_reason == StopReason::cancelled);
  REQUIRE(result->tokens.size() == 2);

  auto small = model.new_sequence(3);
  result = generate(model, *small, prompt, options, pieces());
  REQUIRE(result->stop_reason == StopReason::context_full);
  REQUIRE(result->tokens.size() == 3);
  REQUIRE_FALSE(generate(model, *small, {}, options));
}
