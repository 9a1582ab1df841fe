/// @file batching_model.hpp
/// @brief BatchingModel: a LanguageModel wrapper that merges the one-token decode steps which
/// concurrent threads make on their own sequences into one forward_batch() call, so N
/// conversations generated at once read each weight once per step instead of N times (decode is
/// bound by memory bandwidth). Callers keep calling forward() as before, e.g. through generate().
///
/// Policy: a step's leader waits until every sequence that is decoding has queued its token, or
/// until a short wait passes (half the last step's time, between 0.2 and 5 ms), so a peer that is
/// sampling or prefilling holds the others back by at most that much; then it runs the batch.
/// Prefill (several tokens) and calls asking for extra outputs go straight to the model.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <vector>

#include "apr/models/language_model.hpp"

namespace apr::runtime {

/// Limits of a BatchingModel.
struct BatchingOptions {
  size_t max_batch = 32;  ///< most sequences in one step
};

/// Merges concurrent single-token forward() calls into forward_batch() steps.
class BatchingModel final : public models::LanguageModel {
 public:
  /// Wraps `model` (shared: it must live as long as this and its sequences).
  explicit BatchingModel(std::shared_ptr<const models::LanguageModel> model, BatchingOptions options = {})
      : model_(std::move(model)), options_(options), state_(std::make_shared<State>()) {}

  [[nodiscard]] std::string_view architecture() const noexcept override { return model_->architecture(); }
  [[nodiscard]] size_t vocab_size() const noexcept override { return model_->vocab_size(); }
  [[nodiscard]] size_t max_context() const noexcept override { return model_->max_context(); }
  [[nodiscard]] nlohmann::json describe() const override { return model_->describe(); }
  [[nodiscard]] nlohmann::json expert_statistics() const override { return model_->expert_statistics(); }

  [[nodiscard]] std::unique_ptr<models::Sequence> new_sequence(size_t max_length) const override {
    return std::make_unique<BatchedSequence>(model_->new_sequence(max_length), state_);
  }

  Result<void> forward(models::Sequence& base, std::span<const int32_t> tokens, std::span<float> logits,
                       const models::ForwardOptions& options = {}) const override {
    auto* sequence = dynamic_cast<BatchedSequence*>(&base);
    if (sequence == nullptr) return make_error(ErrorCode::invalid_argument, "batching model: sequence was made by another model");
    const bool plain = !options.all_logits && options.hidden_states == nullptr && options.router_trace == nullptr;
    if (tokens.size() != 1 || !plain) {
      sequence->set_decoding(false);
      return model_->forward(*sequence->inner, tokens, logits, options);
    }
    if (logits.size() < model_->vocab_size()) {
      return make_error(ErrorCode::invalid_argument, "batching model: logits buffer holds {} floats, needs {}", logits.size(), model_->vocab_size());
    }
    sequence->set_decoding(true);
    return step(*sequence->inner, tokens[0], logits.data());
  }

  Result<void> forward_batch(std::span<models::Sequence* const> sequences, std::span<const int32_t> tokens,
                             std::span<float* const> logits) const override {
    std::vector<models::Sequence*> inner;
    for (auto* sequence : sequences) {
      auto* batched = dynamic_cast<BatchedSequence*>(sequence);
      if (batched == nullptr) return make_error(ErrorCode::invalid_argument, "batching model: sequence was made by another model");
      inner.push_back(batched->inner.get());
    }
    return model_->forward_batch(inner, tokens, logits);
  }

  /// Steps run so far and the sequences they held (their ratio is the mean batch size).
  [[nodiscard]] std::pair<size_t, size_t> steps_and_rows() const {
    std::lock_guard lock(state_->mutex);
    return {state_->steps, state_->rows};
  }

 private:
  /// What the wrapper's sequences and calls share.
  struct State {
    std::mutex mutex;
    std::condition_variable changed;
    size_t decoding = 0;  ///< sequences whose last call was a decode step
    bool leading = false;  ///< a step is being gathered or run
    std::chrono::duration<double> last_step{0.0};
    size_t steps = 0;
    size_t rows = 0;
  };

  /// A token waiting for a step.
  struct Request {
    models::Sequence* sequence;
    int32_t token;
    float* logits;
    bool done = false;
    Result<void> status = ok();
  };

  /// The model's sequence, counted while it decodes.
  struct BatchedSequence final : models::Sequence {
    BatchedSequence(std::unique_ptr<models::Sequence> sequence, std::shared_ptr<State> state) : inner(std::move(sequence)), state(std::move(state)) {}
    ~BatchedSequence() override { set_decoding(false); }
    [[nodiscard]] size_t length() const noexcept override { return inner->length(); }
    [[nodiscard]] size_t capacity() const noexcept override { return inner->capacity(); }
    Result<void> truncate(size_t length) override { return inner->truncate(length); }

    /// Counts this sequence among the decoding ones, or not.
    void set_decoding(bool now) {
      if (now == decoding) return;
      std::lock_guard lock(state->mutex);
      decoding = now;
      if (now) ++state->decoding;
      else --state->decoding;
      state->changed.notify_all();
    }

    std::unique_ptr<models::Sequence> inner;  ///< the wrapped model's sequence
    std::shared_ptr<State> state;             ///< shared with the model
    bool decoding = false;                    ///< counted in state->decoding
  };

  /// Queues one token and returns once a step (led by this thread or another) has run it.
  Result<void> step(models::Sequence& sequence, int32_t token, float* logits) const {
    Request request{&sequence, token, logits};
    State& s = *state_;
    std::unique_lock lock(s.mutex);
    pending_.push_back(&request);
    s.changed.notify_all();
    while (!request.done) {
      if (s.leading) {
        s.changed.wait(lock);
        continue;
      }
      s.leading = true;
      const auto wait = std::clamp(s.last_step / 2, std::chrono::duration<double>(2e-4), std::chrono::duration<double>(5e-3));
      s.changed.wait_for(lock, wait, [&] { return pending_.size() >= std::min(s.decoding, options_.max_batch); });
      const size_t count = std::min(pending_.size(), std::max<size_t>(options_.max_batch, 1));
      std::vector<Request*> batch(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(count));
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(count));
      lock.unlock();
      std::vector<models::Sequence*> sequences;
      std::vector<int32_t> tokens;
      std::vector<float*> outputs;
      for (Request* r : batch) {
        sequences.push_back(r->sequence);
        tokens.push_back(r->token);
        outputs.push_back(r->logits);
      }
      const auto start = std::chrono::steady_clock::now();
      auto status = model_->forward_batch(sequences, tokens, outputs);
      const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
      if (!status && batch.size() > 1) {  // one bad request must not fail its neighbours: run each alone
        for (Request* r : batch) r->status = model_->forward_batch(std::span(&r->sequence, 1), std::span(&r->token, 1), std::span(&r->logits, 1));
      } else {
        for (Request* r : batch) r->status = status;
      }
      lock.lock();
      for (Request* r : batch) r->done = true;
      s.last_step = took;
      ++s.steps;
      s.rows += batch.size();
      s.leading = false;
      s.changed.notify_all();
    }
    return request.status;
  }

  std::shared_ptr<const models::LanguageModel> model_;
  BatchingOptions options_;
  std::shared_ptr<State> state_;
  mutable std::vector<Request*> pending_;  ///< guarded by state_->mutex
};

}  // namespace apr::runtime
