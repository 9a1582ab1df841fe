/// @file chat_session.hpp
/// @brief ChatSession: a multi-turn conversation with a chat model. Each reply renders the whole
/// conversation with the chat template, but only the tokens the KV cache does not already hold
/// are run through the model, so a turn costs its own tokens, not the history's.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "apr/models/model_text.hpp"
#include "apr/runtime/generator.hpp"

namespace apr::runtime {

/// How a chat session generates.
struct ChatOptions {
  GenerationOptions generation;  ///< per reply: max_tokens, sampling, stop ids and strings
  size_t context = 4096;         ///< tokens the conversation may grow to (KV cache size)
  std::string system;            ///< system message (empty: the template's default)
};

/// A conversation: history, the model's KV cache of it, and the reply loop.
class ChatSession {
 public:
  /// A session over `model` (kept by reference) with its tokenizer and chat template. When
  /// options.generation.stop_ids is empty it is filled with the tokenizer's end-of-turn ids.
  static Result<ChatSession> create(const models::LanguageModel& model, text::Tokenizer tokenizer, text::ChatTemplate chat_template,
                                    ChatOptions options) {
    if (options.context == 0) return make_error(ErrorCode::invalid_argument, "chat: context must be at least one token");
    if (options.generation.stop_ids.empty()) {
      for (const char* name : {"<|im_end|>", "<|endoftext|>"}) {
        if (auto id = tokenizer.token_to_id(name)) options.generation.stop_ids.push_back(*id);
      }
    }
    return ChatSession(model, std::move(tokenizer), std::move(chat_template), std::move(options));
  }

  /// A session over a loaded model (kept by reference) with the tokenizer, chat template and
  /// stop ids it carries or has beside it.
  static Result<ChatSession> create(const models::LoadedModel& loaded, ChatOptions options) {
    auto tokenizer = models::tokenizer_for(loaded);
    if (!tokenizer) return std::move(tokenizer).error();
    auto chat_template = models::chat_template_for(loaded);
    if (!chat_template) return std::move(chat_template).error();
    if (options.generation.stop_ids.empty()) options.generation.stop_ids = models::stop_ids_for(loaded, &*tokenizer);
    return create(*loaded.model, std::move(tokenizer).value(), std::move(chat_template).value(), std::move(options));
  }

  /// Adds the user's `message`, generates the assistant's reply (its text streamed to `on_text`
  /// as it becomes final) and adds it to the history. On failure the history is as before.
  Result<GenerationResult> reply(std::string_view message, const TextCallback& on_text = {}) {
    history_.push_back({"user", std::string(message)});
    auto result = generate_reply(on_text);
    if (!result) history_.pop_back();
    return result;
  }

  /// Generates the next replies with `generation` (budget, sampling); the session's stop ids and
  /// strings stay when it gives none.
  void set_generation(GenerationOptions generation) {
    if (generation.stop_ids.empty()) generation.stop_ids = std::move(options_.generation.stop_ids);
    if (generation.stop_strings.empty()) generation.stop_strings = std::move(options_.generation.stop_strings);
    options_.generation = std::move(generation);
  }

  /// Forgets the conversation (the system message stays).
  void reset() {
    history_.resize(options_.system.empty() ? 0 : 1);
    (void)sequence_->truncate(0);
    cached_.clear();
  }

  /// The messages so far, the system message first when one was given.
  [[nodiscard]] std::span<const text::ChatMessage> history() const noexcept { return history_; }
  /// Tokens of the conversation held in the KV cache.
  [[nodiscard]] size_t cached_tokens() const noexcept { return cached_.size(); }
  /// The tokenizer replies are decoded with.
  [[nodiscard]] const text::Tokenizer& tokenizer() const noexcept { return tokenizer_; }

 private:
  ChatSession(const models::LanguageModel& model, text::Tokenizer tokenizer, text::ChatTemplate chat_template, ChatOptions options)
      : model_(&model),
        tokenizer_(std::move(tokenizer)),
        template_(std::move(chat_template)),
        options_(std::move(options)),
        sequence_(model.new_sequence(options_.context)) {
    if (!options_.system.empty()) history_.push_back({"system", options_.system});
  }

  /// Renders the history, feeds what the cache lacks, samples the reply, records it.
  Result<GenerationResult> generate_reply(const TextCallback& on_text) {
    const auto prompt = tokenizer_.encode(template_.render(history_, true));
    if (prompt.size() + options_.generation.max_tokens > sequence_->capacity()) {
      return make_error(ErrorCode::invalid_argument, "chat: the conversation ({} tokens) and a reply of up to {} no longer fit the context of {}",
                        prompt.size(), options_.generation.max_tokens, sequence_->capacity());
    }
    size_t common = 0;  // the cached prefix is reused; the last prompt token is always fed, for its logits
    while (common < cached_.size() && common + 1 < prompt.size() && cached_[common] == prompt[common]) ++common;
    if (!sequence_->truncate(common)) {
      (void)sequence_->truncate(0);
      common = 0;
    }
    auto stream = tokenizer_.stream();
    auto result = generate(*model_, *sequence_, std::span(prompt).subspan(common), options_.generation,
                           [&](int32_t id) { return stream.push(id); }, on_text);
    if (!result) {
      (void)sequence_->truncate(0);
      cached_.clear();
      return result;
    }
    if (std::string rest = stream.flush(); !rest.empty()) {
      result->text += rest;
      if (on_text) (void)on_text(rest, -1);
    }
    result->prompt_tokens = prompt.size();
    history_.push_back({"assistant", result->text});
    cached_.assign(prompt.begin(), prompt.end());
    cached_.insert(cached_.end(), result->tokens.begin(), result->tokens.end());
    cached_.resize(std::min(cached_.size(), sequence_->length()));  // the last sampled token was never fed
    return result;
  }

  const models::LanguageModel* model_;
  text::Tokenizer tokenizer_;
  text::ChatTemplate template_;
  ChatOptions options_;
  std::unique_ptr<models::Sequence> sequence_;
  std::vector<text::ChatMessage> history_;
  std::vector<int32_t> cached_;  ///< the token ids whose keys and values the sequence holds
};

}  // namespace apr::runtime
