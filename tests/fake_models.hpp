// Language models for tests that need predictable logits without weights.
#pragma once

#include <algorithm>
#include <memory>
#include <vector>

#include "apr/models/language_model.hpp"

namespace apr::test {

/// After n tokens have been fed, predicts script[n] (logit 10, others 0; the last entry repeats);
/// with an empty script every logit is 0 (uniform).
class ScriptedModel final : public models::LanguageModel {
 public:
  /// A model over `vocab` tokens following `script`.
  explicit ScriptedModel(std::vector<int32_t> script, size_t vocab = 16) : script_(std::move(script)), vocab_(vocab) {}

  /// The sequence state: only a length.
  struct State final : models::Sequence {
    size_t used = 0;  ///< tokens fed
    size_t cap = 0;   ///< capacity
    size_t length() const noexcept override { return used; }
    size_t capacity() const noexcept override { return cap; }
    Result<void> truncate(size_t n) override {
      used = n;
      return ok();
    }
  };

  std::string_view architecture() const noexcept override { return "scripted"; }
  size_t vocab_size() const noexcept override { return vocab_; }
  size_t max_context() const noexcept override { return 1 << 20; }
  nlohmann::json describe() const override { return {{"architecture", "scripted"}}; }
  std::unique_ptr<models::Sequence> new_sequence(size_t n) const override {
    auto s = std::make_unique<State>();
    s->cap = n;
    return s;
  }
  Result<void> forward(models::Sequence& s, std::span<const int32_t> tokens, std::span<float> logits,
                       const models::ForwardOptions& options) const override {
    auto& state = static_cast<State&>(s);
    const size_t rows = options.all_logits ? tokens.size() : 1;
    std::fill(logits.begin(), logits.begin() + static_cast<std::ptrdiff_t>(rows * vocab_), 0.0f);
    state.used += tokens.size();
    if (!script_.empty()) {
      for (size_t r = 0; r < rows; ++r) {
        const size_t position = state.used - rows + r + 1;
        logits[r * vocab_ + static_cast<size_t>(script_[std::min(position, script_.size() - 1)])] = 10.0f;
      }
    }
    ++forward_calls;
    return ok();
  }

  mutable int forward_calls = 0;  ///< how often forward ran

 private:
  std::vector<int32_t> script_;
  size_t vocab_;
};

}  // namespace apr::test
