// The Voxtral transcription delay as an API: VoxtralConfig::set_delay_ms() accepts 80–2400 ms
// in 80 ms steps (one audio token) and keeps the right padding's margin; a model loaded with
// another delay than its params.json streams, in 80 ms chunks, the very ids it gives offline.
#include <catch2/catch.hpp>

#include "apr/audio_io.hpp"
#include "apr/models/voxtral_load.hpp"
#include "test_support.hpp"

using namespace apr;

TEST_CASE("transcription delay: 80 to 2400 ms in steps of one audio token", "[voxtral][delay]") {
  models::VoxtralConfig config;  // 480 ms: 6 delay tokens, 17 of right padding
  CHECK(config.delay_ms() == 480);
  REQUIRE(config.set_delay_ms(2400));
  CHECK(config.n_delay_tokens == 30);
  CHECK(config.n_right_pad_tokens == 41);
  REQUIRE(config.set_delay_ms(80));
  CHECK(config.n_delay_tokens == 1);
  CHECK(config.n_right_pad_tokens == 12);
  CHECK(config.delay_ms() == 80);
  for (size_t bad : {0, 40, 100, 2480}) {
    INFO(bad);
    auto status = config.set_delay_ms(bad);
    REQUIRE_FALSE(status);
    CHECK(status.error().code == ErrorCode::invalid_argument);
  }
  CHECK(config.delay_ms() == 80);  // unchanged by the refused values
}

TEST_CASE("a model loaded with another delay streams what it decodes offline", "[voxtral][delay]") {
  auto audio = audio::read_audio(test::fixture("whisper/audio/b_sentence.wav"));
  REQUIRE(audio);
  ThreadPool pool(2);
  for (size_t delay : {160, 480}) {
    INFO(delay << " ms");
    auto model = models::load_voxtral(test::fixture("voxtral/voxtral-micro"), std::nullopt, pool, delay);
    REQUIRE(model);
    CHECK((*model)->config().delay_ms() == delay);
    auto run = [&](size_t chunk) {
      std::vector<int32_t> ids;
      REQUIRE((*model)->start({}));
      for (size_t at = 0; at < audio->samples.size(); at += chunk) {
        auto decided = (*model)->feed(std::span<const float>(audio->samples).subspan(at, std::min(chunk, audio->samples.size() - at)));
        REQUIRE(decided);
        ids.insert(ids.end(), decided->begin(), decided->end());
      }
      auto rest = (*model)->finish();
      REQUIRE(rest);
      ids.insert(ids.end(), rest->begin(), rest->end());
      return ids;
    };
    const auto offline = run(audio->samples.size());
    CHECK(run(1280) == offline);
    CHECK(offline.size() > 1);
  }
  auto default_delay = models::load_voxtral(test::fixture("voxtral/voxtral-micro"), std::nullopt, pool);
  REQUIRE(default_delay);
  CHECK((*default_delay)->config().delay_ms() == 480);
  CHECK_FALSE(models::load_voxtral(test::fixture("voxtral/voxtral-micro"), std::nullopt, pool, size_t{90}));
}
