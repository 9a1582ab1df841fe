// apr import / convert / export: between Hugging Face folders (and Mistral's Voxtral folders),
// SafeTensors and APR, with the precision gate on every dtype conversion.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "apr/eval/precision_gate.hpp"
#include "apr/eval/voxtral_precision_gate.hpp"
#include "apr/eval/whisper_precision_gate.hpp"
#include "apr/format/apr_shards.hpp"
#include "apr/format/apr_writer.hpp"
#include "apr/format/convert.hpp"
#include "apr/format/detect.hpp"
#include "apr/format/model_metadata.hpp"
#include "apr/format/safetensors_writer.hpp"
#include "apr/format/tensor_values.hpp"
#include "apr/models/apr_metadata.hpp"
#include "apr/models/load.hpp"
#include "apr/models/load_whisper.hpp"
#include "apr/models/qwen2_gguf.hpp"
#include "apr/models/voxtral_load.hpp"
#include "cli.hpp"
#include "model_support.hpp"

namespace apr::cli {
namespace {

namespace fs = std::filesystem;

/// The Whisper gate: both models on the source file's mel filterbank (or apr's).
Result<eval::GateReport> run_whisper_gate(std::shared_ptr<const format::TensorFile> source, std::shared_ptr<const format::TensorFile> converted,
                                          const nlohmann::json& config, DType target, const eval::GateThresholds& thresholds) {
  auto whisper = models::WhisperConfig::from_apr_metadata(config);  // reads config.json's names as well
  if (!whisper) return std::move(whisper).error().with_context(source->path());
  auto reference = models::make_whisper(source, *whisper, models::dominant_matrix_dtype(*source));
  if (!reference) return std::move(reference).error();
  auto candidate = models::make_whisper(converted, *whisper, target);
  if (!candidate) return std::move(candidate).error();
  auto filters = models::read_mel_filters(*source, *whisper, source->path());
  if (!filters) return std::move(filters).error();
  auto front_end = filters->empty() ? audio::LogMel::create(whisper->num_mel_bins) : audio::LogMel::create(whisper->num_mel_bins, *filters);
  if (!front_end) return std::move(front_end).error();
  return eval::whisper_precision_gate(**reference, **candidate, *front_end, thresholds);
}

/// The Voxtral gate: both models on the same voiced signal, params from the metadata's "voxtral.params".
Result<eval::GateReport> run_voxtral_gate(std::shared_ptr<const format::TensorFile> source, std::shared_ptr<const format::TensorFile> converted,
                                          const nlohmann::json& metadata, DType target, const eval::GateThresholds& thresholds) {
  auto config = models::VoxtralConfig::from_params_json(models::voxtral_params_in(metadata));
  if (!config) return std::move(config).error().with_context(source->path());
  auto front_end = audio::LogMel::create(config->num_mel_bins);
  if (!front_end) return std::move(front_end).error();
  ThreadPool& pool = ThreadPool::global();
  return visit_dtype(models::dominant_matrix_dtype(*source), [&](auto source_tag) -> Result<eval::GateReport> {
    auto reference = models::VoxtralRealtime<decltype(source_tag)>::load(source, *config, &pool);
    if (!reference) return std::move(reference).error();
    return visit_dtype(target, [&](auto target_tag) -> Result<eval::GateReport> {
      auto candidate = models::VoxtralRealtime<decltype(target_tag)>::load(converted, *config, &pool);
      if (!candidate) return std::move(candidate).error();
      return eval::voxtral_precision_gate(**reference, **candidate, *front_end, pool, thresholds);
    });
  });
}

/// Runs the precision gate of converting `source` (config `config`) to `converted` at `target` with `thresholds`.
Result<eval::GateReport> run_gate(std::shared_ptr<const format::TensorFile> source, std::shared_ptr<const format::TensorFile> converted,
                                  const nlohmann::json& config, DType target, const eval::GateThresholds& thresholds) {
  if (config.value("model_type", std::string()) == "whisper" || config.value("architecture", std::string()) == "whisper") {
    return run_whisper_gate(source, converted, config, target, thresholds);
  }
  if (config.contains("voxtral.params")) return run_voxtral_gate(source, converted, config, target, thresholds);
  auto reference = models::instantiate(source, config, {}, source->path(), "");
  if (!reference) return std::move(reference).error();
  models::LoadOptions options;
  options.weight_dtype = target;
  auto candidate = models::instantiate(converted, config, options, converted->path(), "");
  if (!candidate) return std::move(candidate).error();
  const auto tokens = eval::gate_tokens(reference->model->vocab_size(), 64);
  return eval::precision_gate(*reference->model, *candidate->model, tokens, thresholds);
}

/// `target`'s documented thresholds with the `--gate NAME=VALUE` overrides applied.
Result<eval::GateThresholds> gate_thresholds(DType target, const std::vector<std::string>& overrides) {
  eval::GateThresholds thresholds = eval::default_thresholds(target);
  const std::pair<const char*, double*> limits[] = {
      {"max_mean_kl", &thresholds.max_mean_kl}, {"min_top1_agreement", &thresholds.min_top1_agreement},
      {"min_top10_overlap", &thresholds.min_top10_overlap}, {"min_logit_cosine", &thresholds.min_logit_cosine},
      {"min_hidden_cosine", &thresholds.min_hidden_cosine}};
  for (const std::string& item : overrides) {
    const size_t equals = item.find('=');
    const std::string name = item.substr(0, equals);
    const auto limit = std::find_if(std::begin(limits), std::end(limits), [&](const auto& l) { return name == l.first; });
    if (equals == std::string::npos || limit == std::end(limits)) {
      return make_error(ErrorCode::invalid_argument, "--gate {}: expected NAME=VALUE with NAME one of max_mean_kl, min_top1_agreement, "
                                                     "min_top10_overlap, min_logit_cosine, min_hidden_cosine", item);
    }
    const std::string text = item.substr(equals + 1);
    char* end = nullptr;
    const double value = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !std::isfinite(value) || value < 0.0 || (name != "max_mean_kl" && value > 1.0)) {
      return make_error(ErrorCode::invalid_argument, "--gate {}: '{}' is not a limit in range", item, text);
    }
    *limit->second = value;
  }
  return thresholds;
}

/// Every tensor of `file` as a view to stream into a writer.
std::vector<format::AprWriteTensor> tensors_to_write(const format::TensorFile& file) {
  std::vector<format::AprWriteTensor> tensors;
  for (const auto& t : file.tensors()) tensors.push_back(format::AprWriteTensor::from_view(t));
  return tensors;
}

/// Parameters summed over `file`'s tensors.
uint64_t parameter_count(const format::TensorFile& file) {
  uint64_t params = 0;
  for (const auto& t : file.tensors()) params += t.numel();
  return params;
}

/// Checks that `written` (just written to `path`) holds as many tensors and parameters as `source`.
Result<void> check_written_counts(const format::TensorFile& written, const format::TensorFile& source, const std::string& path) {
  const uint64_t written_params = parameter_count(written), params = parameter_count(source);
  if (written.tensors().size() != source.tensors().size() || written_params != params) {
    return make_error(ErrorCode::validation, "{}: wrote {} tensors / {} parameters, the source has {} / {}", path, written.tensors().size(), written_params,
                      source.tensors().size(), params);
  }
  return ok();
}

/// Writes `file`'s tensors and `metadata` as APR at `output`, then re-reads it and checks counts.
Result<nlohmann::json> write_and_verify(const format::TensorFile& file, const nlohmann::json& metadata, const std::string& output, uint16_t flags,
                                        const format::AprEncoding* encoding = nullptr) {
  auto status = format::write_apr(output, format::apr_metadata_text(metadata), tensors_to_write(file), flags, encoding);
  if (!status) return std::move(status).error();
  auto written = format::AprFile::open(output);
  if (!written) return std::move(written).error();
  if (auto counts = check_written_counts(**written, file, output); !counts) {
    std::remove(output.c_str());
    return std::move(counts).error();
  }
  return nlohmann::json{{"output", output}, {"tensors", file.tensors().size()}, {"parameters", parameter_count(file)}, {"bytes", (*written)->bytes().size()}};
}

/// Parses a size such as "500MB", "2GB" (powers of 1000, as Hugging Face's max_shard_size),
/// "64MiB" (powers of 1024) or a plain byte count.
Result<uint64_t> parse_byte_size(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  const std::string unit = text.substr(digits);
  static const std::map<std::string, uint64_t> kUnits = {{"", 1}, {"B", 1}, {"KB", 1000}, {"MB", 1000'000}, {"GB", 1000'000'000},
                                                         {"KiB", 1024}, {"MiB", 1 << 20}, {"GiB", 1 << 30}};
  const auto scale = kUnits.find(unit);
  if (digits == 0 || digits > 12 || scale == kUnits.end()) {
    return make_error(ErrorCode::invalid_argument, "--max-shard-size {}: expected a number of bytes, optionally with KB, MB, GB, KiB, MiB or GiB", text);
  }
  const uint64_t count = std::stoull(text.substr(0, digits));
  if (count == 0) return make_error(ErrorCode::invalid_argument, "--max-shard-size {}: must be positive", text);
  if (count > UINT64_MAX / scale->second) return make_error(ErrorCode::invalid_argument, "--max-shard-size {}: too large", text);
  return count * scale->second;
}

/// Writes `file`'s tensors as APR shards of at most `limit` bytes beside `output`, then reopens
/// the manifest (which checks every shard) and compares tensor and parameter counts.
Result<nlohmann::json> write_and_verify_shards(const format::TensorFile& file, const nlohmann::json& metadata, const std::string& output, uint64_t limit,
                                               uint16_t flags) {
  auto manifest = format::write_apr_sharded(output, metadata, tensors_to_write(file), limit, flags);
  if (!manifest) return std::move(manifest).error();
  const std::string manifest_path = format::apr_manifest_path(output);
  auto written = format::AprShardedFile::open(manifest_path);
  if (!written) return std::move(written).error();
  if (auto counts = check_written_counts(**written, file, manifest_path); !counts) return std::move(counts).error();
  nlohmann::json shards = nlohmann::json::array();
  for (const auto& shard : manifest->shards) shards.push_back({{"filename", shard.filename}, {"size", shard.size}, {"tensors", shard.tensors.size()}});
  return nlohmann::json{{"output", manifest_path}, {"tensors", file.tensors().size()}, {"parameters", parameter_count(file)}, {"shards", shards}};
}

struct ConvertFlags {
  std::string source, output, quantize, name, compress = "none", max_shard_size;
  std::vector<std::string> gate;
  int level = -1;
  bool force = false, json = false;
};

/// The shared tail of import and convert: optional conversion with its gate, then the APR write.
int convert_and_write(std::shared_ptr<const format::TensorFile> source, nlohmann::json config, nlohmann::json metadata, const ConvertFlags& flags) {
  std::shared_ptr<const format::TensorFile> result = source;
  nlohmann::json report = {{"source", flags.source}};
  uint16_t file_flags = metadata.contains("tokenizer.json") ? format::apr_v2::kHasVocab : 0;
  if (!flags.quantize.empty()) {
    const auto target = parse_dtype(flags.quantize);
    if (!target || !is_weight_dtype(*target)) return report_error(make_error(ErrorCode::invalid_argument, "--quantize {}: expected f32, f16, bf16, q8_0 or q4_0", flags.quantize));
    auto converted = format::convert_file(*source, *target);
    if (!converted) return report_error(converted.error());
    result = *converted;
    auto thresholds = gate_thresholds(*target, flags.gate);
    if (!thresholds) return report_error(thresholds.error());
    auto gate = run_gate(source, result, config, *target, *thresholds);
    if (!gate) return report_error(gate.error());
    report["gate"] = gate->to_json();
    const auto info = dtype_info(*target);
    metadata["quantization"] = {{"quant_type", std::string(info.name)}, {"bits", info.block_bytes * 8 / info.block_size},
                                {"block_size", info.block_size == 1 ? nlohmann::json(nullptr) : nlohmann::json(info.block_size)}, {"symmetric", true}};
    if (info.block_size > 1) file_flags |= format::apr_v2::kQuantized;
    if (!gate->passed()) {
      fmt::print(stderr, "precision gate failed for {}: {}\n", flags.quantize, fmt::join(gate->failures, "; "));
      if (!flags.force) {
        if (flags.json) print_json(report);
        fmt::print(stderr, "no output written (use --force to write it anyway)\n");
        return kValidationFailed;
      }
    }
  }
  uint64_t bytes = 0;
  for (const auto& t : result->tensors()) bytes += t.bytes.size();
  metadata["total_size"] = bytes;
  const auto codec = *format::parse_codec(flags.compress);
  const format::AprEncoding encoding{codec, flags.level < 0 ? format::default_level(codec) : flags.level, nullptr};
  if (!format::valid_level(codec, encoding.level)) return report_error(make_error(ErrorCode::invalid_argument, "--level {} is not valid for {}", encoding.level, flags.compress));
  metadata.erase("sharding");  // a sharded source's block; a sharded output gets its own per shard
  if (!flags.max_shard_size.empty()) {
    if (codec != format::Codec::none) return report_error(make_error(ErrorCode::invalid_argument, "--max-shard-size and --compress cannot be combined yet"));
    auto limit = parse_byte_size(flags.max_shard_size);
    if (!limit) return report_error(limit.error());
    auto written = write_and_verify_shards(*result, metadata, flags.output, *limit, file_flags);
    if (!written) return report_error(written.error());
    report["written"] = *written;
    if (flags.json) print_json(report);
    else fmt::print("{}: {} tensors, {} parameters in {} shards\n", (*written)["output"].get<std::string>(), (*written)["tensors"].get<size_t>(),
                    (*written)["parameters"].get<uint64_t>(), (*written)["shards"].size());
    return kOk;
  }
  auto written = write_and_verify(*result, metadata, flags.output, file_flags, codec == format::Codec::none ? nullptr : &encoding);
  if (!written) return report_error(written.error());
  report["written"] = *written;
  if (flags.json) print_json(report);
  else fmt::print("{}: {} tensors, {} parameters, {} bytes\n", flags.output, (*written)["tensors"].get<size_t>(), (*written)["parameters"].get<uint64_t>(), (*written)["bytes"].get<uint64_t>());
  return kOk;
}

}  // namespace

void register_convert_commands(CLI::App& app, Registry& registry) {
  {
    auto flags = std::make_shared<ConvertFlags>();
    auto* import = app.add_subcommand("import", "Import a Hugging Face folder, hub model, SafeTensors file or Mistral Voxtral folder into an APR file (tokenizer and chat template embedded)");
    import->add_option("source", flags->source, "Hugging Face model folder, hf://org/name[@revision], a .safetensors file with config.json beside it, or a Voxtral folder (params.json + consolidated.safetensors)")
        ->required();
    import->add_option("-o,--output", flags->output, "output .apr file")->required();
    import->add_option("--quantize", flags->quantize, "convert matrices to f16, bf16, q8_0 or q4_0 (precision gate applies)");
    import->add_option("--gate", flags->gate, "override a precision-gate limit, NAME=VALUE (e.g. min_logit_cosine=0.995; docs/precision-gates.md)");
    import->add_option("--name", flags->name, "model name in the metadata (default: the output's stem)");
    import->add_option("--max-shard-size", flags->max_shard_size, "split into APR shards of at most this much tensor data (e.g. 2GB) plus OUTPUT.index.json");
    import->add_flag("--force", flags->force, "write even when the precision gate fails");
    import->add_flag("--json", flags->json, "print JSON");
    registry.add(import, [flags] {
      std::error_code ec;
      auto local = local_model_path(flags->source);
      if (!local) return report_error(local.error());
      const fs::path source(*local);
      if (!fs::exists(source, ec)) return report_error(make_error(ErrorCode::not_found, "{}: no such file or directory", flags->source));
      const fs::path folder = fs::is_directory(source, ec) ? source : source.parent_path();
      const std::string name = flags->name.empty() ? fs::path(flags->output).stem().string() : flags->name;
      if (models::is_voxtral_model(source.string())) {  // Mistral's folder: params.json + consolidated.safetensors (+ tekken.json)
        auto opened = models::open_voxtral(source.string());
        if (!opened) return report_error(opened.error());
        auto metadata = models::voxtral_apr_metadata(*opened, folder, name, flags->source);
        if (!metadata) return report_error(metadata.error());
        return convert_and_write(opened->file, *metadata, *metadata, *flags);
      }
      fs::path weights = source;
      if (fs::is_directory(source, ec)) {
        weights = fs::exists(folder / "model.safetensors", ec) ? folder / "model.safetensors" : folder / "model.safetensors.index.json";
      }
      auto file = format::open_tensor_file(weights.string());
      if (!file) return report_error(file.error());
      auto sources = models::read_import_sources(folder);
      if (!sources) return report_error(sources.error());
      std::shared_ptr<const format::TensorFile> shared = std::move(file).value();
      auto metadata = models::apr_metadata_for_import(*shared, *sources, name, flags->source);
      return convert_and_write(shared, sources->config, metadata, *flags);
    });
  }
  {
    auto flags = std::make_shared<ConvertFlags>();
    auto* convert = app.add_subcommand("convert", "Convert an APR file's matrices to another dtype (with the precision gate) and/or store its tensors compressed");
    convert->add_option("source", flags->source, "input .apr file or shard manifest (.apr.index.json)")->required();
    convert->add_option("--quantize", flags->quantize, "f16, bf16, q8_0 or q4_0");
    convert->add_option("--gate", flags->gate, "override a precision-gate limit, NAME=VALUE (e.g. min_logit_cosine=0.995; docs/precision-gates.md)");
    convert->add_option("-o,--output", flags->output, "output .apr file")->required();
    convert->add_option("--compress", flags->compress, "store each tensor compressed where it shrinks: none, lz4 or zstd")->check(CLI::IsMember({"none", "lz4", "zstd"}));
    convert->add_option("--level", flags->level, "compression level (zstd 1-22, default 3; lz4 0 fast or 1-12 HC)");
    convert->add_option("--max-shard-size", flags->max_shard_size, "split into APR shards of at most this much tensor data (e.g. 2GB) plus OUTPUT.index.json");
    convert->add_flag("-f,--force", flags->force, "write even when the precision gate fails");
    convert->add_flag("--json", flags->json, "print JSON");
    registry.add(convert, [flags] {
      auto file = format::open_tensor_file(flags->source);
      if (!file) return report_error(file.error());
      if ((*file)->format() != "apr") return report_error(make_error(ErrorCode::invalid_argument, "{}: convert takes an APR file (use apr import first)", flags->source));
      std::shared_ptr<const format::TensorFile> shared = std::move(file).value();
      return convert_and_write(shared, shared->metadata(), shared->metadata(), *flags);
    });
  }
  {
    struct ExportFlags {
      std::string source, output, format = "safetensors", quantize;
    };
    auto flags = std::make_shared<ExportFlags>();
    auto* export_command = app.add_subcommand(
        "export", "Export a model as SafeTensors (+ tokenizer.json beside it) or as a llama.cpp GGUF file (Qwen2)");
    export_command->add_option("source", flags->source, "input .apr file, Hugging Face folder or .safetensors file")->required();
    export_command->add_option("--format", flags->format, "safetensors or gguf")->check(CLI::IsMember({"safetensors", "gguf"}));
    export_command->add_option("--quantize", flags->quantize, "gguf: matrices as f32, f16, q8_0 or q4_0 (default: as stored, else f16)");
    export_command->add_option("-o,--output", flags->output, "output file")->required();
    registry.add(export_command, [flags] {
      if (flags->format == "gguf") {
        auto loaded = models::load_language_model(flags->source);
        if (!loaded) return report_error(loaded.error());
        auto config = loaded->config.contains("num_hidden_layers") ? models::Qwen2Config::from_hf_json(loaded->config)
                                                                   : models::Qwen2Config::from_apr_metadata(loaded->config);
        if (!config) return report_error(config.error());
        const fs::path input(flags->source);
        auto weights = format::open_tensor_file(fs::is_directory(input) ? (input / "model.safetensors").string() : flags->source);
        if (!weights) return report_error(weights.error());
        DType dtype = loaded->weight_dtype == DType::bf16 ? DType::f16 : loaded->weight_dtype;
        if (!flags->quantize.empty()) {
          const auto parsed = parse_dtype(flags->quantize);
          if (!parsed) return report_error(make_error(ErrorCode::invalid_argument, "--quantize {}: expected f32, f16, q8_0 or q4_0", flags->quantize));
          dtype = *parsed;
        }
        // the tokenizer and chat template: an APR file's metadata, or the Hugging Face folder's files
        std::string tokenizer_json = loaded->tokenizer_json, chat_template = loaded->chat_template;
        if (!loaded->directory.empty()) {
          auto sources = models::read_import_sources(loaded->directory);
          if (!sources) return report_error(sources.error());
          tokenizer_json = sources->tokenizer_json;
          const auto& tokenizer_config = sources->tokenizer_config;
          if (tokenizer_config.is_object() && tokenizer_config.contains("chat_template") && tokenizer_config["chat_template"].is_string()) {
            chat_template = tokenizer_config["chat_template"].get<std::string>();
          }
        }
        std::optional<models::GgufTokenizer> tokenizer;
        if (!tokenizer_json.empty()) {
          auto made = models::gguf_tokenizer_from_json(tokenizer_json, *config, chat_template, flags->source + " (tokenizer.json)");
          if (!made) return report_error(made.error());
          tokenizer = std::move(made).value();
        }
        auto status = models::write_qwen2_gguf(**weights, *config, flags->output, dtype, input.stem().string(), tokenizer);
        if (!status) return report_error(status.error());
        fmt::print("{}: {} tensors, matrices {}{}\n", flags->output, (*weights)->tensors().size(), to_string(dtype),
                   tokenizer ? fmt::format(", tokenizer of {} tokens", tokenizer->tokens.size()) : std::string());
        return int{kOk};
      }
      auto file = format::open_tensor_file(flags->source);
      if (!file) return report_error(file.error());
      std::vector<format::AprWriteTensor> tensors;
      for (const auto& t : (*file)->tensors()) {
        if (format::safetensors_dtype_name(t.dtype)) {
          tensors.push_back(format::AprWriteTensor::from_view(t));
          continue;
        }
        tensors.push_back({std::string(t.name), DType::f32, t.shape, t.numel() * 4, std::nullopt, [t](format::ByteSink& sink) -> Result<void> {
                             auto values = format::tensor_to_f32(t);
                             if (!values) return std::move(values).error();
                             return sink.write(std::as_bytes(std::span(*values)));
                           }});
      }
      auto status = format::write_safetensors(flags->output, std::move(tensors), {{"format", "pt"}});
      if (!status) return report_error(status.error());
      // the artefacts travel beside it, as in a Hugging Face folder
      const format::ModelMetadata metadata((*file)->metadata());
      const fs::path folder = fs::path(flags->output).parent_path();
      fmt::print("{}: {} tensors\n", flags->output, (*file)->tensors().size());
      for (const auto& [key, name] : {std::pair{"tokenizer.json", "tokenizer.json"}, std::pair{"model_card", "README.md"}}) {
        const auto text = metadata.string(key);
        if (!text) continue;
        const std::string path = (folder / name).string();
        if (auto status = format::write_file_atomically(path, *text); !status) return report_error(status.error());
        fmt::print("{}: {}\n", path, key);
      }
      return int{kOk};
    });
  }
}

}  // namespace apr::cli
