// The apr command line: one binary, subcommands. Results on stdout, logs on stderr.
#include <cstdio>

#include "cli.hpp"

int main(int argc, char** argv) {
  CLI::App app{"apr: run, convert and inspect Qwen2 and Whisper models and APR files", "apr"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "apr 0.1.0");
  apr::cli::Registry registry;
  apr::cli::register_explain_commands(app, registry);
  apr::cli::register_flow_commands(app, registry);
  apr::cli::register_model_commands(app, registry);
  apr::cli::register_chat_commands(app, registry);
  apr::cli::register_file_commands(app, registry);
  apr::cli::register_convert_commands(app, registry);
  apr::cli::register_transcribe_commands(app, registry);
  apr::cli::register_synth_commands(app, registry);
  apr::cli::register_serve_commands(app, registry);
  apr::cli::register_tokenize_commands(app, registry);
  apr::cli::register_diff_commands(app, registry);
  apr::cli::register_tree_commands(app, registry);
  apr::cli::register_hex_commands(app, registry);
  apr::cli::register_lint_commands(app, registry);
  apr::cli::register_canary_commands(app, registry);
  apr::cli::register_merge_commands(app, registry);
  apr::cli::register_bench_commands(app, registry);
  apr::cli::register_tui_commands(app, registry);
  apr::cli::register_eval_commands(app, registry);
  apr::cli::register_pipeline_commands(app, registry);
  apr::cli::register_completion_commands(app, registry);
  apr::cli::register_security_commands(app, registry);
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& success) {
    return app.exit(success);
  } catch (const CLI::ParseError& error) {
    app.exit(error);
    return apr::cli::kUsage;
  }
  return registry.run_parsed();
}
