/// @file generator.hpp
/// @brief generate(): the token-by-token generation loop over a LanguageModel, with sampling,
/// stop ids, stop strings (held back while they may still be completing), a token budget,
/// cancellation and a streaming callback.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "apr/core/result.hpp"
#include "apr/models/language_model.hpp"
#include "apr/runtime/sampler.hpp"

namespace apr::runtime {

/// Why generation ended.
enum class StopReason {
  max_tokens,   ///< the token budget was used up
  stop_token,   ///< a stop id (e.g. end of sequence) was sampled
  stop_string,  ///< the text reached a stop string
  context_full, ///< the sequence has no room left
  cancelled,    ///< the callback asked to stop
};

/// "length", "stop", ... as OpenAI's finish_reason spells them.
constexpr std::string_view finish_reason(StopReason reason) {
  switch (reason) {
    case StopReason::max_tokens:
    case StopReason::context_full: return "length";
    case StopReason::stop_token:
    case StopReason::stop_string: return "stop";
    case StopReason::cancelled: return "cancelled";
  }
  return "stop";
}

/// What to generate.
struct GenerationOptions {
  size_t max_tokens = 256;                ///< most new tokens
  SamplingOptions sampling;               ///< how to pick each token
  std::vector<int32_t> stop_ids;          ///< ids that end generation (not included in the text)
  std::vector<std::string> stop_strings;  ///< text that ends generation (cut from the text)
};

/// What was generated.
struct GenerationResult {
  std::vector<int32_t> tokens;   ///< new token ids (a stop id is not included)
  std::string text;              ///< their text, cut before a stop string
  size_t prompt_tokens = 0;      ///< tokens fed before generation
  StopReason stop_reason = StopReason::max_tokens;  ///< why it ended
  double prefill_seconds = 0.0;  ///< time to process the prompt
  double decode_seconds = 0.0;   ///< time spent generating
  /// New tokens per second of decoding.
  [[nodiscard]] double tokens_per_second() const {
    return decode_seconds > 0.0 ? static_cast<double>(tokens.size()) / decode_seconds : 0.0;
  }
};

/// Text of one new token, given incrementally (a tokenizer's streaming decoder: it may return ""
/// while a UTF-8 sequence is incomplete).
using TokenText = std::function<std::string(int32_t id)>;
/// Receives each new piece of text as it becomes final, with the token that completed it;
/// return false to cancel.
using TextCallback = std::function<bool(std::string_view piece, int32_t id)>;

/// Runs `prompt` through `model` on `sequence`, then samples up to options.max_tokens tokens.
/// `token_text` turns ids into text (needed for stop strings and the text result; may be empty).
inline Result<GenerationResult> generate(const models::LanguageModel& model, models::Sequence& sequence,
                                         std::span<const int32_t> prompt, const GenerationOptions& options,
                                         const TokenText& token_text = {}, const TextCallback& on_text = {}) {
  auto valid = options.sampling.validate();
  if (!valid) return std::move(valid).error();
  if (prompt.empty()) return make_error(ErrorCode::invalid_argument, "generate: the prompt is empty");
  GenerationResult result;
  result.prompt_tokens = prompt.size();
  std::vector<float> logits(model.vocab_size());
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  Sampler sampler(options.sampling);
  using Clock = std::chrono::steady_clock;
  auto start = Clock::now();
  auto status = model.forward(sequence, prompt, logits);
  if (!status) return std::move(status).error();
  result.prefill_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  start = Clock::now();

  std::string pending;  // text not yet emitted: it may be the start of a stop string
  auto emit = [&](std::string_view piece, int32_t id) {
    result.text += piece;
    return !on_text || piece.empty() || on_text(piece, id);
  };
  // Length of the longest suffix of `pending` that is a proper prefix of some stop string.
  auto held_back = [&] {
    size_t hold = 0;
    for (const auto& stop : options.stop_strings) {
      for (size_t n = std::min(stop.size() - 1, pending.size()); n > hold; --n) {
        if (pending.compare(pending.size() - n, n, stop, 0, n) == 0) {
          hold = n;
          break;
        }
      }
    }
    return hold;
  };

  bool stopped = false;
  while (!stopped) {
    if (result.tokens.size() >= options.max_tokens) {
      result.stop_reason = StopReason::max_tokens;
      break;
    }
    const int32_t id = sampler.sample(logits, history);
    if (std::find(options.stop_ids.begin(), options.stop_ids.end(), id) != options.stop_ids.end()) {
      result.stop_reason = StopReason::stop_token;
      break;
    }
    result.tokens.push_back(id);
    history.push_back(id);
    if (token_text) {
      pending += token_text(id);
      for (const auto& stop : options.stop_strings) {
        const size_t at = stop.empty() ? std::string::npos : pending.find(stop);
        if (at != std::string::npos) {
          pending.resize(at);
          result.stop_reason = StopReason::stop_string;
          stopped = true;
        }
      }
      const size_t keep = stopped ? 0 : held_back();
      if (!emit(std::string_view(pending).substr(0, pending.size() - keep), id)) {
        result.stop_reason = StopReason::cancelled;
        stopped = true;
      }
      pending.erase(0, pending.size() - keep);
      if (stopped) break;
    } else if (on_text && !on_text({}, id)) {
      result.stop_reason = StopReason::cancelled;
      break;
    }
    if (sequence.length() >= sequence.capacity()) {
      result.stop_reason = StopReason::context_full;
      break;
    }
    if (result.tokens.size() >= options.max_tokens) continue;
    status = model.forward(sequence, std::span(&id, 1), logits);
    if (!status) return std::move(status).error();
  }
  if (!pending.empty() && result.stop_reason != StopReason::stop_string) emit(pending, -1);
  result.decode_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace apr::runtime
