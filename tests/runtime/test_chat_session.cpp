// ChatSession on the qwen2-micro fixture (random weights, real Qwen2 tokenizer and ChatML
// template): a turn reuses the cached conversation and still replies exactly as a fresh greedy
// generation over the whole rendered prompt; reset and overflow leave a usable session.
#include <catch2/catch.hpp>

#include <string>

#include "apr/runtime/chat_session.hpp"
#include "test_support.hpp"

using namespace apr;

namespace {

runtime::ChatOptions greedy_options(size_t context, size_t max_tokens) {
  runtime::ChatOptions options;
  options.generation.max_tokens = max_tokens;
  options.generation.sampling = runtime::SamplingOptions::greedy();
  options.context = context;
  return options;
}

/// The reply a fresh sequence gives to the whole rendered conversation (no cache reuse).
std::vector<int32_t> fresh_reply(const models::LoadedModel& loaded, std::span<const text::ChatMessage> history, size_t max_tokens) {
  auto tokenizer = models::tokenizer_for(loaded);
  REQUIRE(tokenizer);
  auto chat_template = models::chat_template_for(loaded);
  REQUIRE(chat_template);
  const auto prompt = tokenizer->encode(chat_template->render(history, true));
  runtime::GenerationOptions options;
  options.max_tokens = max_tokens;
  options.sampling = runtime::SamplingOptions::greedy();
  options.stop_ids = models::stop_ids_for(loaded, &*tokenizer);
  auto sequence = loaded.model->new_sequence(prompt.size() + max_tokens);
  auto result = runtime::generate(*loaded.model, *sequence, prompt, options);
  REQUIRE(result);
  return result->tokens;
}

}  // namespace

TEST_CASE("a chat turn reuses the cache and replies as a fresh generation would", "[runtime][chat]") {
  auto loaded = models::load_language_model(test::fixture("qwen2/qwen2-micro"));
  REQUIRE(loaded);
  auto session = runtime::ChatSession::create(*loaded, greedy_options(1024, 12));
  REQUIRE(session);
  std::string streamed;
  auto first = session->reply("Hello, who are you?", [&](std::string_view piece, int32_t) {
    streamed += piece;
    return true;
  });
  REQUIRE(first);
  CHECK(streamed == first->text);
  CHECK(first->tokens == fresh_reply(*loaded, std::vector<text::ChatMessage>{{"user", "Hello, who are you?"}}, 12));
  const size_t cached_after_first = session->cached_tokens();
  CHECK(cached_after_first >= first->prompt_tokens);

  auto second = session->reply("Tell me more.");
  REQUIRE(second);
  REQUIRE(session->history().size() == 4);
  CHECK(session->history()[1].role == "assistant");
  CHECK(session->history()[1].content == first->text);
  // the second turn fed only what the cache lacked, yet matches a full fresh run
  const std::vector<text::ChatMessage> conversation(session->history().begin(), session->history().begin() + 3);
  CHECK(second->tokens == fresh_reply(*loaded, conversation, 12));
  CHECK(session->cached_tokens() > cached_after_first);

  session->reset();
  CHECK(session->history().empty());
  CHECK(session->cached_tokens() == 0);
  auto again = session->reply("Hello, who are you?");
  REQUIRE(again);
  CHECK(again->tokens == first->tokens);
}

TEST_CASE("a conversation that outgrows the context is refused and the session stays usable", "[runtime][chat]") {
  auto loaded = models::load_language_model(test::fixture("qwen2/qwen2-micro"));
  REQUIRE(loaded);
  auto options = greedy_options(64, 8);
  options.system = "Be brief.";
  auto session = runtime::ChatSession::create(*loaded, options);
  REQUIRE(session);
  REQUIRE(session->history().size() == 1);
  auto too_long = session->reply(std::string(400, 'a'));
  REQUIRE_FALSE(too_long);
  CHECK_THAT(too_long.error().message, Catch::Contains("context of 64"));
  CHECK(session->history().size() == 1);  // the refused message was not kept
  auto fits = session->reply("Hi");
  REQUIRE(fits);
  CHECK(session->history().size() == 3);
  session->reset();
  CHECK(session->history().size() == 1);  // the system message stays
  CHECK_FALSE(runtime::ChatSession::create(*loaded, greedy_options(0, 8)));
}
