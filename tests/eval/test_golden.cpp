// Golden prompt suites: parsing errors, pass counting with Wilson intervals, seeds per run.
#include <catch2/catch.hpp>

#include <map>
#include <string>

#include "apr/eval/golden.hpp"
#include "fake_models.hpp"

using namespace apr;
using namespace apr::eval;

TEST_CASE("suites parse and bad ones are refused naming the field", "[golden]") {
  auto suite = parse_golden_suite(R"({"runs":3,"cases":[{"name":"hi","prompt":"Say hi","expect":"^Hel","max_tokens":4}]})", "suite.json");
  REQUIRE(suite);
  REQUIRE(suite->runs == 3);
  REQUIRE(suite->cases[0].chat);
  REQUIRE(suite->cases[0].max_tokens == 4);
  REQUIRE(parse_golden_suite("{", "s.json").error().message == "s.json: not a JSON object");
  REQUIRE(parse_golden_suite(R"({"cases":[]})", "s.json").error().message == "s.json: 'cases' must be a non-empty array");
  REQUIRE(parse_golden_suite(R"({"cases":[{"prompt":"x","expect":"("}]})", "s.json").error().message.find("cases[0].expect is not a valid regex") != std::string::npos);
  REQUIRE(parse_golden_suite(R"({"cases":[{"prompt":"x","expect":"a","mode":"poem"}]})", "s.json").error().message == "s.json: cases[0].mode must be chat or completion");
}

TEST_CASE("a scripted model passes the matching case and fails the other", "[golden]") {
  test::ScriptedModel model({0, 1, 2, 3});
  const std::map<int32_t, std::string> pieces{{1, "Hel"}, {2, "lo"}, {3, "!"}};
  GoldenSuite suite;
  suite.runs = 4;
  suite.temperature = 0.0f;
  suite.cases = {{"greets", "x", true, "Hello", 3}, {"counts", "x", false, "[0-9]+", 3}};
  auto report = run_golden_suite(
      model, suite, [](const GoldenCase&) -> Result<std::vector<int32_t>> { return std::vector<int32_t>{0}; },
      [&] { return runtime::TokenText([&](int32_t id) { return pieces.count(id) ? pieces.at(id) : std::string(); }); }, {});
  REQUIRE(report);
  REQUIRE(report->cases[0].passed == 4);
  REQUIRE(report->cases[0].outputs[0] == "Hello!");
  REQUIRE(report->cases[1].passed == 0);
  REQUIRE(report->pass_rate.estimate == Approx(0.5));
  REQUIRE(report->pass_rate.low < 0.5);
  REQUIRE(report->pass_rate.high > 0.5);
  REQUIRE(report->to_json()["cases"][0]["runs"] == 4);
}
