// apr serve: the OpenAI-compatible HTTP server over one or more models.
#include <csignal>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "apr/models/load_whisper.hpp"
#include "apr/serve.hpp"
#include "apr/text/load_tokenizer.hpp"
#include "cli.hpp"
#include "model_support.hpp"

namespace apr::cli {
namespace {
serve::Server* running_server = nullptr;
extern "C" void stop_server(int) {
  if (running_server != nullptr) running_server->stop();
}

/// True when `path` holds a Whisper model (config.json beside it, or APR metadata, says so).
bool is_whisper_model(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path p(path);
  const fs::path config = fs::is_directory(p, ec) ? p / "config.json" : p.parent_path() / "config.json";
  if (p.extension() == ".apr") {
    auto file = format::open_tensor_file(path);
    return file && ((*file)->metadata().value("architecture", std::string()) == "whisper" ||
                    (*file)->metadata().value("model_type", std::string()) == "whisper");
  }
  auto json = models::read_json_file(config);
  return json && json->value("model_type", std::string()) == "whisper";
}

/// True when `path` is an APR mixture-of-experts ensemble (served through /predict/moe).
bool is_moe_ensemble(const std::string& path) {
  if (std::filesystem::path(path).extension() != ".apr") return false;
  auto file = format::open_tensor_file(path);
  return file && (*file)->metadata().value("model_type", std::string()) == models::kMixtureOfExpertsType;
}
}  // namespace

void register_serve_commands(CLI::App& app, Registry& registry) {
  struct ServeFlags {
    std::vector<std::string> models;
    std::string host = "127.0.0.1";
    int port = 8080;
    std::string api_key;
    size_t workers = 1;
    size_t context = 4096;
    double timeout = 300.0;
    size_t threads = 0;
  };
  auto flags = std::make_shared<ServeFlags>();
  auto* serve = app.add_subcommand("serve", "Serve models over HTTP (OpenAI-compatible /v1/chat/completions, /v1/completions, /v1/audio/transcriptions, /v1/models, /metrics; /predict/moe for mixture-of-experts ensembles)");
  serve->add_option("models", flags->models, "model files or folders (id = file stem)")->required();
  serve->add_option("--host", flags->host, "address to bind (default 127.0.0.1)");
  serve->add_option("--port", flags->port, "port (0 = any free port, printed on stderr)");
  serve->add_option("--api-key", flags->api_key, "require 'Authorization: Bearer KEY'");
  serve->add_option("--workers", flags->workers, "model workers (concurrent generations)");
  serve->add_option("--context", flags->context, "most prompt + completion tokens per request");
  serve->add_option("--timeout", flags->timeout, "seconds a generation may run before it is cancelled");
  serve->add_option("-t,--threads", flags->threads, "compute threads (default: all cores)");
  registry.add(serve, [flags] {
    std::vector<serve::ServedModel> served;
    std::vector<serve::ServedSpeechModel> speech;
    std::vector<serve::ServedEnsemble> ensembles;
    std::unique_ptr<ThreadPool> owned;
    if (flags->threads > 0) owned = std::make_unique<ThreadPool>(flags->threads);
    for (const auto& path : flags->models) {
      std::filesystem::path p(path);
      const std::string id = (std::filesystem::is_directory(p) ? p.filename() : p.stem()).string();
      if (is_moe_ensemble(path)) {
        auto ensemble = models::MixtureOfExperts::open(path, owned.get());
        if (!ensemble) return report(ensemble.error());
        ensembles.push_back({id, std::move(ensemble).value()});
        fmt::print(stderr, "serving {} as '{}' (mixture of experts, POST /predict/moe)\n", path, id);
        continue;
      }
      if (is_whisper_model(path)) {
        auto whisper = models::load_whisper(path, std::nullopt, {.pool = owned.get(), .kv_dtype = DType::f16});
        if (!whisper) return report(whisper.error());
        auto tokenizer = models::whisper_tokenizer(*whisper);
        if (!tokenizer) return report(tokenizer.error());
        auto front_end = whisper->front_end();
        if (!front_end) return report(front_end.error());
        speech.push_back({id, std::shared_ptr<const models::WhisperModel>(std::move(whisper->model)), std::move(tokenizer).value(),
                          std::make_shared<const audio::LogMel>(std::move(front_end).value()), whisper->config});
        fmt::print(stderr, "serving {} as '{}' (speech recognition)\n", path, id);
        continue;
      }
      ModelFlags model_flags;
      model_flags.model = path;
      model_flags.threads = flags->threads;
      auto loaded = load_model(model_flags, owned);
      if (!loaded) return report(loaded.error());
      auto tokenizer = tokenizer_for(*loaded, "");
      if (!tokenizer) return report(tokenizer.error());
      auto chat = chat_template_for(*loaded);
      if (!chat) return report(chat.error());
      auto stops = stop_ids_for(*loaded, &*tokenizer);
      served.push_back({id, std::shared_ptr<const models::LanguageModel>(std::move(loaded->model)), std::move(tokenizer).value(),
                        std::move(chat).value(), stops, loaded->config});
      fmt::print(stderr, "serving {} as '{}'\n", path, id);
    }
    serve::ServerOptions options;
    options.api_key = flags->api_key;
    options.workers = flags->workers;
    options.max_context = flags->context;
    options.max_request_seconds = flags->timeout;
    serve::Server server(std::move(served), options, std::move(speech), std::move(ensembles));
    const int port = flags->port == 0 ? server.bind_to_any_port(flags->host) : flags->port;
    running_server = &server;
    std::signal(SIGINT, stop_server);
    std::signal(SIGTERM, stop_server);
    fmt::print(stderr, "listening on http://{}:{}\n", flags->host, port);
    const bool ok = flags->port == 0 ? server.listen_after_bind() : server.listen(flags->host, port);
    running_server = nullptr;
    if (!ok) return report(make_error(ErrorCode::io, "cannot listen on {}:{}", flags->host, port));
    return int{kOk};
  });
}

}  // namespace apr::cli
