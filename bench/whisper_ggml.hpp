// write_whisper_ggml(): a Whisper model held under Hugging Face names (what synthesize_whisper
// makes) written as whisper.cpp's own model file (the "ggml" binary its loader reads), so
// bench/peers/whisper.sh times whisper.cpp on the very weights bench_whisper times apr on.
//
// Layout, all little-endian: magic 0x67676d6c; 11 int32 hyper-parameters (n_vocab, n_audio_ctx,
// n_audio_state, n_audio_head, n_audio_layer, n_text_ctx, n_text_state, n_text_head,
// n_text_layer, n_mels, ftype); the mel filterbank (int32 n_mel, int32 n_fft, floats); the
// vocabulary (int32 count, then length-prefixed tokens: none here, whisper.cpp then names every
// id itself); then tensors one after another: int32 n_dims, int32 name length, int32 ggml type,
// int32 ne[n_dims] (innermost first), the name, the data. whisper.cpp fixes each tensor's type
// from ftype: 2-D matrices (token embedding included) in the weight type, convolution kernels
// in F16 (F32 for an F32 model), positional embeddings, norms and biases in F32.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "apr/audio/mel.hpp"
#include "apr/core/quantize.hpp"
#include "apr/format/apr_writer.hpp"
#include "apr/format/tensor_file.hpp"
#include "apr/format/tensor_values.hpp"
#include "apr/models/whisper_config.hpp"

namespace apr::bench {

/// whisper.cpp's name for the Hugging Face Whisper tensor `name` (empty when it has none).
inline std::string whisper_cpp_name(std::string name) {
  const std::pair<std::string, std::string> kWhole[] = {
      {"model.encoder.embed_positions.weight", "encoder.positional_embedding"},
      {"model.decoder.embed_positions.weight", "decoder.positional_embedding"},
      {"model.decoder.embed_tokens.weight", "decoder.token_embedding.weight"},
      {"model.encoder.layer_norm.", "encoder.ln_post."},
      {"model.decoder.layer_norm.", "decoder.ln."},
  };
  for (const auto& [from, to] : kWhole) {
    if (name.starts_with(from)) return to + name.substr(from.size());
  }
  if (!name.starts_with("model.")) return {};
  name = name.substr(6);
  const std::pair<std::string, std::string> kParts[] = {
      {".layers.", ".blocks."},
      {".self_attn_layer_norm.", ".attn_ln."},
      {".encoder_attn_layer_norm.", ".cross_attn_ln."},
      {".final_layer_norm.", ".mlp_ln."},
      {".self_attn.", ".attn."},
      {".encoder_attn.", ".cross_attn."},
      {".q_proj.", ".query."},
      {".k_proj.", ".key."},
      {".v_proj.", ".value."},
      {".out_proj.", ".out."},
      {".fc1.", ".mlp.0."},
      {".fc2.", ".mlp.2."},
  };
  for (const auto& [from, to] : kParts) {
    if (const size_t at = name.find(from); at != std::string::npos) name.replace(at, from.size(), to);
  }
  return name;
}

/// Writes `file` (a Whisper model under HF names, any readable dtypes) as a whisper.cpp model at
/// `path` with weight type `dtype` (f32, f16 or q8_0), atomically.
inline Result<void> write_whisper_ggml(const format::TensorFile& file, const models::WhisperConfig& config, DType dtype,
                                       const std::string& path) {
  constexpr int32_t kGgmlF32 = 0, kGgmlF16 = 1, kGgmlQ8_0 = 8;
  constexpr int32_t kQuantizationVersion = 2, kQuantizationFactor = 1000, kFtypeMostlyQ8_0 = 7;
  int32_t ftype = 0, weight_type = kGgmlF32;
  if (dtype == DType::f16) {
    ftype = 1;
    weight_type = kGgmlF16;
  } else if (dtype == DType::q8_0) {
    ftype = kFtypeMostlyQ8_0 + kQuantizationVersion * kQuantizationFactor;
    weight_type = kGgmlQ8_0;
  } else if (dtype != DType::f32) {
    return make_error(ErrorCode::invalid_argument, "{}: whisper.cpp models are written as f32, f16 or q8_0, not {}", path, to_string(dtype));
  }
  const int32_t conv_type = dtype == DType::f32 ? kGgmlF32 : kGgmlF16;

  auto out = format::AtomicFile::create(path);
  if (!out) return std::move(out).error();
  auto& sink = (*out)->sink();
  auto put = [&](const void* data, size_t size) { return sink.write({static_cast<const std::byte*>(data), size}); };
  auto put_i32 = [&](int32_t value) { return put(&value, sizeof value); };

  const uint32_t magic = 0x67676d6c;
  Result<void> status = put(&magic, sizeof magic);
  const int32_t hparams[] = {static_cast<int32_t>(config.vocab_size),           static_cast<int32_t>(config.max_source_positions),
                             static_cast<int32_t>(config.d_model),              static_cast<int32_t>(config.encoder_attention_heads),
                             static_cast<int32_t>(config.encoder_layers),       static_cast<int32_t>(config.max_target_positions),
                             static_cast<int32_t>(config.d_model),              static_cast<int32_t>(config.decoder_attention_heads),
                             static_cast<int32_t>(config.decoder_layers),       static_cast<int32_t>(config.num_mel_bins),
                             ftype};
  if (status) status = put(hparams, sizeof hparams);
  const auto filters = audio::mel_filterbank(config.num_mel_bins);
  if (status) status = put_i32(static_cast<int32_t>(config.num_mel_bins));
  if (status) status = put_i32(static_cast<int32_t>(audio::kFrequencyBins));
  if (status) status = put(filters.data(), filters.size() * sizeof(float));
  if (status) status = put_i32(0);  // no vocabulary: whisper.cpp names the ids itself

  for (const auto& tensor : file.tensors()) {
    if (!status) break;
    const std::string name = whisper_cpp_name(std::string(tensor.name));
    if (name.empty()) return make_error(ErrorCode::invalid_argument, "{}: tensor '{}' has no whisper.cpp name", path, tensor.name);
    auto values = format::tensor_to_f32(tensor);
    if (!values) return std::move(values).error();
    // ggml lists dims innermost first; a convolution bias is stored as [n_state][1]
    std::vector<int32_t> ne;
    for (size_t i = tensor.shape.ndim(); i-- > 0;) ne.push_back(static_cast<int32_t>(tensor.shape[i]));
    const bool conv_bias = name.starts_with("encoder.conv") && name.ends_with(".bias");
    if (conv_bias) ne.insert(ne.begin(), 1);
    const bool positional = name.ends_with("positional_embedding");
    int32_t type = kGgmlF32;
    if (name.starts_with("encoder.conv") && name.ends_with(".weight")) type = conv_type;
    else if (ne.size() == 2 && !conv_bias && !positional) type = weight_type;

    std::vector<std::byte> data;
    if (type == kGgmlF32) {
      data.resize(values->size() * sizeof(float));
      std::memcpy(data.data(), values->data(), data.size());
    } else if (type == kGgmlF16) {
      data.resize(values->size() * sizeof(uint16_t));
      auto* halves = reinterpret_cast<uint16_t*>(data.data());
      for (size_t i = 0; i < values->size(); ++i) halves[i] = fp32_to_fp16(values->at(i));
    } else {
      data.resize(values->size() / Q8_0::block_size * sizeof(Q8_0::Block));
      quantize_row<Q8_0>(values->data(), reinterpret_cast<Q8_0::Block*>(data.data()), values->size());
    }
    status = put_i32(static_cast<int32_t>(ne.size()));
    if (status) status = put_i32(static_cast<int32_t>(name.size()));
    if (status) status = put_i32(type);
    if (status) status = put(ne.data(), ne.size() * sizeof(int32_t));
    if (status) status = put(name.data(), name.size());
    if (status) status = sink.write(data);
  }
  if (!status) return status;
  return (*out)->commit();
}

}  // namespace apr::bench
