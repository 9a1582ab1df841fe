/// @file qwen2_gguf_view.hpp
/// @brief Qwen2GgufView: a llama.cpp qwen2moe GGUF file seen with Hugging Face names — each
/// stacked expert tensor [experts, rows, cols] split into one [rows, cols] view per expert and the
/// shared-expert gate [hidden] seen as [1, hidden]; zero copy (views into the source's mapping).
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "apr/core/result.hpp"
#include "apr/format/tensor_file.hpp"
#include "apr/models/qwen2_names.hpp"

namespace apr::models {

/// A GGUF file's tensors under their Hugging Face names (unknown names pass through unchanged).
class Qwen2GgufView final : public format::TensorFile {
 public:
  /// Views `gguf` (kept alive) with Hugging Face names.
  static Result<std::shared_ptr<const Qwen2GgufView>> open(std::shared_ptr<const format::TensorFile> gguf) {
    std::shared_ptr<Qwen2GgufView> view(new Qwen2GgufView(std::move(gguf)));
    auto status = view->build();
    if (!status) return std::move(status).error();
    return std::shared_ptr<const Qwen2GgufView>(std::move(view));
  }

  [[nodiscard]] std::string_view format() const override { return source_->format(); }
  [[nodiscard]] const std::string& path() const override { return source_->path(); }
  [[nodiscard]] std::span<const TensorView> tensors() const override { return views_; }
  [[nodiscard]] const nlohmann::json& metadata() const override { return source_->metadata(); }

 private:
  explicit Qwen2GgufView(std::shared_ptr<const format::TensorFile> source) : source_(std::move(source)) {}

  Result<void> build() {
    for (const TensorView& tensor : source_->tensors()) {
      const auto layer = split_layer_name(tensor.name, "blk.");
      bool stacked = false;
      for (const auto& [hf, gguf] : kQwen2ExpertNames) {
        if (!layer || layer->second != gguf) continue;
        stacked = true;
        if (tensor.shape.ndim() != 3 || tensor.shape[0] == 0) {
          return make_error(ErrorCode::format, "{}: tensor '{}' has shape {} (expected [experts, rows, cols])", path(), tensor.name, to_string(tensor.shape));
        }
        const auto experts = static_cast<size_t>(tensor.shape[0]);
        const size_t bytes = tensor.bytes.size() / experts;
        for (size_t e = 0; e < experts; ++e) {
          views_.push_back({names_.emplace_back(fmt::format("model.layers.{}.mlp.experts.{}.{}", layer->first, e, hf)), tensor.dtype,
                            Shape{tensor.shape[1], tensor.shape[2]}, tensor.bytes.subspan(e * bytes, bytes)});
        }
      }
      if (stacked) continue;
      TensorView renamed = tensor;
      if (auto hf = qwen2_hf_name(tensor.name)) renamed.name = names_.emplace_back(std::move(*hf));
      if (layer && layer->second == "ffn_gate_inp_shexp.weight" && tensor.shape.ndim() == 1) renamed.shape = Shape{1, tensor.shape[0]};
      views_.push_back(renamed);
    }
    return ok();
  }

  std::shared_ptr<const format::TensorFile> source_;
  std::deque<std::string> names_;  // storage of the new names (a deque keeps them in place)
  std::vector<TensorView> views_;
};

}  // namespace apr::models
