// Shared by the file commands (inspect, tensors, validate, diff, tree, lint, tui): opening a
// model file or folder, and the summary statistics of a tensor's values.
#pragma once

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <memory>
#include <span>
#include <string>

#include "apr/format/detect.hpp"
#include "apr/format/tensor_values.hpp"
#include "apr/models/qwen2_names.hpp"

namespace apr::cli {

/// Opens a model file; a folder means its model.safetensors (or index, or model.apr).
inline Result<std::unique_ptr<format::TensorFile>> open_any(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    for (const char* name : {"model.safetensors", "model.safetensors.index.json", "model.apr", "model.apr.index.json"}) {
      const auto candidate = std::filesystem::path(path) / name;
      if (std::filesystem::exists(candidate, ec)) return format::open_tensor_file(candidate.string());
    }
    return make_error(ErrorCode::not_found, "{}: no model.safetensors, model.apr or index of either in this folder", path);
  }
  return format::open_tensor_file(path);
}

/// The tensors of `file` by name, a GGUF file's llama.cpp names read as Hugging Face's (so
/// files of different formats can be compared tensor by tensor).
inline std::map<std::string, const TensorView*> tensors_by_hf_name(const format::TensorFile& file) {
  std::map<std::string, const TensorView*> out;
  for (const TensorView& tensor : file.tensors()) {
    std::string name(tensor.name);
    if (file.format() == "gguf") name = models::qwen2_hf_name(name).value_or(name);
    out[name] = &tensor;
  }
  return out;
}

/// Summary of a tensor's values: mean, std, min, max over the finite ones; NaN, Inf and zero counts.
struct Stats {
  double mean = 0, std = 0, min = 0, max = 0;  ///< over finite values
  size_t nan = 0, inf = 0, zeros = 0;          ///< counts
};

/// The Stats of `values`.
inline Stats value_stats(std::span<const float> values) {
  Stats s;
  s.min = std::numeric_limits<double>::infinity();
  s.max = -s.min;
  double sum = 0, squares = 0;
  size_t finite = 0;
  for (float v : values) {
    if (std::isnan(v)) ++s.nan;
    else if (std::isinf(v)) ++s.inf;
    else {
      sum += v;
      squares += static_cast<double>(v) * v;
      s.min = std::min<double>(s.min, v);
      s.max = std::max<double>(s.max, v);
      ++finite;
    }
    if (v == 0.0f) ++s.zeros;
  }
  if (finite > 0) {
    s.mean = sum / static_cast<double>(finite);
    s.std = std::sqrt(std::max(0.0, squares / static_cast<double>(finite) - s.mean * s.mean));
  } else {
    s.min = s.max = 0;
  }
  return s;
}

/// The Stats of `tensor`'s values (any dtype tensor_to_f32 decodes).
inline Result<Stats> tensor_stats(const TensorView& tensor) {
  auto values = format::tensor_to_f32(tensor);
  if (!values) return std::move(values).error();
  return value_stats(*values);
}

}  // namespace apr::cli
