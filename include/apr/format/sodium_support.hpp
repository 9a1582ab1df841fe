/// @file sodium_support.hpp
/// @brief libsodium start-up and hex/key-file helpers shared by APR signing and encryption.
#pragma once

#include <sodium.h>

#include <cstddef>
#include <fstream>
#include <iterator>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "apr/core/result.hpp"

namespace apr::format {

/// Initialises libsodium once (thread-safe, idempotent).
inline Result<void> sodium_ready() {
  static const int status = ::sodium_init();
  if (status < 0) return make_error(ErrorCode::crypto, "libsodium failed to initialise");
  return ok();
}

/// Lower-case hex of `bytes`.
inline std::string to_hex(std::span<const std::byte> bytes) {
  std::string out(bytes.size() * 2 + 1, '\0');
  ::sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size());
  out.pop_back();
  return out;
}

/// Exactly `out.size()` bytes from hex `text` (surrounding whitespace ignored); `what` names it in errors.
inline Result<void> from_hex(std::string_view text, std::span<std::byte> out, std::string_view what) {
  const size_t first = text.find_first_not_of(" \t\r\n");
  const size_t last = text.find_last_not_of(" \t\r\n");
  text = first == std::string_view::npos ? std::string_view() : text.substr(first, last - first + 1);
  size_t length = 0;
  const char* end = nullptr;
  if (text.size() != out.size() * 2 ||
      ::sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), text.data(), text.size(), nullptr, &length, &end) != 0 ||
      length != out.size()) {
    return make_error(ErrorCode::invalid_argument, "{}: expected {} hex digits ({} bytes)", what, out.size() * 2, out.size());
  }
  return ok();
}

/// The whole text of `path`.
inline Result<std::string> read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(ErrorCode::not_found, "{}: cannot open", path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace apr::format
