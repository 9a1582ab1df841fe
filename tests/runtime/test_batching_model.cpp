// Batched decoding: Qwen2::forward_batch gives each sequence the logits its own forward() would
// (qwen2-micro fixture, f32 and q8_0), and BatchingModel merges concurrent generations into
// shared steps while every thread gets exactly the tokens it would get alone.
#include <catch2/catch.hpp>

#include <thread>
#include <vector>

#include "apr/models/load.hpp"
#include "apr/runtime/batching_model.hpp"
#include "apr/runtime/generator.hpp"
#include "test_support.hpp"

using namespace apr;

namespace {

models::LoadedModel load_micro(std::optional<DType> dtype) {
  models::LoadOptions options;
  options.weight_dtype = dtype;
  auto loaded = models::load_language_model(test::fixture("qwen2/qwen2-micro"), options);
  REQUIRE(loaded);
  return std::move(loaded).value();
}

std::vector<int32_t> prompt_of(size_t i) { return {static_cast<int32_t>(10 + i), static_cast<int32_t>(200 + 3 * i), 7, static_cast<int32_t>(1000 + i)}; }

}  // namespace

TEST_CASE("forward_batch gives each sequence its own forward's logits", "[runtime][batching]") {
  for (auto dtype : {DType::f32, DType::q8_0}) {
    INFO(to_string(dtype));
    auto loaded = load_micro(dtype);
    const auto& model = *loaded.model;
    const size_t vocab = model.vocab_size();
    constexpr size_t kSequences = 5;
    std::vector<std::unique_ptr<models::Sequence>> batched, alone;
    std::vector<float> logits(vocab);
    for (size_t i = 0; i < kSequences; ++i) {  // prompts of different lengths: rows at different positions
      auto prompt = prompt_of(i);
      prompt.resize(2 + i, 5);
      for (auto* list : {&batched, &alone}) {
        list->push_back(model.new_sequence(32));
        REQUIRE(model.forward(*list->back(), prompt, logits));
      }
    }
    for (int step = 0; step < 3; ++step) {
      std::vector<models::Sequence*> sequences;
      std::vector<int32_t> tokens;
      std::vector<std::vector<float>> outputs(kSequences, std::vector<float>(vocab));
      std::vector<float*> pointers;
      for (size_t i = 0; i < kSequences; ++i) {
        sequences.push_back(batched[i].get());
        tokens.push_back(static_cast<int32_t>(50 + 11 * i + static_cast<size_t>(step)));
        pointers.push_back(outputs[i].data());
      }
      REQUIRE(model.forward_batch(sequences, tokens, pointers));
      for (size_t i = 0; i < kSequences; ++i) {
        REQUIRE(model.forward(*alone[i], std::span(&tokens[i], 1), logits));
        float max_diff = 0.0f, max_abs = 0.0f;
        for (size_t v = 0; v < vocab; ++v) {
          max_diff = std::max(max_diff, std::abs(outputs[i][v] - logits[v]));
          max_abs = std::max(max_abs, std::abs(logits[v]));
        }
        CHECK(max_diff <= 1e-4f * std::max(1.0f, max_abs));  // gemm and gemv sum in different orders
        CHECK(batched[i]->length() == alone[i]->length());
      }
    }
  }
}

TEST_CASE("forward_batch refuses bad batches", "[runtime][batching]") {
  auto loaded = load_micro(std::nullopt);
  const auto& model = *loaded.model;
  auto a = model.new_sequence(4), full = model.new_sequence(1);
  std::vector<float> x(model.vocab_size()), y(model.vocab_size());
  const int32_t one = 1;
  REQUIRE(model.forward(*full, std::span(&one, 1), x));
  std::vector<float*> outputs{x.data(), y.data()};
  std::vector<int32_t> tokens{1, 2};
  CHECK_FALSE(model.forward_batch(std::vector<models::Sequence*>{a.get(), a.get()}, tokens, outputs));
  CHECK_FALSE(model.forward_batch(std::vector<models::Sequence*>{a.get(), full.get()}, tokens, outputs));
  CHECK_FALSE(model.forward_batch(std::vector<models::Sequence*>{a.get()}, tokens, outputs));
  tokens[1] = -3;
  auto b = model.new_sequence(4);
  CHECK_FALSE(model.forward_batch(std::vector<models::Sequence*>{a.get(), b.get()}, tokens, outputs));
  CHECK(a->length() == 0);  // nothing was run
}

TEST_CASE("concurrent generations share steps and get their own tokens", "[runtime][batching]") {
  auto loaded = load_micro(DType::q8_0);
  std::shared_ptr<const models::LanguageModel> model(std::move(loaded.model));
  runtime::GenerationOptions options;
  options.max_tokens = 24;
  options.sampling = runtime::SamplingOptions::greedy();
  constexpr size_t kThreads = 4;
  std::vector<std::vector<int32_t>> expected(kThreads), got(kThreads);
  for (size_t i = 0; i < kThreads; ++i) {
    auto sequence = model->new_sequence(64);
    auto result = runtime::generate(*model, *sequence, prompt_of(i), options);
    REQUIRE(result);
    expected[i] = result->tokens;
  }
  runtime::BatchingModel batching(model);
  std::vector<std::thread> threads;
  std::vector<bool> ok(kThreads, false);
  for (size_t i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto sequence = batching.new_sequence(64);
      auto result = runtime::generate(batching, *sequence, prompt_of(i), options);
      ok[i] = static_cast<bool>(result);
      if (result) got[i] = result->tokens;
    });
  }
  for (auto& thread : threads) thread.join();
  for (size_t i = 0; i < kThreads; ++i) {
    CHECK(ok[i]);
    CHECK(got[i] == expected[i]);
  }
  const auto [steps, rows] = batching.steps_and_rows();
  CHECK(rows == kThreads * (options.max_tokens - 1));  // every decode step went through a batch
  INFO("mean batch " << static_cast<double>(rows) / static_cast<double>(steps));
  CHECK(steps < rows);  // and some steps held several sequences
}
