/// @file chat_template.hpp
/// @brief ChatTemplate: renders a conversation as ChatML (Qwen2's format), with the model's
/// default system message taken from its Jinja template.
#pragma once

#include <regex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "apr/core/result.hpp"

namespace apr::text {

/// One message of a conversation.
struct ChatMessage {
  std::string role;     ///< "system", "user", "assistant" or "tool"
  std::string content;  ///< its text
};

/// Qwen2's default system message.
inline constexpr std::string_view kQwen2DefaultSystem = "You are a helpful assistant.";

/// A ChatML renderer: <|im_start|>role\ncontent<|im_end|>\n per message, a system message first.
class ChatTemplate {
 public:
  /// ChatML with `default_system` used when the conversation has no system message.
  explicit ChatTemplate(std::string default_system = std::string(kQwen2DefaultSystem), std::string source = {})
      : default_system_(std::move(default_system)), source_(std::move(source)) {}

  /// Recognises a ChatML Jinja template (as in tokenizer_config.json) and reads its default
  /// system message; other templates are refused (apr renders ChatML only).
  static Result<ChatTemplate> from_jinja(std::string_view jinja) {
    if (jinja.find("<|im_start|>") == std::string_view::npos) {
      return make_error(ErrorCode::unsupported, "chat template is not ChatML (no <|im_start|>); apr renders ChatML templates only");
    }
    static const std::regex default_system(R"(<\|im_start\|>system\\n([^'"+]*?)<\|im_end\|>)");
    std::match_results<std::string_view::const_iterator> match;
    std::string system;
    if (std::regex_search(jinja.begin(), jinja.end(), match, default_system)) {
      system = match[1].str();
      for (size_t at = system.find("\\n"); at != std::string::npos; at = system.find("\\n", at + 1)) system.replace(at, 2, "\n");
    }
    return ChatTemplate(system, std::string(jinja));
  }

  /// The conversation as a prompt; with `add_generation_prompt` it ends ready for the assistant.
  [[nodiscard]] std::string render(std::span<const ChatMessage> messages, bool add_generation_prompt) const {
    std::string out;
    size_t first = 0;
    if (!messages.empty() && messages[0].role == "system") {
      out += "<|im_start|>system\n" + messages[0].content + "<|im_end|>\n";
      first = 1;
    } else if (!default_system_.empty()) {
      out += "<|im_start|>system\n" + default_system_ + "<|im_end|>\n";
    }
    for (size_t i = first; i < messages.size(); ++i) {
      const ChatMessage& message = messages[i];
      if (message.role == "tool") {
        if (i == 0 || messages[i - 1].role != "tool") out += "<|im_start|>user";
        out += "\n<tool_response>\n" + message.content + "\n</tool_response>";
        if (i + 1 == messages.size() || messages[i + 1].role != "tool") out += "<|im_end|>\n";
      } else {
        out += "<|im_start|>" + message.role + "\n" + message.content + "<|im_end|>\n";
      }
    }
    if (add_generation_prompt) out += "<|im_start|>assistant\n";
    return out;
  }

  /// The system message used when none is given.
  [[nodiscard]] const std::string& default_system() const noexcept { return default_system_; }
  /// The Jinja source it was read from (empty when built directly), to store in APR metadata.
  [[nodiscard]] const std::string& source() const noexcept { return source_; }

 private:
  std::string default_system_;
  std::string source_;
};

}  // namespace apr::text
