// apr lint: best-practice checks of a model file: tensor naming, metadata and license, data
// alignment, all-zero / NaN tensors, index order. Exit 1 when there is a warning or an error.
#include <algorithm>
#include <filesystem>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "apr/core/mapped_file.hpp"
#include "apr/format/apr_layout_map.hpp"
#include "cli.hpp"
#include "model_file.hpp"

namespace apr::cli {
namespace {

/// One finding: a code users can --ignore, its severity and what was found.
struct Finding {
  std::string code, severity, message;
};

/// Checks of the raw APR layout the strict reader refuses to open past: index order and alignment.
void lint_apr_layout(const std::string& path, std::vector<Finding>& findings) {
  auto mapped = MappedFile::open(path);
  if (!mapped) return;
  const auto map = format::map_apr_layout(mapped->bytes());
  if (!map.problem.empty()) findings.push_back({"layout", "error", map.problem});
  for (auto [label, offset] : {std::pair{"tensor_index_offset", map.index_offset}, std::pair{"data_offset", map.data_offset}}) {
    if (offset % format::apr_v2::kAlignment != 0) findings.push_back({"unaligned", "error", fmt::format("{} {:#x} is not a multiple of 64", label, offset)});
  }
  for (size_t i = 0; i < map.entries.size(); ++i) {
    const auto& entry = map.entries[i];
    if (entry.data_offset % format::apr_v2::kAlignment != 0) {
      findings.push_back({"unaligned", "error", fmt::format("tensor '{}': data offset {:#x} is not a multiple of 64", entry.name, entry.data_offset)});
    }
    if (i > 0 && entry.name < map.entries[i - 1].name) {
      findings.push_back({"unsorted-index", "error", fmt::format("index is not sorted by name: '{}' follows '{}'", entry.name, map.entries[i - 1].name)});
    }
  }
}

/// Tensor names: characters, empty parts, and one naming scheme per file.
void lint_names(const format::TensorFile& file, std::vector<Finding>& findings) {
  bool hf = false, gguf = false;
  for (const TensorView& tensor : file.tensors()) {
    const std::string_view name = tensor.name;
    const bool clean = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.';
    });
    if (!clean) findings.push_back({"naming", "warning", fmt::format("tensor '{}': names use letters, digits, '_' and '.' only", name)});
    else if (name.front() == '.' || name.back() == '.' || name.find("..") != std::string_view::npos) {
      findings.push_back({"naming", "warning", fmt::format("tensor '{}': empty name part", name)});
    }
    hf = hf || name.starts_with("model.") || name == "lm_head.weight";
    gguf = gguf || name.starts_with("blk.") || name.starts_with("token_embd.");
  }
  if (hf && gguf) findings.push_back({"naming", "warning", "mixes Hugging Face (model.layers.N.*) and llama.cpp (blk.N.*) tensor names"});
  if (file.format() == "apr" && gguf) findings.push_back({"naming", "warning", "APR files keep Hugging Face tensor names; this one has llama.cpp names"});
}

/// Metadata every model file should carry, by format, and its license.
void lint_metadata(const std::string& path, const format::TensorFile& file, std::vector<Finding>& findings) {
  const nlohmann::json& m = file.metadata();
  auto present = [&](const std::string& key) { return m.contains(key) && !m[key].is_null() && m[key] != ""; };
  std::vector<std::string> wanted, license;
  if (file.format() == "apr") {
    wanted = {"model_type", "architecture", "name"};
    license = {"license"};
  } else if (file.format() == "gguf") {
    wanted = {"general.architecture", "general.name"};
    license = {"general.license"};
  } else {  // SafeTensors: __metadata__ is optional; a folder's config.json says what the model is
    std::error_code ec;
    const auto folder = std::filesystem::is_directory(path, ec) ? std::filesystem::path(path) : std::filesystem::path(file.path()).parent_path();
    if (!std::filesystem::exists(folder / "config.json", ec)) findings.push_back({"missing-metadata", "warning", "no config.json beside the SafeTensors file"});
    license = {"license"};
    if (std::filesystem::exists(folder / "LICENSE", ec) || std::filesystem::exists(folder / "README.md", ec)) license.clear();
  }
  for (const auto& key : wanted) {
    if (!present(key)) findings.push_back({"missing-metadata", "warning", fmt::format("metadata has no '{}'", key)});
  }
  if (!license.empty() && !present(license.front())) {
    findings.push_back({"missing-license", "warning", fmt::format("no license: set metadata '{}'", license.front())});
  }
}

/// Tensor data: offsets aligned for its format, no tensor all zeros or holding NaN/Inf.
void lint_tensors(const format::TensorFile& file, std::vector<Finding>& findings) {
  const uint64_t alignment = file.format() == "gguf" ? file.metadata().value("general.alignment", uint64_t{32}) : 0;
  for (const TensorView& tensor : file.tensors()) {
    if (auto offset = file.data_offset(tensor)) {
      const uint64_t element = std::max<uint64_t>(1, std::min<uint64_t>(8, dtype_bytes(tensor.dtype, 1).value_or(1)));
      const uint64_t needed = alignment != 0 ? alignment : element;
      if (file.format() != "apr" && *offset % needed != 0) {
        findings.push_back({"unaligned", "warning", fmt::format("tensor '{}': data at {:#x} is not {}-byte aligned", tensor.name, *offset, needed)});
      }
    }
    auto stats = tensor_stats(tensor);
    if (!stats) {
      findings.push_back({"undecodable", "info", fmt::format("tensor '{}': values not checked ({})", tensor.name, stats.error().message)});
      continue;
    }
    if (stats->nan > 0 || stats->inf > 0) {
      findings.push_back({"nan", "error", fmt::format("tensor '{}': {} NaN and {} Inf values", tensor.name, stats->nan, stats->inf)});
    }
    if (tensor.numel() > 0 && stats->zeros == tensor.numel()) findings.push_back({"all-zero", "warning", fmt::format("tensor '{}': every value is zero", tensor.name)});
  }
}

}  // namespace

void register_lint_commands(CLI::App& app, Registry& registry) {
  struct Flags {
    std::string path;
    std::vector<std::string> ignore;
    bool json = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* lint = app.add_subcommand("lint", "Check a model file for best practices: naming, metadata and license, alignment, all-zero or NaN tensors, index order");
  lint->add_option("file", flags->path, "APR, SafeTensors (or index), GGUF file or model folder")->required();
  lint->add_option("--ignore", flags->ignore, "finding codes to leave out (naming, missing-metadata, missing-license, unaligned, unsorted-index, all-zero, nan, layout)")
      ->delimiter(',');
  lint->add_flag("--json", flags->json, "print JSON");
  registry.add(lint, [flags] {
    std::vector<Finding> findings;
    auto kind = format::detect_format(flags->path);
    if (!kind) return report(kind.error());
    if (*kind == format::FileFormat::apr_v2) lint_apr_layout(flags->path, findings);
    auto file = open_any(flags->path);
    if (file) {
      lint_names(**file, findings);
      lint_metadata(flags->path, **file, findings);
      lint_tensors(**file, findings);
    } else if (*kind == format::FileFormat::apr_v2 && file.error().code == ErrorCode::format) {
      findings.push_back({"layout", "error", file.error().message});  // the raw checks above said where
    } else {
      return report(file.error());
    }
    const std::set<std::string> ignored(flags->ignore.begin(), flags->ignore.end());
    std::erase_if(findings, [&](const Finding& f) { return ignored.contains(f.code); });
    const bool clean = std::none_of(findings.begin(), findings.end(), [](const Finding& f) { return f.severity != "info"; });
    if (flags->json) {
      nlohmann::json list = nlohmann::json::array();
      for (const auto& f : findings) list.push_back({{"code", f.code}, {"severity", f.severity}, {"message", f.message}});
      print_json({{"path", flags->path}, {"clean", clean}, {"findings", list}});
    } else {
      for (const auto& f : findings) fmt::print("{}: [{}] {}\n", f.severity, f.code, f.message);
      fmt::print("{}: {} finding(s), {}\n", flags->path, findings.size(), clean ? "clean" : "NOT CLEAN");
    }
    return clean ? int{kOk} : int{kValidationFailed};
  });
}

}  // namespace apr::cli
