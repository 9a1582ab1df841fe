/// @file crc32.hpp
/// @brief CRC-32 (IEEE, zlib's) over bytes, incrementally.
///
/// zlib computes it where its header is available; otherwise (a WebAssembly build) a
/// byte-at-a-time table and zlib's GF(2) combination give the same values, more slowly.
#pragma once

#if __has_include(<zlib.h>)
#include <zlib.h>
#endif

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace apr::format {

namespace detail {

/// The reflected CRC-32 polynomial.
inline constexpr uint32_t kCrc32Polynomial = 0xedb88320u;

/// CRC-32 of every byte value (the byte-at-a-time table).
inline constexpr std::array<uint32_t, 256> kCrc32Table = [] {
  std::array<uint32_t, 256> table{};
  for (uint32_t n = 0; n < 256; ++n) {
    uint32_t c = n;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? kCrc32Polynomial ^ (c >> 1) : c >> 1;
    table[n] = c;
  }
  return table;
}();

/// a·b modulo the CRC polynomial (reflected bit order), as zlib's multmodp.
constexpr uint32_t multiply_mod_polynomial(uint32_t a, uint32_t b) {
  uint32_t m = 1u << 31, product = 0;
  for (;;) {
    if (a & m) {
      product ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    m >>= 1;
    b = (b & 1u) ? (b >> 1) ^ kCrc32Polynomial : b >> 1;
  }
  return product;
}

/// x^(8·n) modulo the CRC polynomial: the operator that shifts a CRC over n zero bytes.
constexpr uint32_t shift_bytes_operator(uint64_t n) {
  uint32_t power = 1u << 30;  // x^1, squared below to x^2, x^4, ...
  for (int k = 0; k < 3; ++k) power = multiply_mod_polynomial(power, power);
  uint32_t result = 1u << 31;  // x^0
  for (; n != 0; n >>= 1) {
    if (n & 1u) result = multiply_mod_polynomial(power, result);
    power = multiply_mod_polynomial(power, power);
  }
  return result;
}

}  // namespace detail

/// Continues CRC-32 `crc` (0 to start) over `bytes`.
inline uint32_t crc32_update(uint32_t crc, std::span<const std::byte> bytes) {
#if __has_include(<zlib.h>)
  while (!bytes.empty()) {
    const auto chunk = static_cast<uInt>(std::min<size_t>(bytes.size(), 1u << 30));
    crc = static_cast<uint32_t>(::crc32(crc, reinterpret_cast<const Bytef*>(bytes.data()), chunk));
    bytes = bytes.subspan(chunk);
  }
  return crc;
#else
  uint32_t c = ~crc;
  for (const std::byte b : bytes) c = detail::kCrc32Table[(c ^ static_cast<uint32_t>(b)) & 0xffu] ^ (c >> 8);
  return ~c;
#endif
}

/// CRC-32 of `bytes`.
inline uint32_t crc32(std::span<const std::byte> bytes) { return crc32_update(0, bytes); }

/// CRC-32 of A followed by B, from `crc_a`, `crc_b` and B's length (zlib's crc32_combine).
inline uint32_t crc32_concat(uint32_t crc_a, uint32_t crc_b, uint64_t length_b) {
#if __has_include(<zlib.h>)
  return static_cast<uint32_t>(::crc32_combine(crc_a, crc_b, static_cast<z_off_t>(length_b)));
#else
  return detail::multiply_mod_polynomial(detail::shift_bytes_operator(length_b), crc_a) ^ crc_b;
#endif
}

}  // namespace apr::format
