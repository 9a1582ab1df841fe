/// @file load_whisper.hpp
/// @brief load_whisper(): open a Whisper model (Hugging Face folder, .safetensors with a
/// config.json beside it, or an APR file with the dims, and possibly the tokenizer, in its
/// metadata) in the weight dtype of the file or the one asked for.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "apr/audio/mel.hpp"
#include "apr/format/detect.hpp"
#include "apr/format/tensor_values.hpp"
#include "apr/models/load.hpp"
#include "apr/models/whisper.hpp"
#include "apr/text/load_tokenizer.hpp"

namespace apr::models {

/// A loaded Whisper model and where it came from.
struct LoadedWhisper {
  std::unique_ptr<WhisperModel> model;  ///< ready to run
  nlohmann::json config;                ///< config.json or the APR metadata
  std::string directory;                ///< folder that may hold the tokenizer files
  std::vector<float> mel_filters;       ///< the file's audio.mel_filters ([num_mel_bins][201]), if it has them
  std::string tokenizer_json;           ///< the tokenizer.json an APR file's metadata carries (may be empty)

  /// The log-mel front end for the model: the file's filterbank, else the one computed by apr.
  [[nodiscard]] Result<audio::LogMel> front_end() const {
    const size_t n_mels = model->config().num_mel_bins;
    return mel_filters.empty() ? audio::LogMel::create(n_mels) : audio::LogMel::create(n_mels, mel_filters);
  }
};

/// The mel filterbank `file` carries as audio.mel_filters ([num_mel_bins][201], any float dtype),
/// or an empty vector when it has none; `path` names the file in errors.
inline Result<std::vector<float>> read_mel_filters(const format::TensorFile& file, const WhisperConfig& config, const std::string& path) {
  const TensorView* filters = file.find("audio.mel_filters");
  if (filters == nullptr) return std::vector<float>();
  auto values = format::tensor_to_f32(*filters);
  if (!values) return std::move(values).error().with_context(path);
  if (values->size() != config.num_mel_bins * audio::kFrequencyBins) {
    return make_error(ErrorCode::format, "{}: audio.mel_filters has {} values, expected {} × {}", path, values->size(), config.num_mel_bins,
                      audio::kFrequencyBins);
  }
  return std::move(values).value();
}

/// Instantiates Whisper<W> over `file` for the dtype `dtype` chosen at run time.
inline Result<std::unique_ptr<WhisperModel>> make_whisper(std::shared_ptr<const format::TensorFile> file, const WhisperConfig& config,
                                                          DType dtype, WhisperOptions options = {}) {
  return visit_dtype(dtype, [&](auto tag) -> Result<std::unique_ptr<WhisperModel>> {
    auto model = Whisper<decltype(tag)>::load(file, config, {}, options);
    if (!model) return std::move(model).error();
    return std::unique_ptr<WhisperModel>(std::move(model).value());
  });
}

/// Loads the Whisper model at `path`; `weight_dtype` overrides the file's matmul dtype.
inline Result<LoadedWhisper> load_whisper(const std::string& path, std::optional<DType> weight_dtype = std::nullopt,
                                          WhisperOptions options = {}) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path input(path);
  if (!fs::exists(input, ec)) return make_error(ErrorCode::not_found, "{}: no such file or directory", path);
  const bool is_directory = fs::is_directory(input, ec);
  const fs::path directory = is_directory ? input : input.parent_path();
  const fs::path weights = is_directory ? directory / "model.safetensors" : input;
  auto opened = format::open_tensor_file(weights.string());
  if (!opened) return std::move(opened).error();
  std::shared_ptr<const format::TensorFile> file = std::move(opened).value();
  LoadedWhisper loaded{nullptr, {}, directory.string(), {}, {}};
  Result<WhisperConfig> config = make_error(ErrorCode::internal, "unset");
  if (file->format() == "apr") {
    loaded.config = file->metadata();
    config = WhisperConfig::from_apr_metadata(loaded.config);
    if (loaded.config.contains("tokenizer.json") && loaded.config["tokenizer.json"].is_string()) {
      loaded.tokenizer_json = loaded.config["tokenizer.json"].get<std::string>();
    }
  } else {
    auto json = read_json_file(directory / "config.json");
    if (!json) return std::move(json).error();
    loaded.config = std::move(json).value();
    config = WhisperConfig::from_hf_json(loaded.config);
  }
  if (!config) return std::move(config).error().with_context(path);
  auto filters = read_mel_filters(*file, *config, path);
  if (!filters) return std::move(filters).error();
  loaded.mel_filters = std::move(filters).value();
  auto model = make_whisper(file, *config, weight_dtype.value_or(dominant_matrix_dtype(*file)), options);
  if (!model) return std::move(model).error().with_context(path);
  loaded.model = std::move(model).value();
  return loaded;
}

/// The tokenizer of `loaded`: `explicit_path` when given, else the tokenizer.json its APR file
/// carries, else the tokenizer files in its folder.
inline Result<text::Tokenizer> whisper_tokenizer(const LoadedWhisper& loaded, const std::string& explicit_path = {}) {
  if (explicit_path.empty() && !loaded.tokenizer_json.empty()) {
    return text::Tokenizer::from_tokenizer_json(loaded.tokenizer_json, "metadata tokenizer.json");
  }
  return text::load_tokenizer(explicit_path.empty() ? loaded.directory : explicit_path);
}

}  // namespace apr::models
