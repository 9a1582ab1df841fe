// Qwen2-MoE parity with Hugging Face transformers 4.47.1 (shared/fixtures/qwen2/qwen2moe-micro and
// qwen2moe-micro-normtopk, float32 from the stored weights): logits for 1, 7 and 64 tokens,
// hidden states, router logits, chosen experts and their weights, the auxiliary load-balancing
// loss and per-expert counts, greedy continuation, incremental decode. Tolerance: 1e-4 max abs on
// logits, hidden states, router logits and weights (f32 math); experts and counts exact; aux loss
// within 1e-5 relative.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>

#include <nlohmann/json.hpp>

#include "apr/eval/logit_metrics.hpp"
#include "apr/format/safetensors.hpp"
#include "apr/format/detect.hpp"
#include "apr/models/load.hpp"
#include "apr/models/qwen2_gguf.hpp"
#include "apr/nn/moe_router.hpp"
#include "apr/runtime/generator.hpp"
#include "test_support.hpp"

namespace test_qwen2_moe_parity {  // own namespace: this file compiles in one unity source with its area's others

using namespace apr;

namespace {

constexpr float kTolerance = 1e-4f;

struct Fixture {
  models::LoadedModel loaded;
  std::unique_ptr<format::SafeTensorsFile> refs;
  nlohmann::json json;
};

Fixture load(const std::string& dir, std::optional<DType> dtype = std::nullopt) {
  Fixture f;
  auto loaded = models::load_language_model(test::fixture(dir), {.weight_dtype = dtype});
  REQUIRE(loaded);
  f.loaded = std::move(loaded).value();
  auto refs = format::SafeTensorsFile::open(test::fixture(dir + "/refs.safetensors"));
  REQUIRE(refs);
  f.refs = std::move(refs).value();
  std::ifstream in(test::fixture(dir + "/refs.json"));
  f.json = nlohmann::json::parse(in);
  return f;
}

template <class T>
std::vector<T> values(const format::TensorFile& file, const std::string& name) {
  const TensorView* view = file.find(name);
  REQUIRE(view != nullptr);
  const auto* data = reinterpret_cast<const T*>(view->bytes.data());
  return {data, data + view->numel()};
}

float max_abs_diff(std::span<const float> a, std::span<const float> b) {
  REQUIRE(a.size() == b.size());
  float worst = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

}  // namespace

TEST_CASE("qwen2moe-micro matches transformers: logits, routing, aux loss, greedy", "[qwen2_moe][parity]") {
  const std::string dir = GENERATE(std::string("qwen2/qwen2moe-micro"), std::string("qwen2/qwen2moe-micro-normtopk"));
  INFO(dir);
  auto f = load(dir);
  const models::LanguageModel& model = *f.loaded.model;
  CHECK(model.architecture() == "qwen2_moe");
  const size_t vocab = model.vocab_size();
  for (const char* length : {"1", "7", "64"}) {
    INFO("length " << length);
    const auto ids = f.json["sequences"][length].get<std::vector<int32_t>>();
    std::vector<float> logits(ids.size() * vocab);
    std::vector<std::vector<float>> hidden;
    models::RouterTrace trace;
    auto sequence = model.new_sequence(ids.size());
    REQUIRE(model.forward(*sequence, ids, logits, {.all_logits = true, .hidden_states = &hidden, .router_trace = &trace}));
    CHECK(max_abs_diff(logits, values<float>(*f.refs, std::string("logits.len") + length)) < kTolerance);
    if (std::string(length) != "7") continue;
    for (size_t i = 0; i < 3; ++i) CHECK(max_abs_diff(hidden[i], values<float>(*f.refs, "hidden.len7." + std::to_string(i))) < kTolerance);
    nn::RouterStatistics stats(4, 2);
    for (size_t layer = 0; layer < 2; ++layer) {
      INFO("layer " << layer);
      const std::string suffix = ".len7.layer" + std::to_string(layer);
      CHECK(max_abs_diff(trace.logits[layer], values<float>(*f.refs, "router_logits" + suffix)) < kTolerance);
      CHECK(trace.experts[layer] == values<int32_t>(*f.refs, "topk_ids" + suffix));
      CHECK(max_abs_diff(trace.weights[layer], values<float>(*f.refs, "topk_weights" + suffix)) < kTolerance);
      nn::RouterStatistics layer_stats(4, 2);
      std::vector<float> probabilities(7 * 4);
      std::vector<int32_t> chosen(7 * 2);
      std::vector<float> weights(7 * 2);
      nn::route_tokens(trace.logits[layer].data(), 7, 4, 2, false, probabilities.data(), chosen.data(), weights.data());
      layer_stats.add(probabilities.data(), chosen.data(), 7);
      stats.add(probabilities.data(), chosen.data(), 7);
      std::vector<uint64_t> expected_counts;
      for (const auto& c : f.json["expert_token_counts_len7"][layer]) expected_counts.push_back(c.get<uint64_t>());
      CHECK(layer_stats.assignments == expected_counts);
    }
    CHECK(stats.load_balance_loss() == Approx(f.json["aux_loss_len7"].get<double>()).epsilon(1e-5));
  }
  // incremental decode equals the full pass (reference saw 2.4e-6)
  const auto ids = f.json["sequences"]["7"].get<std::vector<int32_t>>();
  std::vector<float> full(vocab), step(vocab);
  auto whole = model.new_sequence(ids.size());
  REQUIRE(model.forward(*whole, ids, full));
  auto incremental = model.new_sequence(ids.size());
  for (int32_t id : ids) REQUIRE(model.forward(*incremental, std::span(&id, 1), step));
  CHECK(max_abs_diff(full, step) < kTolerance);

  const auto prompt = f.json["greedy"]["prompt_ids"].get<std::vector<int32_t>>();
  const auto expected = f.json["greedy"]["generated_ids"].get<std::vector<int32_t>>();
  runtime::GenerationOptions options;
  options.sampling = runtime::SamplingOptions::greedy();
  options.max_tokens = expected.size();
  auto sequence = model.new_sequence(prompt.size() + expected.size());
  auto generated = runtime::generate(model, *sequence, prompt, options);
  REQUIRE(generated);
  CHECK(generated->tokens == expected);

  const auto statistics = model.expert_statistics();
  REQUIRE(statistics.is_object());
  CHECK(statistics["num_experts"] == 4);
  CHECK(statistics["layers"].size() == 2);
  CHECK(statistics["tokens_per_expert"].size() == 4);
}

TEST_CASE("qwen2moe-micro in Q8_0: close to the F32 model", "[qwen2_moe]") {
  // Q8_0 experts and attention (router kept in f32): KL of next-token distributions below 0.01
  // (random weights; measured ~1e-3) and the same greedy choice on most positions
  auto reference = load("qwen2/qwen2moe-micro");
  auto quantized = load("qwen2/qwen2moe-micro", DType::q8_0);
  CHECK(quantized.loaded.weight_dtype == DType::q8_0);
  const auto ids = reference.json["sequences"]["64"].get<std::vector<int32_t>>();
  const size_t vocab = reference.loaded.model->vocab_size();
  std::vector<float> a(ids.size() * vocab), b(ids.size() * vocab);
  auto sa = reference.loaded.model->new_sequence(ids.size());
  auto sb = quantized.loaded.model->new_sequence(ids.size());
  REQUIRE(reference.loaded.model->forward(*sa, ids, a, {.all_logits = true}));
  REQUIRE(quantized.loaded.model->forward(*sb, ids, b, {.all_logits = true}));
  double kl = 0.0;
  size_t agree = 0;
  for (size_t t = 0; t < ids.size(); ++t) {
    const auto pa = std::span<const float>(a).subspan(t * vocab, vocab);
    const auto pb = std::span<const float>(b).subspan(t * vocab, vocab);
    kl += eval::kl_divergence(pa, pb);
    agree += std::max_element(pa.begin(), pa.end()) - pa.begin() == std::max_element(pb.begin(), pb.end()) - pb.begin();
  }
  CHECK(kl / static_cast<double>(ids.size()) < 0.01);
  CHECK(agree >= ids.size() * 8 / 10);
}

TEST_CASE("routing picks the top-k, renormalises, and statistics add up", "[qwen2_moe]") {
  const std::vector<float> logits{1.0f, 3.0f, 2.0f, 3.0f};  // a tie between experts 1 and 3
  std::vector<float> p(4), w(2);
  std::vector<int32_t> ids(2);
  nn::route_tokens(logits.data(), 1, 4, 2, true, p.data(), ids.data(), w.data());
  CHECK(ids == std::vector<int32_t>{1, 3});  // lower id first on ties
  CHECK(w[0] == Approx(0.5f));
  CHECK(w[1] == Approx(0.5f));
  nn::RouterStatistics stats(4, 2);
  stats.add(p.data(), ids.data(), 1);
  CHECK(stats.assignments == std::vector<uint64_t>{0, 1, 0, 1});
  CHECK(stats.capacity_overflow(1.0) == 0);  // capacity ⌈1 × 2 / 4⌉ = 1 each
  CHECK(stats.mean_entropy() > 0.0);
  CHECK(stats.mean_entropy() < std::log(4.0));
}

TEST_CASE("qwen2moe-micro through GGUF (llama.cpp qwen2moe names, stacked experts) matches transformers", "[qwen2_moe][gguf]") {
  auto f = load("qwen2/qwen2moe-micro");
  auto source = format::open_tensor_file(test::fixture("qwen2/qwen2moe-micro/model.safetensors"));
  REQUIRE(source);
  auto config = models::Qwen2Config::from_hf_json(f.loaded.config);
  REQUIRE(config);
  const std::string f32_path = test::temp_path("qwen2moe-micro-f32.gguf"), q8_path = test::temp_path("qwen2moe-micro-q8_0.gguf");
  REQUIRE(models::write_qwen2_gguf(**source, *config, f32_path, DType::f32, "qwen2moe-micro"));
  REQUIRE(models::write_qwen2_gguf(**source, *config, q8_path, DType::q8_0, "qwen2moe-micro"));

  auto gguf = format::open_tensor_file(q8_path);
  REQUIRE(gguf);
  CHECK((*gguf)->metadata()["general.architecture"] == "qwen2moe");
  CHECK((*gguf)->metadata()["qwen2moe.expert_count"] == 4);
  CHECK((*gguf)->metadata()["qwen2moe.expert_used_count"] == 2);
  CHECK((*gguf)->metadata()["qwen2moe.expert_feed_forward_length"] == 32);
  CHECK((*gguf)->metadata()["qwen2moe.expert_shared_feed_forward_length"] == 64);
  const TensorView* gate_exps = (*gguf)->find("blk.1.ffn_gate_exps.weight");
  REQUIRE(gate_exps != nullptr);
  CHECK(gate_exps->shape == Shape{4, 32, 64});
  CHECK(gate_exps->dtype == DType::q8_0);
  REQUIRE((*gguf)->find("blk.1.ffn_down_exps.weight") != nullptr);
  CHECK((*gguf)->find("blk.1.ffn_down_exps.weight")->shape == Shape{4, 64, 32});
  CHECK((*gguf)->find("blk.0.ffn_gate_inp.weight")->dtype == DType::f32);  // routers stay f32, as llama.cpp's converter keeps them
  for (const char* name : {"blk.0.ffn_gate_shexp.weight", "blk.0.ffn_up_shexp.weight", "blk.0.ffn_down_shexp.weight", "blk.0.ffn_gate_inp_shexp.weight"}) {
    CHECK((*gguf)->find(name) != nullptr);
  }

  auto from_gguf = models::load_language_model(f32_path);
  REQUIRE(from_gguf);
  const models::LanguageModel& model = *from_gguf->model;
  CHECK(model.architecture() == "qwen2_moe");
  const size_t vocab = model.vocab_size();
  for (const char* length : {"7", "64"}) {
    INFO("length " << length);
    const auto ids = f.json["sequences"][length].get<std::vector<int32_t>>();
    std::vector<float> logits(ids.size() * vocab);
    models::RouterTrace trace;
    auto sequence = model.new_sequence(ids.size());
    REQUIRE(model.forward(*sequence, ids, logits, {.all_logits = true, .router_trace = &trace}));
    CHECK(max_abs_diff(logits, values<float>(*f.refs, std::string("logits.len") + length)) < kTolerance);
    if (std::string(length) == "7") CHECK(trace.experts[1] == values<int32_t>(*f.refs, "topk_ids.len7.layer1"));
  }

  // Q8_0 GGUF (embeddings and tied head in Q8_0 too, routers f32): close to transformers' logits,
  // KL of next-token distributions below 0.01 as for the Q8_0 model loaded from the fixture
  auto quantized = models::load_language_model(q8_path);
  REQUIRE(quantized);
  CHECK(quantized->weight_dtype == DType::q8_0);
  const auto ids = f.json["sequences"]["64"].get<std::vector<int32_t>>();
  std::vector<float> logits(ids.size() * vocab);
  auto sequence = quantized->model->new_sequence(ids.size());
  REQUIRE(quantized->model->forward(*sequence, ids, logits, {.all_logits = true}));
  const auto reference = values<float>(*f.refs, "logits.len64");
  double kl = 0.0;
  for (size_t t = 0; t < ids.size(); ++t) {
    kl += eval::kl_divergence(std::span<const float>(reference).subspan(t * vocab, vocab), std::span<const float>(logits).subspan(t * vocab, vocab));
  }
  INFO("mean KL " << kl / static_cast<double>(ids.size()));
  CHECK(kl / static_cast<double>(ids.size()) < 0.01);

  // llama.cpp's qwen2moe cannot say norm_topk_prob: such a model is refused, not silently changed
  auto normtopk = format::open_tensor_file(test::fixture("qwen2/qwen2moe-micro-normtopk/model.safetensors"));
  REQUIRE(normtopk);
  auto normtopk_config = models::Qwen2Config::from_hf_json(load("qwen2/qwen2moe-micro-normtopk").loaded.config);
  REQUIRE(normtopk_config);
  auto refused = models::write_qwen2_gguf(**normtopk, *normtopk_config, test::temp_path("normtopk.gguf"), DType::f32, "normtopk");
  REQUIRE_FALSE(refused);
  CHECK_THAT(refused.error().message, Catch::Contains("norm_topk_prob"));
}

}  // namespace test_qwen2_moe_parity
