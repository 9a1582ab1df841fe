/// @file whisper_precision_gate.hpp
/// @brief The precision gate of a Whisper conversion: both models encode the log-mel of the
/// same synthetic voiced signal and decode the same tokens; their logits and encoder outputs
/// are compared as precision_gate() compares a language model's.
#pragma once

#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "apr/audio/mel.hpp"
#include "apr/core/thread_pool.hpp"
#include "apr/eval/precision_gate.hpp"
#include "apr/models/whisper.hpp"

namespace apr::eval {

/// A deterministic voiced test signal at 16 kHz: 3 s of a 12-harmonic tone whose pitch glides
/// from 110 to 220 Hz, the harmonics' weights moving like formants, with faint pseudo-random noise.
inline std::vector<float> gate_voiced_signal() {
  constexpr size_t samples = 3 * audio::kSampleRate;
  std::vector<float> out(samples);
  double phase = 0.0;
  uint64_t state = 0x2545f4914f6cdd1dull;
  for (size_t i = 0; i < samples; ++i) {
    const double t = static_cast<double>(i) / audio::kSampleRate;
    phase += 2.0 * std::numbers::pi * (110.0 + 110.0 * t / 3.0) / audio::kSampleRate;
    double value = 0.0;
    for (int k = 1; k <= 12; ++k) {
      const double formant = 3.0 + 2.0 * std::sin(2.0 * std::numbers::pi * 0.7 * t);
      value += std::exp(-std::abs(k - formant) / 2.0) * std::sin(k * phase) / k;
    }
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    const double noise = static_cast<double>(state >> 40) / static_cast<double>(1ull << 24) - 0.5;
    out[i] = static_cast<float>(0.3 * value + 0.01 * noise);
  }
  return out;
}

/// Compares `converted` with `source` against `thresholds`: the encoder outputs for the first
/// window of gate_voiced_signal()'s log-mel (made by `front_end`, zero-padded as transcription
/// pads it) and the decoder logits of every position of gate_tokens(vocab, 32).
inline Result<GateReport> whisper_precision_gate(const models::WhisperModel& source, const models::WhisperModel& converted,
                                                 const audio::LogMel& front_end, const GateThresholds& thresholds) {
  const models::WhisperConfig& config = source.config();
  if (config.vocab_size != converted.config().vocab_size || config.d_model != converted.config().d_model) {
    return make_error(ErrorCode::validation, "precision gate: the Whisper models' dims differ");
  }
  if (front_end.n_mels() != config.num_mel_bins) {
    return make_error(ErrorCode::invalid_argument, "precision gate: the front end makes {} mel bands, the model takes {}", front_end.n_mels(),
                      config.num_mel_bins);
  }
  const auto signal = gate_voiced_signal();
  auto mel = front_end.compute(signal, audio::kWindowSamples, ThreadPool::global());
  if (!mel) return std::move(mel).error();
  const size_t window_frames = config.input_frames(), content = signal.size() / audio::kHopLength;
  std::vector<float> window(config.num_mel_bins * window_frames, 0.0f);
  for (size_t m = 0; m < config.num_mel_bins; ++m) {
    const auto band = mel->band(m);
    std::copy_n(band.begin(), std::min(content, window_frames), window.begin() + static_cast<std::ptrdiff_t>(m * window_frames));
  }
  const auto tokens = gate_tokens(config.vocab_size, 32);
  std::vector<size_t> rows(tokens.size());
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = i;
  std::vector<float> logits_a(tokens.size() * config.vocab_size), logits_b(logits_a.size());
  std::vector<std::vector<float>> hidden_a, hidden_b;
  for (auto [model, logits, hidden] : {std::tuple{&source, &logits_a, &hidden_a}, std::tuple{&converted, &logits_b, &hidden_b}}) {
    auto audio = model->new_audio();
    auto status = model->encode(window, *audio);
    if (!status) return std::move(status).error();
    hidden->emplace_back(audio->features().begin(), audio->features().end());
    auto state = model->new_decoder_state(1);
    status = model->decode(*state, *audio, tokens, 1, *logits, {.logit_rows = rows});
    if (!status) return std::move(status).error();
  }
  return compare_outputs(logits_a, logits_b, tokens.size(), config.vocab_size, hidden_a, hidden_b, thresholds);
}

}  // namespace apr::eval
