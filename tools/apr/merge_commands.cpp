// apr merge: several same-architecture models merged tensor by tensor (average, weighted average,
// task arithmetic) into one APR file, written atomically; every tensor's shape is checked first.
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "apr/format/apr_writer.hpp"
#include "apr/format/tensor_merge.hpp"
#include "apr/models/apr_metadata.hpp"
#include "cli.hpp"
#include "model_file.hpp"

namespace apr::cli {
namespace {

/// The APR metadata of the merged model: the first model's own (APR), or what import would
/// write for a Hugging Face folder or a .safetensors file beside a config.json.
Result<nlohmann::json> base_metadata(const std::string& path, const format::TensorFile& file) {
  if (file.format() == "apr") return file.metadata();
  std::error_code ec;
  const auto folder = std::filesystem::is_directory(path, ec) ? std::filesystem::path(path) : std::filesystem::path(file.path()).parent_path();
  if (!std::filesystem::exists(folder / "config.json", ec)) return file.metadata();  // e.g. GGUF keys, kept as they are
  auto sources = models::read_import_sources(folder);
  if (!sources) return std::move(sources).error();
  return models::apr_metadata_for_import(file, *sources, folder.filename().string(), path);
}

}  // namespace

void register_merge_commands(CLI::App& app, Registry& registry) {
  struct Flags {
    std::vector<std::string> files;
    std::string output, strategy = "average", base;
    std::vector<float> weights;
    float scale = 1.0f;
    bool json = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* merge = app.add_subcommand("merge", "Merge same-architecture models (average, weighted, task-arithmetic) into an APR file");
  merge->add_option("files", flags->files, "models: APR, SafeTensors, GGUF files or model folders (two or more; one for task arithmetic)")->required();
  merge->add_option("-o,--output", flags->output, "merged APR file (written atomically)")->required();
  merge->add_option("--strategy", flags->strategy, "average, weighted (Σ wᵢxᵢ/Σ wᵢ) or task-arithmetic (base + scale·Σ wᵢ(xᵢ − base))")
      ->check(CLI::IsMember({"average", "weighted", "task-arithmetic"}));
  merge->add_option("--weights", flags->weights, "one weight per model, comma-separated (weighted, task-arithmetic)")->delimiter(',');
  merge->add_option("--base-model", flags->base, "task-arithmetic: the model the others were fine-tuned from");
  merge->add_option("--scale", flags->scale, "task-arithmetic: scale of the summed task vectors");
  merge->add_flag("--json", flags->json, "print JSON");
  registry.add(merge, [flags] {
    const auto strategy = *format::parse_merge_strategy(flags->strategy);
    const bool task = strategy == format::MergeStrategy::task_arithmetic;
    if (task && flags->base.empty()) return report(make_error(ErrorCode::invalid_argument, "--strategy task-arithmetic needs --base-model"));
    if (!task && !flags->base.empty()) return report(make_error(ErrorCode::invalid_argument, "--base-model is for --strategy task-arithmetic"));
    if (!task && flags->files.size() < 2) return report(make_error(ErrorCode::invalid_argument, "merge needs at least two models"));
    if (strategy == format::MergeStrategy::weighted && flags->weights.empty()) return report(make_error(ErrorCode::invalid_argument, "--strategy weighted needs --weights"));
    if (strategy == format::MergeStrategy::average && !flags->weights.empty()) return report(make_error(ErrorCode::invalid_argument, "--weights needs --strategy weighted or task-arithmetic"));
    if (!flags->weights.empty() && flags->weights.size() != flags->files.size()) {
      return report(make_error(ErrorCode::invalid_argument, "--weights: {} weights for {} models", flags->weights.size(), flags->files.size()));
    }
    std::vector<std::shared_ptr<format::TensorFile>> models;
    for (const auto& path : flags->files) {
      auto file = open_any(path);
      if (!file) return report(file.error());
      models.push_back(std::move(file).value());
    }
    std::shared_ptr<format::TensorFile> base;
    if (task) {
      auto file = open_any(flags->base);
      if (!file) return report(file.error());
      base = std::move(file).value();
    }
    const format::TensorFile& first = task ? *base : *models[0];
    const auto names = tensors_by_hf_name(first);
    std::vector<std::map<std::string, const TensorView*>> by_name;
    for (const auto& model : models) by_name.push_back(tensors_by_hf_name(*model));
    std::vector<std::string> problems;
    for (size_t m = 0; m < models.size(); ++m) {
      if (by_name[m].size() != names.size()) problems.push_back(fmt::format("{}: {} tensors, the first model has {}", flags->files[m], by_name[m].size(), names.size()));
      for (const auto& [name, tensor] : names) {
        const auto match = by_name[m].find(name);
        if (match == by_name[m].end()) problems.push_back(fmt::format("{}: no tensor '{}'", flags->files[m], name));
        else if (!(match->second->shape == tensor->shape)) {
          problems.push_back(fmt::format("{}: tensor '{}' is {}, the first model's is {}", flags->files[m], name, to_string(match->second->shape), to_string(tensor->shape)));
        }
      }
    }
    if (!problems.empty()) {
      for (const auto& p : problems) fmt::print(stderr, "error: {}\n", p);
      if (flags->json) print_json({{"merged", false}, {"problems", problems}});
      return int{kValidationFailed};
    }
    auto metadata = base_metadata(task ? flags->base : flags->files[0], first);
    if (!metadata) return report(metadata.error());
    metadata->erase("quantization");  // merged tensors are written as F32
    (*metadata)["merge"] = {{"strategy", flags->strategy}, {"models", flags->files}, {"weights", flags->weights}};
    if (task) {
      (*metadata)["merge"]["base_model"] = flags->base;
      (*metadata)["merge"]["scale"] = flags->scale;
    }
    std::vector<format::AprWriteTensor> tensors;
    Progress progress("merging", first.tensors().size());
    size_t done = 0;
    for (const auto& [name, tensor] : names) {
      tensors.push_back({name, DType::f32, tensor->shape, tensor->numel() * 4, std::nullopt, [&, name = name, tensor = tensor](format::ByteSink& sink) -> Result<void> {
                           std::vector<std::vector<float>> values;
                           for (const auto& model : by_name) {
                             auto decoded = format::tensor_to_f32(*model.at(name));
                             if (!decoded) return std::move(decoded).error();
                             values.push_back(std::move(decoded).value());
                           }
                           std::vector<float> base_values;
                           if (base) {
                             auto decoded = format::tensor_to_f32(*tensor);
                             if (!decoded) return std::move(decoded).error();
                             base_values = std::move(decoded).value();
                           }
                           const std::vector<std::span<const float>> spans(values.begin(), values.end());
                           auto merged = format::merge_values(strategy, spans, flags->weights, base_values, flags->scale);
                           if (!merged) return std::move(merged).error();
                           progress.update(++done);
                           return sink.write(std::as_bytes(std::span(*merged)));
                         }});
    }
    auto status = format::write_apr(flags->output, format::apr_metadata_text(*metadata), std::move(tensors));
    progress.finish();
    if (!status) return report(status.error());
    if (flags->json) {
      print_json({{"merged", true}, {"output", flags->output}, {"strategy", flags->strategy}, {"models", flags->files}, {"tensors", first.tensors().size()}});
    } else {
      fmt::print("{}: {} tensors merged ({}) from {} model(s)\n", flags->output, first.tensors().size(), flags->strategy, flags->files.size());
    }
    return int{kOk};
  });
}

}  // namespace apr::cli
