/// @file voxtral_config.hpp
/// @brief VoxtralConfig: the dims of a Voxtral-Realtime model (Mistral's params.json): causal
/// audio encoder, 4× adapter, Mistral-style decoder with time conditioning, streaming settings.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <optional>
#include <string>
#include <tuple>

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

  /// Mistral's params.json for these dims (from_params_json() reads it back to the same config).
  [[nodiscard]] nlohmann::json to_params_json() const {
    auto stack = [](const VoxtralStack& s) {
      return nlohmann::json{{"dim", s.dim}, {"n_layers", s.n_layers}, {"head_dim", s.head_dim}, {"hidden_dim", s.hidden_dim},
                            {"n_heads", s.n_heads}, {"n_kv_heads", s.n_kv_heads}, {"rope_theta", s.rope_theta},
                            {"norm_eps", s.norm_eps}, {"sliding_window", s.window}};
    };
    nlohmann::json params = stack(decoder);
    params.update({{"vocab_size", vocab_size}, {"tied_embeddings", true}, {"ada_rms_norm_t_cond_dim", ada_dim}});
    nlohmann::json encoder_args = stack(encoder);
    encoder_args["causal"] = true;
    encoder_args["audio_encoding_args"] = {{"sampling_rate", 16000}, {"frame_rate", 16000.0 / static_cast<double>(samples_per_token)},
                                           {"num_mel_bins", num_mel_bins}, {"hop_length", 160}, {"window_size", 400},
                                           {"global_log_mel_max", global_log_mel_max}};
    params["multimodal"] = {{"whisper_model_args", {{"encoder_args", encoder_args}, {"downsample_args", {{"downsample_factor", downsample_factor}}}}}};
    params["special_tokens"] = {{"bos", bos_id}, {"eos", eos_id}, {"streaming_pad", streaming_pad_id}};
    params["streaming"] = {{"n_left_pad_tokens", n_left_pad_tokens}, {"transcription_delay_ms", delay_ms()},
                           {"n_delay_tokens", n_delay_tokens}, {"n_right_pad_tokens", n_right_pad_tokens}};
    return params;
  }

  /// Reads Mistral's params.json; errors name the missing or bad field. Dims must be positive
  /// integers within sane limits; optional fields, when present, must have the right type and range.
  static Result<VoxtralConfig> from_params_json(const nlohmann::json& params) {
    static const nlohmann::json kEmpty = nlohmann::json::object();
    if (!params.is_object()) return make_error(ErrorCode::format, "voxtral params: not a JSON object");
    auto integer = [](const nlohmann::json& j, const char* key, std::optional<int64_t> fallback, int64_t low, int64_t high) -> Result<int64_t> {
      if (!j.contains(key) && fallback) {
        if (*fallback < low || *fallback > high) {
          return make_error(ErrorCode::format, "voxtral params: '{}' is missing and its default {} is outside {} to {}", key, *fallback, low, high);
        }
        return *fallback;
      }
      if (!j.contains(key) || !j[key].is_number_integer() || j[key].get<int64_t>() < low || j[key].get<int64_t>() > high) {
        return make_error(ErrorCode::format, "voxtral params: '{}' is {}; expected an integer from {} to {}", key,
                          j.contains(key) ? j[key].dump() : "missing", low, high);
      }
      return j[key].get<int64_t>();
    };
    auto number = [](const nlohmann::json& j, const char* key, double fallback, double low, double high) -> Result<double> {
      if (!j.contains(key)) return fallback;
      if (!j[key].is_number() || !(j[key].get<double>() >= low && j[key].get<double>() <= high)) {
        return make_error(ErrorCode::format, "voxtral params: '{}' is {}; expected a number from {} to {}", key, j[key].dump(), low, high);
      }
      return j[key].get<double>();
    };
    auto section = [](const nlohmann::json& j, const char* key) -> Result<const nlohmann::json*> {
      if (!j.contains(key)) return &kEmpty;
      if (!j[key].is_object()) return make_error(ErrorCode::format, "voxtral params: '{}' must be an object", key);
      return &j[key];
    };
    VoxtralConfig c;
    auto stack = [&](const nlohmann::json& j, VoxtralStack& s) -> Result<void> {
      const std::tuple<const char*, size_t*, int64_t> dims[] = {
          {"dim", &s.dim, 65536},           {"n_layers", &s.n_layers, 1024},      {"n_heads", &s.n_heads, 1024},
          {"n_kv_heads", &s.n_kv_heads, 1024}, {"head_dim", &s.head_dim, 1024},   {"hidden_dim", &s.hidden_dim, 1 << 20},
          {"sliding_window", &s.window, 1 << 20}};
      for (const auto& [key, target, high] : dims) {
        auto value = integer(j, key, std::nullopt, 1, high);
        if (!value) return std::move(value).error();
        *target = static_cast<size_t>(*value);
      }
      auto theta = number(j, "rope_theta", 1e6, 1.0, 1e12);
      if (!theta) return std::move(theta).error();
      auto eps = number(j, "norm_eps", 1e-5, 1e-12, 1.0);
      if (!eps) return std::move(eps).error();
      s.rope_theta = static_cast<float>(*theta);
      s.norm_eps = static_cast<float>(*eps);
      if (s.n_heads % s.n_kv_heads != 0 || s.head_dim % 2 != 0) {
        return make_error(ErrorCode::format, "voxtral params: inconsistent dims (heads {}, kv heads {}, head_dim {})", s.n_heads, s.n_kv_heads, s.head_dim);
      }
      return ok();
    };
    if (auto status = stack(params, c.decoder); !status) return std::move(status).error();
    auto multimodal = section(params, "multimodal");
    if (!multimodal) return std::move(multimodal).error();
    auto whisper = section(**multimodal, "whisper_model_args");
    if (!whisper) return std::move(whisper).error();
    auto encoder = section(**whisper, "encoder_args");
    if (!encoder) return std::move(encoder).error();
    if (auto status = stack(**encoder, c.encoder); !status) return std::move(status).error().with_context("encoder_args");
    auto vocab = integer(params, "vocab_size", std::nullopt, 1, int64_t{1} << 22);
    if (!vocab) return std::move(vocab).error();
    auto ada = integer(params, "ada_rms_norm_t_cond_dim", std::nullopt, 1, 65536);
    if (!ada) return std::move(ada).error();
    c.vocab_size = static_cast<size_t>(*vocab);
    c.ada_dim = static_cast<size_t>(*ada);
    auto audio = section(**encoder, "audio_encoding_args");
    if (!audio) return std::move(audio).error();
    auto downsample = section(**whisper, "downsample_args");
    if (!downsample) return std::move(downsample).error();
    auto streaming = section(params, "streaming");
    if (!streaming) return std::move(streaming).error();
    auto special = section(params, "special_tokens");
    if (!special) return std::move(special).error();
    const int64_t max_id = *vocab - 1;
    const std::tuple<const nlohmann::json*, const char*, int64_t, int64_t, int64_t> integers[] = {
        {*audio, "num_mel_bins", 128, 1, 1024},        {*downsample, "downsample_factor", 4, 1, 64},
        {*audio, "sampling_rate", 16000, 16000, 16000}, {*streaming, "n_left_pad_tokens", 32, 0, 1024},
        {*streaming, "n_delay_tokens", 6, 1, 1024},     {*special, "bos", 1, 0, max_id},
        {*special, "eos", 2, 0, max_id},                {*special, "streaming_pad", 32, 0, max_id}};
    int64_t values[std::size(integers)];
    for (size_t i = 0; i < std::size(integers); ++i) {
      const auto& [section_json, key, fallback, low, high] = integers[i];
      auto value = integer(*section_json, key, fallback, low, high);
      if (!value) return std::move(value).error();
      values[i] = *value;
    }
    c.num_mel_bins = static_cast<size_t>(values[0]);
    c.downsample_factor = static_cast<size_t>(values[1]);
    c.n_left_pad_tokens = static_cast<size_t>(values[3]);
    c.n_delay_tokens = static_cast<size_t>(values[4]);
    c.bos_id = static_cast<int32_t>(values[5]);
    c.eos_id = static_cast<int32_t>(values[6]);
    c.streaming_pad_id = static_cast<int32_t>(values[7]);
    auto right = integer(**streaming, "n_right_pad_tokens", values[4] + 11, 0, 2048);
    if (!right) return std::move(right).error();
    c.n_right_pad_tokens = static_cast<size_t>(*right);
    auto mel_max = number(**audio, "global_log_mel_max", 1.5, -100.0, 100.0);
    if (!mel_max) return std::move(mel_max).error();
    c.global_log_mel_max = static_cast<float>(*mel_max);
    auto frame_rate = number(**audio, "frame_rate", 12.5, 0.1, 1000.0);
    if (!frame_rate) return std::move(frame_rate).error();
    c.samples_per_token = static_cast<size_t>(std::llround(static_cast<double>(values[2]) / *frame_rate));
    if (c.samples_per_token == 0 || c.samples_per_token % 160 != 0) {
      return make_error(ErrorCode::format, "voxtral params: sampling_rate {} / frame_rate {} is not a whole number of 160-sample hops", values[2], *frame_rate);
    }
    return c;
  }
};

}  // namespace apr::models
