// The models trained by tools/train and committed under models/: fortune-lm (apr tokenizes as
// the training tokenizer did, reproduces the training's held-out perplexity, and writes fluent
// text) and speech-commands (apr transcribes the bundled held-out clips, F16 and Q8_0, within
// the 10% word error rate, and streams its 8 s windows as batch transcribes them).
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apr/eval/perplexity.hpp"
#include "apr/eval/word_error_rate.hpp"
#include "apr/audio_io.hpp"
#include "apr/models/load.hpp"
#include "apr/models/load_whisper.hpp"
#include "apr/models/model_text.hpp"
#include "apr/runtime/generator.hpp"
#include "apr/runtime/whisper_stream.hpp"
#include "apr/runtime/whisper_transcribe.hpp"
#include "test_support.hpp"

namespace test_trained_models {  // own namespace: this file compiles in one unity source with its area's others

using namespace apr;

namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  return nlohmann::json::parse(in);
}

models::LoadedModel load_lm(const char* file) {
  auto loaded = models::load_language_model(test::model_file(std::string("fortune-lm/") + file));
  REQUIRE(loaded);
  return std::move(loaded).value();
}

/// A speech-commands file loaded with the tokenizer and filterbank it carries.
struct SpeechModel {
  models::LoadedWhisper loaded;
  std::optional<runtime::WhisperDecoder> decoder;
  std::optional<audio::LogMel> front_end;

  explicit SpeechModel(const std::string& file) {
    auto model = models::load_whisper(test::model_file("speech-commands/" + file));
    REQUIRE(model);
    loaded = std::move(model).value();
    auto tokenizer = models::whisper_tokenizer(loaded);
    auto mel = loaded.front_end();
    REQUIRE((tokenizer && mel));
    auto made = runtime::WhisperDecoder::create(*loaded.model, std::move(tokenizer).value());
    REQUIRE(made);
    decoder.emplace(std::move(made).value());
    front_end.emplace(std::move(mel).value());
  }
};

/// A bundled held-out clip: what was said and its samples.
struct Clip {
  std::string said;
  std::vector<float> samples;
};

/// The bundled clips listed in speech-commands/clips/references.tsv, in order.
std::vector<Clip> bundled_clips() {
  std::ifstream references(test::model_file("speech-commands/clips/references.tsv"));
  REQUIRE(references);
  std::vector<Clip> clips;
  std::string line;
  while (std::getline(references, line)) {
    const auto tab = line.find('\t');
    REQUIRE(tab != std::string::npos);
    auto audio = audio::read_audio(test::model_file("speech-commands/clips/" + line.substr(0, tab)));
    REQUIRE(audio);
    clips.push_back({line.substr(tab + 1), std::move(audio->samples)});
  }
  return clips;
}

}  // namespace

TEST_CASE("fortune-lm: apr's tokenizer gives the training tokenizer's ids", "[trained][tokenizer]") {
  const auto lm = load_lm("fortune-lm-f16.apr");
  auto tokenizer = models::tokenizer_for(lm);
  REQUIRE(tokenizer);
  std::ifstream lines(test::model_file("fortune-lm/tokenizer_check.jsonl"));
  REQUIRE(lines);
  std::string line;
  size_t checked = 0;
  while (std::getline(lines, line)) {
    const auto item = nlohmann::json::parse(line);
    const auto text = item["text"].get<std::string>();
    INFO(text);
    CHECK(tokenizer->encode(text) == item["ids"].get<std::vector<int32_t>>());
    ++checked;
  }
  CHECK(checked >= 150);
}

TEST_CASE("fortune-lm: held-out perplexity matches training and beats the unigram baseline", "[trained][lm]") {
  const auto metrics = read_json(test::model_file("fortune-lm/metrics.json"));
  const auto ids = read_json(test::model_file("fortune-lm/heldout_ids.json")).get<std::vector<int32_t>>();
  const double torch_ppl = metrics["heldout"]["first8_windows_perplexity"].get<double>();
  const double unigram_ppl = metrics["heldout"]["unigram_perplexity"].get<double>();
  const size_t context = metrics["context"].get<size_t>();
  REQUIRE(ids.size() == 8 * context);
  const auto f16 = load_lm("fortune-lm-f16.apr");
  const auto q8 = load_lm("fortune-lm-q8_0.apr");
  auto ppl16 = eval::perplexity(*f16.model, ids, {.context = context, .stride = context});
  auto ppl8 = eval::perplexity(*q8.model, ids, {.context = context, .stride = context});
  REQUIRE((ppl16 && ppl8));
  INFO("torch f32 " << torch_ppl << ", apr f16 " << ppl16->perplexity << ", apr q8_0 " << ppl8->perplexity << ", unigram " << unigram_ppl);
  // the F16 weights are the F32 training weights rounded: within 1% of the training's number
  CHECK(std::abs(ppl16->perplexity / torch_ppl - 1.0) < 0.01);
  CHECK(std::abs(ppl8->perplexity / ppl16->perplexity - 1.0) < 0.05);
  CHECK(ppl16->perplexity * 4.0 < unigram_ppl);
}

TEST_CASE("fortune-lm: sampled chat replies are fluent (perplexity under the F16 model)", "[trained][lm]") {
  const auto f16 = load_lm("fortune-lm-f16.apr");
  const auto q8 = load_lm("fortune-lm-q8_0.apr");
  auto tokenizer = models::tokenizer_for(q8);
  auto chat = models::chat_template_for(q8);
  REQUIRE((tokenizer && chat));
  const std::vector<text::ChatMessage> conversation{{"user", "Tell me a fortune."}};
  const auto prompt = tokenizer->encode(chat->render(conversation, true));
  runtime::GenerationOptions options;
  options.max_tokens = 80;
  options.stop_ids = models::stop_ids_for(q8, &*tokenizer);
  options.sampling.temperature = 0.7f;
  double nll = 0.0;
  size_t scored = 0;
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    options.sampling.seed = seed;
    auto sequence = q8.model->new_sequence(prompt.size() + options.max_tokens);
    auto reply = runtime::generate(*q8.model, *sequence, prompt, options);
    REQUIRE(reply);
    INFO("seed " << seed << ": " << tokenizer->decode(reply->tokens));
    CHECK(eval::normalized_words(tokenizer->decode(reply->tokens)).size() >= 3);
    // score the reply's tokens given the prompt with the F16 model
    std::vector<int32_t> all = prompt;
    all.insert(all.end(), reply->tokens.begin(), reply->tokens.end());
    std::vector<float> logits(all.size() * f16.model->vocab_size());
    auto scoring = f16.model->new_sequence(all.size());
    REQUIRE(f16.model->forward(*scoring, all, logits, {.all_logits = true}));
    for (size_t t = prompt.size(); t < all.size(); ++t) {
      const auto row = std::span<const float>(logits).subspan((t - 1) * f16.model->vocab_size(), f16.model->vocab_size());
      nll -= eval::log_softmax(row)[static_cast<size_t>(all[t])];
      ++scored;
    }
  }
  const double ppl = std::exp(nll / static_cast<double>(scored));
  INFO("reply perplexity under F16: " << ppl << " over " << scored << " tokens");
  // held-out fortunes score about 100 and the unigram baseline about 860; sampled replies at
  // temperature 0.7 score far lower, which text made of unrelated tokens could not
  CHECK(ppl < 30.0);
}

// The target is a WER of at most 10%. The bundled clips are the first 100 of the 200
// held-out ones; apr transcribes them at 8.4% (45 errors in 535 words, F16 and Q8_0 alike; 8.4%
// on all 200), so the bound asserted is the target itself.
TEST_CASE("speech-commands: transcripts of the bundled clips have a WER of at most 10%", "[trained][whisper]") {
  const std::vector<Clip> clips = bundled_clips();
  for (const char* file : {"speech-commands-f16.apr", "speech-commands-q8_0.apr"}) {
    SpeechModel model(file);
    runtime::WhisperTranscriber transcriber(*model.decoder);
    runtime::TranscribeOptions options;
    options.decode.language = "en";
    size_t errors = 0, words = 0;
    for (const Clip& clip : clips) {
      auto transcript = transcriber.transcribe_samples(clip.samples, *model.front_end, options, ThreadPool::global());
      REQUIRE(transcript);
      const auto counted = eval::word_errors(clip.said, transcript->text);
      INFO(file << ": " << clip.said << " -> " << transcript->text);
      errors += counted.errors;
      words += counted.words;
    }
    INFO(file << ": " << errors << " word errors in " << words << " words, " << clips.size() << " clips");
    CHECK(clips.size() == 100);
    CHECK(static_cast<double>(errors) <= 0.10 * static_cast<double>(words));
  }
}

// speech-commands' encoder takes 8 s windows (400 positions, not Whisper's 1500): a stream of
// ten bundled clips back to back (about 26 s, four windows) commits its first window once 8 s
// have arrived and ends with exactly the batch transcription. Only the windowing is checked
// here, not the text: the model was trained on one command per window and garbles windows
// that hold several.
TEST_CASE("speech-commands: 8 s windows stream as batch transcribes them", "[trained][whisper][stream]") {
  SpeechModel model("speech-commands-q8_0.apr");
  const models::WhisperConfig& config = model.loaded.model->config();
  REQUIRE(config.input_frames() == 800);
  const std::vector<Clip> clips = bundled_clips();
  REQUIRE(clips.size() >= 10);
  std::vector<float> samples;
  for (size_t i = 0; i < 10; ++i) samples.insert(samples.end(), clips[i].samples.begin(), clips[i].samples.end());
  runtime::TranscribeOptions options;
  options.decode.language = "en";
  options.temperatures = {0.0f};
  runtime::WhisperTranscriber transcriber(*model.decoder);
  auto batch = transcriber.transcribe_samples(samples, *model.front_end, options, ThreadPool::global());
  REQUIRE(batch);
  REQUIRE(samples.size() > 2 * runtime::window_samples(config));

  auto stream = runtime::WhisperStream::create(*model.decoder, *model.front_end, options, ThreadPool::global(), 0.0);
  REQUIRE(stream);
  const size_t chunk = 8000;  // 0.5 s
  size_t first_commit_at = 0;
  for (size_t at = 0; at < samples.size(); at += chunk) {
    const size_t n = std::min(chunk, samples.size() - at);
    auto update = stream->feed(std::span(samples).subspan(at, n));
    REQUIRE(update);
    if (!update->committed.empty() && first_commit_at == 0) first_commit_at = at + n;
  }
  const size_t window = runtime::window_samples(config);
  CHECK(window == 128000);
  CHECK(first_commit_at >= window);
  CHECK(first_commit_at < window + 2 * chunk);
  auto streamed = stream->finish();
  REQUIRE(streamed);
  CHECK(streamed->text == batch->text);
  REQUIRE(streamed->segments.size() == batch->segments.size());
  for (size_t i = 0; i < batch->segments.size(); ++i) {
    CHECK(streamed->segments[i].tokens == batch->segments[i].tokens);
    CHECK(streamed->segments[i].seek == batch->segments[i].seek);
  }
}

}  // namespace test_trained_models
