/// @file moe_writer.hpp
/// @brief write_mixture_of_experts(): a gating model and N expert models (dense networks given
/// as f32 values) written as one APR file in the layout mixture_of_experts.hpp reads.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/core/dtype.hpp"
#include "apr/core/quantize.hpp"
#include "apr/core/result.hpp"
#include "apr/format/apr_writer.hpp"
#include "apr/models/mixture_of_experts.hpp"
#include "apr/models/moe_config.hpp"

namespace apr::models {

/// One dense layer as f32 values.
struct DenseLayerValues {
  size_t in_features = 0;     ///< length of x
  size_t out_features = 0;    ///< length of y
  std::vector<float> weight;  ///< [out_features][in_features]
  std::vector<float> bias;    ///< [out_features], or empty for none
};

/// A dense network (ReLU between layers) as f32 values, first layer first.
using DenseNetworkValues = std::vector<DenseLayerValues>;

/// Writes `gate` and `experts` (one network each; config.num_experts of them) to `path` with
/// weight matrices stored as `matrix_dtype` (F32, F16, BF16, Q8_0 or Q4_0) and biases as f32;
/// `metadata` adds free-form fields (name, description, …).
inline Result<void> write_mixture_of_experts(const std::string& path, const MoeConfig& config, const DenseNetworkValues& gate,
                                             const std::vector<DenseNetworkValues>& experts, DType matrix_dtype = DType::f32,
                                             const nlohmann::json& metadata = nlohmann::json::object()) {
  auto valid = config.validate();
  if (!valid) return valid;
  if (experts.size() != config.num_experts) {
    return make_error(ErrorCode::invalid_argument, "{}: {} expert networks for num_experts = {}", path, experts.size(), config.num_experts);
  }
  if (!is_weight_dtype(matrix_dtype)) return make_error(ErrorCode::invalid_argument, "{}: {} is not a weight dtype", path, to_string(matrix_dtype));
  std::vector<format::AprWriteTensor> tensors;
  auto add_network = [&](const std::string& prefix, const DenseNetworkValues& network) -> Result<void> {
    if (network.empty()) return make_error(ErrorCode::invalid_argument, "{}: the network under '{}' has no layers", path, prefix);
    for (size_t j = 0; j < network.size(); ++j) {
      const DenseLayerValues& layer = network[j];
      const std::string name = fmt::format("{}{}", prefix, j);
      if (layer.weight.size() != layer.in_features * layer.out_features || (!layer.bias.empty() && layer.bias.size() != layer.out_features)) {
        return make_error(ErrorCode::invalid_argument, "{}: layer '{}' holds {} weights and {} biases for {} → {}", path, name, layer.weight.size(),
                          layer.bias.size(), layer.in_features, layer.out_features);
      }
      const auto row_bytes = dtype_bytes(matrix_dtype, layer.in_features);
      if (!row_bytes) {
        return make_error(ErrorCode::invalid_argument, "{}: layer '{}' rows of {} values do not fill {} blocks", path, name, layer.in_features,
                          to_string(matrix_dtype));
      }
      tensors.push_back({name + ".weight", matrix_dtype, Shape{layer.out_features, layer.in_features}, *row_bytes * layer.out_features, std::nullopt,
                         [&layer, matrix_dtype, bytes = *row_bytes](format::ByteSink& sink) -> Result<void> {
                           std::vector<std::byte> row(bytes);
                           for (size_t r = 0; r < layer.out_features; ++r) {
                             (void)visit_dtype(matrix_dtype, [&](auto tag) -> Result<void> {
                               using W = decltype(tag);
                               quantize_row<W>(layer.weight.data() + r * layer.in_features, reinterpret_cast<typename W::Block*>(row.data()),
                                               layer.in_features);
                               return ok();
                             });
                             auto status = sink.write(row);
                             if (!status) return status;
                           }
                           return ok();
                         }});
      if (!layer.bias.empty()) {
        tensors.push_back({name + ".bias", DType::f32, Shape{layer.out_features}, layer.bias.size() * sizeof(float), std::nullopt,
                           [&layer](format::ByteSink& sink) { return sink.write(std::as_bytes(std::span(layer.bias))); }});
      }
    }
    return ok();
  };
  if (auto status = add_network("gate.", gate); !status) return status;
  for (size_t e = 0; e < experts.size(); ++e) {
    if (auto status = add_network(fmt::format("expert.{}.", e), experts[e]); !status) return status;
  }
  nlohmann::json fields = metadata;
  fields.update(config.to_metadata());
  fields["model_type"] = kMixtureOfExpertsType;
  return format::write_apr(path, format::apr_metadata_text(fields), std::move(tensors));
}

}  // namespace apr::models
