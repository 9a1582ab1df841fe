// apr pipeline: fetch -> detect -> import -> validate -> convert at each level (precision gate)
// -> validate -> perplexity -> logit consistency -> golden prompts -> Pareto report, per model of
// a JSON or YAML file. Each stage runs this same binary as a child process (the stage is exactly the
// command a user would type), its result is kept in WORK/<model>/stages.json under a hash of its
// command and input files, and a rerun skips every stage whose hash is unchanged.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "apr/format/detect.hpp"
#include "apr/format/hub.hpp"
#include "apr/text/tokenizer.hpp"
#include "cli.hpp"
#include "model_support.hpp"
#include "yaml_json.hpp"

extern char** environ;

namespace apr::cli {
namespace {

namespace fs = std::filesystem;

/// What a child process printed and how it ended.
struct ChildResult {
  int exit_code = -1;   ///< exit status (or 128 + signal)
  std::string out;      ///< its stdout
  std::string err;      ///< its stderr
};

/// Runs `argv` with stdout and stderr sent to files in `scratch`, and waits for it.
Result<ChildResult> run_child(const std::vector<std::string>& argv, const fs::path& scratch) {
  const fs::path out_path = scratch / "stage.stdout", err_path = scratch / "stage.stderr";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) return make_error(ErrorCode::io, "cannot start {}: {}", argv[0], std::strerror(spawned));
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return make_error(ErrorCode::io, "waiting for {} failed", argv[0]);
  ChildResult result;
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  auto out = text::read_text_file(out_path.string());
  auto err = text::read_text_file(err_path.string());
  result.out = out ? *out : "";
  result.err = err ? *err : "";
  return result;
}

/// The last non-empty line of `text` (a child's error message), without the "error: " prefix.
std::string last_line(const std::string& text) {
  std::istringstream lines(text);
  std::string line, last;
  while (std::getline(lines, line)) {
    if (!line.empty()) last = line;
  }
  if (last.starts_with("error: ")) last = last.substr(7);
  return last;
}

/// `json[key]` as a number, or 0 when it is missing or not a number (child output is not trusted).
double number_at(const nlohmann::json& json, const char* key) {
  return json.is_object() && json.contains(key) && json[key].is_number() ? json[key].get<double>() : 0.0;
}

/// `json[key]` as a boolean, or false when it is missing or not a boolean.
bool flag_at(const nlohmann::json& json, const char* key) {
  return json.is_object() && json.contains(key) && json[key].is_boolean() && json[key].get<bool>();
}

/// `json[key]`, or null when `json` is not an object or lacks it.
nlohmann::json member(const nlohmann::json& json, const char* key) {
  return json.is_object() && json.contains(key) ? json[key] : nlohmann::json();
}

/// One model of the pipeline file.
struct ModelSpec {
  std::string name;                      ///< folder name under the work directory
  std::string source;                    ///< local path or hf://org/name[@revision]
  std::vector<std::string> levels;       ///< dtypes to convert to (q8_0, q4_0, ...)
  std::string text;                      ///< text file for perplexity, consistency and the Pareto report
  std::string golden;                    ///< golden suite file (optional)
  double min_pass_rate = 0.0;            ///< golden: pass rate needed
  double max_perplexity_increase = 0.05; ///< a level halts when its perplexity exceeds the reference's by more
  double consistency_threshold = 0.9;    ///< top-k agreement needed
};

/// Reads the pipeline file (JSON, or YAML when named .yaml/.yml): {"models": [{"name", "source", "levels", "text", "golden", ...}]};
/// relative paths are taken from the file's folder.
Result<std::vector<ModelSpec>> read_pipeline(const std::string& path) {
  auto text = read_json_or_yaml(path);
  if (!text) return std::move(text).error();
  const auto json = nlohmann::json::parse(*text, nullptr, false);
  if (json.is_discarded() || !json.is_object()) return make_error(ErrorCode::format, "{}: not a JSON object", path);
  if (!json.contains("models") || !json["models"].is_array() || json["models"].empty()) {
    return make_error(ErrorCode::format, "{}: 'models' must be a non-empty array", path);
  }
  const fs::path base = fs::path(path).parent_path();
  auto resolve = [&](const std::string& p) { return p.empty() || format::is_hub_uri(p) || fs::path(p).is_absolute() ? p : (base / p).string(); };
  std::vector<ModelSpec> specs;
  for (size_t i = 0; i < json["models"].size(); ++i) {
    const auto& item = json["models"][i];
    auto field = [&](const char* key) { return fmt::format("{}: models[{}].{}", path, i, key); };
    if (!item.is_object()) return make_error(ErrorCode::format, "{}: models[{}] must be an object", path, i);
    for (const char* key : {"name", "source", "text"}) {
      if (!item.contains(key) || !item[key].is_string() || item[key].get<std::string>().empty()) {
        return make_error(ErrorCode::format, "{} must be a non-empty string", field(key));
      }
    }
    ModelSpec spec;
    spec.name = item["name"].get<std::string>();
    if (spec.name.find('/') != std::string::npos || spec.name == "." || spec.name == "..") {
      return make_error(ErrorCode::format, "{} must be a plain folder name", field("name"));
    }
    spec.source = resolve(item["source"].get<std::string>());
    spec.text = resolve(item["text"].get<std::string>());
    if (item.contains("levels")) {
      if (!item["levels"].is_array()) return make_error(ErrorCode::format, "{} must be an array of dtypes", field("levels"));
      for (const auto& level : item["levels"]) {
        const auto dtype = level.is_string() ? parse_dtype(level.get<std::string>()) : std::nullopt;
        if (!dtype || !is_weight_dtype(*dtype)) return make_error(ErrorCode::format, "{}: expected f16, bf16, q8_0 or q4_0", field("levels"));
        spec.levels.push_back(level.get<std::string>());
      }
    }
    if (item.contains("golden")) {
      if (!item["golden"].is_string()) return make_error(ErrorCode::format, "{} must be a file name", field("golden"));
      spec.golden = resolve(item["golden"].get<std::string>());
    }
    for (auto [key, target] : {std::pair{"min_pass_rate", &spec.min_pass_rate}, std::pair{"max_perplexity_increase", &spec.max_perplexity_increase},
                               std::pair{"consistency_threshold", &spec.consistency_threshold}}) {
      if (!item.contains(key)) continue;
      if (!item[key].is_number() || item[key].get<double>() < 0.0) return make_error(ErrorCode::format, "{} must be a number >= 0", field(key));
      *target = item[key].get<double>();
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

/// One stage's outcome, as reported and as kept in stages.json.
struct StageResult {
  std::string stage;           ///< e.g. "convert q4_0"
  std::string status;          ///< ok, cached, HALT, skipped
  std::string detail;          ///< a short summary or the HALT reason
  double seconds = 0.0;        ///< wall time (0 when cached)
  nlohmann::json output;       ///< the command's JSON output, if any
};

/// Runs the stages of one model, keeping their results in `state_path`.
class ModelRun {
 public:
  ModelRun(std::string self, fs::path dir) : self_(std::move(self)), dir_(std::move(dir)), state_path_(dir_ / "stages.json") {
    if (auto text = text::read_text_file(state_path_.string())) {
      auto json = nlohmann::json::parse(*text, nullptr, false);
      if (json.is_object()) state_ = std::move(json);
    }
  }

  /// Runs `args` (after the apr binary) as stage `stage` unless its hash over `inputs` is the one
  /// recorded with a success; `outputs` must exist for a cached result to count. `summarize`
  /// turns the JSON output into the one-line detail and returns false when the stage fails its check.
  StageResult run(const std::string& stage, const std::vector<std::string>& args, const std::vector<std::string>& inputs,
                  const std::vector<std::string>& outputs, const std::function<bool(const nlohmann::json&, std::string&)>& summarize) {
    StageResult result{stage, "", "", 0.0, nullptr};
    auto key = stage_hash(args, inputs);
    if (!key) return halt(std::move(result), key.error().message);
    const auto& saved = state_.contains(stage) ? state_[stage] : nlohmann::json();
    const bool outputs_exist = std::all_of(outputs.begin(), outputs.end(), [](const std::string& p) { return fs::exists(p); });
    if (member(saved, "hash") == *key && member(saved, "status") == "ok" && outputs_exist) {
      result.status = "cached";
      result.output = member(saved, "output");
      summarize(result.output, result.detail);  // the values later stages compare against
      return result;
    }
    std::vector<std::string> argv{self_};
    argv.insert(argv.end(), args.begin(), args.end());
    const auto start = std::chrono::steady_clock::now();
    auto child = run_child(argv, dir_);
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!child) return halt(std::move(result), child.error().message);
    result.output = nlohmann::json::parse(child->out, nullptr, false);
    if (result.output.is_discarded()) result.output = nullptr;
    const bool checked = summarize(result.output, result.detail);
    if (child->exit_code != 0 || !checked) {
      std::string reason = child->exit_code != 0 ? last_line(child->err) : result.detail;
      if (reason.empty()) reason = fmt::format("exit {}", child->exit_code);
      return halt(std::move(result), reason);
    }
    result.status = "ok";
    record(result, *key);
    return result;
  }

 private:
  StageResult halt(StageResult result, std::string reason) {
    result.status = "HALT";
    result.detail = std::move(reason);
    record(result, "");
    return result;
  }

  /// SHA-256 over the command line and the content hashes of the input files.
  Result<std::string> stage_hash(const std::vector<std::string>& args, const std::vector<std::string>& inputs) const {
    std::string material = fmt::format("{}\n", fmt::join(args, "\x1f"));
    for (const auto& input : inputs) {
      std::error_code ec;
      if (fs::is_directory(input, ec)) {
        std::vector<fs::path> files;
        for (const auto& entry : fs::directory_iterator(input, ec)) {
          if (entry.is_regular_file()) files.push_back(entry.path());
        }
        std::sort(files.begin(), files.end());
        for (const auto& file : files) {
          auto digest = format::sha256_file(file);
          if (!digest) return std::move(digest).error();
          material += file.filename().string() + "=" + *digest + "\n";
        }
      } else {
        auto digest = format::sha256_file(input);
        if (!digest) return std::move(digest).error();
        material += *digest + "\n";
      }
    }
    std::array<unsigned char, crypto_hash_sha256_BYTES> digest{};  // libsodium is initialised by sha256_file above
    crypto_hash_sha256(digest.data(), reinterpret_cast<const unsigned char*>(material.data()), material.size());
    return format::hex_string(digest);
  }

  void record(const StageResult& result, const std::string& key) {
    state_[result.stage] = {{"hash", key}, {"status", result.status}, {"detail", result.detail}, {"seconds", result.seconds}, {"output", result.output}};
    (void)write_text_atomically(state_path_, state_.dump(1));
  }

  std::string self_;
  fs::path dir_;
  fs::path state_path_;
  nlohmann::json state_ = nlohmann::json::object();
};

/// The path of the running apr binary (stages run it again).
std::string self_path() {
  std::error_code ec;
  const auto path = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("apr") : path.string();
}

/// Runs every stage of `spec`; returns the results in order.
std::vector<StageResult> run_model(const ModelSpec& spec, const fs::path& work) {
  std::vector<StageResult> stages;
  const fs::path dir = work / spec.name;
  std::error_code ec;
  fs::create_directories(dir, ec);
  ModelRun run(self_path(), dir);
  auto add = [&](StageResult r) {
    fmt::print(stderr, "[{}] {:<22} {:<7} {}\n", spec.name, r.stage, r.status, r.detail);
    stages.push_back(r);
    return stages.back().status == "ok" || stages.back().status == "cached";
  };
  auto skip = [&](const std::string& stage, const std::string& why) { add({stage, "skipped", why, 0.0, nullptr}); };

  // fetch: a local path as it is, hf:// through the cache (downloaded when missing)
  const auto fetch_start = std::chrono::steady_clock::now();
  auto local = local_model_path(spec.source);
  const double fetch_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - fetch_start).count();
  if (!local || !fs::exists(*local, ec)) {
    add({"fetch", "HALT", local ? fmt::format("{}: no such file or folder", *local) : local.error().message, fetch_seconds, nullptr});
    return stages;
  }
  add({"fetch", "ok", *local, fetch_seconds, nullptr});

  auto format = format::detect_format(*local);
  if (!format) {
    add({"detect", "HALT", format.error().message, 0.0, nullptr});
    return stages;
  }
  using format::FileFormat;
  const bool apr = *format == FileFormat::apr_v2;
  const bool importable = *format == FileFormat::directory || *format == FileFormat::safetensors || *format == FileFormat::json;
  const char* names[] = {"apr v2", "apr v1", "apr (other)", "gguf", "safetensors", "json index", "pytorch zip", "pickle", "folder", "unknown"};
  const std::string format_name = names[static_cast<int>(*format)];
  if (!apr && !importable && *format != FileFormat::gguf) {
    add({"detect", "HALT", fmt::format("{}: {} cannot be imported", *local, format_name), 0.0, nullptr});
    return stages;
  }
  add({"detect", "ok", format_name, 0.0, nullptr});

  // import: everything is compared as APR; GGUF and APR files are used as they are
  std::string reference = *local;
  if (importable) {
    reference = (dir / (spec.name + ".apr")).string();
    if (!add(run.run("import", {"import", *local, "-o", reference}, {*local}, {reference},
                     [](const nlohmann::json&, std::string& detail) { detail = "as stored"; return true; }))) {
      return stages;
    }
  } else {
    skip("import", format_name + " used as is");
  }

  auto validate = [&](const std::string& stage, const std::string& file) {
    return add(run.run(stage, {"validate", file, "--json"}, {file}, {}, [&](const nlohmann::json& out, std::string& detail) {
      const bool valid = out.is_object() && flag_at(out, "valid");
      const auto problems = member(out, "problems");
      detail = valid ? fmt::format("{} checks passed", member(out, "checks_passed").size())
                     : problems.is_array() && !problems.empty() ? problems[0].dump() : "structure or checksum problems";
      return valid;
    }));
  };
  auto inspect_ok = run.run("inspect", {"inspect", reference, "--json"}, {reference}, {}, [](const nlohmann::json& out, std::string& detail) {
    if (!out.is_object()) return false;
    detail = fmt::format("{} tensors, {} parameters", number_at(out, "tensor_count"), number_at(out, "parameters"));
    return number_at(out, "tensor_count") > 0 && number_at(out, "parameters") > 0;
  });
  if (!add(inspect_ok)) return stages;
  if (apr || importable) {
    if (!validate("validate", reference)) return stages;
  } else {
    skip("validate", "structure checked by inspect (GGUF)");
  }

  auto perplexity = [&](const std::string& stage, const std::string& file, double* ppl) {
    return add(run.run(stage, {"eval", "perplexity", file, "--text", spec.text, "--json"}, {file, spec.text}, {},
                       [&](const nlohmann::json& out, std::string& detail) {
                         if (!out.is_object()) return false;
                         *ppl = number_at(out, "perplexity");
                         detail = fmt::format("ppl {:.3f} (95% CI {:.3f}-{:.3f}) over {} tokens", *ppl, number_at(out, "ppl_low"),
                                              number_at(out, "ppl_high"), number_at(out, "tokens"));
                         return *ppl > 0.0;
                       }));
  };
  double reference_ppl = 0.0;
  if (!perplexity("perplexity", reference, &reference_ppl)) return stages;

  std::vector<std::string> passed_levels;
  for (const auto& level : spec.levels) {
    const std::string file = (dir / fmt::format("{}-{}.apr", spec.name, level)).string();
    if (!add(run.run("convert " + level, {"convert", reference, "--quantize", level, "-o", file, "--json"}, {reference}, {file},
                     [&](const nlohmann::json& out, std::string& detail) {
                       const auto gate = member(out, "gate");
                       detail = gate.is_object() ? fmt::format("gate passed: KL {:.5f}, top-1 {:.1f}%", number_at(gate, "mean_kl"),
                                                               100.0 * number_at(gate, "top1_agreement"))
                                                 : "converted";
                       return true;
                     }))) {
      continue;
    }
    if (!validate("validate " + level, file)) continue;
    double ppl = 0.0;
    if (!perplexity("perplexity " + level, file, &ppl)) continue;
    if (ppl > reference_ppl * (1.0 + spec.max_perplexity_increase)) {
      add({"ppl gate " + level, "HALT", fmt::format("perplexity {:.3f} is {:+.1f}% from the reference's {:.3f} (limit +{:.2f}%)", ppl,
                                                    100.0 * (ppl / reference_ppl - 1.0), reference_ppl, 100.0 * spec.max_perplexity_increase),
           0.0, nullptr});
      continue;
    }
    add({"ppl gate " + level, "ok", fmt::format("{:+.2f}% vs reference", 100.0 * (ppl / reference_ppl - 1.0)), 0.0, nullptr});
    const std::string threshold = fmt::format("{}", spec.consistency_threshold);
    if (!add(run.run("consistency " + level, {"eval", "consistency", reference, file, "--text", spec.text, "--threshold", threshold, "--json"},
                     {reference, file, spec.text}, {}, [](const nlohmann::json& out, std::string& detail) {
                       if (!out.is_object()) return false;
                       detail = fmt::format("top-{} agreement {:.1f}% (threshold {:.0f}%), mean KL {:.5f}", number_at(out, "k"),
                                            100.0 * number_at(out, "agreement_rate"), 100.0 * number_at(out, "threshold"), number_at(out, "mean_kl"));
                       return flag_at(out, "passed");
                     }))) {
      continue;
    }
    passed_levels.push_back(file);
  }

  if (spec.golden.empty()) {
    skip("golden", "no suite given");
  } else {
    std::vector<std::string> variants{reference};
    variants.insert(variants.end(), passed_levels.begin(), passed_levels.end());
    for (const auto& file : variants) {
      const std::string stage = file == reference ? std::string("golden") : "golden " + fs::path(file).stem().string();
      add(run.run(stage, {"eval", "golden", file, "--suite", spec.golden, "--min-pass-rate", fmt::format("{}", spec.min_pass_rate), "--json"},
                  {file, spec.golden}, {}, [&](const nlohmann::json& out, std::string& detail) {
                    if (!out.is_object()) return false;
                    const auto rate = member(out, "pass_rate");
                    detail = fmt::format("pass rate {:.0f}% (95% CI {:.0f}-{:.0f}%)", 100.0 * number_at(rate, "mean"), 100.0 * number_at(rate, "low"),
                                         100.0 * number_at(rate, "high"));
                    return flag_at(out, "passed");
                  }));
    }
  }

  std::vector<std::string> pareto_args{"eval", "pareto", reference};
  pareto_args.insert(pareto_args.end(), passed_levels.begin(), passed_levels.end());
  const std::string markdown = (dir / "pareto.md").string(), svg = (dir / "pareto.svg").string();
  pareto_args.insert(pareto_args.end(), {"--text", spec.text, "-o", markdown, "--svg", svg, "--json"});
  std::vector<std::string> pareto_inputs{reference, spec.text};
  pareto_inputs.insert(pareto_inputs.end(), passed_levels.begin(), passed_levels.end());
  add(run.run("pareto", pareto_args, pareto_inputs, {markdown, svg}, [&](const nlohmann::json& out, std::string& detail) {
    size_t frontier = 0;
    if (out.is_object()) {
      const auto variants = member(out, "variants");
      if (variants.is_array()) {
        for (const auto& v : variants) frontier += flag_at(v, "pareto") ? 1 : 0;
      }
    }
    detail = fmt::format("{} variants, {} on the frontier: {}", passed_levels.size() + 1, frontier, markdown);
    return out.is_object();
  }));
  return stages;
}

}  // namespace

void register_pipeline_commands(CLI::App& app, Registry& registry) {
  struct PipelineFlags {
    std::string models, work;
    bool json = false;
  };
  auto flags = std::make_shared<PipelineFlags>();
  auto* pipeline = app.add_subcommand(
      "pipeline", "Per model of a JSON or YAML file: fetch, detect, import, validate, convert per level with gates, perplexity, consistency, golden, Pareto report (resumable)");
  pipeline->add_option("--models", flags->models,
                       "pipeline file, JSON or YAML: {\"models\": [{name, source, text, levels, golden, min_pass_rate, max_perplexity_increase, consistency_threshold}]}")
      ->required();
  pipeline->add_option("--work", flags->work, "work folder (default: pipeline-work beside the models file); finished stages there are skipped");
  pipeline->add_flag("--json", flags->json, "print every stage's result as JSON");
  registry.add(pipeline, [flags] {
    auto specs = read_pipeline(flags->models);
    if (!specs) return report(specs.error());
    const fs::path work = flags->work.empty() ? fs::path(flags->models).parent_path() / "pipeline-work" : fs::path(flags->work);
    nlohmann::json out = nlohmann::json::array();
    bool halted = false;
    std::string table = "| model | stage | status | seconds | detail |\n|---|---|---|---:|---|\n";
    for (const auto& spec : *specs) {
      nlohmann::json model = {{"name", spec.name}, {"stages", nlohmann::json::array()}};
      for (const auto& stage : run_model(spec, work)) {
        halted = halted || stage.status == "HALT";
        model["stages"].push_back({{"stage", stage.stage}, {"status", stage.status}, {"detail", stage.detail}, {"seconds", stage.seconds}});
        table += fmt::format("| {} | {} | {} | {:.2f} | {} |\n", spec.name, stage.stage, stage.status, stage.seconds, stage.detail);
      }
      out.push_back(std::move(model));
    }
    if (flags->json) print_json({{"work", work.string()}, {"halted", halted}, {"models", out}});
    else fmt::print("{}", table);
    return halted ? int{kValidationFailed} : int{kOk};
  });
}

}  // namespace apr::cli
