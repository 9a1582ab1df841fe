// GGUF v3 against files written by llama.cpp's own gguf-py (../shared/fixtures/qwen2/formats):
// every key and tensor read; Q8_0/Q4_0 dequantization bit-exact with gguf-py's; our Q8_0/Q4_0
// quantization of the F32 weights reproduces their block bytes; a Qwen2 loaded from the F32
// GGUF gives the SafeTensors model's logits exactly (same weights, same code); the writer
// round-trips every metadata type; k-quant blocks decode to values derived from their layouts;
// corrupt files give errors that name the file.
#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>

#include "apr/core/ggml_blocks.hpp"
#include "apr/core/half.hpp"
#include "apr/core/quantize.hpp"
#include "apr/format/detect.hpp"
#include "apr/format/gguf.hpp"
#include "apr/format/gguf_writer.hpp"
#include "apr/format/safetensors.hpp"
#include "apr/format/tensor_values.hpp"
#include "apr/models/load.hpp"
#include "apr/models/qwen2_gguf.hpp"
#include "test_support.hpp"

using namespace apr;

using apr::test::read_bytes;

namespace {

std::string formats(const std::string& name) { return test::fixture("qwen2/formats/" + name); }

std::unique_ptr<format::GgufFile> open_gguf(const std::string& path) {
  auto file = format::GgufFile::open(path);
  REQUIRE(file);
  return std::move(file).value();
}

}  // namespace

TEST_CASE("gguf-py's files read: metadata, tensor infos, shapes outermost first", "[gguf]") {
  for (const char* name : {"qwen2-v512-f32.gguf", "qwen2-v512-f16.gguf", "qwen2-v512-q8_0.gguf", "qwen2-v512-q4_0.gguf"}) {
    INFO(name);
    auto file = open_gguf(formats(name));
    CHECK(file->format() == "gguf");
    CHECK(file->contents().version == 3);
    CHECK(file->metadata()["general.architecture"] == "qwen2");
    CHECK(file->metadata()["qwen2.block_count"] == 2);
    CHECK(file->metadata()["qwen2.rope.freq_base"].get<double>() == 1e6);
    CHECK(file->tensors().size() == 27);
    const TensorView* embedding = file->find("token_embd.weight");
    REQUIRE(embedding != nullptr);
    CHECK(embedding->shape == Shape{512, 64});
    const TensorView* down = file->find("blk.0.ffn_down.weight");
    REQUIRE(down != nullptr);
    CHECK(down->shape == Shape{64, 128});
    CHECK(file->find("blk.1.attn_k.bias")->dtype == DType::f32);
  }
  auto q4 = open_gguf(formats("qwen2-v512-q4_0.gguf"));
  CHECK(q4->find("blk.0.attn_q.weight")->dtype == DType::q4_0);
  CHECK(q4->contents().data_start == 2048);
}

TEST_CASE("Q8_0 and Q4_0 dequantize bit-exactly as gguf-py, and quantize to its bytes", "[gguf]") {
  auto f32 = open_gguf(formats("qwen2-v512-f32.gguf"));
  for (const auto& [file_name, refs_name, dtype] : {std::tuple{"qwen2-v512-q8_0.gguf", "dequant_q8_0.safetensors", DType::q8_0},
                                                    std::tuple{"qwen2-v512-q4_0.gguf", "dequant_q4_0.safetensors", DType::q4_0}}) {
    INFO(file_name);
    auto quantized = open_gguf(formats(file_name));
    auto refs = format::SafeTensorsFile::open(formats(refs_name));
    REQUIRE(refs);
    size_t compared = 0;
    for (const TensorView& expected : (*refs)->tensors()) {
      INFO(expected.name);
      const TensorView* tensor = quantized->find(expected.name);
      REQUIRE(tensor != nullptr);
      REQUIRE(tensor->dtype == dtype);
      auto values = format::tensor_to_f32(*tensor);
      auto reference = format::tensor_to_f32(expected);
      REQUIRE(values);
      REQUIRE(reference);
      CHECK(std::memcmp(values->data(), reference->data(), values->size() * sizeof(float)) == 0);
      // our quantization of the F32 weights gives gguf-py's block bytes
      auto source = format::tensor_to_f32(*f32->find(expected.name));
      REQUIRE(source);
      std::vector<std::byte> ours(tensor->bytes.size());
      (void)visit_dtype(dtype, [&](auto tag) -> Result<void> {
        using W = decltype(tag);
        quantize_row<W>(source->data(), reinterpret_cast<typename W::Block*>(ours.data()), source->size());
        return ok();
      });
      CHECK(std::memcmp(ours.data(), tensor->bytes.data(), ours.size()) == 0);
      ++compared;
    }
    CHECK(compared == 16);
  }
}

TEST_CASE("a Qwen2 GGUF runs: same logits as the SafeTensors model, every dtype loads", "[gguf][qwen2]") {
  auto reference = models::load_language_model(test::fixture("qwen2/qwen2-v512"));
  REQUIRE(reference);
  const std::vector<int32_t> ids{152, 249, 131, 440, 456, 256, 277};
  auto logits_of = [&](const models::LanguageModel& model) {
    std::vector<float> logits(model.vocab_size());
    auto sequence = model.new_sequence(ids.size());
    REQUIRE(model.forward(*sequence, ids, logits));
    return logits;
  };
  const auto expected = logits_of(*reference->model);
  auto from_gguf = models::load_language_model(formats("qwen2-v512-f32.gguf"));
  REQUIRE(from_gguf);
  CHECK(from_gguf->weight_dtype == DType::f32);
  CHECK(logits_of(*from_gguf->model) == expected);
  // quantized weights move the logits (values of order 5 on this random model): bounds per dtype
  for (const auto& [name, bound] : {std::pair{"qwen2-v512-f16.gguf", 0.02f}, std::pair{"qwen2-v512-q8_0.gguf", 0.2f},
                                    std::pair{"qwen2-v512-q4_0.gguf", 2.5f}}) {
    INFO(name);
    auto model = models::load_language_model(formats(name));
    REQUIRE(model);
    const auto logits = logits_of(*model->model);
    float worst = 0.0f;
    for (size_t i = 0; i < logits.size(); ++i) worst = std::max(worst, std::abs(logits[i] - expected[i]));
    CHECK(worst < bound);  // seen: f16 0.004, q8_0 0.14, q4_0 1.4
  }
}

TEST_CASE("Qwen2 written as GGUF matches gguf-py's tensors and loads back", "[gguf][qwen2]") {
  auto source = format::open_tensor_file(test::fixture("qwen2/qwen2-v512/model.safetensors"));
  REQUIRE(source);
  std::ifstream config_in(test::fixture("qwen2/qwen2-v512/config.json"));
  auto config = models::Qwen2Config::from_hf_json(nlohmann::json::parse(config_in));
  REQUIRE(config);
  for (const auto& [dtype, fixture] : {std::pair{DType::f32, "qwen2-v512-f32.gguf"}, std::pair{DType::q8_0, "qwen2-v512-q8_0.gguf"},
                                       std::pair{DType::q4_0, "qwen2-v512-q4_0.gguf"}}) {
    INFO(to_string(dtype));
    const std::string out = test::temp_path(std::string("written-") + std::string(to_string(dtype)) + ".gguf");
    REQUIRE(models::write_qwen2_gguf(**source, *config, out, dtype, "qwen2-v512"));
    auto written = open_gguf(out);
    auto expected = open_gguf(formats(fixture));
    REQUIRE(written->tensors().size() == expected->tensors().size());
    for (const TensorView& tensor : expected->tensors()) {
      INFO(tensor.name);
      const TensorView* ours = written->find(tensor.name);
      REQUIRE(ours != nullptr);
      CHECK(ours->dtype == tensor.dtype);
      CHECK(ours->shape == tensor.shape);
      REQUIRE(ours->bytes.size() == tensor.bytes.size());
      CHECK(std::memcmp(ours->bytes.data(), tensor.bytes.data(), tensor.bytes.size()) == 0);
    }
    for (const char* key : {"qwen2.embedding_length", "qwen2.block_count", "qwen2.feed_forward_length", "qwen2.attention.head_count",
                            "qwen2.attention.head_count_kv", "qwen2.context_length", "general.file_type"}) {
      CHECK(written->metadata()[key] == expected->metadata()[key]);
    }
    CHECK(models::load_language_model(out));
  }
}

TEST_CASE("the GGUF writer round-trips every metadata type and nested arrays", "[gguf]") {
  using format::GgufType;
  using format::GgufValue;
  std::vector<format::GgufEntry> entries{
      {"u8", GgufValue::scalar(GgufType::u8, 200)},          {"i8", GgufValue::scalar(GgufType::i8, -100)},
      {"u16", GgufValue::scalar(GgufType::u16, 60000)},      {"i16", GgufValue::scalar(GgufType::i16, -30000)},
      {"u32", GgufValue::scalar(GgufType::u32, 4000000000u)}, {"i32", GgufValue::scalar(GgufType::i32, -2000000000)},
      {"u64", GgufValue::scalar(GgufType::u64, uint64_t{1} << 60)}, {"i64", GgufValue::scalar(GgufType::i64, -(int64_t{1} << 60))},
      {"f32", GgufValue::scalar(GgufType::f32, 0.5)},        {"f64", GgufValue::scalar(GgufType::f64, 0.1)},
      {"bool", GgufValue::scalar(GgufType::boolean, true)},  {"text", GgufValue::text("héllo")},
      {"nested", GgufValue::array(GgufType::array, {GgufValue::array(GgufType::i32, {GgufValue::scalar(GgufType::i32, 1)}),
                                                     GgufValue::array(GgufType::string, {GgufValue::text("a"), GgufValue::text("b")})})},
  };
  const std::vector<float> values{1.0f, -2.0f, 3.5f, 0.25f};
  std::vector<format::GgufWriteTensor> tensors;
  tensors.push_back({"t.f32", DType::f32, Shape{2, 2}, [&](format::ByteSink& sink) { return sink.write(std::as_bytes(std::span(values))); }});
  const std::string path = test::temp_path("roundtrip.gguf");
  REQUIRE(format::write_gguf(path, entries, tensors, 64));
  auto file = open_gguf(path);
  CHECK(file->contents().alignment == 64);
  for (const auto& entry : entries) {
    INFO(entry.key);
    const format::GgufValue* read = file->contents().find(entry.key);
    REQUIRE(read != nullptr);
    CHECK(read->type == entry.value.type);
    CHECK(read->to_json() == entry.value.to_json());
  }
  CHECK(file->contents().find("nested")->elements[1].element_type == GgufType::string);
  auto read_values = format::tensor_to_f32(*file->find("t.f32"));
  REQUIRE(read_values);
  CHECK(*read_values == values);
  // an element of the wrong type is refused and nothing is written
  const std::string bad_path = test::temp_path("bad.gguf");
  std::vector<format::GgufEntry> bad{{"mixed", GgufValue::array(GgufType::u8, {GgufValue::text("x")})}};
  CHECK_FALSE(format::write_gguf(bad_path, bad, {}));
  std::ifstream missing(bad_path);
  CHECK_FALSE(missing.good());
}

TEST_CASE("k-quant and Q4_1/Q5 blocks decode to the values their layouts define", "[gguf]") {
  // Q4_1: x = q·d + m
  BlockQ4_1 q41{fp32_to_fp16(0.5f), fp32_to_fp16(-1.0f), {}};
  for (int j = 0; j < 16; ++j) q41.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  float y[256];
  dequantize_q4_1(&q41, y, 1);
  for (int j = 0; j < 16; ++j) {
    CHECK(y[j] == 0.5f * static_cast<float>(j) - 1.0f);
    CHECK(y[j + 16] == 0.5f * static_cast<float>(15 - j) - 1.0f);
  }
  // Q5_0: fifth bit from qh; x = (q − 16)·d
  BlockQ5_0 q50{fp32_to_fp16(2.0f), {0xFF, 0x00, 0x00, 0x80}, {}};  // bits 0..7 and 31 set
  for (int j = 0; j < 16; ++j) q50.qs[j] = 0x33;
  dequantize_q5_0(&q50, y, 1);
  for (int e = 0; e < 32; ++e) {
    const bool high = e < 8 || e == 31;
    CHECK(y[e] == 2.0f * static_cast<float>((3 | (high ? 16 : 0)) - 16));
  }
  // Q5_1: no offset of 16, plus m
  BlockQ5_1 q51{fp32_to_fp16(1.0f), fp32_to_fp16(0.25f), {0x01, 0, 0, 0}, {}};
  dequantize_q5_1(&q51, y, 1);
  CHECK(y[0] == 16.25f);
  CHECK(y[1] == 0.25f);
  // Q4_K: group g (32 values) has scale g+1 and min g; value = d·scale·q − dmin·min
  BlockQ4_K q4k{};
  q4k.d = fp32_to_fp16(0.5f);
  q4k.dmin = fp32_to_fp16(0.25f);
  for (int g = 0; g < 8; ++g) {
    const uint8_t scale = static_cast<uint8_t>(g + 1), min = static_cast<uint8_t>(g);
    if (g < 4) {
      q4k.scales[g] = scale;
      q4k.scales[g + 4] = min;
    } else {
      q4k.scales[g + 4] = static_cast<uint8_t>((scale & 0x0F) | ((min & 0x0F) << 4));
      q4k.scales[g - 4] |= static_cast<uint8_t>((scale >> 4) << 6);
      q4k.scales[g] |= static_cast<uint8_t>((min >> 4) << 6);
    }
  }
  for (int b = 0; b < 128; ++b) q4k.qs[b] = static_cast<uint8_t>((b % 16) | ((15 - b % 16) << 4));
  dequantize_q4_k(&q4k, y, 1);
  for (int e = 0; e < 256; ++e) {
    const int group = e / 32, chunk = e / 64, position = e % 64;
    const uint8_t byte = q4k.qs[chunk * 32 + position % 32];
    const int q = position < 32 ? byte & 0x0F : byte >> 4;
    CHECK(y[e] == 0.5f * static_cast<float>(group + 1) * static_cast<float>(q) - 0.25f * static_cast<float>(group));
  }
  // Q6_K: value = d · scale[e / 16] · (q − 32) with q's low 4 bits in ql and high 2 in qh
  BlockQ6_K q6k{};
  q6k.d = fp32_to_fp16(0.125f);
  for (int s = 0; s < 16; ++s) q6k.scales[s] = static_cast<int8_t>(s - 8);
  std::vector<int> expected_q(256);
  for (int e = 0; e < 256; ++e) {
    const int q = (e * 7) % 64;
    expected_q[e] = q;
    const int half = e / 128, within = e % 128, quarter = within / 32, l = within % 32;
    uint8_t& low = q6k.ql[half * 64 + (quarter % 2) * 32 + l];
    low |= static_cast<uint8_t>((q & 0x0F) << (quarter >= 2 ? 4 : 0));
    q6k.qh[half * 32 + l] |= static_cast<uint8_t>((q >> 4) << (2 * quarter));
  }
  dequantize_q6_k(&q6k, y, 1);
  for (int e = 0; e < 256; ++e) CHECK(y[e] == 0.125f * static_cast<float>(e / 16 - 8) * static_cast<float>(expected_q[e] - 32));
}

TEST_CASE("corrupt GGUF files give errors naming the file and the field", "[gguf]") {
  const auto good = read_bytes(formats("qwen2-v512-q8_0.gguf"));
  for (size_t cut : {size_t{3}, size_t{10}, size_t{30}, size_t{500}, size_t{2037}, good.size() - 1}) {
    INFO("cut at " << cut);
    auto parsed = format::parse_gguf(std::span(good).first(cut), "cut.gguf");
    REQUIRE_FALSE(parsed);
    CHECK(parsed.error().message.find("cut.gguf") != std::string::npos);
  }
  auto corrupt = [&](size_t offset, std::initializer_list<uint8_t> patch) {
    auto bytes = good;
    size_t i = offset;
    for (uint8_t b : patch) bytes[i++] = std::byte{b};
    return format::parse_gguf(bytes, "bad.gguf");
  };
  CHECK_FALSE(corrupt(0, {'G', 'G', 'U', 'X'}));
  CHECK(corrupt(4, {9, 0, 0, 0}).error().message.find("version 9") != std::string::npos);
  CHECK_FALSE(corrupt(8, {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F}));   // absurd tensor count
  CHECK_FALSE(corrupt(16, {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F}));  // absurd metadata count
  CHECK_FALSE(corrupt(24, {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00}));  // key longer than the file
  auto missing = format::GgufFile::open(test::temp_path("no-such.gguf"));
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.find("no-such.gguf") != std::string::npos);
  // PyTorch files are refused without being read
  for (const char* name : {"pytorch_model.bin", "malicious.pkl"}) {
    auto refused = format::open_tensor_file(formats(name));
    REQUIRE_FALSE(refused);
    CHECK(refused.error().message.find("never unpickles") != std::string::npos);
  }
}
