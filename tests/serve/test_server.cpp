// The HTTP server on 127.0.0.1 with the qwen2-micro fixture: every endpoint, auth, errors as
// JSON, SSE streaming, the request time limit (504), cancellation when a client disconnects,
// and a bounded concurrent load with malformed requests mixed in.
#include <catch2/catch.hpp>

#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <sstream>
#include <fstream>
#include <thread>
#include <vector>

#include "apr/models/load.hpp"
#include "apr/models/load_whisper.hpp"
#include "apr/serve/server.hpp"
#include "apr/text/load_tokenizer.hpp"
#include "test_support.hpp"

using namespace apr;

namespace {

struct Running {
  std::unique_ptr<serve::Server> server;
  std::thread thread;
  int port = 0;
  ~Running() {
    server->stop();
    thread.join();
  }
};

std::unique_ptr<Running> start(serve::ServerOptions options) {
  const std::string dir = test::fixture("qwen2/qwen2-micro");
  auto loaded = models::load_language_model(dir);
  REQUIRE(loaded);
  auto tokenizer = text::load_tokenizer(dir);
  REQUIRE(tokenizer);
  std::ifstream config_in(dir + "/tokenizer_config.json");
  const auto config = nlohmann::json::parse(config_in);
  auto chat = text::ChatTemplate::from_jinja(config["chat_template"].get<std::string>());
  REQUIRE(chat);
  std::vector<serve::ServedModel> models;
  models.push_back({"micro", std::shared_ptr<const models::LanguageModel>(std::move(loaded->model)), *tokenizer, *chat,
                    {151645, 151643}, loaded->config});
  auto running = std::make_unique<Running>();
  running->server = std::make_unique<serve::Server>(std::move(models), options);
  running->port = running->server->bind_to_any_port("127.0.0.1");
  REQUIRE(running->port > 0);
  running->thread = std::thread([server = running->server.get()] { server->listen_after_bind(); });
  while (!running->server->is_running()) std::this_thread::yield();
  return running;
}

size_t resident_kb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
  }
  return 0;
}

/// Sends `body` as a POST to `path` over a plain socket, waits `linger`, and closes the
/// connection without reading the response: a client that went away.
void post_and_hang_up(int port, const std::string& body, std::chrono::milliseconds linger, const std::string& path = "/v1/chat/completions",
                      const std::string& content_type = "application/json") {
  const int sock = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(sock >= 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(sock, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
  const std::string request = "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + content_type + "\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n = ::send(sock, request.data() + sent, request.size() - sent, 0);
    REQUIRE(n > 0);
    sent += static_cast<size_t>(n);
  }
  std::this_thread::sleep_for(linger);
  ::close(sock);
}

/// The value of the Prometheus sample `name` in `metrics` (-1 when absent).
double metric(const std::string& metrics, const std::string& name) {
  const auto at = metrics.find("\n" + name + " ");
  return at == std::string::npos ? -1.0 : std::stod(metrics.substr(at + name.size() + 2));
}

const std::string kChat = R"({"model":"micro","messages":[{"role":"user","content":"Hello!"}],"max_tokens":4,"seed":3})";

}  // namespace

TEST_CASE("endpoints, auth and JSON errors", "[serve]") {
  auto running = start({.api_key = "secret"});
  httplib::Client client("127.0.0.1", running->port);
  REQUIRE(client.Get("/health")->status == 401);
  const httplib::Headers auth{{"Authorization", "Bearer secret"}};
  REQUIRE(client.Get("/health", httplib::Headers{{"Authorization", "Bearer secreT"}})->status == 401);
  auto health = client.Get("/health", auth);
  REQUIRE(health->status == 200);
  REQUIRE(nlohmann::json::parse(health->body)["status"] == "ok");
  REQUIRE(nlohmann::json::parse(client.Get("/v1/models", auth)->body)["data"][0]["id"] == "micro");
  auto metadata = client.Get("/models/micro/metadata", auth);
  REQUIRE(nlohmann::json::parse(metadata->body)["model"]["architecture"] == "qwen2");
  REQUIRE(client.Get("/models/nope/metadata", auth)->status == 404);

  auto chat = client.Post("/v1/chat/completions", auth, kChat, "application/json");
  REQUIRE(chat->status == 200);
  const auto body = nlohmann::json::parse(chat->body);
  REQUIRE(body["object"] == "chat.completion");
  REQUIRE(body["usage"]["completion_tokens"] == 4);
  REQUIRE(body["usage"]["prompt_tokens"] == 31);  // the chat template's tokens for "Hello!"
  // same seed, same answer
  REQUIRE(nlohmann::json::parse(client.Post("/v1/chat/completions", auth, kChat, "application/json")->body)["choices"][0]["message"] ==
          body["choices"][0]["message"]);

  auto completion = client.Post("/v1/completions", auth, R"({"prompt":"Once upon a time","max_tokens":3,"temperature":0})", "application/json");
  REQUIRE(completion->status == 200);
  REQUIRE(nlohmann::json::parse(completion->body)["object"] == "text_completion");

  auto bad = client.Post("/v1/chat/completions", auth, "{not json", "application/json");
  REQUIRE(bad->status == 400);
  REQUIRE(nlohmann::json::parse(bad->body)["error"]["message"] == "request body is not valid JSON");
  REQUIRE(client.Post("/v1/chat/completions", auth, R"({"model":"other","messages":[{"role":"user","content":"x"}]})", "application/json")->status == 404);
  REQUIRE(client.Post("/v1/chat/completions", auth, R"({"messages":[{"role":"user","content":"x"}],"max_tokens":100000})", "application/json")->status == 400);
  REQUIRE(client.Post("/v1/chat/completions", auth, std::string(2 << 20, ' '), "application/json")->status == 413);
  const std::string metrics = client.Get("/metrics", auth)->body;
  REQUIRE(metrics.find("apr_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 2") != std::string::npos);
  REQUIRE(metrics.find("apr_requests_total{route=\"/health\",status=\"401\"} 2") != std::string::npos);
}

TEST_CASE("streamed chat arrives as server-sent events ending in [DONE]", "[serve]") {
  auto running = start({});
  httplib::Client client("127.0.0.1", running->port);
  std::string events;
  auto response = client.Post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"Hi"}],"max_tokens":5,"stream":true,"seed":1})", "application/json");
  REQUIRE(response->status == 200);
  events = response->body;
  REQUIRE(events.find("data: [DONE]") != std::string::npos);
  std::string text;
  size_t chunks = 0;
  for (size_t at = events.find("data: {"); at != std::string::npos; at = events.find("data: {", at + 1)) {
    const auto json = nlohmann::json::parse(events.substr(at + 6, events.find("\n\n", at) - at - 6));
    REQUIRE(json["object"] == "chat.completion.chunk");
    if (json["choices"][0]["delta"].contains("content")) text += json["choices"][0]["delta"]["content"].get<std::string>();
    ++chunks;
  }
  REQUIRE(chunks >= 3);
  // the streamed text equals the non-streamed answer for the same seed
  auto full = client.Post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"Hi"}],"max_tokens":5,"seed":1})", "application/json");
  REQUIRE(nlohmann::json::parse(full->body)["choices"][0]["message"]["content"] == text);
}

TEST_CASE("bounded load: 32 clients, 1000 requests with malformed ones mixed in, memory stable", "[serve][load]") {
  auto running = start({.workers = 2});
  std::atomic<int> ok{0}, rejected{0}, wrong{0};
  auto hammer = [&](int count, int client_index) {
    httplib::Client client("127.0.0.1", running->port);
    client.set_read_timeout(60, 0);
    client.set_keep_alive(true);
    for (int i = 0; i < count; ++i) {
      const bool malformed = (i + client_index) % 4 == 0;
      const std::string body = malformed ? R"({"messages":"oops"})" : R"({"messages":[{"role":"user","content":"Hi"}],"max_tokens":1,"temperature":0})";
      auto response = client.Post("/v1/chat/completions", body, "application/json");
      if (!response) {
        ++wrong;
        std::fprintf(stderr, "%s\n", (std::ostringstream() << "no response: " << httplib::to_string(response.error())).str().c_str());
      } else if (malformed) {
        if (response->status != 400) std::fprintf(stderr, "%s\n", (std::ostringstream() << "malformed got " << response->status << ": " << response->body).str().c_str());
        (response->status == 400 ? rejected : wrong)++;
      } else {
        if (response->status != 200) std::fprintf(stderr, "%s\n", (std::ostringstream() << "request got " << response->status << ": " << response->body).str().c_str());
        (response->status == 200 && nlohmann::json::parse(response->body)["usage"]["completion_tokens"] == 1 ? ok : wrong)++;
      }
    }
  };
  auto run_clients = [&](int clients, int per_client) {
    std::vector<std::thread> threads;
    for (int c = 0; c < clients; ++c) threads.emplace_back(hammer, per_client, c);
    for (auto& t : threads) t.join();
  };
  run_clients(32, 4);  // warm-up: 128 requests
  const size_t warm = resident_kb();
  run_clients(32, 28);  // 896 more: 1024 in all
  const size_t after = resident_kb();
  REQUIRE(wrong.load() == 0);
  REQUIRE(ok.load() + rejected.load() == 32 * 32);
  REQUIRE(rejected.load() == 32 * 32 / 4);
  INFO("RSS after warm-up " << warm << " kB, after load " << after << " kB");
  REQUIRE(after < warm * 1.10);
}

TEST_CASE("audio transcriptions: every response format, and errors as JSON", "[serve][audio]") {
  const std::string dir = test::fixture("whisper/whisper-micro");
  auto whisper = models::load_whisper(dir);
  REQUIRE(whisper);
  auto tokenizer = text::load_tokenizer(dir);
  REQUIRE(tokenizer);
  auto front_end = whisper->front_end();
  REQUIRE(front_end);
  std::vector<serve::ServedSpeechModel> speech;
  speech.push_back({"whisper", std::shared_ptr<const models::WhisperModel>(std::move(whisper->model)), *tokenizer,
                    std::make_shared<const audio::LogMel>(std::move(front_end).value()), whisper->config});
  serve::Server server({}, {}, std::move(speech));
  const int port = server.bind_to_any_port("127.0.0.1");
  REQUIRE(port > 0);
  std::thread thread([&] { server.listen_after_bind(); });
  while (!server.is_running()) std::this_thread::yield();

  std::ifstream in(test::fixture("whisper/audio/a_hello.wav"), std::ios::binary);
  const std::string wav((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(60, 0);
  auto post = [&](const std::string& format, const std::string& audio) {
    httplib::MultipartFormDataItems form{{"file", audio, "a_hello.wav", "audio/wav"}, {"model", "whisper", "", ""},
                                         {"language", "en", "", ""}, {"temperature", "0", "", ""}, {"response_format", format, "", ""}};
    return client.Post("/v1/audio/transcriptions", form);
  };
  auto json = post("json", wav);
  REQUIRE(json->status == 200);
  const std::string text = nlohmann::json::parse(json->body)["text"];
  CHECK_FALSE(text.empty());
  auto verbose = post("verbose_json", wav);
  REQUIRE(verbose->status == 200);
  const auto details = nlohmann::json::parse(verbose->body);
  CHECK(details["task"] == "transcribe");
  CHECK(details["duration"].get<double>() == Approx(16454.0 / 16000.0));
  CHECK(details["segments"][0]["tokens"].size() > 0);
  CHECK(details["text"] == text);
  CHECK(post("text", wav)->body == text + "\n");
  CHECK(post("srt", wav)->body.find(" --> ") != std::string::npos);
  CHECK(post("vtt", wav)->body.rfind("WEBVTT", 0) == 0);

  CHECK(post("docx", wav)->status == 400);
  auto not_audio = post("json", "this is not audio");
  CHECK(not_audio->status == 400);
  CHECK(nlohmann::json::parse(not_audio->body)["error"]["message"].get<std::string>().find("cannot read audio") != std::string::npos);
  CHECK(client.Post("/v1/audio/transcriptions", "{}", "application/json")->status == 400);
  httplib::MultipartFormDataItems other{{"file", wav, "a.wav", "audio/wav"}, {"model", "nope", "", ""}};
  CHECK(client.Post("/v1/audio/transcriptions", other)->status == 404);

  // ten minutes of audio is twenty 30 s windows; the client leaves after 300 ms and the
  // transcription stops at its next window (the worker is free for the next request at once)
  std::string long_wav = wav.substr(0, 44);
  const uint32_t data_bytes = 10 * 60 * 16000 * 2;
  for (int i = 0; i < 4; ++i) long_wav[40 + i] = static_cast<char>((data_bytes >> (8 * i)) & 0xFF);
  for (int i = 0; i < 4; ++i) long_wav[4 + i] = static_cast<char>(((data_bytes + 36) >> (8 * i)) & 0xFF);
  const std::string voice = wav.substr(44);
  while (long_wav.size() < 44 + data_bytes) long_wav += voice.substr(0, std::min(voice.size(), 44 + data_bytes - long_wav.size()));
  const std::string boundary = "aprboundary7";
  const std::string form = "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"long.wav\"\r\nContent-Type: audio/wav\r\n\r\n" +
                           long_wav + "\r\n--" + boundary + "\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwhisper\r\n--" + boundary + "--\r\n";
  post_and_hang_up(port, form, std::chrono::milliseconds(300), "/v1/audio/transcriptions", "multipart/form-data; boundary=" + boundary);
  for (int i = 0; i < 600 && server.metrics().cancelled_count("disconnect") == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(server.metrics().cancelled_count("disconnect") == 1);
  CHECK(post("json", wav)->status == 200);
  server.stop();
  thread.join();
}

TEST_CASE("a mixture-of-experts model reports its router statistics", "[serve][moe]") {
  const std::string dir = test::fixture("qwen2/qwen2moe-micro");
  auto loaded = models::load_language_model(dir);
  REQUIRE(loaded);
  auto tokenizer = text::load_tokenizer(test::fixture("qwen2/qwen2-micro"));  // any tokenizer: the test sends ids below 512
  REQUIRE(tokenizer);
  std::vector<serve::ServedModel> models;
  models.push_back({"moe", std::shared_ptr<const models::LanguageModel>(std::move(loaded->model)), *tokenizer, text::ChatTemplate(), {}, loaded->config});
  serve::Server server(std::move(models), {});
  const int port = server.bind_to_any_port("127.0.0.1");
  REQUIRE(port > 0);
  std::thread thread([&] { server.listen_after_bind(); });
  while (!server.is_running()) std::this_thread::yield();
  httplib::Client client("127.0.0.1", port);
  auto before = nlohmann::json::parse(client.Get("/models/moe/experts")->body);
  CHECK(before["num_experts"] == 4);
  CHECK(before["layers"][0]["tokens"] == 0);
  auto completion = client.Post("/v1/completions", R"({"prompt":"x","max_tokens":3,"temperature":0})", "application/json");
  REQUIRE(completion->status == 200);
  auto after = nlohmann::json::parse(client.Get("/models/moe/experts")->body);
  CHECK(after["layers"][0]["tokens"].get<int>() > 0);
  uint64_t routed = 0;
  for (const auto& count : after["tokens_per_expert"]) routed += count.get<uint64_t>();
  CHECK(routed == 2 * 2 * after["layers"][0]["tokens"].get<uint64_t>());  // 2 layers × top-2 per token
  CHECK(after["load_balance_loss"].get<double>() > 0.0);
  server.stop();
  thread.join();
}

TEST_CASE("a generation past the request time limit gets 504 with a JSON error", "[serve]") {
  auto running = start({.max_request_seconds = 0.05, .max_context = 4096});
  httplib::Client client("127.0.0.1", running->port);
  auto slow = client.Post("/v1/chat/completions", R"({"messages":[{"role":"user","content":"Hi"}],"max_tokens":3000,"seed":1})", "application/json");
  REQUIRE(slow->status == 504);
  const auto error = nlohmann::json::parse(slow->body)["error"];
  CHECK(error["type"] == "timeout");
  CHECK(error["message"].get<std::string>().find("time limit") != std::string::npos);
  CHECK(running->server->metrics().cancelled_count("timeout") == 1);
  CHECK(client.Get("/metrics")->body.find("apr_cancelled_requests_total{reason=\"timeout\"} 1") != std::string::npos);
}

TEST_CASE("a client that disconnects cancels its generation, streamed or not", "[serve]") {
  auto running = start({.max_context = 4096});
  httplib::Client client("127.0.0.1", running->port);
  const auto& metrics = running->server->metrics();
  size_t expected = 0;
  for (const bool stream : {false, true}) {
    INFO((stream ? "streamed" : "not streamed"));
    // 3000 tokens take seconds on this model; the client leaves after 300 ms
    const std::string body = std::string(R"({"messages":[{"role":"user","content":"Hi"}],"max_tokens":3000,"seed":1,"stream":)") +
                             (stream ? "true" : "false") + "}";
    post_and_hang_up(running->port, body, std::chrono::milliseconds(300));
    ++expected;
    // the handler notices within a poll interval and the worker stops at its next token (generous bound)
    for (int i = 0; i < 600 && metrics.cancelled_count("disconnect") < expected; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    REQUIRE(metrics.cancelled_count("disconnect") == expected);
    // the worker is free again and the generation ended long before its 3000 tokens
    REQUIRE(client.Post("/v1/chat/completions", kChat, "application/json")->status == 200);
    const std::string text = client.Get("/metrics")->body;
    CHECK(metric(text, "apr_generated_tokens_total") < 3000.0 * static_cast<double>(expected));
  }
  CHECK(metrics.cancelled_count("timeout") == 0);
}
