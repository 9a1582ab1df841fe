/// @file load.hpp
/// @brief load_language_model(): open any supported model (HF folder, SafeTensors, index) and
/// instantiate the right architecture with the weight dtype chosen from the file.
#pragma once

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "apr/core/dtype.hpp"
#include "apr/core/result.hpp"
#include "apr/format/detect.hpp"
#include "apr/format/safetensors.hpp"
#include "apr/models/language_model.hpp"
#include "apr/models/qwen2.hpp"
#include "apr/models/qwen2_gguf_view.hpp"
#include "apr/models/qwen2_names.hpp"
#include "apr/text/gguf_tokenizer.hpp"

namespace apr::models {

/// How to load a model.
struct LoadOptions {
  std::optional<DType> weight_dtype;  ///< matmul dtype to run in (default: the file's own)
  ModelOptions model;                 ///< threads, KV cache dtype, prefill chunk
};

/// A loaded model together with the metadata it came with.
struct LoadedModel {
  std::unique_ptr<LanguageModel> model;  ///< ready to run
  nlohmann::json config;                 ///< the model's config (HF config.json or file metadata)
  std::string source;                    ///< the path it was loaded from
  std::string directory;                 ///< folder holding tokenizer files, if any
  DType weight_dtype = DType::f32;       ///< matmul dtype it runs in
  std::string tokenizer_json;            ///< tokenizer.json text carried in the file's metadata, if any
  std::string chat_template;             ///< chat template carried in the file's metadata, if any
};

/// Reads a JSON file, naming the file in errors.
inline Result<nlohmann::json> read_json_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) return make_error(ErrorCode::not_found, "{}: cannot open", path.string());
  std::stringstream text;
  text << in.rdbuf();
  auto json = nlohmann::json::parse(text.str(), nullptr, false);
  if (json.is_discarded()) return make_error(ErrorCode::format, "{}: not valid JSON", path.string());
  return json;
}

/// The most common dtype (by bytes) among 2-D tensors of `file`: the dtype its matmuls are stored in.
inline DType dominant_matrix_dtype(const format::TensorFile& file) {
  std::map<DType, uint64_t> bytes;
  for (const TensorView& tensor : file.tensors()) {
    if (tensor.shape.ndim() == 2) bytes[tensor.dtype] += tensor.bytes.size();
  }
  DType best = DType::f32;
  uint64_t most = 0;
  for (const auto& [dtype, total] : bytes) {
    if (total > most) {
      most = total;
      best = dtype;
    }
  }
  return is_weight_dtype(best) ? best : DType::f32;
}

/// Instantiates the architecture named in `config` over `file`.
/// `translate` maps Hugging Face tensor names to the file's (GGUF files use llama.cpp's names).
inline Result<LoadedModel> instantiate(std::shared_ptr<const format::TensorFile> file, const nlohmann::json& config,
                                       const LoadOptions& options, std::string source, std::string directory,
                                       NameTranslator translate = {}) {
  auto text_field = [&](const char* key) {
    return config.contains(key) && config[key].is_string() ? config[key].get<std::string>() : std::string();
  };
  std::string architecture = text_field("architecture");
  if (architecture.empty()) architecture = text_field("model_type");
  const DType dtype = options.weight_dtype.value_or(dominant_matrix_dtype(*file));
  LoadedModel loaded{nullptr, config, std::move(source), std::move(directory), dtype, {}, {}};
  if (architecture == "qwen2" || architecture == "qwen2_moe") {
    auto parsed = config.contains("num_hidden_layers") ? Qwen2Config::from_hf_json(config) : Qwen2Config::from_apr_metadata(config);
    if (!parsed) return std::move(parsed).error().with_context(loaded.source);
    auto made = visit_dtype(dtype, [&](auto tag) -> Result<std::unique_ptr<LanguageModel>> {
      auto model = Qwen2<decltype(tag)>::load(file, *parsed, translate, options.model);
      if (!model) return std::move(model).error();
      return std::unique_ptr<LanguageModel>(std::move(model).value());
    });
    if (!made) return std::move(made).error();
    loaded.model = std::move(made).value();
    return loaded;
  }
  return make_error(ErrorCode::unsupported, "{}: architecture '{}' is not a language model apr runs (expected qwen2 or qwen2_moe)", loaded.source,
                    architecture.empty() ? "(none given)" : architecture);
}

/// Loads a causal language model from an APR file (config, tokenizer and chat template in its
/// metadata), a Hugging Face folder (config.json + model.safetensors or its index), a
/// .safetensors file with a config.json beside it, or a llama.cpp qwen2 / qwen2moe GGUF file
/// (tokenizer and chat template from its tokenizer.* keys).
inline Result<LoadedModel> load_language_model(const std::string& path, const LoadOptions& options = {}) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path input(path);
  if (!fs::exists(input, ec)) return make_error(ErrorCode::not_found, "{}: no such file or directory", path);
  const bool is_directory = fs::is_directory(input, ec);
  const fs::path directory = is_directory ? input : input.parent_path();
  fs::path weights = input;
  if (is_directory) {
    if (fs::exists(directory / "model.safetensors", ec)) weights = directory / "model.safetensors";
    else if (fs::exists(directory / "model.safetensors.index.json", ec)) weights = directory / "model.safetensors.index.json";
    else if (fs::exists(directory / "pytorch_model.bin", ec)) {
      return make_error(ErrorCode::unsupported, "{}: only a PyTorch checkpoint (pytorch_model.bin) is here; apr never loads pickles — convert it to SafeTensors", path);
    } else {
      return make_error(ErrorCode::not_found, "{}: no model.safetensors or model.safetensors.index.json in this folder", path);
    }
  }
  auto file = format::open_tensor_file(weights.string());
  if (!file) return std::move(file).error();
  std::shared_ptr<const format::TensorFile> shared = std::move(file).value();
  if (shared->format() == "apr") {
    const nlohmann::json& metadata = shared->metadata();
    auto loaded = instantiate(shared, metadata, options, path, std::string());
    if (!loaded) return loaded;
    if (metadata.contains("tokenizer.json") && metadata["tokenizer.json"].is_string()) loaded->tokenizer_json = metadata["tokenizer.json"];
    if (metadata.contains("chat_template") && metadata["chat_template"].is_string()) loaded->chat_template = metadata["chat_template"];
    return loaded;
  }
  if (shared->format() == "gguf") {
    auto config = qwen2_config_from_gguf(*shared);
    if (!config) return std::move(config).error();
    std::shared_ptr<const format::TensorFile> weights = shared;
    NameTranslator translate = [](std::string_view hf_name) { return qwen2_gguf_name(hf_name).value_or(std::string(hf_name)); };
    if ((*config)["model_type"] == "qwen2_moe") {  // stacked experts: split into per-expert views under HF names
      auto view = Qwen2GgufView::open(shared);
      if (!view) return std::move(view).error();
      weights = std::move(view).value();
      translate = {};
    }
    auto loaded = instantiate(weights, *config, options, path, std::string(), std::move(translate));
    if (!loaded || !shared->metadata().contains("tokenizer.ggml.model")) return loaded;
    auto tokenizer = text::tokenizer_json_from_gguf(shared->metadata(), path);
    if (!tokenizer) return std::move(tokenizer).error();
    loaded->tokenizer_json = tokenizer->dump();
    loaded->chat_template = shared->metadata().value("tokenizer.chat_template", std::string());
    return loaded;
  }
  auto config = read_json_file(directory / "config.json");
  if (!config) return std::move(config).error();
  return instantiate(std::move(shared), *config, options, path, directory.string());
}

}  // namespace apr::models
