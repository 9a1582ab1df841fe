/// @file language_model.hpp
/// @brief LanguageModel: what generation, evaluation, the CLI and the server need of a causal LM.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "apr/core/result.hpp"

namespace apr::models {

/// The state of one token sequence: its KV cache and scratch memory, owned by the caller.
class Sequence {
 public:
  virtual ~Sequence() = default;
  /// Tokens processed so far (the position of the next token).
  [[nodiscard]] virtual size_t length() const noexcept = 0;
  /// Most tokens this sequence can hold.
  [[nodiscard]] virtual size_t capacity() const noexcept = 0;
  /// Forgets everything after the first `length` tokens (error if they are no longer cached).
  virtual Result<void> truncate(size_t length) = 0;
};

/// The routing decisions of a mixture-of-experts forward pass, per layer (empty for dense layers).
struct RouterTrace {
  std::vector<std::vector<float>> logits;     ///< per layer: [tokens][experts] router logits
  std::vector<std::vector<int32_t>> experts;  ///< per layer: [tokens][top_k] chosen experts, best first
  std::vector<std::vector<float>> weights;    ///< per layer: [tokens][top_k] their routing weights
};

/// What a forward pass reports besides logits.
struct ForwardOptions {
  bool all_logits = false;                              ///< logits for every input token, not just the last
  std::vector<std::vector<float>>* hidden_states = nullptr;  ///< if set: embeddings, each layer's output, final norm
  RouterTrace* router_trace = nullptr;                  ///< if set (MoE models): every layer's routing
};

/// A causal language model: tokens in, next-token logits out. Immutable once loaded, so one
/// model can serve many sequences from many threads.
class LanguageModel {
 public:
  virtual ~LanguageModel() = default;
  /// Architecture name ("qwen2", "qwen2_moe").
  [[nodiscard]] virtual std::string_view architecture() const noexcept = 0;
  /// Number of logits per position.
  [[nodiscard]] virtual size_t vocab_size() const noexcept = 0;
  /// Longest context the model supports.
  [[nodiscard]] virtual size_t max_context() const noexcept = 0;
  /// The model's hyper-parameters as JSON (for inspection and the server).
  [[nodiscard]] virtual nlohmann::json describe() const = 0;
  /// A fresh sequence that can hold `max_length` tokens.
  [[nodiscard]] virtual std::unique_ptr<Sequence> new_sequence(size_t max_length) const = 0;
  /// Appends `tokens` to `sequence` and writes the logits of the last token (or of every token
  /// with options.all_logits) into `logits` (vocab_size() floats per position).
  virtual Result<void> forward(Sequence& sequence, std::span<const int32_t> tokens, std::span<float> logits,
                               const ForwardOptions& options = {}) const = 0;
  /// One decode step for several sequences at once: appends tokens[i] to *sequences[i] and writes
  /// its next-token logits to logits[i] (vocab_size() floats each). Models that can batch read
  /// each weight once for all of them; the default runs forward() per sequence.
  virtual Result<void> forward_batch(std::span<Sequence* const> sequences, std::span<const int32_t> tokens,
                                     std::span<float* const> logits) const {
    if (sequences.size() != tokens.size() || sequences.size() != logits.size()) {
      return make_error(ErrorCode::invalid_argument, "forward_batch: {} sequences, {} tokens and {} logits buffers (expected as many of each)",
                        sequences.size(), tokens.size(), logits.size());
    }
    for (size_t i = 0; i < sequences.size(); ++i) {
      if (auto status = forward(*sequences[i], tokens.subspan(i, 1), std::span<float>(logits[i], vocab_size())); !status) return status;
    }
    return ok();
  }
  /// Routing statistics accumulated over every forward pass so far (mixture-of-experts models;
  /// null for dense ones): per-layer expert counts, load-balance loss, entropy, overflow.
  [[nodiscard]] virtual nlohmann::json expert_statistics() const { return nullptr; }
};

}  // namespace apr::models
