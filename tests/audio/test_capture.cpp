// ALSA capture without a sound card: device listing, the null device (which captures silence),
// errors naming the device, and the 16-bit to float conversion.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "apr/audio/capture.hpp"

using namespace apr::audio;

TEST_CASE("16-bit PCM converts to floats in [-1, 1)", "[audio][capture]") {
  const std::vector<int16_t> pcm{0, 16384, -16384, 32767, -32768, 1};
  std::vector<float> out(pcm.size());
  pcm16_to_float(pcm, out);
  CHECK(out[0] == 0.0f);
  CHECK(out[1] == 0.5f);
  CHECK(out[2] == -0.5f);
  CHECK(out[3] == Approx(32767.0 / 32768.0));
  CHECK(out[4] == -1.0f);
  CHECK(out[5] == Approx(1.0 / 32768.0));
}

TEST_CASE("capture devices are listed without a sound card", "[audio][capture]") {
  auto devices = list_capture_devices();
  REQUIRE(devices);
  for (const auto& device : *devices) {
    CHECK_FALSE(device.name.empty());
    CHECK(device.description.find('\n') == std::string::npos);
  }
}

TEST_CASE("the null device opens at 16 kHz mono and reads silence", "[audio][capture]") {
  auto microphone = Microphone::open("null");
  REQUIRE(microphone);
  CHECK(microphone->sample_rate() == 16000);
  std::vector<float> samples(1600, 1.0f);
  auto got = microphone->read(samples);
  REQUIRE(got);
  CHECK(*got > 0);
  CHECK(*got <= samples.size());
  for (size_t i = 0; i < *got; ++i) CHECK(samples[i] == 0.0f);
}

TEST_CASE("opening a missing capture device names it", "[audio][capture]") {
  auto missing = Microphone::open("apr_no_such_device");
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error().message, Catch::Contains("apr_no_such_device"));
  CHECK_FALSE(Microphone::open("null", 0));
}
