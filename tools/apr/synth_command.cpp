// apr synth: random-weight models at real dimensions, for benchmarks (Qwen2 from a config.json
// or the Qwen2-0.5B dims; Whisper at a released size), written as APR, GGUF or SafeTensors;
// Voxtral-Realtime at Voxtral Mini 4B's dims as a Mistral folder or APR; and random
// mixture-of-experts ensembles (APR) for the router and its statistics.
#include <filesystem>
#include <fstream>
#include <cmath>
#include <memory>
#include <random>
#include <string>

#include "apr/format/apr_writer.hpp"
#include "apr/format/convert.hpp"
#include "apr/format/safetensors_writer.hpp"
#include "apr/models/load.hpp"
#include "apr/models/moe_writer.hpp"
#include "apr/models/qwen2_gguf.hpp"
#include "apr/models/synth.hpp"
#include "cli.hpp"

namespace apr::cli {
namespace {

namespace fs = std::filesystem;

struct SynthFlags {
  std::string architecture;
  std::string config;
  std::string dims = "0.5b";
  std::string dtype = "q4_0";
  std::string output;
  uint64_t seed = 42;
  size_t experts = 8;                         // moe: expert models
  size_t top_k = 2;                           // moe: experts per input
  std::vector<size_t> widths{64, 256, 64};    // moe: input, hidden…, output widths of each expert
};

/// A dense network through `widths` with N(0, 1/in) weights and small biases from `rng`.
models::DenseNetworkValues random_network(const std::vector<size_t>& widths, std::mt19937_64& rng) {
  models::DenseNetworkValues network;
  for (size_t j = 0; j + 1 < widths.size(); ++j) {
    models::DenseLayerValues layer{widths[j], widths[j + 1], std::vector<float>(widths[j] * widths[j + 1]), std::vector<float>(widths[j + 1])};
    std::normal_distribution<float> weight(0.0f, 1.0f / std::sqrt(static_cast<float>(widths[j])));
    std::normal_distribution<float> bias(0.0f, 0.1f);
    for (float& w : layer.weight) w = weight(rng);
    for (float& b : layer.bias) b = bias(rng);
    network.push_back(std::move(layer));
  }
  return network;
}

/// `apr synth moe`: a random ensemble of `flags.experts` networks behind a linear gate.
int synth_ensemble(const SynthFlags& flags, DType dtype) {
  if (flags.widths.size() < 2 || flags.widths.size() > 16) {
    return report(make_error(ErrorCode::invalid_argument, "--widths: give 2 to 16 widths (input, hidden…, output), not {}", flags.widths.size()));
  }
  for (size_t width : flags.widths) {
    if (width == 0 || width > 65536) return report(make_error(ErrorCode::invalid_argument, "--widths: {} is outside 1..65536", width));
  }
  if (flags.top_k == 0 || flags.top_k > flags.experts) {
    return report(make_error(ErrorCode::invalid_argument, "--top-k {}: expected 1..--experts ({})", flags.top_k, flags.experts));
  }
  if (fs::path(flags.output).extension() != ".apr") {
    return report(make_error(ErrorCode::invalid_argument, "{}: a mixture-of-experts ensemble is written as .apr", flags.output));
  }
  models::MoeConfig config;
  config.num_experts = flags.experts;
  config.top_k = flags.top_k;
  config.capacity_factor = 1.25;
  config.load_balance_weight = 0.01;
  std::mt19937_64 rng(flags.seed);
  const auto gate = random_network({flags.widths.front(), flags.experts}, rng);
  std::vector<models::DenseNetworkValues> experts;
  for (size_t e = 0; e < flags.experts && e < 65536; ++e) experts.push_back(random_network(flags.widths, rng));
  auto status = models::write_mixture_of_experts(flags.output, config, gate, experts, dtype, {{"name", fs::path(flags.output).stem().string()}});
  if (!status) return report(status.error());
  fmt::print("{}: mixture of {} experts (top-{}), widths {}, {} weights\n", flags.output, flags.experts, flags.top_k, fmt::join(flags.widths, "-"),
             to_string(dtype));
  return kOk;
}

/// Qwen2-0.5B's dims (Qwen/Qwen2-0.5B config.json).
models::Qwen2Config qwen2_0_5b() {
  models::Qwen2Config c;
  c.vocab_size = 151936;
  c.hidden_size = 896;
  c.intermediate_size = 4864;
  c.num_hidden_layers = 24;
  c.num_attention_heads = 14;
  c.num_key_value_heads = 2;
  c.head_dim = 64;
  c.rope_theta = 1000000.0f;
  c.rms_norm_eps = 1e-6f;
  c.tie_word_embeddings = true;
  c.max_position_embeddings = 32768;
  return c;
}

/// Writes `file` to `output` in the format its extension names (.apr, .gguf, .safetensors).
Result<void> write_model(const format::MemoryTensorFile& file, const std::string& output, const std::function<Result<void>()>& write_gguf) {
  const std::string extension = fs::path(output).extension().string();
  std::vector<format::AprWriteTensor> tensors;
  for (const auto& t : file.tensors()) tensors.push_back(format::AprWriteTensor::from_view(t));
  if (extension == ".apr") return format::write_apr(output, format::apr_metadata_text(file.metadata()), std::move(tensors));
  if (extension == ".safetensors") return format::write_safetensors(output, std::move(tensors), {{"format", "pt"}});
  if (extension == ".gguf") return write_gguf();
  return make_error(ErrorCode::invalid_argument, "{}: the extension must be .apr, .gguf or .safetensors", output);
}

/// `apr synth voxtral`: Voxtral Mini 4B Realtime's dims (or a params.json's) with random weights,
/// as a Mistral folder (params.json + BF16 consolidated.safetensors, as released) or an .apr
/// whose matrices are in `dtype` (params.json under "voxtral.params").
int synth_voxtral(const SynthFlags& flags, DType dtype) {
  Result<models::VoxtralConfig> config = models::voxtral_realtime_dims();
  if (!flags.config.empty()) {
    auto json = models::read_json_file(flags.config);
    if (!json) return report(json.error());
    config = models::VoxtralConfig::from_params_json(*json);
    if (!config) return report(std::move(config).error().with_context(flags.config));
  }
  const fs::path output(flags.output);
  const bool apr = output.extension() == ".apr";
  if (!apr && output.has_extension()) {
    return report(make_error(ErrorCode::invalid_argument, "{}: a Voxtral model is written as a folder or an .apr file", flags.output));
  }
  auto file = models::synthesize_voxtral(*config, flags.seed);
  if (!file) return report(file.error());
  const nlohmann::json params = config->to_params_json();
  std::shared_ptr<format::MemoryTensorFile> weights = *file;
  if (apr && dtype != DType::bf16) {
    auto converted = format::convert_file(*weights, dtype);
    if (!converted) return report(converted.error());
    weights = std::move(converted).value();
  }
  auto no_gguf = []() -> Result<void> { return make_error(ErrorCode::internal, "a Voxtral model has no GGUF form"); };
  Result<void> status = ok();
  if (apr) {
    weights->mutable_metadata() = {{"model_type", "voxtral_realtime"}, {"architecture", "voxtral_realtime"},
                                   {"name", output.stem().string()}, {"voxtral.params", params}};
    status = write_model(*weights, flags.output, no_gguf);
  } else {
    std::error_code ec;
    fs::create_directories(output, ec);
    if (ec) return report(make_error(ErrorCode::io, "{}: cannot create the folder: {}", flags.output, ec.message()));
    status = write_model(*weights, (output / "consolidated.safetensors").string(), no_gguf);
    if (status) status = format::write_file_atomically((output / "params.json").string(), params.dump(2) + "\n");
  }
  if (!status) return report(status.error());
  fmt::print("{}: voxtral realtime (encoder {} × {} wide, decoder {} × {} wide, vocab {}), {} weights\n", flags.output,
             config->encoder.n_layers, config->encoder.dim, config->decoder.n_layers, config->decoder.dim, config->vocab_size,
             apr ? to_string(dtype) : "bf16");
  return kOk;
}

int run_synth(const SynthFlags& flags) {
  const auto dtype = parse_dtype(flags.dtype);
  if (!dtype || !is_weight_dtype(*dtype)) {
    return report(make_error(ErrorCode::invalid_argument, "--dtype {}: expected f32, f16, bf16, q8_0 or q4_0", flags.dtype));
  }
  if (flags.architecture == "moe") return synth_ensemble(flags, *dtype);
  if (flags.architecture == "voxtral") return synth_voxtral(flags, *dtype);
  if (flags.architecture == "qwen2") {
    Result<models::Qwen2Config> config = qwen2_0_5b();
    if (!flags.config.empty()) {
      auto json = models::read_json_file(flags.config);
      if (!json) return report(json.error());
      config = models::Qwen2Config::from_hf_json(*json);
    } else if (flags.dims != "0.5b") {
      return report(make_error(ErrorCode::invalid_argument, "--dims {}: qwen2 knows 0.5b (or pass --config config.json)", flags.dims));
    }
    if (!config) return report(config.error());
    auto file = models::synthesize_qwen2(*config, *dtype, flags.seed);
    if (!file) return report(file.error());
    auto status = write_model(**file, flags.output, [&] {
      return models::write_qwen2_gguf(**file, *config, flags.output, *dtype, fs::path(flags.output).stem().string());
    });
    if (!status) return report(status.error());
    if (fs::path(flags.output).extension() == ".safetensors") {  // a loadable folder: config.json beside the weights
      const auto& m = (*file)->metadata();
      nlohmann::json hf = {{"model_type", "qwen2"}, {"vocab_size", m["vocab_size"]}, {"hidden_size", m["hidden_size"]},
                           {"intermediate_size", m["intermediate_size"]}, {"num_hidden_layers", m["num_layers"]},
                           {"num_attention_heads", m["num_heads"]}, {"num_key_value_heads", m["num_kv_heads"]}, {"head_dim", m["head_dim"]},
                           {"rope_theta", m["rope_theta"]}, {"rms_norm_eps", m["rms_norm_eps"]},
                           {"tie_word_embeddings", m["tie_word_embeddings"]}, {"max_position_embeddings", m["max_position_embeddings"]}};
      std::ofstream(fs::path(flags.output).parent_path() / "config.json") << hf.dump(2) << "\n";
    }
    fmt::print("{}: qwen2 {} layers × {} wide, {} weights\n", flags.output, config->num_hidden_layers, config->hidden_size, to_string(*dtype));
    return kOk;
  }
  auto config = models::whisper_dims(flags.dims == "0.5b" ? "tiny" : flags.dims);
  if (!config) return report(config.error());
  auto file = models::synthesize_whisper(*config, flags.seed);
  if (!file) return report(file.error());
  auto status = write_model(**file, flags.output, [&]() -> Result<void> {
    return make_error(ErrorCode::unsupported, "{}: Whisper models are written as .apr or .safetensors", flags.output);
  });
  if (!status) return report(status.error());
  if (fs::path(flags.output).extension() == ".safetensors") {
    nlohmann::json hf = (*file)->metadata();
    hf.erase("architecture");
    std::ofstream(fs::path(flags.output).parent_path() / "config.json") << hf.dump(2) << "\n";
  }
  fmt::print("{}: whisper {} ({} + {} layers × {} wide), f16 weights\n", flags.output, flags.dims == "0.5b" ? "tiny" : flags.dims,
             config->encoder_layers, config->decoder_layers, config->d_model);
  return kOk;
}

}  // namespace

void register_synth_commands(CLI::App& app, Registry& registry) {
  auto flags = std::make_shared<SynthFlags>();
  auto* command = app.add_subcommand("synth", "Write a random-weight model at real dimensions for benchmarks (qwen2, whisper, voxtral, or a moe ensemble)");
  command->add_option("architecture", flags->architecture, "qwen2, whisper, voxtral or moe")->required()->check(CLI::IsMember({"qwen2", "whisper", "voxtral", "moe"}));
  command->add_option("--config", flags->config, "qwen2: a Hugging Face config.json giving the dims; voxtral: a Mistral params.json (default: Voxtral Mini 4B Realtime)");
  command->add_option("--dims", flags->dims, "named dims: qwen2 0.5b (default); whisper tiny, base, small, medium, large-v3");
  command->add_option("--dtype", flags->dtype, "qwen2, moe and voxtral .apr matrix dtype: f32, f16, bf16, q8_0, q4_0 (default q4_0; a voxtral folder is bf16)");
  command->add_option("--experts", flags->experts, "moe: expert models (default 8)")->check(CLI::Range(size_t{1}, size_t{4096}));
  command->add_option("--top-k", flags->top_k, "moe: experts each input is routed to (default 2)");
  command->add_option("--widths", flags->widths, "moe: widths of each expert, input first, output last (default 64,256,64)")->delimiter(',');
  command->add_option("--seed", flags->seed, "random seed (same seed, same weights)");
  command->add_option("-o,--output", flags->output, "output .apr, .gguf (qwen2) or .safetensors (config.json written beside it); voxtral: .apr or a folder")->required();
  registry.add(command, [flags] { return run_synth(*flags); });
}

}  // namespace apr::cli
