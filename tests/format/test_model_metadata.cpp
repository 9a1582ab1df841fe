// ModelMetadata's typed accessors and the model card's carry-over (README.md front matter).
#include <catch2/catch.hpp>

#include <string>

#include <nlohmann/json.hpp>

#include "apr/format/model_metadata.hpp"
#include "apr/models/apr_metadata.hpp"

using namespace apr;
using namespace apr::format;

TEST_CASE("typed accessors read aprender's fields and are empty for absent, null or mistyped keys", "[metadata]") {
  const nlohmann::json json = {{"model_type", "qwen2"}, {"name", "tiny"}, {"architecture", nullptr}, {"author", 7},
                               {"param_count", 1234}, {"total_size", -5}, {"license", "apache-2.0"},
                               {"model_card", "# Card"}, {"generation_config", {{"top_k", 20}}},
                               {"quantization", {{"quant_type", "Q4_0"}, {"bits", 4}, {"block_size", 32}, {"symmetric", false}}}};
  const ModelMetadata m(json);
  CHECK(m.model_type() == "qwen2");
  CHECK(m.architecture() == "qwen2");  // null architecture falls back to model_type
  CHECK(m.name() == "tiny");
  CHECK_FALSE(m.author());              // a number where a string belongs
  CHECK_FALSE(m.description());         // absent
  CHECK(m.param_count() == 1234u);
  CHECK_FALSE(m.total_size());          // negative
  CHECK(m.license() == "apache-2.0");
  CHECK(m.model_card() == "# Card");
  REQUIRE(m.field("generation_config") != nullptr);
  CHECK((*m.field("generation_config"))["top_k"] == 20);
  CHECK(m.field("architecture") == nullptr);
  const auto q = m.quantization();
  REQUIRE(q);
  CHECK(q->quant_type == "Q4_0");
  CHECK(q->bits == 4u);
  CHECK(q->block_size == 32u);
  CHECK_FALSE(q->symmetric);
  const nlohmann::json unquantized = {{"quantization", nullptr}};
  CHECK_FALSE(ModelMetadata(unquantized).quantization());
  const nlohmann::json not_object = nlohmann::json::array({1, 2});
  CHECK_FALSE(ModelMetadata(not_object).model_type());
}

TEST_CASE("the license comes from a model card's YAML front matter only", "[metadata]") {
  CHECK(models::model_card_license("---\nlanguage: en\nlicense: apache-2.0\ntags: [x]\n---\n# Model\n") == "apache-2.0");
  CHECK(models::model_card_license("---\r\nlicense: \"mit\"\r\n---\r\n") == "mit");
  CHECK(models::model_card_license("---\nlicense:   'cc-by-4.0'  \n") == "cc-by-4.0");  // unterminated front matter
  CHECK(models::model_card_license("# Model\nlicense: mit\n").empty());                 // not front matter
  CHECK(models::model_card_license("---\ntags: [x]\n---\nlicense: mit\n").empty());     // after the front matter
  CHECK(models::model_card_license("").empty());
}
