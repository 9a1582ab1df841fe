/// @file gguf_writer.hpp
/// @brief write_gguf(): a GGUF v3 file streamed tensor by tensor, written atomically (temporary
/// file renamed into place): header, metadata of every type (nested arrays included), tensor
/// infos, alignment padding, then each tensor's data padded to the alignment.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "apr/core/dtype.hpp"
#include "apr/core/result.hpp"
#include "apr/core/tensor.hpp"
#include "apr/format/apr_writer.hpp"
#include "apr/format/gguf.hpp"

namespace apr::format {

/// One tensor to write: name, dtype, shape (outermost first) and a function that streams
/// exactly its bytes into the sink.
struct GgufWriteTensor {
  std::string name;                                ///< GGUF name, e.g. "blk.0.attn_q.weight"
  DType dtype = DType::f32;                        ///< stored dtype (GGUF's types only)
  Shape shape;                                     ///< dims, outermost first (written innermost first)
  std::function<Result<void>(ByteSink&)> write;    ///< streams the data
};

namespace detail {

/// Appends the little-endian bytes of `value` to `out`.
template <class T>
void put(std::vector<std::byte>& out, T value) {
  const auto* bytes = reinterpret_cast<const std::byte*>(&value);
  out.insert(out.end(), bytes, bytes + sizeof(T));
}

/// Appends a GGUF string.
inline void put_string(std::vector<std::byte>& out, std::string_view text) {
  put<uint64_t>(out, text.size());
  const auto* bytes = reinterpret_cast<const std::byte*>(text.data());
  out.insert(out.end(), bytes, bytes + text.size());
}

/// Appends `value` (without its type code) to `out`; errors name `key`.
inline Result<void> put_value(std::vector<std::byte>& out, const GgufValue& value, const std::string& key) {
  const auto number = [&]<class T>(T) -> Result<void> {
    if (!value.value.is_number() && !value.value.is_boolean()) {
      return make_error(ErrorCode::invalid_argument, "GGUF metadata '{}': {} is not a number", key, value.value.dump());
    }
    put<T>(out, value.value.get<T>());
    return ok();
  };
  switch (value.type) {
    case GgufType::u8: return number(uint8_t{});
    case GgufType::i8: return number(int8_t{});
    case GgufType::u16: return number(uint16_t{});
    case GgufType::i16: return number(int16_t{});
    case GgufType::u32: return number(uint32_t{});
    case GgufType::i32: return number(int32_t{});
    case GgufType::u64: return number(uint64_t{});
    case GgufType::i64: return number(int64_t{});
    case GgufType::f32: return number(float{});
    case GgufType::f64: return number(double{});
    case GgufType::boolean:
      if (!value.value.is_boolean()) return make_error(ErrorCode::invalid_argument, "GGUF metadata '{}': {} is not a bool", key, value.value.dump());
      put<uint8_t>(out, value.value.get<bool>() ? 1 : 0);
      return ok();
    case GgufType::string:
      if (!value.value.is_string()) return make_error(ErrorCode::invalid_argument, "GGUF metadata '{}': {} is not a string", key, value.value.dump());
      put_string(out, value.value.get_ref<const std::string&>());
      return ok();
    case GgufType::array:
      put<uint32_t>(out, static_cast<uint32_t>(value.element_type));
      put<uint64_t>(out, value.elements.size());
      for (const auto& element : value.elements) {
        if (element.type != value.element_type) {
          return make_error(ErrorCode::invalid_argument, "GGUF metadata '{}': an array of type {} holds an element of type {}", key,
                            static_cast<uint32_t>(value.element_type), static_cast<uint32_t>(element.type));
        }
        auto status = put_value(out, element, key);
        if (!status) return status;
      }
      return ok();
  }
  return make_error(ErrorCode::invalid_argument, "GGUF metadata '{}': unknown type {}", key, static_cast<uint32_t>(value.type));
}

}  // namespace detail

/// Writes `entries` and `tensors` to `path` as GGUF v3 with data aligned to `alignment` (a
/// general.alignment entry is added when it is not 32).
inline Result<void> write_gguf(const std::string& path, std::vector<GgufEntry> entries, const std::vector<GgufWriteTensor>& tensors,
                               uint32_t alignment = 32) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) return make_error(ErrorCode::invalid_argument, "GGUF alignment {} is not a power of two", alignment);
  if (alignment != 32) entries.push_back({"general.alignment", GgufValue::scalar(GgufType::u32, alignment)});
  std::vector<std::byte> header;
  header.insert(header.end(), {std::byte{'G'}, std::byte{'G'}, std::byte{'U'}, std::byte{'F'}});
  detail::put<uint32_t>(header, 3);
  detail::put<uint64_t>(header, tensors.size());
  detail::put<uint64_t>(header, entries.size());
  for (const auto& entry : entries) {
    detail::put_string(header, entry.key);
    detail::put<uint32_t>(header, static_cast<uint32_t>(entry.value.type));
    auto status = detail::put_value(header, entry.value, entry.key);
    if (!status) return status;
  }
  std::vector<uint64_t> sizes;
  uint64_t offset = 0;
  for (const auto& tensor : tensors) {
    const auto code = ggml_type_of(tensor.dtype);
    if (!code) return make_error(ErrorCode::invalid_argument, "tensor '{}': GGUF has no {} type", tensor.name, to_string(tensor.dtype));
    uint64_t numel = 0;
    const auto size = tensor.shape.checked_numel(numel) ? dtype_bytes(tensor.dtype, numel) : std::nullopt;
    if (tensor.shape.ndim() == 0 || tensor.shape.ndim() > kGgufMaxDims || !size || tensor.shape.back() % dtype_info(tensor.dtype).block_size != 0) {
      return make_error(ErrorCode::invalid_argument, "tensor '{}': shape {} cannot be stored as GGUF {}", tensor.name, to_string(tensor.shape),
                        to_string(tensor.dtype));
    }
    detail::put_string(header, tensor.name);
    detail::put<uint32_t>(header, static_cast<uint32_t>(tensor.shape.ndim()));
    for (size_t d = tensor.shape.ndim(); d-- > 0;) detail::put<uint64_t>(header, tensor.shape[d]);
    detail::put<uint32_t>(header, *code);
    detail::put<uint64_t>(header, offset);
    sizes.push_back(*size);
    offset += (*size + alignment - 1) / alignment * alignment;
  }
  header.resize((header.size() + alignment - 1) / alignment * alignment, std::byte{0});

  auto file = AtomicFile::create(path);
  if (!file) return std::move(file).error();
  ByteSink& sink = (*file)->sink();
  auto status = sink.write(header);
  const std::vector<std::byte> zeros(alignment, std::byte{0});
  for (size_t i = 0; i < tensors.size() && status; ++i) {
    const uint64_t start = sink.written();
    status = tensors[i].write(sink);
    if (!status) break;
    if (sink.written() - start != sizes[i]) {
      status = make_error(ErrorCode::internal, "tensor '{}': wrote {} bytes, expected {}", tensors[i].name, sink.written() - start, sizes[i]);
      break;
    }
    const uint64_t padding = (alignment - sizes[i] % alignment) % alignment;
    status = sink.write(std::span(zeros).first(static_cast<size_t>(padding)));
  }
  if (!status) return status;
  return (*file)->commit();
}

}  // namespace apr::format
