// Model-level mixture of experts: an ensemble written with write_mixture_of_experts and read back
// predicts what the definition says (softmax of gate logits / temperature, top-k renormalised,
// weighted sum of the chosen experts' outputs; reference computed here in double from the same
// f32 values, tolerance 1e-4), batches equal single predictions, Q8_0 stays close, statistics add
// up, dropout is seeded, and an expert's pages are read only when an input is routed to it
// (page-cache residency of the mapped file checked with mincore).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>
#include <thread>

#include "apr/models/mixture_of_experts.hpp"
#include "apr/models/moe_writer.hpp"
#include "test_support.hpp"

using namespace apr;

namespace {

models::DenseLayerValues random_layer(size_t in, size_t out, std::mt19937& rng) {
  std::normal_distribution<float> normal(0.0f, 1.0f / std::sqrt(static_cast<float>(in)));
  models::DenseLayerValues layer{in, out, std::vector<float>(in * out), std::vector<float>(out)};
  for (float& w : layer.weight) w = normal(rng);
  for (float& b : layer.bias) b = normal(rng);
  return layer;
}

struct Ensemble {
  models::MoeConfig config;
  models::DenseNetworkValues gate;
  std::vector<models::DenseNetworkValues> experts;
};

/// A gate (one linear layer) and experts in → hidden → relu → out.
Ensemble random_ensemble(const models::MoeConfig& config, size_t in, size_t hidden, size_t out, uint32_t seed) {
  std::mt19937 rng(seed);
  Ensemble ensemble{config, {random_layer(in, config.num_experts, rng)}, {}};
  for (size_t e = 0; e < config.num_experts; ++e) ensemble.experts.push_back({random_layer(in, hidden, rng), random_layer(hidden, out, rng)});
  return ensemble;
}

std::vector<double> run_network(const models::DenseNetworkValues& network, std::vector<double> x) {
  for (size_t l = 0; l < network.size(); ++l) {
    const auto& layer = network[l];
    std::vector<double> y(layer.out_features);
    for (size_t o = 0; o < layer.out_features; ++o) {
      double sum = layer.bias.empty() ? 0.0 : layer.bias[o];
      for (size_t i = 0; i < layer.in_features; ++i) sum += static_cast<double>(layer.weight[o * layer.in_features + i]) * x[i];
      y[o] = l + 1 < network.size() ? std::max(sum, 0.0) : sum;
    }
    x = std::move(y);
  }
  return x;
}

/// The definition, in double: experts (best first), weights, output.
struct Reference {
  std::vector<int32_t> experts;
  std::vector<double> weights, output;
};

Reference reference(const Ensemble& ensemble, std::span<const float> input) {
  const std::vector<double> x(input.begin(), input.end());
  auto logits = run_network(ensemble.gate, x);
  const double max = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double sum = 0.0;
  for (size_t e = 0; e < p.size(); ++e) sum += p[e] = std::exp((logits[e] - max) / ensemble.config.temperature);
  for (double& v : p) v /= sum;
  std::vector<int32_t> order(p.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[a] > p[b]; });
  Reference r;
  double chosen = 0.0;
  for (size_t k = 0; k < ensemble.config.top_k; ++k) chosen += p[order[k]];
  for (size_t k = 0; k < ensemble.config.top_k; ++k) {
    r.experts.push_back(order[k]);
    r.weights.push_back(p[order[k]] / chosen);
    const auto y = run_network(ensemble.experts[order[k]], x);
    if (r.output.empty()) r.output.assign(y.size(), 0.0);
    for (size_t i = 0; i < y.size(); ++i) r.output[i] += r.weights.back() * y[i];
  }
  return r;
}

std::vector<float> random_inputs(size_t rows, size_t width, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal;
  std::vector<float> values(rows * width);
  for (float& v : values) v = normal(rng);
  return values;
}

std::unique_ptr<models::MixtureOfExperts> open(const std::string& path) {
  auto model = models::MixtureOfExperts::open(path);
  if (!model) FAIL(model.error().message);
  return std::move(model).value();
}

}  // namespace

TEST_CASE("a mixture of experts predicts softmax-gated top-k sums of its experts", "[moe]") {
  const double temperature = GENERATE(1.0, 0.5, 3.0);
  INFO("temperature " << temperature);
  const models::MoeConfig config{.num_experts = 4, .top_k = 2, .capacity_factor = 1.25, .load_balance_weight = 0.01, .temperature = temperature};
  const auto ensemble = random_ensemble(config, 64, 32, 8, 11);
  const std::string path = test::temp_path("moe-f32.apr");
  REQUIRE(models::write_mixture_of_experts(path, config, ensemble.gate, ensemble.experts, DType::f32, {{"name", "test ensemble"}}));
  auto model = open(path);
  CHECK(model->input_size() == 64);
  CHECK(model->output_size() == 8);
  CHECK(model->config().top_k == 2);
  CHECK(model->config().temperature == temperature);
  CHECK(model->file().metadata()["name"] == "test ensemble");

  constexpr size_t rows = 48;
  const auto inputs = random_inputs(rows, 64, 5);
  auto batch = model->predict_batch(inputs, rows);
  REQUIRE(batch);
  std::vector<uint64_t> counts(4, 0);
  for (size_t r = 0; r < rows; ++r) {
    INFO("row " << r);
    const auto input = std::span(inputs).subspan(r * 64, 64);
    const auto expected = reference(ensemble, input);
    auto single = model->predict(input);
    REQUIRE(single);
    CHECK(single->experts == expected.experts);
    CHECK(std::vector<int32_t>(batch->experts.begin() + r * 2, batch->experts.begin() + r * 2 + 2) == expected.experts);
    for (size_t k = 0; k < 2; ++k) CHECK(single->weights[k] == Approx(expected.weights[k]).margin(1e-5));
    for (size_t i = 0; i < 8; ++i) {
      CHECK(single->output[i] == Approx(expected.output[i]).margin(1e-4));
      CHECK(batch->outputs[r * 8 + i] == Approx(expected.output[i]).margin(1e-4));
    }
    for (int32_t e : expected.experts) ++counts[static_cast<size_t>(e)];
  }
  // statistics: the batch and the 48 single predictions routed the same way
  const auto stats = model->statistics();
  CHECK(stats.tokens == 2 * rows);
  for (size_t e = 0; e < 4; ++e) CHECK(stats.assignments[e] == 2 * counts[e]);
  const auto json = model->statistics_json();
  CHECK(json["tokens_per_expert"].get<std::vector<uint64_t>>() == stats.assignments);
  CHECK(json["weighted_load_balance_loss"].get<double>() == Approx(0.01 * stats.load_balance_loss()));
  CHECK(stats.load_balance_loss() >= 1.0);  // Σ share × mean probability × experts ≥ 1 (= 1 when balanced, top-2)
  CHECK(stats.mean_entropy() > 0.0);
  CHECK(stats.mean_entropy() <= std::log(4.0) + 1e-9);
  const uint64_t capacity = static_cast<uint64_t>(std::ceil(1.25 * rows * 2 / 4));
  uint64_t overflow = 0;
  for (uint64_t c : counts) overflow += c > capacity ? c - capacity : 0;
  CHECK(batch->capacity_overflow == overflow);
}

TEST_CASE("a Q8_0 mixture of experts stays close to the f32 one", "[moe]") {
  // Q8_0 weights with int8 activations: outputs within 2% of the output scale, same routing on ≥ 90% of rows
  const models::MoeConfig config{.num_experts = 8, .top_k = 2};
  const auto ensemble = random_ensemble(config, 64, 64, 16, 3);
  const std::string f32_path = test::temp_path("moe-f32b.apr"), q8_path = test::temp_path("moe-q8.apr");
  REQUIRE(models::write_mixture_of_experts(f32_path, config, ensemble.gate, ensemble.experts, DType::f32));
  REQUIRE(models::write_mixture_of_experts(q8_path, config, ensemble.gate, ensemble.experts, DType::q8_0));
  auto exact = open(f32_path);
  auto quantized = open(q8_path);
  CHECK(quantized->describe()["experts"][0][0]["dtype"] == "q8_0");
  constexpr size_t rows = 64;
  const auto inputs = random_inputs(rows, 64, 9);
  auto a = exact->predict_batch(inputs, rows);
  auto b = quantized->predict_batch(inputs, rows);
  REQUIRE(a);
  REQUIRE(b);
  size_t same = 0;
  double scale = 0.0, worst = 0.0;
  for (size_t r = 0; r < rows; ++r) {
    if (std::equal(a->experts.begin() + r * 2, a->experts.begin() + r * 2 + 2, b->experts.begin() + r * 2)) {
      ++same;
      for (size_t i = 0; i < 16; ++i) worst = std::max<double>(worst, std::fabs(a->outputs[r * 16 + i] - b->outputs[r * 16 + i]));
    }
  }
  for (float v : a->outputs) scale = std::max<double>(scale, std::fabs(v));
  CHECK(same >= rows * 9 / 10);
  CHECK(worst < 0.02 * scale);
}

TEST_CASE("expert dropout is seeded and never leaves fewer than top_k experts", "[moe]") {
  const models::MoeConfig config{.num_experts = 8, .top_k = 2, .expert_dropout = 0.5};
  const auto ensemble = random_ensemble(config, 32, 32, 4, 21);
  const std::string path = test::temp_path("moe-dropout.apr");
  REQUIRE(models::write_mixture_of_experts(path, config, ensemble.gate, ensemble.experts));
  auto model = open(path);
  constexpr size_t rows = 32;
  const auto inputs = random_inputs(rows, 32, 4);
  auto plain = model->predict_batch(inputs, rows);
  auto first = model->predict_batch(inputs, rows, {.dropout_seed = 1});
  auto again = model->predict_batch(inputs, rows, {.dropout_seed = 1});
  REQUIRE(plain);
  REQUIRE(first);
  REQUIRE(again);
  CHECK(first->experts == again->experts);
  CHECK(first->outputs == again->outputs);
  CHECK(first->experts != plain->experts);
  for (size_t r = 0; r < rows; ++r) {
    CHECK(first->experts[r * 2] != first->experts[r * 2 + 1]);
    CHECK(first->weights[r * 2] + first->weights[r * 2 + 1] == Approx(1.0f));
  }
}

TEST_CASE("a mixture of experts refuses what it cannot run", "[moe]") {
  const models::MoeConfig config{.num_experts = 2, .top_k = 1};
  auto ensemble = random_ensemble(config, 32, 32, 4, 1);
  const std::string path = test::temp_path("moe-bad.apr");
  CHECK_FALSE(models::write_mixture_of_experts(path, {.num_experts = 2, .top_k = 3}, ensemble.gate, ensemble.experts));
  CHECK_FALSE(models::write_mixture_of_experts(path, config, ensemble.gate, {ensemble.experts[0]}));
  auto narrow = ensemble;
  std::mt19937 rng(2);
  narrow.experts[1] = {random_layer(32, 8, rng)};
  REQUIRE(models::write_mixture_of_experts(path, config, narrow.gate, narrow.experts));
  auto mismatched = models::MixtureOfExperts::open(path);
  REQUIRE_FALSE(mismatched);
  CHECK_THAT(mismatched.error().message, Catch::Contains("expert 1 gives 8 values, expert 0 4"));

  REQUIRE(models::write_mixture_of_experts(path, config, ensemble.gate, ensemble.experts));
  auto model = open(path);
  const std::vector<float> short_input(31, 0.0f);
  CHECK_FALSE(model->predict(short_input));
  std::vector<float> nan_input(32, 0.0f);
  nan_input[3] = std::nanf("");
  auto refused = model->predict(nan_input);
  REQUIRE_FALSE(refused);
  CHECK_THAT(refused.error().message, Catch::Contains("input value 3"));
}

TEST_CASE("experts are read from the mapped file only when an input is routed to them", "[moe][mmap]") {
  // 8 experts of 2 MiB each (f32, 256 → 1024 → 256), top-2: after evicting the file from the page
  // cache, one prediction pages in exactly its two experts; the others stay on disk.
  const models::MoeConfig config{.num_experts = 8, .top_k = 2};
  const auto ensemble = random_ensemble(config, 256, 1024, 256, 8);
  const std::string path = test::temp_path("moe-mmap.apr");
  REQUIRE(models::write_mixture_of_experts(path, config, ensemble.gate, ensemble.experts));
  auto model = open(path);

  const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  // resident pages strictly inside [begin, end): boundary pages may be shared with a neighbouring tensor
  auto resident_interior_pages = [&](const std::byte* begin, const std::byte* end) {
    const auto first = (reinterpret_cast<uintptr_t>(begin) + page - 1) / page * page;
    const auto last = reinterpret_cast<uintptr_t>(end) / page * page;
    if (last <= first) return std::pair<size_t, size_t>{0, 0};
    std::vector<unsigned char> residency((last - first) / page);
    REQUIRE(::mincore(reinterpret_cast<void*>(first), last - first, residency.data()) == 0);
    return std::pair<size_t, size_t>{static_cast<size_t>(std::count_if(residency.begin(), residency.end(), [](unsigned char v) { return v & 1; })),
                                     residency.size()};
  };
  auto expert_pages = [&](size_t e) {
    size_t resident = 0, total = 0;
    for (const TensorView& tensor : model->file().tensors()) {
      if (!tensor.name.starts_with(fmt::format("expert.{}.", e))) continue;
      const auto [r, t] = resident_interior_pages(tensor.bytes.data(), tensor.bytes.data() + tensor.bytes.size());
      resident += r;
      total += t;
    }
    return std::pair{resident, total};
  };
  // opening read the header, index and footer, and the kernel mapped cached pages around them:
  // unmap every tensor page from this process, then drop the file from the page cache
  const auto tensors = model->file().tensors();
  uintptr_t low = UINTPTR_MAX, high = 0;
  for (const TensorView& tensor : tensors) {
    low = std::min(low, reinterpret_cast<uintptr_t>(tensor.bytes.data()));
    high = std::max(high, reinterpret_cast<uintptr_t>(tensor.bytes.data() + tensor.bytes.size()));
  }
  low = low / page * page;
  high = (high + page - 1) / page * page;
  const int fd = ::open(path.c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  bool evicted = false;
  for (int attempt = 0; attempt < 50 && !evicted; ++attempt) {
    REQUIRE(::madvise(reinterpret_cast<void*>(low), high - low, MADV_DONTNEED) == 0);
    REQUIRE(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
    evicted = true;
    for (size_t e = 0; e < 8; ++e) evicted = evicted && expert_pages(e).first == 0;
    if (!evicted) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::close(fd);
  REQUIRE(evicted);  // nothing of any expert is in memory before the prediction

  const auto input = random_inputs(1, 256, 2);
  auto prediction = model->predict(input);
  REQUIRE(prediction);
  for (size_t e = 0; e < 8; ++e) {
    const auto [resident, total] = expert_pages(e);
    const bool routed = std::find(prediction->experts.begin(), prediction->experts.end(), static_cast<int32_t>(e)) != prediction->experts.end();
    INFO("expert " << e << (routed ? " (routed)" : "") << ": " << resident << " of " << total << " pages resident");
    CHECK(total >= 500);
    if (routed) CHECK(resident == total);
    else CHECK(resident == 0);
  }
}
