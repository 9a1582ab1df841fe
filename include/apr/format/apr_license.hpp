/// @file apr_license.hpp
/// @brief The license block of APR metadata: SPDX id, license text and an optional expiry date,
/// stored as the free-form key "license_block" (aprender's own "license" field keeps the SPDX id).
#pragma once

#include <cctype>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "apr/core/result.hpp"

namespace apr::format {

/// A model's license as the metadata's "license_block" holds it.
struct LicenseBlock {
  std::string spdx_id;  ///< SPDX license identifier or expression, e.g. "Apache-2.0"
  std::string text;     ///< the license text (may be empty)
  std::string expires;  ///< last day of validity, "YYYY-MM-DD"; empty: no expiry

  /// True when `today` ("YYYY-MM-DD") is after the expiry date.
  [[nodiscard]] bool expired_on(std::string_view today) const { return !expires.empty() && today > expires; }
};

namespace detail {

/// True for "YYYY-MM-DD" with a month 01-12 and a day 01-31 (ISO 8601 dates compare as text).
inline bool is_iso_date(std::string_view date) {
  if (date.size() != 10 || date[4] != '-' || date[7] != '-') return false;
  for (size_t i : {0, 1, 2, 3, 5, 6, 8, 9}) {
    if (!std::isdigit(static_cast<unsigned char>(date[i]))) return false;
  }
  const int month = (date[5] - '0') * 10 + (date[6] - '0');
  const int day = (date[8] - '0') * 10 + (date[9] - '0');
  return month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

/// True for the characters of an SPDX expression: ids (letters, digits, '.', '-', '+') joined by
/// spaces and parentheses (AND, OR, WITH).
inline bool is_spdx_expression(std::string_view id) {
  if (id.empty()) return false;
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '+' && c != ' ' && c != '(' && c != ')' && c != ':') return false;
  }
  return id.front() != ' ' && id.back() != ' ';
}

}  // namespace detail

/// The license block of `metadata`, nullopt when there is none; a malformed one is an error naming the field.
inline Result<std::optional<LicenseBlock>> license_block(const nlohmann::json& metadata) {
  if (!metadata.is_object() || !metadata.contains("license_block") || metadata["license_block"].is_null()) return std::optional<LicenseBlock>();
  const auto& block = metadata["license_block"];
  auto bad = [](std::string_view what) { return make_error(ErrorCode::format, "metadata 'license_block': {}", what); };
  if (!block.is_object()) return bad("must be an object {spdx_id, text, expires}");
  LicenseBlock out;
  if (!block.contains("spdx_id") || !block["spdx_id"].is_string()) return bad("'spdx_id' must be a string");
  out.spdx_id = block["spdx_id"].get<std::string>();
  if (!detail::is_spdx_expression(out.spdx_id)) return bad(fmt::format("'spdx_id' '{}' is not an SPDX identifier or expression", out.spdx_id));
  if (block.contains("text") && !block["text"].is_null()) {
    if (!block["text"].is_string()) return bad("'text' must be a string");
    out.text = block["text"].get<std::string>();
  }
  if (block.contains("expires") && !block["expires"].is_null()) {
    if (!block["expires"].is_string() || !detail::is_iso_date(block["expires"].get<std::string>())) return bad("'expires' must be a date YYYY-MM-DD");
    out.expires = block["expires"].get<std::string>();
  }
  return std::optional<LicenseBlock>(std::move(out));
}

/// Stores `license` in `metadata`: "license_block", and its SPDX id as aprender's "license".
inline void set_license_block(nlohmann::json& metadata, const LicenseBlock& license) {
  metadata["license"] = license.spdx_id;
  metadata["license_block"] = {{"spdx_id", license.spdx_id}, {"text", license.text},
                               {"expires", license.expires.empty() ? nlohmann::json(nullptr) : nlohmann::json(license.expires)}};
}

}  // namespace apr::format
