/// @file dtype.hpp
/// @brief Element types: the runtime DType code, the compile-time weight dtype tags and their blocks.
///
/// Quantized blocks use ggml's layouts so GGUF tensor data maps without repacking:
/// - Q8_0: f16 scale d, then 32 int8 q; value = q * d (34 bytes per 32 values).
/// - Q4_0: f16 scale d, then 16 bytes; byte j holds element j (low nibble) and element j+16
///   (high nibble); value = (nibble - 8) * d (18 bytes per 32 values).
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>

#include "apr/core/result.hpp"

namespace apr {

/// Every element type apr can read; weight dtypes are the ones kernels compute with.
enum class DType : uint8_t {
  f32,     ///< IEEE binary32
  f16,     ///< IEEE binary16
  bf16,    ///< bfloat16
  q8_0,    ///< ggml Q8_0 blocks (weight dtype)
  q4_0,    ///< ggml Q4_0 blocks (weight dtype)
  q4_1,    ///< ggml Q4_1 blocks (read and dequantize)
  q5_0,    ///< ggml Q5_0 blocks (read and dequantize)
  q5_1,    ///< ggml Q5_1 blocks (read and dequantize)
  q4_k,    ///< ggml Q4_K super-blocks (read and dequantize)
  q6_k,    ///< ggml Q6_K super-blocks (read and dequantize)
  apr_q4,  ///< aprender's APR_Q4 (f16 scale + 16 nibble bytes per 32 values, adjacent-pair nibbles)
  apr_q8,  ///< aprender's APR_Q8 (one f32 scale per tensor, then int8 values)
  f64,     ///< IEEE binary64
  i8,      ///< signed 8-bit integer
  u8,      ///< unsigned 8-bit integer
  i16,     ///< signed 16-bit integer
  i32,     ///< signed 32-bit integer
  i64,     ///< signed 64-bit integer
  boolean, ///< one byte, 0 or 1
};

/// Static facts about a DType: name and block geometry.
struct DTypeInfo {
  std::string_view name;  ///< lower-case name, e.g. "q4_0"
  uint32_t block_size;    ///< values per block (1 for plain types)
  uint32_t block_bytes;   ///< bytes per block
};

/// Facts about `dtype` (name, values per block, bytes per block).
constexpr DTypeInfo dtype_info(DType dtype) {
  switch (dtype) {
    case DType::f32: return {"f32", 1, 4};
    case DType::f16: return {"f16", 1, 2};
    case DType::bf16: return {"bf16", 1, 2};
    case DType::q8_0: return {"q8_0", 32, 34};
    case DType::q4_0: return {"q4_0", 32, 18};
    case DType::q4_1: return {"q4_1", 32, 20};
    case DType::q5_0: return {"q5_0", 32, 22};
    case DType::q5_1: return {"q5_1", 32, 24};
    case DType::q4_k: return {"q4_k", 256, 144};
    case DType::q6_k: return {"q6_k", 256, 210};
    case DType::apr_q4: return {"apr_q4", 32, 18};
    case DType::apr_q8: return {"apr_q8", 1, 1};
    case DType::f64: return {"f64", 1, 8};
    case DType::i8: return {"i8", 1, 1};
    case DType::u8: return {"u8", 1, 1};
    case DType::i16: return {"i16", 1, 2};
    case DType::i32: return {"i32", 1, 4};
    case DType::i64: return {"i64", 1, 8};
    case DType::boolean: return {"bool", 1, 1};
  }
  return {"?", 1, 1};
}

/// Lower-case name of `dtype` ("f32", "q4_0", ...).
constexpr std::string_view to_string(DType dtype) { return dtype_info(dtype).name; }

/// Parses a dtype name as printed by to_string (case-insensitive); nullopt if unknown.
constexpr std::optional<DType> parse_dtype(std::string_view name) {
  auto lower_equal = [](std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      char c = a[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (c != b[i]) return false;
    }
    return true;
  };
  for (int code = 0; code <= static_cast<int>(DType::boolean); ++code) {
    const auto dtype = static_cast<DType>(code);
    if (lower_equal(name, to_string(dtype))) return dtype;
  }
  return std::nullopt;
}

/// Bytes needed by `n` values of `dtype`; nullopt when `n` is not a whole number of blocks
/// (APR_Q4 pads its last block) or the size overflows 64 bits.
constexpr std::optional<uint64_t> dtype_bytes(DType dtype, uint64_t n) {
  const DTypeInfo info = dtype_info(dtype);
  if (dtype == DType::apr_q8) return n == 0 ? 0 : (n > std::numeric_limits<uint64_t>::max() - 4 ? std::nullopt : std::optional<uint64_t>(n + 4));
  uint64_t blocks = n / info.block_size;
  if (n % info.block_size != 0) {
    if (dtype != DType::apr_q4) return std::nullopt;
    ++blocks;
  }
  if (blocks > std::numeric_limits<uint64_t>::max() / info.block_bytes) return std::nullopt;
  return blocks * info.block_bytes;
}

/// ggml Q8_0 block: 32 values.
struct BlockQ8_0 {
  uint16_t d;     ///< scale, IEEE binary16
  int8_t qs[32];  ///< quantized values
};
static_assert(sizeof(BlockQ8_0) == 34);

/// ggml Q4_0 block: 32 values.
struct BlockQ4_0 {
  uint16_t d;      ///< scale, IEEE binary16
  uint8_t qs[16];  ///< byte j: element j in the low nibble, element j+16 in the high nibble
};
static_assert(sizeof(BlockQ4_0) == 18);

/// Weight dtype tag: IEEE binary32.
struct F32 {
  using Block = float;                           ///< storage unit
  static constexpr DType dtype = DType::f32;     ///< runtime code
  static constexpr size_t block_size = 1;        ///< values per block
  static constexpr size_t block_bytes = 4;       ///< bytes per block
};
/// Weight dtype tag: IEEE binary16 (stored as raw bits).
struct F16 {
  using Block = uint16_t;                        ///< storage unit
  static constexpr DType dtype = DType::f16;     ///< runtime code
  static constexpr size_t block_size = 1;        ///< values per block
  static constexpr size_t block_bytes = 2;       ///< bytes per block
};
/// Weight dtype tag: bfloat16 (stored as raw bits).
struct BF16 {
  using Block = uint16_t;                        ///< storage unit
  static constexpr DType dtype = DType::bf16;    ///< runtime code
  static constexpr size_t block_size = 1;        ///< values per block
  static constexpr size_t block_bytes = 2;       ///< bytes per block
};
/// Weight dtype tag: ggml Q8_0.
struct Q8_0 {
  using Block = BlockQ8_0;                       ///< storage unit
  static constexpr DType dtype = DType::q8_0;    ///< runtime code
  static constexpr size_t block_size = 32;       ///< values per block
  static constexpr size_t block_bytes = 34;      ///< bytes per block
};
/// Weight dtype tag: ggml Q4_0.
struct Q4_0 {
  using Block = BlockQ4_0;                       ///< storage unit
  static constexpr DType dtype = DType::q4_0;    ///< runtime code
  static constexpr size_t block_size = 32;       ///< values per block
  static constexpr size_t block_bytes = 18;      ///< bytes per block
};

/// A dtype kernels can compute with: a tag naming its block type and geometry.
template <class W>
concept WeightDtype = requires {
  typename W::Block;
  { W::dtype } -> std::convertible_to<DType>;
  { W::block_size } -> std::convertible_to<size_t>;
  { W::block_bytes } -> std::convertible_to<size_t>;
} && sizeof(typename W::Block) == W::block_bytes;

/// True for a quantized weight dtype (blocks carrying their own scale).
template <WeightDtype W>
inline constexpr bool is_quantized_v = W::block_size > 1;

/// True when `dtype` is one of the weight dtypes (F32, F16, BF16, Q8_0, Q4_0).
constexpr bool is_weight_dtype(DType dtype) {
  return dtype == DType::f32 || dtype == DType::f16 || dtype == DType::bf16 || dtype == DType::q8_0 ||
         dtype == DType::q4_0;
}

/// Calls `f(Tag{})` with the weight dtype tag for the runtime `dtype`, turning a file's dtype
/// into a compile-time type once. `f` must return an apr::Result; a dtype that is not a weight
/// dtype gives ErrorCode::unsupported.
template <class F>
auto visit_dtype(DType dtype, F&& f) -> decltype(f(F32{})) {
  switch (dtype) {
    case DType::f32: return f(F32{});
    case DType::f16: return f(F16{});
    case DType::bf16: return f(BF16{});
    case DType::q8_0: return f(Q8_0{});
    case DType::q4_0: return f(Q4_0{});
    default:
      return make_error(ErrorCode::unsupported, "dtype {} is not a weight dtype (expected f32, f16, bf16, q8_0 or q4_0)",
                        to_string(dtype));
  }
}

}  // namespace apr
