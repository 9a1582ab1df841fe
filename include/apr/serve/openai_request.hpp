/// @file openai_request.hpp
/// @brief Parsing and validating OpenAI-style /v1/chat/completions and /v1/completions bodies.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "apr/core/result.hpp"
#include "apr/runtime/generator.hpp"
#include "apr/text/chat_template.hpp"

namespace apr::serve {

/// A completion request (chat when messages is non-empty, else plain prompt).
struct CompletionRequest {
  std::string model;                      ///< model id (may be empty: the only model)
  std::vector<text::ChatMessage> messages;  ///< chat history (chat completions)
  std::string prompt;                     ///< prompt text (completions)
  bool stream = false;                    ///< answer with server-sent events
  runtime::GenerationOptions generation;  ///< budget, sampling, stop strings
};

/// Largest max_tokens a request may ask for.
inline constexpr size_t kMaxTokensLimit = 4096;

namespace detail {

inline Result<float> number_in(const nlohmann::json& body, const char* field, float fallback, float low, float high) {
  if (!body.contains(field) || body[field].is_null()) return fallback;
  if (!body[field].is_number()) return make_error(ErrorCode::invalid_argument, "'{}' must be a number", field);
  const double value = body[field].get<double>();
  if (!(value >= low && value <= high)) return make_error(ErrorCode::invalid_argument, "'{}' must be between {} and {}, got {}", field, low, high, value);
  return static_cast<float>(value);
}

}  // namespace detail

/// Parses a request body; `chat` selects /v1/chat/completions (messages) vs /v1/completions (prompt).
/// Errors name the offending field (they become HTTP 400 with a JSON error body).
inline Result<CompletionRequest> parse_completion_request(std::string_view body_text, bool chat) {
  const auto body = nlohmann::json::parse(body_text, nullptr, false);
  if (body.is_discarded()) return make_error(ErrorCode::invalid_argument, "request body is not valid JSON");
  if (!body.is_object()) return make_error(ErrorCode::invalid_argument, "request body must be a JSON object");
  CompletionRequest request;
  if (body.contains("model")) {
    if (!body["model"].is_string()) return make_error(ErrorCode::invalid_argument, "'model' must be a string");
    request.model = body["model"].get<std::string>();
  }
  if (chat) {
    if (!body.contains("messages") || !body["messages"].is_array() || body["messages"].empty()) {
      return make_error(ErrorCode::invalid_argument, "'messages' must be a non-empty array");
    }
    for (size_t i = 0; i < body["messages"].size(); ++i) {
      const auto& message = body["messages"][i];
      if (!message.is_object() || !message.contains("role") || !message["role"].is_string()) {
        return make_error(ErrorCode::invalid_argument, "'messages[{}].role' must be a string", i);
      }
      const std::string role = message["role"].get<std::string>();
      if (role != "system" && role != "user" && role != "assistant") {
        return make_error(ErrorCode::invalid_argument, "'messages[{}].role' must be system, user or assistant, got '{}'", i, role);
      }
      std::string content;
      if (message.contains("content") && message["content"].is_string()) {
        content = message["content"].get<std::string>();
      } else if (message.contains("content") && message["content"].is_array()) {  // [{type: text, text: ...}]
        for (const auto& part : message["content"]) {
          if (part.is_object() && part.value("type", "") == "text" && part.contains("text") && part["text"].is_string()) content += part["text"].get<std::string>();
        }
      } else {
        return make_error(ErrorCode::invalid_argument, "'messages[{}].content' must be a string", i);
      }
      request.messages.push_back({role, std::move(content)});
    }
  } else {
    if (!body.contains("prompt") || !body["prompt"].is_string()) return make_error(ErrorCode::invalid_argument, "'prompt' must be a string");
    request.prompt = body["prompt"].get<std::string>();
  }
  if (body.contains("stream")) {
    if (!body["stream"].is_boolean()) return make_error(ErrorCode::invalid_argument, "'stream' must be a boolean");
    request.stream = body["stream"].get<bool>();
  }
  auto& generation = request.generation;
  generation.max_tokens = 256;
  for (const char* field : {"max_tokens", "max_completion_tokens"}) {
    if (!body.contains(field) || body[field].is_null()) continue;
    if (!body[field].is_number_integer() || body[field].get<int64_t>() < 1 || body[field].get<int64_t>() > static_cast<int64_t>(kMaxTokensLimit)) {
      return make_error(ErrorCode::invalid_argument, "'{}' must be an integer from 1 to {}", field, kMaxTokensLimit);
    }
    generation.max_tokens = body[field].get<size_t>();
  }
  auto& sampling = generation.sampling;
  auto temperature = detail::number_in(body, "temperature", 1.0f, 0.0f, 2.0f);
  if (!temperature) return std::move(temperature).error();
  sampling.temperature = *temperature;
  auto top_p = detail::number_in(body, "top_p", 1.0f, 0.0f, 1.0f);
  if (!top_p) return std::move(top_p).error();
  if (*top_p == 0.0f) return make_error(ErrorCode::invalid_argument, "'top_p' must be greater than 0");
  sampling.top_p = *top_p;
  sampling.top_k = 0;
  auto presence = detail::number_in(body, "presence_penalty", 0.0f, -2.0f, 2.0f);
  if (!presence) return std::move(presence).error();
  sampling.presence_penalty = *presence;
  auto frequency = detail::number_in(body, "frequency_penalty", 0.0f, -2.0f, 2.0f);
  if (!frequency) return std::move(frequency).error();
  sampling.frequency_penalty = *frequency;
  if (body.contains("seed") && !body["seed"].is_null()) {
    if (!body["seed"].is_number_integer()) return make_error(ErrorCode::invalid_argument, "'seed' must be an integer");
    sampling.seed = static_cast<uint64_t>(body["seed"].get<int64_t>());
  } else {
    sampling.seed = std::random_device{}();
  }
  if (body.contains("stop") && !body["stop"].is_null()) {
    const auto& stop = body["stop"];
    if (stop.is_string()) {
      generation.stop_strings.push_back(stop.get<std::string>());
    } else if (stop.is_array() && stop.size() <= 4) {
      for (const auto& s : stop) {
        if (!s.is_string()) return make_error(ErrorCode::invalid_argument, "'stop' entries must be strings");
        generation.stop_strings.push_back(s.get<std::string>());
      }
    } else {
      return make_error(ErrorCode::invalid_argument, "'stop' must be a string or an array of up to 4 strings");
    }
  }
  return request;
}

}  // namespace apr::serve
