/// @file tensor_file.hpp
/// @brief TensorFile: what every opened model file (APR, SafeTensors, GGUF) offers a model loader.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "apr/core/tensor.hpp"

namespace apr::format {

/// An opened file of named tensors with its metadata; tensors are views into memory the file
/// object owns (an mmap, or buffers it decompressed/decrypted), valid while it lives.
class TensorFile {
 public:
  virtual ~TensorFile() = default;
  /// Format name: "apr", "safetensors" or "gguf".
  [[nodiscard]] virtual std::string_view format() const = 0;
  /// Path the file (or manifest / index) was opened from.
  [[nodiscard]] virtual const std::string& path() const = 0;
  /// Every tensor, in the file's own order, with the file's own names.
  [[nodiscard]] virtual std::span<const TensorView> tensors() const = 0;
  /// The file's metadata as JSON (APR metadata, SafeTensors __metadata__, GGUF key/values).
  [[nodiscard]] virtual const nlohmann::json& metadata() const = 0;

  /// Byte offset of `tensor`'s data in the file, when the format stores tensors at fixed offsets.
  [[nodiscard]] virtual std::optional<uint64_t> data_offset(const TensorView& tensor) const {
    (void)tensor;
    return std::nullopt;
  }

  /// The tensor named `name`, or nullptr.
  [[nodiscard]] const TensorView* find(std::string_view name) const {
    for (const TensorView& tensor : tensors()) {
      if (tensor.name == name) return &tensor;
    }
    return nullptr;
  }
};

}  // namespace apr::format
