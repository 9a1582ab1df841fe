/// @file tensor_values.hpp
/// @brief tensor_to_f32(): the values of a tensor of any readable dtype, as floats.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "apr/core/apr_quant.hpp"
#include "apr/core/ggml_blocks.hpp"
#include "apr/core/dtype.hpp"
#include "apr/core/quantize.hpp"
#include "apr/core/result.hpp"
#include "apr/core/tensor.hpp"

namespace apr::format {

/// All values of `tensor` as floats (integers converted exactly where they fit); k-quant
/// super-blocks (Q4_K, Q6_K) and the other ggml block types are not decoded here.
inline Result<std::vector<float>> tensor_to_f32(const TensorView& tensor) {
  uint64_t numel = 0;
  if (!tensor.shape.checked_numel(numel) || numel > (uint64_t{1} << 36)) {
    return make_error(ErrorCode::invalid_argument, "tensor '{}': {} values are too many to convert", tensor.name, to_string(tensor.shape));
  }
  const auto expected = dtype_bytes(tensor.dtype, numel);
  if (!expected || *expected != tensor.bytes.size()) {
    return make_error(ErrorCode::format, "tensor '{}': {} bytes for {} {} values", tensor.name, tensor.bytes.size(), numel, to_string(tensor.dtype));
  }
  std::vector<float> out(numel);
  const auto* raw = reinterpret_cast<const uint8_t*>(tensor.bytes.data());
  auto integers = [&]<class T>(T) {
    for (size_t i = 0; i < numel; ++i) {
      T value;
      std::memcpy(&value, raw + i * sizeof(T), sizeof(T));
      out[i] = static_cast<float>(value);
    }
  };
  switch (tensor.dtype) {
    case DType::f32: std::memcpy(out.data(), raw, numel * 4); break;
    case DType::f16: dequantize_row<F16>(reinterpret_cast<const uint16_t*>(raw), out.data(), numel); break;
    case DType::bf16: dequantize_row<BF16>(reinterpret_cast<const uint16_t*>(raw), out.data(), numel); break;
    case DType::q8_0: dequantize_row<Q8_0>(reinterpret_cast<const BlockQ8_0*>(raw), out.data(), numel); break;
    case DType::q4_0: dequantize_row<Q4_0>(reinterpret_cast<const BlockQ4_0*>(raw), out.data(), numel); break;
    case DType::q4_1: dequantize_q4_1(reinterpret_cast<const BlockQ4_1*>(raw), out.data(), numel / 32); break;
    case DType::q5_0: dequantize_q5_0(reinterpret_cast<const BlockQ5_0*>(raw), out.data(), numel / 32); break;
    case DType::q5_1: dequantize_q5_1(reinterpret_cast<const BlockQ5_1*>(raw), out.data(), numel / 32); break;
    case DType::q4_k: dequantize_q4_k(reinterpret_cast<const BlockQ4_K*>(raw), out.data(), numel / 256); break;
    case DType::q6_k: dequantize_q6_k(reinterpret_cast<const BlockQ6_K*>(raw), out.data(), numel / 256); break;
    case DType::apr_q4: dequantize_apr_q4(raw, numel, out.data()); break;
    case DType::apr_q8: dequantize_apr_q8(raw, numel, out.data()); break;
    case DType::f64: integers(double{}); break;
    case DType::i8: integers(int8_t{}); break;
    case DType::u8:
    case DType::boolean: integers(uint8_t{}); break;
    case DType::i16: integers(int16_t{}); break;
    case DType::i32: integers(int32_t{}); break;
    case DType::i64: integers(int64_t{}); break;
    default:
      return make_error(ErrorCode::unsupported, "tensor '{}': converting {} to f32 is not supported", tensor.name, to_string(tensor.dtype));
  }
  return out;
}

}  // namespace apr::format
