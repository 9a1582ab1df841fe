/// @file voxtral_load.hpp
/// @brief load_voxtral(): open a Voxtral-Realtime model (Mistral's folder: params.json +
/// consolidated.safetensors, or an APR file whose metadata holds params.json under
/// "voxtral.params") behind VoxtralTranscriber, in the file's weight dtype or the one asked for,
/// with the transcription delay of the file or the one asked for; open_voxtral() reads the
/// config without loading; voxtral_apr_metadata() describes a folder for `apr import`;
/// voxtral_tokenizer() finds its Tekken tokenizer (embedded in the APR file or tekken.json
/// beside the weights).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "apr/audio/mel.hpp"
#include "apr/format/detect.hpp"
#include "apr/models/load.hpp"
#include "apr/models/voxtral.hpp"
#include "apr/models/voxtral_stream.hpp"
#include "apr/text/tekken.hpp"

namespace apr::models {

/// Streaming Voxtral transcription over a weight dtype chosen at run time: start(), feed()…, finish().
class VoxtralTranscriber {
 public:
  virtual ~VoxtralTranscriber() = default;
  /// The model's dims and streaming settings.
  [[nodiscard]] virtual const VoxtralConfig& config() const noexcept = 0;
  /// The matmul dtype the model runs in.
  [[nodiscard]] virtual DType weight_dtype() const noexcept = 0;
  /// Begins a new stream (dropping any unfinished one); feed() without it starts one with the
  /// default options. The first call also runs the left pad that every stream starts from.
  virtual Result<void> start(const VoxtralStreamOptions& options) = 0;
  /// Adds 16 kHz samples to the stream; returns the ids they decided.
  virtual Result<std::vector<int32_t>> feed(std::span<const float> samples) = 0;
  /// Ends the stream; returns the last ids.
  virtual Result<std::vector<int32_t>> finish() = 0;
};

/// VoxtralTranscriber over VoxtralRealtime<W>.
template <WeightDtype W>
class VoxtralTranscriberOf final : public VoxtralTranscriber {
 public:
  /// Takes the model; the front end is built for its mel bands; work runs on `pool`.
  VoxtralTranscriberOf(std::unique_ptr<VoxtralRealtime<W>> model, audio::LogMel front_end, ThreadPool& pool)
      : model_(std::move(model)), front_end_(std::move(front_end)), pool_(&pool) {}
  [[nodiscard]] const VoxtralConfig& config() const noexcept override { return model_->config(); }
  [[nodiscard]] DType weight_dtype() const noexcept override { return W::dtype; }
  Result<void> start(const VoxtralStreamOptions& options) override {
    stream_.reset();
    if (!start_) {
      auto computed = VoxtralStreamStart<W>::compute(*model_, front_end_, *pool_);
      if (!computed) return std::move(computed).error();
      start_.emplace(std::move(computed).value());
    }
    stream_.emplace(*start_, *pool_, options);
    return ok();
  }
  Result<std::vector<int32_t>> feed(std::span<const float> samples) override {
    if (!stream_) {
      if (auto started = start({}); !started) return std::move(started).error();
    }
    return stream_->feed(samples);
  }
  Result<std::vector<int32_t>> finish() override {
    if (!stream_) {
      if (auto started = start({}); !started) return std::move(started).error();
    }
    auto rest = stream_->finish();
    stream_.reset();
    return rest;
  }

 private:
  std::unique_ptr<VoxtralRealtime<W>> model_;
  audio::LogMel front_end_;
  ThreadPool* pool_;
  std::optional<VoxtralStreamStart<W>> start_;  ///< computed at the first start(), shared by every stream after
  std::optional<VoxtralStream<W>> stream_;
};

/// True when `path` is a Voxtral model: a folder with params.json and consolidated.safetensors,
/// or an APR file with "voxtral.params" in its metadata.
inline bool is_voxtral_model(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) return fs::exists(fs::path(path) / "params.json", ec) && fs::exists(fs::path(path) / "consolidated.safetensors", ec);
  auto file = format::open_tensor_file(path);
  return file && (*file)->format() == "apr" && (*file)->metadata().contains("voxtral.params");
}

/// The params.json an APR file's `metadata` holds under "voxtral.params" (an object, or text of
/// one), as an object; null when there is none or it is not JSON.
inline nlohmann::json voxtral_params_in(const nlohmann::json& metadata) {
  if (!metadata.is_object() || !metadata.contains("voxtral.params")) return nullptr;
  const nlohmann::json& params = metadata["voxtral.params"];
  if (!params.is_string()) return params;
  auto parsed = nlohmann::json::parse(params.get<std::string>(), nullptr, false);
  return parsed.is_discarded() ? nlohmann::json(nullptr) : parsed;
}

/// A Voxtral model's opened weights and its config, before any weight is read or converted.
struct VoxtralFiles {
  std::shared_ptr<const format::TensorFile> file;  ///< consolidated.safetensors or the APR file
  nlohmann::json params;                           ///< params.json as read (folder) or "voxtral.params" (APR)
  VoxtralConfig config;                            ///< read from `params`
};

/// Opens the Voxtral model at `path` (see is_voxtral_model()); `delay_ms` overrides its
/// transcription delay (80 to 2400 ms).
inline Result<VoxtralFiles> open_voxtral(const std::string& path, std::optional<size_t> delay_ms = std::nullopt) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const bool is_directory = fs::is_directory(path, ec);
  const fs::path weights = is_directory ? fs::path(path) / "consolidated.safetensors" : fs::path(path);
  auto opened = format::open_tensor_file(weights.string());
  if (!opened) return std::move(opened).error();
  std::shared_ptr<const format::TensorFile> file = std::move(opened).value();
  nlohmann::json params;
  if (is_directory) {
    auto json = read_json_file(fs::path(path) / "params.json");
    if (!json) return std::move(json).error();
    params = std::move(json).value();
  } else if (file->format() == "apr") {
    params = voxtral_params_in(file->metadata());
  }
  if (!params.is_object()) return make_error(ErrorCode::format, "{}: no Voxtral params.json (folder) or voxtral.params (APR metadata)", path);
  auto config = VoxtralConfig::from_params_json(params);
  if (!config) return std::move(config).error().with_context(path);
  if (delay_ms) {
    if (auto status = config->set_delay_ms(*delay_ms); !status) return std::move(status).error();
  }
  return VoxtralFiles{std::move(file), std::move(params), *config};
}

/// Loads the Voxtral model at `path` (see is_voxtral_model()) to run on `pool`; `weight_dtype`
/// overrides the file's matmul dtype and `delay_ms` its transcription delay (80 to 2400 ms).
inline Result<std::unique_ptr<VoxtralTranscriber>> load_voxtral(const std::string& path, std::optional<DType> weight_dtype, ThreadPool& pool,
                                                                 std::optional<size_t> delay_ms = std::nullopt) {
  auto opened = open_voxtral(path, delay_ms);
  if (!opened) return std::move(opened).error();
  const VoxtralConfig& config = opened->config;
  const std::shared_ptr<const format::TensorFile>& file = opened->file;
  auto front_end = audio::LogMel::create(config.num_mel_bins);
  if (!front_end) return std::move(front_end).error();
  return visit_dtype(weight_dtype.value_or(dominant_matrix_dtype(*file)), [&](auto tag) -> Result<std::unique_ptr<VoxtralTranscriber>> {
    using W = decltype(tag);
    auto model = VoxtralRealtime<W>::load(file, config, &pool);
    if (!model) return std::move(model).error().with_context(path);
    return std::unique_ptr<VoxtralTranscriber>(new VoxtralTranscriberOf<W>(std::move(model).value(), std::move(front_end).value(), pool));
  });
}

/// APR metadata for the Voxtral model `opened` from `folder`: aprender's common fields, its
/// params.json under "voxtral.params" and the folder's tekken.json (checked) under
/// "tokenizer.tekken" when there is one.
inline Result<nlohmann::json> voxtral_apr_metadata(const VoxtralFiles& opened, const std::filesystem::path& folder, const std::string& name,
                                                   const std::string& source) {
  uint64_t count = 0, bytes = 0;
  for (const auto& t : opened.file->tensors()) {
    count += t.numel();
    bytes += t.bytes.size();
  }
  const VoxtralConfig& c = opened.config;
  nlohmann::json metadata = {{"model_type", "voxtral_realtime"}, {"architecture", "voxtral_realtime"}, {"name", name}, {"source", source},
                             {"original_format", std::string(opened.file->format())}, {"total_size", bytes}, {"param_count", count},
                             {"hidden_size", c.decoder.dim}, {"num_layers", c.decoder.n_layers}, {"num_heads", c.decoder.n_heads},
                             {"num_kv_heads", c.decoder.n_kv_heads}, {"vocab_size", c.vocab_size}, {"intermediate_size", c.decoder.hidden_dim},
                             {"rope_theta", c.decoder.rope_theta}, {"rms_norm_eps", c.decoder.norm_eps}, {"head_dim", c.decoder.head_dim},
                             {"voxtral.params", opened.params}};
  std::error_code ec;
  if (std::filesystem::exists(folder / "tekken.json", ec)) {
    auto text = text::read_text_file((folder / "tekken.json").string());
    if (!text) return std::move(text).error();
    if (auto checked = text::tekken_from_json(*text, (folder / "tekken.json").string()); !checked) return std::move(checked).error();
    metadata["tokenizer.tekken"] = std::move(text).value();
  }
  return metadata;
}

/// The Tekken tokenizer of the Voxtral model at `path`: `explicit_path` when given, else the one
/// an APR file embeds ("tokenizer.tekken"), else the tekken.json in the model's folder (or beside
/// its file); not_found when there is none.
inline Result<text::Tokenizer> voxtral_tokenizer(const std::string& path, const std::string& explicit_path = {}) {
  namespace fs = std::filesystem;
  if (!explicit_path.empty()) {
    if (!text::is_tekken_file_name(explicit_path)) {
      return make_error(ErrorCode::invalid_argument, "{}: a Voxtral tokenizer is a Tekken file (a .json whose name contains 'tekken')", explicit_path);
    }
    return text::load_tekken(explicit_path);
  }
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    auto file = format::open_tensor_file(path);
    if (file && (*file)->format() == "apr" && (*file)->metadata().contains("tokenizer.tekken") && (*file)->metadata()["tokenizer.tekken"].is_string()) {
      return text::tekken_from_json((*file)->metadata()["tokenizer.tekken"].get<std::string>(), path + " (tokenizer.tekken)");
    }
  }
  const fs::path folder = fs::is_directory(path, ec) ? fs::path(path) : fs::path(path).parent_path();
  const fs::path tekken = folder / "tekken.json";
  if (!fs::exists(tekken, ec)) return make_error(ErrorCode::not_found, "{}: no tekken.json beside the model", folder.string());
  return text::load_tekken(tekken.string());
}

}  // namespace apr::models
