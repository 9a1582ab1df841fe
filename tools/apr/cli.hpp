// Shared by the apr command's subcommands: exit codes, error reporting, output, registration.
#pragma once

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/core/result.hpp"

namespace apr::cli {

/// Process exit status of every apr command.
enum ExitCode : int {
  kOk = 0,                ///< success
  kValidationFailed = 1,  ///< the input was read but failed a check
  kUsage = 2,             ///< bad command line
  kIoError = 3,           ///< a file could not be read, written or parsed
};

/// The exit status for an error: usage 2, validation/checksum 1, everything else 3.
inline int exit_code_for(const Error& error) {
  switch (error.code) {
    case ErrorCode::invalid_argument: return kUsage;
    case ErrorCode::validation:
    case ErrorCode::checksum: return kValidationFailed;
    default: return kIoError;
  }
}

/// Prints `error: message` on stderr and returns the exit status for it.
inline int report(const Error& error) {
  fmt::print(stderr, "error: {}\n", error.message);
  return exit_code_for(error);
}

/// report(), named for call sites where a local `report` (e.g. a JSON document) is in scope.
inline int report_error(const Error& error) { return report(error); }

/// Prints JSON on stdout (pretty, one document; bytes that are not UTF-8 become U+FFFD).
inline void print_json(const nlohmann::json& json) { fmt::print("{}\n", json.dump(2, ' ', false, nlohmann::json::error_handler_t::replace)); }

/// Writes `text` to `path` through a temporary file renamed into place (never a partial file).
inline Result<void> write_text_atomically(const std::filesystem::path& path, const std::string& text) {
  const std::filesystem::path temporary = path.string() + ".tmp";
  {
    std::ofstream out(temporary, std::ios::binary);
    out << text;
    if (!out) return make_error(ErrorCode::io, "{}: cannot write", temporary.string());
  }
  std::error_code ec;
  std::filesystem::rename(temporary, path, ec);
  if (ec) {
    std::filesystem::remove(temporary, ec);
    return make_error(ErrorCode::io, "{}: cannot rename into place", path.string());
  }
  return ok();
}

/// True when stderr is a terminal (progress bars are drawn only then).
inline bool stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

/// A progress bar on stderr, drawn only when stderr is a terminal.
class Progress {
 public:
  /// A bar for `total` units labelled `label`.
  Progress(std::string label, size_t total) : label_(std::move(label)), total_(total), enabled_(stderr_is_terminal()) {}
  ~Progress() { finish(); }
  /// Shows `done` of the total.
  void update(size_t done) {
    if (!enabled_ || total_ == 0) return;
    const size_t width = 30;
    const size_t filled = std::min(width, done * width / total_);
    fmt::print(stderr, "\r{} [{}{}] {:3}%", label_, std::string(filled, '#'), std::string(width - filled, ' '), done * 100 / total_);
    std::fflush(stderr);
    drawn_ = true;
  }
  /// Ends the bar's line.
  void finish() {
    if (drawn_) fmt::print(stderr, "\n");
    drawn_ = false;
  }

 private:
  std::string label_;
  size_t total_;
  bool enabled_;
  bool drawn_ = false;
};

/// Subcommands register themselves here: the parsed one's action runs after parsing.
class Registry {
 public:
  /// Adds `command` (a subcommand of the app) with the action to run when it is chosen.
  void add(CLI::App* command, std::function<int()> action) { commands_.push_back({command, std::move(action)}); }
  /// Runs the action of whichever command was parsed (nested subcommands included).
  int run_parsed() const {
    for (const auto& [command, action] : commands_) {
      if (command->parsed()) return action();
    }
    return kUsage;
  }

 private:
  std::vector<std::pair<CLI::App*, std::function<int()>>> commands_;
};

/// Each group of subcommands registers itself (one .cpp each, for parallel builds).
/// `apr explain`.
void register_explain_commands(CLI::App& app, Registry& registry);
/// `apr flow`.
void register_flow_commands(CLI::App& app, Registry& registry);
/// `apr run`.
void register_model_commands(CLI::App& app, Registry& registry);
/// `apr inspect`, `apr tensors`, `apr validate`.
void register_file_commands(CLI::App& app, Registry& registry);
/// `apr import`, `apr convert`, `apr export`.
void register_convert_commands(CLI::App& app, Registry& registry);
/// `apr serve`.
void register_serve_commands(CLI::App& app, Registry& registry);
/// `apr chat`.
void register_chat_commands(CLI::App& app, Registry& registry);
/// `apr synth`.
void register_synth_commands(CLI::App& app, Registry& registry);
/// `apr transcribe`.
void register_transcribe_commands(CLI::App& app, Registry& registry);
/// `apr eval perplexity|consistency|golden|pareto`.
void register_eval_commands(CLI::App& app, Registry& registry);
/// `apr pipeline`.
void register_pipeline_commands(CLI::App& app, Registry& registry);
/// `apr completion`.
void register_completion_commands(CLI::App& app, Registry& registry);
/// `apr keygen`, `apr sign`, `apr verify`, `apr encrypt`, `apr decrypt`.
void register_security_commands(CLI::App& app, Registry& registry);
/// The passphrase from `file` (its first line) or else $APR_PASSPHRASE (never from argv).
Result<std::string> read_passphrase(const std::string& file);
/// `apr tokenize`.
void register_tokenize_commands(CLI::App& app, Registry& registry);
/// `apr diff`.
void register_diff_commands(CLI::App& app, Registry& registry);
/// `apr tree`.
void register_tree_commands(CLI::App& app, Registry& registry);
/// `apr hex`.
void register_hex_commands(CLI::App& app, Registry& registry);
/// `apr lint`.
void register_lint_commands(CLI::App& app, Registry& registry);
/// `apr canary create`, `apr canary check`.
void register_canary_commands(CLI::App& app, Registry& registry);
/// `apr merge`.
void register_merge_commands(CLI::App& app, Registry& registry);
/// `apr bench`.
void register_bench_commands(CLI::App& app, Registry& registry);
/// `apr tui`.
void register_tui_commands(CLI::App& app, Registry& registry);

}  // namespace apr::cli
