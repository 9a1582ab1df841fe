// Shared by the model commands (run, chat, bench, serve): loading a model, its tokenizer,
// chat template and stop tokens from command-line flags.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "apr/format/hub.hpp"
#include "apr/models/load.hpp"
#include "apr/text/chat_template.hpp"
#include "apr/text/load_tokenizer.hpp"
#include "cli.hpp"

namespace apr::cli {

/// Options every model command shares.
struct ModelFlags {
  std::string model;
  std::string dtype;
  std::string kv_dtype = "f32";
  size_t threads = 0;
};

/// Adds the model path, --dtype, --kv-dtype and --threads to `command`.
inline void add_model_flags(CLI::App* command, ModelFlags& flags) {
  command->add_option("model", flags.model, "model: Hugging Face folder, .safetensors, index, .apr, .gguf, or hf://org/name[@revision]")->required();
  command->add_option("--dtype", flags.dtype, "run the matmuls in this dtype (f32, f16, bf16, q8_0, q4_0; default: as stored)");
  command->add_option("--kv-dtype", flags.kv_dtype, "KV cache storage (f32 or f16)")->check(CLI::IsMember({"f32", "f16"}));
  command->add_option("-t,--threads", flags.threads, "threads (default: all cores)");
}

/// `path` itself, or for hf://org/name[@revision] the model's folder in the Hugging Face cache
/// (downloaded first when the cache lacks it; HF_TOKEN, HF_ENDPOINT, HF_HOME apply).
inline Result<std::string> local_model_path(const std::string& path) {
  if (!format::is_hub_uri(path)) return path;
  auto folder = format::resolve_hub_model(path);
  if (!folder) return std::move(folder).error();
  return folder->string();
}

/// Loads the model named by `flags`; a pool of --threads threads is created in `owned_pool`
/// (or the one already there is shared).
inline Result<models::LoadedModel> load_model(const ModelFlags& flags, std::unique_ptr<ThreadPool>& owned_pool) {
  models::LoadOptions options;
  if (!flags.dtype.empty()) {
    const auto dtype = parse_dtype(flags.dtype);
    if (!dtype || !is_weight_dtype(*dtype)) return make_error(ErrorCode::invalid_argument, "--dtype {}: expected f32, f16, bf16, q8_0 or q4_0", flags.dtype);
    options.weight_dtype = dtype;
  }
  options.model.kv_dtype = flags.kv_dtype == "f16" ? DType::f16 : DType::f32;
  if (flags.threads > 0) {
    if (!owned_pool) owned_pool = std::make_unique<ThreadPool>(flags.threads);
    options.model.pool = owned_pool.get();
  }
  auto path = local_model_path(flags.model);
  if (!path) return std::move(path).error();
  return models::load_language_model(*path, options);
}

/// The tokenizer of a loaded model: --tokenizer if given, else the model's folder.
inline Result<text::Tokenizer> tokenizer_for(const models::LoadedModel& loaded, const std::string& explicit_path) {
  if (explicit_path.empty() && !loaded.tokenizer_json.empty()) return text::Tokenizer::from_tokenizer_json(loaded.tokenizer_json, loaded.source + " (metadata tokenizer.json)");
  const std::string path = explicit_path.empty() ? loaded.directory : explicit_path;
  if (path.empty()) return make_error(ErrorCode::not_found, "{}: no tokenizer found; pass --tokenizer", loaded.source);
  return text::load_tokenizer(path);
}

/// The chat template of a loaded model (tokenizer_config.json beside it), or plain ChatML.
inline Result<text::ChatTemplate> chat_template_for(const models::LoadedModel& loaded) {
  if (!loaded.chat_template.empty()) return text::ChatTemplate::from_jinja(loaded.chat_template);
  const auto config = models::read_json_file(std::filesystem::path(loaded.directory) / "tokenizer_config.json");
  if (config && config->contains("chat_template") && (*config)["chat_template"].is_string()) {
    return text::ChatTemplate::from_jinja((*config)["chat_template"].get<std::string>());
  }
  return text::ChatTemplate();
}

/// Stop ids: the config's eos_token_id(s) plus the tokenizer's end-of-turn and end-of-text tokens.
inline std::vector<int32_t> stop_ids_for(const models::LoadedModel& loaded, const text::Tokenizer* tokenizer) {
  std::vector<int32_t> ids;
  if (loaded.config.contains("eos_token_id")) {
    const auto& eos = loaded.config["eos_token_id"];
    if (eos.is_number_integer()) ids.push_back(eos.get<int32_t>());
    if (eos.is_array()) {
      for (const auto& id : eos) {
        if (id.is_number_integer()) ids.push_back(id.get<int32_t>());
      }
    }
  }
  if (tokenizer != nullptr) {
    for (const char* name : {"<|im_end|>", "<|endoftext|>"}) {
      if (auto id = tokenizer->token_to_id(name)) ids.push_back(*id);
    }
  }
  return ids;
}

}  // namespace apr::cli
