/// @file weight_store.hpp
/// @brief WeightStore: typed access to a model's tensors by Hugging Face name, zero copy when the
/// stored dtype is the one asked for, converted once at load otherwise.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "apr/core/aligned_buffer.hpp"
#include "apr/core/dtype.hpp"
#include "apr/core/quantize.hpp"
#include "apr/core/result.hpp"
#include "apr/core/tensor.hpp"
#include "apr/format/tensor_file.hpp"

namespace apr::models {

/// Maps a Hugging Face tensor name to the name the file uses (identity for APR and SafeTensors).
using NameTranslator = std::function<std::string(std::string_view hf_name)>;

/// A model's weights: the opened file (kept alive) plus converted copies it had to make.
class WeightStore {
 public:
  /// Serves tensors of `file`, looking names up through `translate`.
  WeightStore(std::shared_ptr<const format::TensorFile> file, NameTranslator translate)
      : file_(std::move(file)), translate_(std::move(translate)) {}

  /// The tensor with Hugging Face name `name`, checked against `shape` (outermost first).
  Result<const TensorView*> get(std::string_view name, const Shape& shape) const {
    const std::string file_name = translate_ ? translate_(name) : std::string(name);
    const TensorView* tensor = file_->find(file_name);
    if (tensor == nullptr) {
      return make_error(ErrorCode::not_found, "{}: tensor '{}' is missing", file_->path(), file_name);
    }
    if (!(tensor->shape == shape)) {
      return make_error(ErrorCode::format, "{}: tensor '{}' has shape {}, expected {}", file_->path(), file_name,
                        to_string(tensor->shape), to_string(shape));
    }
    return tensor;
  }

  /// True when the file holds a tensor with Hugging Face name `name`.
  [[nodiscard]] bool contains(std::string_view name) const {
    return file_->find(translate_ ? translate_(name) : std::string(name)) != nullptr;
  }

  /// A [rows][cols] matrix as dtype W: the file's bytes when stored as W, else a converted copy.
  template <WeightDtype W>
  Result<const typename W::Block*> matrix(std::string_view name, size_t rows, size_t cols) {
    if (cols % W::block_size != 0) {
      return make_error(ErrorCode::unsupported, "{}: tensor '{}' rows of {} values do not fill {} blocks of {}",
                        file_->path(), name, cols, to_string(W::dtype), W::block_size);
    }
    auto tensor = get(name, Shape{rows, cols});
    if (!tensor) return std::move(tensor).error();
    if ((*tensor)->dtype == W::dtype) return (*tensor)->template blocks<W>();
    AlignedBuffer& converted = owned_.emplace_back(rows * cols / W::block_size * W::block_bytes);
    auto* out = reinterpret_cast<typename W::Block*>(converted.data());
    std::vector<float> row(cols);
    for (size_t r = 0; r < rows; ++r) {
      auto status = row_to_f32(**tensor, r, row.data());
      if (!status) return std::move(status).error();
      quantize_row<W>(row.data(), out + r * cols / W::block_size, cols);
    }
    return static_cast<const typename W::Block*>(out);
  }

  /// A tensor of `shape` as f32 values: the file's bytes when stored as f32, else a converted copy.
  Result<const float*> f32(std::string_view name, const Shape& shape) {
    auto tensor = get(name, shape);
    if (!tensor) return std::move(tensor).error();
    if ((*tensor)->dtype == DType::f32) return reinterpret_cast<const float*>((*tensor)->bytes.data());
    const size_t cols = static_cast<size_t>((*tensor)->row_length());
    const size_t rows = static_cast<size_t>((*tensor)->rows());
    AlignedBuffer& converted = owned_.emplace_back(rows * cols * sizeof(float));
    auto* out = reinterpret_cast<float*>(converted.data());
    for (size_t r = 0; r < rows; ++r) {
      auto status = row_to_f32(**tensor, r, out + r * cols);
      if (!status) return std::move(status).error();
    }
    return static_cast<const float*>(out);
  }

  /// The opened file.
  [[nodiscard]] const format::TensorFile& file() const noexcept { return *file_; }

 private:
  /// Dequantizes row `r` of a 2-D view (row length = innermost dim) into `out`.
  static Result<void> row_to_f32(const TensorView& tensor, size_t r, float* out) {
    const size_t cols = static_cast<size_t>(tensor.row_length());
    return visit_dtype(tensor.dtype, [&](auto tag) -> Result<void> {
      using W = decltype(tag);
      if (cols % W::block_size != 0) {
        return make_error(ErrorCode::format, "tensor '{}': rows of {} values are not whole {} blocks", tensor.name,
                          cols, to_string(W::dtype));
      }
      dequantize_row<W>(tensor.blocks<W>() + r * cols / W::block_size, out, cols);
      return ok();
    });
  }

  std::shared_ptr<const format::TensorFile> file_;
  NameTranslator translate_;
  std::deque<AlignedBuffer> owned_;
};

}  // namespace apr::models
