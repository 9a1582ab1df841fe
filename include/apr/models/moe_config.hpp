/// @file moe_config.hpp
/// @brief MoeConfig: the routing settings of a model-level mixture of experts (an ensemble of
/// whole expert models behind a gating model), as stored in an APR file's metadata.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <utility>

#include <nlohmann/json.hpp>

#include "apr/core/result.hpp"

namespace apr::models {

/// How a mixture of experts routes: softmax(gate(x) / temperature) over the experts, the top_k
/// best with their probabilities renormalised to sum 1.
struct MoeConfig {
  size_t num_experts = 0;            ///< expert models in the ensemble
  size_t top_k = 1;                  ///< experts each input is routed to
  double capacity_factor = 1.0;      ///< an expert's capacity is ⌈factor × routings / num_experts⌉ per batch (overflow is reported, never dropped)
  double expert_dropout = 0.0;       ///< probability that an expert is unavailable to an input, applied only when a prediction asks for it with a seed
  double load_balance_weight = 0.0;  ///< coefficient of the load-balancing loss (reported weighted alongside the raw loss)
  double temperature = 1.0;          ///< gate logits are divided by it before the softmax

  /// Checks every field's range.
  [[nodiscard]] Result<void> validate() const {
    if (num_experts == 0 || num_experts > 65536) return make_error(ErrorCode::format, "moe config: num_experts = {} (expected 1..65536)", num_experts);
    if (top_k == 0 || top_k > num_experts) return make_error(ErrorCode::format, "moe config: top_k = {} (expected 1..num_experts = {})", top_k, num_experts);
    if (!(capacity_factor > 0.0) || !std::isfinite(capacity_factor)) return make_error(ErrorCode::format, "moe config: capacity_factor = {} (expected > 0)", capacity_factor);
    if (!(expert_dropout >= 0.0 && expert_dropout < 1.0)) return make_error(ErrorCode::format, "moe config: expert_dropout = {} (expected 0 <= p < 1)", expert_dropout);
    if (!(load_balance_weight >= 0.0) || !std::isfinite(load_balance_weight)) {
      return make_error(ErrorCode::format, "moe config: load_balance_weight = {} (expected >= 0)", load_balance_weight);
    }
    if (!(temperature > 0.0) || !std::isfinite(temperature)) return make_error(ErrorCode::format, "moe config: temperature = {} (expected > 0)", temperature);
    return ok();
  }

  /// The APR metadata fields of this config: num_experts / num_experts_per_tok (aprender's keys) and a "moe" object.
  [[nodiscard]] nlohmann::json to_metadata() const {
    return {{"num_experts", num_experts},
            {"num_experts_per_tok", top_k},
            {"moe", {{"capacity_factor", capacity_factor}, {"expert_dropout", expert_dropout},
                     {"load_balance_weight", load_balance_weight}, {"temperature", temperature}}}};
  }

  /// Reads the fields to_metadata() writes (the "moe" object's keys default when absent) and validates them.
  static Result<MoeConfig> from_metadata(const nlohmann::json& metadata) {
    auto count = [&](const char* key) -> Result<size_t> {
      if (!metadata.contains(key) || !metadata[key].is_number_unsigned()) {
        return make_error(ErrorCode::format, "moe metadata: '{}' is {} (expected a non-negative integer)", key, metadata.value(key, nlohmann::json()).dump());
      }
      return metadata[key].get<size_t>();
    };
    MoeConfig config;
    auto experts = count("num_experts");
    if (!experts) return std::move(experts).error();
    auto top_k = count("num_experts_per_tok");
    if (!top_k) return std::move(top_k).error();
    config.num_experts = *experts;
    config.top_k = *top_k;
    if (metadata.contains("moe")) {
      const auto& moe = metadata["moe"];
      if (!moe.is_object()) return make_error(ErrorCode::format, "moe metadata: 'moe' is {} (expected an object)", moe.dump());
      for (auto [key, field] : {std::pair{"capacity_factor", &config.capacity_factor}, std::pair{"expert_dropout", &config.expert_dropout},
                                std::pair{"load_balance_weight", &config.load_balance_weight}, std::pair{"temperature", &config.temperature}}) {
        if (!moe.contains(key)) continue;
        if (!moe[key].is_number()) return make_error(ErrorCode::format, "moe metadata: moe.{} is {} (expected a number)", key, moe[key].dump());
        *field = moe[key].get<double>();
      }
    }
    auto valid = config.validate();
    if (!valid) return std::move(valid).error();
    return config;
  }
};

}  // namespace apr::models
