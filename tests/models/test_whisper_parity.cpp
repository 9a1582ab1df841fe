// Whisper<W> against openai/whisper (commit c0d2f62) run in float32 on whisper-micro's stored F16
// weights: encoder output and the logits of the 4-token prompt, given whisper's own log-mel
// (so the audio front end plays no part). Tolerance: 1e-4 max abs for F32 and F16 (F16 matmuls
// hold exactly the stored values; only summation order differs).
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <vector>

#include "apr/format/safetensors.hpp"
#include "apr/models/load_whisper.hpp"
#include "test_support.hpp"

using namespace apr;

namespace {

std::vector<float> tensor_values(const format::TensorFile& file, const char* name) {
  const TensorView* view = file.find(name);
  REQUIRE(view != nullptr);
  REQUIRE(view->dtype == DType::f32);
  const auto* data = reinterpret_cast<const float*>(view->bytes.data());
  return {data, data + view->numel()};
}

float max_abs_difference(std::span<const float> a, std::span<const float> b) {
  REQUIRE(a.size() == b.size());
  float worst = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::abs(a[i] - b[i]));
  return worst;
}

}  // namespace

TEST_CASE("whisper-micro encoder output and prompt logits match openai/whisper", "[whisper][parity]") {
  const DType dtype = GENERATE(DType::f32, DType::f16);
  auto loaded = models::load_whisper(test::fixture("whisper/whisper-micro"), dtype);
  REQUIRE(loaded);
  const models::WhisperModel& model = *loaded->model;
  REQUIRE(model.config().d_model == 64);
  auto audio = model.new_audio();
  auto state = model.new_decoder_state(1);
  for (const char* clip : {"a_hello", "b_sentence", "d_long"}) {
    auto refs = format::SafeTensorsFile::open(test::fixture(std::string("whisper/refs/") + clip + ".safetensors"));
    REQUIRE(refs);
    const auto mel = tensor_values(**refs, "log_mel");
    REQUIRE(model.encode(mel, *audio));
    const auto encoder_out = tensor_values(**refs, "encoder_out");
    CHECK(max_abs_difference(audio->features(), encoder_out) < 1e-4f);

    const std::vector<int32_t> prompt{50258, 50259, 50359, 50363};
    const std::vector<size_t> rows{0, 1, 2, 3};
    std::vector<float> logits(4 * model.config().vocab_size);
    state->reset();
    REQUIRE(model.decode(*state, *audio, prompt, 1, logits, {.logit_rows = rows}));
    CHECK(max_abs_difference(logits, tensor_values(**refs, "logits_prompt")) < 1e-4f);
  }
}

TEST_CASE("whisper decoding token by token equals one pass over the prompt", "[whisper]") {
  auto loaded = models::load_whisper(test::fixture("whisper/whisper-micro"), DType::f32);
  REQUIRE(loaded);
  const models::WhisperModel& model = *loaded->model;
  auto refs = format::SafeTensorsFile::open(test::fixture("whisper/refs/a_hello.safetensors"));
  REQUIRE(refs);
  auto audio = model.new_audio();
  REQUIRE(model.encode(tensor_values(**refs, "log_mel"), *audio));
  const std::vector<int32_t> prompt{50258, 50259, 50359, 50363};
  const size_t vocab = model.config().vocab_size;
  std::vector<float> whole(vocab), step(vocab);
  auto state = model.new_decoder_state(2);
  REQUIRE(model.decode(*state, *audio, prompt, 1, whole));
  state->reset();
  for (int32_t token : prompt) REQUIRE(model.decode(*state, *audio, std::span(&token, 1), 1, step));
  CHECK(max_abs_difference(whole, step) < 1e-5f);
  // a reordered sequence continues exactly as its source
  const std::vector<size_t> from_first{0, 0};
  REQUIRE(state->reorder(from_first));
  const std::vector<int32_t> next{50364, 50364};
  std::vector<float> both(2 * vocab);
  REQUIRE(model.decode(*state, *audio, next, 2, both));
  CHECK(max_abs_difference(std::span(both).first(vocab), std::span(both).last(vocab)) == 0.0f);
}

TEST_CASE("whisper refuses bad input with clear errors", "[whisper]") {
  auto loaded = models::load_whisper(test::fixture("whisper/whisper-micro"), DType::f32);
  REQUIRE(loaded);
  const models::WhisperModel& model = *loaded->model;
  auto audio = model.new_audio();
  std::vector<float> short_mel(80 * 100, 0.0f);
  auto wrong_shape = model.encode(short_mel, *audio);
  REQUIRE_FALSE(wrong_shape);
  CHECK(wrong_shape.error().message.find("[80, 3000]") != std::string::npos);
  std::vector<float> mel(80 * 3000, 0.0f);
  mel[1234] = std::numeric_limits<float>::quiet_NaN();
  auto nan = model.encode(mel, *audio);
  REQUIRE_FALSE(nan);
  CHECK(nan.error().message.find("nan") != std::string::npos);
  auto state = model.new_decoder_state(1);
  std::vector<float> logits(model.config().vocab_size);
  const std::vector<int32_t> token{50258};
  CHECK_FALSE(model.decode(*state, *audio, token, 1, logits));  // not encoded yet
  mel[1234] = 0.0f;
  REQUIRE(model.encode(mel, *audio));
  const std::vector<int32_t> outside{60000};
  CHECK_FALSE(model.decode(*state, *audio, outside, 1, logits));
  std::vector<int32_t> too_long(449, 50258);
  std::vector<float> many(model.config().vocab_size);
  CHECK_FALSE(model.decode(*state, *audio, too_long, 1, many));
}

TEST_CASE("f16 key/value storage stays close to the reference and halves what a step reads", "[whisper][parity]") {
  // f16 self-attention cache and cross-attention keys/values (whisper.cpp's default): prompt
  // logits within 2e-3 of openai/whisper's (values of order 1; f16 has 11 significant bits)
  auto loaded = models::load_whisper(test::fixture("whisper/whisper-micro"), DType::f32, {.kv_dtype = DType::f16});
  REQUIRE(loaded);
  const models::WhisperModel& model = *loaded->model;
  auto audio = model.new_audio();
  REQUIRE(audio->cross(0).storage() == DType::f16);
  auto state = model.new_decoder_state(1);
  auto refs = format::SafeTensorsFile::open(test::fixture("whisper/refs/b_sentence.safetensors"));
  REQUIRE(refs);
  REQUIRE(model.encode(tensor_values(**refs, "log_mel"), *audio));
  const std::vector<int32_t> prompt{50258, 50259, 50359, 50363};
  const std::vector<size_t> rows{0, 1, 2, 3};
  std::vector<float> logits(4 * model.config().vocab_size);
  REQUIRE(model.decode(*state, *audio, prompt, 1, logits, {.logit_rows = rows}));
  const float difference = max_abs_difference(logits, tensor_values(**refs, "logits_prompt"));
  CHECK(difference < 2e-3f);
  CHECK(difference > 0.0f);  // the storage really changed
}
