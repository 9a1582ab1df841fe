/// @file moe_input.hpp
/// @brief Input rows for a mixture-of-experts ensemble from JSON: one array of numbers, or an
/// array of such arrays, each as wide as the ensemble's input (shared by `apr inspect
/// --router-stats` and the server's /predict/moe).
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apr/core/result.hpp"

namespace apr::models {

/// Rows of `width` numbers from `rows` (a JSON array of arrays), flattened row after row; the
/// error names `field` and the first row or value that is not as expected.
inline Result<std::vector<float>> moe_input_rows(const nlohmann::json& rows, size_t width, const std::string& field) {
  if (!rows.is_array() || rows.empty()) return make_error(ErrorCode::invalid_argument, "{}: expected a non-empty array of input rows", field);
  std::vector<float> inputs;
  inputs.reserve(rows.size() * width);
  for (size_t r = 0; r < rows.size(); ++r) {
    const auto& row = rows[r];
    if (!row.is_array() || row.size() != width) {
      return make_error(ErrorCode::invalid_argument, "{}[{}]: each input must be an array of {} numbers", field, r, width);
    }
    for (size_t i = 0; i < row.size(); ++i) {
      if (!row[i].is_number()) return make_error(ErrorCode::invalid_argument, "{}[{}][{}]: input values must be numbers, not {}", field, r, i, row[i].dump());
      inputs.push_back(row[i].get<float>());
    }
  }
  return inputs;
}

}  // namespace apr::models
