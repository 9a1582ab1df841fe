/// @file voxtral_config.hpp
/// @brief VoxtralConfig: the dims of a Voxtral-Realtime model (Mistral's params.json): causal
/// audio encoder, 4× adapter, Mistral-style decoder with time conditioning, streaming settings.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "apr/core/result.hpp"

namespace apr::models {

/// One transformer stack's dims.
struct VoxtralStack {
  size_t dim = 0;          ///< width
  size_t n_layers = 0;     ///< layers
  size_t n_heads = 0;      ///< query heads
  size_t n_kv_heads = 0;   ///< key/value heads
  size_t head_dim = 0;     ///< values per head
  size_t hidden_dim = 0;   ///< SwiGLU width
  size_t window = 0;       ///< sliding attention window (positions, self included)
  float rope_theta = 1e6f; ///< RoPE base (interleaved pairs)
  float norm_eps = 1e-5f;  ///< RMSNorm epsilon
};

/// Voxtral-Realtime hyper-parameters.
struct VoxtralConfig {
  VoxtralStack encoder;                 ///< causal audio encoder
  VoxtralStack decoder;                 ///< text decoder
  size_t vocab_size = 0;                ///< tokens (tied embeddings)
  size_t ada_dim = 0;                   ///< width of the time-conditioning MLP
  size_t num_mel_bins = 128;            ///< mel bands
  float global_log_mel_max = 1.5f;      ///< the log-mel clamp is this − 8
  size_t downsample_factor = 4;         ///< encoder frames per adapter output
  size_t samples_per_token = 1280;      ///< 16 kHz samples per audio token (12.5 Hz)
  size_t n_left_pad_tokens = 32;        ///< silent tokens before the audio
  size_t n_delay_tokens = 6;            ///< transcription delay in tokens (480 ms)
  size_t n_right_pad_tokens = 17;       ///< silent tokens after the audio
  int32_t bos_id = 1;                   ///< the `<s>` token id
  int32_t eos_id = 2;                   ///< the `</s>` token id
  int32_t streaming_pad_id = 32;        ///< [STREAMING_PAD]

  /// The transcription delay in milliseconds (a whole number of audio tokens).
  [[nodiscard]] size_t delay_ms() const noexcept { return n_delay_tokens * samples_per_token / 16; }

  /// Sets the transcription delay to `ms` (80 to 2400, a multiple of one audio token's 80 ms);
  /// the right padding keeps its margin beyond the delay.
  Result<void> set_delay_ms(size_t ms) {
    const size_t token_ms = samples_per_token / 16;
    if (ms < token_ms || ms > 2400 || ms % token_ms != 0) {
      return make_error(ErrorCode::invalid_argument, "transcription delay {} ms: expected a multiple of {} ms from {} to 2400", ms, token_ms, token_ms);
    }
    const size_t margin = n_right_pad_tokens > n_delay_tokens ? n_right_pad_tokens - n_delay_tokens : 0;
    n_delay_tokens = ms / token_ms;
    n_right_pad_tokens = n_delay_tokens + margin;
    return ok();
  }

  /// Reads Mistral's params.json; errors name the missing or bad field.
  static Result<VoxtralConfig> from_params_json(const nlohmann::json& params) {
    VoxtralConfig c;
    auto size_of = [](const nlohmann::json& j, const char* key, size_t& out) -> Result<void> {
      if (!j.contains(key) || !j[key].is_number_integer() || j[key].get<int64_t>() <= 0) {
        return make_error(ErrorCode::format, "voxtral params: '{}' is missing or not a positive integer", key);
      }
      out = j[key].get<size_t>();
      return ok();
    };
    auto stack = [&](const nlohmann::json& j, VoxtralStack& s) -> Result<void> {
      for (auto [key, target] : {std::pair{"dim", &s.dim}, std::pair{"n_layers", &s.n_layers}, std::pair{"n_heads", &s.n_heads},
                                 std::pair{"n_kv_heads", &s.n_kv_heads}, std::pair{"head_dim", &s.head_dim},
                                 std::pair{"hidden_dim", &s.hidden_dim}, std::pair{"sliding_window", &s.window}}) {
        auto status = size_of(j, key, *target);
        if (!status) return status;
      }
      s.rope_theta = j.value("rope_theta", 1e6f);
      s.norm_eps = j.value("norm_eps", 1e-5f);
      if (s.n_heads % s.n_kv_heads != 0 || s.head_dim % 2 != 0 || s.head_dim > 1024 || s.dim > 65536 || s.n_layers > 1024) {
        return make_error(ErrorCode::format, "voxtral params: inconsistent dims (heads {}, kv heads {}, head_dim {})", s.n_heads, s.n_kv_heads, s.head_dim);
      }
      return ok();
    };
    auto status = stack(params, c.decoder);
    if (!status) return std::move(status).error();
    const auto& multimodal = params.value("multimodal", nlohmann::json::object());
    const auto& whisper = multimodal.value("whisper_model_args", nlohmann::json::object());
    const auto& encoder = whisper.value("encoder_args", nlohmann::json::object());
    status = stack(encoder, c.encoder);
    if (!status) return std::move(status).error().with_context("encoder_args");
    status = size_of(params, "vocab_size", c.vocab_size);
    if (!status) return std::move(status).error();
    status = size_of(params, "ada_rms_norm_t_cond_dim", c.ada_dim);
    if (!status) return std::move(status).error();
    const auto& audio = encoder.value("audio_encoding_args", nlohmann::json::object());
    c.num_mel_bins = audio.value("num_mel_bins", size_t{128});
    c.global_log_mel_max = audio.value("global_log_mel_max", 1.5f);
    c.downsample_factor = whisper.value("downsample_args", nlohmann::json::object()).value("downsample_factor", size_t{4});
    const double frame_rate = audio.value("frame_rate", 12.5);
    c.samples_per_token = static_cast<size_t>(static_cast<double>(audio.value("sampling_rate", 16000)) / frame_rate);
    const auto& streaming = params.value("streaming", nlohmann::json::object());
    c.n_left_pad_tokens = streaming.value("n_left_pad_tokens", size_t{32});
    c.n_delay_tokens = streaming.value("n_delay_tokens", size_t{6});
    c.n_right_pad_tokens = streaming.value("n_right_pad_tokens", c.n_delay_tokens + 11);
    const auto& special = params.value("special_tokens", nlohmann::json::object());
    c.bos_id = special.value("bos", 1);
    c.eos_id = special.value("eos", 2);
    c.streaming_pad_id = special.value("streaming_pad", 32);
    if (c.num_mel_bins == 0 || c.num_mel_bins > 1024 || c.downsample_factor == 0 || c.samples_per_token % 160 != 0) {
      return make_error(ErrorCode::format, "voxtral params: audio settings out of range (mel bins {}, downsample {}, samples per token {})",
                        c.num_mel_bins, c.downsample_factor, c.samples_per_token);
    }
    return c;
  }
};

}  // namespace apr::models
