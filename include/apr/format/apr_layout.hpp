/// @file apr_layout.hpp
/// @brief The APR v2 byte layout: header fields, flags, dtype codes, alignment (as aprender writes it).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "apr/core/dtype.hpp"

namespace apr::format::apr_v2 {

inline constexpr uint32_t kMagic = 0x00525041;    ///< "APR\0" little-endian
inline constexpr size_t kHeaderSize = 64;         ///< header bytes
inline constexpr size_t kAlignment = 64;          ///< sections and tensors start at multiples of it
inline constexpr size_t kMaxNameLength = 256;     ///< longest tensor name
inline constexpr size_t kMaxDims = 8;             ///< most dims per tensor
inline constexpr size_t kChecksumOffset = 40;     ///< header CRC field offset
inline constexpr size_t kFooterSize = 4;          ///< CRC-32 of everything before it

/// Header flag bits.
enum Flag : uint16_t {
  kLz4Compressed = 1u << 0,      ///< tensor payloads are lz4 (apr extension layout)
  kZstdCompressed = 1u << 1,     ///< tensor payloads are zstd (apr extension layout)
  kEncrypted = 1u << 2,          ///< tensor payloads are AES-256-GCM encrypted
  kSigned = 1u << 3,             ///< an Ed25519 signature follows the footer
  kSharded = 1u << 4,            ///< one shard of a manifest
  kQuantized = 1u << 5,          ///< informational
  kHasFilterbank = 1u << 6,      ///< informational: audio.mel_filters present
  kHasModelCard = 1u << 7,       ///< informational
  kStreaming = 1u << 8,          ///< informational
  kHasVocab = 1u << 9,           ///< informational
  kLayoutRowMajor = 1u << 10,    ///< always set by writers
  kLayoutColumnMajor = 1u << 11, ///< readers must refuse the file
};

/// Rounds `n` up to a multiple of kAlignment.
constexpr uint64_t align64(uint64_t n) { return (n + kAlignment - 1) / kAlignment * kAlignment; }

/// The file code apr writes for `dtype` (GGML numbering for GGML types, aprender's for the rest).
constexpr std::optional<uint8_t> dtype_code(DType dtype) {
  switch (dtype) {
    case DType::f32: return 0;
    case DType::f16: return 1;
    case DType::q4_0: return 2;
    case DType::f64: return 3;
    case DType::i32: return 4;
    case DType::i64: return 5;
    case DType::i8: return 6;
    case DType::u8: return 7;
    case DType::q8_0: return 8;
    case DType::q4_k: return 12;
    case DType::q6_k: return 14;
    case DType::bf16: return 30;
    case DType::apr_q4: return 128;
    case DType::apr_q8: return 129;
    default: return std::nullopt;
  }
}

/// The DType of file code `code` for a tensor of `numel` values stored in `size` bytes; codes 2,
/// 8 and 9 meant BF16 / APR_Q4 / APR_Q8 before aprender's GH-438, so the size decides.
constexpr std::optional<DType> dtype_of_code(uint8_t code, uint64_t numel, uint64_t size) {
  auto fits = [&](DType dtype) { return dtype_bytes(dtype, numel) == size; };
  switch (code) {
    case 0: return DType::f32;
    case 1: return DType::f16;
    case 2: return fits(DType::bf16) ? DType::bf16 : DType::q4_0;
    case 3: return DType::f64;
    case 4: return DType::i32;
    case 5: return DType::i64;
    case 6: return DType::i8;
    case 7: return DType::u8;
    case 8: return fits(DType::apr_q4) ? DType::apr_q4 : DType::q8_0;
    case 9: return DType::apr_q8;
    case 12: return DType::q4_k;
    case 14: return DType::q6_k;
    case 30: return DType::bf16;
    case 128: return DType::apr_q4;
    case 129: return DType::apr_q8;
    default: return std::nullopt;
  }
}

/// aprender's metadata keys, in the order its serializer writes them.
inline constexpr std::string_view kMetadataKeys[] = {
    "model_type", "name", "description", "author", "license", "version", "source", "original_format", "created_at",
    "total_size", "param_count", "quantization", "sharding", "chat_template", "chat_format", "special_tokens",
    "architecture", "hidden_size", "num_layers", "num_heads", "num_kv_heads", "vocab_size", "intermediate_size",
    "max_position_embeddings", "rope_theta", "rope_type", "rms_norm_eps", "head_dim", "num_experts",
    "num_experts_per_tok", "moe_intermediate_size"};

}  // namespace apr::format::apr_v2
