// YAML documents read as JSON, so `apr eval golden --suite` and `apr pipeline --models` take
// either: a file ending in .yaml/.yml is parsed with yaml-cpp and converted, anything else is
// returned as it is for the JSON parsers.
#pragma once

#include <charconv>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "apr/core/result.hpp"
#include "apr/text/tokenizer.hpp"

namespace apr::cli {

/// A plain (unquoted) YAML scalar as JSON: null, true/false, an integer, a number, else a string.
inline nlohmann::json yaml_scalar(const std::string& text) {
  if (text == "~" || text == "null" || text == "Null" || text == "NULL") return nullptr;
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  int64_t integer = 0;
  const char* end = text.data() + text.size();
  if (auto [stop, ec] = std::from_chars(text.data(), end, integer); ec == std::errc() && stop == end && !text.empty()) return integer;
  double number = 0.0;
  if (auto [stop, ec] = std::from_chars(text.data(), end, number); ec == std::errc() && stop == end && !text.empty()) return number;
  return text;
}

/// `node` as JSON; quoted scalars stay strings.
inline nlohmann::json yaml_to_json(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence: {
      nlohmann::json out = nlohmann::json::array();
      for (const auto& item : node) out.push_back(yaml_to_json(item));
      return out;
    }
    case YAML::NodeType::Map: {
      nlohmann::json out = nlohmann::json::object();
      for (const auto& item : node) out[item.first.as<std::string>()] = yaml_to_json(item.second);
      return out;
    }
    case YAML::NodeType::Scalar: return node.Tag() == "!" ? nlohmann::json(node.Scalar()) : yaml_scalar(node.Scalar());
    default: return nullptr;
  }
}

/// The JSON text of the file at `path`: converted from YAML when its name ends in .yaml or .yml.
inline Result<std::string> read_json_or_yaml(const std::string& path) {
  auto text = text::read_text_file(path);
  if (!text) return std::move(text).error();
  const std::string_view name(path);
  if (!name.ends_with(".yaml") && !name.ends_with(".yml")) return text;
  try {
    return yaml_to_json(YAML::Load(*text)).dump();
  } catch (const YAML::Exception& error) {
    return make_error(ErrorCode::format, "{}: line {}, column {}: {}", path, error.mark.line + 1, error.mark.column + 1, error.msg);
  }
}

}  // namespace apr::cli
