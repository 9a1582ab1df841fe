// POST /predict/moe and GET /models/{id}/experts for a mixture-of-experts ensemble: the server's
// outputs, experts and weights equal MixtureOfExperts::predict on the same file; statistics count
// the routed inputs; bad requests get JSON errors.
#include <catch2/catch.hpp>

#include <httplib.h>

#include <random>
#include <thread>

#include "apr/models/moe_writer.hpp"
#include "apr/serve/server.hpp"
#include "test_support.hpp"

using namespace apr;

TEST_CASE("POST /predict/moe routes inputs through a served ensemble", "[serve][moe]") {
  const models::MoeConfig config{.num_experts = 4, .top_k = 2, .load_balance_weight = 0.1};
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 0.2f);
  auto layer = [&](size_t in, size_t out) {
    models::DenseLayerValues values{in, out, std::vector<float>(in * out), std::vector<float>(out)};
    for (float& w : values.weight) w = normal(rng);
    for (float& b : values.bias) b = normal(rng);
    return values;
  };
  const models::DenseNetworkValues gate{layer(32, 4)};
  std::vector<models::DenseNetworkValues> experts;
  for (size_t e = 0; e < 4; ++e) experts.push_back({layer(32, 32), layer(32, 3)});
  const std::string path = test::temp_path("served-moe.apr");
  REQUIRE(models::write_mixture_of_experts(path, config, gate, experts));
  auto opened = models::MixtureOfExperts::open(path);
  REQUIRE(opened);
  std::shared_ptr<const models::MixtureOfExperts> model = std::move(opened).value();
  auto reference = models::MixtureOfExperts::open(path);
  REQUIRE(reference);

  serve::Server server({}, {}, {}, {{"ensemble", model}});
  const int port = server.bind_to_any_port("127.0.0.1");
  REQUIRE(port > 0);
  std::thread thread([&] { server.listen_after_bind(); });
  while (!server.is_running()) std::this_thread::yield();
  httplib::Client client("127.0.0.1", port);

  std::vector<float> input(32);
  for (float& v : input) v = normal(rng) * 5.0f;
  auto single = client.Post("/predict/moe", nlohmann::json{{"input", input}}.dump(), "application/json");
  REQUIRE(single->status == 200);
  const auto body = nlohmann::json::parse(single->body);
  auto expected = (*reference)->predict(input);
  REQUIRE(expected);
  CHECK(body["model"] == "ensemble");
  CHECK(body["experts"].get<std::vector<int32_t>>() == expected->experts);
  CHECK(body["weights"].get<std::vector<float>>() == expected->weights);
  CHECK(body["output"].get<std::vector<float>>() == expected->output);

  auto batch = client.Post("/predict/moe", nlohmann::json{{"model", "ensemble"}, {"inputs", {input, input, input}}}.dump(), "application/json");
  REQUIRE(batch->status == 200);
  const auto rows = nlohmann::json::parse(batch->body);
  REQUIRE(rows["outputs"].size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(rows["outputs"][2][i].get<float>() == Approx(expected->output[i]).margin(1e-5));  // gemm vs gemv rounding

  const auto statistics = nlohmann::json::parse(client.Get("/models/ensemble/experts")->body);
  CHECK(statistics["id"] == "ensemble");
  CHECK(statistics["inputs"] == 4);
  uint64_t routed = 0;
  for (const auto& count : statistics["tokens_per_expert"]) routed += count.get<uint64_t>();
  CHECK(routed == 8);
  CHECK(statistics["weighted_load_balance_loss"].get<double>() == Approx(0.1 * statistics["load_balance_loss"].get<double>()));

  CHECK(client.Post("/predict/moe", R"({"input":[1,2,3]})", "application/json")->status == 400);
  CHECK(client.Post("/predict/moe", R"({"inputs":"x"})", "application/json")->status == 400);
  CHECK(client.Post("/predict/moe", R"({"model":"nope","input":[]})", "application/json")->status == 404);
  auto not_json = client.Post("/predict/moe", "{", "application/json");
  CHECK(not_json->status == 400);
  CHECK(nlohmann::json::parse(not_json->body)["error"]["code"] == 400);
  const auto listed = nlohmann::json::parse(client.Get("/v1/models")->body);
  CHECK(listed["data"][0]["id"] == "ensemble");
  server.stop();
  thread.join();
}
