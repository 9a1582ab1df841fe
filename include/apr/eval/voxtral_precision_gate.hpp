/// @file voxtral_precision_gate.hpp
/// @brief The precision gate of a Voxtral conversion: both models encode the same synthetic
/// voiced signal and decode it with the same inputs (the source's greedy ids fed to both);
/// their logits at every position and their audio embeddings are compared as precision_gate()
/// compares a language model's.
#pragma once

#include <vector>

#include "apr/eval/whisper_precision_gate.hpp"
#include "apr/models/voxtral.hpp"

namespace apr::eval {

/// Compares `converted` with `source` (the same dims) against `thresholds` on
/// gate_voiced_signal(): audio embeddings, then the logits of the prompt's last position and of
/// every later one, each model fed the source's greedy id.
template <WeightDtype A, WeightDtype B>
Result<GateReport> voxtral_precision_gate(const models::VoxtralRealtime<A>& source, const models::VoxtralRealtime<B>& converted,
                                          const audio::LogMel& front_end, ThreadPool& pool, const GateThresholds& thresholds) {
  const models::VoxtralConfig& config = source.config();
  if (config.to_params_json() != converted.config().to_params_json()) return make_error(ErrorCode::validation, "precision gate: the Voxtral models' dims differ");
  const auto signal = gate_voiced_signal();
  auto mel = models::voxtral_log_mel(signal, config, front_end, pool);
  if (!mel) return std::move(mel).error();
  std::vector<std::vector<float>> hidden_a, hidden_b;
  auto embed = [&](const auto& model, std::vector<std::vector<float>>& out) -> Result<void> {
    auto encoded = model.encode(mel->values, mel->frames);
    if (!encoded) return std::move(encoded).error();
    auto adapted = model.adapt(*encoded);
    if (!adapted) return std::move(adapted).error();
    out.push_back(std::move(adapted).value());
    return ok();
  };
  if (auto status = embed(source, hidden_a); !status) return std::move(status).error();
  if (auto status = embed(converted, hidden_b); !status) return std::move(status).error();
  const size_t d = config.decoder.dim, vocab = config.vocab_size, positions = hidden_a[0].size() / d;
  if (positions <= source.prompt_length()) return make_error(ErrorCode::internal, "precision gate: the test signal gives no position after the prompt");
  auto state_a = source.start_decoder();
  auto state_b = converted.start_decoder();
  std::vector<float> logits_a, logits_b, row_a, row_b;
  source.decode_prompt(state_a, hidden_a[0], &row_a);
  converted.decode_prompt(state_b, hidden_b[0], &row_b);
  size_t rows = 0;
  while (true) {
    logits_a.insert(logits_a.end(), row_a.begin(), row_a.end());
    logits_b.insert(logits_b.end(), row_b.begin(), row_b.end());
    ++rows;
    if (state_a.position >= positions) break;
    state_b.token = state_a.token;  // the same input for both
    source.decode_step(state_a, std::span<const float>(hidden_a[0]).subspan(state_a.position * d, d), &row_a);
    converted.decode_step(state_b, std::span<const float>(hidden_b[0]).subspan(state_b.position * d, d), &row_b);
  }
  return compare_outputs(logits_a, logits_b, rows, vocab, hidden_a, hidden_b, thresholds);
}

}  // namespace apr::eval
