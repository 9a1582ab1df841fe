/// @file crc32.hpp
/// @brief CRC-32 (IEEE, zlib's) over bytes, incrementally.
#pragma once

#include <zlib.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

namespace apr::format {

/// Continues CRC-32 `crc` (0 to start) over `bytes`.
inline uint32_t crc32_update(uint32_t crc, std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    const auto chunk = static_cast<uInt>(std::min<size_t>(bytes.size(), 1u << 30));
    crc = static_cast<uint32_t>(::crc32(crc, reinterpret_cast<const Bytef*>(bytes.data()), chunk));
    bytes = bytes.subspan(chunk);
  }
  return crc;
}

/// CRC-32 of `bytes`.
inline uint32_t crc32(std::span<const std::byte> bytes) { return crc32_update(0, bytes); }

/// CRC-32 of A followed by B, from `crc_a`, `crc_b` and B's length (zlib's crc32_combine).
inline uint32_t crc32_concat(uint32_t crc_a, uint32_t crc_b, uint64_t length_b) {
  return static_cast<uint32_t>(::crc32_combine(crc_a, crc_b, static_cast<z_off_t>(length_b)));
}

}  // namespace apr::format
