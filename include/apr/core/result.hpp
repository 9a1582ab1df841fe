/// @file result.hpp
/// @brief apr::Error and apr::Result<T>: errors as values, never exceptions across the library boundary.
#pragma once

#include <cstdlib>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace apr {

/// Broad category of a failure; the CLI maps it to an exit status.
enum class ErrorCode {
  invalid_argument,  ///< caller passed something unusable (bad option, wrong shape)
  io,                ///< the operating system refused a read, write, open or map
  format,            ///< bytes do not follow the expected file format
  checksum,          ///< a CRC, hash or signature did not match
  unsupported,       ///< valid input that apr does not handle (e.g. an unknown dtype)
  not_found,         ///< a named file, tensor, key or model does not exist
  validation,        ///< a quality or consistency check failed
  crypto,            ///< decryption or key derivation failed
  network,           ///< a download failed
  cancelled,         ///< the operation was cancelled by its caller
  internal,          ///< a bug in apr
};

/// Human-readable name of an error code ("format", "io", ...).
constexpr std::string_view to_string(ErrorCode code) {
  switch (code) {
    case ErrorCode::invalid_argument: return "invalid_argument";
    case ErrorCode::io: return "io";
    case ErrorCode::format: return "format";
    case ErrorCode::checksum: return "checksum";
    case ErrorCode::unsupported: return "unsupported";
    case ErrorCode::not_found: return "not_found";
    case ErrorCode::validation: return "validation";
    case ErrorCode::crypto: return "crypto";
    case ErrorCode::network: return "network";
    case ErrorCode::cancelled: return "cancelled";
    case ErrorCode::internal: return "internal";
  }
  return "unknown";
}

/// A failure: its category and a message naming the file, offset or field involved.
struct Error {
  ErrorCode code = ErrorCode::internal;  ///< category
  std::string message;                   ///< what went wrong, where, and what was expected

  /// Returns a copy whose message is prefixed by `context: ` (e.g. a file name).
  [[nodiscard]] Error with_context(std::string_view context) const {
    return Error{code, fmt::format("{}: {}", context, message)};
  }
};

/// Builds an Error from a format string.
template <class... Args>
[[nodiscard]] Error make_error(ErrorCode code, fmt::format_string<Args...> format, Args&&... args) {
  return Error{code, fmt::format(format, std::forward<Args>(args)...)};
}

/// Either a value of type T or an Error (like std::expected<T, Error>).
template <class T>
class [[nodiscard]] Result {
 public:
  /// Holds a value.
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  /// Holds an error.
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT: implicit by design

  /// True when a value is held.
  [[nodiscard]] bool has_value() const noexcept { return state_.index() == 0; }
  /// True when a value is held.
  explicit operator bool() const noexcept { return has_value(); }

  /// The value; aborts with the error message if there is none (a programming error).
  T& value() & { check(); return std::get<0>(state_); }
  /// The value; aborts with the error message if there is none (a programming error).
  const T& value() const& { check(); return std::get<0>(state_); }
  /// The value, moved out; aborts with the error message if there is none.
  T&& value() && { check(); return std::get<0>(std::move(state_)); }
  /// The value or `fallback` when an error is held.
  T value_or(T fallback) const& { return has_value() ? std::get<0>(state_) : std::move(fallback); }

  /// Access to the held value.
  T& operator*() & { return value(); }
  /// Access to the held value.
  const T& operator*() const& { return value(); }
  /// Access to the held value, moved out.
  T&& operator*() && { return std::move(*this).value(); }
  /// Member access to the held value.
  T* operator->() { return &value(); }
  /// Member access to the held value.
  const T* operator->() const { return &value(); }

  /// The error; only valid when has_value() is false.
  [[nodiscard]] const Error& error() const& { return std::get<1>(state_); }
  /// The error, moved out; only valid when has_value() is false.
  [[nodiscard]] Error&& error() && { return std::get<1>(std::move(state_)); }

 private:
  void check() const {
    if (!has_value()) {
      fmt::print(stderr, "apr: value() called on an error result: {}\n", std::get<1>(state_).message);
      std::abort();
    }
  }
  std::variant<T, Error> state_;
};

/// Success without a value, or an Error.
template <>
class [[nodiscard]] Result<void> {
 public:
  /// Success.
  Result() = default;
  /// Holds an error.
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design

  /// True on success.
  [[nodiscard]] bool has_value() const noexcept { return ok_; }
  /// True on success.
  explicit operator bool() const noexcept { return ok_; }
  /// The error; only valid when has_value() is false.
  [[nodiscard]] const Error& error() const& { return error_; }
  /// The error, moved out; only valid when has_value() is false.
  [[nodiscard]] Error&& error() && { return std::move(error_); }

 private:
  Error error_;
  bool ok_ = true;
};

/// Shorthand for a successful Result<void>.
inline Result<void> ok() { return {}; }

}  // namespace apr
