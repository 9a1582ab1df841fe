// Pareto frontier of model variants and its Markdown / SVG report.
#include <catch2/catch.hpp>

#include <vector>

#include "apr/eval/pareto.hpp"

using namespace apr::eval;

TEST_CASE("the frontier holds exactly the non-dominated variants", "[pareto]") {
  std::vector<Variant> variants{
      {"f32", 2000e6, 10.0, 0.0, 25, false},
      {"f16", 1000e6, 10.0, 0.0001, 50, false},  // dominates f32 (smaller, same ppl, faster)
      {"q8_0", 530e6, 10.05, 0.001, 80, false},
      {"q4_0", 280e6, 10.9, 0.02, 160, false},
      {"bad", 600e6, 11.0, 0.03, 70, false},     // dominated by q8_0
  };
  mark_pareto_frontier(variants);
  std::vector<std::string> frontier;
  for (const auto& v : variants) {
    if (v.on_frontier) frontier.push_back(v.name);
  }
  REQUIRE(frontier == std::vector<std::string>{"f16", "q8_0", "q4_0"});
  const std::string table = pareto_markdown(variants);
  REQUIRE(table.find("| q4_0 | 280.0 | 10.900 | 0.02000 | 160.0 | yes |") != std::string::npos);
  REQUIRE(table.find("| bad | 600.0 | 11.000 | 0.03000 | 70.0 |  |") != std::string::npos);
  REQUIRE(table.find("q4_0") < table.find("f16"));  // sorted by size
  const std::string svg = pareto_svg(variants);
  REQUIRE(svg.rfind("<svg", 0) == 0);
  REQUIRE(svg.find("<polyline") != std::string::npos);
  REQUIRE(svg.find(">q8_0 (80 tok/s)</text>") != std::string::npos);
}
