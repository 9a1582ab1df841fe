/// @file apr_wasm.cpp
/// @brief apr_wasm.h over the library: load_language_model, ChatSession and generate(), with the
/// reply streamed to JavaScript through Module.onText. Built by `make wasm` (examples/wasm/build.sh).
#include "apr_wasm.h"

#include <emscripten/emscripten.h>
#include <emscripten/heap.h>

#include <algorithm>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/core/thread_pool.hpp"
#include "apr/models/load.hpp"
#include "apr/models/model_text.hpp"
#include "apr/runtime/chat_session.hpp"
#include "apr/runtime/generator.hpp"

// Hands a finished piece of the reply to the page (Module.onText), on the calling thread.
EM_JS(void, apr_js_on_text, (const char* piece, size_t size), {
  if (Module.onText) Module.onText(UTF8ToString(piece, size));
});

namespace {

/// Most context the demo gives a model: the f32 KV cache of a Qwen2-0.5B-sized model is 25 MB.
constexpr size_t kMaxContext = 1024;

std::string& last_error() {
  static std::string message;
  return message;
}

}  // namespace

/// A model, the threads it runs on and its conversation.
struct apr_chat {
  std::unique_ptr<apr::ThreadPool> pool;             ///< threads the model runs on
  apr::models::LoadedModel loaded;                   ///< the model and its metadata
  std::optional<apr::runtime::ChatSession> session;  ///< when the file carries a tokenizer
  std::unique_ptr<apr::models::Sequence> sequence;   ///< otherwise: ids in, ids out
  size_t context = 0;                                ///< tokens the conversation may grow to
  std::string info;                                  ///< apr_chat_info's JSON
  std::string reply;                                 ///< the last JSON returned to JavaScript
};

namespace {

/// Opens the model and its conversation; errors as values.
apr::Result<std::unique_ptr<apr_chat>> open_chat(const std::string& path, size_t threads, size_t context) {
  auto chat = std::make_unique<apr_chat>();
  chat->pool = std::make_unique<apr::ThreadPool>(std::max<size_t>(threads, 1));
  apr::models::LoadOptions options;
  options.model.pool = chat->pool.get();
  auto loaded = apr::models::load_language_model(path, options);
  if (!loaded) return std::move(loaded).error();
  chat->loaded = std::move(loaded).value();
  const size_t limit = std::min(chat->loaded.model->max_context(), kMaxContext);
  chat->context = context == 0 ? limit : std::min(context, limit);
  nlohmann::json info = chat->loaded.model->describe();
  info["weight_dtype"] = std::string(apr::to_string(chat->loaded.weight_dtype));
  info["context"] = chat->context;
  info["threads"] = chat->pool->size();
  info["tokenizer"] = !chat->loaded.tokenizer_json.empty();
  if (info["tokenizer"]) {
    apr::runtime::ChatOptions chat_options;
    chat_options.context = chat->context;
    auto session = apr::runtime::ChatSession::create(chat->loaded, chat_options);
    if (!session) return std::move(session).error();
    chat->session.emplace(std::move(session).value());
  } else {
    chat->sequence = chat->loaded.model->new_sequence(chat->context);
  }
  chat->info = info.dump();
  return chat;
}

/// The reply's figures as the JSON apr_chat_send returns.
std::string result_json(const apr::runtime::GenerationResult& result) {
  return nlohmann::json{{"prompt_tokens", result.prompt_tokens},
                        {"tokens", result.tokens.size()},
                        {"prefill_ms", result.prefill_seconds * 1e3},
                        {"decode_ms", result.decode_seconds * 1e3},
                        {"tokens_per_second", result.tokens_per_second()},
                        {"stop", std::string(apr::runtime::finish_reason(result.stop_reason))}}
      .dump();
}

std::string error_json(std::string_view message) {
  last_error() = message;
  return nlohmann::json{{"error", message}}.dump();
}

/// One reply: through the chat session, or on raw ids when the file has no tokenizer.
std::string send(apr_chat& chat, std::string_view message, size_t max_tokens, float temperature, uint32_t seed) {
  const apr::runtime::TextCallback on_text = [](std::string_view piece, int32_t) {
    apr_js_on_text(piece.data(), piece.size());
    return true;
  };
  apr::runtime::GenerationOptions generation;
  generation.max_tokens = max_tokens;
  generation.sampling.temperature = temperature;
  generation.sampling.seed = seed;
  if (chat.session) {
    chat.session->set_generation(generation);
    auto result = chat.session->reply(message, on_text);
    if (!result) return error_json(result.error().message);
    return result_json(*result);
  }
  std::vector<int32_t> prompt;
  for (const unsigned char byte : message) prompt.push_back(static_cast<int32_t>(byte % chat.loaded.model->vocab_size()));
  if (prompt.empty()) prompt.push_back(0);
  if (prompt.size() + max_tokens > chat.context) return error_json(fmt::format("the prompt ({} ids) and {} new tokens do not fit the context of {}", prompt.size(), max_tokens, chat.context));
  (void)chat.sequence->truncate(0);
  auto result = apr::runtime::generate(*chat.loaded.model, *chat.sequence, prompt, generation,
                                       [](int32_t id) { return fmt::format(" {}", id); }, on_text);
  if (!result) return error_json(result.error().message);
  return result_json(*result);
}

}  // namespace

extern "C" {

EMSCRIPTEN_KEEPALIVE apr_chat* apr_chat_open(const char* path, int threads, int context) {
  try {
    if (path == nullptr) {
      last_error() = "no path given";
      return nullptr;
    }
    auto chat = open_chat(path, threads > 0 ? static_cast<size_t>(threads) : 1, context > 0 ? static_cast<size_t>(context) : 0);
    if (!chat) {
      last_error() = chat.error().message;
      return nullptr;
    }
    return chat->release();
  } catch (const std::exception& e) {
    last_error() = fmt::format("{}: {}", path, e.what());
    return nullptr;
  }
}

EMSCRIPTEN_KEEPALIVE const char* apr_last_error(void) { return last_error().c_str(); }

EMSCRIPTEN_KEEPALIVE const char* apr_chat_info(const apr_chat* chat) { return chat != nullptr ? chat->info.c_str() : "{}"; }

EMSCRIPTEN_KEEPALIVE const char* apr_chat_tokenize(apr_chat* chat, const char* text) {
  if (chat == nullptr || text == nullptr) return "{\"error\":\"apr_chat_tokenize: no chat or no text\"}";
  try {
    if (!chat->session) chat->reply = error_json("this model file carries no tokenizer");
    else chat->reply = nlohmann::json(chat->session->tokenizer().encode(text)).dump();
  } catch (const std::exception& e) {
    chat->reply = error_json(e.what());
  }
  return chat->reply.c_str();
}

EMSCRIPTEN_KEEPALIVE const char* apr_chat_send(apr_chat* chat, const char* message, int max_tokens, float temperature, uint32_t seed) {
  if (chat == nullptr || message == nullptr) {
    static std::string invalid;
    invalid = error_json("apr_chat_send: no chat or no message");
    return invalid.c_str();
  }
  try {
    chat->reply = send(*chat, message, static_cast<size_t>(std::max(max_tokens, 1)), std::max(temperature, 0.0f), seed);
  } catch (const std::exception& e) {
    chat->reply = error_json(e.what());
  }
  return chat->reply.c_str();
}

EMSCRIPTEN_KEEPALIVE void apr_chat_reset(apr_chat* chat) {
  if (chat == nullptr) return;
  if (chat->session) chat->session->reset();
  else (void)chat->sequence->truncate(0);
}

EMSCRIPTEN_KEEPALIVE uint32_t apr_memory_bytes(void) { return static_cast<uint32_t>(emscripten_get_heap_size()); }

EMSCRIPTEN_KEEPALIVE void apr_chat_close(apr_chat* chat) { delete chat; }

}  // extern "C"
