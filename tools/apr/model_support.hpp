// Shared by the model commands (run, chat, bench, serve): loading a model, its tokenizer,
// chat template and stop tokens from command-line flags.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "apr/format/hub.hpp"
#include "apr/models/load.hpp"
#include "apr/models/model_text.hpp"
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

// The text side of a loaded model (tokenizer, chat template, stop ids) comes from the library.
using models::chat_template_for;
using models::stop_ids_for;
using models::tokenizer_for;

}  // namespace apr::cli
