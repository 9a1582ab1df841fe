/// @file memory_tensor_file.hpp
/// @brief MemoryTensorFile: a TensorFile whose tensors live in memory (synthesised models, tests,
/// and conversions before writing).
#pragma once

#include <deque>
#include <string>
#include <vector>

#include "apr/core/aligned_buffer.hpp"
#include "apr/core/result.hpp"
#include "apr/format/tensor_file.hpp"

namespace apr::format {

/// Named tensors held in 64-byte aligned buffers, plus JSON metadata.
class MemoryTensorFile final : public TensorFile {
 public:
  /// An empty file reporting `path` and `format` (e.g. "memory").
  explicit MemoryTensorFile(std::string path = "<memory>", std::string format = "memory")
      : path_(std::move(path)), format_(std::move(format)) {}

  /// Adds a tensor by copying `bytes`; they must hold exactly dtype_bytes(dtype, numel) bytes.
  Result<void> add(std::string name, DType dtype, const Shape& shape, std::span<const std::byte> bytes) {
    uint64_t numel = 0;
    if (!shape.checked_numel(numel)) return make_error(ErrorCode::invalid_argument, "tensor '{}': shape {} overflows", name, to_string(shape));
    const auto expected = dtype_bytes(dtype, numel);
    if (!expected || *expected != bytes.size()) {
      return make_error(ErrorCode::invalid_argument, "tensor '{}': {} bytes given, {} {} values need {}", name, bytes.size(),
                        numel, to_string(dtype), expected ? fmt::format("{}", *expected) : std::string("a whole number of blocks"));
    }
    if (find(name) != nullptr) return make_error(ErrorCode::invalid_argument, "tensor '{}' added twice", name);
    names_.push_back(std::move(name));
    AlignedBuffer& buffer = buffers_.emplace_back(bytes.size());
    std::copy(bytes.begin(), bytes.end(), buffer.data());
    views_.push_back(TensorView{names_.back(), dtype, shape, buffer.bytes()});
    return ok();
  }

  /// Adds an f32 tensor from values (numel(shape) of them).
  Result<void> add_f32(std::string name, const Shape& shape, std::span<const float> values) {
    return add(std::move(name), DType::f32, shape, std::as_bytes(values));
  }

  /// Mutable metadata.
  nlohmann::json& mutable_metadata() noexcept { return metadata_; }

  [[nodiscard]] std::string_view format() const override { return format_; }
  [[nodiscard]] const std::string& path() const override { return path_; }
  [[nodiscard]] std::span<const TensorView> tensors() const override { return views_; }
  [[nodiscard]] const nlohmann::json& metadata() const override { return metadata_; }

 private:
  std::string path_;
  std::string format_;
  std::deque<std::string> names_;
  std::deque<AlignedBuffer> buffers_;
  std::vector<TensorView> views_;
  nlohmann::json metadata_ = nlohmann::json::object();
};

}  // namespace apr::format
