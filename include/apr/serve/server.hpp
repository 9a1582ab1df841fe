/// @file server.hpp
/// @brief Server: an OpenAI-compatible HTTP server for apr's language models (cpp-httplib):
/// /v1/chat/completions (SSE streaming or not), /v1/completions, /v1/models, /health, /metrics,
/// /v1/audio/transcriptions (Whisper models), /models/{id}/metadata, /models/{id}/experts,
/// /predict/moe (mixture-of-experts ensembles); a bounded queue served by a
/// fixed number of model workers whose decode steps are batched together; Bearer auth compared in constant time; JSON error bodies for
/// every failure.
#pragma once

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "apr/models/language_model.hpp"
#include "apr/models/mixture_of_experts.hpp"
#include "apr/models/moe_input.hpp"
#include "apr/runtime/batching_model.hpp"
#include "apr/runtime/generator.hpp"
#include "apr/serve/connection_watch.hpp"
#include "apr/serve/metrics.hpp"
#include "apr/serve/openai_request.hpp"
#include "apr/serve/scheduler.hpp"
#include "apr/serve/transcription.hpp"
#include "apr/audio/audio_file.hpp"
#include "apr/runtime/whisper_transcribe.hpp"
#include "apr/text/chat_template.hpp"
#include "apr/text/tokenizer.hpp"

namespace apr::serve {

/// A model the server offers, with what it needs to turn text into tokens and back.
struct ServedModel {
  std::string id;                                        ///< name clients use in "model"
  std::shared_ptr<const models::LanguageModel> model;    ///< the model
  text::Tokenizer tokenizer;                             ///< its tokenizer
  text::ChatTemplate chat_template;                      ///< how chats become prompts
  std::vector<int32_t> stop_ids;                         ///< end-of-turn / end-of-text ids
  nlohmann::json metadata;                               ///< shown by /models/{id}/metadata
};

/// A mixture-of-experts ensemble the server offers through /predict/moe.
struct ServedEnsemble {
  std::string id;                                               ///< name clients use in "model"
  std::shared_ptr<const models::MixtureOfExperts> model;        ///< the ensemble
};

/// Limits and identity of a server.
struct ServerOptions {
  std::string api_key;                  ///< when set, requests need "Authorization: Bearer <key>"
  size_t workers = 1;                   ///< model workers (concurrent generations)
  size_t max_queue = 64;                ///< waiting requests beyond this get 503
  size_t max_body_bytes = 1 << 20;      ///< larger bodies get 413
  size_t max_audio_bytes = 25 << 20;    ///< larger audio uploads get 413 (OpenAI's limit)
  double max_request_seconds = 300.0;   ///< generations are cancelled after this long
  size_t max_context = 4096;            ///< prompt + completion tokens per request
};

/// Constant-time equality of two strings (the time depends only on their lengths).
inline bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const auto x = static_cast<unsigned char>(i < a.size() ? a[i] : 0);
    const auto y = static_cast<unsigned char>(i < b.size() ? b[i] : 0);
    difference |= static_cast<unsigned char>(x ^ y);
  }
  return difference == 0;
}

/// The HTTP server. Call listen() (blocking) or bind_to_any_port() + listen_after_bind().
class Server {
 public:
  /// A server over the language `models`, the speech models `speech` and the mixture-of-experts `ensembles` with `options`.
  Server(std::vector<ServedModel> models, ServerOptions options, std::vector<ServedSpeechModel> speech = {},
         std::vector<ServedEnsemble> ensembles = {})
      : options_(std::move(options)), scheduler_(options_.workers, options_.max_queue, metrics_) {
    for (auto& m : ensembles) {
      const std::string id = m.id;
      ensembles_.emplace(id, std::move(m));
    }
    for (auto& m : models) {
      const std::string id = m.id;
      // several workers decode in shared steps: each weight is read once per step for all of them
      if (options_.workers > 1) m.model = std::make_shared<runtime::BatchingModel>(std::move(m.model), runtime::BatchingOptions{options_.workers});
      models_.emplace(id, std::move(m));
    }
    for (auto& m : speech) {
      const std::string id = m.id;
      speech_.emplace(id, std::move(m));
    }
    routes();
  }

  /// Serves on host:port until stop(); false when the port could not be bound.
  bool listen(const std::string& host, int port) {
    if (!http_.bind_to_port(host, port)) return false;
    widen_backlog();
    return http_.listen_after_bind();
  }
  /// Binds an ephemeral port on `host` and returns it (then call listen_after_bind()).
  int bind_to_any_port(const std::string& host) {
    const int port = http_.bind_to_any_port(host);
    if (port > 0) widen_backlog();
    return port;
  }
  /// Serves on the bound port until stop().
  bool listen_after_bind() { return http_.listen_after_bind(); }
  /// Stops serving.
  void stop() { http_.stop(); }
  /// True once the server accepts connections.
  [[nodiscard]] bool is_running() const { return http_.is_running(); }
  /// The metrics (for tests and embedding).
  [[nodiscard]] const Metrics& metrics() const noexcept { return metrics_; }

 private:
  using Clock = std::chrono::steady_clock;

  /// cpp-httplib listens with a backlog of 5, so a burst of clients overflows it and some
  /// connections stall and fail; Linux lets listen() be called again to raise it.
  void widen_backlog() const {
    if (listen_socket_ != INVALID_SOCKET) ::listen(listen_socket_, SOMAXCONN);
  }

  static void send_error(httplib::Response& res, int status, std::string_view message, std::string_view type) {
    res.status = status;
    res.set_content(nlohmann::json{{"error", {{"message", message}, {"type", type}, {"code", status}}}}.dump(), "application/json");
  }

  /// Wraps a handler: auth, body size, JSON error on exceptions, metrics by route and status.
  httplib::Server::Handler guarded(std::string route, std::function<void(const httplib::Request&, httplib::Response&)> handler,
                                   size_t max_body = 0) {
    return [this, route, handler, max_body](const httplib::Request& req, httplib::Response& res) {
      const size_t limit = max_body != 0 ? max_body : options_.max_body_bytes;
      const auto start = Clock::now();
      if (!options_.api_key.empty()) {
        const std::string header = req.get_header_value("Authorization");
        const std::string expected = "Bearer " + options_.api_key;
        if (!constant_time_equal(header, expected)) {
          send_error(res, 401, "missing or wrong API key (expected 'Authorization: Bearer <key>')", "authentication_error");
          metrics_.record_request(route, res.status, std::chrono::duration<double>(Clock::now() - start).count());
          return;
        }
      }
      size_t body_bytes = req.body.size();
      for (const auto& [name, file] : req.files) body_bytes += file.content.size();
      if (body_bytes > limit) {
        send_error(res, 413, fmt::format("request body of {} bytes exceeds the limit of {}", body_bytes, limit), "invalid_request_error");
      } else {
        try {
          handler(req, res);
        } catch (const std::exception& error) {
          send_error(res, 500, fmt::format("internal error: {}", error.what()), "server_error");
        }
      }
      // cpp-httplib fills in 200 after the handler when it set no status
      metrics_.record_request(route, res.status == -1 ? 200 : res.status, std::chrono::duration<double>(Clock::now() - start).count());
    };
  }

  const ServedModel* find_model(const std::string& id) const {
    if (id.empty() && models_.size() == 1) return &models_.begin()->second;
    const auto it = models_.find(id);
    return it == models_.end() ? nullptr : &it->second;
  }

  void routes() {
    // connection threads only wait on model workers, so there can be many of them
    http_.new_task_queue = [] { return new httplib::ThreadPool(64); };
    http_.set_payload_max_length(std::max(options_.max_body_bytes, options_.max_audio_bytes) + 1);
    // chat clients reuse one connection for many requests; cpp-httplib's default closes it after 5
    http_.set_keep_alive_max_count(1000);
    http_.set_keep_alive_timeout(30);
    http_.set_socket_options([this](socket_t socket) {
      const int yes = 1;
      ::setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
      listen_socket_ = socket;
    });
    http_.Get("/health", guarded("/health", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(nlohmann::json{{"status", "ok"}, {"models", models_.size()}, {"queue_depth", metrics_.queue_depth.load()}}.dump(), "application/json");
    }));
    http_.Get("/metrics", guarded("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics_.prometheus(), "text/plain; version=0.0.4");
    }));
    http_.Get("/v1/models", guarded("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      nlohmann::json data = nlohmann::json::array();
      for (const auto& [id, model] : models_) data.push_back({{"id", id}, {"object", "model"}, {"owned_by", "apr"}, {"created", 0}});
      for (const auto& [id, model] : speech_) data.push_back({{"id", id}, {"object", "model"}, {"owned_by", "apr"}, {"created", 0}});
      for (const auto& [id, model] : ensembles_) data.push_back({{"id", id}, {"object", "model"}, {"owned_by", "apr"}, {"created", 0}});
      res.set_content(nlohmann::json{{"object", "list"}, {"data", data}}.dump(), "application/json");
    }));
    http_.Get(R"(/models/([^/]+)/metadata)", guarded("/models/{id}/metadata", [this](const httplib::Request& req, httplib::Response& res) {
      const ServedModel* model = find_model(req.matches[1]);
      if (model == nullptr) {
        const auto speech = speech_.find(req.matches[1]);
        if (speech == speech_.end()) return send_error(res, 404, fmt::format("model '{}' not found", std::string(req.matches[1])), "not_found");
        nlohmann::json metadata = speech->second.metadata;
        if (metadata.is_object()) metadata.erase("tokenizer.json");
        return res.set_content(nlohmann::json{{"id", speech->first}, {"model", {{"architecture", "whisper"},
                                                                             {"weight_dtype", std::string(to_string(speech->second.model->weight_dtype()))}}},
                                              {"metadata", metadata}}.dump(), "application/json");
      }
      nlohmann::json metadata = model->metadata;
      if (metadata.is_object()) metadata.erase("tokenizer.json");
      res.set_content(nlohmann::json{{"id", model->id}, {"model", model->model->describe()}, {"metadata", metadata}}.dump(), "application/json");
    }));
    http_.Get(R"(/models/([^/]+)/experts)", guarded("/models/{id}/experts", [this](const httplib::Request& req, httplib::Response& res) {
      const ServedModel* model = find_model(req.matches[1]);
      if (const auto ensemble = ensembles_.find(req.matches[1]); model == nullptr && ensemble != ensembles_.end()) {
        nlohmann::json statistics = ensemble->second.model->statistics_json();
        statistics["id"] = ensemble->first;
        return res.set_content(statistics.dump(), "application/json");
      }
      if (model == nullptr) return send_error(res, 404, fmt::format("model '{}' not found", std::string(req.matches[1])), "not_found");
      nlohmann::json statistics = model->model->expert_statistics();
      if (statistics.is_null()) return send_error(res, 404, fmt::format("model '{}' ({}) has no experts", model->id, model->model->architecture()), "not_found");
      statistics["id"] = model->id;
      res.set_content(statistics.dump(), "application/json");
    }));
    http_.Post("/v1/chat/completions", guarded("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) { complete(req, res, true); }));
    http_.Post("/v1/completions", guarded("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) { complete(req, res, false); }));
    http_.Post("/predict/moe", guarded("/predict/moe", [this](const httplib::Request& req, httplib::Response& res) { predict_moe(req, res); }));
    http_.Post("/v1/audio/transcriptions", guarded("/v1/audio/transcriptions", [this](const httplib::Request& req, httplib::Response& res) { transcribe(req, res); },
                                                   options_.max_audio_bytes));
  }

  /// POST /predict/moe: {"model", "input": [x…] or "inputs": [[x…]…], "dropout_seed"} → outputs, chosen experts, weights.
  /// Ensembles are small and thread-safe, so they run on the connection's thread.
  void predict_moe(const httplib::Request& req, httplib::Response& res) {
    const auto body = nlohmann::json::parse(req.body, nullptr, false);
    if (!body.is_object()) return send_error(res, 400, "the body must be a JSON object", "invalid_request_error");
    const std::string id = body.contains("model") && body["model"].is_string() ? body["model"].get<std::string>() : "";
    auto it = id.empty() && ensembles_.size() == 1 ? ensembles_.begin() : ensembles_.find(id);
    if (it == ensembles_.end()) {
      return send_error(res, 404, fmt::format("mixture of experts '{}' not found{}", id, ensembles_.empty() ? " (this server has none)" : ""), "not_found");
    }
    const bool single = body.contains("input");
    const nlohmann::json rows = single ? nlohmann::json::array({body["input"]}) : body.value("inputs", nlohmann::json());
    const models::MixtureOfExperts& model = *it->second.model;
    if (!rows.is_array() || rows.empty()) return send_error(res, 400, "give 'input' (an array of numbers) or 'inputs' (an array of such arrays)", "invalid_request_error");
    auto inputs = models::moe_input_rows(rows, model.input_size(), single ? "input" : "inputs");
    if (!inputs) return send_error(res, 400, inputs.error().message, "invalid_request_error");
    models::MoePredictOptions options;
    if (body.contains("dropout_seed")) {
      if (!body["dropout_seed"].is_number_unsigned()) return send_error(res, 400, "'dropout_seed' must be a non-negative integer", "invalid_request_error");
      options.dropout_seed = body["dropout_seed"].get<uint64_t>();
    }
    auto prediction = model.predict_batch(*inputs, rows.size(), options);
    if (!prediction) return send_error(res, 400, prediction.error().message, "invalid_request_error");
    const size_t out = model.output_size(), top_k = model.config().top_k;
    nlohmann::json outputs = nlohmann::json::array(), experts = nlohmann::json::array(), weights = nlohmann::json::array();
    for (size_t r = 0; r < prediction->rows; ++r) {
      outputs.push_back(std::vector<float>(prediction->outputs.begin() + r * out, prediction->outputs.begin() + (r + 1) * out));
      experts.push_back(std::vector<int32_t>(prediction->experts.begin() + r * top_k, prediction->experts.begin() + (r + 1) * top_k));
      weights.push_back(std::vector<float>(prediction->weights.begin() + r * top_k, prediction->weights.begin() + (r + 1) * top_k));
    }
    nlohmann::json response = {{"model", it->first}, {"capacity_overflow", prediction->capacity_overflow}};
    if (single) response.update({{"output", outputs[0]}, {"experts", experts[0]}, {"weights", weights[0]}});
    else response.update({{"outputs", outputs}, {"experts", experts}, {"weights", weights}});
    res.set_content(response.dump(), "application/json");
  }

  /// Chunks of an SSE stream handed from a model worker to the HTTP thread.
  struct Channel {
    std::mutex mutex;
    std::condition_variable ready;
    std::deque<std::string> chunks;
    bool done = false;
    void push(std::string chunk) {
      {
        std::lock_guard<std::mutex> lock(mutex);
        chunks.push_back(std::move(chunk));
      }
      ready.notify_one();
    }
    void finish() {
      {
        std::lock_guard<std::mutex> lock(mutex);
        done = true;
      }
      ready.notify_one();
    }
  };

  void complete(const httplib::Request& req, httplib::Response& res, bool chat) {
    auto parsed = parse_completion_request(req.body, chat);
    if (!parsed) return send_error(res, 400, parsed.error().message, "invalid_request_error");
    const ServedModel* model = find_model(parsed->model);
    if (model == nullptr) return send_error(res, 404, fmt::format("model '{}' not found", parsed->model), "not_found");
    auto request = std::make_shared<CompletionRequest>(std::move(parsed).value());
    const std::string prompt_text = chat ? model->chat_template.render(request->messages, true) : request->prompt;
    auto prompt = std::make_shared<std::vector<int32_t>>(model->tokenizer.encode(prompt_text, chat));
    if (prompt->empty()) return send_error(res, 400, "the prompt is empty", "invalid_request_error");
    if (prompt->size() + request->generation.max_tokens > options_.max_context) {
      return send_error(res, 400, fmt::format("prompt ({} tokens) + max_tokens ({}) exceed the context of {}", prompt->size(),
                                              request->generation.max_tokens, options_.max_context), "invalid_request_error");
    }
    request->generation.stop_ids = model->stop_ids;
    const std::string id = fmt::format("{}-{}", chat ? "chatcmpl" : "cmpl", next_id_++);
    const auto created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options_.max_request_seconds));

    // one generation on a model worker; `on_piece` receives text as it is produced
    auto run = [this, model, request, prompt, cancel, deadline](const std::function<void(std::string_view)>& on_piece) {
      auto sequence = model->model->new_sequence(prompt->size() + request->generation.max_tokens + 1);
      auto stream = model->tokenizer.stream();
      auto result = runtime::generate(*model->model, *sequence, *prompt, request->generation,
                                      [&](int32_t token) { return stream.push(token); },
                                      [&](std::string_view piece, int32_t) {
                                        if (cancel->load() || Clock::now() > deadline) return false;
                                        if (on_piece) on_piece(piece);
                                        return true;
                                      });
      if (result) metrics_.record_generation(result->prompt_tokens, result->tokens.size(), result->decode_seconds);
      return result;
    };

    auto chunk_json = [=, model_id = model->id](std::string_view piece, std::optional<std::string_view> finish) {
      nlohmann::json choice = {{"index", 0}, {"finish_reason", finish ? nlohmann::json(std::string(*finish)) : nlohmann::json(nullptr)}};
      if (chat) choice["delta"] = piece.empty() && finish ? nlohmann::json::object() : nlohmann::json{{"content", std::string(piece)}};
      else choice["text"] = std::string(piece);
      return nlohmann::json{{"id", id}, {"object", chat ? "chat.completion.chunk" : "text_completion"}, {"created", created},
                            {"model", model_id}, {"choices", {choice}}};
    };

    if (!request->stream) {
      std::optional<Result<runtime::GenerationResult>> outcome;
      auto done = scheduler_.submit([&](const std::atomic<bool>&) { outcome = run({}); }, cancel);
      if (!done.valid()) return send_error(res, 503, "the server is busy (request queue full); retry later", "server_busy");
      if (wait_unless_client_leaves(req, done, *cancel)) {
        return send_error(res, 499, "the client closed the connection; generation cancelled", "client_closed");
      }
      if (!outcome || !*outcome) return send_error(res, 500, outcome ? (*outcome).error().message : "generation failed", "server_error");
      const auto& result = **outcome;
      if (result.stop_reason == runtime::StopReason::cancelled) {
        metrics_.record_cancelled("timeout");
        return send_error(res, 504, fmt::format("generation exceeded the request time limit of {} s", options_.max_request_seconds), "timeout");
      }
      nlohmann::json choice = {{"index", 0}, {"finish_reason", std::string(runtime::finish_reason(result.stop_reason))}};
      if (chat) choice["message"] = {{"role", "assistant"}, {"content", result.text}};
      else choice["text"] = result.text;
      res.set_content(nlohmann::json{{"id", id}, {"object", chat ? "chat.completion" : "text_completion"}, {"created", created},
                                     {"model", model->id}, {"choices", {choice}},
                                     {"usage", {{"prompt_tokens", result.prompt_tokens}, {"completion_tokens", result.tokens.size()},
                                                {"total_tokens", result.prompt_tokens + result.tokens.size()}}}}.dump(),
                      "application/json");
      return;
    }

    auto channel = std::make_shared<Channel>();
    auto done = scheduler_.submit(
        [run, channel, chunk_json, chat](const std::atomic<bool>&) {
          if (chat) {
            nlohmann::json first = chunk_json("", std::nullopt);
            first["choices"][0]["delta"] = {{"role", "assistant"}, {"content", ""}};
            channel->push("data: " + first.dump() + "\n\n");
          }
          auto result = run([&](std::string_view piece) { channel->push("data: " + chunk_json(piece, std::nullopt).dump() + "\n\n"); });
          if (result) {
            nlohmann::json last = chunk_json("", runtime::finish_reason(result->stop_reason));
            last["usage"] = {{"prompt_tokens", result->prompt_tokens}, {"completion_tokens", result->tokens.size()},
                             {"total_tokens", result->prompt_tokens + result->tokens.size()}};
            channel->push("data: " + last.dump() + "\n\n");
          } else {
            channel->push("data: " + nlohmann::json{{"error", {{"message", result.error().message}, {"type", "server_error"}}}}.dump() + "\n\n");
          }
          channel->push("data: [DONE]\n\n");
          channel->finish();
        },
        cancel);
    if (!done.valid()) return send_error(res, 503, "the server is busy (request queue full); retry later", "server_busy");
    auto pending = std::make_shared<std::future<void>>(std::move(done));
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [channel, cancel, pending, metrics = &metrics_](size_t, httplib::DataSink& sink) {
          for (;;) {
            std::unique_lock<std::mutex> lock(channel->mutex);
            channel->ready.wait(lock, [&] { return channel->done || !channel->chunks.empty(); });
            while (!channel->chunks.empty()) {
              const std::string chunk = std::move(channel->chunks.front());
              channel->chunks.pop_front();
              lock.unlock();
              if (!sink.write(chunk.data(), chunk.size())) {
                if (!cancel->exchange(true)) metrics->record_cancelled("disconnect");  // the client went away: stop generating
                return false;
              }
              lock.lock();
            }
            if (channel->done) break;
          }
          sink.done();
          return true;
        },
        [cancel, pending, metrics = &metrics_](bool success) {
          if (!success && !cancel->exchange(true)) metrics->record_cancelled("disconnect");
          pending->wait();  // the worker holds references to this request's state until it ends
        });
  }

  /// Waits for the job `done`; when the client of `req` closes its connection first, sets
  /// `cancel` (a generation stops at its next token, a transcription at its next 30 s window),
  /// counts the cancellation, waits for the job to end and returns true.
  bool wait_unless_client_leaves(const httplib::Request& req, std::future<void>& done, std::atomic<bool>& cancel) {
    const auto watch = ConnectionWatch::find(req.local_port, req.remote_addr, req.remote_port);
    if (!watch) {
      done.wait();
      return false;
    }
    bool left = false;
    while (done.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
      if (!left && watch->peer_closed()) {
        left = true;
        cancel.store(true);
      }
    }
    if (left) metrics_.record_cancelled("disconnect");
    return left;
  }

  /// POST /v1/audio/transcriptions: a multipart form with the audio in "file".
  void transcribe(const httplib::Request& req, httplib::Response& res) {
    if (!req.is_multipart_form_data()) return send_error(res, 400, "expected a multipart/form-data body with the audio in 'file'", "invalid_request_error");
    if (!req.has_file("file")) return send_error(res, 400, "the form has no 'file' field with the audio", "invalid_request_error");
    auto parsed = parse_transcription_request([&](const char* name) -> std::optional<std::string> {
      if (!req.has_file(name)) return std::nullopt;
      return req.get_file_value(name).content;
    });
    if (!parsed) return send_error(res, 400, parsed.error().message, "invalid_request_error");
    auto request = std::make_shared<TranscriptionRequest>(std::move(parsed).value());
    const ServedSpeechModel* model = nullptr;
    if (request->model.empty() && speech_.size() == 1) model = &speech_.begin()->second;
    if (const auto it = speech_.find(request->model); it != speech_.end()) model = &it->second;
    if (model == nullptr) {
      return send_error(res, 404, fmt::format("speech model '{}' not found{}", request->model, speech_.empty() ? " (this server has none)" : ""), "not_found");
    }
    const auto& upload = req.get_file_value("file");
    auto audio = audio::decode_audio(std::as_bytes(std::span(upload.content)), upload.filename.empty() ? "file" : upload.filename);
    if (!audio) return send_error(res, 400, audio.error().message, "invalid_request_error");
    auto samples = std::make_shared<audio::Audio>(std::move(audio).value());

    std::optional<Result<runtime::Transcript>> outcome;
    auto cancel = std::make_shared<std::atomic<bool>>(false);
    auto done = scheduler_.submit(
        [&](const std::atomic<bool>&) {
          auto decoder = runtime::WhisperDecoder::create(*model->model, model->tokenizer);
          if (!decoder) {
            outcome = std::move(decoder).error();
            return;
          }
          runtime::TranscribeOptions options;
          options.decode.language = request->language;
          if (request->temperature) options.temperatures = {*request->temperature};
          if (!request->prompt.empty()) options.initial_prompt = request->prompt;
          options.word_timestamps = request->word_timestamps;
          options.cancelled = [&] { return cancel->load(); };
          runtime::WhisperTranscriber transcriber(*decoder);
          outcome = transcriber.transcribe_samples(samples->samples, *model->front_end, options, ThreadPool::global());
        },
        cancel);
    if (!done.valid()) return send_error(res, 503, "the server is busy (request queue full); retry later", "server_busy");
    if (wait_unless_client_leaves(req, done, *cancel)) {
      return send_error(res, 499, "the client closed the connection; transcription cancelled", "client_closed");
    }
    if (!outcome) return send_error(res, 500, "transcription did not run", "server_error");
    if (!*outcome) {
      const Error& error = outcome->error();
      return send_error(res, error.code == ErrorCode::invalid_argument ? 400 : 500, error.message,
                        error.code == ErrorCode::invalid_argument ? "invalid_request_error" : "server_error");
    }
    auto [body, type] = transcription_response(**outcome, request->response_format, runtime::WhisperTask::transcribe, samples->seconds());
    res.set_content(body, type);
  }

  ServerOptions options_;
  Metrics metrics_;
  Scheduler scheduler_;
  std::map<std::string, ServedModel> models_;
  std::map<std::string, ServedSpeechModel> speech_;
  std::map<std::string, ServedEnsemble> ensembles_;
  httplib::Server http_;
  socket_t listen_socket_ = INVALID_SOCKET;  ///< the listening socket, to widen its backlog
  std::atomic<uint64_t> next_id_{1};
};

}  // namespace apr::serve
