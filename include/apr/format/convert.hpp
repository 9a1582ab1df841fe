/// @file convert.hpp
/// @brief Converting tensors between dtypes (row by row, no whole-model copies) and choosing
/// which tensors a quantization level applies to.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "apr/core/dtype.hpp"
#include "apr/core/quantize.hpp"
#include "apr/core/result.hpp"
#include "apr/core/tensor.hpp"
#include "apr/format/memory_tensor_file.hpp"
#include "apr/format/tensor_values.hpp"

namespace apr::format {

/// True when a quantization to `target` applies to `tensor`: matrices (2-D and up) whose rows
/// fill whole blocks; vectors (norms, biases) stay as they are.
inline bool should_convert(const TensorView& tensor, DType target) {
  if (tensor.shape.ndim() < 2 || tensor.dtype == target) return false;
  return tensor.row_length() % dtype_info(target).block_size == 0;
}

/// `tensor`'s values re-encoded as weight dtype `target`, row by row.
inline Result<std::vector<std::byte>> convert_tensor(const TensorView& tensor, DType target) {
  if (!is_weight_dtype(target)) return make_error(ErrorCode::unsupported, "cannot convert to {}: not a weight dtype", to_string(target));
  const size_t cols = static_cast<size_t>(tensor.row_length());
  const size_t rows = static_cast<size_t>(tensor.rows());
  const auto row_bytes = dtype_bytes(target, cols);
  if (!row_bytes) return make_error(ErrorCode::invalid_argument, "tensor '{}': rows of {} values do not fill {} blocks", tensor.name, cols, to_string(target));
  std::vector<std::byte> out(rows * *row_bytes);
  std::vector<float> row(cols);
  const bool by_rows = is_weight_dtype(tensor.dtype) && cols % dtype_info(tensor.dtype).block_size == 0;
  std::vector<float> all;
  if (!by_rows) {
    auto values = tensor_to_f32(tensor);
    if (!values) return std::move(values).error();
    all = std::move(values).value();
  }
  const size_t source_row_bytes = by_rows ? *dtype_bytes(tensor.dtype, cols) : 0;
  for (size_t r = 0; r < rows; ++r) {
    if (by_rows) {
      (void)visit_dtype(tensor.dtype, [&](auto tag) -> Result<void> {
        using W = decltype(tag);
        dequantize_row<W>(reinterpret_cast<const typename W::Block*>(tensor.bytes.data() + r * source_row_bytes), row.data(), cols);
        return ok();
      });
    } else {
      std::copy(all.begin() + static_cast<std::ptrdiff_t>(r * cols), all.begin() + static_cast<std::ptrdiff_t>((r + 1) * cols), row.begin());
    }
    (void)visit_dtype(target, [&](auto tag) -> Result<void> {
      using W = decltype(tag);
      quantize_row<W>(row.data(), reinterpret_cast<typename W::Block*>(out.data() + r * *row_bytes), cols);
      return ok();
    });
  }
  return out;
}

/// A copy of `file` in memory with every matrix converted to `target` (see should_convert);
/// metadata copied.
inline Result<std::shared_ptr<MemoryTensorFile>> convert_file(const TensorFile& file, DType target) {
  auto out = std::make_shared<MemoryTensorFile>(file.path() + " (" + std::string(to_string(target)) + ")", std::string(file.format()));
  out->mutable_metadata() = file.metadata();
  for (const TensorView& tensor : file.tensors()) {
    if (should_convert(tensor, target)) {
      auto bytes = convert_tensor(tensor, target);
      if (!bytes) return std::move(bytes).error();
      auto status = out->add(std::string(tensor.name), target, tensor.shape, *bytes);
      if (!status) return std::move(status).error();
    } else {
      auto status = out->add(std::string(tensor.name), tensor.dtype, tensor.shape, tensor.bytes);
      if (!status) return std::move(status).error();
    }
  }
  return out;
}

}  // namespace apr::format
