// OpenAI request parsing: defaults, every field, and errors naming the field.
#include <catch2/catch.hpp>

#include "apr/serve/openai_request.hpp"
#include "apr/serve/metrics.hpp"
#include "apr/serve/scheduler.hpp"

using namespace apr;
using namespace apr::serve;

TEST_CASE("chat request fields are read", "[openai]") {
  const auto request = parse_completion_request(
      R"({"model":"m","messages":[{"role":"system","content":"s"},{"role":"user","content":[{"type":"text","text":"hi"}]}],
          "temperature":0.5,"top_p":0.9,"max_tokens":12,"stop":["\n","END"],"seed":7,"stream":true,"presence_penalty":0.5})",
      true);
  REQUIRE(request);
  REQUIRE(request->model == "m");
  REQUIRE(request->messages.size() == 2);
  REQUIRE(request->messages[1].content == "hi");
  REQUIRE(request->stream);
  REQUIRE(request->generation.max_tokens == 12);
  REQUIRE(request->generation.sampling.temperature == 0.5f);
  REQUIRE(request->generation.sampling.top_p == Approx(0.9f));
  REQUIRE(request->generation.sampling.seed == 7u);
  REQUIRE(request->generation.sampling.presence_penalty == 0.5f);
  REQUIRE(request->generation.stop_strings == std::vector<std::string>{"\n", "END"});
}

TEST_CASE("malformed requests are refused naming the field", "[openai]") {
  auto message = [](std::string_view body, bool chat = true) { return parse_completion_request(body, chat).error().message; };
  REQUIRE(message("{not json") == "request body is not valid JSON");
  REQUIRE(message("[]") == "request body must be a JSON object");
  REQUIRE(message(R"({"messages":[]})") == "'messages' must be a non-empty array");
  REQUIRE(message(R"({"messages":[{"role":"robot","content":"x"}]})").find("'messages[0].role' must be system, user or assistant") == 0);
  REQUIRE(message(R"({"messages":[{"role":"user"}]})") == "'messages[0].content' must be a string");
  REQUIRE(message(R"({"messages":[{"role":"user","content":"x"}],"temperature":"hot"})") == "'temperature' must be a number");
  REQUIRE(message(R"({"messages":[{"role":"user","content":"x"}],"temperature":3})").find("'temperature' must be between 0 and 2") == 0);
  REQUIRE(message(R"({"messages":[{"role":"user","content":"x"}],"max_tokens":0})").find("'max_tokens' must be an integer") == 0);
  REQUIRE(message(R"({"messages":[{"role":"user","content":"x"}],"stop":[1]})") == "'stop' entries must be strings");
  REQUIRE(message(R"({"prompt":5})", false) == "'prompt' must be a string");
  REQUIRE(parse_completion_request(R"({"prompt":"a b"})", false)->prompt == "a b");
}

TEST_CASE("metrics render Prometheus text; the scheduler runs jobs in order and refuses when full", "[serve]") {
  Metrics metrics;
  metrics.record_request("/v1/chat/completions", 200, 0.02);
  metrics.record_request("/v1/chat/completions", 400, 0.001);
  metrics.record_generation(5, 10, 0.5);
  const std::string text = metrics.prometheus();
  REQUIRE(text.find("apr_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 1") != std::string::npos);
  REQUIRE(text.find("apr_request_duration_seconds_bucket{route=\"/v1/chat/completions\",le=\"0.025\"} 2") != std::string::npos);
  REQUIRE(text.find("apr_request_duration_seconds_bucket{route=\"/v1/chat/completions\",le=\"0.005\"} 1") != std::string::npos);
  REQUIRE(text.find("apr_generated_tokens_total 10") != std::string::npos);
  REQUIRE(text.find("apr_tokens_per_second 20") != std::string::npos);

  std::vector<int> order;
  std::mutex mutex;
  std::promise<void> release;
  std::shared_future<void> gate = release.get_future().share();
  {
    Scheduler scheduler(1, 2, metrics);
    auto blocker = scheduler.submit([&](const std::atomic<bool>&) { gate.wait(); }, std::make_shared<std::atomic<bool>>(false));
    // wait until the worker took the blocker, so the queue holds exactly what we submit next
    while (metrics.active.load() == 0) std::this_thread::yield();
    auto first = scheduler.submit([&](const std::atomic<bool>&) { std::lock_guard l(mutex); order.push_back(1); }, std::make_shared<std::atomic<bool>>(false));
    auto second = scheduler.submit([&](const std::atomic<bool>&) { std::lock_guard l(mutex); order.push_back(2); }, std::make_shared<std::atomic<bool>>(false));
    auto refused = scheduler.submit([&](const std::atomic<bool>&) {}, std::make_shared<std::atomic<bool>>(false));
    REQUIRE_FALSE(refused.valid());
    REQUIRE(metrics.queue_depth.load() == 2);
    release.set_value();
    first.wait();
    second.wait();
  }
  REQUIRE(order == std::vector<int>{1, 2});
}
