/// @file mixture_of_experts.hpp
/// @brief MixtureOfExperts: an ensemble of N expert models behind a gating model, stored in one
/// APR file (model_type "MixtureOfExperts"); each input goes to its top-k experts only.
///
/// Every model in the file is a DenseNetwork (dense layers, ReLU between them; one layer is a
/// linear model) stored under a prefix: the gate under "gate.", expert i under "expert.{i}.",
/// layer j as "<prefix>{j}.weight" [out, in] (F32, F16, BF16, Q8_0 or Q4_0, per tensor) and an
/// optional f32 "<prefix>{j}.bias" [out]. The gate maps an input row to num_experts logits; all
/// experts map it to rows of the same width. Metadata: num_experts, num_experts_per_tok (top-k)
/// and a "moe" object (MoeConfig). Prediction: p = softmax(gate(x) / temperature), the top-k
/// experts by p with weights p renormalised to sum 1, output = Σ weight_k · expert_k(x). A batch
/// runs each chosen expert once over the rows routed to it; weights are views of the mapped
/// file, so an expert's pages are read only when some input is routed to it.
#pragma once

#include <sys/mman.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/core/dtype.hpp"
#include "apr/core/result.hpp"
#include "apr/core/thread_pool.hpp"
#include "apr/format/apr_reader.hpp"
#include "apr/format/tensor_file.hpp"
#include "apr/models/moe_config.hpp"
#include "apr/nn/dense_network.hpp"
#include "apr/nn/expert_groups.hpp"
#include "apr/nn/moe_router.hpp"

namespace apr::models {

/// The APR metadata model_type of a mixture-of-experts ensemble.
inline constexpr std::string_view kMixtureOfExpertsType = "MixtureOfExperts";

/// One routed prediction.
struct MoePrediction {
  std::vector<float> output;     ///< [output_size]: Σ weight_k · expert_k(input)
  std::vector<int32_t> experts;  ///< [top_k] chosen experts, most probable first
  std::vector<float> weights;    ///< [top_k] their weights (sum 1)
};

/// Predictions for a batch of rows.
struct MoeBatchPrediction {
  size_t rows = 0;                ///< inputs predicted
  std::vector<float> outputs;     ///< [rows][output_size]
  std::vector<int32_t> experts;   ///< [rows][top_k] chosen experts, most probable first
  std::vector<float> weights;     ///< [rows][top_k] their weights (each row sums to 1)
  uint64_t capacity_overflow = 0; ///< routings of this batch beyond the experts' capacity
};

/// How to predict.
struct MoePredictOptions {
  std::optional<uint64_t> dropout_seed;  ///< if set: drop each expert per row with probability expert_dropout (seeded), keeping at least top_k
};

/// A mixture of expert models; immutable once loaded except for its routing statistics, so one
/// instance serves many threads.
class MixtureOfExperts {
 public:
  /// Maps the APR file at `path` (no tensor data is read) and loads it.
  static Result<std::unique_ptr<MixtureOfExperts>> open(const std::string& path, ThreadPool* pool = nullptr) {
    auto file = format::AprFile::open(path);
    if (!file) return std::move(file).error();
    // experts are read where inputs are routed: readahead would page in the unrouted ones around them
    const auto bytes = (*file)->bytes();
    ::madvise(const_cast<std::byte*>(bytes.data()), bytes.size(), MADV_RANDOM);
    return load(std::shared_ptr<const format::TensorFile>(std::move(file).value()), pool);
  }

  /// Loads the ensemble in `file` (kept alive; weights stay views into it).
  static Result<std::unique_ptr<MixtureOfExperts>> load(std::shared_ptr<const format::TensorFile> file, ThreadPool* pool = nullptr) {
    const nlohmann::json& metadata = file->metadata();
    const std::string type = metadata.contains("model_type") && metadata["model_type"].is_string() ? metadata["model_type"].get<std::string>() : "";
    if (type != kMixtureOfExpertsType) {
      return make_error(ErrorCode::unsupported, "{}: model_type '{}' is not a mixture of experts (expected {})", file->path(), type, kMixtureOfExpertsType);
    }
    auto config = MoeConfig::from_metadata(metadata);
    if (!config) return std::move(config).error().with_context(file->path());
    std::unique_ptr<MixtureOfExperts> model(new MixtureOfExperts(std::move(file), *config, pool));
    auto gate = model->network("gate.");
    if (!gate) return std::move(gate).error();
    model->gate_ = std::move(gate).value();
    if (model->gate_.out_features() != config->num_experts) {
      return make_error(ErrorCode::format, "{}: the gate gives {} logits for {} experts", model->file_->path(), model->gate_.out_features(), config->num_experts);
    }
    for (size_t e = 0; e < config->num_experts; ++e) {
      auto expert = model->network(fmt::format("expert.{}.", e));
      if (!expert) return std::move(expert).error();
      if (expert->in_features() != model->gate_.in_features()) {
        return make_error(ErrorCode::format, "{}: expert {} reads {} values, the gate {}", model->file_->path(), e, expert->in_features(),
                          model->gate_.in_features());
      }
      if (e > 0 && expert->out_features() != model->experts_.front().out_features()) {
        return make_error(ErrorCode::format, "{}: expert {} gives {} values, expert 0 {}", model->file_->path(), e, expert->out_features(),
                          model->experts_.front().out_features());
      }
      model->experts_[e] = std::move(expert).value();
    }
    return model;
  }

  /// The routing settings.
  [[nodiscard]] const MoeConfig& config() const noexcept { return config_; }
  /// Values per input row.
  [[nodiscard]] size_t input_size() const noexcept { return gate_.in_features(); }
  /// Values per output row.
  [[nodiscard]] size_t output_size() const noexcept { return experts_.front().out_features(); }
  /// The opened file.
  [[nodiscard]] const format::TensorFile& file() const noexcept { return *file_; }

  /// Routes one input (input_size values) and returns the weighted output of its experts.
  Result<MoePrediction> predict(std::span<const float> input, const MoePredictOptions& options = {}) const {
    auto batch = predict_batch(input, 1, options);
    if (!batch) return std::move(batch).error();
    return MoePrediction{std::move(batch->outputs), std::move(batch->experts), std::move(batch->weights)};
  }

  /// Routes `rows` inputs ([rows][input_size]); each chosen expert runs once over its rows.
  Result<MoeBatchPrediction> predict_batch(std::span<const float> inputs, size_t rows, const MoePredictOptions& options = {}) const {
    const size_t experts = config_.num_experts, top_k = config_.top_k, in = input_size(), out = output_size();
    if (rows == 0 || inputs.size() != rows * in) {
      return make_error(ErrorCode::invalid_argument, "mixture of experts: {} values for {} rows of {} (expected rows × {})", inputs.size(), rows, in, in);
    }
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (!std::isfinite(inputs[i])) return make_error(ErrorCode::invalid_argument, "mixture of experts: input value {} (row {}) is {}", i, i / in, inputs[i]);
    }
    ThreadPool& threads = pool();
    nn::DenseScratch scratch;
    std::vector<float> logits(rows * experts), probabilities(rows * experts);
    gate_.forward_batch(inputs.data(), rows, logits.data(), scratch, threads);
    for (float& logit : logits) logit = static_cast<float>(logit / config_.temperature);
    if (options.dropout_seed && config_.expert_dropout > 0.0) drop_experts(logits, rows, *options.dropout_seed);

    MoeBatchPrediction result{rows, std::vector<float>(rows * out, 0.0f), std::vector<int32_t>(rows * top_k), std::vector<float>(rows * top_k), 0};
    nn::route_tokens(logits.data(), rows, experts, top_k, true, probabilities.data(), result.experts.data(), result.weights.data());
    nn::RouterStatistics batch(experts, top_k);
    batch.add(probabilities.data(), result.experts.data(), rows);
    result.capacity_overflow = batch.capacity_overflow(config_.capacity_factor);
    {
      std::lock_guard lock(statistics_mutex_);
      statistics_.add(probabilities.data(), result.experts.data(), rows);
      overflow_ += result.capacity_overflow;
    }

    nn::ExpertGroups groups;
    groups.build(result.experts.data(), result.weights.data(), rows, top_k, experts);
    std::vector<float> gathered(groups.largest() * in), expert_out(groups.largest() * out);
    for (size_t e = 0; e < experts; ++e) {
      const size_t count = groups.rows(e).size();
      if (count == 0) continue;
      groups.gather(e, inputs.data(), in, gathered.data());
      experts_[e].forward_batch(gathered.data(), count, expert_out.data(), scratch, threads);
      groups.scatter_add(e, expert_out.data(), out, result.outputs.data());
    }
    return result;
  }

  /// Routing since load: per-expert counts, probability sums and entropy.
  [[nodiscard]] nn::RouterStatistics statistics() const {
    std::lock_guard lock(statistics_mutex_);
    return statistics_;
  }

  /// The statistics as JSON: routings per expert, the load-balancing loss (raw and × load_balance_weight),
  /// mean routing entropy, and routings beyond capacity summed over the batches.
  [[nodiscard]] nlohmann::json statistics_json() const {
    std::lock_guard lock(statistics_mutex_);
    const double loss = statistics_.load_balance_loss();
    return {{"num_experts", config_.num_experts}, {"top_k", config_.top_k}, {"inputs", statistics_.tokens},
            {"tokens_per_expert", statistics_.assignments}, {"load_balance_loss", loss},
            {"weighted_load_balance_loss", loss * config_.load_balance_weight}, {"routing_entropy", statistics_.mean_entropy()},
            {"capacity_factor", config_.capacity_factor}, {"capacity_overflow", overflow_}};
  }

  /// Shapes and settings, for inspection.
  [[nodiscard]] nlohmann::json describe() const {
    auto shape = [](const nn::DenseNetwork& network) {
      nlohmann::json layers = nlohmann::json::array();
      for (const auto& layer : network.layers) {
        layers.push_back({{"in", layer.linear.in_features}, {"out", layer.linear.out_features}, {"dtype", to_string(layer.linear.dtype)}});
      }
      return layers;
    };
    nlohmann::json experts = nlohmann::json::array();
    for (const auto& expert : experts_) experts.push_back(shape(expert));
    return {{"model_type", kMixtureOfExpertsType}, {"num_experts", config_.num_experts}, {"top_k", config_.top_k},
            {"capacity_factor", config_.capacity_factor}, {"expert_dropout", config_.expert_dropout},
            {"load_balance_weight", config_.load_balance_weight}, {"temperature", config_.temperature},
            {"input_size", input_size()}, {"output_size", output_size()}, {"gate", shape(gate_)}, {"experts", experts}};
  }

 private:
  MixtureOfExperts(std::shared_ptr<const format::TensorFile> file, const MoeConfig& config, ThreadPool* pool)
      : file_(std::move(file)), config_(config), pool_(pool), experts_(config.num_experts), statistics_(config.num_experts, config.top_k) {}

  ThreadPool& pool() const { return pool_ != nullptr ? *pool_ : ThreadPool::global(); }

  /// The network stored under `prefix` (layers "<prefix>0.", "<prefix>1.", … until one is missing).
  Result<nn::DenseNetwork> network(const std::string& prefix) const {
    nn::DenseNetwork network;
    for (size_t j = 0;; ++j) {
      const TensorView* weight = file_->find(fmt::format("{}{}.weight", prefix, j));
      if (weight == nullptr) break;
      if (weight->shape.ndim() != 2 || !is_weight_dtype(weight->dtype) || weight->row_length() % dtype_info(weight->dtype).block_size != 0) {
        return make_error(ErrorCode::format, "{}: tensor '{}' is {} {} (expected a matrix in F32, F16, BF16, Q8_0 or Q4_0 with whole blocks per row)",
                          file_->path(), weight->name, to_string(weight->dtype), to_string(weight->shape));
      }
      const size_t out = static_cast<size_t>(weight->shape[0]), in = static_cast<size_t>(weight->shape[1]);
      if (!network.layers.empty() && network.out_features() != in) {
        return make_error(ErrorCode::format, "{}: tensor '{}' reads {} values but the layer before gives {}", file_->path(), weight->name, in, network.out_features());
      }
      nn::DenseLayer layer{{weight->dtype, weight->bytes.data(), in, out}, nullptr};
      if (const TensorView* bias = file_->find(fmt::format("{}{}.bias", prefix, j)); bias != nullptr) {
        if (bias->dtype != DType::f32 || !(bias->shape == Shape{out})) {
          return make_error(ErrorCode::format, "{}: tensor '{}' is {} {} (expected F32 [{}])", file_->path(), bias->name, to_string(bias->dtype),
                            to_string(bias->shape), out);
        }
        layer.bias = reinterpret_cast<const float*>(bias->bytes.data());
      }
      network.layers.push_back(layer);
    }
    if (network.layers.empty()) return make_error(ErrorCode::format, "{}: no '{}0.weight': the model under '{}' is missing", file_->path(), prefix, prefix);
    return network;
  }

  /// Sets the logits of dropped experts to −∞: each expert independently with probability
  /// expert_dropout per row, unless fewer than top_k would remain.
  void drop_experts(std::vector<float>& logits, size_t rows, uint64_t seed) const {
    const size_t experts = config_.num_experts;
    std::mt19937_64 rng(seed);
    std::bernoulli_distribution drop(config_.expert_dropout);
    std::vector<bool> dropped(experts);
    for (size_t r = 0; r < rows; ++r) {
      size_t kept = experts;
      for (size_t e = 0; e < experts; ++e) kept -= (dropped[e] = drop(rng)) ? 1 : 0;
      if (kept < config_.top_k) continue;
      for (size_t e = 0; e < experts; ++e) {
        if (dropped[e]) logits[r * experts + e] = -std::numeric_limits<float>::infinity();
      }
    }
  }

  std::shared_ptr<const format::TensorFile> file_;
  MoeConfig config_;
  ThreadPool* pool_;
  nn::DenseNetwork gate_;
  std::vector<nn::DenseNetwork> experts_;
  mutable std::mutex statistics_mutex_;            ///< guards statistics_ and overflow_ (predictions run from many threads)
  mutable nn::RouterStatistics statistics_;        ///< routing since load
  mutable uint64_t overflow_ = 0;                  ///< capacity overflow summed over batches
};

}  // namespace apr::models
