/// @file qwen2_gguf.hpp
/// @brief write_qwen2_gguf(): a Qwen2 or Qwen2-MoE model (Hugging Face names, any file apr reads)
/// written as a GGUF file llama.cpp loads: llama.cpp's tensor names and qwen2.* / qwen2moe.*
/// metadata keys (experts stacked into one [experts, rows, cols] tensor per projection), matrices
/// and embeddings in the chosen dtype (F32, F16, Q8_0 or Q4_0, quantized as ggml does), routers,
/// norms and biases in F32, and the tokenizer (tokenizer.ggml.*) when one is given.
#pragma once

#include <algorithm>
#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "apr/core/quantize.hpp"
#include "apr/format/gguf_writer.hpp"
#include "apr/format/tensor_values.hpp"
#include "apr/models/qwen2_config.hpp"
#include "apr/models/qwen2_names.hpp"
#include "apr/text/gguf_tokenizer.hpp"

namespace apr::models {

/// llama.cpp's general.file_type code for a model whose matrices are `dtype` (LLAMA_FTYPE_*).
constexpr uint32_t llama_file_type(DType dtype) {
  switch (dtype) {
    case DType::f16: return 1;
    case DType::q4_0: return 2;
    case DType::q8_0: return 7;
    case DType::bf16: return 32;
    default: return 0;
  }
}

/// The tokenizer of a Qwen2 model as GGUF keys: vocabulary (id order), token types (1 normal,
/// 3 control for special added tokens, 4 for other added tokens, 5 for padding), BPE merges,
/// the special ids and the chat template.
struct GgufTokenizer {
  std::vector<std::string> tokens;  ///< token text by id (byte-level BPE alphabet)
  std::vector<int32_t> token_types; ///< per id
  std::vector<std::string> merges;  ///< "a b" pairs, by rank
  std::optional<int32_t> bos_id;    ///< beginning-of-text id
  std::optional<int32_t> eos_id;    ///< end-of-text id
  std::string chat_template;        ///< Jinja chat template (tokenizer.chat_template); empty for none
};

/// The GgufTokenizer of a Hugging Face tokenizer.json (`source` names it in errors) for a model of
/// `config`: ids past the tokenizer's up to config.vocab_size become "[PAD<id>]" unused tokens, as
/// llama.cpp's converter writes them, so the token count equals the embedding's rows.
inline Result<GgufTokenizer> gguf_tokenizer_from_json(std::string_view tokenizer_json, const Qwen2Config& config, std::string chat_template,
                                                      std::string_view source) {
  const auto json = nlohmann::json::parse(tokenizer_json, nullptr, false);
  auto fail = [&](std::string_view what) { return make_error(ErrorCode::format, "{}: {}", source, what); };
  if (json.is_discarded() || !json.is_object()) return fail("not a JSON object");
  if (!json.contains("model") || !json["model"].is_object()) return fail("'model' is missing");
  const auto& model = json["model"];
  if (!model.contains("vocab") || !model["vocab"].is_object()) return fail("'model.vocab' must be an object");
  if (!model.contains("merges") || !model["merges"].is_array()) return fail("'model.merges' must be an array");
  GgufTokenizer out{{}, {}, {}, config.bos_token_id, config.eos_token_id, std::move(chat_template)};
  out.token_types.assign(config.vocab_size, static_cast<int32_t>(text::GgufTokenType::unused));
  out.tokens.resize(config.vocab_size);
  for (size_t id = 0; id < config.vocab_size; ++id) out.tokens[id] = fmt::format("[PAD{}]", id);
  auto place = [&](const nlohmann::json& id, const std::string& token, text::GgufTokenType type) -> Result<void> {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<uint64_t>() >= config.vocab_size) {
      return fail(fmt::format("token '{}' has id {} (expected an integer below vocab_size {})", token, id.dump(), config.vocab_size));
    }
    out.tokens[id.get<size_t>()] = token;
    out.token_types[id.get<size_t>()] = static_cast<int32_t>(type);
    return ok();
  };
  for (const auto& [token, id] : model["vocab"].items()) {
    if (auto status = place(id, token, text::GgufTokenType::normal); !status) return status.error();
  }
  if (json.contains("added_tokens") && json["added_tokens"].is_array()) {
    for (const auto& token : json["added_tokens"]) {
      if (!token.is_object() || !token.contains("id") || !token.contains("content") || !token["content"].is_string()) {
        return fail("added_tokens entries need an 'id' and a string 'content'");
      }
      const auto type = token.value("special", false) ? text::GgufTokenType::control : text::GgufTokenType::user_defined;
      if (auto status = place(token["id"], token["content"].get<std::string>(), type); !status) return status.error();
    }
  }
  for (const auto& merge : model["merges"]) {
    if (merge.is_string()) out.merges.push_back(merge.get<std::string>());
    else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
      out.merges.push_back(merge[0].get<std::string>() + " " + merge[1].get<std::string>());
    } else {
      return fail(fmt::format("merges[{}] must be a string or a pair of strings", out.merges.size()));
    }
  }
  return out;
}

/// Writes the Qwen2 model of `config` held in `source` (Hugging Face names) to `path` as GGUF
/// with matrices in `matrix_dtype`; `name` goes to general.name.
inline Result<void> write_qwen2_gguf(const format::TensorFile& source, const Qwen2Config& config, const std::string& path, DType matrix_dtype,
                                     const std::string& name, const std::optional<GgufTokenizer>& tokenizer = std::nullopt) {
  if (matrix_dtype != DType::f32 && matrix_dtype != DType::f16 && matrix_dtype != DType::q8_0 && matrix_dtype != DType::q4_0) {
    return make_error(ErrorCode::invalid_argument, "GGUF export: matrices as {} (expected f32, f16, q8_0 or q4_0)", to_string(matrix_dtype));
  }
  const bool moe = config.num_experts > 0;
  if (moe && (config.norm_topk_prob || config.decoder_sparse_step != 1 || !config.mlp_only_layers.empty())) {
    return make_error(ErrorCode::unsupported, "GGUF export: llama.cpp's qwen2moe has every layer sparse and top-k weights not renormalised "
                      "(this model has norm_topk_prob {}, decoder_sparse_step {}, {} mlp_only_layers)",
                      config.norm_topk_prob, config.decoder_sparse_step, config.mlp_only_layers.size());
  }
  using format::GgufType;
  using format::GgufValue;
  const std::string arch = moe ? "qwen2moe" : "qwen2";
  auto key = [&](std::string_view suffix) { return fmt::format("{}.{}", arch, suffix); };
  std::vector<format::GgufEntry> entries{
      {"general.architecture", GgufValue::text(arch)},
      {"general.name", GgufValue::text(name)},
      {key("context_length"), GgufValue::scalar(GgufType::u32, config.max_position_embeddings)},
      {key("embedding_length"), GgufValue::scalar(GgufType::u32, config.hidden_size)},
      {key("block_count"), GgufValue::scalar(GgufType::u32, config.num_hidden_layers)},
      {key("feed_forward_length"), GgufValue::scalar(GgufType::u32, config.intermediate_size)},
      {key("attention.head_count"), GgufValue::scalar(GgufType::u32, config.num_attention_heads)},
      {key("attention.head_count_kv"), GgufValue::scalar(GgufType::u32, config.num_key_value_heads)},
      {key("rope.freq_base"), GgufValue::scalar(GgufType::f32, config.rope_theta)},
      {key("attention.layer_norm_rms_epsilon"), GgufValue::scalar(GgufType::f32, config.rms_norm_eps)},
      {key("vocab_size"), GgufValue::scalar(GgufType::u32, config.vocab_size)},
      {"general.file_type", GgufValue::scalar(GgufType::u32, llama_file_type(matrix_dtype))},
  };
  if (config.head_dim * config.num_attention_heads != config.hidden_size) {
    entries.push_back({key("attention.key_length"), GgufValue::scalar(GgufType::u32, config.head_dim)});
    entries.push_back({key("attention.value_length"), GgufValue::scalar(GgufType::u32, config.head_dim)});
  }
  if (moe) {
    entries.push_back({key("expert_count"), GgufValue::scalar(GgufType::u32, config.num_experts)});
    entries.push_back({key("expert_used_count"), GgufValue::scalar(GgufType::u32, config.num_experts_per_tok)});
    entries.push_back({key("expert_feed_forward_length"), GgufValue::scalar(GgufType::u32, config.moe_intermediate_size)});
    if (config.shared_expert_intermediate_size > 0) {
      entries.push_back({key("expert_shared_feed_forward_length"), GgufValue::scalar(GgufType::u32, config.shared_expert_intermediate_size)});
    }
  }
  if (tokenizer) {
    auto strings = [](const std::vector<std::string>& values) {
      std::vector<GgufValue> out;
      out.reserve(values.size());
      for (const auto& v : values) out.push_back(GgufValue::text(v));
      return GgufValue::array(GgufType::string, std::move(out));
    };
    std::vector<GgufValue> types;
    for (int32_t t : tokenizer->token_types) types.push_back(GgufValue::scalar(GgufType::i32, t));
    entries.push_back({"tokenizer.ggml.model", GgufValue::text("gpt2")});
    entries.push_back({"tokenizer.ggml.pre", GgufValue::text("qwen2")});
    entries.push_back({"tokenizer.ggml.tokens", strings(tokenizer->tokens)});
    entries.push_back({"tokenizer.ggml.token_type", GgufValue::array(GgufType::i32, std::move(types))});
    entries.push_back({"tokenizer.ggml.merges", strings(tokenizer->merges)});
    if (tokenizer->bos_id) entries.push_back({"tokenizer.ggml.bos_token_id", GgufValue::scalar(GgufType::u32, *tokenizer->bos_id)});
    if (tokenizer->eos_id) entries.push_back({"tokenizer.ggml.eos_token_id", GgufValue::scalar(GgufType::u32, *tokenizer->eos_id)});
    if (!tokenizer->chat_template.empty()) entries.push_back({"tokenizer.chat_template", GgufValue::text(tokenizer->chat_template)});
  }

  // `view`'s values as `stored`: its own bytes when already so, else converted row by row
  auto write_as = [](const TensorView& view, DType stored, format::ByteSink& sink) -> Result<void> {
    if (view.dtype == stored) return sink.write(view.bytes);
    auto values = format::tensor_to_f32(view);
    if (!values) return std::move(values).error();
    const size_t cols = static_cast<size_t>(view.row_length()), rows = values->size() / cols;
    const size_t row_bytes = static_cast<size_t>(*dtype_bytes(stored, cols));
    std::vector<std::byte> row(row_bytes);
    for (size_t r = 0; r < rows; ++r) {
      auto status = visit_dtype(stored, [&](auto tag) -> Result<void> {
        using W = decltype(tag);
        quantize_row<W>(values->data() + r * cols, reinterpret_cast<typename W::Block*>(row.data()), cols);
        return ok();
      });
      if (status) status = sink.write(row);
      if (!status) return status;
    }
    return ok();
  };
  // matrices (2-D weights) take the chosen dtype when their rows fill its blocks; routers (llama.cpp keeps ffn_gate_inp in F32) and the rest stay f32
  auto stored_dtype = [&](const TensorView& view, std::string_view gguf_name) {
    const bool matrix = view.shape.ndim() == 2 && std::string_view(view.name).ends_with(".weight") && !gguf_name.ends_with("ffn_gate_inp.weight") &&
                        view.shape.back() % dtype_info(matrix_dtype).block_size == 0;
    return matrix ? matrix_dtype : DType::f32;
  };
  std::vector<format::GgufWriteTensor> tensors;
  for (const TensorView& view : source.tensors()) {
    if (auto layer = split_layer_name(view.name, "model.layers."); layer && layer->second.starts_with("mlp.experts.")) {
      // expert E of layer N: written once, as slice E of the stacked tensor, when expert 0 comes by
      const auto expert = split_layer_name(layer->second, "mlp.experts.");
      std::optional<std::string_view> stacked;
      for (const auto& [hf, gguf] : kQwen2ExpertNames) {
        if (expert && hf == expert->second) stacked = gguf;
      }
      size_t index = 0;
      if (!stacked || !moe || std::from_chars(expert->first.data(), expert->first.data() + expert->first.size(), index).ec != std::errc() ||
          index >= config.num_experts) {
        return make_error(ErrorCode::invalid_argument, "{}: tensor '{}' is not part of a Qwen2-MoE model", source.path(), view.name);
      }
      if (expert->first != "0") continue;
      const std::string gguf_name = fmt::format("blk.{}.{}", layer->first, *stacked);
      std::vector<const TensorView*> slices;
      for (size_t e = 0; e < config.num_experts; ++e) {
        const TensorView* slice = source.find(fmt::format("model.layers.{}.mlp.experts.{}.{}", layer->first, e, expert->second));
        if (slice == nullptr || !(slice->shape == view.shape)) {
          return make_error(ErrorCode::invalid_argument, "{}: expert {} of layer {} has no {} shaped {}", source.path(), e, layer->first, expert->second,
                            to_string(view.shape));
        }
        slices.push_back(slice);
      }
      const DType stored = stored_dtype(view, gguf_name);
      tensors.push_back({gguf_name, stored, Shape{config.num_experts, view.shape[0], view.shape[1]},
                         [slices, stored, write_as](format::ByteSink& sink) -> Result<void> {
                           for (const TensorView* slice : slices) {
                             if (auto status = write_as(*slice, stored, sink); !status) return status;
                           }
                           return ok();
                         }});
      continue;
    }
    const auto gguf_name = qwen2_gguf_name(view.name);
    if (!gguf_name) return make_error(ErrorCode::invalid_argument, "{}: tensor '{}' is not part of a Qwen2 model", source.path(), view.name);
    const DType stored = stored_dtype(view, *gguf_name);
    tensors.push_back({*gguf_name, stored, view.shape, [&view, stored, write_as](format::ByteSink& sink) { return write_as(view, stored, sink); }});
  }
  // llama.cpp's qwen2moe, unlike its qwen2, has no tied-embedding fallback: it needs output.weight
  const auto has = [&](std::string_view name) { return std::any_of(tensors.begin(), tensors.end(), [&](const auto& t) { return t.name == name; }); };
  if (const TensorView* embedding = source.find("model.embed_tokens.weight"); moe && embedding != nullptr && !has("output.weight")) {
    const DType stored = stored_dtype(*embedding, "output.weight");
    tensors.push_back({"output.weight", stored, embedding->shape, [embedding, stored, write_as](format::ByteSink& sink) { return write_as(*embedding, stored, sink); }});
  }
  return format::write_gguf(path, std::move(entries), tensors);
}

}  // namespace apr::models
